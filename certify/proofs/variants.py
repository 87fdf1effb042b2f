"""The subcubic family: variants of the gap proof with three knobs, trading tightness
for proof cost. Names: `subcubic/<direct>/<attention>/<positions>`.

- direct path (EUPU): `exact` uses dEU[q][m] from the full EUPU table (cost
  d_vocab^2 d_model); `norm` never forms EUPU and uses
  EUPU[q,m] - EUPU[q,j] = sum_k Eq[q,k] (U[k,m] - U[k,j]) >= -2 |Eq[q]|_1 max|U|
  (cost d_vocab d_model).
- attention: `prefix` bounds the attention of a non-max token t <= s above by the
  prefix max of the EQKE row (the threshold matters) and below by the row's minimum;
  `upper` keeps the prefix max but bounds below by 0 (no row minimum); `row` uses the
  whole row's range (it ignores that attention grows with the token, and certifies
  little).
- positions: `each` keeps every free position's own bound and takes the worst
  placement of the max copies; `worst` bounds every free position by the worst one:
  Q + c min_i A_i + (K-1-c) min_i B_i.

Each variant only weakens a term of the gap proof (module docstring of
certify.checker), so it is sound whenever that proof is; `subcubic/exact/prefix/each`
is exactly the Lean-checked `subcubic`. Variants are searched and checked in Python with
the checker's integer arithmetic; only the default has a Lean certificate. Their cost
counts the checker operations of the parts they use (measured, not estimated).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from .certificate import largest_threshold
from ..lean.checker import (Cert, Ops, build_context, e_up, family_size, get, margin_row, mat_prod,
                      max_abs, max_terms, path_tables, query_term, terms, validate,
                      worst_placement_ok)

DIRECT = ("exact", "norm")
ATTENTION = ("prefix", "upper", "row")
POSITIONS = ("each", "worst")
VARIANTS = [f"subcubic/{d}/{a}/{p}" for d, a, p in itertools.product(DIRECT, ATTENTION, POSITIONS)]


@dataclass(frozen=True)
class Knobs:
    direct: str
    attention: str
    positions: str

    @staticmethod
    def parse(name: str) -> "Knobs":
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "subcubic" or parts[1] not in DIRECT or parts[2] not in ATTENTION \
                or parts[3] not in POSITIONS:
            raise ValueError(f"unknown subcubic variant {name!r}; known: {', '.join(VARIANTS)}")
        return Knobs(*parts[1:])


@dataclass(frozen=True)
class VariantResult:
    count: int
    ops: int
    unexplained_dimension: int
    search_seconds: float
    check_seconds: float
    gaps: list[list[int]]


def _unused_ops(c: Cert, k: Knobs) -> int:
    """Operations of the full context that a variant does not need (measured by running them)."""
    ops = Ops()
    d = c.d_vocab
    if k.direct == "norm":  # the EUPU product and its margins
        Eq = [[x + y for x, y in zip(r, c.W_pos[-1])] for r in c.W_E]
        eupu = mat_prod(Eq, [[x << (2 * c.weight_shift) for x in r] for r in c.W_U], c.width, ops)
        for r in eupu:
            margin_row(r, ops)
    if k.attention == "row":  # the prefix-max tables (running max, packing), less a row-max pass
        ops.n += d * d
    elif k.attention == "upper":  # the row minimum and its exp enclosure, per query
        ops.n += d * (d + 6)
    return ops.n


def direct_norm_bounds(c: Cert, ops: Ops) -> list[int]:
    """dEU lower bound per q without EUPU: -2 |Eq[q]|_1 max|U| 2^(2 weight_shift)."""
    mU = max_abs(c.W_U, ops)
    last = c.W_pos[-1]
    out = []
    for r in c.W_E:
        out.append(-2 * sum(abs(x + y) for x, y in zip(r, last)) * mU << (2 * c.weight_shift))
        ops.n += 2 * len(r) + 2
    return out


def check_variant(q: int, m: int, s: int, k: Knobs, ctx, dEU_qm: int, ops: Ops) -> bool:
    """The gap proof's family check (`certify.checker.check_family`) with the knobs'
    weakenings (see the module docstring)."""
    ops.n += 1
    if s == -2:
        return True
    qi, mi, sc = ctx.queries[q], ctx.maxes[m], ctx.scoring
    total = query_term(ctx.dEV[q][m], dEU_qm, qi, mi, ops)
    A = max_terms(ctx.eqke[q][m], dEU_qm, qi, mi, sc, ops)
    ops.n += 1
    if s == -1:
        ops.n += len(A) + 1
        return total + sum(A) > 0
    if k.attention == "row":
        t_lo, t_hi = qi.t_lo, e_up(sc, 0, ops)
    else:
        t_lo = qi.t_lo if k.attention == "prefix" else 0
        t_hi = e_up(sc, qi.ref - get(qi.pmax, s, ops), ops)
    B = terms(t_lo, t_hi, get(mi.pm_dEV, s, ops) + dEU_qm, qi.pos_e, mi.dPV, ops)
    ops.n += 2
    c_min = 1 if q < m else 0
    if k.positions == "worst":  # every free position bounded by the worst one
        a, b = min(A), min(B)
        n_free = len(A)
        ops.n += 2 * n_free + 3 * (n_free + 1)
        return all(total + c * a + (n_free - c) * b > 0 for c in range(c_min, n_free + 1))
    return worst_placement_ok(total, A, B, c_min, ops)


def run_variant(c: Cert, name: str) -> VariantResult:
    """Search the largest threshold per (q, m) for this variant, then count."""
    k = Knobs.parse(name)
    t0 = time.perf_counter()
    validate(c)
    ops = Ops()
    ctx = build_context(c, path_tables(c, ops), ops)
    base_ops = ops.n - _unused_ops(c, k)
    d, K = c.d_vocab, c.n_ctx
    check_ops = Ops()
    dEU_norm = direct_norm_bounds(c, check_ops) if k.direct == "norm" else None
    gaps = [[-2] * d for _ in range(d)]
    search_ops = Ops()
    for q in range(d):
        dEU_row = ctx.dEU[q] if dEU_norm is None else [dEU_norm[q]] * d
        for m in range(q, d):
            def ok(s: int, o: Ops = search_ops) -> bool:
                return check_variant(q, m, s, k, ctx, dEU_row[m], o)
            gaps[q][m] = largest_threshold(ok, m)
    search_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    count = 0
    for q in range(d):  # the check: one pass over the found witness, counted as the checker's
        dEU_row = ctx.dEU[q] if dEU_norm is None else [dEU_norm[q]] * d
        for m in range(q, d):
            if not check_variant(q, m, gaps[q][m], k, ctx, dEU_row[m], check_ops):
                raise AssertionError(f"{name}: search produced an invalid threshold at ({q}, {m})")
            count += family_size(q, m, gaps[q][m], K)
            check_ops.n += 3
        check_ops.n += d + q
    unexplained = (2 if k.direct == "norm" else 3) * d * d + 2 * K * d
    return VariantResult(count, base_ops + check_ops.n, unexplained, search_seconds,
                         time.perf_counter() - t1, gaps)
