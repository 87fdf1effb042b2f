"""The certificate checker, in Python: a function-for-function mirror of the Lean
library `lean/MaxKCert/Checker.lean` (Lean names in brackets), with the same integer
semantics. Every quantity the checker computes is a natural number, as in Lean, where
the kernel reduces `Nat` arithmetic on literals with GMP (`reduce_nat`) but unfolds every
`Int` operation through its instance chain and constructor matches. Python's `-` on two
naturals is Lean's `Nat.sub` only where the minuend is the larger; every such place says
why (`nsub` is the truncating `Nat.sub`, used where truncation is the intent).

WHAT A PASSING CHECK MEANS. `check(cert, N)` is True only if, for the Max-of-K model
whose weights are the integers of the certificate times 2^-weight_shift, at least N of
the d_vocab^K inputs are classified correctly: the logit of the max token is strictly
larger than every other logit at the last position (ties count as wrong).

WHAT THE FILE HOLDS [Cert] (Python: `CertData`; `Cert` is its decoded view). Each
weight matrix is one natural number u: the digit of entry (r, j) in base 2^weight_bits
(digit r * p + j, p = number of columns) is w[r][j] + 2^(weight_bits - 1), so every
natural u stands for exactly one integer matrix (`decode_rows`; `well_formed` rejects
a u with digits beyond the matrix). The witness is one natural: digit q * d + m in base
2^gap_bits is g = s[q][m] + 2 (so s = -2, -1, 0, .. is g = 0, 1, 2, ..).

SIGNED QUANTITIES AS NATURALS (the representation; each is exact, with no condition,
except (4), whose condition is checked):
 1. Weights stay offset digits e = w + h (h = 2^(weight_bits-1)); a row of them times
    a signed packed list is computed from e and h by a ring identity (`dot_packed`).
 2. Intermediate signed values (packed rows) are pairs Z = (pos, neg) standing for
    pos - neg; sums and products of pairs are componentwise ring identities.
 3. The path tables come out as digits D = x + 2^(width-1) in [0, 2^width) of
    (pos + offset) - neg, exactly the old balanced digits plus 2^(width-1), under the
    same `magnitudes_fit` condition. The checker only ever uses differences of two
    entries of one row, in which the offset cancels: score gaps ref - x >= 0 (ref the
    row max), and margins dX[m] + base = D[m] + (base - D[j*]) in (0, 2 base).
 4. The terms e * w of the gap proof: w = (three margins) is kept as w + 3 base in
    (0, 6 base); a term t with |t| < T / 2 is kept as t + T, T = 2^(4 EXP_FRAC + width + 3).
    |t| < T / 2 because every exp enclosure is at most 2^(2 EXP_FRAC) (the exp table
    entries are at most 2^EXP_FRAC, since every table step is; `exp_steps_ok` checks
    it), a term multiplies two of them by |w| < 3 base = 3 2^width. So T - (hi |w|) and
    A + T - B never truncate, and a sum of n terms is > n T exactly when the signed sum
    is > 0.

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
a few big-natural multiply-adds, the matrix's rows packed into one number each; chained
products stay packed and only the final tables are unpacked), and tables read by O(1)
shift-and-mask lookups into one packed natural number.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..proofs.arith import EXP_CLAMP, EXP_TAYLOR_DEGREE

EXP_FRAC = 128  # fixed-point bits of the exp tables [expFrac]
EXP_RES = 9  # exp tables step: arguments are multiples of 2^-9 [expRes]
EXP_STEPS = 1 << EXP_RES  # entries of the fine table per unit of argument
EXP_UNITS = EXP_CLAMP  # coarse table covers exp(-0) .. exp(-64)
ISQ_FRAC = 64  # fixed-point bits of the 1/sqrt(d_head) enclosure [isqFrac]
EXP_SQUARINGS = 16  # [expSquarings], arith.EXP_SQUARINGS
assert EXP_TAYLOR_DEGREE == 4  # taylor_num is written for degree 4


@dataclass
class Ops:
    """Operations performed, as the kernel would: one per arithmetic/compare/lookup step,
    split into Nat operations (Nat arithmetic on literals, and list-walk steps) and Int
    operations (benchmarks/kernel_work.py weighs them). `n` is the total; adding to `n`
    counts Int operations (the checker itself performs none).
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
    """The decoded content of a certificate: weights are integers times 2^-weight_shift,
    gaps the thresholds s[q][m] (Lean keeps them encoded: `CertData`, [Cert])."""
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


WEIGHT_FIELDS = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U")


@dataclass(frozen=True)
class CertData:
    """What a certificate file holds [Cert]: every matrix one natural number (see the
    module docstring)."""
    d_vocab: int
    n_ctx: int
    d_model: int
    d_head: int
    weight_shift: int
    weight_bits: int
    W_E: int
    W_pos: int
    W_Q: int
    W_K: int
    W_V: int
    W_O: int
    W_U: int
    width: int
    isq_lo: int
    isq_hi: int
    gap_bits: int
    gaps: int

    def shapes(self) -> dict[str, tuple[int, int]]:
        d, K, dm, dh = self.d_vocab, self.n_ctx, self.d_model, self.d_head
        return {"W_E": (d, dm), "W_pos": (K, dm), "W_Q": (dm, dh), "W_K": (dm, dh), "W_V": (dm, dh),
                "W_O": (dh, dm), "W_U": (dm, d)}


@dataclass
class Verdict:
    ok: bool
    count: int
    reason: str
    ops: int = 0


class Reject(Exception):
    """The certificate does not check; the message says why."""


def nsub(a: int, b: int) -> int:
    """Lean's truncating `Nat.sub`."""
    return a - b if a >= b else 0


# ---------------------------------------------------------------- the file's encoding
def bits_for(top: int) -> int:
    """The smallest multiple of 4 (hex digits), at least 4, with top < 2^bits."""
    return max(4, (top.bit_length() + 3) // 4 * 4)


def encode_digits(xs: list[int], bits: int) -> int:
    """sum_k xs[k] 2^(bits k) for digits 0 <= xs[k] < 2^bits (the renderer's side)."""
    nb = (bits + 7) // 8
    if bits % 8 == 0:
        return int.from_bytes(b"".join(x.to_bytes(nb, "little") for x in xs), "little")
    v = 0
    for x in reversed(xs):
        v = (v << bits) | x
    return v


def encode_cert(c: Cert) -> CertData:
    """The file's naturals for a decoded certificate (Python only: the renderer). Raises
    Reject for what the format cannot hold (a wrong shape, a threshold below -2)."""
    d, K, dm, dh = c.d_vocab, c.n_ctx, c.d_model, c.d_head
    shapes = {"W_E": (d, dm), "W_pos": (K, dm), "W_Q": (dm, dh), "W_K": (dm, dh), "W_V": (dm, dh),
              "W_O": (dh, dm), "W_U": (dm, d)}
    if min(d, K, dm, dh) < 1:
        raise Reject("dimensions must be positive, d_vocab >= 2 and n_ctx >= 2")
    for name, (n, p) in shapes.items():
        if not shape_ok(getattr(c, name), n, p):
            raise Reject(f"{name} does not have shape {n} x {p}")
    if not shape_ok(c.gaps, d, d):
        raise Reject(f"witness: the gap table must be {d} x {d}")
    if any(s < -2 for r in c.gaps for s in r):
        raise Reject("witness: a threshold is below -2")
    top = max(abs(x) for name in shapes for r in getattr(c, name) for x in r)
    wb = bits_for(2 * top + 1)  # |w| <= top < 2^(wb-1)
    h = 1 << (wb - 1)
    mats = {n: encode_digits([x + h for r in getattr(c, n) for x in r], wb) for n in shapes}
    gb = bits_for(max(s + 2 for r in c.gaps for s in r))
    gaps = encode_digits([s + 2 for r in c.gaps for s in r], gb)
    return CertData(d, K, dm, dh, c.weight_shift, wb, *(mats[n] for n in WEIGHT_FIELDS), width=c.width,
                    isq_lo=c.isq_lo, isq_hi=c.isq_hi, gap_bits=gb, gaps=gaps)


def decode_cert(data: CertData) -> Cert:
    """The decoded view (Python only; Lean decodes inside the checker, `decode_rows`)."""
    ops = Ops()
    h = 1 << (data.weight_bits - 1)
    mats = {n: [[x - h for x in r] for r in decode_rows(getattr(data, n), data.weight_bits, n_, p, ops)]
            for n, (n_, p) in data.shapes().items()}
    d = data.d_vocab
    gaps = [[g - 2 for g in r] for r in decode_rows(data.gaps, data.gap_bits, d, d, ops)]
    return Cert(data.d_vocab, data.n_ctx, data.d_model, data.d_head, data.weight_shift,
                *(mats[n] for n in WEIGHT_FIELDS), width=data.width, isq_lo=data.isq_lo,
                isq_hi=data.isq_hi, gaps=gaps)


def as_data(c: "Cert | CertData") -> CertData:
    return c if isinstance(c, CertData) else encode_cert(c)


# ---------------------------------------------------------------- small helpers
def max_list(xs: list[int], ops: Ops) -> int:  # [maxList]
    ops.nat += len(xs)
    return max(xs)


def min_list(xs: list[int], ops: Ops) -> int:  # [minList]
    ops.nat += len(xs)
    return min(xs)


def shape_ok(rows: list[list[int]], n: int, p: int) -> bool:  # (Python only: encode_cert)
    return len(rows) == n and all(len(r) == p for r in rows)


def digits(u: int, width: int, p: int, ops: Ops) -> list[int]:
    """The p low base-2^width digits of the natural u [digits]: Nat.land with the mask,
    Nat.shiftRight by the width (mask = 2^width - 1, computed once)."""
    mask = (1 << width) - 1
    out = []
    for _ in range(p):
        out.append(u & mask)
        u >>= width
    ops.nat += 2 * p + 2
    return out


def decode_rows(u: int, bits: int, n: int, p: int, ops: Ops) -> list[list[int]]:
    """n rows of p base-2^bits digits of u, row r from digit r * p [decodeRows]."""
    out = []
    for _ in range(n):
        out.append(digits(u, bits, p, ops))
        u >>= bits * p
        ops.nat += 2
    return out


def fits(u: int, bits: int) -> bool:
    """u < 2^bits, as Nat.beq (Nat.shiftRight u bits) 0 [fits]."""
    return u >> bits == 0


# ---------------------------------------------------------------- magnitudes
def path_magnitudes(c: "CertData", ops: Ops) -> list[int]:
    """Bounds on |entries| of the five path tables [magnitudesFitWith]. Every weight
    w = e - h with a digit 0 <= e < 2h, h = 2^(weight_bits - 1), so |w| <= h; an entry of
    a product of matrices is at most the product of their inner dimensions and of their
    factors' bounds. Intermediate products stay packed (never unpacked), and packing is
    a ring identity, so only the final tables' digits must fit.
    """
    h = 1 << (c.weight_bits - 1)
    dm, dh = c.d_model, c.d_head
    attn = dm * (h + h) * dm * h * dh * h  # |EQKE| <= attn h, |EQKP| <= attn h
    ov = dm * dh * h * dm * h * h  # |EVOU| <= ov h, |PVOU| <= ov h
    ops.nat += 18
    return [attn * h, ov * h, (dm * (h + h) * h) << (2 * c.weight_shift)]


def magnitudes_fit(c: "CertData", ops: Ops) -> bool:
    """Every entry of every path table has |.| < 2^(width-1), so `unpack` is exact
    [magnitudesFit]."""
    return all(b < (1 << (c.width - 1)) for b in path_magnitudes(c, ops))


# ---------------------------------------------------------------- packing
def pack_row(row: list[int], base: int, ops: Ops) -> int:
    """sum_j row[j] base^j for naturals, Horner [packRow]: x + acc * base (2 per entry)."""
    acc = 0
    for x in reversed(row):
        acc = x + acc * base
    ops.nat += 2 * len(row)
    return acc


def pack_const(x: int, base: int, p: int, ops: Ops) -> int:
    """sum_{j<p} x base^j [packConst]: the packed row of p copies of x (x times a repunit)."""
    acc = 0
    for _ in range(p):
        acc = x + acc * base
    ops.nat += 2 * p
    return acc


def pack_cols(rows: list[list[int]], base: int, ops: Ops) -> list[int]:
    """out[k] = sum_r rows[r][k] base^r: the columns of `rows`, each packed [packCols]."""
    acc = [0] * len(rows[0])
    for r in reversed(rows):
        acc = [x + a * base for x, a in zip(r, acc)]
        ops.nat += 2 * len(r)
    return acc


def zsum(zs: list[tuple[int, int]], ops: Ops) -> tuple[int, int]:
    """(sum of pos, sum of neg) [zSum]."""
    ops.nat += 2 * len(zs)
    return sum(z[0] for z in zs), sum(z[1] for z in zs)


def dot_packed(row: list[int], h: int, packed: list[tuple[int, int]], sums: tuple[int, int],
               ops: Ops) -> tuple[int, int]:
    """sum_k (row[k] - h) packed[k] as a pair [dotPacked], with sums = zsum(packed):
    sum_k (e_k - h)(P_k - N_k) = (sum e_k P_k + h sum N) - (sum e_k N_k + h sum P).
    If packed[k] packs row k of B and row holds the offset digits of a row of A, this
    packs (that row of A) @ B. A ring identity: no condition."""
    pos = sum(x * z[0] for x, z in zip(row, packed)) + h * sums[1]
    neg = sum(x * z[1] for x, z in zip(row, packed)) + h * sums[0]
    ops.nat += 4 * len(row) + 4
    return pos, neg


def rows_times(a: list[list[int]], h: int, packed: list[tuple[int, int]], ops: Ops) -> list[tuple[int, int]]:
    """[dot_packed(r, h, packed) for r in a] [rowsTimes]: the packed rows of A @ B."""
    sums = zsum(packed, ops)
    return [dot_packed(r, h, packed, sums, ops) for r in a]


def cols_times(m: list[list[int]], h: int, packed: list[tuple[int, int]], ops: Ops) -> list[tuple[int, int]]:
    """out[c] = sum_k (m[k][c] - h) packed[k]: the packed rows of M^T @ B [colsTimes]
    (the identity of dot_packed, accumulated row by row of m)."""
    sums = zsum(packed, ops)
    acc = [(0, 0)] * len(m[0])
    for row, z in zip(m, packed):
        acc = [(a[0] + x * z[0], a[1] + x * z[1]) for a, x in zip(acc, row)]
        ops.nat += 4 * len(row)
    ops.nat += 4 * len(acc)
    return [(a[0] + h * sums[1], a[1] + h * sums[0]) for a in acc]


def signed_rows(rows: list[int], neg: int) -> list[tuple[int, int]]:
    """[(u, neg) for u in rows] [signedRows]: packed naturals whose digits are offset by h
    are the pairs (u, h * repunit)."""
    return [(u, neg) for u in rows]


def unpack(z: tuple[int, int], offset: int, width: int, p: int, ops: Ops) -> list[int]:
    """The p digits of (pos + offset) - neg [unpack]: each is x_j + 2^(width-1) when the
    pair stands for v = sum_j x_j 2^(width j) with every |x_j| < 2^(width-1) and offset =
    `pack_const(2^(width-1), 2^width, p)` (then v + offset >= 0, so Nat.sub is exact)."""
    ops.nat += 2
    return digits(z[0] + offset - z[1], width, p, ops)


def mat_prod(a: list[list[int]], b: list[list[int]], width: int, ops: Ops) -> list[list[int]]:
    """a @ b for signed matrices by packing, exact when every entry has |.| < 2^(width-1)
    (tests and variants). Returns signed entries."""
    base, half = 1 << width, 1 << (width - 1)
    h = 1 << max(abs(x) for r in a for x in r).bit_length()
    p = len(b[0])
    offset = pack_const(half, base, p, ops)
    hb = 1 << max(abs(x) for r in b for x in r).bit_length()
    packed = signed_rows([pack_row([x + hb for x in r], base, ops) for r in b], pack_const(hb, base, p, ops))
    return [[x - half for x in unpack(z, offset, width, p, ops)]
            for z in rows_times([[x + h for x in r] for r in a], h, packed, ops)]


# ---------------------------------------------------------------- packed tables
@dataclass(frozen=True)
class Packed:
    """A list of naturals below 2^width packed into one natural [Packed]: entry k is
    digit k of `value` in base 2^width. `entries` is the same list, kept so that Python
    reads it without the shift (a test pins `get_by_shift` == `get`).
    """
    value: int
    width: int
    entries: tuple[int, ...]


def pack(xs: list[int], width: int, ops: Ops) -> Packed:
    """Horner over the naturals xs [pack]. Every caller packs entries below 2^width (table
    digits and margins by construction, exp table entries by `exp_steps_ok`), so `get`
    reads them back."""
    ops.nat += 2 * len(xs)
    if all(0 <= v < (1 << width) for v in xs):
        value = encode_digits(xs, width)
    else:
        value = 0
        for v in reversed(xs):
            value = v + (value << width)
    return Packed(value, width, tuple(xs))


def get_by_shift(p: Packed, idx: int) -> int:
    """Entry idx the way the kernel computes it [Packed.get]: shift, then mask."""
    return (p.value >> (idx * p.width)) & ((1 << p.width) - 1)


def get(p: Packed, idx: int, ops: Ops) -> int:
    ops.nat += 3  # Nat.mul idx width, Nat.shiftRight, Nat.land
    return p.entries[idx]


def get_at(p: Packed, bit: int, ops: Ops) -> int:
    """The entry whose bit offset `bit` = idx * width is already known [Packed.getAt]."""
    ops.nat += 2
    return p.entries[bit // p.width]


# ---------------------------------------------------------------- path tables
@dataclass(frozen=True)
class Tables:
    """The five path tables as digits x + 2^(width-1) of the exact integer entries x
    (values ints times 2^(-4 weight_shift)) [Tables]."""
    EQKE: list[list[int]]
    EQKP: list[list[int]]
    EVOU: list[list[int]]
    PVOU: list[list[int]]
    EUPU: list[list[int]]  # already shifted to the common scale 2^(-4 weight_shift)


def transpose(rows: list[list[int]]) -> list[list[int]]:  # [transpose]
    return [list(c) for c in zip(*rows)]


def decoded_weights(c: CertData, ops: Ops) -> dict[str, list[list[int]]]:
    """Every weight matrix as rows of offset digits [wE c, wPos c, ...]."""
    return {n: decode_rows(getattr(c, n), c.weight_bits, r, p, ops) for n, (r, p) in c.shapes().items()}


def path_tables(c: "Cert | CertData", ops: Ops) -> Tables:
    """The five path tables, exactly [pathTables]. With Eq = E + P[-1] (the query's
    embedding) and EP = [E; P] (keys and values: every token, then every position):

      [EQKE | EQKP] = Eq (W_Q (W_K^T EP^T))   one packed row per query, split into digits
      [EVOU ; PVOU] = EP (W_V (W_O W_U))       one packed row per token / position
      EUPU          = Eq (W_U 2^(2 weight_shift))   brought to the scale of EVOU

    Each product multiplies an offset-digit matrix by packed pairs, so intermediate
    results are never unpacked: only the final rows are (checked by `magnitudes_fit`).
    """
    c = as_data(c)
    w, d, K = c.width, c.d_vocab, c.n_ctx
    base, half = 1 << w, 1 << (w - 1)
    h = 1 << (c.weight_bits - 1)
    if not magnitudes_fit(c, ops):
        raise Reject(f"packing width {w} too small for the path products")
    mats = decoded_weights(c, ops)
    last = mats["W_pos"][-1]
    Eq = [[x + y for x, y in zip(r, last)] for r in mats["W_E"]]  # offset digits, offset 2h
    ops.nat += d * c.d_model
    EP = mats["W_E"] + mats["W_pos"]
    ops.nat += d
    # attention: row q of Eq W_Q W_K^T EP^T packs EQKE[q] (digits 0..d-1) and EQKP[q]
    ep_cols = signed_rows(pack_cols(EP, base, ops), pack_const(h, base, d + K, ops))
    kep = cols_times(mats["W_K"], h, ep_cols, ops)  # W_K^T EP^T
    eqkep = rows_times(Eq, 2 * h, rows_times(mats["W_Q"], h, kep, ops), ops)
    offset = pack_const(half, base, d + K, ops)
    EQKE, EQKP = [], []
    for z in eqkep:
        u = z[0] + offset - z[1]
        EQKE.append(digits(u, w, d, ops))
        EQKP.append(digits(u >> (w * d), w, K, ops))
        ops.nat += 4
    # values: row t of EP W_V W_O W_U, for the tokens (EVOU) then the positions (PVOU)
    u_rows = signed_rows([pack_row(r, base, ops) for r in mats["W_U"]], pack_const(h, base, d, ops))
    vou = rows_times(mats["W_V"], h, rows_times(mats["W_O"], h, u_rows, ops), ops)
    offset = pack_const(half, base, d, ops)
    epvou = [unpack(z, offset, w, d, ops) for z in rows_times(EP, h, vou, ops)]
    # direct path at the scale 2^(-4 weight_shift) of EVOU: U's packed rows times 2^(2 ws)
    shift = 2 * c.weight_shift
    ops.nat += 2 * len(u_rows)
    u_scaled = [(p << shift, n << shift) for p, n in u_rows]
    EUPU = [unpack(z, offset, w, d, ops) for z in rows_times(Eq, 2 * h, u_scaled, ops)]
    return Tables(EQKE, EQKP, epvou[:d], epvou[d:], EUPU)


def top_two(row: list[int], ops: Ops) -> tuple[int, int]:
    """(top, second) in one pass [topTwo]: top = max(row), second = the max of the row
    without one occurrence of top (row[0] starts top, 0 starts second: digits are >= 0
    and a row has at least two entries, so second ends as a real entry's value)."""
    top, second = row[0], 0
    for x in row[1:]:
        if x > top:
            top, second = x, top  # the old top is >= second
            ops.nat += 1
        else:
            second = max(second, x)
            ops.nat += 2
    return top, second


def margin_row(row: list[int], base: int, ops: Ops) -> list[int]:
    """dX[m] + base for dX[m] = X[m] - max_{j != m} X[j], from the digits of row X
    [marginRow]: max_{j != m} X[j] is `second` where X[m] = top (m is a place of the top,
    and second is the max without it), else top. With the digits below base,
    D[m] + (base - D[j]) is in (0, 2 base), and the offsets of D[m] and D[j] cancel."""
    top, second = top_two(row, ops)
    c_top, c_second = base - top, base - second  # both < base: exact
    ops.nat += 2 + 2 * len(row)
    return [x + (c_second if x == top else c_top) for x in row]


def prefix_max_packed(row: list[int], width: int, ops: Ops) -> Packed:
    """pack(running max of row) in one pass [packPrefixMax]."""
    out, acc = [], row[0]
    for x in row:
        acc = max(acc, x)
        out.append(acc)
    ops.nat += len(row)
    return pack(out, width, ops)


def prefix_min_packed(row: list[int], width: int, ops: Ops) -> Packed:
    """pack(running min of row) in one pass [packPrefixMin]."""
    out, acc = [], row[0]
    for x in row:
        acc = min(acc, x)
        out.append(acc)
    ops.nat += len(row)
    return pack(out, width, ops)


# ---------------------------------------------------------------- exp tables
@dataclass(frozen=True)
class Bounds:
    """An enclosure lo <= x <= hi of naturals [Bounds]."""
    lo: int
    hi: int


def taylor_num(a: int, bb: int, ops: Ops) -> int:
    """sum_{k=0..4} (-a)^k (4!/k!) 2^(bb (4-k)) [taylorNum]: the positive terms minus the
    negative ones. For 0 <= a <= 2^bb the sum is positive (each negative term is at most
    the positive term before it), so Nat.sub is exact; every call has a = 1."""
    pos = 24 * (1 << (4 * bb)) + 12 * (a * a) * (1 << (2 * bb)) + a * a * a * a
    neg = 24 * a * (1 << (3 * bb)) + 4 * (a * a * a) * (1 << bb)
    ops.nat += 24
    return nsub(pos, neg)


def square_lo(one_bits: int, n: int, lo: int, ops: Ops) -> int:
    """n times lo = floor(lo^2 / 2^F) [squareLo]."""
    for _ in range(n):
        lo = (lo * lo) >> one_bits
    ops.nat += 2 * n
    return lo


def square_hi(one_bits: int, n: int, hi: int, ops: Ops) -> int:
    """n times hi = ceil(hi^2 / 2^F) = (hi^2 + 2^F - 1) >> F [squareHi]."""
    for _ in range(n):
        hi = (hi * hi + (1 << one_bits) - 1) >> one_bits
    ops.nat += 3 * n
    return hi


def exp_neg_bounds(a: int, b: int, frac_bits: int, squarings: int, ops: Ops) -> Bounds:
    """lo <= 2^F exp(-a / 2^b) <= hi for 0 <= a <= 2^(b + squarings) [expNegBounds]:
    arith.exp_neg_bounds (Taylor degree 4, Lagrange remainder, `squarings` squarings) in
    naturals; a test pins equal results for the two calls of `exp_tables`.
    lo = floor(num 2^F / den) - ceil(a^5 2^F / rem_den), truncated at 0 (Python:
    max(0, ...)); hi = ceil(num 2^F / den) + ceil(a^5 2^F / rem_den)."""
    bb = b + squarings
    one = 1 << frac_bits
    num = taylor_num(a, bb, ops)
    den = 24 << (4 * bb)
    rem_den = 120 << (5 * bb)
    rem = (a * a * a * a * a * one + rem_den - 1) // rem_den
    lo = nsub((num * one) // den, rem)
    hi = (num * one + den - 1) // den + rem
    ops.nat += 16
    return Bounds(square_lo(frac_bits, squarings, lo, ops), square_hi(frac_bits, squarings, hi, ops))


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
    """[1, step, step^2, ...] in fixed point 2^EXP_FRAC, rounded one way [powerTable]:
    floor (acc step) >> F, or ceil (acc step + 2^F - 1) >> F."""
    one = 1 << EXP_FRAC
    out, acc = [], one
    for _ in range(n):
        out.append(acc)
        acc = (acc * step + one - 1) >> EXP_FRAC if round_up else (acc * step) >> EXP_FRAC
        ops.nat += 3 if round_up else 2
    return out


def fine_step(ops: Ops) -> Bounds:  # [fineStep]: exp(-1/512)
    return exp_neg_bounds(1, EXP_RES, EXP_FRAC, EXP_SQUARINGS, ops)


def coarse_step(ops: Ops) -> Bounds:  # [coarseStep]: exp(-1)
    return exp_neg_bounds(1, 0, EXP_FRAC, EXP_SQUARINGS, ops)


def exp_steps_ok(ops: Ops) -> bool:
    """Every step of the exp tables is at most 2^EXP_FRAC, so every table entry is (the
    entries start at 2^EXP_FRAC and each is a rounded product by a step <= 1) [expStepsOk].
    The bound |term| < T / 2 of the module docstring rests on it."""
    one = 1 << EXP_FRAC
    f, c = fine_step(ops), coarse_step(ops)
    ops.nat += 4
    return f.lo <= one and f.hi <= one and c.lo <= one and c.hi <= one


def exp_tables(ops: Ops) -> ExpTables:
    """The four packed exp tables [expTables] (width EXP_FRAC + 8; entries <= 2^EXP_FRAC)."""
    f, c = fine_step(ops), coarse_step(ops)
    width = EXP_FRAC + 8
    fine_up = power_table(f.hi, EXP_STEPS, True, ops)
    fine_lo = power_table(f.lo, EXP_STEPS, False, ops)
    coarse_up = power_table(c.hi, EXP_UNITS + 1, True, ops)
    coarse_lo = power_table(c.lo, EXP_UNITS + 1, False, ops)
    return ExpTables(*(pack(t, width, ops) for t in (fine_up, fine_lo, coarse_up, coarse_lo)))


EXP_LAST = EXP_UNITS * EXP_STEPS  # the largest table index, exp(-64)


def exp_up(t: ExpTables, k: int, ops: Ops) -> int:
    """>= 2^(2 EXP_FRAC) exp(-k / 512) for k >= 0 (clamped: exp(-64) beyond) [expUp]."""
    k = min(k, EXP_LAST)
    ops.nat += 4  # Nat.ble, Nat.shiftRight, Nat.land, Nat.mul
    return get(t.coarse_up, k >> EXP_RES, ops) * get(t.fine_up, k & (EXP_STEPS - 1), ops)


def exp_lo(t: ExpTables, k: int, ops: Ops) -> int:
    """<= 2^(2 EXP_FRAC) exp(-k / 512) for k >= 0 (0 beyond exp(-64)) [expLo]."""
    ops.nat += 1
    if k >= EXP_LAST:
        return 0
    ops.nat += 3
    return get(t.coarse_lo, k >> EXP_RES, ops) * get(t.fine_lo, k & (EXP_STEPS - 1), ops)


@dataclass(frozen=True)
class ScoreScale:
    """Turns an integer score gap D >= 0 into table indices [ScoreScale].

    The true exponent is -D 2^(-4 weight_shift) / sqrt(d_head); with 1/sqrt(d) in
    [isq_lo, isq_hi] / 2^64 its value times 512 lies in [D isq_lo, D isq_hi] / 2^shift.
    `round` = 2^shift - 1, for the ceiling.
    """
    isq_lo: int
    isq_hi: int
    shift: int
    round: int


def e_up(sc: "Scoring", D: int, ops: Ops) -> int:
    """Upper bound of exp(-D scale) (fixed point 2^-256) [eUp]: index rounded down."""
    ops.nat += 2
    return exp_up(sc.exp, (D * sc.scale.isq_lo) >> sc.scale.shift, ops)


def e_lo(sc: "Scoring", D: int, ops: Ops) -> int:
    """Lower bound of exp(-D scale) (fixed point 2^-256) [eLo]: index rounded up."""
    ops.nat += 3
    return exp_lo(sc.exp, (D * sc.scale.isq_hi + sc.scale.round) >> sc.scale.shift, ops)


def lower_term(lo: int, hi: int, w: int, sc: "Scoring", ops: Ops) -> int:
    """t + T for t a lower bound of e w, e in [lo, hi] (lo >= 0), w given as w + 3 base
    [lowerTerm]: lo |w| + T if w >= 0, else T - hi |w| (exact: |t| < T / 2). Only the
    chosen product is computed (the kernel reduces the arguments lazily)."""
    z = sc.w_zero
    ops.nat += 4
    return sc.t_off + lo() * (w - z) if w >= z else sc.t_off - hi() * (z - w)


# ---------------------------------------------------------------- the gap proof
def family_size(q: int, m: int, g: int, n_ctx: int, ops: Ops) -> int:
    """|F(q, m, s)| for g = s + 2 [familySize]: free tokens in {m} u [0, s], at least one m
    if q < m ((s+2)^(K-1) >= (s+1)^(K-1), so Nat.sub is exact)."""
    free = n_ctx - 1
    ops.nat += 2
    if g == 0:
        return 0
    if g == 1:
        return 1
    ops.nat += 4
    return g ** free - ((g - 1) ** free if q < m else 0)


@dataclass(frozen=True)
class MaxInfo:
    """What the check of (q, m) needs about the max token m [MaxInfo]; margins + base."""
    dEV_mm: int  # dEV[m][m]
    dPV: list[int]  # dPV[i][m] for the free positions i = 0 .. K-2
    dPV_q: int  # dPV[K-1][m], the query position's
    pm_dEV: "Packed"  # s -> min_{t <= s} dEV[t][m] (width + 1 bits)


@dataclass(frozen=True)
class QueryInfo:
    """What the check of (q, m) needs about the query token q [QueryInfo].

    The attention weight of position i holding token t is e = exp((EQKE[q][t] - ref) /
    sqrt d) exp((EQKP[q][i] - pref) / sqrt d) up to the common factor Z, with ref and
    pref the row maxima (so both exponents are <= 0 and every table index is >= 0).
    """
    ref: int  # max_t EQKE[q][t] (a digit)
    pos_e: list[Bounds]  # position factor of each free position i = 0 .. K-2
    q_e: Bounds  # the whole weight of the query position K-1 (token q): both factors
    t_lo: int  # lower bound of the token factor of any token: exp((min_t EQKE[q][t] - ref) / sqrt d)
    pos_tlo: list[int]  # t_lo * pos_e[i].lo
    pmax: "Packed"  # s -> max_{t <= s} EQKE[q][t] (width + 1 bits)


def terms(lo, hi, w0: int, pos_e: list[Bounds], dPV: list[int], sc: "Scoring", ops: Ops) -> list[int]:
    """t_i + T for lower bounds t_i of e_i w_i over the free positions, token factor in
    [lo, hi] and w_i = w0 + dPV[i] [terms]: lower_term(lo pe_i.lo, hi pe_i.hi, w0 + dPV[i]).
    lo and hi are evaluated on demand (`lazy`), as the kernel does."""
    ops.nat += len(dPV)  # w0 + x
    return [lower_term(lambda b=b: mul(lo(), b.lo, ops), lambda b=b: mul(hi(), b.hi, ops), w0 + x, sc, ops)
            for b, x in zip(pos_e, dPV)]


def terms_pre(pos_lo: list[int], hi, w0: int, pos_e: list[Bounds], dPV: list[int], sc: "Scoring",
              ops: Ops) -> list[int]:
    """`terms` with the products lo pe_i.lo precomputed (pos_lo) [termsPre]."""
    ops.nat += len(dPV)
    return [lower_term(lambda pl=pl: pl, lambda b=b: mul(hi(), b.hi, ops), w0 + x, sc, ops)
            for pl, b, x in zip(pos_lo, pos_e, dPV)]


def mul(a: int, b: int, ops: Ops) -> int:  # Nat.mul
    ops.nat += 1
    return a * b


def sub(a: int, b: int, ops: Ops) -> int:  # Nat.sub, where a >= b
    ops.nat += 1
    return a - b


def worst_placement_ok(total: int, A: list[int], B: list[int], c_min: int, sc: "Scoring", ops: Ops) -> bool:
    """Q + sum_i B_i + (the c smallest D_i) > 0 for every c >= c_min, D_i = A_i - B_i
    [worstPlacementOk]: some c free positions hold the max token, the others a token
    <= s, and the c smallest differences are the worst placement. Over all c, the
    smallest sum lets every position take its worse option: Q + sum_i min(A_i, B_i).
    That placement holds no max copy exactly when every D_i > 0; then, if c_min = 1,
    the worst placement with one copy adds min_i D_i. So the test is
    Q + sum_i min(A_i, B_i) + c_min max(0, min_i D_i) > 0; with every term given as
    t + T, and D_i + T = A_i + T - B_i, it is
    Q' + sum_i min(A'_i, B'_i) + c_min max(T, min_i (D_i + T)) > (1 + n + c_min) T.
    """
    T, n = sc.t_off, len(A)
    s = total + sum(min(a, b) for a, b in zip(A, B))
    ops.nat += 2 * n + 2
    if c_min == 1:
        s += max(min(a + T - b for a, b in zip(A, B)), T)
        ops.nat += 3 * n + 1
    return s > (sc.t_k1 if c_min == 1 else sc.t_k)


def query_term(w: int, qi: QueryInfo, sc: "Scoring", ops: Ops) -> int:
    """Q + T: lower bound of e w for the query position K-1, which holds q [queryTerm];
    w = dEV[q][m] + dPV[K-1][m] + dEU[q][m] (+ 3 base)."""
    return lower_term(lambda: qi.q_e.lo, lambda: qi.q_e.hi, w, sc, ops)


def max_terms(eqke_qm: int, dEU_qm: int, qi: QueryInfo, mi: MaxInfo, sc: "Scoring", ops: Ops) -> list[int]:
    """A_i + T: lower bounds of e w for the free positions holding the max token m
    [maxTerms]; gap = ref - eqke_qm >= 0 (ref is the row's max)."""
    gap = qi.ref - eqke_qm
    ops.nat += 2  # the gap and w0 = dEV[m][m] + dEU[q][m]
    lo, hi = lazy(lambda: e_lo(sc, gap, ops)), lazy(lambda: e_up(sc, gap, ops))
    return terms(lo, hi, mi.dEV_mm + dEU_qm, qi.pos_e, mi.dPV, sc, ops)


def lazy(f):
    """Evaluated at most once, on demand: the kernel's call-by-name with its whnf cache."""
    box = []

    def get_value():
        if not box:
            box.append(f())
        return box[0]
    return get_value


def check_family(q: int, m: int, g: int, eqke_qm: int, dEU_qm: int, dEV_qm: int,
                 qi: QueryInfo, mi: MaxInfo, sc: "Scoring", ops: Ops) -> bool:
    """Every input of F(q, m, s), s = g - 2, is correct (see the module docstring)
    [checkFamily]. Terms are e * w with e a product of two exp enclosures (fixed point
    2^-512), w at scale 2^(-4 weight_shift), each plus T.
    """
    ops.nat += 1
    if g == 0:
        return True
    ops.nat += 2
    total = query_term(dEV_qm + mi.dPV_q + dEU_qm, qi, sc, ops)
    A = max_terms(eqke_qm, dEU_qm, qi, mi, sc, ops)
    ops.nat += 1
    if g == 1:  # every free position holds m
        ops.nat += len(A) + 1
        return total + sum(A) > sc.t_k
    ops.nat += 3  # g - 2, its bit offset (width + 1) and the q < m test
    bit = (g - 2) * (sc.width + 1)
    t_hi = lazy(lambda: e_up(sc, sub(qi.ref, get_at(qi.pmax, bit, ops), ops), ops))  # pmax[s] <= ref
    ops.nat += 1
    B = terms_pre(qi.pos_tlo, t_hi, get_at(mi.pm_dEV, bit, ops) + dEU_qm, qi.pos_e, mi.dPV, sc, ops)
    return worst_placement_ok(total, A, B, 1 if q < m else 0, sc, ops)


@dataclass(frozen=True)
class Scoring:
    """Exp tables, the score scale and the term offsets [Scoring]."""
    exp: "ExpTables"
    scale: "ScoreScale"
    width: int
    w_zero: int  # 3 base: the offset of w (three margins)
    t_off: int  # T = 2^(4 EXP_FRAC + width + 3)
    t_k: int  # K T: the offset of Q + (K - 1) terms
    t_k1: int  # (K + 1) T


@dataclass(frozen=True)
class Context:
    """Everything the per-(q, m) checks read, in the order the loops read it [Context];
    table entries are digits, margins are margins + base."""
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
    """QueryInfo for one query q from its EQKE and EQKP digit rows [queryInfo]."""
    pmax = prefix_max_packed(row, w + 1, ops)
    ref, pref = get(pmax, len(row) - 1, ops), max_list(prow, ops)  # the row max ends the prefix max
    qe, pq = enclose(sc, ref - nth(row, q, ops), ops), enclose(sc, pref - prow[-1], ops)
    ops.nat += 4 + len(prow)
    pos_e = [enclose(sc, pref - x, ops) for x in prow[:-1]]
    t_lo = e_lo(sc, ref - min_list(row, ops), ops)
    ops.nat += 1 + len(pos_e)
    return QueryInfo(ref=ref, pos_e=pos_e, q_e=Bounds(qe.lo * pq.lo, qe.hi * pq.hi), t_lo=t_lo,
                     pos_tlo=[t_lo * b.lo for b in pos_e], pmax=pmax)


def scoring(c: CertData, ops: Ops) -> Scoring:
    """[scoring]: score scale: EQKE's exponent is -4 weight_shift; index = D isq / 2^(64 +
    4 ws - 9)."""
    shift = ISQ_FRAC + 4 * c.weight_shift - EXP_RES
    t = 1 << (4 * EXP_FRAC + c.width + 3)
    ops.nat += 12
    return Scoring(exp_tables(ops), ScoreScale(c.isq_lo, c.isq_hi, shift, (1 << shift) - 1), c.width,
                   3 << c.width, t, c.n_ctx * t, (c.n_ctx + 1) * t)


def build_context(c: "Cert | CertData", tab: Tables, ops: Ops) -> Context:
    """Derived tables [buildContext]."""
    c = as_data(c)
    w, d, base = c.width, c.d_vocab, 1 << c.width
    dEV = [margin_row(r, base, ops) for r in tab.EVOU]
    dPV = [margin_row(r, base, ops) for r in tab.PVOU]
    dEV_cols = transpose(dEV)
    dPV_cols = transpose(dPV[:-1])  # the free positions; the query position's row is dPV[-1]
    ops.nat += d * d + d * c.n_ctx
    sc = scoring(c, ops)
    maxes = [MaxInfo(nth(dEV_cols[m], m, ops), dPV_cols[m], dPV[-1][m], prefix_min_packed(dEV_cols[m], w + 1, ops))
             for m in range(d)]
    queries = [query_info(sc, w, q, tab.EQKE[q], tab.EQKP[q], ops) for q in range(d)]
    return Context(tab.EQKE, [margin_row(r, base, ops) for r in tab.EUPU], dEV, queries, maxes, sc)


def nth(xs: list[int], i: int, ops: Ops) -> int:  # [nth]: a list walk
    ops.nat += i + 1
    return xs[i]


def inv_sqrt_ok(d: int, lo: int, hi: int, frac_bits: int) -> bool:
    """lo^2 d <= 2^2F <= hi^2 d [invSqrtOk] (arith.inv_sqrt_ok on naturals)."""
    one = 1 << (2 * frac_bits)
    return lo * lo * d <= one <= hi * hi * d


def validate(c: "Cert | CertData") -> None:
    """Dimensions, the encoding, the 1/sqrt(d_head) enclosure and the witness's range
    [wellFormed]; raises Reject."""
    c = as_data(c)
    d, K, dm, dh = c.d_vocab, c.n_ctx, c.d_model, c.d_head
    if min(d, dm, dh) < 1 or d < 2 or K < 2:
        raise Reject("dimensions must be positive, d_vocab >= 2 and n_ctx >= 2")
    if c.weight_bits < 2 or c.gap_bits < 1 or c.width < 2:
        raise Reject("weight bits and the width must be >= 2, gap bits >= 1")
    for name, (n, p) in c.shapes().items():
        if not fits(getattr(c, name), c.weight_bits * n * p):
            raise Reject(f"{name} has digits beyond its {n} x {p} entries")
    if not fits(c.gaps, c.gap_bits * d * d):
        raise Reject(f"witness: the gap table has digits beyond its {d} x {d} entries")
    if not inv_sqrt_ok(dh, c.isq_lo, c.isq_hi, ISQ_FRAC):
        raise Reject("the 1/sqrt(d_head) enclosure is wrong")
    rows = decode_rows(c.gaps, c.gap_bits, d, d, Ops())
    for q in range(d):
        for m in range(q, d):
            if not rows[q][m] <= m + 1:
                raise Reject(f"witness: threshold s[{q}][{m}] = {rows[q][m] - 2} outside [-2, {m - 1}]")
    if not exp_steps_ok(Ops()):
        raise Reject("an exp table step exceeds 1")


def certified_count(c: "Cert | CertData", ops: Ops | None = None) -> int:
    """The number of inputs the witness proves correct; raises Reject on any failure [certifiedCount]."""
    ops = ops if ops is not None else Ops()
    data = as_data(c)
    validate(data)
    ctx = build_context(data, path_tables(data, ops), ops)
    gaps = decode_rows(data.gaps, data.gap_bits, data.d_vocab, data.d_vocab, ops)
    total = 0
    for q in range(data.d_vocab):
        qi = ctx.queries[q]
        for m in range(q, data.d_vocab):  # in Lean: the rows dropped to index q, walked in lockstep
            g = gaps[q][m]
            if not check_family(q, m, g, ctx.eqke[q][m], ctx.dEU[q][m], ctx.dEV[q][m], qi,
                                ctx.maxes[m], ctx.scoring, ops):
                raise Reject(f"the family (query {q}, max {m}, threshold {g - 2}) is not proven correct")
            total += family_size(q, m, g, data.n_ctx, ops)
            ops.nat += 1
        ops.nat += data.d_vocab + q  # the drops
    return total


def check(c: "Cert | CertData", n: int) -> Verdict:
    """True iff the certificate proves at least n correct inputs [check]."""
    ops = Ops()
    try:
        count = certified_count(c, ops)
    except Reject as err:
        return Verdict(False, 0, str(err), ops.n)
    if n > count:
        return Verdict(False, count, f"claimed {n} correct inputs but the proof supports only {count}", ops.n)
    return Verdict(True, count, "", ops.n)
