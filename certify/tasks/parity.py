"""parity: every bit string of n_ctx tokens in {0, 1}; the label is the sum mod 2,
read at the last position (causal: it sees every bit)."""

from __future__ import annotations

import numpy as np

from .base import Param, TaskSet, all_sequences, check_vocab

PARAMS = {"n_ctx": Param(int, None, "number of bits (default: the model's n_ctx)")}


def build(cfg, n_ctx: int | None = None) -> TaskSet:
    n = n_ctx or cfg.n_ctx
    check_vocab("parity", 2, cfg.d_vocab)
    toks = all_sequences(2, n)
    return TaskSet("parity", {"n_ctx": n}, toks, np.full(len(toks), n - 1), toks.sum(axis=1) % 2, __doc__)
