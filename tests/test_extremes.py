"""Edge-of-domain soundness (issue 18): every proof of both architectures on models at
every float32 magnitude (subnormal to near float32 max, attention-score spreads up to
1e38) and on sum-linear tables built to tie exactly while their float sums differ,
K from 2 to 16, against ground truth computed independently (`references`: exact
Fraction counts, mpmath means). Each class keeps a small hypothesis sample here; the
large runs are `benchmarks/soundness.py --suite extremes`."""

import json
import subprocess
import sys
from fractions import Fraction

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from certify.modelio.model import Config
from certify.modelio.sumlinear import SumLinearConfig
from certify.proofs import sumlinear_proofs as sl
from certify.proofs.loss import LossResult, enclose_sum, log1p_exp_neg_upper, loss_from_logits
from certify.proofs.loss_maxk import prove_loss_many
from extremes import (MAGNITUDES, maxk_extreme, maxk_violations, sumlinear_extreme, sumlinear_integer_tie,
                      sumlinear_tie, sumlinear_violations)
from references import exact_count_sumlinear, mp_mean_loss_maxk

SLOW = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAXK_CONFIGS = [Config(5, 2, 8, 8), Config(4, 3, 8, 4)]


def sumlinear_accuracy_counts(w, K: int) -> dict[str, int]:
    d = w["unembedding.weight"].shape[0]
    names = ["symmetry"] + (["bruteforce"] if d ** K <= 1 << 16 else [])
    return {r["strategy"]: r["count"] for r in sl.prove_accuracy(w, K, names)}


# ------------------------------------------------------------------ sum-linear: ties in the float sums
def test_pinned_float_sum_tie_is_not_counted():
    """d_vocab 2, K 16: the inputs with c0 zeros and c1 ones tie exactly; before the fix
    both proofs counted them correct (63020 of 65536, true count 58652)."""
    w = sumlinear_tie(2, 16, 4)
    truth = exact_count_sumlinear(w, 16)
    assert truth == 58652
    assert sumlinear_accuracy_counts(w, 16) == {"symmetry": truth, "bruteforce": truth}


@SLOW
@given(K=st.integers(2, 16), d=st.sampled_from([2, 3]), seed=st.integers(0, 10 ** 6),
       big=st.sampled_from([None, 10]))
def test_sumlinear_accuracy_on_float_sum_ties_is_the_exact_count(K, d, seed, big):
    assert not sumlinear_violations(sumlinear_tie(d, K, seed, big), K, loss=False)


@SLOW
@given(K=st.integers(2, 6), seed=st.integers(0, 10 ** 6))
def test_sumlinear_loss_on_float_sum_ties_is_sound(K, seed):
    assert not sumlinear_violations(sumlinear_tie(2, K, seed), K)


@SLOW
@given(K=st.integers(2, 8), seed=st.integers(0, 10 ** 6))
def test_sumlinear_integer_ties(K, seed):
    w = sumlinear_integer_tie(3, seed)
    assert not sumlinear_violations(w, K, loss=K <= 4)


# ------------------------------------------------------------------ sum-linear: magnitudes
@SLOW
@given(kind=st.sampled_from(["subnormal", "1e-30", "1e30", "near-max"]), K=st.integers(2, 16),
       seed=st.integers(0, 10 ** 6), level=st.floats(0, 1))
def test_sumlinear_accuracy_at_every_magnitude(kind, K, seed, level):
    cfg = SumLinearConfig(3 if K > 8 else 4, K, 4)
    assert not sumlinear_violations(sumlinear_extreme(cfg, kind, seed, level), K, loss=False)


@SLOW
@given(kind=st.sampled_from(["subnormal", "1e-30", "1e30", "near-max"]), K=st.integers(2, 4),
       seed=st.integers(0, 10 ** 6), level=st.floats(0, 1))
def test_sumlinear_loss_at_every_magnitude(kind, K, seed, level):
    w = sumlinear_extreme(SumLinearConfig(4, K, 4), kind, seed, level)
    assert not sumlinear_violations(w, K)


# ------------------------------------------------------------------ Max-of-K: magnitudes and score spreads
@pytest.mark.parametrize("kind", MAGNITUDES)
def test_maxk_every_magnitude_class(kind):
    assert not maxk_violations(MAXK_CONFIGS[0], maxk_extreme(MAXK_CONFIGS[0], kind, 1, 1.0))


@SLOW
@given(kind=st.sampled_from(MAGNITUDES), cfg=st.sampled_from(MAXK_CONFIGS), seed=st.integers(0, 10 ** 6),
       level=st.floats(0, 1))
def test_maxk_sound_at_every_magnitude(kind, cfg, seed, level):
    assert not maxk_violations(cfg, maxk_extreme(cfg, kind, seed, level))


# ------------------------------------------------------------------ no stand-in numbers
def test_enclose_sum_refuses_infinite_errors_instead_of_a_constant():
    assert enclose_sum([1.0, 2.0], [0.0, float("inf")]) is None
    assert enclose_sum([1e308, 1e308], [0.0, 0.0]) is None  # the float block sum overflows


def test_loss_from_logits_is_finite_and_sound_for_huge_spreads():
    import mpmath
    import numpy as np
    logits = np.array([[0.0, 4e37, -3e37], [1e30, -1e30, 0.0], [5.0, 1e20, 1e20 + 2 ** 14]])
    labels = np.array([0, 0, 1])
    loss, err = loss_from_logits(logits, labels, 1e22)
    assert np.all(np.isfinite(err))
    mpmath.mp.prec = 200
    for r in range(3):
        for shift in (-1e22, 1e22):  # any true logits within delta
            row = [mpmath.mpf(float(v)) for v in logits[r]]
            row[labels[r]] += shift
            t = mpmath.log1p(mpmath.fsum(mpmath.exp(v - row[labels[r]]) for j, v in enumerate(row) if j != labels[r]))
            assert abs(mpmath.mpf(loss[r]) - t) <= mpmath.mpf(err[r])


def test_far_margins_do_not_overflow_the_integer_log():
    d = 5
    assert log1p_exp_neg_upper(Fraction(-10 ** 77), d) >= 10 ** 77
    assert log1p_exp_neg_upper(Fraction(-10 ** 77), d) - 10 ** 77 < 2
    assert 0 < log1p_exp_neg_upper(Fraction(10 ** 77), d) < Fraction(1, 2 ** 5000)


def test_a_failed_loss_proof_reports_null_not_zero(monkeypatch):
    from certify.proofs import loss_maxk

    def boom(*_a, **_k):
        raise ArithmeticError("synthetic failure")
    monkeypatch.setattr(loss_maxk, "cubic_loss", boom)
    cfg = MAXK_CONFIGS[0]
    w = maxk_extreme(cfg, "1e-30", 0)
    r = {x.strategy: x for x in prove_loss_many(cfg, w, ["bruteforce", "cubic"], on_error="record")}["cubic"]
    assert r.error and r.upper is None and r.bound is None and r.ratio is None
    assert r.to_dict()["loss_bound"] is None and r.to_dict()["loss_upper_rational"] is None
    assert LossResult.failed("x", "why").to_dict()["loss_bound"] is None


def test_cli_loss_at_near_float32_max(tmp_path):
    """W_U near 3e38: the brute force certified 2.8e28 (the stand-in 1e30 / d^K) below a
    true mean of about 6.5e37, and cubic/gap reported loss_bound 0.0 after an
    OverflowError; now every strategy bounds the mpmath mean."""
    from test_import import tl_config, tl_state
    cfg = Config(6, 2, 8, 8)
    w = maxk_extreme(cfg, "unembed-near-max", 1, 0.0)
    exact = float(mp_mean_loss_maxk(cfg, w))
    torch.save(tl_state(w), tmp_path / "m.pt")
    (tmp_path / "store").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(tl_config(cfg), default=str))
    out = subprocess.run([sys.executable, "-m", "certify", "prove", "--model", str(tmp_path / "m.pt"), "--config",
                          str(tmp_path / "config.json"), "--models-dir", str(tmp_path / "store"), "--metric", "loss",
                          "--strategy", "bruteforce,cubic,gap", "--json"], capture_output=True, text=True)
    data = json.loads(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    for r in data["results"]:
        assert r["loss_bound"] is not None and r["loss_bound"] >= exact * (1 - 1e-12), r["strategy"]


@pytest.mark.parametrize("K", [21, 24])
def test_sumlinear_large_K_multiplicities_and_weights_stay_exact(K):
    """K! and the convexity weights m^(K-1) exceed int64 here: exact integers, not wrapped."""
    assert not sumlinear_violations(sumlinear_integer_tie(3, K), K)
