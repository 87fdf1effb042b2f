"""modular-addition: `a b =` with a, b in [0, p) and `=` the token p (d_vocab >= p + 1),
n_ctx = 3, read at the last position (the `=`); the label is (a + b) mod p, or (a - b)
mod p with op=sub. All p^2 inputs (Nanda et al. 2023's convention)."""

from __future__ import annotations

import numpy as np

from .base import Param, TaskError, TaskSet, all_sequences, check_vocab

PARAMS = {"p": Param(int, 113, "the modulus"), "op": Param(str, "add", "add or sub")}


def build(cfg, p: int = 113, op: str = "add") -> TaskSet:
    if op not in ("add", "sub"):
        raise TaskError(f"op must be add or sub, got {op!r}")
    if p < 2:
        raise TaskError(f"p must be at least 2, got {p}")
    check_vocab(f"modular-addition p={p} (and '=')", p + 1, cfg.d_vocab)
    ab = all_sequences(p, 2)
    tokens = np.concatenate([ab, np.full((len(ab), 1), p)], axis=1)
    labels = (ab[:, 0] + ab[:, 1]) % p if op == "add" else (ab[:, 0] - ab[:, 1]) % p
    return TaskSet("modular-addition", {"p": p, "op": op}, tokens, np.full(len(ab), 2), labels, __doc__)
