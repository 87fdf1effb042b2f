"""group-composition: the symmetric group S_n, elements numbered by the lexicographic
order of their permutations (itertools.permutations); `g h =` with `=` the token n!
(d_vocab >= n! + 1), n_ctx = 3, read at the last position; the label is the number of
g o h, (g o h)(i) = g(h(i)). All (n!)^2 inputs (Chughtai et al. 2023)."""

from __future__ import annotations

import itertools

import numpy as np

from .base import Param, TaskError, TaskSet, check_vocab

PARAMS = {"n": Param(int, 3, "S_n (n <= 5)")}


def build(cfg, n: int = 3) -> TaskSet:
    if not 1 <= n <= 5:
        raise TaskError(f"n must be between 1 and 5, got {n}")
    perms = list(itertools.permutations(range(n)))
    index = {p: i for i, p in enumerate(perms)}
    size = len(perms)
    check_vocab(f"S_{n} ({size} elements and '=')", size + 1, cfg.d_vocab)
    g, h = np.divmod(np.arange(size * size), size)
    labels = [index[tuple(perms[a][perms[b][i]] for i in range(n))] for a, b in zip(g, h)]
    tokens = np.stack([g, h, np.full(size * size, size)], axis=1)
    return TaskSet("group-composition", {"n": n}, tokens, np.full(size * size, 2), np.array(labels), __doc__)
