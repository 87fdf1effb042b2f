"""Small models for tests: random, trained briefly, and constructed with exact ties."""

from __future__ import annotations

import itertools

import torch

from certify.modelio.model import Config, Weights, forward_logits, init_weights


def random_model(cfg: Config, seed: int, scale: float = 1.0) -> Weights:
    w = init_weights(cfg, torch.Generator().manual_seed(seed))
    return {k: (v * scale).to(torch.float32) for k, v in w.items()}


def all_inputs(cfg: Config) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(cfg.d_vocab), repeat=cfg.n_ctx)), dtype=torch.long)


def forward_count(weights: Weights, cfg: Config) -> int:
    """Plain float64 forward pass: correct iff the max token's logit is the unique largest."""
    toks = all_inputs(cfg)
    w64 = {k: v.double() for k, v in weights.items()}
    with torch.no_grad():
        logits = forward_logits(w64, toks)
    label = toks.max(dim=1).values
    right = logits.gather(1, label[:, None])[:, 0]
    others = logits.clone()
    others[torch.arange(len(toks)), label] = -torch.inf
    return int((right > others.max(dim=1).values).sum())


def tied_model(cfg: Config, seed: int) -> Weights:
    """A briefly trained model whose W_U columns 0 and 1 are equal.

    Logits 0 and 1 are then exactly equal on every input; where they are the top two
    (the model is right about inputs whose max is 0 or 1) the input is an exact tie.
    """
    from certify.modelio.train import TrainParams, train
    w, _ = train(cfg, seed, TrainParams(steps=400))
    w["W_U"][:, 1] = w["W_U"][:, 0]
    return w


def top_ties(weights: Weights, cfg: Config) -> int:
    """Inputs whose two largest float64 logits are equal (the float forward pass sees a tie)."""
    toks = all_inputs(cfg)
    with torch.no_grad():
        logits = forward_logits({k: v.double() for k, v in weights.items()}, toks)
    top2 = logits.topk(2, dim=1).values
    return int((top2[:, 0] == top2[:, 1]).sum())
