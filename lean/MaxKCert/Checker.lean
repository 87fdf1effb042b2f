/-!
# MaxKCert.Checker: the certificate checker, evaluated by the Lean kernel

A function-for-function transcription of the Python mirror `certify/lean/checker.py`, with the
same integer semantics. Every quantity is a `Nat`: the kernel reduces `Nat.add`, `Nat.sub`,
`Nat.mul`, `Nat.div`, `Nat.mod`, `Nat.pow`, `Nat.beq`, `Nat.ble`, `Nat.land`,
`Nat.shiftLeft`, `Nat.shiftRight` on literals with GMP (`reduce_nat`,
src/kernel/type_checker.cpp), while every `Int` operation unfolds an instance chain and
matches on `ofNat`/`negSucc`. The hot code calls these functions by name (`Nat.add a b`,
not `a + b`), so the kernel reaches `reduce_nat` without unfolding `HAdd.hAdd`, and
branches with `cond` on a `Bool` from `Nat.ble`/`Nat.beq`. `Nat.sub` truncates at 0:
every use says why the minuend is the larger, or why truncation is the intent.
A Python `Reject` is `none` (or `false`). Every definition carries a `-- Python: name`
comment naming its counterpart. Certificates prove `MaxKCert.check data N = true` by
`decide +kernel`: only the kernel evaluates it.

## What a passing check means

`check c N = true` only if, for the Max-of-K model whose weights are the integers that
`c` encodes times 2^(-weightShift), at least N of the dVocab^K inputs (K = nCtx) are
classified correctly: the logit of the max token is strictly larger than every other
logit at the last position (ties count as wrong).

## What the certificate holds

Each weight matrix is one natural number u: the digit of entry (r, j) in base
2^weightBits (digit r * p + j, p = number of columns) is w[r][j] + 2^(weightBits - 1), so
every natural u stands for exactly one integer matrix (`decodeRows`; `wellFormed` rejects a
u with digits beyond the matrix). The witness is one natural: digit q * d + m in base
2^gapBits is g = s[q][m] + 2 (s = -2, -1, 0, .. is g = 0, 1, 2, ..).

## Signed quantities as naturals

1. Weights stay offset digits e = w + h (h = 2^(weightBits - 1)); a row of them times a
   signed packed list is computed from e and h by a ring identity (`dotPacked`).
2. Intermediate signed values (packed rows) are pairs `Signed` (pos, neg) standing for
   pos - neg; sums and products of pairs are componentwise ring identities.
3. The path tables come out as digits D = x + 2^(width-1) in [0, 2^width) of
   (pos + offset) - neg, under the `magnitudesFit` condition (see below). The checker only
   uses differences of two entries of one row, in which the offset cancels: score gaps
   ref - x >= 0 (ref the row max) and margins dX[m] + base = D[m] + (base - D[j*]) in
   (0, 2 base).
4. The terms e * w of the gap proof: w (a sum of three margins) is kept as w + 3 base in
   (0, 6 base); a term t is kept as t + T, T = 2^(4 expFrac + width + 3). |t| < T / 2:
   every exp enclosure is at most 2^(2 expFrac), because every exp table entry is at most
   2^expFrac (the entries start at 2^expFrac and each is a rounded product by a step
   <= 2^expFrac, which `expStepsOk` checks); a term multiplies two enclosures by
   |w| < 3 base. So T - hi |w| and A + T - B never truncate, and a sum of n terms (each
   + T) exceeds n T exactly when the signed sum is positive.

## The proof (the "gap" proof; its witness is the table s[q][m])

For query token q (the last token), max token m >= q and threshold s in
{-2, -1, 0, .., m-1}, the family F(q, m, s) is every input with last token q, max m, and
all other "free" tokens in {m} u [0, s] (s = -1: all free tokens equal m; s = -2: the
empty family). For any input in it and any j != m, with e_i = exp(score_i / sqrt(d_head)) > 0:

    Z (logit_m - logit_j) = sum_i e_i (EVOU[t_i,m] - EVOU[t_i,j] + PVOU[i,m] - PVOU[i,j]
                                       + EUPU[q,m] - EUPU[q,j])
                         >= sum_i e_i w_i,   w_i = dEV[t_i][m] + dPV[i][m] + dEU[q][m],

where dX[r][m] = X[r,m] - max_{j != m} X[r,j] (each bracket is >= its d-value). The
query position contributes e_q w_q exactly (lower-bounded through enclosures of e); a
free position holding m contributes A_i <= e_i w_i; a free position holding t <= s
contributes B_i <= e_i w_i, where B_i uses min_{t<=s} dEV[t][m] and the range of e_i
over t <= s (exp is monotone: the prefix max of the EQKE row bounds it above, the row's
minimum below). The worst placement of c max copies gives Q + sum_i B_i + (the c
smallest A_i - B_i); if that is > 0 for every possible c, every input of F(q, m, s) is
correct. The smallest of these sums over c >= c_min is Q + sum_i min(A_i, B_i), plus
max(0, min_i (A_i - B_i)) when c_min = 1 (q < m: at least one free position holds m),
which is what `worstPlacementOk` tests. Families of different (q, m) are disjoint, so the
certified count is the sum of their sizes
|F(q, m, s)| = (s+2)^(K-1) - [q < m] (s+1)^(K-1) (1 for s = -1, 0 for s = -2).

## Facts the argument relies on

* exp is positive and increasing; the Lagrange remainder of exp's Taylor series
  (|R_4(y)| <= |y|^5 / 5! for y <= 0, used in `expNegBounds`); squaring is monotone on
  non-negative numbers, so rounding lower bounds down and upper bounds up keeps every
  enclosure outward.
* 1/sqrt(d_head) lies in [isqLo, isqHi] / 2^64 because isqLo^2 d_head <= 2^128 <=
  isqHi^2 d_head (checked in `wellFormed`, via `invSqrtOk`).
* Kronecker packing: if v = sum_j c_j 2^(w j) with every |c_j| < 2^(w-1), the base-2^w
  digits of v + sum_j 2^(w-1) 2^(w j) are exactly c_j + 2^(w-1) (`unpack`). A product of a
  matrix with packed rows is the packed product (a ring identity, whatever the size of the
  digits), so chained products stay packed and only the final tables are unpacked;
  `magnitudesFit` checks |entry| <= (product of the inner dimensions) x (product of the
  factors' bounds, each |w| <= 2^(weightBits - 1)) < 2^(w-1) for each final table.
* The kernel's arithmetic on Nat literals (GMP-accelerated) is correct; everything else is
  plain structural recursion.
-/

namespace MaxKCert

-- Python: EXP_FRAC [expFrac]: fixed-point bits of the exp tables
def expFrac : Nat := 128

-- Python: EXP_RES [expRes]: exp table step, arguments are multiples of 2^-9
def expRes : Nat := 9

-- Python: EXP_STEPS = 1 << EXP_RES: entries of the fine table per unit of argument
def expSteps : Nat := 2 ^ expRes

-- Python: EXP_UNITS = EXP_CLAMP = 64: the coarse table covers exp(-0) .. exp(-64)
def expUnits : Nat := 64

-- Python: EXP_LAST = EXP_UNITS * EXP_STEPS: the largest table index, exp(-64)
def expLast : Nat := expUnits * expSteps

-- Python: ISQ_FRAC [isqFrac]: fixed-point bits of the 1/sqrt(d_head) enclosure
def isqFrac : Nat := 64

-- Python: EXP_SQUARINGS [expSquarings] (arith.EXP_SQUARINGS)
def expSquarings : Nat := 16

-- Python: CertData [Cert]: what a certificate file holds (every matrix one natural)
structure Cert where
  dVocab : Nat
  nCtx : Nat
  dModel : Nat
  dHead : Nat
  weightShift : Nat      -- weights are the integers times 2^(-weightShift)
  weightBits : Nat       -- digit width of the weight encoding
  wE : Nat               -- [dVocab][dModel], digits w + 2^(weightBits - 1)
  wPos : Nat             -- [nCtx][dModel]
  wQ : Nat               -- [dModel][dHead]
  wK : Nat               -- [dModel][dHead]
  wV : Nat               -- [dModel][dHead]
  wO : Nat               -- [dHead][dModel]
  wU : Nat               -- [dModel][dVocab]
  width : Nat            -- packing width in bits
  isqLo : Nat
  isqHi : Nat
  gapBits : Nat          -- digit width of the witness encoding
  gaps : Nat             -- witness: digits g = s[q][m] + 2, [dVocab][dVocab]

/-! ## Small helpers -/

-- Python: max_list, the running maximum started at acc
def maxFrom : Nat -> List Nat -> Nat
  | acc, [] => acc
  | acc, x :: xs => cond (Nat.ble x acc) (maxFrom acc xs) (maxFrom x xs)

-- Python: max_list [maxList]. Python raises on []; every call here is on a nonempty
-- list (the shapes are fixed by the encoding); [] gives 0.
def maxList : List Nat -> Nat
  | [] => 0
  | x :: xs => maxFrom x xs

-- Python: min_list, the running minimum started at acc
def minFrom : Nat -> List Nat -> Nat
  | acc, [] => acc
  | acc, x :: xs => cond (Nat.ble acc x) (minFrom acc xs) (minFrom x xs)

-- Python: min_list [minList] ([] gives 0, see maxList)
def minList : List Nat -> Nat
  | [] => 0
  | x :: xs => minFrom x xs

-- Python: nth [nth]: xs[i] by a list walk (0 past the end; never read there)
def nth : List Nat -> Nat -> Nat
  | [], _ => 0
  | x :: _, 0 => x
  | _ :: xs, j + 1 => nth xs j

-- Python: xs[n:] (list slicing), used for the loops `for m in range(q, d)`
def dropN {T : Type} : Nat -> List T -> List T
  | 0, xs => xs
  | _ + 1, [] => []
  | n + 1, _ :: xs => dropN n xs

-- Python: xs[:n]
def takeN {T : Type} : Nat -> List T -> List T
  | 0, _ => []
  | _ + 1, [] => []
  | n + 1, x :: xs => x :: takeN n xs

-- Python: xs + ys (list concatenation)
def appendL {T : Type} : List T -> List T -> List T
  | [], ys => ys
  | x :: xs, ys => x :: appendL xs ys

-- Python: xs[:-1] (the shape of core's List.dropLast)
def initOf {T : Type} : List T -> List T
  | [] => []
  | [_] => []
  | x :: xs => x :: initOf xs

-- Python: xs[-1] (d for an empty list; never happens, the shapes are fixed; the shape
-- of core's List.getLast)
def lastOr {T : Type} (d : T) : List T -> T
  | [] => d
  | [x] => x
  | _ :: y :: rest => lastOr d (y :: rest)

-- Python: sum(xs)
def sumList : List Nat -> Nat
  | [] => 0
  | x :: xs => Nat.add x (sumList xs)

-- Python: [x] * n
def replicateN {T : Type} (x : T) : Nat -> List T
  | 0 => []
  | n + 1 => x :: replicateN x n

/-! ## The file's encoding -/

-- Python: digits, the loop: out.append(u & mask); u >>= width
def digitsAux (mask width : Nat) : Nat -> Nat -> List Nat
  | 0, _ => []
  | p + 1, u => Nat.land u mask :: digitsAux mask width p (Nat.shiftRight u width)

-- Python: digits [digits]: the p low base-2^width digits of the natural u
def digits (u width p : Nat) : List Nat := digitsAux (2 ^ width - 1) width p u

-- Python: decode_rows, the loop over n rows
def decodeRowsAux (bits p : Nat) : Nat -> Nat -> List (List Nat)
  | 0, _ => []
  | n + 1, u => digits u bits p :: decodeRowsAux bits p n (Nat.shiftRight u (Nat.mul bits p))

-- Python: decode_rows [decodeRows]: n rows of p base-2^bits digits of u, row r from
-- digit r * p
def decodeRows (u bits n p : Nat) : List (List Nat) := decodeRowsAux bits p n u

-- Python: fits [fits]: u < 2^bits
def fits (u bits : Nat) : Bool := Nat.beq (Nat.shiftRight u bits) 0

-- Python: decoded_weights, one matrix each: rows of offset digits
def eRows (c : Cert) : List (List Nat) := decodeRows c.wE c.weightBits c.dVocab c.dModel
def posRows (c : Cert) : List (List Nat) := decodeRows c.wPos c.weightBits c.nCtx c.dModel
def qRows (c : Cert) : List (List Nat) := decodeRows c.wQ c.weightBits c.dModel c.dHead
def kRows (c : Cert) : List (List Nat) := decodeRows c.wK c.weightBits c.dModel c.dHead
def vRows (c : Cert) : List (List Nat) := decodeRows c.wV c.weightBits c.dModel c.dHead
def oRows (c : Cert) : List (List Nat) := decodeRows c.wO c.weightBits c.dHead c.dModel
def uRows (c : Cert) : List (List Nat) := decodeRows c.wU c.weightBits c.dModel c.dVocab

-- Python: h = 1 << (weight_bits - 1), the offset of the weight digits
def wHalf (c : Cert) : Nat := 2 ^ (c.weightBits - 1)

-- Python: decode_rows(c.gaps, c.gap_bits, d, d): the digits g = s + 2 of the witness
def gapRows (c : Cert) : List (List Nat) := decodeRows c.gaps c.gapBits c.dVocab c.dVocab

/-! ## Magnitudes -/

-- Python: path_magnitudes + magnitudes_fit [magnitudesFitWith]. Every weight has
-- |w| <= h (a digit 0 <= e < 2h stands for e - h). With attn = dm (h + h) dm h dh h and
-- ov = dm dh h dm h h: |EQKE|, |EQKP| <= attn h, |EVOU|, |PVOU| <= ov h, and the rescaled
-- |EUPU| <= dm (h + h) h 2^(2 weightShift). Intermediate products stay packed (a ring
-- identity), so only these final entries must fit.
def magnitudesFitWith (dm dh ws half h : Nat) : Bool :=
  decide (dm * (h + h) * dm * h * dh * h * h < half) &&
  decide (dm * dh * h * dm * h * h * h < half) &&
  decide (dm * (h + h) * h * 2 ^ (2 * ws) < half)

-- Python: magnitudes_fit [magnitudesFit]: every entry of every path table is below
-- 2^(width-1) in absolute value, so `unpack` is exact
def magnitudesFit (c : Cert) : Bool :=
  magnitudesFitWith c.dModel c.dHead c.weightShift (2 ^ (c.width - 1)) (wHalf c)

/-! ## Packing -/

-- Python: pack_row [packRow]: sum_j row[j] base^j; Python's Horner loop
-- `for x in reversed(row): acc = x + acc * base` unrolled from the front
def packRow (base : Nat) : List Nat -> Nat
  | [] => 0
  | x :: xs => Nat.add x (Nat.mul (packRow base xs) base)

-- Python: [pack_row(r, base) for r in rows]
def packRows (base : Nat) : List (List Nat) -> List Nat
  | [] => []
  | r :: rs => packRow base r :: packRows base rs

-- Python: pack_const [packConst]: sum_{j<p} x base^j
def packConst (x base : Nat) : Nat -> Nat
  | 0 => 0
  | p + 1 => Nat.add x (Nat.mul (packConst x base p) base)

-- Python: pack_cols, one step: [x + a * base for x, a in zip(r, acc)]
def zipAddMul (base : Nat) : List Nat -> List Nat -> List Nat
  | x :: xs, a :: rest => Nat.add x (Nat.mul a base) :: zipAddMul base xs rest
  | _, _ => []

-- Python: pack_cols, the loop over reversed(rows) with acc starting at `zero`
def packColsAux (base : Nat) (zero : List Nat) : List (List Nat) -> List Nat
  | [] => zero
  | r :: rs => zipAddMul base r (packColsAux base zero rs)

-- Python: pack_cols [packCols] (acc = [0] * len(rows[0]); rows = [] never happens, the
-- shapes are fixed, and gives [] here)
def packCols (base : Nat) (rows : List (List Nat)) : List Nat :=
  match rows with
  | [] => []
  | r :: _ => packColsAux base (replicateN 0 r.length) rows

-- Python: a pair (pos, neg) standing for pos - neg [Signed]
structure Signed where
  pos : Nat
  neg : Nat

-- Python: zsum, the loop with the running sums p, n
def zSumFrom : Nat -> Nat -> List Signed -> Signed
  | p, n, [] => Signed.mk p n
  | p, n, z :: zs => zSumFrom (Nat.add p z.pos) (Nat.add n z.neg) zs

-- Python: zsum [zSum]: (sum of pos, sum of neg)
def zSum (zs : List Signed) : Signed := zSumFrom 0 0 zs

-- Python: dot_packed, sum(x * z[0] for x, z in zip(row, packed))
def dotPos : List Nat -> List Signed -> Nat
  | x :: xs, z :: zs => Nat.add (Nat.mul x z.pos) (dotPos xs zs)
  | _, _ => 0

-- Python: dot_packed, sum(x * z[1] for x, z in zip(row, packed))
def dotNeg : List Nat -> List Signed -> Nat
  | x :: xs, z :: zs => Nat.add (Nat.mul x z.neg) (dotNeg xs zs)
  | _, _ => 0

-- Python: dot_packed [dotPacked]: sum_k (row[k] - h) packed[k] as a pair, sums = zSum packed:
-- (sum e_k P_k + h sum N) - (sum e_k N_k + h sum P). A ring identity: no condition.
def dotPacked (row : List Nat) (h : Nat) (packed : List Signed) (sums : Signed) : Signed :=
  Signed.mk (Nat.add (dotPos row packed) (Nat.mul h sums.neg))
    (Nat.add (dotNeg row packed) (Nat.mul h sums.pos))

-- Python: rows_times, the loop over the rows of a
def rowsTimesWith (h : Nat) (packed : List Signed) (sums : Signed) : List (List Nat) -> List Signed
  | [] => []
  | r :: rs => dotPacked r h packed sums :: rowsTimesWith h packed sums rs

-- Python: rows_times(a, h, packed) [rowsTimes]: the packed rows of A @ B (A as offset
-- digits with offset h, packed[k] packs row k of B)
def rowsTimes (h : Nat) (packed : List Signed) (a : List (List Nat)) : List Signed :=
  rowsTimesWith h packed (zSum packed) a

-- Python: cols_times, one step: [(a0 + x z0, a1 + x z1) for a, x in zip(acc, row)]
def zipAddScaled (z : Signed) : List Signed -> List Nat -> List Signed
  | a :: acc, x :: xs =>
    Signed.mk (Nat.add a.pos (Nat.mul x z.pos)) (Nat.add a.neg (Nat.mul x z.neg)) ::
      zipAddScaled z acc xs
  | _, _ => []

-- Python: cols_times, the loop `for row, z in zip(m, packed)`
def colsTimesAux : List Signed -> List (List Nat) -> List Signed -> List Signed
  | acc, row :: rows, z :: zs => colsTimesAux (zipAddScaled z acc row) rows zs
  | acc, _, _ => acc

-- Python: cols_times, the last step: [(a0 + h sums1, a1 + h sums0) for a in acc]
def finishCols (h : Nat) (sums : Signed) : List Signed -> List Signed
  | [] => []
  | a :: acc => Signed.mk (Nat.add a.pos (Nat.mul h sums.neg)) (Nat.add a.neg (Nat.mul h sums.pos)) ::
      finishCols h sums acc

-- Python: cols_times(m, h, packed) [colsTimes]: out[c] = sum_k (m[k][c] - h) packed[k], the
-- packed rows of M^T @ B (m = [] never happens, the shapes are fixed, and gives [] here)
def colsTimes (m : List (List Nat)) (h : Nat) (packed : List Signed) : List Signed :=
  match m with
  | [] => []
  | r :: _ => finishCols h (zSum packed) (colsTimesAux (replicateN (Signed.mk 0 0) r.length) m packed)

-- Python: signed_rows [signedRows]: [(u, neg) for u in rows]
def signedRows (neg : Nat) : List Nat -> List Signed
  | [] => []
  | u :: us => Signed.mk u neg :: signedRows neg us

-- Python: unpack [unpack]: the p digits of (pos + offset) - neg. The pair stands for
-- v = sum_j x_j 2^(width j) with every |x_j| < 2^(width-1) whenever magnitudesFit holds, and
-- offset = packConst 2^(width-1) 2^width p, so v + offset >= 0: Nat.sub is exact.
def unpack (z : Signed) (offset width p : Nat) : List Nat :=
  digits (Nat.sub (Nat.add z.pos offset) z.neg) width p

-- Python: [unpack(z, offset, width, p) for z in zs]
def unpackRows (offset width p : Nat) : List Signed -> List (List Nat)
  | [] => []
  | z :: zs => unpack z offset width p :: unpackRows offset width p zs

-- Python: path_tables, z[0] + offset - z[1] for every attention row (exact as in unpack)
def natRows (offset : Nat) : List Signed -> List Nat
  | [] => []
  | z :: zs => Nat.sub (Nat.add z.pos offset) z.neg :: natRows offset zs

/-! ## Packed tables -/

-- Python: Packed [Packed] (without the Python-only `entries` tuple; with the mask
-- 2^width - 1)
structure Packed where
  value : Nat
  width : Nat
  mask : Nat

-- Python: pack [pack]: Horner over the naturals xs. Every caller packs entries below
-- 2^width (table digits and margins by construction, exp table entries by expStepsOk),
-- so Packed.get reads them back.
def pack (xs : List Nat) (width : Nat) : Packed :=
  Packed.mk (packRow (2 ^ width) xs) width (2 ^ width - 1)

-- Python: get_by_shift [Packed.get]: entry idx, one shift and one mask
def Packed.get (p : Packed) (idx : Nat) : Nat :=
  Nat.land (Nat.shiftRight p.value (Nat.mul idx p.width)) p.mask

-- Python: get_at [Packed.getAt]: the entry at the known bit offset idx * width
def Packed.getAt (p : Packed) (bit : Nat) : Nat :=
  Nat.land (Nat.shiftRight p.value bit) p.mask

/-! ## Path tables -/

-- Python: Tables [Tables] (EQKE, EQKP, EVOU, PVOU, EUPU), digits x + 2^(width-1)
structure Tables where
  eqke : List (List Nat)
  eqkp : List (List Nat)
  evou : List (List Nat)
  pvou : List (List Nat)
  eupu : List (List Nat)

-- Python: zip(*rows), one column: the first entry of every row (none if a row is empty)
def headsOpt : List (List Nat) -> Option (List Nat)
  | [] => some []
  | [] :: _ => none
  | (x :: _) :: rs =>
    match headsOpt rs with
    | none => none
    | some hs => some (x :: hs)

-- Python: r[1:]
def tailOf : List Nat -> List Nat
  | [] => []
  | _ :: t => t

-- Python: [r[1:] for r in rows]
def tailsOf : List (List Nat) -> List (List Nat)
  | [] => []
  | r :: rs => tailOf r :: tailsOf rs

-- Python: zip(*rows), at most `fuel` columns
def transposeAux : Nat -> List (List Nat) -> List (List Nat)
  | 0, _ => []
  | n + 1, rows =>
    match headsOpt rows with
    | none => []
    | some hs => hs :: transposeAux n (tailsOf rows)

-- Python: transpose [transpose] = [list(c) for c in zip(*rows)] (zip stops at the
-- shortest row; the first row's length bounds the column count)
def transpose (rows : List (List Nat)) : List (List Nat) :=
  match rows with
  | [] => []
  | r :: _ => transposeAux r.length rows

-- Python: [x + y for x, y in zip(r, last)]
def zipAdd : List Nat -> List Nat -> List Nat
  | x :: xs, y :: ys => Nat.add x y :: zipAdd xs ys
  | _, _ => []

-- Python: Eq = [[x + y for x, y in zip(r, last)] for r in E] in path_tables
def addToRows (last : List Nat) : List (List Nat) -> List (List Nat)
  | [] => []
  | r :: rs => zipAdd r last :: addToRows last rs

-- Python: [(p << shift, n << shift) for p, n in u_rows]
def scaleRows (shift : Nat) : List Signed -> List Signed
  | [] => []
  | z :: zs => Signed.mk (Nat.shiftLeft z.pos shift) (Nat.shiftLeft z.neg shift) :: scaleRows shift zs

-- Python: path_tables, Eq = E + P[-1]: the query's embedding, offset digits with offset
-- 2h (each intermediate is its own top-level def)
def embedQuery (c : Cert) : List (List Nat) := addToRows (lastOr [] (posRows c)) (eRows c)

-- Python: path_tables, EP = E + P: every token, then every position
def keyRows (c : Cert) : List (List Nat) := appendL (eRows c) (posRows c)

-- Python: path_tables, the packed columns of EP^T: (P_k, h * repunit(d + K))
def keyCols (c : Cert) : List Signed :=
  signedRows (packConst (wHalf c) (2 ^ c.width) (c.dVocab + c.nCtx)) (packCols (2 ^ c.width) (keyRows c))

-- Python: path_tables, eqkep = rows_times(Eq, 2h, rows_times(W_Q, h, cols_times(W_K, h,
-- ep_cols))): row q packs EQKE[q] (digits 0 .. d-1) and EQKP[q] (digits d .. d+K-1)
def attnPacked (c : Cert) : List Signed :=
  rowsTimes (Nat.add (wHalf c) (wHalf c))
    (rowsTimes (wHalf c) (colsTimes (kRows c) (wHalf c) (keyCols c)) (qRows c)) (embedQuery c)

-- Python: path_tables, u = z[0] + offset - z[1] for every attention row (offset over
-- d + K digits)
def attnNat (c : Cert) : List Nat :=
  natRows (packConst (2 ^ (c.width - 1)) (2 ^ c.width) (c.dVocab + c.nCtx)) (attnPacked c)

-- Python: path_tables, EQKE.append(digits(u, w, d)) for every u
def eqkeRows (w d : Nat) : List Nat -> List (List Nat)
  | [] => []
  | u :: us => digits u w d :: eqkeRows w d us

-- Python: path_tables, EQKP.append(digits(u >> (w * d), w, K)) for every u
def eqkpRows (w d k : Nat) : List Nat -> List (List Nat)
  | [] => []
  | u :: us => digits (Nat.shiftRight u (Nat.mul w d)) w k :: eqkpRows w d k us

-- Python: path_tables, u_rows = signed_rows([pack_row(r, base) for r in W_U], h repunit(d))
def unembedPacked (c : Cert) : List Signed :=
  signedRows (packConst (wHalf c) (2 ^ c.width) c.dVocab) (packRows (2 ^ c.width) (uRows c))

-- Python: path_tables, vou = rows_times(W_V, h, rows_times(W_O, h, u_rows))
def vouPacked (c : Cert) : List Signed :=
  rowsTimes (wHalf c) (rowsTimes (wHalf c) (unembedPacked c) (oRows c)) (vRows c)

-- Python: path_tables, epvou = [unpack(z, offset, w, d) for z in rows_times(EP, h, vou)]:
-- EVOU (the first d rows), then PVOU
def epvouOf (c : Cert) : List (List Nat) :=
  unpackRows (packConst (2 ^ (c.width - 1)) (2 ^ c.width) c.dVocab) c.width c.dVocab
    (rowsTimes (wHalf c) (vouPacked c) (keyRows c))

-- Python: path_tables, EUPU = [unpack(z, offset, w, d) for z in rows_times(Eq, 2h,
-- u_scaled)], u_scaled = U's packed rows times 2^(2 weightShift): EUPU at the scale
-- 2^(-4 weightShift) of EVOU
def eupuOf (c : Cert) : List (List Nat) :=
  unpackRows (packConst (2 ^ (c.width - 1)) (2 ^ c.width) c.dVocab) c.width c.dVocab
    (rowsTimes (Nat.add (wHalf c) (wHalf c)) (scaleRows (2 * c.weightShift) (unembedPacked c))
      (embedQuery c))

-- Python: path_tables, after magnitudes_fit: Tables(EQKE, EQKP, epvou[:d], epvou[d:], EUPU)
def pathTablesFit (c : Cert) : Tables :=
  Tables.mk (eqkeRows c.width c.dVocab (attnNat c)) (eqkpRows c.width c.dVocab c.nCtx (attnNat c))
    (takeN c.dVocab (epvouOf c)) (dropN c.dVocab (epvouOf c)) (eupuOf c)

-- Python: path_tables [pathTables]; none = Reject (packing width too small)
def pathTables (c : Cert) : Option Tables :=
  cond (magnitudesFit c) (some (pathTablesFit c)) none

/-! ## Margins and prefix tables -/

-- Python: top_two's state (top, second)
structure TopTwo where
  top : Nat
  second : Nat

-- Python: top_two, the loop over row[1:]: a larger x pushes the old top (>= second) into
-- second; else second = max(second, x)
def topTwoAux : TopTwo -> List Nat -> TopTwo
  | st, [] => st
  | st, x :: xs =>
    cond (Nat.ble x st.top)
      (topTwoAux (TopTwo.mk st.top (cond (Nat.ble x st.second) st.second x)) xs)
      (topTwoAux (TopTwo.mk x st.top) xs)

-- Python: top_two [topTwo]: top = max(row), second = the max of the row without one
-- occurrence of top (second starts at 0: digits are >= 0 and rows have >= 2 entries)
def topTwo : List Nat -> TopTwo
  | [] => TopTwo.mk 0 0
  | x :: xs => topTwoAux (TopTwo.mk x 0) xs

-- Python: margin_row, [x + (c_second if x == top else c_top) for x in row]
def marginMap (top cTop cSecond : Nat) : List Nat -> List Nat
  | [] => []
  | x :: xs => Nat.add x (cond (Nat.beq x top) cSecond cTop) :: marginMap top cTop cSecond xs

-- Python: margin_row, c_top = base - top, c_second = base - second (both digits < base:
-- exact)
def marginWith (base : Nat) (st : TopTwo) (row : List Nat) : List Nat :=
  marginMap st.top (Nat.sub base st.top) (Nat.sub base st.second) row

-- Python: margin_row [marginRow]: dX[m] + base, dX[m] = X[m] - max_{j != m} X[j]
def marginRow (base : Nat) (row : List Nat) : List Nat := marginWith base (topTwo row) row

-- Python: [margin_row(r, base) for r in rows]
def marginRows (base : Nat) : List (List Nat) -> List (List Nat)
  | [] => []
  | r :: rs => marginRow base r :: marginRows base rs

-- Python: prefix_max_packed, the running max with acc
def prefixMaxAux : Nat -> List Nat -> List Nat
  | _, [] => []
  | acc, x :: xs => cond (Nat.ble x acc) (acc :: prefixMaxAux acc xs) (x :: prefixMaxAux x xs)

-- Python: prefix_max_packed [packPrefixMax]: pack(running max of row, acc = row[0])
def packPrefixMax (row : List Nat) (w : Nat) : Packed :=
  match row with
  | [] => pack [] w
  | x :: xs => pack (prefixMaxAux x (x :: xs)) w

-- Python: prefix_min_packed, the running min with acc
def prefixMinAux : Nat -> List Nat -> List Nat
  | _, [] => []
  | acc, x :: xs => cond (Nat.ble acc x) (acc :: prefixMinAux acc xs) (x :: prefixMinAux x xs)

-- Python: prefix_min_packed [packPrefixMin]: pack(running min of row, acc = row[0])
def packPrefixMin (row : List Nat) (w : Nat) : Packed :=
  match row with
  | [] => pack [] w
  | x :: xs => pack (prefixMinAux x (x :: xs)) w

/-! ## Exp enclosures and tables -/

-- Python: Bounds [Bounds]: lo <= x <= hi
structure Bounds where
  lo : Nat
  hi : Nat

-- Python: taylor_num [taylorNum]: sum_{k=0..4} (-a)^k (4!/k!) 2^(bb (4-k)), the positive
-- terms minus the negative ones (4!/k! = 24, 24, 12, 4, 1). For a <= 2^bb each negative
-- term is at most the positive term before it, so the Nat subtraction is exact (a = 1 in
-- every call).
def taylorNum (a bb : Nat) : Nat :=
  (24 * 2 ^ (4 * bb) + 12 * (a * a) * 2 ^ (2 * bb) + a * a * a * a) -
    (24 * a * 2 ^ (3 * bb) + 4 * (a * a * a) * 2 ^ bb)

-- Python: square_lo [squareLo]: n times lo = floor(lo^2 / 2^f)
def squareLo (f : Nat) : Nat -> Nat -> Nat
  | 0, lo => lo
  | n + 1, lo => squareLo f n (Nat.shiftRight (Nat.mul lo lo) f)

-- Python: square_hi [squareHi]: n times hi = ceil(hi^2 / 2^f) = (hi^2 + 2^f - 1) >> f
def squareHi (f : Nat) : Nat -> Nat -> Nat
  | 0, hi => hi
  | n + 1, hi => squareHi f n (Nat.shiftRight (Nat.add (Nat.mul hi hi) (2 ^ f - 1)) f)

-- Python: exp_neg_bounds [expNegBounds]: lo <= 2^F exp(-a / 2^b) <= hi for
-- 0 <= a <= 2^(b + squarings). Taylor degree 4: den = 24 2^(4 bb); remainder
-- rem = ceil(a^5 2^F / (120 2^(5 bb))); lo = floor(num 2^F / den) - rem (truncated at 0:
-- Python max(0, ..)), hi = ceil(num 2^F / den) + rem; then the squarings.
def expNegBounds (a b fracBits squarings : Nat) : Bounds :=
  let bb := b + squarings
  let one := 2 ^ fracBits
  let num := taylorNum a bb
  let den := 24 * 2 ^ (4 * bb)
  let remDen := 120 * 2 ^ (5 * bb)
  let rem := (a * a * a * a * a * one + remDen - 1) / remDen
  Bounds.mk (squareLo fracBits squarings (num * one / den - rem))
    (squareHi fracBits squarings ((num * one + den - 1) / den + rem))

-- Python: fine_step [fineStep]: exp(-1/512)
def fineStep : Bounds := expNegBounds 1 expRes expFrac expSquarings

-- Python: coarse_step [coarseStep]: exp(-1)
def coarseStep : Bounds := expNegBounds 1 0 expFrac expSquarings

-- Python: exp_steps_ok [expStepsOk]: every step of the exp tables is at most 2^expFrac,
-- so every table entry is (the bound |term| < T / 2 rests on it)
def expStepsOk : Bool :=
  Nat.ble fineStep.lo (2 ^ expFrac) && Nat.ble fineStep.hi (2 ^ expFrac) &&
  Nat.ble coarseStep.lo (2 ^ expFrac) && Nat.ble coarseStep.hi (2 ^ expFrac)

-- Python: ExpTables [ExpTables]
structure ExpTables where
  fineUp : Packed
  fineLo : Packed
  coarseUp : Packed
  coarseLo : Packed

-- Python: power_table, the loop: out.append(acc); acc = (acc step + 2^F - 1) >> F if
-- round_up else (acc step) >> F. The accumulator is a chain as long as the table (512 for
-- the fine tables): the reason for maxRecDepth in the certificate.
def powerTableAux (step : Nat) (roundUp : Bool) : Nat -> Nat -> List Nat
  | 0, _ => []
  | n + 1, acc =>
    acc :: powerTableAux step roundUp n
      (cond roundUp (Nat.shiftRight (Nat.add (Nat.mul acc step) (2 ^ expFrac - 1)) expFrac)
        (Nat.shiftRight (Nat.mul acc step) expFrac))

-- Python: power_table [powerTable]: [1, step, step^2, ...] (n entries), one = 2^EXP_FRAC
def powerTable (step n : Nat) (roundUp : Bool) : List Nat :=
  powerTableAux step roundUp n (2 ^ expFrac)

-- Python: exp_tables [expTables] (width = EXP_FRAC + 8; every entry is <= 2^EXP_FRAC)
def expTables : ExpTables :=
  ExpTables.mk (pack (powerTable fineStep.hi expSteps true) (expFrac + 8))
    (pack (powerTable fineStep.lo expSteps false) (expFrac + 8))
    (pack (powerTable coarseStep.hi (expUnits + 1) true) (expFrac + 8))
    (pack (powerTable coarseStep.lo (expUnits + 1) false) (expFrac + 8))

-- Python: exp_up, after k = min(k, EXP_LAST)
def expUpAt (t : ExpTables) (k : Nat) : Nat :=
  Nat.mul (Packed.get t.coarseUp (Nat.shiftRight k expRes)) (Packed.get t.fineUp (Nat.land k (expSteps - 1)))

-- Python: exp_up [expUp]: >= 2^(2 EXP_FRAC) exp(-k / 512) (clamped: exp(-64) beyond)
def expUp (t : ExpTables) (k : Nat) : Nat :=
  cond (Nat.ble k expLast) (expUpAt t k) (expUpAt t expLast)

-- Python: exp_lo [expLo]: <= 2^(2 EXP_FRAC) exp(-k / 512) (0 beyond exp(-64))
def expLo (t : ExpTables) (k : Nat) : Nat :=
  cond (Nat.ble expLast k) 0
    (Nat.mul (Packed.get t.coarseLo (Nat.shiftRight k expRes)) (Packed.get t.fineLo (Nat.land k (expSteps - 1))))

-- Python: ScoreScale [ScoreScale] (round = 2^shift - 1)
structure ScoreScale where
  isqLo : Nat
  isqHi : Nat
  shift : Nat
  round : Nat

-- Python: Scoring [Scoring]: wZero = 3 base (the offset of w), tOff = T, tK = K T,
-- tK1 = (K + 1) T
structure Scoring where
  exp : ExpTables
  scale : ScoreScale
  width : Nat
  wZero : Nat
  tOff : Nat
  tK : Nat
  tK1 : Nat

-- Python: e_up [eUp]: index (D isq_lo) >> shift, rounded down; every D passed here is a
-- row maximum minus an entry of that row, so the Nat subtraction that made it is exact
def eUp (sc : Scoring) (gap : Nat) : Nat :=
  expUp sc.exp (Nat.shiftRight (Nat.mul gap sc.scale.isqLo) sc.scale.shift)

-- Python: e_lo [eLo]: index (D isq_hi + 2^shift - 1) >> shift, rounded up
def eLo (sc : Scoring) (gap : Nat) : Nat :=
  expLo sc.exp (Nat.shiftRight (Nat.add (Nat.mul gap sc.scale.isqHi) sc.scale.round) sc.scale.shift)

-- Python: lower_term [lowerTerm]: t + T for t a lower bound of e w, e in [lo, hi], w given
-- as w + 3 base: lo |w| + T if w >= 0, else T - hi |w| (exact: |t| < T / 2). cond reduces
-- only the chosen branch, so only one product is computed.
def lowerTerm (sc : Scoring) (lo hi w : Nat) : Nat :=
  cond (Nat.ble sc.wZero w) (Nat.add sc.tOff (Nat.mul lo (Nat.sub w sc.wZero)))
    (Nat.sub sc.tOff (Nat.mul hi (Nat.sub sc.wZero w)))

/-! ## The gap proof -/

-- Python: family_size [familySize] for g = s + 2: 0 (g = 0), 1 (g = 1), else
-- g^(K-1) - [q < m] (g-1)^(K-1) (g^f >= (g-1)^f: the Nat subtraction is exact)
def familySize (q m g nCtx : Nat) : Nat :=
  cond (Nat.beq g 0) 0
    (cond (Nat.beq g 1) 1
      (Nat.sub (Nat.pow g (nCtx - 1)) (cond (Nat.ble m q) 0 (Nat.pow (Nat.sub g 1) (nCtx - 1)))))

-- Python: MaxInfo [MaxInfo] (margins + base): dEVmm = dEV[m][m], dPV = dPV[i][m] for the
-- free positions, dPVq = dPV[K-1][m], pmDEV: s -> min_{t<=s} dEV[t][m] (width + 1 bits)
structure MaxInfo where
  dEVmm : Nat
  dPV : List Nat
  dPVq : Nat
  pmDEV : Packed

-- Python: QueryInfo [QueryInfo]: ref = max_t EQKE[q][t] (a digit); posE = the position
-- factor of each free position; qE = the whole weight of the query position (both
-- factors); tLo = lower bound of the token factor of any token; posTlo = tLo * posE[i].lo;
-- pmax: s -> max_{t<=s} EQKE[q][t] (width + 1 bits)
structure QueryInfo where
  ref : Nat
  posE : List Bounds
  qE : Bounds
  tLo : Nat
  posTlo : List Nat
  pmax : Packed

-- Python: terms [terms]: [lower_term(lo pe.lo, hi pe.hi, w0 + x) for pe, x in zip(pos_e, dPV)]
def terms (sc : Scoring) (lo hi w0 : Nat) : List Bounds -> List Nat -> List Nat
  | b :: bs, x :: xs =>
    lowerTerm sc (Nat.mul lo b.lo) (Nat.mul hi b.hi) (Nat.add w0 x) :: terms sc lo hi w0 bs xs
  | _, _ => []

-- Python: terms_pre [termsPre]: terms with the products lo pe.lo precomputed (posLo)
def termsPre (sc : Scoring) (hi w0 : Nat) : List Nat -> List Bounds -> List Nat -> List Nat
  | pl :: pls, b :: bs, x :: xs =>
    lowerTerm sc pl (Nat.mul hi b.hi) (Nat.add w0 x) :: termsPre sc hi w0 pls bs xs
  | _, _, _ => []

-- Python: worst_placement_ok, sum(min(a, b) for a, b in zip(A, B))
def minSum : List Nat -> List Nat -> Nat
  | a :: xs, b :: ys => Nat.add (cond (Nat.ble a b) a b) (minSum xs ys)
  | _, _ => 0

-- Python: worst_placement_ok, min(a + T - b ...) from acc (a + T > b: |A - B| < T)
def minDiffFrom (t : Nat) : Nat -> List Nat -> List Nat -> Nat
  | acc, a :: xs, b :: ys =>
    cond (Nat.ble acc (Nat.sub (Nat.add a t) b)) (minDiffFrom t acc xs ys)
      (minDiffFrom t (Nat.sub (Nat.add a t) b) xs ys)
  | acc, _, _ => acc

-- Python: worst_placement_ok, min_i (A_i + T - B_i) (T for []: A has K - 1 >= 1 entries)
def minDiff (t : Nat) : List Nat -> List Nat -> Nat
  | a :: xs, b :: ys => minDiffFrom t (Nat.sub (Nat.add a t) b) xs ys
  | _, _ => t

-- Python: worst_placement_ok [worstPlacementOk]: Q + sum_i min(A_i, B_i)
-- + c_min max(0, min_i (A_i - B_i)) > 0, every term given as t + T:
-- Q' + sum_i min(A'_i, B'_i) + c_min max(T, min_i (A'_i + T - B'_i)) > (1 + n + c_min) T
def worstPlacementOk (sc : Scoring) (total : Nat) (a b : List Nat) (cMin : Bool) : Bool :=
  cond cMin
    (! Nat.ble (Nat.add (Nat.add total (minSum a b))
        (cond (Nat.ble (minDiff sc.tOff a b) sc.tOff) sc.tOff (minDiff sc.tOff a b))) sc.tK1)
    (! Nat.ble (Nat.add total (minSum a b)) sc.tK)

-- Python: query_term [queryTerm]: Q + T for the query position K-1, which holds q
-- (w = dEV[q][m] + dPV[K-1][m] + dEU[q][m] + 3 base)
def queryTerm (sc : Scoring) (w : Nat) (qi : QueryInfo) : Nat :=
  lowerTerm sc qi.qE.lo qi.qE.hi w

-- Python: max_terms [maxTerms]: A_i + T for the free positions holding the max token m
-- (gap = ref - eqke_qm: ref is the row's max, so the Nat subtraction is exact)
def maxTerms (sc : Scoring) (eqkeQm dEUqm : Nat) (qi : QueryInfo) (mi : MaxInfo) : List Nat :=
  terms sc (eLo sc (Nat.sub qi.ref eqkeQm)) (eUp sc (Nat.sub qi.ref eqkeQm)) (Nat.add mi.dEVmm dEUqm)
    qi.posE mi.dPV

-- Python: check_family, for g >= 2 (s = g - 2 >= 0), bit = s * (width + 1): B_i + T from
-- the prefix tables (pmax[s] <= ref: the Nat subtraction is exact), then the worst placement
def checkThreshold (sc : Scoring) (q m dEUqm : Nat) (qi : QueryInfo) (mi : MaxInfo) (total : Nat)
    (a : List Nat) (bit : Nat) : Bool :=
  worstPlacementOk sc total a
    (termsPre sc (eUp sc (Nat.sub qi.ref (Packed.getAt qi.pmax bit)))
      (Nat.add (Packed.getAt mi.pmDEV bit) dEUqm) qi.posTlo qi.posE mi.dPV)
    (! Nat.ble m q)

-- Python: check_family, from `if g == 1` on (total, A given)
def checkFamilyWith (sc : Scoring) (q m g dEUqm : Nat) (qi : QueryInfo) (mi : MaxInfo)
    (total : Nat) (a : List Nat) : Bool :=
  cond (Nat.beq g 1) (! Nat.ble (Nat.add total (sumList a)) sc.tK)
    (checkThreshold sc q m dEUqm qi mi total a (Nat.mul (Nat.sub g 2) (Nat.add sc.width 1)))

-- Python: check_family [checkFamily]: every input of F(q, m, g - 2) is correct
def checkFamily (sc : Scoring) (q m g eqkeQm dEUqm dEVqm : Nat) (qi : QueryInfo) (mi : MaxInfo) :
    Bool :=
  cond (Nat.beq g 0) true
    (checkFamilyWith sc q m g dEUqm qi mi (queryTerm sc (Nat.add (Nat.add dEVqm mi.dPVq) dEUqm) qi)
      (maxTerms sc eqkeQm dEUqm qi mi))

/-! ## Context -/

-- Python: Context [Context]
structure Context where
  eqke : List (List Nat)
  dEU : List (List Nat)
  dEV : List (List Nat)
  queries : List QueryInfo
  maxes : List MaxInfo
  scoring : Scoring

-- Python: build_context, maxes = [MaxInfo(dEV_cols[m][m], dPV_cols[m], dPV[-1][m],
-- prefix_min_packed(dEV_cols[m], w + 1)) for m in range(d)], walking the columns of dEV,
-- the columns of dPV[:-1] and the row dPV[-1] in lockstep
def buildMaxes (w : Nat) : Nat -> List (List Nat) -> List (List Nat) -> List Nat -> List MaxInfo
  | m, ev :: evs, pv :: pvs, x :: xs =>
    MaxInfo.mk (nth ev m) pv x (packPrefixMin ev (w + 1)) :: buildMaxes w (m + 1) evs pvs xs
  | _, _, _, _ => []

-- Python: enclose [enclose]: Bounds(e_lo(gap), e_up(gap))
def enclose (sc : Scoring) (gap : Nat) : Bounds := Bounds.mk (eLo sc gap) (eUp sc gap)

-- Python: query_info, pos_e = [enclose(sc, pref - x) for x in prow[:-1]] (pref is the
-- row's max: exact)
def posEnc (sc : Scoring) (pref : Nat) : List Nat -> List Bounds
  | [] => []
  | x :: xs => enclose sc (Nat.sub pref x) :: posEnc sc pref xs

-- Python: query_info, pos_tlo = [t_lo * b.lo for b in pos_e]
def posLo (tLo : Nat) : List Bounds -> List Nat
  | [] => []
  | b :: bs => Nat.mul tLo b.lo :: posLo tLo bs

-- Python: query_info, the QueryInfo from pos_e and t_lo
def queryInfoOf (ref : Nat) (posE : List Bounds) (qE : Bounds) (tLo : Nat) (pmax : Packed) :
    QueryInfo :=
  QueryInfo.mk ref posE qE tLo (posLo tLo posE) pmax

-- Python: query_info, after qe = enclose(ref - row[q]) and pq = enclose(pref - prow[-1]):
-- q_e = Bounds(qe.lo * pq.lo, qe.hi * pq.hi), t_lo = e_lo(ref - min(row))
def queryInfoFrom (sc : Scoring) (row prow : List Nat) (pmax : Packed) (ref pref : Nat)
    (qe pq : Bounds) : QueryInfo :=
  queryInfoOf ref (posEnc sc pref (initOf prow)) (Bounds.mk (Nat.mul qe.lo pq.lo) (Nat.mul qe.hi pq.hi))
    (eLo sc (Nat.sub ref (minList row))) pmax

-- Python: query_info, after pmax: ref = get(pmax, len(row) - 1) (the row max ends the
-- prefix max), pref = max_list(prow); both gaps are a row max minus an entry: exact
def queryInfoWith (sc : Scoring) (q : Nat) (row prow : List Nat) (pmax : Packed) (ref pref : Nat) :
    QueryInfo :=
  queryInfoFrom sc row prow pmax ref pref (enclose sc (Nat.sub ref (nth row q)))
    (enclose sc (Nat.sub pref (lastOr 0 prow)))

-- Python: query_info, after pmax = prefix_max_packed(row, w + 1)
def queryInfoPacked (sc : Scoring) (q : Nat) (row prow : List Nat) (pmax : Packed) : QueryInfo :=
  queryInfoWith sc q row prow pmax (Packed.get pmax (row.length - 1)) (maxList prow)

-- Python: query_info [queryInfo]
def queryInfo (sc : Scoring) (w q : Nat) (row prow : List Nat) : QueryInfo :=
  queryInfoPacked sc q row prow (packPrefixMax row (w + 1))

-- Python: build_context, queries = [query_info(...) for q in range(d)] over the EQKE and
-- EQKP rows in lockstep
def buildQueries (sc : Scoring) (w : Nat) :
    Nat -> List (List Nat) -> List (List Nat) -> List QueryInfo
  | q, row :: rows, prow :: prows => queryInfo sc w q row prow :: buildQueries sc w (q + 1) rows prows
  | _, _, _ => []

-- Python: scoring [scoring]: shift = ISQ_FRAC + 4 weight_shift - EXP_RES (>= 55, so the
-- Nat subtraction does not truncate), T = 2^(4 EXP_FRAC + width + 3)
def scoring (c : Cert) : Scoring :=
  Scoring.mk expTables
    (ScoreScale.mk c.isqLo c.isqHi (isqFrac + 4 * c.weightShift - expRes)
      (2 ^ (isqFrac + 4 * c.weightShift - expRes) - 1))
    c.width (3 * 2 ^ c.width) (2 ^ (4 * expFrac + c.width + 3)) (c.nCtx * 2 ^ (4 * expFrac + c.width + 3))
    ((c.nCtx + 1) * 2 ^ (4 * expFrac + c.width + 3))

-- Python: build_context, after sc is built (dEV, dPV given)
def buildContextWith (c : Cert) (tab : Tables) (sc : Scoring) (dEV dPV : List (List Nat)) :
    Context :=
  Context.mk tab.eqke (marginRows (2 ^ c.width) tab.eupu) dEV
    (buildQueries sc c.width 0 tab.eqke tab.eqkp)
    (buildMaxes c.width 0 (transpose dEV) (transpose (initOf dPV)) (lastOr [] dPV)) sc

-- Python: build_context [buildContext]
def buildContext (c : Cert) (tab : Tables) : Context :=
  buildContextWith c tab (scoring c) (marginRows (2 ^ c.width) tab.evou)
    (marginRows (2 ^ c.width) tab.pvou)

/-! ## Validation -/

-- Python: inv_sqrt_ok [invSqrtOk]: lo^2 d <= 2^(2F) <= hi^2 d
def invSqrtOk (d lo hi fracBits : Nat) : Bool :=
  Nat.ble (lo * lo * d) (2 ^ (2 * fracBits)) && Nat.ble (2 ^ (2 * fracBits)) (hi * hi * d)

-- Python: validate, the inner loop `for m in range(q, d)` on the digits g = s + 2 of row
-- q from m = q: s <= m - 1, i.e. g <= m + 1 (s >= -2 holds: g >= 0)
def gapRowOk : Nat -> List Nat -> Bool
  | _, [] => true
  | m, g :: gs => Nat.ble g (m + 1) && gapRowOk (m + 1) gs

-- Python: validate, the outer loop `for q in range(d)`
def gapsOkAux : Nat -> List (List Nat) -> Bool
  | _, [] => true
  | q, row :: rows => gapRowOk q (dropN q row) && gapsOkAux (q + 1) rows

-- Python: validate [wellFormed]; false = Reject
def wellFormed (c : Cert) : Bool :=
  Nat.ble 1 c.dVocab && Nat.ble 1 c.dModel && Nat.ble 1 c.dHead &&
  Nat.ble 2 c.dVocab && Nat.ble 2 c.nCtx &&
  Nat.ble 2 c.weightBits && Nat.ble 1 c.gapBits && Nat.ble 2 c.width &&
  fits c.wE (c.weightBits * (c.dVocab * c.dModel)) && fits c.wPos (c.weightBits * (c.nCtx * c.dModel)) &&
  fits c.wQ (c.weightBits * (c.dModel * c.dHead)) && fits c.wK (c.weightBits * (c.dModel * c.dHead)) &&
  fits c.wV (c.weightBits * (c.dModel * c.dHead)) && fits c.wO (c.weightBits * (c.dHead * c.dModel)) &&
  fits c.wU (c.weightBits * (c.dModel * c.dVocab)) &&
  fits c.gaps (c.gapBits * (c.dVocab * c.dVocab)) &&
  invSqrtOk c.dHead c.isqLo c.isqHi isqFrac &&
  gapsOkAux 0 (gapRows c) &&
  expStepsOk

/-! ## The count -/

-- Python: certified_count, the inner loop `for m in range(q, d)`: the rows of the witness
-- digits, EQKE, dEU, dEV and the list maxes, each dropped to index q, walked in lockstep.
-- none = Reject (a family is not proven correct).
def countRow (c : Cert) (sc : Scoring) (q : Nat) (qi : QueryInfo) :
    Nat -> List Nat -> List Nat -> List Nat -> List Nat -> List MaxInfo -> Option Nat
  | m, g :: gs, e :: es, u :: us, v :: vs, mi :: mis =>
    cond (checkFamily sc q m g e u v qi mi)
      (match countRow c sc q qi (m + 1) gs es us vs mis with
       | none => none
       | some t => some (Nat.add (familySize q m g c.nCtx) t))
      none
  | _, _, _, _, _, _ => some 0

-- Python: certified_count, the outer loop `for q in range(d)` over the rows of the
-- witness, EQKE, dEU, dEV and the queries, in lockstep
def countRows (c : Cert) (ctx : Context) :
    Nat -> List (List Nat) -> List (List Nat) -> List (List Nat) -> List (List Nat) ->
      List QueryInfo -> Option Nat
  | q, g :: gs, e :: es, u :: us, v :: vs, qi :: qis =>
    match countRow c ctx.scoring q qi q (dropN q g) (dropN q e) (dropN q u) (dropN q v) (dropN q ctx.maxes) with
    | none => none
    | some t =>
      match countRows c ctx (q + 1) gs es us vs qis with
      | none => none
      | some r => some (Nat.add t r)
  | _, _, _, _, _, _ => some 0

-- Python: certified_count, the loops over the context's rows from q = 0
def countWith (c : Cert) (ctx : Context) : Option Nat :=
  countRows c ctx 0 (gapRows c) ctx.eqke ctx.dEU ctx.dEV ctx.queries

-- Python: certified_count [certifiedCount]: the number of inputs the witness proves
-- correct; none = Reject
def certifiedCount (c : Cert) : Option Nat :=
  cond (wellFormed c)
    (match pathTables c with
     | none => none
     | some tab => countWith c (buildContext c tab))
    none

-- Python: check [check]: true iff certifiedCount c = some k with n <= k
def check (c : Cert) (n : Nat) : Bool :=
  match certifiedCount c with
  | none => false
  | some k => Nat.ble n k

end MaxKCert

-- Grounding (leanprover/lean4 sources; one line per core name or construct used; details
-- in docs/lean-grounding.md, sections 1-9):
-- reduce_nat (the GMP-accelerated Nat.add sub mul div mod gcd beq ble land lor xor
--   shiftLeft shiftRight pow, on literal arguments, heads by constant name):
--   src/kernel/type_checker.cpp (type_checker::reduce_nat, called from whnf)
-- Nat.add, Nat.sub, Nat.mul, Nat.pow, Nat.beq, Nat.ble, List.length, Option: src/Init/Prelude.lean
-- Nat.land, Nat.shiftLeft, Nat.shiftRight: src/Init/Data/Nat/Bitwise/Basic.lean
-- Nat.div (`/`), HPow Nat (`^`): src/Init/Prelude.lean, src/Init/Data/Nat/Div/Basic.lean
-- cond (`match c with | true => x | false => y`), not (`!`), and (`&&`): src/Init/Prelude.lean
-- Decidable.decide (exported as `decide`), Nat.decLt: src/Init/Prelude.lean
-- `<=` `<` `=` (ASCII binrel), `&&` `||` `!`, `::`, `->`: src/Init/Notation.lean
-- structural recursion `| _, [] => .. | n, x :: xs => f (n + 1) xs`: List.enumFrom,
--   src/Init/Data/List/Basic.lean
-- overlapping patterns `| [a] => .. | _ :: b :: as => f (b :: as)`: List.getLast,
--   src/Init/Data/List/Basic.lean
-- two-list recursion `| x :: xs, y :: ys => .. | _, _ => ..`: List.zipWith,
--   src/Init/Data/List/Basic.lean
-- nested match alternatives (many1Indent, checkColGe): src/Lean/Parser/Term.lean (matchAlts)
-- export MonadState (get) at the root: src/Init/Prelude.lean (why `get` is `Packed.get` here)
-- lakefile keys name, defaultTargets, leanOptions, lean_lib, globs, roots:
--   src/lake/Lake/Load/Toml.lean, src/lake/Lake/Config/LeanLibConfig.lean,
--   src/lake/Lake/Toml/Decode.lean (DecodeToml instances for names and lists of them)
