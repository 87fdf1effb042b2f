"""sort: `x_1 .. x_k SEP y_1 .. y_k` with y = sorted(x) (ascending), values in [0, n_values),
SEP = n_values (so d_vocab >= n_values + 1), n_ctx = 2k + 1. Teacher-forced: the logits at
position k + i (SEP for i = 0) predict y_{i+1}; every one of the k readouts of every
input is an example. All n_values^k inputs."""

from __future__ import annotations

import numpy as np

from .base import Param, TaskError, TaskSet, all_sequences, check_vocab

PARAMS = {"k": Param(int, None, "list length (default (n_ctx - 1) // 2)"),
          "n_values": Param(int, None, "values 0 .. n_values-1 (default d_vocab - 1)")}


def build(cfg, k: int | None = None, n_values: int | None = None) -> TaskSet:
    k = k or (cfg.n_ctx - 1) // 2
    v = n_values or cfg.d_vocab - 1
    if k < 1 or 2 * k + 1 > cfg.n_ctx:
        raise TaskError(f"sort with k={k} needs n_ctx >= {2 * k + 1}, the model has {cfg.n_ctx}")
    check_vocab("sort (values and SEP)", v + 1, cfg.d_vocab)
    xs = all_sequences(v, k)
    ys = np.sort(xs, axis=1)
    seq = np.concatenate([xs, np.full((len(xs), 1), v), ys], axis=1)
    tokens = np.repeat(seq, k, axis=0)
    positions = np.tile(np.arange(k, 2 * k), len(xs))
    labels = ys.reshape(-1)
    return TaskSet("sort", {"k": k, "n_values": v}, tokens, positions, labels, __doc__)
