import pytest

from certify.proofs.bruteforce import bruteforce
from certify.proofs.exact import path_tables
from certify.modelio.model import Config
from certify.modelio.train import TrainParams, train
from helpers import forward_count, random_model, tied_model, top_ties

CONFIGS = [Config(6, 2, 8, 4), Config(7, 3, 8, 8), Config(6, 4, 6, 3), Config(10, 3, 8, 8)]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_forward_pass_on_random_models(cfg, seed):
    w = random_model(cfg, seed, scale=3.0)
    r = bruteforce(path_tables(w))
    assert r.total == cfg.d_vocab ** cfg.n_ctx
    assert r.correct == forward_count(w, cfg)


def test_matches_forward_pass_on_a_trained_model():
    cfg = Config(8, 3, 16, 16)
    w, _ = train(cfg, 5, TrainParams(steps=400))
    r = bruteforce(path_tables(w))
    assert r.correct == forward_count(w, cfg)
    assert r.correct > 0.5 * r.total  # it learned something, so the count is not trivially 0


@pytest.mark.parametrize("cfg", [Config(6, 3, 16, 16), Config(7, 2, 16, 16)])
def test_exact_ties_go_through_the_exact_path_and_count_as_wrong(cfg):
    w = tied_model(cfg, 4)
    r = bruteforce(path_tables(w))
    ties = top_ties(w, cfg)
    assert ties > 0  # the construction really produces exact ties at the top
    assert r.exact_path_inputs >= ties  # each of them was decided exactly ...
    assert r.correct == forward_count(w, cfg)  # ... and counted as wrong


def test_all_logits_equal_means_nothing_is_correct():
    cfg = Config(6, 3, 8, 4)
    w = random_model(cfg, 2)
    w["W_U"][:] = w["W_U"][:, :1]
    r = bruteforce(path_tables(w))
    assert r.correct == 0 and r.exact_path_inputs == r.total


@pytest.mark.parametrize("v,frac", [(1, 1100), (3, 1074), (2**60 + 1, 1100), (5, 10), (2**80 - 1, 90), (0, 50)])
def test_float_enclosures_hold_even_below_the_normal_range(v, frac):
    """Attention weights far below the row maximum must stay enclosed (no silent underflow)."""
    from fractions import Fraction
    from certify.proofs.bruteforce import _ceil_float, _floor_float
    true = Fraction(v, 2 ** frac)
    assert Fraction(_floor_float(v, frac)) <= true <= Fraction(_ceil_float(v, frac))


@pytest.mark.parametrize("scale", [60.0, 200.0, 1e4])
def test_attention_spreads_beyond_the_float_range_neither_crash_nor_go_exact(scale):
    """Scores spread by far more than 1024 (W_Q scaled up): weights below 2^-1074
    relative to the row maximum are rescaled per input, not flushed or raised on."""
    from certify.proofs.strategies import prove_many, strategy_names
    cfg = Config(7, 3, 8, 8)
    w, _ = train(cfg, 1, TrainParams(steps=300))
    w["W_Q"] *= scale
    truth = forward_count(w, cfg)
    r = bruteforce(path_tables(w))
    assert r.correct == truth and r.exact_path_inputs == 0
    for res in prove_many(cfg, w, strategy_names()):
        assert res.count <= truth, res.strategy
