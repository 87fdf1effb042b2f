"""The paper's family: names, groups, costs, and the sound arithmetic under it."""

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from certify.proofs.paper_subcubic import PAPER_VARIANTS, Shared, Tricks, run_paper_variant
from certify.proofs.sound_linalg import Flops, Iv, counting, iexp, matmul, spectral_norm_upper
from models import SMALL_CONFIGS, make_model


def test_names_and_groups_follow_the_paper():
    assert len(PAPER_VARIANTS) == 100 and len(set(PAPER_VARIANTS)) == 100
    groups = {}
    for n in PAPER_VARIANTS:
        groups.setdefault(Tricks.parse(n).group(), []).append(n)
    assert {g: len(v) for g, v in groups.items()} == {
        "subcubic": 8, "subcubic (direct-quadratic)": 12, "subcubic (attention-d_vocab d_model^2)": 20,
        "subcubic (attention-d_vocab d_model^2, direct-quadratic)": 30, "subcubic (attention-quadratic)": 12,
        "subcubic (attention-quadratic, direct-quadratic)": 18}
    with pytest.raises(ValueError):
        Tricks.parse("subcubic/exact/prefix/each")


def test_unexplained_dimension_from_the_papers_formulas():
    t = Tricks.parse("subcubic/max_diff_exact/mean_query+diff/exact_EQKE+max_diff_exact")
    assert t.unexplained_dimension(64, 32) == 2 * 64 + 64 * 64 + 64 + 64 * 64
    t = Tricks.parse("subcubic/mean_query+max_diff/mean_query+diff/mean+max_diff")
    assert t.unexplained_dimension(64, 32) == (64 + 64 * 32 + 2) + (2 * 64 + 64 + 2 * 32) + 64 + 64 * 64


def test_flops_in_the_papers_measure():
    c = Flops()
    with counting(c):
        matmul(Iv.point(np.ones((3, 5))), Iv.point(np.ones((5, 2))))  # 3 * 2 * (2*5 - 1)
        Iv.point(np.ones((4, 6))).max(axis=1)  # 4 * 5
        Iv.point(np.ones(7)) + Iv.point(np.ones(7))  # 7
    assert c.n == 54 + 20 + 7


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-800, 800, allow_nan=False), min_size=1, max_size=20))
def test_exp_encloses_the_true_value(xs):
    e = iexp(Iv.point(np.array(xs)))
    for x, lo, hi in zip(xs, e.lo, e.hi):
        true = mpmath.exp(mpmath.mpf(x))
        assert lo <= true <= hi


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(1, 6), st.integers(1, 6), st.integers(1, 6))
def test_matmul_encloses_the_exact_product(seed, n, k, m):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, k)) * 10.0 ** rng.integers(-5, 5), rng.normal(size=(k, m))
    c = matmul(Iv.point(a), Iv.point(b))
    for i in range(n):
        for j in range(m):
            exact = sum(Fraction(a[i, t]) * Fraction(b[t, j]) for t in range(k))
            assert Fraction(c.lo[i, j]) <= exact <= Fraction(c.hi[i, j])


def test_spectral_bound_is_above_and_close_to_sigma_1():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 6)), rng.normal(size=(6, 15))
    true = np.linalg.norm(x @ y, 2)
    bound = spectral_norm_upper(Iv.point(x), Iv.point(y))
    assert true <= bound <= 1.05 * true


def test_search_gaps_check_and_costs_are_counted():
    cfg = SMALL_CONFIGS[1]
    w = make_model(cfg, "trained", 0, 0, 0, 0.0)
    s = Shared(w, cfg.d_head)
    r = run_paper_variant(s, PAPER_VARIANTS[0], cfg.d_vocab, cfg.n_ctx, cfg.d_model)
    r2 = run_paper_variant(Shared(w, cfg.d_head), PAPER_VARIANTS[0], cfg.d_vocab, cfg.n_ctx, cfg.d_model)
    assert (r.count, r.flops) == (r2.count, r2.flops)  # deterministic, sharing does not change the cost
    assert r.flops > cfg.d_vocab ** 2 and r.group == "subcubic (attention-d_vocab d_model^2, direct-quadratic)"
