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
certify.lean.checker), so it is sound whenever that proof is; `subcubic/exact/prefix/each`
is exactly the Lean-checked `subcubic`. Variants are searched and checked in Python with
the checker's integer arithmetic; only the default has a Lean certificate. Their cost
counts the checker operations of the parts they use (measured, not estimated).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from .certificate import largest_threshold
from ..lean.checker import (Cert, Ops, build_context, check_family, decode_rows, decoded_weights, e_up, encode_cert,
                      family_size, get, margin_row, max_terms, pack_const, path_tables, query_term, rows_times,
                      signed_rows, pack_row, terms_pre, unpack, validate, worst_placement_ok)

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
    data = encode_cert(c)
    d, w = c.d_vocab, c.width
    if k.direct == "norm":  # the EUPU product and its margins
        mats = decoded_weights(data, Ops())
        base, h = 1 << w, 1 << (data.weight_bits - 1)
        Eq = [[x + y for x, y in zip(r, mats["W_pos"][-1])] for r in mats["W_E"]]
        u_rows = signed_rows([pack_row(r, base, ops) for r in mats["W_U"]], pack_const(h, base, d, ops))
        offset = pack_const(1 << (w - 1), base, d, ops)
        shift = 2 * c.weight_shift
        for z in rows_times(Eq, 2 * h, [(p << shift, n << shift) for p, n in u_rows], ops):
            margin_row(unpack(z, offset, w, d, ops), base, ops)
    if k.attention == "row":  # the prefix-max tables (running max, packing), less a row-max pass
        ops.n += 2 * d * d
    elif k.attention == "upper":  # the row minimum and its exp enclosure, per query
        ops.n += d * (d + 16)
    return ops.n


def direct_norm_bounds(c: Cert, ops: Ops) -> list[int]:
    """dEU lower bound per q without EUPU: -2 |Eq[q]|_1 max|U| 2^(2 weight_shift), plus
    base (the checker's margins are margins + base; this one may be negative: Python only)."""
    mU = max(abs(x) for r in c.W_U for x in r)
    ops.n += len(c.W_U) * len(c.W_U[0])
    last = c.W_pos[-1]
    out = []
    for r in c.W_E:
        out.append((-2 * sum(abs(x + y) for x, y in zip(r, last)) * mU << (2 * c.weight_shift)) + (1 << c.width))
        ops.n += 2 * len(r) + 2
    return out


def check_variant(q: int, m: int, s: int, k: Knobs, ctx, dEU_qm: int, ops: Ops) -> bool:
    """The gap proof's family check (`certify.lean.checker.check_family`) with the knobs'
    weakenings (see the module docstring); s is the threshold, margins are + base and
    terms + T as in the checker."""
    qi, mi, sc = ctx.queries[q], ctx.maxes[m], ctx.scoring
    if (k.attention, k.positions) == ("prefix", "each"):
        return check_family(q, m, s + 2, ctx.eqke[q][m], dEU_qm, ctx.dEV[q][m], qi, mi, sc, ops)
    ops.n += 1
    if s == -2:
        return True
    total = query_term(ctx.dEV[q][m] + mi.dPV_q + dEU_qm, qi, sc, ops)
    A = max_terms(ctx.eqke[q][m], dEU_qm, qi, mi, sc, ops)
    ops.n += 1
    if s == -1:
        ops.n += len(A) + 1
        return total + sum(A) > sc.t_k
    if k.attention == "row":
        pos_lo, t_hi = qi.pos_tlo, e_up(sc, 0, ops)
    else:
        pos_lo = qi.pos_tlo if k.attention == "prefix" else [0] * len(qi.pos_e)
        t_hi = e_up(sc, qi.ref - get(qi.pmax, s, ops), ops)
    B = terms_pre(pos_lo, lambda: t_hi, get(mi.pm_dEV, s, ops) + dEU_qm, qi.pos_e, mi.dPV, sc, ops)
    ops.n += 2
    c_min = 1 if q < m else 0
    if k.positions == "worst":  # every free position bounded by the worst one (each + T)
        a, b = min(A), min(B)
        n_free = len(A)
        ops.n += 2 * n_free + 3 * (n_free + 1)
        return all(total + c * a + (n_free - c) * b > (n_free + 1) * sc.t_off for c in range(c_min, n_free + 1))
    return worst_placement_ok(total, A, B, c_min, sc, ops)


def run_variant(c: Cert, name: str) -> VariantResult:
    """Search the largest threshold per (q, m) for this variant, then count."""
    k = Knobs.parse(name)
    t0 = time.perf_counter()
    data = encode_cert(c)
    validate(data)
    ops = Ops()
    ctx = build_context(data, path_tables(data, ops), ops)
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
    enc = encode_cert(type(c)(**{**c.__dict__, "gaps": gaps}))
    decode_rows(enc.gaps, enc.gap_bits, d, d, check_ops)  # the checker decodes the witness
    for q in range(d):  # the check: one pass over the found witness, counted as the checker's
        dEU_row = ctx.dEU[q] if dEU_norm is None else [dEU_norm[q]] * d
        for m in range(q, d):
            if not check_variant(q, m, gaps[q][m], k, ctx, dEU_row[m], check_ops):
                raise AssertionError(f"{name}: search produced an invalid threshold at ({q}, {m})")
            count += family_size(q, m, gaps[q][m] + 2, K, check_ops)
            check_ops.nat += 1
        check_ops.nat += d + q
    unexplained = (2 if k.direct == "norm" else 3) * d * d + 2 * K * d
    return VariantResult(count, base_ops + check_ops.n, unexplained, search_seconds,
                         time.perf_counter() - t1, gaps)
