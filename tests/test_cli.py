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
    assert names[:3] == ["bruteforce", "cubic", "subcubic"] and "subcubic/exact/prefix/worst" in names
    for r in obj["results"]:
        for key in ("seed", "strategy", "count", "total", "bound", "accuracy", "ratio", "flops",
                    "checker_ops", "unexplained_dimension", "seconds", "search_seconds"):
            assert key in r
        assert r["count"] <= obj["results"][0]["count"]


def test_strategies_json():
    rc, out, _ = run("strategies", "--json")
    names = json.loads(out)["strategies"]
    assert rc == 0 and names[:3] == ["bruteforce", "cubic", "subcubic"] and len(names) == 3 + 12
    assert all(n.count("/") == 3 for n in names[3:])


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
    bad.write_text(text.replace(f"check data {obj['count']} =", f"check data {obj['count'] + 1} ="))
    rc, out, _ = run("check", str(bad), "--json")
    res = json.loads(out)
    assert rc == 1 and res["ok"] is False and "supports only" in res["reason"]


@pytest.mark.parametrize("args,needle", [
    (["prove", "--seed", "3", "--strategy", "nope"], "unknown strategy"),
    (["check", "/nonexistent.lean"], "file not found"),
    (["emit", "--seed", "3", "--strategy", "cubic"], "no Lean checker"),
])
def test_errors_are_clear(models, args, needle):
    rc, out, err = run(*args, *SMALL, "--models-dir", models, "--json")
    assert rc == 2 and needle in json.loads(out)["error"] and needle in err


def test_bad_seed_is_rejected():
    rc, _, err = run("bruteforce", "--seed", "-4")
    assert rc == 2 and "non-negative" in err


def test_run_without_lake(models, tmp_path, monkeypatch):
    import os
    env_path = os.environ["PATH"]
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in env_path.split(os.pathsep) if "elan" not in p))
    args = ["run", "--seed", "3", *SMALL, "--models-dir", models, "--lean-dir", str(tmp_path / "lean"), "--json"]
    rc, out, err = run(*args)
    obj = json.loads(out)
    assert rc == 0 and obj["python_check"] is True and obj["lean"] in ("skipped", "checked")
    if obj["lean"] == "skipped":
        assert "lake not found on PATH" in err
        rc, out, err = run(*args, "--lean", "required")
        assert rc == 2 and "LEAN=required" in json.loads(out)["error"]


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
