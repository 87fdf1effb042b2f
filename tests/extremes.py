"""Edge-of-domain model classes for the soundness tests and benchmarks/soundness.py:
float32 weights from subnormal to near float32 max, attention-score spreads up to 1e38,
and sum-linear logit tables built so that the float64 sums of exact ties differ.

Every generator is deterministic in its arguments (seed -> torch.Generator / random.Random)."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import torch

from certify.modelio.model import Config
from certify.modelio.sumlinear import SumLinearConfig, init_weights as sl_init
from helpers import random_model
from references import exact_count_sumlinear, mp_exact_within, mp_mean_loss_sumlinear, mp_truth_maxk, mpf_fraction

F32_MAX = float(np.finfo(np.float32).max)  # 3.4028235e38
NEAR_MAX = 3e38

# name -> (which weights to scale, target max |w|): None scales by a factor instead
MAGNITUDES = ("subnormal", "1e-30", "1e30", "near-max", "spread", "unembed-near-max")


def _scaled(w: torch.Tensor, target_max: float) -> torch.Tensor:
    """w scaled so that its largest entry is about target_max (float32, finite)."""
    top = float(w.abs().max())
    return (w.double() * (target_max / top)).to(torch.float32) if top else w.clone()


def maxk_extreme(cfg: Config, kind: str, seed: int, level: float = 0.5) -> dict[str, torch.Tensor]:
    """A random Max-of-K model with one edge-of-domain feature (`MAGNITUDES`); level in
    [0, 1] picks where in the class's range (e.g. the score spread, 1e5 .. 1e38)."""
    w = random_model(cfg, seed)
    if kind == "subnormal":  # every weight below float32's smallest normal (1.2e-38)
        w = {k: _scaled(v, 1e-39 * 10 ** (-5 * level)) for k, v in w.items()}
    elif kind in ("1e-30", "1e30"):
        w = {k: _scaled(v, float(kind) * 10 ** (2 * level - 1)) for k, v in w.items()}
    elif kind == "near-max":
        w = {k: _scaled(v, NEAR_MAX) for k, v in w.items()}
    elif kind == "spread":  # attention scores spread from 1e5 to about 1e38
        w["W_Q"] = _scaled(w["W_Q"], 10 ** (5 + 33 * level) / max(float((w["W_E"] @ w["W_K"]).abs().max()), 1e-30))
        w["W_Q"] = torch.nan_to_num(w["W_Q"], posinf=NEAR_MAX, neginf=-NEAR_MAX)
    elif kind == "unembed-near-max":  # logits (and per-input losses) far beyond 1e30
        w["W_U"] = _scaled(w["W_U"], NEAR_MAX * 10 ** (-3 * level))
    else:
        raise ValueError(f"unknown magnitude class {kind!r}")
    assert all(bool(torch.isfinite(v).all()) for v in w.values())
    return w


def sumlinear_extreme(cfg: SumLinearConfig, kind: str, seed: int, level: float = 0.5) -> dict[str, torch.Tensor]:
    """A random sum-linear model at one magnitude (`subnormal`, `1e-30`, `1e30`, `near-max`)."""
    w = sl_init(cfg, torch.Generator().manual_seed(seed))
    target = {"subnormal": 1e-39 * 10 ** (-5 * level), "1e-30": 1e-30 * 10 ** (2 * level - 1),
              "1e30": 1e30 * 10 ** (2 * level - 1), "near-max": NEAR_MAX}[kind]
    return {k: _scaled(v, target) for k, v in w.items()}


def sumlinear_tie(d: int, K: int, seed: int, big_exp: int | None = None, tries: int = 48) -> dict[str, torch.Tensor]:
    """Sum-linear weights whose exact logit table ties on purpose while its float sums do not.

    T[t, j] = 2^e + s[t, j] (exactly, as E[j, t] + E[j + d, t] with W = I, U = [I I]) with
    c0 (s[0, 0] - s[0, 1]) = c1 (s[1, 1] - s[1, 0]) for a random split K = c0 + c1 (c1 >= 1):
    every input of c0 zeros and c1 ones has logit 0 = logit 1 exactly (it counts as wrong),
    while the float64 sums of these 53-bit entries round differently (the partial sums
    reach K 2^e). The s are 24-bit integers times 2^(e - 53) (float32, random signs); of
    `tries` candidates the one whose sorted float sums favour logit 1 most is kept (an
    adversarial search with plain numpy sums). Tokens >= 2 get random entries of the same
    form. big_exp=None picks e in [40, 90]; e < 24 gives integer tables summed exactly.
    """
    rng = random.Random(seed)
    e = rng.randrange(40, 91) if big_exp is None else big_exp
    unit = 2.0 ** max(e - 53, 0)
    c1 = rng.randrange(1, K)
    c0 = K - c1
    big = 2.0 ** e

    def small(lo: int = 1 << 22) -> float:
        return rng.choice((-1, 1)) * rng.randrange(lo, 1 << 24) * unit

    def f32(x: float) -> bool:
        return float(np.float32(x)) == x
    best, best_margin = None, -np.inf
    for _ in range(tries):
        s = [[small() for _ in range(d)] for _ in range(d)]
        diff = c1 * rng.randrange(1, (1 << 22) // K) * unit * rng.choice((-1, 1))
        s[0][1] = s[0][0] - diff
        s[1][1] = s[1][0] + c0 * diff / c1
        if not all(f32(x) for x in (s[0][1], s[1][1])):
            continue
        T = np.array([[big + x for x in row] for row in s])
        seq = [0] * c0 + [1] * c1
        L = np.zeros(d)
        for t in seq:
            L = L + T[t]
        if L[1] - L[0] > best_margin:
            best, best_margin = s, L[1] - L[0]
    if best is None:
        raise ValueError("no representable tie found; try another seed")
    E = np.zeros((2 * d, d), dtype=np.float32)
    for t in range(d):
        for j in range(d):
            E[j, t], E[j + d, t] = big, best[t][j]
    Um = np.concatenate([np.eye(d), np.eye(d)], axis=1).astype(np.float32)
    return {"embedding.weight": torch.tensor(E), "linear.weight": torch.eye(2 * d),
            "unembedding.weight": torch.tensor(Um)}


def sumlinear_integer_tie(d: int, seed: int) -> dict[str, torch.Tensor]:
    """Integer-valued tables (exact float sums) with logit 0 = logit 1 on every input
    (column 1 of U equal to column 0): every input with max 0 or 1 is an exact tie."""
    g = torch.Generator().manual_seed(seed)
    dm = d
    w = {"embedding.weight": torch.randint(-8, 9, (dm, d), generator=g).float(),
         "linear.weight": torch.randint(-2, 3, (dm, dm), generator=g).float(),
         "unembedding.weight": torch.randint(-8, 9, (d, dm), generator=g).float()}
    w["unembedding.weight"][1] = w["unembedding.weight"][0]
    return w


# ------------------------------------------------------------------ checks against the references
TIGHT = Fraction(1, 2 ** 100)  # the references' precision (PREC bits), relative


def maxk_violations(cfg: Config, w) -> list[str]:
    """Every Max-of-K accuracy proof (brute force, cubic, gap) against the mpmath count
    and every loss proof against the mpmath mean; a strategy error is a violation too
    (every finite float32 model must get a result)."""
    from certify.proofs.bruteforce import bruteforce
    from certify.proofs.exact import path_tables
    from certify.proofs.loss_maxk import prove_loss_many
    from certify.proofs.strategies import prove_many
    truth, exact = mp_truth_maxk(cfg, w)
    out = []
    count = bruteforce(path_tables(w)).correct
    if count != truth:
        out.append(f"bruteforce counted {count}, true {truth}")
    for r in prove_many(cfg, w, ["cubic", "gap"], on_error="record"):
        if r.error or r.count > truth:
            out.append(f"{r.strategy}: {r.error or f'certified {r.count} > {truth}'}")
    out += _loss_violations(prove_loss_many(cfg, w, ["bruteforce", "cubic", "gap"], on_error="record"), exact)
    return out


def sumlinear_violations(w, K: int, loss: bool = True) -> list[str]:
    """Both sum-linear accuracy proofs (brute force while d^K <= 2^16) against the exact
    Fraction count, and (loss=True) the four loss proofs against the mpmath mean."""
    from certify.proofs import sumlinear_proofs as sl
    d = w["unembedding.weight"].shape[0]
    truth = exact_count_sumlinear(w, K)
    names = ["symmetry"] + (["bruteforce"] if d ** K <= 1 << 16 else [])
    out = [f"{r['strategy']} counted {r['count']}, true {truth}" for r in sl.prove_accuracy(w, K, names)
           if r["count"] != truth]
    if loss:
        proofs = [n for n in sl.LOSS_PROOFS if n != "bruteforce" or d ** K <= 1 << 16]
        out += _loss_violations(sl.prove_loss(w, K, proofs), mp_mean_loss_sumlinear(w, K))
    return out


def _loss_violations(results, exact) -> list[str]:
    out = []
    for r in results:
        if r.error or r.upper is None:
            out.append(f"loss {r.strategy}: {r.error}")
        elif r.upper < mpf_fraction(exact) * (1 - TIGHT):
            out.append(f"loss {r.strategy}: bound {float(r.upper):.6g} < mean {float(exact):.6g}")
        elif r.lower is not None and not mp_exact_within(exact, r.lower, r.upper):
            out.append(f"loss {r.strategy}: [{float(r.lower):.6g}, {float(r.upper):.6g}] misses {float(exact):.6g}")
    return out


MAXK_CONFIGS = [Config(5, 2, 8, 8), Config(4, 3, 8, 4), Config(6, 2, 8, 8)]


def random_case(rng: random.Random):
    """(label, thunk returning its violations) of one model drawn from the edge-of-domain
    classes: a Max-of-K magnitude class, or sum-linear float-sum ties (K 2-16), integer
    ties or magnitudes (K 2-16; loss checked where the mpmath reference is quick)."""
    seed, level = rng.randrange(10 ** 6), rng.random()
    family = rng.choice(("maxk", "maxk", "sl-tie", "sl-int-tie", "sl-magnitude"))
    if family == "maxk":
        cfg, kind = rng.choice(MAXK_CONFIGS), rng.choice(MAGNITUDES)
        return f"maxk {kind} {cfg} seed {seed} level {level:.3f}", lambda: maxk_violations(
            cfg, maxk_extreme(cfg, kind, seed, level))
    K = rng.randrange(2, 17)
    if family == "sl-tie":
        d = rng.choice((2, 3))
        return f"sum-linear float-sum tie d {d} K {K} seed {seed}", lambda: sumlinear_violations(
            sumlinear_tie(d, K, seed), K, loss=K <= 6)
    if family == "sl-int-tie":
        return f"sum-linear integer tie d 3 K {K} seed {seed}", lambda: sumlinear_violations(
            sumlinear_integer_tie(3, seed), K, loss=K <= 4)
    kind = rng.choice(("subnormal", "1e-30", "1e30", "near-max"))
    cfg = SumLinearConfig(3 if K > 8 else 4, K, 4)
    return f"sum-linear {kind} K {K} seed {seed} level {level:.3f}", lambda: sumlinear_violations(
        sumlinear_extreme(cfg, kind, seed, level), K, loss=K <= 4)
