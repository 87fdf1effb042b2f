"""balanced-parens: every string of n_ctx parentheses, token 0 = '(' and 1 = ')'; the
label is 1 when balanced (depth never negative, ends at 0), else 0; read at the last
position (readout=last, for causal models) or the first (readout=first, Redwood's
bidirectional classifier convention, without their BOS token)."""

from __future__ import annotations

import numpy as np

from .base import Param, TaskError, TaskSet, all_sequences, check_vocab

PARAMS = {"n_ctx": Param(int, None, "string length (default: the model's n_ctx)"),
          "readout": Param(str, "last", "last or first")}


def build(cfg, n_ctx: int | None = None, readout: str = "last") -> TaskSet:
    n = n_ctx or cfg.n_ctx
    if readout not in ("last", "first"):
        raise TaskError(f"readout must be last or first, got {readout!r}")
    check_vocab("balanced-parens", 2, cfg.d_vocab)
    toks = all_sequences(2, n)
    depth = np.cumsum(np.where(toks == 0, 1, -1), axis=1)
    balanced = (depth.min(axis=1) >= 0) & (depth[:, -1] == 0)
    pos = np.full(len(toks), n - 1 if readout == "last" else 0)
    return TaskSet("balanced-parens", {"n_ctx": n, "readout": readout}, toks, pos, balanced.astype(np.int64), __doc__)
