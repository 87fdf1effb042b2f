"""The command-line contract: one JSON object on stdout with --json, clear errors."""

import json
import subprocess
import sys

import pytest

SMALL = ["--k", "3", "--d-vocab", "6", "--d-model", "8", "--d-head", "8"]


def run(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "certify", *args], capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


def test_bruteforce_json_then_cached(models):
    rc, out, err = run("bruteforce", "--seed", "3", *SMALL, "--models-dir", models, "--json")
    assert rc == 0, err
    obj = json.loads(out)
    for key in ("seed", "k", "d_vocab", "correct", "total", "accuracy", "exact_path_inputs", "seconds"):
        assert key in obj
    assert obj["total"] == 6 ** 3 and 0 <= obj["correct"] <= obj["total"]
    assert "training seed 3" in err
    rc, out2, err2 = run("bruteforce", "--seed", "3", *SMALL, "--models-dir", models, "--json")
    assert rc == 0 and "training" not in err2  # loaded from the cache
    assert json.loads(out2)["correct"] == obj["correct"]


def test_prove_all_json(models):
    rc, out, err = run("prove", "--seed", "3", *SMALL, "--models-dir", models, "--strategy", "all", "--json")
    assert rc == 0, err
    obj = json.loads(out)
    names = [r["strategy"] for r in obj["results"]]
    assert names[:3] == ["bruteforce", "cubic", "gap"] and "gap/exact/prefix/worst" in names
    assert "subcubic/max_diff_exact/mean_query+diff/exact_EQKE+max_diff_exact" in names
    for r in obj["results"]:
        for key in ("seed", "strategy", "count", "total", "bound", "accuracy", "ratio", "flops",
                    "checker_ops", "unexplained_dimension", "seconds", "search_seconds"):
            assert key in r
        assert r["count"] <= obj["results"][0]["count"]


def test_strategies_json():
    rc, out, _ = run("strategies", "--json")
    obj = json.loads(out)
    names = obj["strategies"]
    assert rc == 0 and names[:3] == ["bruteforce", "cubic", "gap"] and len(names) == 3 + 12 + 100
    assert all(n.startswith("gap/") and n.count("/") == 3 for n in names[3:15])
    assert all(n.startswith("subcubic/") and n.count("/") == 3 for n in names[15:])
    assert obj["aliases"]["subcubic"] == "gap" and obj["aliases"]["subcubic/exact/prefix/each"] == "gap/exact/prefix/each"
    assert not set(obj["aliases"]) & set(names)  # the old names never collide with the paper's


def test_emit_and_check(models, tmp_path):
    rc, out, err = run("emit", "--seed", "3", *SMALL, "--models-dir", models, "--json",
                       "--lean-dir", str(tmp_path / "lean"))
    assert rc == 0, err
    obj = json.loads(out)
    for key in ("lean_path", "summary_path", "strategy", "count", "total", "checker_ops"):
        assert key in obj
    rc, out, _ = run("check", obj["lean_path"], "--json")
    assert rc == 0 and json.loads(out)["ok"] is True
    bad = tmp_path / "bad.lean"
    text = open(obj["lean_path"]).read()
    bad.write_text(text.replace(f"check data {obj['count']} =", f"check data {obj['count'] + 1} =")
                   .replace(f"t least {obj['count']} ", f"t least {obj['count'] + 1} "))  # header and docstring too
    rc, out, _ = run("check", str(bad), "--json")
    res = json.loads(out)
    assert rc == 1 and res["ok"] is False and "supports only" in res["reason"]


@pytest.mark.parametrize("args,needle", [
    (["prove", "--seed", "3", "--strategy", "nope"], "unknown strategy"),
    (["check", "/nonexistent.lean"], "file not found"),
    (["emit", "--seed", "3", "--strategy", "cubic"], "no Lean checker"),
])
def test_errors_are_clear(models, args, needle):
    extra = [] if args[0] == "check" else [*SMALL, "--models-dir", models]
    rc, out, err = run(*args, *extra, "--json")
    assert rc == 2 and needle in json.loads(out)["error"] and needle in err


def test_bad_seed_is_rejected():
    rc, _, err = run("bruteforce", "--seed", "-4")
    assert rc == 2 and "from 0 to 2^64 - 1" in err and "got -4" in err


def test_run_without_lake(models, tmp_path, monkeypatch):
    import os
    env_path = os.environ["PATH"]
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in env_path.split(os.pathsep) if "elan" not in p))
    args = ["run", "--seed", "3", *SMALL, "--models-dir", models, "--lean-dir", str(tmp_path / "lean"), "--json"]
    rc, out, err = run(*args)
    obj = json.loads(out)
    assert rc == 0 and obj["python_check"] is True and obj["lean"] in ("skipped", "checked")
    if obj["lean"] == "skipped":
        assert "lake not found on PATH" in obj["lean_message"]
        rc, out, err = run(*args[:-1])
        assert rc == 0 and out.splitlines()[-2].startswith("Lean: NOT checked here")  # the last line(s)
        fresh = tmp_path / "fresh-lean"
        rc, out, err = run("run", "--seed", "3", *SMALL, "--models-dir", models, "--lean-dir", str(fresh),
                           "--json", "--lean", "required")
        assert rc == 2 and "LEAN=required" in json.loads(out)["error"]
        assert not fresh.exists()  # failed before any proof: nothing written


def test_unknown_strategy_gets_three_close_names_not_the_list(models):
    rc, out, err = run("prove", "--seed", "3", *SMALL, "--models-dir", models, "--strategy", "gapp", "--json")
    msg = json.loads(out)["error"]
    assert rc == 2 and "closest: gap" in msg and "certify strategies" in msg and len(msg) < 200


def test_summary_table_fits_100_columns_with_header(models, tmp_path):
    rc, out, err = run("run", "--seed", "3", *SMALL, "--models-dir", models, "--lean-dir", str(tmp_path / "l"))
    assert rc == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines if not line.strip().endswith(".lean")) <= 100  # paths aside
    header = next(i for i, line in enumerate(lines) if line.startswith("strategy "))
    assert lines[header].split()[:4] == ["strategy", "bound", "ratio", "FLOPs"]
    gap = next(line for line in lines if line.startswith("gap "))
    cubic = next(line for line in lines if line.startswith("cubic "))
    assert gap.split()[4] != "-" and cubic.split()[4] == "-"  # checker ops only where there is a checker
    assert len(lines) < 40 and lines[-1].lstrip().startswith(("Lean:", "install elan"))
    rc, out_all, _ = run("run", "--seed", "3", *SMALL, "--models-dir", models, "--lean-dir", str(tmp_path / "l"),
                         "--all")
    long_lines = [line for line in out_all.splitlines() if len(line) > 100 and not line.endswith(".lean")]
    assert rc == 0 and len(out_all.splitlines()) > 100 and not long_lines


def test_read_only_lean_dir_fails_before_the_proofs(tmp_path, monkeypatch, capsys):
    """A read-only --lean-dir (simulated: root ignores permissions, so no real read-only
    directory can be made here) is refused before a model is even loaded, in plain words."""
    import errno
    import tempfile
    from certify import cli

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(cli, "load_model_arg", lambda args: pytest.fail("the model was loaded first"))
    rc = cli.main(["run", "--seed", "3", *SMALL, "--lean-dir", str(tmp_path / "lean")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot write in" in err and "Read-only file system" in err and "[Errno" not in err
    assert not (tmp_path / "lean").exists()


def test_check_needs_no_torch(tmp_path):
    """`certify check` re-checks a certificate on a machine without torch."""
    from pathlib import Path
    cert = Path(__file__).parent / "golden" / "V6K3M14H6Seed0.lean"
    guard = tmp_path / "torch"
    guard.mkdir()
    (guard / "__init__.py").write_text("raise ImportError('torch is not available here')\n")
    proc = subprocess.run([sys.executable, "-m", "certify", "check", str(cert), "--json"], capture_output=True,
                          text=True, env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


@pytest.fixture(scope="module")
def user_checkpoint(tmp_path_factory):
    """A TransformerLens-3-shaped checkpoint and config of a briefly trained small model."""
    import torch
    from certify.modelio.model import Config
    from certify.modelio.train import TrainParams, train
    from test_import import tl_config, tl_state
    cfg = Config(6, 3, 8, 8)
    w, _ = train(cfg, 11, TrainParams(steps=300))
    d = tmp_path_factory.mktemp("user")
    torch.save(tl_state(w), d / "my model.pt")
    (d / "config.json").write_text(json.dumps(tl_config(cfg), default=str))
    return d / "my model.pt", d / "config.json", w, cfg


def test_user_model_file_id_and_name(user_checkpoint, tmp_path):
    from helpers import forward_count
    ckpt, config, w, cfg = user_checkpoint
    store = tmp_path / "models"
    store.mkdir()
    rc, out, err = run("bruteforce", "--model", str(ckpt), "--config", str(config), "--models-dir", str(store),
                       "--json")
    assert rc == 0, err
    by_file = json.loads(out)
    for key in ("seed", "model", "k", "d_vocab", "correct", "total", "accuracy", "exact_path_inputs", "seconds"):
        assert key in by_file
    assert by_file["seed"] is None and by_file["correct"] == forward_count(w, cfg)
    assert by_file["source"] == str(ckpt) and by_file["assumptions"] == []  # the path as given
    rc, out, err = run("import", str(ckpt), "--config", str(config), "--name", "toy", "--models-dir", str(store),
                       "--json")
    assert rc == 0, err
    model_id = json.loads(out)["id"]
    for ref in ("toy", model_id[:10]):
        rc, out, err = run("bruteforce", "--model", ref, "--models-dir", str(store), "--json")
        assert rc == 0, err
        assert json.loads(out)["correct"] == by_file["correct"]
    rc, out, err = run("emit", "--model", "toy", "--models-dir", str(store), "--lean-dir", str(tmp_path / "lean"),
                       "--json")
    assert rc == 0, err
    lean_path = json.loads(out)["lean_path"]
    assert lean_path.endswith(f"V6K3M8H8Modeltoy_{model_id[:8]}.lean")
    text = open(lean_path).read()
    assert f"seed: none\nmodel: toy\nsource: {ckpt}\n" in text and f"weights_sha256: {model_id}" in text
    rc, out, _ = run("check", lean_path, "--json")
    assert rc == 0 and json.loads(out)["ok"] is True


def test_user_model_errors(user_checkpoint, tmp_path):
    ckpt, config, _, _ = user_checkpoint
    store = tmp_path / "models"
    store.mkdir()
    cases = [
        (["bruteforce", "--model", str(ckpt)], "no model config"),
        (["bruteforce", "--model", "nosuchmodel"], "no such file, and no imported model"),
        (["bruteforce", "--model", str(ckpt), "--seed", "3"], "not allowed with argument"),
        (["prove", "--model", str(ckpt), "--config", str(config), "--k", "4"], "--k 4 disagrees with the model"),
        (["bruteforce", "--seed", "3", "--config", str(config)], "apply to --model"),
    ]
    for args, needle in cases:
        rc, out, err = run(*args, "--models-dir", str(store))
        assert rc == 2 and needle in err, (args, err)
    rc, out, err = run("bruteforce", "--seed", "3", "--models-dir", str(tmp_path / "typo"))
    assert rc == 2 and "no such directory" in err


def test_assumed_architecture_is_recorded(user_checkpoint, tmp_path):
    ckpt, _, _, _ = user_checkpoint
    store = tmp_path / "models"
    store.mkdir()
    rc, out, err = run("run", "--model", str(ckpt), "--assume-architecture", "--models-dir", str(store),
                       "--lean-dir", str(tmp_path / "lean"), "--json")
    assert rc == 0, err
    obj = json.loads(out)
    assert obj["assumptions"] and "assumed" in obj["assumptions"][0] and "note: architecture assumed" in err
    text = open(obj["lean_path"]).read()
    assert "\nassumption: architecture assumed, not checked" in text.split("-/")[0]
    assert json.loads(open(obj["summary_path"]).read())["assumptions"] == obj["assumptions"]


def test_train_on_an_imported_model_file_has_no_loss(models, tmp_path):
    """`certify train` on a stored model that was not trained here does not crash."""
    import shutil
    from certify.modelio.store import model_stem
    from certify.modelio.model import Config
    store = tmp_path / "models"
    src = model_stem(__import__("pathlib").Path(models), Config(6, 3, 8, 8), 3)
    rc, _, err = run("train", "--seed", "3", *SMALL, "--models-dir", models)
    assert rc == 0, err
    dst = model_stem(store, Config(6, 3, 8, 8), 3)
    dst.parent.mkdir(parents=True)
    shutil.copy(src.with_suffix(".safetensors"), dst.with_suffix(".safetensors"))
    meta = json.loads(src.with_suffix(".json").read_text())
    meta.pop("final_loss")
    dst.with_suffix(".json").write_text(json.dumps(meta))
    rc, out, err = run("train", "--seed", "3", *SMALL, "--models-dir", str(store), "--json")
    assert rc == 0, err
    assert json.loads(out)["final_loss"] is None


def test_negative_zero_weight_model_is_certified_end_to_end(user_checkpoint, tmp_path):
    """Issue 18, defect 5: a -0.0 weight used to make the model fail its own certificate
    (the header's sha256 kept the sign of zero, the re-check from integers cannot). With
    the one canonical digest (zeros hashed as +0.0) import -> run -> check all succeed,
    and the model's id is the digest of the same weights with +0.0."""
    import torch
    from certify.modelio.weights import weights_sha256
    from test_import import tl_state
    _, config, w, _ = user_checkpoint
    neg = {k: v.clone() for k, v in w.items()}
    neg["W_pos"][0, 0] = -0.0
    neg["W_U"][1, 2] = -0.0
    pos = {k: v.clone() for k, v in neg.items()}
    for v in pos.values():
        v[v == 0] = 0.0
    assert torch.signbit(neg["W_pos"][0, 0]) and not torch.signbit(pos["W_pos"][0, 0])
    assert neg["W_pos"].numpy().tobytes() != pos["W_pos"].numpy().tobytes()  # the raw bytes differ
    assert weights_sha256(neg) == weights_sha256(pos)  # the canonical digest does not
    ckpt = tmp_path / "negzero.pt"
    torch.save(tl_state(neg), ckpt)
    store, lean_dir = tmp_path / "models", tmp_path / "lean"
    store.mkdir()
    rc, out, err = run("run", "--model", str(ckpt), "--config", str(config), "--models-dir", str(store),
                       "--lean-dir", str(lean_dir), "--strategy", "gap", "--json")
    assert rc == 0, err
    obj = json.loads(out)
    assert obj["python_check"] is True, obj
    lean_files = sorted((lean_dir / "MaxKCert" / "Certs").glob("*.lean"))
    assert len(lean_files) == 1
    text = lean_files[0].read_text()
    assert f"weights_sha256: {weights_sha256(pos)}" in text and "\nstrategy: gap\n" in text
    rc, out, err = run("check", str(lean_files[0]), "--json")
    assert rc == 0 and json.loads(out)["ok"] is True, (out, err)


def subparsers():
    import argparse
    from certify.cli import build_parser
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_argument_has_help():
    missing = [(name, a.option_strings or a.dest) for name, sp in subparsers().items()
               for a in sp._actions if not a.help]
    assert not missing


@pytest.mark.parametrize("command", ["check", "strategies", "report"])
def test_commands_list_only_options_they_use(command):
    options = {o for a in subparsers()[command]._actions for o in a.option_strings}
    assert not options & {"--k", "--d-vocab", "--models-dir", "--d-model", "--preset"}
