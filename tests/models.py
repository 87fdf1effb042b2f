"""Families of small models for soundness tests: trained, random, and adversarial."""

from __future__ import annotations

from functools import lru_cache

import torch

from certify.modelio.model import Config, Weights
from certify.modelio.train import TrainParams, train
from helpers import random_model

SMALL_CONFIGS = [Config(6, 2, 8, 8), Config(7, 3, 8, 8), Config(8, 3, 16, 16), Config(6, 4, 8, 4),
                 Config(10, 3, 16, 8), Config(9, 4, 12, 12)]
KINDS = ("trained", "random", "swap_unembed", "shrink_unembed", "loud_embedding", "tied_unembed",
         "noisy")


@lru_cache(maxsize=None)
def trained(cfg: Config, seed: int) -> tuple[tuple[str, torch.Tensor], ...]:
    w, _ = train(cfg, seed, TrainParams(steps=600))
    return tuple(sorted(w.items()))


def make_model(cfg: Config, kind: str, seed: int, a: int, b: int, strength: float) -> Weights:
    """A model of the given kind; a, b are token indices (< d_vocab) that the attack targets."""
    if kind == "random":
        return random_model(cfg, seed, scale=0.5 + 3 * strength)
    w = {k: v.clone() for k, v in trained(cfg, seed % 3)}
    if kind == "swap_unembed":  # inputs whose max is a or b are now mostly wrong
        w["W_U"][:, [a, b]] = w["W_U"][:, [b, a]]
    elif kind == "shrink_unembed":  # margins of max-a inputs shrink towards zero: near ties
        w["W_U"][:, a] *= 1.0 - 0.3 * strength
    elif kind == "loud_embedding":  # token a grabs attention wherever it appears
        w["W_E"][a] *= 1.0 + 4 * strength
    elif kind == "tied_unembed":  # logits a and b exactly equal: ties count as wrong
        w["W_U"][:, b] = w["W_U"][:, a]
    elif kind == "noisy":
        g = torch.Generator().manual_seed(seed)
        for k in w:
            w[k] += strength * 0.3 * torch.randn(w[k].shape, generator=g)
    return {k: v.to(torch.float32).contiguous() for k, v in w.items()}
