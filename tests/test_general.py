"""The general sound evaluator: enclosures, the forward pass against an independent
mpmath reference, certified counts never above exact counts, the Max-of-K brute force
agreement, tasks, refusals naming their field, CLI and certificates."""

from __future__ import annotations

import json
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certify.cli import main
from certify.evaluation.enclosures import iexp, ierf, isigmoid, itanh, rsqrt_positive
from certify.evaluation.evaluate import evaluate
from certify.evaluation.sound_forward import interval_logits
from certify.modelio.general import (GENERAL_IRRELEVANT, GENERAL_REQUIRED, GeneralModel, check_general_options,
                                     import_general)
from certify.modelio.model import Config
from certify.proofs.sound_linalg import Iv
from certify.tasks import TASKS, TaskError, build_task, read_dataset
from general_models import all_inputs, make_config, random_model, reference_correct, reference_logits

FIX = Path(__file__).parent / "fixtures" / "transformer_lens"


# --- enclosures --------------------------------------------------------------------

@pytest.mark.parametrize("name,f,ref", [
    ("exp", iexp, mpmath.exp), ("tanh", itanh, mpmath.tanh), ("erf", ierf, mpmath.erf),
    ("sigmoid", isigmoid, lambda v: 1 / (1 + mpmath.exp(-v))),
    ("rsqrt", rsqrt_positive, lambda v: 1 / mpmath.sqrt(v))])
def test_enclosures_contain_the_true_value(name, f, ref):
    rng = np.random.default_rng(1)
    xs = np.concatenate([rng.normal(0, 3, 300), rng.normal(0, 30, 100), [0.0, 1e-300, -1e-300, 3.5, -3.5,
                                                                          np.nextafter(3.5, 4), 1e-8, -50, 50]])
    if name == "rsqrt":
        xs = np.abs(xs) + 1e-12
    if name == "exp":
        xs = np.clip(xs, -700, 700)
    e = f(Iv.point(xs))
    with mpmath.workdps(50):
        for x, lo, hi in zip(xs, e.lo, e.hi):
            t = ref(mpmath.mpf(float(x)))
            assert mpmath.mpf(float(lo)) <= t <= mpmath.mpf(float(hi)), (name, x, lo, hi)
    assert np.all(e.hi - e.lo <= 1e-8 * np.maximum(1, np.abs(e.hi)))  # tight, not just sound


def test_enclosures_are_monotone_on_intervals():
    x = Iv(np.array([-2.0, 0.5]), np.array([-1.0, 4.0]))
    for f in (itanh, ierf, isigmoid, iexp):
        e, a, b = f(x), f(Iv.point(x.lo)), f(Iv.point(x.hi))
        assert np.all(e.lo <= a.lo) and np.all(e.hi >= b.hi)


# --- the forward pass against the reference ------------------------------------------

ARCHS = {
    "attn-only": {},
    "mlp-relu-LN": dict(d_mlp=12, act_fn="relu", normalization_type="LN"),
    "mlp-gelu-LNPre": dict(d_mlp=12, act_fn="gelu", normalization_type="LNPre"),
    "mlp-gelu_new-RMS": dict(d_mlp=12, act_fn="gelu_new", normalization_type="RMS"),
    "mlp-silu-RMSPre-2layers": dict(n_layers=2, d_mlp=12, act_fn="silu", normalization_type="RMSPre"),
    "bidirectional-caps": dict(causal=False, attn_soft_cap=3.0, logit_soft_cap=5.0),
    "scale-by-layer-2layers": dict(n_layers=2, attn_scale=1.5, scale_by_layer=True, normalization_type="LN"),
    "d_vocab_out": dict(d_vocab_out=4, n_heads=3),
}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_intervals_enclose_the_reference_logits(arch):
    model = random_model(make_config(**ARCHS[arch]), seed=3)
    toks = all_inputs(model.cfg.d_vocab, 3)[::17][:8]
    pos = np.array([i % 3 for i in range(len(toks))])
    L = interval_logits(model, toks, pos)
    assert np.all(L.hi - L.lo < 1e-6)  # tight (measured 5e-12 .. 2e-8 over these), not only sound
    for i, (t, p) in enumerate(zip(toks, pos)):
        ref = reference_logits(model, list(t), int(p), dps=30)
        for j, v in enumerate(ref):
            assert mpmath.mpf(float(L.lo[i, j])) <= v <= mpmath.mpf(float(L.hi[i, j])), (arch, i, j)


def test_zero_variance_layernorm_inputs_are_enclosed():
    """Every embedding row constant and no positions: LN sees zero variance; eps keeps
    it defined and the output is b exactly (up to the enclosure)."""
    cfg = make_config(normalization_type="LN", d_mlp=8, act_fn="gelu")
    model = random_model(cfg, 4)
    params = dict(model.params)
    params["embed.W_E"] = np.repeat(np.arange(cfg.d_vocab, dtype=np.float32)[:, None], cfg.d_model, axis=1)
    params["pos_embed.W_pos"] = np.zeros_like(params["pos_embed.W_pos"])
    model = GeneralModel(cfg, params, "zero-var", "test")
    toks = all_inputs(cfg.d_vocab, 2)[:10]
    L = interval_logits(model, toks, np.ones(len(toks), dtype=np.int64))
    assert np.isfinite(L.lo).all() and np.all(L.hi - L.lo < 1e-6)
    for i, t in enumerate(toks[:4]):
        ref = reference_logits(model, list(t), 1, dps=30)
        assert all(mpmath.mpf(float(L.lo[i, j])) <= v <= mpmath.mpf(float(L.hi[i, j])) for j, v in enumerate(ref))


# --- soundness: certified count <= exact count (hypothesis) ------------------------

def exact_count(model, toks, pos, labels) -> int:
    return sum(reference_correct(model, list(t), int(p), int(lab), dps=40) for t, p, lab in zip(toks, pos, labels))


def adversarial(model: GeneralModel, kind: str) -> GeneralModel:
    p = {k: v.copy() for k, v in model.params.items()}
    if kind == "tie":  # two equal unembedding columns (and biases): exact ties on every input
        p["unembed.W_U"][:, 1] = p["unembed.W_U"][:, 0]
        p["unembed.b_U"][1] = p["unembed.b_U"][0]
    elif kind == "near-tie":
        p["unembed.W_U"][:, 1] = np.nextafter(p["unembed.W_U"][:, 0], np.float32(np.inf))
        p["unembed.b_U"][1] = p["unembed.b_U"][0]
    elif kind == "huge":
        p = {k: (v * np.float32(1e3) if k.endswith(("W_Q", "W_K")) else v) for k, v in p.items()}
    elif kind == "tiny":
        p = {k: (v * np.float32(1e-30) if "W_" in k else v) for k, v in p.items()}
    elif kind == "zero-var":
        d = model.cfg.d_model
        p["embed.W_E"] = np.repeat(np.arange(model.cfg.d_vocab, dtype=np.float32)[:, None], d, axis=1)
        p["pos_embed.W_pos"] = np.zeros_like(p["pos_embed.W_pos"])
    return GeneralModel(model.cfg, p, kind, "test")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=st.sampled_from(list(ARCHS)), seed=st.integers(0, 10 ** 6),
       kind=st.sampled_from(["random", "tie", "near-tie", "huge", "tiny", "zero-var"]))
def test_certified_count_never_exceeds_the_exact_count(arch, seed, kind):
    cfg = make_config(**{**ARCHS[arch], "n_ctx": 2, "d_vocab": 4, "d_vocab_out": 4})
    model = adversarial(random_model(cfg, seed), kind)
    toks = all_inputs(4, 2)
    pos = np.full(len(toks), 1)
    labels = toks.max(axis=1) % cfg.d_vocab_out
    r = evaluate(model, toks, pos, labels)
    assert sum(r.paths.values()) == len(toks)
    assert r.correct <= exact_count(model, toks, pos, labels)


def test_exact_ties_count_as_wrong_and_go_to_the_ball_path():
    cfg = make_config(n_ctx=2, d_vocab=4, d_vocab_out=4)
    model = adversarial(random_model(cfg, 7), "tie")
    model.params["unembed.b_U"][:2] = 100.0  # logits 0 and 1 (equal) are the top two everywhere
    toks = all_inputs(4, 2)
    r = evaluate(model, toks, np.ones(len(toks), np.int64), np.zeros(len(toks), np.int64))
    assert r.correct == 0  # label 0 always ties with 1
    assert r.paths.get("undecided (counted wrong)", 0) == len(toks)


def test_near_ties_are_decided_by_balls():
    """Logits 0 and 1 differ by one float32 ulp of W_U: float64 intervals may not decide,
    arb balls must, and the count equals the exact one."""
    cfg = make_config(n_ctx=2, d_vocab=4, d_vocab_out=4)
    model = adversarial(random_model(cfg, 8, bias_scale=0.0), "near-tie")
    toks = all_inputs(4, 2)
    pos, labels = np.ones(len(toks), np.int64), np.zeros(len(toks), np.int64)
    r = evaluate(model, toks, pos, labels)
    assert "undecided (counted wrong)" not in r.paths
    assert r.correct == exact_count(model, toks, pos, labels)


def test_loss_upper_bound_is_above_the_exact_mean():
    model = random_model(make_config(d_mlp=8, act_fn="gelu", normalization_type="LN", n_ctx=2, d_vocab=4,
                                     d_vocab_out=4), 5)
    toks = all_inputs(4, 2)
    pos, labels = np.ones(len(toks), np.int64), toks.max(axis=1)
    r = evaluate(model, toks, pos, labels, loss=True)
    with mpmath.workdps(30):
        ce = []
        for t, lab in zip(toks, labels):
            lg = reference_logits(model, list(t), 1, dps=30)
            ce.append(mpmath.log(mpmath.fsum(mpmath.exp(v) for v in lg)) - lg[lab])
        exact = mpmath.fsum(ce) / len(ce)
    assert r.loss_upper is not None and exact <= r.loss_upper <= exact + 1e-6


# --- agreement with the Max-of-K brute force -------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_general_evaluator_agrees_with_the_maxk_bruteforce(seed):
    from helpers import random_model as maxk_random, tied_model  # noqa: F401
    from certify.proofs.bruteforce import bruteforce
    from certify.proofs.exact import path_tables
    from certify.modelio.general import general_config
    cfg = Config(d_vocab=7, n_ctx=3, d_model=8, d_head=4)
    w = maxk_random(cfg, seed, scale=3.0)
    gcfg = general_config({"n_layers": 1, "n_heads": 1, "d_model": 8, "d_head": 4, "d_vocab": 7, "n_ctx": 3,
                           "attn_only": True})
    h = lambda t: t.numpy()[None]  # noqa: E731
    params = {"embed.W_E": w["W_E"].numpy(), "pos_embed.W_pos": w["W_pos"].numpy(),
              "unembed.W_U": w["W_U"].numpy(), "unembed.b_U": np.zeros(7, np.float32),
              "blocks.0.attn.W_Q": h(w["W_Q"]), "blocks.0.attn.W_K": h(w["W_K"]), "blocks.0.attn.W_V": h(w["W_V"]),
              "blocks.0.attn.W_O": h(w["W_O"]), "blocks.0.attn.b_O": np.zeros(8, np.float32),
              **{f"blocks.0.attn.b_{n}": np.zeros((1, 4), np.float32) for n in "QKV"}}
    model = GeneralModel(gcfg, params, "maxk", "test")
    task = build_task("max-of-k", gcfg, {})
    r = evaluate(model, task.tokens, task.positions, task.labels)
    assert r.correct == bruteforce(path_tables(w)).correct


# --- TransformerLens fixtures ----------------------------------------------------

@pytest.mark.parametrize("stem,config,expected", [
    ("tl3_v12k3", "tl3_v12k3", 1720), ("tl4_bridge_v12k3", "tl4_bridge_v12k3", 1720),
    ("tl3_v8k2", "tl3_v8k2", 60), ("tl4_bridge_v8k2", "tl4_bridge_v8k2", 60)])
def test_tl_fixtures_match_transformer_lens_float64_counts(stem, config, expected):
    model = import_general(FIX / f"{stem}.safetensors", FIX / f"{config}.config.json")
    task = build_task("max-of-k", model.cfg, {})
    assert evaluate(model, task.tokens, task.positions, task.labels).correct == expected


@pytest.mark.parametrize("stem", ["tl3_refused_mlp", "tl3_refused_norm_LN", "tl3_refused_norm_RMSPre",
                                  "tl3_refused_n_layers_2", "tl3_refused_n_heads_2", "tl3_refused_bidirectional",
                                  "tl3_refused_attn_soft_cap", "tl3_refused_d_vocab_out_10", "tl4_refused_norm_LN",
                                  "tl4_refused_mlp", "tl4_refused_n_heads_2", "tl4_refused_nonzero_biases"])
def test_general_importer_accepts_what_the_maxk_importer_refuses(stem):
    model = import_general(FIX / f"{stem}.safetensors", FIX / f"{stem}.config.json")
    assert model.sha256


# --- refusals name their field ---------------------------------------------------

BAD_VALUES = {"positional_embedding_type": "rotary", "use_local_attn": True, "gated_mlp": True,
              "num_experts": 4, "act_fn": "solu_ln", "normalization_type": "LNPre2", "final_rms": True,
              "use_qk_norm": True, "n_key_value_heads": 2, "parallel_attn_mlp": True, "attention_dir": "sideways",
              "rmsnorm_uses_offset": True, "post_embedding_ln": True, "eps": 0.0, "n_layers": 0,
              "attn_scale": 0.0, "scale_embedding": True}


@pytest.mark.parametrize("field", sorted(BAD_VALUES))
def test_every_refusal_names_its_field(field):
    config = json.loads((FIX / "tl3_v8k2.config.json").read_text())
    config[field] = BAD_VALUES[field]
    with pytest.raises(ValueError, match=field):
        check_general_options(config, "transformer-lens-3")


def test_unknown_fields_are_refused_and_the_tables_are_disjoint():
    assert not set(GENERAL_REQUIRED) & set(GENERAL_IRRELEVANT)
    config = json.loads((FIX / "tl3_v8k2.config.json").read_text())
    config["use_shiny_new_attention"] = True
    with pytest.raises(ValueError, match="use_shiny_new_attention"):
        check_general_options(config, "transformer-lens-3")
    fields = json.loads((FIX / "config_fields.json").read_text())
    names = [n for version in ("tl3", "tl4") for n in fields[version]["fields"]]
    missing = [n for n in names if isinstance(n, str) and n not in GENERAL_REQUIRED and n not in GENERAL_IRRELEVANT]
    assert not missing, missing


def test_tl4_without_attention_scale_is_refused_by_name():
    with pytest.raises(ValueError, match="use_attn_scale"):
        import_general(FIX / "tl4_refused_no_attn_scale.safetensors", FIX / "tl4_refused_no_attn_scale.config.json")


# --- tasks ------------------------------------------------------------------------

def test_task_labels():
    cfg = make_config(d_vocab=121, d_vocab_out=121, n_ctx=12)
    ma = build_task("modular-addition", cfg, {"p": 7, "op": "sub"})
    assert ma.size == 49 and all(lab == (a - b) % 7 for (a, b, eq), lab in zip(ma.tokens, ma.labels)) and \
        set(ma.tokens[:, 2]) == {7}
    gc = build_task("group-composition", cfg, {"n": 3})
    assert gc.size == 36 and sorted(np.bincount(gc.labels)) == [6] * 6  # a Latin square
    bp = build_task("balanced-parens", cfg, {"n_ctx": 6})
    assert int(bp.labels.sum()) == 5  # Catalan(3)
    par = build_task("parity", cfg, {"n_ctx": 4})
    assert int(par.labels.sum()) == 8
    srt = build_task("sort", cfg, {"k": 3, "n_values": 3})
    assert srt.size == 27 * 3 and np.all(srt.tokens[:, 3] == 3)
    ind = build_task("induction", cfg, {"n_sequences": 5, "seed": 1})
    t, p, lab = ind.tokens[0], ind.positions[0], ind.labels[0]
    assert t[p] == t[p - 6] and lab == t[p - 5]
    assert ind.digest() == build_task("induction", cfg, {"n_sequences": 5, "seed": 1}).digest()
    with pytest.raises(TaskError, match="d_vocab"):
        build_task("modular-addition", make_config(d_vocab=10), {"p": 113})
    with pytest.raises(TaskError, match="no parameter"):
        build_task("parity", cfg, {"p": 3})
    assert set(TASKS) >= {"max-of-k", "sort", "modular-addition", "group-composition", "parity",
                          "balanced-parens", "induction"}


def test_datasets_npz_and_safetensors(tmp_path):
    from safetensors.numpy import save_file
    toks = np.array([[1, 2], [3, 0]], dtype=np.int64)
    np.savez(tmp_path / "d.npz", tokens=toks, labels=np.array([2, 3]))
    save_file({"tokens": toks, "labels": np.array([2, 3]), "positions": np.array([1, 0])},
              str(tmp_path / "d.safetensors"))
    a, b = read_dataset(tmp_path / "d.npz"), read_dataset(tmp_path / "d.safetensors")
    assert list(a.positions) == [1, 1] and list(b.positions) == [1, 0]
    np.savez(tmp_path / "bad.npz", tokens=toks)
    with pytest.raises(TaskError, match="labels"):
        read_dataset(tmp_path / "bad.npz")


# --- CLI and certificates -------------------------------------------------------

def test_cli_prove_check_and_tamper(tmp_path, capsys):
    m, c = str(FIX / "tl3_refused_mlp.safetensors"), str(FIX / "tl3_refused_mlp.config.json")
    cert = tmp_path / "c.json"
    assert main(["prove", "--model", m, "--config", c, "--task", "max-of-k", "--metric", "loss",
                 "--certificate", str(cert), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy"] == "sound-forward" and out["loss_upper"] is not None and cert.is_file()
    assert main(["check", str(cert), "--model", m, "--config", c, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    data = json.loads(cert.read_text())
    data["claimed_correct"] += 1
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data))
    assert main(["check", str(forged), "--model", m, "--config", c, "--json"]) == 1
    other = str(FIX / "tl3_refused_norm_LN.safetensors")
    assert main(["check", str(cert), "--model", other, "--config", str(FIX / "tl3_refused_norm_LN.config.json"),
                 "--json"]) == 1
    assert "sha256" in json.loads(capsys.readouterr().out.splitlines()[-1])["reason"]


def test_cli_routes_maxk_models_to_the_fast_path(capsys):
    m, c = str(FIX / "tl3_v12k3.safetensors"), str(FIX / "tl3_v12k3.config.json")
    assert main(["bruteforce", "--model", m, "--config", c, "--task", "max-of-k", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy"] == "maxk-bruteforce" and out["correct"] == 1720
    assert main(["strategies", "--model", m, "--config", c, "--json"]) == 0
    assert "maxk-bruteforce" in json.loads(capsys.readouterr().out)["applicable"]
    assert main(["tasks", "--json"]) == 0
    assert "modular-addition" in json.loads(capsys.readouterr().out)["tasks"]


def test_cli_bad_task_input_is_one_clear_error(capsys):
    m, c = str(FIX / "tl3_v12k3.safetensors"), str(FIX / "tl3_v12k3.config.json")
    assert main(["bruteforce", "--model", m, "--config", c, "--task", "modular-addition", "--p", "113"]) == 2
    assert "d_vocab" in capsys.readouterr().err



def test_an_exact_point_tie_is_wrong_in_the_interval_decision():
    from certify.evaluation.evaluate import interval_decisions
    logits = Iv.point(np.array([[1.0, 1.0, 0.0], [2.0, 1.0, 0.0]]))
    correct, wrong = interval_decisions(logits, np.array([0, 0]))
    assert list(correct) == [False, True] and list(wrong) == [True, False]
