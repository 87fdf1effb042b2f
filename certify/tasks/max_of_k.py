"""max-of-k: every sequence of n_ctx tokens in [0, d_vocab); the label is the largest
token, read at the last position (the Max-of-K convention of Gross et al. 2024 and of
`certify`'s own models: no BOS token, causal attention)."""

from __future__ import annotations

import numpy as np

from .base import Param, TaskSet, all_sequences

PARAMS = {"n_ctx": Param(int, None, "sequence length K (default: the model's n_ctx)"),
          "d_vocab": Param(int, None, "tokens 0 .. d_vocab-1 (default: the model's d_vocab)")}


def build(cfg, n_ctx: int | None = None, d_vocab: int | None = None) -> TaskSet:
    k, v = n_ctx or cfg.n_ctx, d_vocab or cfg.d_vocab
    toks = all_sequences(v, k)
    return TaskSet("max-of-k", {"n_ctx": k, "d_vocab": v}, toks, np.full(len(toks), k - 1), toks.max(axis=1),
                   __doc__)
