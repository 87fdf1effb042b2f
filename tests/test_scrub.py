"""Causal scrubbing: the trivial hypotheses, a hand-built model against a reference
written from the definitions, the conditioning of the resampling, and the Monte Carlo
interval against the exact value."""

import csv
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from certify.experiments.hypotheses import HYPOTHESES, STRATEGY_OF, Context, resolve
from certify.experiments.scrub import (FloatTables, all_inputs, sample_draws, scrub_model, scrub_tables, supports,
                                       label_marginal)
from certify.experiments.scrub_results import scrub_report, scrub_sweep, spearman
from certify.modelio.model import Config
from models import trained

SMALL = Config(6, 3, 8, 8)


@pytest.fixture(scope="module")
def small_model():
    return dict(trained(SMALL, 1))


def test_registry_maps_every_hypothesis_to_a_known_strategy():
    from certify.proofs.strategies import STRATEGIES
    assert len(HYPOTHESES) >= 8 and set(STRATEGY_OF) == set(HYPOTHESES)
    assert all(s is None or s in STRATEGIES for s in STRATEGY_OF.values())
    assert resolve("all") == list(HYPOTHESES)
    with pytest.raises(ValueError, match="known: full"):
        resolve("nosuch")


@pytest.mark.parametrize("method", ["exact", "monte-carlo"])
def test_full_model_recovers_exactly_all_and_empty_none(small_model, method):
    r = {x.hypothesis: x for x in scrub_model(SMALL, small_model, ["full", "empty"], method=method,
                                              samples=5000, seed=3)}
    assert r["full"].recovered == 1.0 and r["full"].recovered_ci == (1.0, 1.0)
    assert r["full"].l_scrubbed == r["full"].l_model
    assert r["full"].accuracy == r["full"].model_accuracy
    if method == "exact":  # the empty hypothesis runs the model on an independent input: L_random
        assert abs(r["empty"].recovered) < 1e-12
    else:
        assert r["empty"].recovered_ci[0] <= 0.0 <= r["empty"].recovered_ci[1]


# ---- a hand-built model (d_vocab 3, K 3) and a reference written from the definitions -----
# Attention weight of a key (token t at position p): (1 + t) * (2 if p == 1 else 1), for every
# query; value of token t at position p: 3 e_t + PV[p]; direct path of query q: EU[q].
D, K = 3, 3
PV = np.array([[0.0, 0.5, 0.0], [0.0, 0.0, 0.0], [0.25, 0.0, 0.0]])
EU = np.array([[1.0, -0.5, 0.0], [0.0, 1.0, -0.5], [-0.5, 0.0, 1.0]])
GAPS = np.array([[-2, 0, 0], [-2, -1, 0], [-2, -2, 1]])  # s(q, m): the gap proof's thresholds


def hand_tables() -> FloatTables:
    eqke = np.log1p(np.arange(D, dtype=float))[None, :].repeat(D, axis=0)
    eqkp = np.array([0.0, math.log(2), 0.0])[None, :].repeat(D, axis=0)
    return FloatTables(eqke, eqkp, 3 * np.eye(D), PV, EU)


def hand_logits(qd, keys, kpos, vals, vpos):
    w = np.array([(1 + t) * (2 if p == 1 else 1) for t, p in zip(keys, kpos)], dtype=float)
    a = w / w.sum()
    return EU[qd] + sum(a[i] * (3 * np.eye(D)[vals[i]] + PV[vpos[i]]) for i in range(K))


def resamples(name, x):
    """Every equally likely (q_direct, keys, key positions, values, value positions) for input x."""
    m, q = max(x), x[-1]
    nonmax = [i for i in range(K - 1) if x[i] < m]

    def each(options_per_pos, base):  # independent options at each position
        return [list(c) for c in itertools.product(*[options_per_pos(i) if i in nonmax else [base[i]]
                                                     for i in range(K)])]
    ident = (q, list(x), [0, 1, 2], list(x), [0, 1, 2])
    if name == "full":
        return [ident]
    if name == "empty":
        return [(y[-1], list(y), [0, 1, 2], list(y), [0, 1, 2]) for y in itertools.product(range(D), repeat=K)]
    if name == "value-max-only":
        return [(q, list(x), [0, 1, 2], v, [0, 1, 2]) for v in each(lambda i: range(m), x)]
    if name == "nonmax-interchangeable":
        return [(q, t, [0, 1, 2], t, [0, 1, 2]) for t in each(lambda i: range(m), x)]
    if name == "gap-threshold":
        s = GAPS[q][m]
        def bin_of(i):
            return range(0, s + 1) if x[i] <= s else range(max(s + 1, 0), m)
        return [(q, k, [0, 1, 2], v, [0, 1, 2]) for k in each(bin_of, x) for v in each(bin_of, x)]
    if name == "keys-any":
        return [(q, k, [0, 1, 2], list(x), [0, 1, 2]) for k in each(lambda i: range(D), x)]
    if name == "positions-irrelevant":
        return [(q, list(x), [a, b, 2], list(x), [a, b, 2]) for a in range(2) for b in range(2)]
    if name == "direct-query-mean":
        return [(qd, list(x), [0, 1, 2], list(x), [0, 1, 2]) for qd in range(D)]
    raise KeyError(name)


def ce(z, label):
    return float(np.log(np.exp(z).sum()) - z[label])


def reference(name):
    inputs = list(itertools.product(range(D), repeat=K))
    marg = label_marginal(D, K)
    l_model = np.mean([ce(hand_logits(x[-1], x, [0, 1, 2], x, [0, 1, 2]), max(x)) for x in inputs])
    l_random = np.mean([sum(marg[j] * ce(hand_logits(x[-1], x, [0, 1, 2], x, [0, 1, 2]), j) for j in range(D))
                        for x in inputs])
    l_scr, acc = 0.0, 0.0
    for x in inputs:
        rs = resamples(name, x)
        for r in rs:
            z = hand_logits(*r)
            l_scr += ce(z, max(x)) / len(rs) / len(inputs)
            acc += (z[max(x)] > np.delete(z, max(x)).max()) / len(rs) / len(inputs)
    return l_model, l_random, l_scr, (l_random - l_scr) / (l_random - l_model), acc


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_hand_built_model_matches_the_reference(name):
    ctx = Context(D, K, lambda: GAPS)
    (r,) = scrub_tables(hand_tables(), [name], ctx, method="exact")
    l_model, l_random, l_scr, rec, acc = reference(name)
    assert r.method == "exact"
    assert r.l_model == pytest.approx(l_model, abs=1e-12) and r.l_random == pytest.approx(l_random, abs=1e-12)
    assert r.l_scrubbed == pytest.approx(l_scr, abs=1e-12)
    assert r.recovered == pytest.approx(rec, abs=1e-12) and r.accuracy == pytest.approx(acc, abs=1e-12)


def test_hand_built_model_distinguishes_the_hypotheses():
    """A reference that any hypothesis could pass would test nothing: on this model the
    non-trivial hypotheses lose different amounts of loss."""
    recs = {n: reference(n)[3] for n in HYPOTHESES}
    assert recs["full"] == pytest.approx(1.0) and recs["empty"] == pytest.approx(0.0)
    # resampling a whole non-max position keeps the input distribution: 100% by construction
    assert recs["nonmax-interchangeable"] == pytest.approx(1.0, abs=1e-12)
    others = [v for n, v in recs.items() if n not in ("full", "empty", "nonmax-interchangeable")]
    assert len({round(v, 9) for v in others}) == len(others)
    assert all(abs(v - 1.0) > 1e-6 for v in others)


# ---- resampling respects the conditioning ---------------------------------------------

@st.composite
def setting(draw):
    d, k = draw(st.integers(2, 5)), draw(st.integers(2, 3))
    gaps = np.array([[draw(st.integers(-2, max(-1, m - 1))) for m in range(d)] for _ in range(d)])
    return d, k, gaps


@settings(max_examples=30, deadline=None)
@given(setting())
def test_supports_are_the_conditional_distributions(s):
    """For every token draw with a feature: the values x'[source] over the inputs x' that
    agree with x on the feature are uniform on exactly the draw's support."""
    d, k, gaps = s
    ctx = Context(d, k, lambda: gaps)
    x = all_inputs(d, k)
    for h in HYPOTHESES.values():
        for draw in h.draws(ctx):
            if draw.feature is None:
                continue
            lo, hi = (np.asarray(v) for v in draw.support(x, ctx))
            feats = draw.feature(x, ctx)
            for n in range(len(x)):
                same = (feats == feats[n]).all(axis=1)
                counts = np.bincount(x[same, draw.source], minlength=d)
                inside = np.zeros(d, dtype=bool)
                inside[lo[n]:hi[n]] = True
                assert (counts[~inside] == 0).all() and len(set(counts[inside])) == 1, (h.name, x[n])


@settings(max_examples=40, deadline=None)
@given(setting(), st.integers(0, 2 ** 32 - 1))
def test_resampled_inputs_agree_on_the_conditioned_features(s, seed):
    """x with the drawn token put at the draw's source position agrees with x on the
    feature; the draw never leaves its support, and the max positions keep the max."""
    d, k, gaps = s
    ctx = Context(d, k, lambda: gaps)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, d, size=(200, k))
    for h in HYPOTHESES.values():
        draws = h.draws(ctx)
        for draw, v, (lo, hi) in zip(draws, sample_draws(draws, x, ctx, rng), supports(draws, x, ctx)):
            assert ((lo <= v) & (v < hi)).all()
            if draw.source is None:
                continue
            kept = x[:, draw.source] == x.max(axis=1)
            if h.name != "empty" and draw.source < k - 1:  # a free position's max is never resampled away
                assert (v[kept] == x[kept, draw.source]).all()
            if draw.feature is not None:
                y = x.copy()
                y[:, draw.source] = v
                assert (draw.feature(y, ctx) == draw.feature(x, ctx)).all(), h.name


# ---- Monte Carlo against exact ---------------------------------------------------------

def test_interval_covers_the_exact_value(small_model):
    exact = {r.hypothesis: r for r in scrub_model(SMALL, small_model, list(HYPOTHESES), method="exact")}
    covered = {n: 0 for n in HYPOTHESES}
    seeds = range(20)
    for seed in seeds:
        for r in scrub_model(SMALL, small_model, list(HYPOTHESES), method="monte-carlo", samples=4000, seed=seed):
            e = exact[r.hypothesis]
            covered[r.hypothesis] += r.recovered_ci[0] - 1e-12 <= e.recovered <= r.recovered_ci[1] + 1e-12
            if seed == 0:  # the test's seed: every interval covers
                assert r.recovered_ci[0] - 1e-12 <= e.recovered <= r.recovered_ci[1] + 1e-12, r.hypothesis
                assert r.accuracy_ci[0] <= e.accuracy <= r.accuracy_ci[1], r.hypothesis
    # a 95% interval: over 20 seeds and 8 hypotheses, about 152 of 160 should cover
    assert sum(covered.values()) >= 140, covered
    # and intervals are not vacuous: the non-trivial ones are narrower than 20 points
    r = scrub_model(SMALL, small_model, ["value-max-only"], method="monte-carlo", samples=4000, seed=0)[0]
    assert 0 < r.recovered_ci[1] - r.recovered_ci[0] < 0.2


def test_monte_carlo_is_deterministic_by_seed(small_model):
    a = scrub_model(SMALL, small_model, ["keys-any"], method="monte-carlo", samples=3000, seed=5)[0]
    b = scrub_model(SMALL, small_model, ["keys-any", "full"], method="monte-carlo", samples=3000, seed=5)[0]
    c = scrub_model(SMALL, small_model, ["keys-any"], method="monte-carlo", samples=3000, seed=6)[0]
    assert a == b and a != c


def test_exact_refused_when_too_large():
    ctx = Context(64, 4)
    with pytest.raises(ValueError, match="use Monte Carlo"):
        from certify.experiments.scrub import choose_method
        choose_method("exact", [HYPOTHESES["full"]], ctx)


# ---- the head-to-head ------------------------------------------------------------------

def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486832980505138)  # scipy's value
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_model):
    """A model store holding the small model as seeds 1 and 2 (no training in the tests below)."""
    from certify.modelio.weights import save_model
    from certify.modelio.store import model_stem
    root = tmp_path_factory.mktemp("scrub_models")
    for seed in (1, 2):
        save_model(model_stem(root, SMALL, seed), SMALL, small_model, {"seed": seed})
    return root


def test_scrub_sweep_then_report(tmp_path, store):
    out = tmp_path / "scrub.csv"
    info = scrub_sweep([1, 2], ["full", "value-max-only", "keys-any"], out, d_vocab=6, k=3, d_model=8, d_head=8,
                       models_dir=store, samples=1000, progress=False)
    rows = list(csv.DictReader(out.open()))
    assert info["rows_written"] == 6 and {r["method"] for r in rows} == {"exact"}
    again = scrub_sweep([1, 2], ["full", "value-max-only", "keys-any"], out, d_vocab=6, k=3, d_model=8, d_head=8,
                        models_dir=store, samples=1000, progress=False)
    assert again["rows_written"] == 0 and again["rows_skipped"] == 6
    proofs = tmp_path / "results.csv"
    with proofs.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["seed", "strategy", "ratio"])
        w.writeheader()
        for seed, strat, ratio in [(1, "bruteforce", 1.0), (2, "bruteforce", 1.0), (1, "subcubic", 0.5),
                                   (2, "subcubic", 0.7), (1, "subcubic/exact/row/each", 0.0),
                                   (2, "subcubic/exact/row/each", 0.1)]:
            w.writerow({"seed": seed, "strategy": strat, "ratio": ratio})
    rep = scrub_report(proofs, out, tmp_path / "report")
    assert rep["pairs"] == 6 and (tmp_path / "report" / "scrub_vs_bound.png").stat().st_size > 0
    # old strategy names in a results file are read through the aliases
    assert "| keys-any | gap/exact/row/each | 2 |" in (tmp_path / "report" / "scrub.md").read_text()


def test_cli_scrub_json(tmp_path, store):
    proc = subprocess.run([sys.executable, "-m", "certify", "scrub", "--seed", "1", "--k", "3", "--d-vocab", "6",
                           "--d-model", "8", "--d-head", "8", "--models-dir", str(store), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    res = {r["hypothesis"]: r for r in obj["results"]}
    assert set(res) == set(HYPOTHESES) and res["full"]["recovered"] == 1.0
    assert all(r["method"] == "exact" for r in res.values())
    proc = subprocess.run([sys.executable, "-m", "certify", "scrub", "--seed", "1", "--hypothesis", "nosuch",
                           "--models-dir", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown hypothesis" in proc.stderr
