"""FLOPs in the paper's measure for the strategies that are not written in the counting
layer (`sound_linalg`): a matrix product with output n x m and inner size k costs
n m (2k - 1), a reduction over n values n - 1, an elementwise operation 1.

- brute force and cubic already count their float pass one per elementwise operation
  and reduction step; to that we add the matrix products of the path tables they read.
- the gap family's checker counts one big-integer product of Kronecker-packed rows as one
  operation; in the paper's measure that product stands for the scalar multiply-adds it
  packs. We charge the path tables' matrix products in the paper's measure and every
  checker operation once more (so the packed products that form the tables are counted
  twice, at most about 10% of the checker's operations: an over-estimate, never an
  under-estimate of the work).
"""

from __future__ import annotations

from ..modelio.config import Config


def matmul(n: int, k: int, m: int) -> int:
    return n * m * (2 * k - 1)


def path_tables(cfg: Config) -> int:
    """EQKE, EQKP, EVOU, PVOU, EUPU from the weights, as the paper's code forms them."""
    d, k_ctx, dm, dh = cfg.d_vocab, cfg.n_ctx, cfg.d_model, cfg.d_head
    e_q = d * dm  # W_E + W_pos[-1]
    qk = matmul(dm, dh, dm)
    eqk = matmul(d, dm, dm)
    eqke, eqkp = matmul(d, dm, d), matmul(d, dm, k_ctx)
    vou = matmul(dm, dh, dm) + matmul(dm, dm, d)
    evou, pvou = matmul(d, dm, d), matmul(k_ctx, dm, d)
    eupu = matmul(d, dm, d)
    return e_q + qk + eqk + eqke + eqkp + vou + evou + pvou + eupu


def bruteforce(cfg: Config, counted: int) -> int:
    return path_tables(cfg) + counted


def cubic(cfg: Config, counted: int) -> int:
    return path_tables(cfg) + counted


def gap(cfg: Config, checker_ops: int) -> int:
    return path_tables(cfg) + checker_ops
