"""Accuracy ESTIMATE by stratified sampling, for K where d_vocab^K is out of reach.

Never a certified number: it is labelled `estimate` everywhere it appears. Strata are
the max token m, whose probability ((m+1)^K - m^K) / d^K is exact; within a stratum
inputs are drawn uniformly (rejection-free: choose the positions holding m, then the
rest below m), classified by a float64 forward pass, and combined with a normal
95% confidence interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..modelio.model import Config, Weights, forward_logits


@dataclass(frozen=True)
class Estimate:
    accuracy: float
    ci_low: float
    ci_high: float
    samples: int


def sample_with_max(cfg: Config, m: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """n inputs uniform among those with max exactly m."""
    K = cfg.n_ctx
    if m == 0:
        return torch.zeros(n, K, dtype=torch.long)
    # number of m's: P(j copies) proportional to C(K, j) m^(K-j)
    weights = torch.tensor([math.comb(K, j) * float(m) ** (K - j) for j in range(1, K + 1)], dtype=torch.float64)
    copies = torch.multinomial(weights, n, replacement=True, generator=gen) + 1
    toks = torch.randint(0, m, (n, K), generator=gen)
    order = torch.rand(n, K, generator=gen).argsort(dim=1)
    is_max = torch.arange(K)[None, :] < copies[:, None]
    place = torch.zeros(n, K, dtype=torch.bool).scatter(1, order, is_max)
    return torch.where(place, torch.full_like(toks, m), toks)


def estimate_accuracy(weights: Weights, cfg: Config, seed: int = 0, per_stratum: int = 2000) -> Estimate:
    gen = torch.Generator().manual_seed(seed)
    d, K = cfg.d_vocab, cfg.n_ctx
    w64 = {k: v.double() for k, v in weights.items()}
    acc, var = 0.0, 0.0
    for m in range(d):
        p_m = ((m + 1) ** K - m ** K) / d ** K
        toks = sample_with_max(cfg, m, per_stratum, gen)
        with torch.no_grad():
            logits = forward_logits(w64, toks)
        right = logits[:, m].clone()
        logits[:, m] = -torch.inf
        frac = float((right > logits.max(dim=1).values).double().mean())
        acc += p_m * frac
        var += p_m ** 2 * frac * (1 - frac) / per_stratum
    half = 1.96 * math.sqrt(var)
    return Estimate(acc, max(0.0, acc - half), min(1.0, acc + half), per_stratum * d)
