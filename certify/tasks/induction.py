"""induction: n_sequences random prefixes of length L = n_ctx // 2 (uniform tokens in
[0, d_vocab), numpy default_rng(seed)), each followed by its copy; in the copy, the
logits at position L + i predict the next token x_{i+1} (i = 0 .. L - 2): every such
position of every sequence is an example (the induction-head task of Olsson et al.)."""

from __future__ import annotations

import numpy as np

from .base import Param, TaskError, TaskSet

PARAMS = {"n_sequences": Param(int, 1000, "number of random sequences"),
          "seed": Param(int, 0, "numpy default_rng seed"),
          "n_ctx": Param(int, None, "sequence length (default: the model's n_ctx)")}


def build(cfg, n_sequences: int = 1000, seed: int = 0, n_ctx: int | None = None) -> TaskSet:
    n = n_ctx or cfg.n_ctx
    L = n // 2
    if L < 2:
        raise TaskError(f"induction needs n_ctx >= 4, got {n}")
    if n_sequences < 1:
        raise TaskError("n_sequences must be positive")
    prefix = np.random.default_rng(seed).integers(0, cfg.d_vocab, size=(n_sequences, L))
    seq = np.concatenate([prefix, prefix], axis=1)
    per = L - 1
    tokens = np.repeat(seq, per, axis=0)
    positions = np.tile(L + np.arange(per), n_sequences)
    labels = prefix[:, 1:].reshape(-1)
    return TaskSet("induction", {"n_sequences": n_sequences, "seed": seed, "n_ctx": n}, tokens, positions, labels,
                   __doc__)
