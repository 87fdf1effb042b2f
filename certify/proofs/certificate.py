"""From a model and a witness to a `Cert` (the checker's input), and the gap search.

Data flow: float32 weights -> exact integers with one power-of-two scale -> the
witness found by search -> `Cert`, which the checker (Python mirror or Lean) re-checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

from .arith import inv_sqrt_bounds
from ..lean.checker import (ISQ_FRAC, Cert, Ops, build_context, check_family, encode_cert,
                      family_size, path_magnitudes, path_tables, validate)
from .exact import exact_weights
from ..modelio.model import WEIGHT_NAMES, Config, Weights


def cert_from_weights(cfg: Config, weights: Weights, gaps: list[list[int]] | None = None) -> Cert:
    """All weights as integers times one 2^-weight_shift; the packing width that fits."""
    ex = exact_weights(weights)
    e = min(min(d.exp for d in ex.values()), 0)
    ints = {n: [[int(v) for v in row] for row in ex[n].align(e).ints] for n in WEIGHT_NAMES}
    lo, hi = inv_sqrt_bounds(cfg.d_head, ISQ_FRAC)
    d = cfg.d_vocab
    gaps = gaps if gaps is not None else [[-2] * d for _ in range(d)]
    cert = Cert(cfg.d_vocab, cfg.n_ctx, cfg.d_model, cfg.d_head, -e, *(ints[n] for n in WEIGHT_NAMES),
                width=2, isq_lo=lo, isq_hi=hi, gaps=gaps)
    return replace(cert, width=needed_width(cert))


def needed_width(c: Cert) -> int:
    """The smallest multiple of 8 above every magnitude bound of `path_magnitudes` (then
    every unpacked and packed table fits): b < 2^(width-1) iff b.bit_length() < width."""
    biggest = max(path_magnitudes(encode_cert(c), Ops()))
    return (biggest.bit_length() // 8 + 1) * 8


@dataclass(frozen=True)
class GapSearch:
    gaps: list[list[int]]
    count: int
    search_seconds: float


def search_gaps(c: Cert) -> GapSearch:
    """For each (q, m), the largest threshold s whose family checks."""
    t0 = time.perf_counter()
    data = encode_cert(c)
    validate(data)
    ops = Ops()
    ctx = build_context(data, path_tables(data, ops), ops)
    d, K = c.d_vocab, c.n_ctx
    gaps = [[-2] * d for _ in range(d)]
    count = 0
    for q in range(d):
        qi = ctx.queries[q]
        for m in range(q, d):
            def ok(s: int) -> bool:  # the checker reads g = s + 2
                return check_family(q, m, s + 2, ctx.eqke[q][m], ctx.dEU[q][m], ctx.dEV[q][m], qi,
                                    ctx.maxes[m], ctx.scoring, ops)
            gaps[q][m] = largest_threshold(ok, m)
            count += family_size(q, m, gaps[q][m] + 2, K, ops)
    return GapSearch(gaps, count, time.perf_counter() - t0)


def largest_threshold(ok: Callable[[int], bool], m: int) -> int:
    """The largest s in [-1, m-1] with ok(s), or -2 if none (binary search).

    Valid because every family check is monotone in s: a larger threshold admits more
    tokens, which only lowers every bound (and s = -1 is implied by any s >= 0).
    """
    if not ok(-1):
        return -2
    lo, hi = -1, m - 1  # ok(lo) holds
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
