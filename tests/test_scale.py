"""The proofs at scale hold one query's slice of Y and G (O(d_vocab^2 K)), never the
d_vocab^3 K tables: the slices are the full tables' entries, bit for bit, and the
certified counts are the ones the full-table code gave (pinned below)."""

from __future__ import annotations

import numpy as np
import pytest

from certify.proofs.bruteforce import _max_excluding_self, bruteforce, float_tables
from certify.proofs.exact import path_tables
from certify.proofs.strategies import prove
from models import SMALL_CONFIGS, make_model

# (brute force, cubic) per SMALL_CONFIGS entry for the "trained" and "noisy" models
# (make_model(cfg, kind, index, 0, d_vocab - 1, 0.7)), computed by the code that built
# the whole [d_vocab, K, d_vocab, d_vocab] tables (main at ff5130d)
FULL_TABLE_COUNTS = [((36, 36), (33, 33)), ((335, 335), (295, 258)), ((511, 511), (478, 449)),
                     ((1215, 1081), (1149, 822)), ((984, 980), (867, 834)), ((6480, 6480), (5231, 3453))]


@pytest.mark.parametrize("index", range(len(SMALL_CONFIGS)))
def test_counts_equal_the_full_table_code(index):
    cfg = SMALL_CONFIGS[index]
    for kind, (bf, cubic) in zip(("trained", "noisy"), FULL_TABLE_COUNTS[index]):
        w = make_model(cfg, kind, index, 0, cfg.d_vocab - 1, 0.7)
        assert bruteforce(path_tables(w)).correct == bf
        assert prove(cfg, w, "cubic").count == cubic


@pytest.mark.parametrize("index", [0, 3, 5])
def test_query_slices_are_the_full_tables(index):
    cfg = SMALL_CONFIGS[index]
    tables = path_tables(make_model(cfg, "noisy", index, 0, cfg.d_vocab - 1, 0.7))
    ft = float_tables(tables)
    evou, pvou, eupu = (t.to_float64() for t in (tables.EVOU, tables.PVOU, tables.EUPU))
    Y = (evou[None, None, :, :] + pvou[None, :, None, :]) + eupu[:, None, None, :]  # the old whole table
    G = Y - _max_excluding_self(Y)
    for q in range(cfg.d_vocab):
        assert np.array_equal(ft.Y(q), Y[q]) and np.array_equal(ft.G(q), G[q])
    t = np.arange(cfg.d_vocab)
    q = (t * 5 + 1) % cfg.d_vocab
    for i in range(cfg.n_ctx):
        assert np.array_equal(ft.Y_rows(i, t, q), Y[q, i, t])
