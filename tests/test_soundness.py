"""No strategy may certify more inputs than are correct (exhaustive ground truth).

Also pins that the test can fail: the strategies certify a substantial count on the
trained models, so an over-count would be visible.
"""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from certify.proofs.bruteforce import bruteforce
from certify.proofs.exact import path_tables
from certify.proofs.paper_subcubic import PAPER_VARIANTS
from certify.proofs.strategies import prove, prove_many
from certify.proofs.variants import VARIANTS
from models import KINDS, SMALL_CONFIGS, make_model

GAP_VARIANTS = [v.replace("subcubic/", "gap/", 1) for v in VARIANTS]
PROOFS = ("cubic", "gap", *GAP_VARIANTS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=st.sampled_from(SMALL_CONFIGS), kind=st.sampled_from(KINDS), seed=st.integers(0, 50),
       a=st.integers(0, 100), b=st.integers(0, 100), strength=st.floats(0, 1))
def test_no_strategy_exceeds_the_exhaustive_count(cfg, kind, seed, a, b, strength):
    a, b = a % cfg.d_vocab, b % cfg.d_vocab
    w = make_model(cfg, kind, seed, a, b, strength)
    truth = bruteforce(path_tables(w)).correct
    for name in PROOFS:
        r = prove(cfg, w, name)
        assert r.count <= truth, (name, kind, r.count, truth)


@pytest.mark.parametrize("cfg", SMALL_CONFIGS)
def test_proofs_certify_most_of_a_trained_model(cfg):
    w = make_model(cfg, "trained", 0, 0, 0, 0.0)
    truth = bruteforce(path_tables(w)).correct
    assert truth > 0.8 * cfg.d_vocab ** cfg.n_ctx
    cubic, sub = prove(cfg, w, "cubic"), prove(cfg, w, "subcubic")  # the old name of `gap` still works
    assert sub.strategy == "gap"
    assert sub.count <= truth and cubic.count <= truth
    assert cubic.count > 0.5 * truth and sub.count > 0.3 * truth  # non-trivial: an over-count would show
    variants = {v: prove(cfg, w, v).count for v in GAP_VARIANTS}
    default = prove(cfg, w, "gap/exact/prefix/each")
    assert (default.count, default.checker_ops) == (sub.count, sub.checker_ops)  # the Lean-checked proof
    assert all(n <= sub.count for n in variants.values())  # every knob only weakens it


def test_swapped_unembedding_is_not_certified():
    cfg = SMALL_CONFIGS[2]
    w = make_model(cfg, "swap_unembed", 0, cfg.d_vocab - 1, cfg.d_vocab - 2, 0.0)
    truth = bruteforce(path_tables(w)).correct
    for name in PROOFS:
        assert prove(cfg, w, name).count <= truth


def test_a_failing_strategy_is_recorded_not_fatal(monkeypatch):
    """`prove --strategy all` reports a strategy that raises; the others still run."""
    from certify.proofs import strategies
    from helpers import random_model
    from certify.modelio.model import Config

    def boom(_p):
        raise OverflowError("synthetic failure")
    monkeypatch.setitem(strategies.STRATEGIES, "boom", boom)
    cfg = Config(6, 3, 8, 8)
    w = random_model(cfg, 1)
    out = strategies.prove_many(cfg, w, ["cubic", "boom", "subcubic"], on_error="record")
    assert [r.error is None for r in out] == [True, False, True]
    assert "synthetic failure" in out[1].error and out[1].count == 0
    with pytest.raises(OverflowError):
        strategies.prove_many(cfg, w, ["boom"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=st.sampled_from(SMALL_CONFIGS), kind=st.sampled_from(KINDS), seed=st.integers(0, 50),
       a=st.integers(0, 100), b=st.integers(0, 100), strength=st.floats(0, 1))
def test_no_paper_variant_exceeds_the_exhaustive_count(cfg, kind, seed, a, b, strength):
    a, b = a % cfg.d_vocab, b % cfg.d_vocab
    w = make_model(cfg, kind, seed, a, b, strength)
    truth = bruteforce(path_tables(w)).correct
    for r in prove_many(cfg, w, PAPER_VARIANTS):
        assert r.count <= truth, (r.strategy, kind, r.count, truth)


def test_paper_variants_certify_a_trained_model():
    cfg = SMALL_CONFIGS[4]
    w = make_model(cfg, "trained", 0, 0, 0, 0.0)
    truth = bruteforce(path_tables(w)).correct
    counts = {r.strategy: r.count for r in prove_many(cfg, w, PAPER_VARIANTS)}
    assert max(counts.values()) <= truth
    best = "subcubic/max_diff_exact/mean_query+diff/exact_EQKE+max_diff_exact"
    assert counts[best] > 0.4 * truth  # non-trivial: an over-count would show
