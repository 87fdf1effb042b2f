"""The certificate checker, in Python: a function-for-function mirror of the Lean
library `lean/MaxKCert/Checker.lean` (Lean names in brackets), with the same integer
semantics (Python `>>` on int and Lean `Int.shiftRight` are both floor; `//` is floor
division by a positive number, Lean `Int.fdiv`/`Nat.div`).

WHAT A PASSING CHECK MEANS. `check(cert, N)` is True only if, for the Max-of-K model
whose weights are the integers in `cert` times 2^-weight_shift, at least N of the
d_vocab^K inputs are classified correctly: the logit of the max token is strictly
larger than every other logit at the last position (ties count as wrong).

THE PROOF (the "gap" proof; its witness is the table s[q][m]). For query token q (the
last token), max token m >= q and threshold s in {-2, -1, 0, .., m-1}, the family
F(q, m, s) is every input with last token q, max m, and all other "free" tokens in
{m} u [0, s] (s = -1: all free tokens equal m; s = -2: the empty family). For any
input in it and any j != m, with e_i = exp(score_i / sqrt(d_head)) > 0:

  Z (logit_m - logit_j) = sum_i e_i (EVOU[t_i,m] - EVOU[t_i,j] + PVOU[i,m] - PVOU[i,j]
                                     + EUPU[q,m] - EUPU[q,j])
                       >= sum_i e_i w_i,   w_i = dEV[t_i][m] + dPV[i][m] + dEU[q][m],

where dX[r][m] = X[r,m] - max_{j != m} X[r,j] (each bracket is >= its d-value). The
query position contributes e_q w_q exactly (lower-bounded through enclosures of e);
a free position holding m contributes A_i <= e_i w_i; a free position holding t <= s
contributes B_i <= e_i w_i, where B_i uses min_{t<=s} dEV[t][m] and the range of
e_i over t <= s (exp is monotone: the prefix max of the EQKE row bounds it above, the
row's minimum below).
The worst placement of c max copies gives Q + sum_i B_i + (the c smallest A_i - B_i);
if that is > 0 for every possible c, every input of F(q, m, s) is correct. Families
of different (q, m) are disjoint, so the certified count is the sum of their sizes.

Mathematical facts used: exp is positive and increasing; the Lagrange remainder of
exp's Taylor series; 1/sqrt(d) lies between the rationals a, b with a^2 d <= 1 <= b^2 d.

Kernel-friendly design: matrix products by Kronecker packing (a row times a matrix is
a few big-integer multiply-adds, the matrix's rows packed into one integer each; chained
products stay packed and only the final tables are unpacked), and tables read by O(1)
shift-and-mask lookups into one packed natural number, so the kernel's work is
~O(d_vocab^2 K) instead of O(d_vocab^2 d_model) list walks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .arith import EXP_CLAMP, exp_neg_bounds

EXP_FRAC = 128  # fixed-point bits of the exp tables [expFrac]
EXP_RES = 9  # exp tables step: arguments are multiples of 2^-9 [expRes]
EXP_STEPS = 1 << EXP_RES  # entries of the fine table per unit of argument
EXP_UNITS = EXP_CLAMP  # coarse table covers exp(-0) .. exp(-64)
ISQ_FRAC = 64  # fixed-point bits of the 1/sqrt(d_head) enclosure [isqFrac]


@dataclass
class Ops:
    """Operations performed, as the kernel would: one per arithmetic/compare/lookup step,
    split into Nat operations (Nat arithmetic on literals, and list-walk steps) and Int
    operations (benchmarks/kernel_work.py weighs them). `n` is the total; adding to `n`
    counts Int operations.
    """
    nat: int = 0
    int: int = 0

    @property
    def n(self) -> int:
        return self.nat + self.int

    @n.setter
    def n(self, value: int) -> None:
        self.int += value - self.n


@dataclass(frozen=True)
class Cert:
    """What a certificate holds [Cert]. Weights are integers times 2^-weight_shift."""
    d_vocab: int
    n_ctx: int
    d_model: int
    d_head: int
    weight_shift: int  # weights are integers times 2^-weight_shift (>= 0)
    W_E: list[list[int]]
    W_pos: list[list[int]]
    W_Q: list[list[int]]
    W_K: list[list[int]]
    W_V: list[list[int]]
    W_O: list[list[int]]
    W_U: list[list[int]]
    width: int  # packing width in bits [width]
    isq_lo: int  # 1/sqrt(d_head) in [isq_lo, isq_hi] / 2^ISQ_FRAC
    isq_hi: int
    gaps: list[list[int]]  # the witness: threshold s[q][m]


@dataclass
class Verdict:
    ok: bool
    count: int
    reason: str
    ops: int = 0


class Reject(Exception):
    """The certificate does not check; the message says why."""


# ---------------------------------------------------------------- small helpers
def max_list(xs: list[int], ops: Ops) -> int:  # [maxList]
    ops.n += len(xs)
    return max(xs)


def min_list(xs: list[int], ops: Ops) -> int:  # [minList]
    ops.n += len(xs)
    return min(xs)


def max_abs(rows: list[list[int]], ops: Ops) -> int:  # [maxAbs]
    return max_list([max_list([abs(x) for x in r], ops) for r in rows], ops)


def shape_ok(rows: list[list[int]], n: int, p: int) -> bool:  # [shapeOk]
    return len(rows) == n and all(len(r) == p for r in rows)


# ---------------------------------------------------------------- packing
def pack_row(row: list[int], base: int, ops: Ops) -> int:
    """sum_j row[j] base^j, Horner from the end [packRow]."""
    acc = 0
    for x in reversed(row):
        acc = x + acc * base
        ops.n += 1
    return acc


def pack_cols(rows: list[list[int]], base: int, ops: Ops) -> list[int]:
    """out[k] = sum_r rows[r][k] base^r: the columns of `rows`, each packed [packCols]."""
    acc = [0] * len(rows[0])
    for r in reversed(rows):
        acc = [x + a * base for x, a in zip(r, acc)]
        ops.n += len(r)
    return acc


def digits(u: int, width: int, p: int, ops: Ops) -> list[int]:
    """The p low base-2^width digits of the natural u, each minus 2^(width-1) [digits]."""
    half, base = 1 << (width - 1), 1 << width
    out = []
    for _ in range(p):
        out.append(u % base - half)
        u //= base
        ops.n += 1
    return out


def unpack_offset(width: int, p: int, ops: Ops) -> int:
    """sum_j 2^(width-1) 2^(width j) over p digits [unpackOffset]."""
    return pack_row([1 << (width - 1)] * p, 1 << width, ops)


def unpack(v: int, offset: int, width: int, p: int, ops: Ops) -> list[int]:
    """The p balanced base-2^width digits of v, each in [-2^(width-1), 2^(width-1)) [unpack].

    Correct when v = sum_j c_j 2^(width j) with every |c_j| < 2^(width-1): then
    v + offset (offset = `unpack_offset(width, p)`) has the plain digits c_j + 2^(width-1).
    """
    ops.n += 1
    return digits(v + offset, width, p, ops)


def dot_packed(row: list[int], packed: list[int], ops: Ops) -> int:
    """sum_k row[k] packed[k] [dotPacked]: if packed[k] packs row k of B, this packs row @ B."""
    ops.n += len(row)
    return sum(x * b for x, b in zip(row, packed))


def rows_times(a: list[list[int]], packed: list[int], ops: Ops) -> list[int]:
    """[dot_packed(r, packed) for r in a] [rowsTimes]: the packed rows of A @ B."""
    return [dot_packed(r, packed, ops) for r in a]


def cols_times(m: list[list[int]], packed: list[int], ops: Ops) -> list[int]:
    """out[h] = sum_k m[k][h] packed[k] [colsTimes]: the packed rows of M^T @ B."""
    acc = [0] * len(m[0])
    for row, v in zip(m, packed):
        acc = [a + x * v for a, x in zip(acc, row)]
        ops.n += len(row)
    return acc


def path_magnitudes(c: "Cert", ops: Ops) -> list[int]:
    """Bounds on |entries| of the five path tables [magnitudesFitWith]: an entry of a
    product of matrices is at most the product of their inner dimensions and of their
    largest magnitudes. Intermediate products stay packed (never unpacked), and packing
    is a ring identity, so only the final tables' digits must fit.
    """
    mE, mP, mQ, mK, mV, mO, mU = (max_abs(getattr(c, n), ops) for n in
                                  ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U"))
    dm, dh = c.d_model, c.d_head
    attn = dm * (mE + mP) * dm * mQ * dh * mK  # |EQKE| <= attn mE, |EQKP| <= attn mP
    ov = dm * dh * mV * dm * mO * mU  # |EVOU| <= ov mE, |PVOU| <= ov mP
    ops.nat += 5 * 3
    # dEV = EVOU[t,m] - max_{j != m} EVOU[t,j] is packed too: |dEV| <= 2 ov mE
    return [attn * mE, attn * mP, 2 * ov * mE, ov * mP, (dm * (mE + mP) * mU) << (2 * c.weight_shift)]


def magnitudes_fit(c: "Cert", ops: Ops) -> bool:
    """Every entry of every path table and of dEV has |.| < 2^(width-1), so `unpack` is
    exact and the packed tables read back [magnitudesFit]."""
    return all(b < (1 << (c.width - 1)) for b in path_magnitudes(c, ops))


def mat_prod(a: list[list[int]], b: list[list[int]], width: int, ops: Ops) -> list[list[int]]:
    """a @ b by packing, exact when every entry has |.| < 2^(width-1) (tests and variants)."""
    p = len(b[0])
    offset = unpack_offset(width, p, ops)
    packed = [pack_row(r, 1 << width, ops) for r in b]
    return [unpack(v, offset, width, p, ops) for v in rows_times(a, packed, ops)]


# ---------------------------------------------------------------- packed tables
@dataclass(frozen=True)
class Packed:
    """A list of integers packed into one natural [Packed]: entry k is digit k of
    `value` in base 2^width, minus 2^(width-1). `entries` is the same list, kept so
    that Python reads it without the shift (a test pins `get_by_shift` == `get`).
    """
    value: int
    width: int
    entries: tuple[int, ...]


def pack(xs: list[int], width: int, ops: Ops) -> Packed:
    """Horner over the digits x + 2^(width-1) [pack]. Every caller packs entries with
    |x| < 2^(width-1) (EQKE and dEV entries by `magnitudes_fit`, exp table entries by
    construction), so every digit lies in [0, 2^width) and `get` reads x back.
    """
    half = 1 << (width - 1)
    ops.n += len(xs)
    digits = [x + half for x in xs]
    if width % 8 == 0 and all(0 <= v < (1 << width) for v in digits):  # Horner's number, in linear time
        nb = width // 8
        value = int.from_bytes(b"".join(v.to_bytes(nb, "little") for v in digits), "little")
    else:
        value = 0
        for v in reversed(digits):
            value = v + (value << width)
    return Packed(value, width, tuple(xs))


def get_by_shift(p: Packed, idx: int) -> int:
    """Entry idx the way the kernel computes it: one shift, one mod [get]."""
    return ((p.value >> (idx * p.width)) % (1 << p.width)) - (1 << (p.width - 1))


def get(p: Packed, idx: int, ops: Ops) -> int:
    ops.n += 1
    return p.entries[idx]


# ---------------------------------------------------------------- path tables
@dataclass(frozen=True)
class Tables:
    """Exact integer path tables [Tables]: values are ints times 2^(-4 weight_shift)."""
    EQKE: list[list[int]]
    EQKP: list[list[int]]
    EVOU: list[list[int]]
    PVOU: list[list[int]]
    EUPU: list[list[int]]  # already shifted to the common scale 2^(-4 weight_shift)


def transpose(rows: list[list[int]]) -> list[list[int]]:  # [transpose]
    return [list(c) for c in zip(*rows)]


def path_tables(c: Cert, ops: Ops) -> Tables:
    """The five path tables, exactly [pathTables]. With Eq = E + P[-1] (the query's
    embedding) and EP = [E; P] (keys and values: every token, then every position):

      [EQKE | EQKP] = Eq (W_Q (W_K^T EP^T))   one packed row per query, split into digits
      [EVOU ; PVOU] = EP (W_V (W_O W_U))       one packed row per token / position
      EUPU          = Eq (W_U 2^(2 weight_shift))   brought to the scale of EVOU

    Each product multiplies an integer matrix by packed rows, so intermediate results
    are never unpacked: only the final rows are (checked by `magnitudes_fit`).
    """
    w, d, K = c.width, c.d_vocab, c.n_ctx
    base = 1 << w
    if not magnitudes_fit(c, ops):
        raise Reject(f"packing width {w} too small for the path products")
    last = c.W_pos[-1]
    Eq = [[x + y for x, y in zip(r, last)] for r in c.W_E]
    ops.n += d * c.d_model
    EP = c.W_E + c.W_pos
    ops.nat += d
    # attention: row q of Eq W_Q W_K^T EP^T packs EQKE[q] (digits 0..d-1) and EQKP[q]
    kep = cols_times(c.W_K, pack_cols(EP, base, ops), ops)  # W_K^T EP^T
    eqkep = rows_times(Eq, rows_times(c.W_Q, kep, ops), ops)
    offset = unpack_offset(w, d + K, ops)
    EQKE, EQKP = [], []
    for v in eqkep:
        u = v + offset
        EQKE.append(digits(u, w, d, ops))
        EQKP.append(digits(u >> (w * d), w, K, ops))
        ops.n += 2
    # values: row t of EP W_V W_O W_U, for the tokens (EVOU) then the positions (PVOU)
    u_rows = [pack_row(r, base, ops) for r in c.W_U]
    vou = rows_times(c.W_V, rows_times(c.W_O, u_rows, ops), ops)
    offset = unpack_offset(w, d, ops)
    epvou = [unpack(v, offset, w, d, ops) for v in rows_times(EP, vou, ops)]
    # direct path at the scale 2^(-4 weight_shift) of EVOU: U's packed rows times 2^(2 ws)
    shift = 2 * c.weight_shift
    ops.n += len(u_rows)
    EUPU = [unpack(v, offset, w, d, ops) for v in rows_times(Eq, [u << shift for u in u_rows], ops)]
    return Tables(EQKE, EQKP, epvou[:d], epvou[d:], EUPU)


def top_two(row: list[int], ops: Ops) -> tuple[int, int, int]:
    """(top, second, n_top) in one pass [topTwo]: second = the largest entry below top,
    or top itself while there is none; n_top = how often top occurs.
    """
    top, second, n = row[0], row[0], 0
    for x in row:
        if x > top:
            top, second, n = x, top, 1
        elif x == top:
            n += 1
        elif second == top or second < x:
            second = x
        ops.n += 1
    return top, second, n


def margin_row(row: list[int], ops: Ops) -> list[int]:
    """d[m] = row[m] - max_{j != m} row[j] [marginRow]: the max over j != m is `second`
    when m is the only place of the top, else the top."""
    top, second, n_top = top_two(row, ops)
    ops.n += len(row)
    return [x - (second if (x == top and n_top == 1) else top) for x in row]


def prefix(row: list[int], pick, ops: Ops) -> list[int]:
    """Running max or min [prefixMax / prefixMin]."""
    out, acc = [], row[0]
    for x in row:
        acc = pick(acc, x)
        out.append(acc)
        ops.n += 1
    return out


# ---------------------------------------------------------------- exp tables
@dataclass(frozen=True)
class ExpTables:
    """Packed tables of exp(-k 2^-9), fixed point 2^-128, outward [ExpTables].

    fine[k0] ~ exp(-k0 / 512) (k0 < 512), coarse[k1] ~ exp(-k1) (k1 <= 64); an entry
    of `up` is >= the true value and of `lo` is <= it. Each is built by repeated
    multiplication by one Taylor enclosure, rounding up (resp. down) every time.
    """
    fine_up: Packed
    fine_lo: Packed
    coarse_up: Packed
    coarse_lo: Packed


def power_table(step: int, n: int, round_up: bool, ops: Ops) -> list[int]:
    """[1, step, step^2, ...] in fixed point 2^EXP_FRAC, rounded one way [powerTable]."""
    one = 1 << EXP_FRAC
    out, acc = [], one
    for _ in range(n):
        out.append(acc)
        acc = -((-acc * step) >> EXP_FRAC) if round_up else (acc * step) >> EXP_FRAC
        ops.n += 1
    return out


def exp_tables(ops: Ops) -> ExpTables:
    """The four packed exp tables [expTables]."""
    b_lo, b_up = exp_neg_bounds(1, EXP_RES, EXP_FRAC)  # exp(-1/512)
    e_lo, e_up = exp_neg_bounds(1, 0, EXP_FRAC)  # exp(-1)
    ops.n += 2 * 60  # two Taylor enclosures with 16 squarings each
    width = EXP_FRAC + 8
    fine_up = power_table(b_up, EXP_STEPS, True, ops)
    fine_lo = power_table(b_lo, EXP_STEPS, False, ops)
    coarse_up = power_table(e_up, EXP_UNITS + 1, True, ops)
    coarse_lo = power_table(e_lo, EXP_UNITS + 1, False, ops)
    return ExpTables(*(pack(t, width, ops) for t in (fine_up, fine_lo, coarse_up, coarse_lo)))


def exp_up(t: ExpTables, k: int, ops: Ops) -> int:
    """>= 2^(2 EXP_FRAC) exp(-k / 512) for k >= 0 (clamped: exp(-64) beyond) [expUp]."""
    k = min(k, EXP_UNITS * EXP_STEPS)
    ops.nat += 2
    return get(t.coarse_up, k >> EXP_RES, ops) * get(t.fine_up, k % EXP_STEPS, ops)


def exp_lo(t: ExpTables, k: int, ops: Ops) -> int:
    """<= 2^(2 EXP_FRAC) exp(-k / 512) for k >= 0 (0 beyond exp(-64)) [expLo]."""
    ops.nat += 2
    if k >= EXP_UNITS * EXP_STEPS:
        return 0
    return get(t.coarse_lo, k >> EXP_RES, ops) * get(t.fine_lo, k % EXP_STEPS, ops)


@dataclass(frozen=True)
class ScoreScale:
    """Turns an integer score gap D >= 0 into table indices [ScoreScale].

    The true exponent is -D 2^(-4 weight_shift) / sqrt(d_head); with 1/sqrt(d) in
    [isq_lo, isq_hi] / 2^64 its value times 512 lies in [D isq_lo, D isq_hi] / 2^shift.
    """
    isq_lo: int
    isq_hi: int
    shift: int


def e_up(sc: "Scoring", D: int, ops: Ops) -> int:
    """Upper bound of exp(-D scale) (fixed point 2^-256) [eUp]: index rounded down."""
    ops.n += 2
    return exp_up(sc.exp, (D * sc.scale.isq_lo) >> sc.scale.shift, ops)


def e_lo(sc: "Scoring", D: int, ops: Ops) -> int:
    """Lower bound of exp(-D scale) (fixed point 2^-256) [eLo]: index rounded up."""
    ops.n += 2
    return exp_lo(sc.exp, -((-(D * sc.scale.isq_hi)) >> sc.scale.shift), ops)


def lower_prod(lo: int, hi: int, w: int, ops: Ops) -> int:
    """A lower bound of e w for e in [lo, hi], lo >= 0 [lowerProd]."""
    ops.n += 2
    return lo * w if w >= 0 else hi * w


# ---------------------------------------------------------------- the gap proof
def family_size(q: int, m: int, s: int, n_ctx: int) -> int:
    """|F(q, m, s)| [familySize]: free tokens in {m} u [0, s], at least one m if q < m."""
    free = n_ctx - 1
    if s == -2:
        return 0
    if s == -1:
        return 1
    return (s + 2) ** free - ((s + 1) ** free if q < m else 0)


@dataclass(frozen=True)
class MaxInfo:
    """What the check of (q, m) needs about the max token m [MaxInfo]."""
    dEV_mm: int  # dEV[m][m]
    dPV: list[int]  # dPV[i][m] for the free positions i = 0 .. K-2
    dPV_q: int  # dPV[K-1][m], the query position's
    pm_dEV: "Packed"  # s -> min_{t <= s} dEV[t][m]


@dataclass(frozen=True)
class Bounds:
    """An enclosure lo <= x <= hi [Bounds]."""
    lo: int
    hi: int


@dataclass(frozen=True)
class QueryInfo:
    """What the check of (q, m) needs about the query token q [QueryInfo].

    The attention weight of position i holding token t is e = exp((EQKE[q][t] - ref) /
    sqrt d) exp((EQKP[q][i] - pref) / sqrt d) up to the common factor Z, with ref and
    pref the row maxima (so both exponents are <= 0 and every table index is >= 0).
    """
    ref: int  # max_t EQKE[q][t]
    pos_e: list[Bounds]  # position factor of each free position i = 0 .. K-2
    q_e: Bounds  # the whole weight of the query position K-1 (token q): both factors
    t_lo: int  # lower bound of the token factor of any token: exp((min_t EQKE[q][t] - ref) / sqrt d)
    pmax: "Packed"  # s -> max_{t <= s} EQKE[q][t]


def terms(lo: int, hi: int, w0: int, pos_e: list[Bounds], dPV: list[int], ops: Ops) -> list[int]:
    """Lower bounds of e_i w_i over the free positions, token factor in [lo, hi] and
    w_i = w0 + dPV[i] [terms]: lower_prod(lo pe_i.lo, hi pe_i.hi, w0 + dPV[i])."""
    ops.n += 2 * len(dPV)  # the add and the product taken by lower_prod
    return [lower_prod(lo * b.lo, hi * b.hi, w0 + x, ops) for b, x in zip(pos_e, dPV)]


def worst_placement_ok(total: int, A: list[int], B: list[int], c_min: int, ops: Ops) -> bool:
    """Q + sum_i B_i + (the c smallest D_i) > 0 for every c >= c_min, D_i = A_i - B_i
    [worstPlacementOk]: some c free positions hold the max token, the others a token
    <= s, and the c smallest differences are the worst placement. Over all c, the
    smallest sum lets every position take its worse option: Q + sum_i min(A_i, B_i).
    That placement holds no max copy exactly when every D_i > 0; then, if c_min = 1,
    the worst placement with one copy adds min_i D_i. So the test is
    Q + sum_i min(A_i, B_i) + c_min max(0, min_i D_i) > 0.
    """
    base = total + sum(min(a, b) for a, b in zip(A, B))
    ops.n += 2 * len(A) + 2
    if c_min == 1:
        base += max(min(a - b for a, b in zip(A, B)), 0)
        ops.n += 2 * len(A) + 1
    return base > 0


def query_term(dEV_qm: int, dEU_qm: int, qi: QueryInfo, mi: MaxInfo, ops: Ops) -> int:
    """Q: lower bound of e w for the query position K-1, which holds q [queryTerm]."""
    ops.n += 2
    return lower_prod(qi.q_e.lo, qi.q_e.hi, dEV_qm + mi.dPV_q + dEU_qm, ops)


def max_terms(eqke_qm: int, dEU_qm: int, qi: QueryInfo, mi: MaxInfo, sc: "Scoring", ops: Ops) -> list[int]:
    """A_i: lower bounds of e w for the free positions holding the max token m [maxTerms]."""
    gap = qi.ref - eqke_qm
    ops.n += 2
    return terms(e_lo(sc, gap, ops), e_up(sc, gap, ops), mi.dEV_mm + dEU_qm, qi.pos_e, mi.dPV, ops)


def check_family(q: int, m: int, s: int, eqke_qm: int, dEU_qm: int, dEV_qm: int,
                 qi: QueryInfo, mi: MaxInfo, sc: "Scoring", ops: Ops) -> bool:
    """Every input of F(q, m, s) is correct (see the module docstring) [checkFamily].

    Terms are e * w with e a product of two exp enclosures (fixed point 2^-512), w at
    scale 2^(-4 weight_shift).
    """
    ops.n += 1
    if s == -2:
        return True
    total, A = query_term(dEV_qm, dEU_qm, qi, mi, ops), max_terms(eqke_qm, dEU_qm, qi, mi, sc, ops)
    ops.n += 1
    if s == -1:  # every free position holds m
        ops.n += len(A) + 1
        return total + sum(A) > 0
    t_hi = e_up(sc, qi.ref - get(qi.pmax, s, ops), ops)
    B = terms(qi.t_lo, t_hi, get(mi.pm_dEV, s, ops) + dEU_qm, qi.pos_e, mi.dPV, ops)
    ops.n += 2
    return worst_placement_ok(total, A, B, 1 if q < m else 0, ops)


@dataclass(frozen=True)
class Scoring:
    """Exp tables and the score scale [Scoring]."""
    exp: "ExpTables"
    scale: "ScoreScale"


@dataclass(frozen=True)
class Context:
    """Everything the per-(q, m) checks read, in the order the loops read it [Context]."""
    eqke: list[list[int]]
    dEU: list[list[int]]
    dEV: list[list[int]]
    queries: list[QueryInfo]
    maxes: list[MaxInfo]
    scoring: Scoring


def enclose(sc: Scoring, gap: int, ops: Ops) -> Bounds:
    """Bounds(e_lo(gap), e_up(gap)) [enclose]."""
    return Bounds(e_lo(sc, gap, ops), e_up(sc, gap, ops))


def query_info(sc: Scoring, w: int, q: int, row: list[int], prow: list[int], ops: Ops) -> QueryInfo:
    """QueryInfo for one query q from its EQKE and EQKP rows [queryInfo]."""
    pmax = pack(prefix(row, max, ops), w, ops)
    ref, pref = get(pmax, len(row) - 1, ops), max_list(prow, ops)  # the row max ends the prefix max
    qe, pq = enclose(sc, ref - nth(row, q, ops), ops), enclose(sc, pref - prow[-1], ops)
    ops.n += 2 + 2 * len(prow)
    return QueryInfo(ref=ref, pos_e=[enclose(sc, pref - x, ops) for x in prow[:-1]],
                     q_e=Bounds(qe.lo * pq.lo, qe.hi * pq.hi),
                     t_lo=e_lo(sc, ref - min_list(row, ops), ops), pmax=pmax)


def build_context(c: Cert, tab: Tables, ops: Ops) -> Context:
    """Derived tables [buildContext]."""
    w, d = c.width, c.d_vocab
    dEV = [margin_row(r, ops) for r in tab.EVOU]
    dPV = [margin_row(r, ops) for r in tab.PVOU]
    dEV_cols = transpose(dEV)
    dPV_cols = transpose(dPV[:-1])  # the free positions; the query position's row is dPV[-1]
    ops.nat += d * d + d * c.n_ctx
    # score scale: EQKE's exponent is -4 weight_shift; index = D isq / 2^(64 + 4 ws - 9)
    shift = ISQ_FRAC + 4 * c.weight_shift - EXP_RES
    sc = Scoring(exp_tables(ops), ScoreScale(c.isq_lo, c.isq_hi, shift))
    maxes = [MaxInfo(dEV_cols[m][m], dPV_cols[m], dPV[-1][m], pack(prefix(dEV_cols[m], min, ops), w, ops))
             for m in range(d)]
    queries = [query_info(sc, w, q, tab.EQKE[q], tab.EQKP[q], ops) for q in range(d)]
    return Context(tab.EQKE, [margin_row(r, ops) for r in tab.EUPU], dEV, queries, maxes, sc)


def nth(xs: list[int], i: int, ops: Ops) -> int:  # [nth]: a list walk
    ops.nat += i + 1
    return xs[i]


def validate(c: Cert) -> None:
    """Shapes, ranges and the 1/sqrt(d_head) enclosure [wellFormed]."""
    d, K, dm, dh = c.d_vocab, c.n_ctx, c.d_model, c.d_head
    shapes = {"W_E": (d, dm), "W_pos": (K, dm), "W_Q": (dm, dh), "W_K": (dm, dh),
              "W_V": (dm, dh), "W_O": (dh, dm), "W_U": (dm, d)}
    if min(d, dm, dh) < 1 or d < 2 or K < 2:
        raise Reject("dimensions must be positive, d_vocab >= 2 and n_ctx >= 2")
    for name, (n, p) in shapes.items():
        if not shape_ok(getattr(c, name), n, p):
            raise Reject(f"{name} does not have shape {n} x {p}")
    if c.weight_shift < 0 or c.width < 2:
        raise Reject("weight shift must be >= 0 and the width >= 2")
    one = 1 << (2 * ISQ_FRAC)
    if not (0 <= c.isq_lo and c.isq_lo ** 2 * dh <= one <= c.isq_hi ** 2 * dh):
        raise Reject("the 1/sqrt(d_head) enclosure is wrong")
    if not shape_ok(c.gaps, d, d):
        raise Reject(f"witness: the gap table must be {d} x {d}")
    for q in range(d):
        for m in range(q, d):
            if not -2 <= c.gaps[q][m] <= m - 1:
                raise Reject(f"witness: threshold s[{q}][{m}] = {c.gaps[q][m]} outside [-2, {m - 1}]")


def certified_count(c: Cert, ops: Ops | None = None) -> int:
    """The number of inputs the witness proves correct; raises Reject on any failure [certifiedCount]."""
    ops = ops if ops is not None else Ops()
    validate(c)
    ctx = build_context(c, path_tables(c, ops), ops)
    total = 0
    for q in range(c.d_vocab):
        qi = ctx.queries[q]
        for m in range(q, c.d_vocab):  # in Lean: the rows dropped to index q, walked in lockstep
            s = c.gaps[q][m]
            if not check_family(q, m, s, ctx.eqke[q][m], ctx.dEU[q][m], ctx.dEV[q][m], qi,
                                ctx.maxes[m], ctx.scoring, ops):
                raise Reject(f"the family (query {q}, max {m}, threshold {s}) is not proven correct")
            total += family_size(q, m, s, c.n_ctx)
            ops.n += 3
        ops.nat += c.d_vocab + q  # the drops
    return total


def check(c: Cert, n: int) -> Verdict:
    """True iff the certificate proves at least n correct inputs [check]."""
    ops = Ops()
    try:
        count = certified_count(c, ops)
    except Reject as err:
        return Verdict(False, 0, str(err), ops.n)
    if n > count:
        return Verdict(False, count, f"claimed {n} correct inputs but the proof supports only {count}", ops.n)
    return Verdict(True, count, "", ops.n)
