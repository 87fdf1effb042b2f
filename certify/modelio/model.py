"""The Max-of-K transformer: one layer, one head, attention only.

No LayerNorm, no biases, learned positional embedding, causal attention scaled by
1/sqrt(d_head). The prediction is the argmax of the logits at the LAST position and
the label is max(tokens). Weight names follow TransformerLens, with the single head's
axis dropped (`certify.importers` reads TransformerLens checkpoints): W_E [d_vocab, d_model], W_pos [n_ctx, d_model], W_Q/W_K/W_V
[d_model, d_head], W_O [d_head, d_model], W_U [d_model, d_vocab].
"""

from __future__ import annotations

import math

import torch

from .config import WEIGHT_NAMES, Config, ModelError  # torch-free, re-exported here

__all__ = ["WEIGHT_NAMES", "Config", "ModelError", "Weights", "validate_weights", "init_weights",
           "forward_logits", "all_forward_logits"]

Weights = dict[str, torch.Tensor]


def validate_weights(cfg: Config, weights: Weights) -> Weights:
    """Check names, shapes, dtype float32 and finiteness; name the offending tensor."""
    missing = [n for n in WEIGHT_NAMES if n not in weights]
    if missing:
        raise ModelError(f"missing weight tensor(s): {', '.join(missing)}")
    extra = sorted(set(weights) - set(WEIGHT_NAMES))
    if extra:
        raise ModelError(f"unexpected weight tensor(s): {', '.join(extra)}")
    for name, shape in cfg.shapes().items():
        w = weights[name]
        if not isinstance(w, torch.Tensor):
            raise ModelError(f"{name}: expected a tensor, got {type(w).__name__}")
        if w.dtype != torch.float32:
            raise ModelError(f"{name}: dtype must be float32, got {w.dtype}")
        if tuple(w.shape) != shape:
            raise ModelError(f"{name}: shape must be {list(shape)}, got {list(w.shape)}")
        if not bool(torch.isfinite(w).all()):
            raise ModelError(f"{name}: contains NaN or infinite values")
    return weights


def init_weights(cfg: Config, generator: torch.Generator) -> Weights:
    """TransformerLens' GPT-2 style init: every W_* ~ N(0, 0.8/sqrt(d_model)).

    The scale matters: it is the paper's (TransformerLens default) and PyTorch's
    default Linear init gives a different starting point.
    """
    std = 0.8 / math.sqrt(cfg.d_model)
    return {
        name: (torch.randn(shape, generator=generator, dtype=torch.float32) * std)
        for name, shape in cfg.shapes().items()
    }


def forward_logits(weights: Weights, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at the last position, [batch, d_vocab], by a plain forward pass."""
    W_E, W_pos = weights["W_E"], weights["W_pos"]
    n = tokens.shape[-1]
    resid = W_E[tokens] + W_pos[:n]  # [b, n, d_model]
    q = resid[:, -1:, :] @ weights["W_Q"]  # only the last query matters
    k = resid @ weights["W_K"]
    v = resid @ weights["W_V"]
    d_head = weights["W_Q"].shape[1]
    scores = (q @ k.transpose(1, 2)) / math.sqrt(d_head)  # causal: last row sees all
    attn = torch.softmax(scores, dim=-1)
    out = (attn @ v) @ weights["W_O"]
    return (resid[:, -1, :] + out[:, 0, :]) @ weights["W_U"]


def all_forward_logits(weights: Weights, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at every position with causal masking (for training diagnostics)."""
    W_E, W_pos = weights["W_E"], weights["W_pos"]
    n = tokens.shape[-1]
    resid = W_E[tokens] + W_pos[:n]
    q, k, v = resid @ weights["W_Q"], resid @ weights["W_K"], resid @ weights["W_V"]
    scores = (q @ k.transpose(1, 2)) / math.sqrt(weights["W_Q"].shape[1])
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    return (resid + (torch.softmax(scores, dim=-1) @ v) @ weights["W_O"]) @ weights["W_U"]
