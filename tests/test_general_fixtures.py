"""The real-TransformerLens fixtures of issue 21 (tests/fixtures/general), read with numpy only.

Checks that the fixtures are internally consistent (shapes, labels recomputed from the tokens
by label functions written here, independently of make_fixtures.py; manifest counts equal the
stored logits' argmax), that tests/general_reference.py (a numpy float64 forward written from
TL's sources) reproduces TL's own float64 logits, i.e. that the conventions of FORMATS.md are
complete, and, where certify's general evaluator exists, that it agrees with TL.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import general_reference

HERE = Path(__file__).parent / "fixtures" / "general"
MANIFEST = json.loads((HERE / "manifest.json").read_text())
SUPPORTED = [e for e in MANIFEST if "refused_field" not in e["expected"]]
REFUSED = [e for e in MANIFEST if "refused_field" in e["expected"]]
REF_TOL = 1e-12  # relative to max |logit|, the float64 reference vs TL's float64 forward
REF_TOL_NORM32 = 1e-5  # TL 4.3.0 RMSNorm runs in float32 even in a float64 model


def _ids(entries):
    return [e["name"] for e in entries]


def load(entry):
    return (load_file(str(HERE / entry["weights"])),
            json.loads((HERE / entry["config"]).read_text()),
            load_file(str(HERE / entry["data"])))


# ---------------------------------------------------------------- label functions
def _perm_rank(perms: np.ndarray) -> np.ndarray:
    """Lexicographic rank of each permutation row (Lehmer code), = itertools.permutations order."""
    n = perms.shape[1]
    rank = np.zeros(perms.shape[0], dtype=np.int64)
    for i in range(n):
        smaller_later = (perms[:, i + 1:] < perms[:, i:i + 1]).sum(1)
        rank += smaller_later * math.factorial(n - 1 - i)
    return rank


def expected_labels(task: dict, toks: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Labels from the tokens alone, per the conventions stated in FORMATS.md."""
    name, p = task["name"], task["params"]
    rows = np.arange(toks.shape[0])
    if name == "max-of-k":
        assert (pos == p["k"] - 1).all()
        return toks.max(1)
    if name == "sort":
        k, m = p["k"], p["m"]
        assert (toks[:, k] == m).all() and (toks[:, :k] < m).all()
        srt = np.sort(toks[:, :k], axis=1)
        assert (toks[:, k + 1:] == srt[:, : k - 1]).all()
        return srt[rows, pos - k]
    if name == "modular-addition":
        q = p["p"]
        assert (toks[:, 2] == q).all() and (pos == 2).all()
        return (toks[:, 0] + toks[:, 1]) % q if p["op"] == "add" else (toks[:, 0] - toks[:, 1]) % q
    if name == "group-composition":
        n = p["n"]
        perms = np.array(list(itertools.permutations(range(n))))
        assert (toks[:, 2] == len(perms)).all() and (pos == 2).all()
        assert (_perm_rank(perms) == np.arange(len(perms))).all()
        g, h = perms[toks[:, 0]], perms[toks[:, 1]]
        return _perm_rank(np.take_along_axis(g, h, axis=1))  # (g o h)(x) = g[h[x]]
    if name == "parity":
        assert (pos == p["n"] - 1).all()
        return toks.sum(1) % 2
    if name == "balanced-parens":
        assert (pos == p["n"] - 1).all()
        depth = np.cumsum(np.where(toks == 0, 1, -1), axis=1)
        return ((depth.min(1) >= 0) & (depth[:, -1] == 0)).astype(np.int64)
    if name == "induction":
        length = p["length"]
        assert (toks[:, length:] == toks[:, : length - 1]).all()
        assert ((pos >= length) & (pos <= 2 * length - 2)).all()
        return toks[rows, pos - length + 1]
    raise AssertionError(f"unknown task {name}")


def expected_input_count(task: dict) -> int:
    name, p = task["name"], task["params"]
    return {
        "max-of-k": lambda: p.get("d_vocab", 0) ** p.get("k", 0),
        "sort": lambda: p.get("m", 0) ** p.get("k", 0) * p.get("k", 0),
        "modular-addition": lambda: p.get("p", 0) ** 2,
        "group-composition": lambda: math.factorial(p.get("n", 0)) ** 2,
        "parity": lambda: 2 ** p.get("n", 0),
        "balanced-parens": lambda: 2 ** p.get("n", 0),
        "induction": lambda: p.get("v", 0) ** p.get("length", 0) * (p.get("length", 0) - 1),
    }[name]()


def margins(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """logit[label] - max other logit; > 0 is correct (an exact tie is wrong)."""
    rows = np.arange(len(labels))
    others = logits.copy()
    others[rows, labels] = -np.inf
    return logits[rows, labels] - others.max(1)


# ---------------------------------------------------------------- the tests
def test_manifest_lists_every_file_and_stays_small():
    listed = set()
    for e in MANIFEST:
        for key in ("weights", "config", "data"):
            if key in e:
                assert (HERE / e[key]).is_file(), e[key]
                listed.add(e[key])
    on_disk = {p.name for p in HERE.iterdir() if p.suffix in (".safetensors", ".json")}
    assert on_disk - {"manifest.json"} == listed
    assert sum((HERE / n).stat().st_size for n in listed) < 3_500_000
    assert {e["tl_major"] for e in SUPPORTED} == {3, 4}
    assert {e["task"]["name"] for e in SUPPORTED} == {
        "max-of-k", "sort", "modular-addition", "group-composition", "parity",
        "balanced-parens", "induction"}


@pytest.mark.parametrize("entry", SUPPORTED, ids=_ids(SUPPORTED))
def test_fixture_is_consistent(entry):
    sd, cfg, data = load(entry)
    toks, labels, pos = data["tokens"], data["labels"], data["positions"]
    logits, clear = data["logits"], data["clear"].astype(bool)
    n = entry["n_inputs"]
    assert n == expected_input_count(entry["task"])
    assert toks.dtype == labels.dtype == pos.dtype == np.int64 and logits.dtype == np.float64
    assert toks.shape == (n, cfg["n_ctx"]) and labels.shape == pos.shape == clear.shape == (n,)
    assert logits.shape == (n, cfg["d_vocab_out"]) == (n, entry["d_vocab_out"])
    assert cfg["d_vocab"] == entry["d_vocab"] and toks.min() >= 0 and toks.max() < cfg["d_vocab"]
    assert ((pos >= 0) & (pos < cfg["n_ctx"])).all()
    assert labels.min() >= 0 and labels.max() < cfg["d_vocab_out"]
    # the input set is complete and without repeats
    rows = np.concatenate([toks, pos[:, None]], axis=1)
    assert len(np.unique(rows, axis=0)) == n
    assert (expected_labels(entry["task"], toks, pos) == labels).all()
    # manifest figures == what the stored TL float64 logits say
    m = margins(logits, labels)
    exp = entry["expected"]
    assert exp["tl_float64_correct"] == int((m > 0).sum())
    assert exp["n_exact_ties"] == int((m == 0).sum())
    scale = np.maximum(1.0, np.abs(logits).max(1))
    assert (clear == (np.abs(m) > entry["clear_rel_threshold"] * scale)).all()
    assert exp["n_clear"] == int(clear.sum())
    assert exp["tl_float64_correct_among_clear"] == int(((m > 0) & clear).sum())
    shifted = logits - logits.max(1, keepdims=True)
    nll = np.log(np.exp(shifted).sum(1)) - shifted[np.arange(n), labels]
    assert abs(nll.mean() - exp["tl_float64_mean_loss"]) <= 1e-9 * max(1.0, nll.mean())
    assert all(v.dtype == np.float32 for k, v in sd.items() if v.dtype.kind == "f")
    # exact (mpmath) correctness: where float64 is clear it has the same sign
    exact = data["exact_correct"].astype(bool)
    assert exact.shape == (n,) and exp["exact_correct"] == int(exact.sum())
    assert (exact == (m > 0))[clear].all()


@pytest.mark.parametrize("entry", SUPPORTED, ids=_ids(SUPPORTED))
def test_numpy_reference_reproduces_tl_float64(entry):
    sd, cfg, data = load(entry)
    ref = general_reference.readout_logits(sd, cfg, entry["tl_major"], data["tokens"],
                                           data["positions"])
    logits = data["logits"]
    rel = np.abs(ref - logits).max() / np.abs(logits).max()
    assert rel <= (REF_TOL_NORM32 if entry["tl_norm_in_float32"] else REF_TOL), rel
    clear = data["clear"].astype(bool)
    labels = data["labels"]
    assert ((margins(ref, labels) > 0) == (margins(logits, labels) > 0))[clear].all()


CLEAR_SAMPLE = 3  # clear inputs per fixture also re-decided at high precision


@pytest.mark.parametrize("entry", SUPPORTED, ids=_ids(SUPPORTED))
def test_exact_correctness_of_near_ties(entry):
    """Every input whose float64 margin is not clear (and a few that are) re-decided with
    mpmath at 50 digits: the stored exact_correct is what the real-arithmetic model says."""
    sd, cfg, data = load(entry)
    clear = data["clear"].astype(bool)
    rng = np.random.default_rng(0)
    idx = np.concatenate([np.flatnonzero(~clear),
                          rng.choice(np.flatnonzero(clear), CLEAR_SAMPLE, replace=False)])
    got = general_reference.exact_correct(
        sd, cfg, entry["tl_major"], data["tokens"][idx], data["positions"][idx],
        data["labels"][idx], dps=entry["expected"]["exact_dps"])
    assert (got == data["exact_correct"][idx].astype(bool)).all()


def test_ties_are_exact_and_wrong():
    """Equal W_U columns: TL's float64 matmul may split them by an ulp, the exact model never."""
    for major in (3, 4):
        entry = next(e for e in SUPPORTED if e["name"] == f"tl{major}_maxk_l1h1_attn_ties")
        _, _, data = load(entry)
        labels = data["labels"]
        top = data["logits"].shape[1] - 1
        tied_label = labels >= top - 1  # max in {top-1, top}: those two logits tie exactly
        assert tied_label.sum() > 0
        assert not data["exact_correct"].astype(bool)[tied_label].any()  # its twin is as high
        assert entry["expected"]["n_exact_ties"] > 0  # some ties TL's float64 also sees


def test_reference_notices_a_wrong_convention():
    """The reference check could fail: a changed convention moves the logits far beyond 1e-12."""
    entry = next(e for e in SUPPORTED if e["name"] == "tl3_maxk_l1h2_no_attn_scale")
    sd, cfg, data = load(entry)
    wrong = dict(cfg, use_attn_scale=True)  # 3.x divides by 1 when use_attn_scale is False
    ref = general_reference.readout_logits(sd, wrong, 3, data["tokens"], data["positions"])
    assert np.abs(ref - data["logits"]).max() / np.abs(data["logits"]).max() > 1e-3


def test_fixture_special_cases_are_present():
    by = {e["name"]: e for e in SUPPORTED}
    for major in (3, 4):
        assert by[f"tl{major}_maxk_l1h1_attn_ties"]["expected"]["n_exact_ties"] > 0
        near = by[f"tl{major}_maxk_l1h1_attn_near_ties"]["expected"]
        assert near["n_clear"] < by[f"tl{major}_maxk_l1h1_attn_near_ties"]["n_inputs"]
        assert by[f"tl{major}_maxk_l2h2_gelu_LN_untrained"]["trained_steps"] == 0
    options = [e["options"] for e in SUPPORTED]
    assert {o.get("normalization_type") for o in options} == {None, "LN", "LNPre", "RMS", "RMSPre"}
    assert {o.get("act_fn") for o in options if o.get("attn_only") is False} == {
        "relu", "gelu", "gelu_new", "silu"}
    assert {o.get("n_layers", 1) for o in options} == {1, 2, 4}
    assert {o.get("n_heads", 1) for o in options} == {1, 2, 4}


@pytest.mark.parametrize("entry", REFUSED, ids=_ids(REFUSED))
def test_refused_fixture_sets_its_field(entry):
    cfg = json.loads((HERE / entry["config"]).read_text())
    field = entry["expected"]["refused_field"]
    assert field in cfg and field in entry["options"]
    assert cfg[field] == entry["options"][field]
    load_file(str(HERE / entry["weights"]))


# ---------------------------------------------------------------- certify's general evaluator
# Options general21's importer refuses by name on purpose (semantics differ between TL versions).
ALLOWED_REFUSALS = {"final_rms", "use_attn_scale"}


@pytest.mark.parametrize("entry", SUPPORTED, ids=_ids(SUPPORTED))
def test_general_evaluator_matches_tl(entry):
    """Certified count == TL's float64 count on the clear inputs, == the exact count overall."""
    general = pytest.importorskip("certify.modelio.general", reason="issue 21 importer absent")
    evaluate = pytest.importorskip("certify.evaluation.evaluate",
                                   reason="issue 21 evaluator absent").evaluate
    from certify.modelio.config import ModelError

    try:
        model = general.import_general(HERE / entry["weights"], HERE / entry["config"])
    except ModelError as err:
        named = [f for f in ALLOWED_REFUSALS if f in str(err)]
        assert named and all(f in entry["options"] for f in named), str(err)
        pytest.skip(f"refused by name: {err}")
    _, _, data = load(entry)
    toks, pos, labels = data["tokens"], data["positions"], data["labels"]
    clear = data["clear"].astype(bool)
    exp = entry["expected"]
    whole = evaluate(model, toks, pos, labels, loss=True)
    assert whole.correct == exp["exact_correct"]
    assert whole.loss_upper is None or whole.loss_upper >= exp["tl_float64_mean_loss"] - 1e-9
    on_clear = evaluate(model, toks[clear], pos[clear], labels[clear])
    assert on_clear.correct == exp["tl_float64_correct_among_clear"]


@pytest.mark.parametrize("entry", REFUSED, ids=_ids(REFUSED))
def test_general_importer_refuses_naming_the_field(entry):
    general = pytest.importorskip("certify.modelio.general", reason="issue 21 importer absent")
    from certify.modelio.config import ModelError

    with pytest.raises(ModelError, match=entry["expected"]["refused_field"]):
        general.import_general(HERE / entry["weights"], HERE / entry["config"])
