from fractions import Fraction

import mpmath
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from certify.proofs.arith import exp_neg_bounds, exp_neg_bounds_relative, inv_sqrt_bounds, FRAC_BITS
from certify.proofs.exact import dyadic_to_float32, float32_to_dyadic, path_tables
from certify.modelio.model import Config
from helpers import random_model

floats32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(st.lists(floats32, min_size=1, max_size=20))
def test_float32_dyadic_round_trip(values):
    t = torch.tensor(values, dtype=torch.float32)
    d = float32_to_dyadic(t)
    assert torch.equal(dyadic_to_float32(d), t)
    for i, v in enumerate(values):
        assert d.fraction(i) == Fraction(float(t[i]))  # exact, not approximately


def test_path_tables_match_float64():
    cfg = Config(d_vocab=7, n_ctx=3, d_model=5, d_head=4)
    w = {k: v.double() for k, v in random_model(cfg, 0).items()}
    pt = path_tables(random_model(cfg, 0))
    E, P, Q, K, V, O, U = (w[k] for k in ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U"))
    Eq = E + P[-1]
    for got, want in [(pt.EQKE, Eq @ Q @ K.T @ E.T), (pt.EQKP, Eq @ Q @ K.T @ P.T),
                      (pt.EVOU, E @ V @ O @ U), (pt.PVOU, P @ V @ O @ U), (pt.EUPU, Eq @ U)]:
        np.testing.assert_allclose(got.to_float64(), want.numpy(), rtol=1e-12, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.fractions(0, 700), st.fractions(700, 200000)), st.integers(0, 140))
def test_exp_enclosure_contains_true_value(x, b):
    a = int(x * 2**b)  # arguments up to the float64 range, at many scales
    with mpmath.workprec(1200):
        true = mpmath.exp(-mpmath.mpf(a) / mpmath.mpf(2) ** b) * mpmath.mpf(2) ** FRAC_BITS
        lo, hi = exp_neg_bounds(a, b)
        assert lo <= true <= hi
        lo, hi, frac = exp_neg_bounds_relative(a, b)
        true_rel = mpmath.exp(-mpmath.mpf(a) / mpmath.mpf(2) ** b) * mpmath.mpf(2) ** frac
        assert lo <= true_rel <= hi


@given(st.integers(1, 10**6))
def test_inv_sqrt_enclosure(d):
    lo, hi = inv_sqrt_bounds(d)
    with mpmath.workprec(300):
        true = mpmath.mpf(2) ** FRAC_BITS / mpmath.sqrt(d)
        assert lo <= true <= hi and hi - lo <= 1


def test_exp_enclosure_is_tight_where_it_matters():
    lo, hi = exp_neg_bounds(1 << 20, 20)  # exp(-1)
    assert (hi - lo) / lo < 2.0 ** -40
