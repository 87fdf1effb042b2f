/-!
# MaxKCert.Checker: the certificate checker, evaluated by the Lean kernel

A function-for-function transcription of the Python mirror `certify/checker.py` (and of
`floor_div`, `ceil_div`, `exp_neg_bounds` from `certify/arith.py`), with the same integer
semantics: Python `>>` on int is `Int.shiftRight` (floor); Python `a // b` with `b > 0` is
`Int.fdiv` (floor); Python `%` and `//` on a non-negative int with a positive modulus are
Nat `%` and `/`. A Python `Reject` is `none` (or `false`). Every definition carries a
`-- Python: name` comment naming its counterpart. Certificates prove
`MaxKCert.check data N = true` by `decide +kernel`: only the kernel evaluates it.

## What a passing check means

`check c N = true` only if, for the Max-of-K model whose weights are the integers in `c`
times 2^(-weightShift), at least N of the dVocab^K inputs (K = nCtx) are classified
correctly: the logit of the max token is strictly larger than every other logit at the
last position (ties count as wrong).

## The proof (the "gap" proof; its witness is the table s[q][m] = c.gaps[q][m])

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
which is what `worstPlacementOk` tests. Families of
different (q, m) are disjoint, so the certified count is the sum of their sizes
|F(q, m, s)| = (s+2)^(K-1) - [q < m] (s+1)^(K-1) (1 for s = -1, 0 for s = -2).

## Facts the argument relies on

* exp is positive and increasing; the Lagrange remainder of exp's Taylor series
  (|R_4(y)| <= |y|^5 / 5! for y <= 0, used in `expNegBounds`); squaring is monotone on
  non-negative numbers, so rounding lower bounds down and upper bounds up (floor / ceil
  by `Int.fdiv`, `Int.shiftRight`) keeps every enclosure outward.
* 1/sqrt(d_head) lies in [isqLo, isqHi] / 2^64 because isqLo^2 d_head <= 2^128 <=
  isqHi^2 d_head (checked in `wellFormed`, via `invSqrtOk`).
* Kronecker packing: if v = sum_j c_j 2^(w j) with every |c_j| < 2^(w-1), the balanced
  base-2^w digits of v are exactly the c_j (`unpack`, `Packed.get`). A product of an
  integer matrix with packed rows is the packed product (a ring identity, whatever the
  size of the digits), so chained products stay packed and only the final tables are
  unpacked; `magnitudesFit` checks |entry| <= (product of the inner dimensions) x
  (product of the factors' largest magnitudes) < 2^(w-1) for each final table and for
  dEV (|dEV| <= 2 max|EVOU|), the entries of the packed tables.
* The kernel's arithmetic on Nat literals (GMP-accelerated add, sub, mul, div, mod,
  pow, beq, ble, shiftRight) is correct; everything else is plain structural recursion.
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

-- Python: ISQ_FRAC [isqFrac]: fixed-point bits of the 1/sqrt(d_head) enclosure
def isqFrac : Nat := 64

-- Python (arith.py): EXP_SQUARINGS, the default `squarings` of exp_neg_bounds
def expSquarings : Nat := 16

-- Python: Cert [Cert]
structure Cert where
  dVocab : Nat
  nCtx : Nat
  dModel : Nat
  dHead : Nat
  weightShift : Nat      -- weights are the integers times 2^(-weightShift)
  wE : List (List Int)   -- [dVocab][dModel]
  wPos : List (List Int) -- [nCtx][dModel]
  wQ : List (List Int)   -- [dModel][dHead]
  wK : List (List Int)   -- [dModel][dHead]
  wV : List (List Int)   -- [dModel][dHead]
  wO : List (List Int)   -- [dHead][dModel]
  wU : List (List Int)   -- [dModel][dVocab]
  width : Nat            -- packing width in bits
  isqLo : Nat
  isqHi : Nat
  gaps : List (List Int) -- witness: threshold s[q][m], [dVocab][dVocab]

/-! ## Small helpers -/

-- Python: max_list, the running maximum started at acc
def maxFrom : Int -> List Int -> Int
  | acc, [] => acc
  | acc, x :: xs => if acc < x then maxFrom x xs else maxFrom acc xs

-- Python: max_list [maxList]. Python raises on []; every call here is on a nonempty
-- list (shapes are validated first); [] gives 0.
def maxList : List Int -> Int
  | [] => 0
  | x :: xs => maxFrom x xs

-- Python: min_list, the running minimum started at acc
def minFrom : Int -> List Int -> Int
  | acc, [] => acc
  | acc, x :: xs => if x < acc then minFrom x xs else minFrom acc xs

-- Python: min_list [minList] ([] gives 0, see maxList)
def minList : List Int -> Int
  | [] => 0
  | x :: xs => minFrom x xs

-- Python: max_abs, one row: running max of |x| started at acc
def maxAbsRow : Nat -> List Int -> Nat
  | acc, [] => acc
  | acc, x :: xs =>
    if acc < Int.natAbs x then maxAbsRow (Int.natAbs x) xs else maxAbsRow acc xs

-- Python: max_abs, over the rows: running max started at acc
def maxAbsFrom : Nat -> List (List Int) -> Nat
  | acc, [] => acc
  | acc, r :: rs => maxAbsFrom (maxAbsRow acc r) rs

-- Python: max_abs [maxAbs] (all |x| >= 0, so starting the max at 0 is max_list)
def maxAbs (rows : List (List Int)) : Nat := maxAbsFrom 0 rows

-- Python: all(len(r) == p for r in rows) in shape_ok
def allLen (p : Nat) : List (List Int) -> Bool
  | [] => true
  | r :: rs => Nat.beq r.length p && allLen p rs

-- Python: shape_ok [shapeOk]
def shapeOk (rows : List (List Int)) (n p : Nat) : Bool :=
  Nat.beq rows.length n && allLen p rows

-- Python: nth [nth]: xs[i] by a list walk (0 past the end; never read there)
def nth : List Int -> Nat -> Int
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

-- Python: xs[-1] (d for an empty list; never happens after validation; the shape of
-- core's List.getLast)
def lastOr {T : Type} (d : T) : List T -> T
  | [] => d
  | [x] => x
  | _ :: y :: rest => lastOr d (y :: rest)

-- Python: sum(xs)
def sumList : List Int -> Int
  | [] => 0
  | x :: xs => x + sumList xs

-- Python: [x] * n
def replicateI (x : Int) : Nat -> List Int
  | 0 => []
  | n + 1 => x :: replicateI x n

/-! ## Integer rounding (arith.py) -/

-- Python: floor_div (arith.py) [floorDiv]: floor(a / b) for b > 0
def floorDiv (a b : Int) : Int := Int.fdiv a b

-- Python: ceil_div (arith.py) [ceilDiv]: ceil(a / b) = -((-a) // b) for b > 0
def ceilDiv (a b : Int) : Int := - Int.fdiv (- a) b

-- Python: a >> k (floor(a / 2^k))
def floorShift (a : Int) (k : Nat) : Int := Int.shiftRight a k

-- Python: -((-a) >> k) (ceil(a / 2^k))
def ceilShift (a : Int) (k : Nat) : Int := - Int.shiftRight (- a) k

-- Python: max(0, x)
def max0 (x : Int) : Int := if x < 0 then 0 else x

/-! ## Packing -/

-- Python: pack_row [packRow]: sum_j row[j] base^j; Python's Horner loop
-- `for x in reversed(row): acc = x + acc * base` unrolled from the front
def packRow (base : Int) : List Int -> Int
  | [] => 0
  | x :: xs => x + packRow base xs * base

-- Python: [pack_row(r, base) for r in b] in checked_mul
def packRows (base : Int) : List (List Int) -> List Int
  | [] => []
  | r :: rs => packRow base r :: packRows base rs

-- Python: pack_cols, one step: [x + a * base for x, a in zip(r, acc)]
def zipAddMul (base : Int) : List Int -> List Int -> List Int
  | x :: xs, a :: rest => (x + a * base) :: zipAddMul base xs rest
  | _, _ => []

-- Python: pack_cols, the loop over reversed(rows) with acc starting at `zero`
def packColsAux (base : Int) (zero : List Int) : List (List Int) -> List Int
  | [] => zero
  | r :: rs => zipAddMul base r (packColsAux base zero rs)

-- Python: pack_cols [packCols] (acc = [0] * len(rows[0]); rows = [] raises in Python,
-- never happens after validation, gives [] here)
def packCols (base : Int) (rows : List (List Int)) : List Int :=
  match rows with
  | [] => []
  | r :: _ => packColsAux base (replicateI 0 r.length) rows

-- Python: digits, the loop: out.append(u % base - half); u //= base
def digitsAux (half base : Nat) : Nat -> Nat -> List Int
  | 0, _ => []
  | p + 1, u => (Int.ofNat (u % base) - Int.ofNat half) :: digitsAux half base p (u / base)

-- Python: digits [digits]: the p low base-2^width digits of the natural u, each minus
-- 2^(width-1)
def digits (u width p : Nat) : List Int := digitsAux (2 ^ (width - 1)) (2 ^ width) p u

-- Python: unpack_offset [unpackOffset]: sum_j 2^(width-1) 2^(width j) over p digits
def unpackOffset (width p : Nat) : Int :=
  packRow (Int.ofNat (2 ^ width)) (replicateI (Int.ofNat (2 ^ (width - 1))) p)

-- Python: unpack [unpack]. u = v + offset is >= 0 whenever magnitudesFit holds (v =
-- sum_j c_j base^j with |c_j| < half, so u = sum_j (c_j + half) base^j with digits in
-- (0, base)); hence Int.toNat is exact and Nat % and / are Python's % and // on u.
def unpack (v offset : Int) (width p : Nat) : List Int :=
  digits (Int.toNat (v + offset)) width p

-- Python: [unpack(v, offset, width, p) for v in vs]
def unpackRows (offset : Int) (width p : Nat) : List Int -> List (List Int)
  | [] => []
  | v :: vs => unpack v offset width p :: unpackRows offset width p vs

-- Python: path_tables, [v + offset for v in vs] as naturals (>= 0 when magnitudesFit
-- holds, as in unpack, so Int.toNat is exact)
def natRows (offset : Int) : List Int -> List Nat
  | [] => []
  | v :: vs => Int.toNat (v + offset) :: natRows offset vs

-- Python: dot_packed [dotPacked]: sum_k row[k] packed[k]
def dotPacked : List Int -> List Int -> Int
  | x :: xs, b :: bs => x * b + dotPacked xs bs
  | _, _ => 0

-- Python: rows_times [rowsTimes] = [dot_packed(r, packed) for r in a]: the packed rows of
-- a @ B when packed[k] packs row k of B
def rowsTimes (packed : List Int) : List (List Int) -> List Int
  | [] => []
  | r :: rs => dotPacked r packed :: rowsTimes packed rs

-- Python: cols_times, one step: [a + x * v for a, x in zip(acc, row)]
def zipAddScaled (v : Int) : List Int -> List Int -> List Int
  | a :: acc, x :: xs => (a + x * v) :: zipAddScaled v acc xs
  | _, _ => []

-- Python: cols_times, the loop `for row, v in zip(m, packed)`
def colsTimesAux : List Int -> List (List Int) -> List Int -> List Int
  | acc, row :: rows, v :: vs => colsTimesAux (zipAddScaled v acc row) rows vs
  | acc, _, _ => acc

-- Python: cols_times [colsTimes]: out[h] = sum_k m[k][h] packed[k], the packed rows of
-- m^T @ B (acc = [0] * len(m[0]); m = [] raises in Python, never happens after
-- validation, gives [] here)
def colsTimes (m : List (List Int)) (packed : List Int) : List Int :=
  match m with
  | [] => []
  | r :: _ => colsTimesAux (replicateI 0 r.length) m packed

-- Python: path_magnitudes + magnitudes_fit [magnitudesFitWith]. With
-- attn = dm (mE + mP) dm mQ dh mK and ov = dm dh mV dm mO mU: |EQKE| <= attn mE,
-- |EQKP| <= attn mP, |dEV| <= 2 ov mE (which also bounds |EVOU|), |PVOU| <= ov mP, and
-- the rescaled |EUPU| <= dm (mE + mP) mU 2^(2 weightShift). Intermediate products stay
-- packed (a ring identity), so only these final entries must fit.
def magnitudesFitWith (dm dh ws half mE mP mQ mK mV mO mU : Nat) : Bool :=
  decide (dm * (mE + mP) * dm * mQ * dh * mK * mE < half) &&
  decide (dm * (mE + mP) * dm * mQ * dh * mK * mP < half) &&
  decide (2 * (dm * dh * mV * dm * mO * mU) * mE < half) &&
  decide (dm * dh * mV * dm * mO * mU * mP < half) &&
  decide (dm * (mE + mP) * mU * 2 ^ (2 * ws) < half)

-- Python: magnitudes_fit [magnitudesFit]: every entry of every path table and of dEV is
-- below 2^(width-1) in absolute value, so `unpack` is exact and packed tables read back
def magnitudesFit (c : Cert) : Bool :=
  magnitudesFitWith c.dModel c.dHead c.weightShift (2 ^ (c.width - 1)) (maxAbs c.wE)
    (maxAbs c.wPos) (maxAbs c.wQ) (maxAbs c.wK) (maxAbs c.wV) (maxAbs c.wO) (maxAbs c.wU)

/-! ## Packed tables -/

-- Python: Packed [Packed] (without the Python-only `entries` tuple)
structure Packed where
  value : Nat
  width : Nat

-- Python: pack, Horner over the digits x + half: value = v + (value << width), from the end
def packDigits (half : Int) (base : Nat) : List Int -> Nat
  | [] => 0
  | x :: xs => Int.toNat (x + half) + packDigits half base xs * base

-- Python: pack [pack]. Every caller packs entries with |x| < 2^(width-1) (EQKE and dEV
-- entries by magnitudesFit, exp table entries by construction), so every digit x + half
-- is in [0, 2^width), Int.toNat is exact and Packed.get reads x back.
def pack (xs : List Int) (width : Nat) : Packed :=
  Packed.mk (packDigits (Int.ofNat (2 ^ (width - 1))) (2 ^ width) xs) width

-- Python: get_by_shift [get]: entry idx, one shift and one mod
def Packed.get (p : Packed) (idx : Nat) : Int :=
  Int.ofNat (Nat.shiftRight p.value (idx * p.width) % (2 ^ p.width)) -
    Int.ofNat (2 ^ (p.width - 1))

/-! ## Path tables -/

-- Python: Tables [Tables] (EQKE, EQKP, EVOU, PVOU, EUPU)
structure Tables where
  eqke : List (List Int)
  eqkp : List (List Int)
  evou : List (List Int)
  pvou : List (List Int)
  eupu : List (List Int)

-- Python: zip(*rows), one column: the first entry of every row (none if a row is empty)
def headsOpt : List (List Int) -> Option (List Int)
  | [] => some []
  | [] :: _ => none
  | (x :: _) :: rs =>
    match headsOpt rs with
    | none => none
    | some hs => some (x :: hs)

-- Python: r[1:]
def tailOf : List Int -> List Int
  | [] => []
  | _ :: t => t

-- Python: [r[1:] for r in rows]
def tailsOf : List (List Int) -> List (List Int)
  | [] => []
  | r :: rs => tailOf r :: tailsOf rs

-- Python: zip(*rows), at most `fuel` columns
def transposeAux : Nat -> List (List Int) -> List (List Int)
  | 0, _ => []
  | n + 1, rows =>
    match headsOpt rows with
    | none => []
    | some hs => hs :: transposeAux n (tailsOf rows)

-- Python: transpose [transpose] = [list(c) for c in zip(*rows)] (zip stops at the
-- shortest row; the first row's length bounds the column count)
def transpose (rows : List (List Int)) : List (List Int) :=
  match rows with
  | [] => []
  | r :: _ => transposeAux r.length rows

-- Python: [x + y for x, y in zip(r, last)]
def zipAdd : List Int -> List Int -> List Int
  | x :: xs, y :: ys => (x + y) :: zipAdd xs ys
  | _, _ => []

-- Python: Eq = [[x + y for x, y in zip(r, last)] for r in c.W_E] in path_tables
def addToRows (last : List Int) : List (List Int) -> List (List Int)
  | [] => []
  | r :: rs => zipAdd r last :: addToRows last rs

-- Python: [x * k for x in xs] (path_tables: [u << shift for u in u_rows], u * 2^shift)
def scaleRow (k : Int) : List Int -> List Int
  | [] => []
  | x :: xs => x * k :: scaleRow k xs

-- Python: path_tables, Eq = E + P[-1]: the query's embedding (each intermediate is its
-- own top-level def, reduced once by the kernel)
def embedQuery (c : Cert) : List (List Int) := addToRows (lastOr [] c.wPos) c.wE

-- Python: path_tables, EP = c.W_E + c.W_pos: every token, then every position
def keyRows (c : Cert) : List (List Int) := appendL c.wE c.wPos

-- Python: path_tables, eqkep = rows_times(Eq, rows_times(W_Q, cols_times(W_K, pack_cols(EP))))
-- row q packs EQKE[q] (digits 0 .. d-1) and EQKP[q] (digits d .. d+K-1)
def attnPacked (c : Cert) : List Int :=
  rowsTimes (rowsTimes (colsTimes c.wK (packCols (Int.ofNat (2 ^ c.width)) (keyRows c))) c.wQ)
    (embedQuery c)

-- Python: path_tables, u = v + offset for every attention row (offset over d + K digits)
def attnNat (c : Cert) : List Nat :=
  natRows (unpackOffset c.width (c.dVocab + c.nCtx)) (attnPacked c)

-- Python: path_tables, EQKE.append(digits(u, w, d)) for every u
def eqkeRows (w d : Nat) : List Nat -> List (List Int)
  | [] => []
  | u :: us => digits u w d :: eqkeRows w d us

-- Python: path_tables, EQKP.append(digits(u >> (w * d), w, K)) for every u
def eqkpRows (w d k : Nat) : List Nat -> List (List Int)
  | [] => []
  | u :: us => digits (Nat.shiftRight u (w * d)) w k :: eqkpRows w d k us

-- Python: path_tables, u_rows = [pack_row(r, base) for r in c.W_U]
def unembedPacked (c : Cert) : List Int := packRows (Int.ofNat (2 ^ c.width)) c.wU

-- Python: path_tables, vou = rows_times(W_V, rows_times(W_O, u_rows))
def vouPacked (c : Cert) : List Int := rowsTimes (rowsTimes (unembedPacked c) c.wO) c.wV

-- Python: path_tables, epvou = [unpack(v, offset, w, d) for v in rows_times(EP, vou)]:
-- EVOU (the first d rows), then PVOU
def epvouOf (c : Cert) : List (List Int) :=
  unpackRows (unpackOffset c.width c.dVocab) c.width c.dVocab (rowsTimes (vouPacked c) (keyRows c))

-- Python: path_tables, EUPU = [unpack(v, offset, w, d) for v in rows_times(Eq, [u << shift
-- for u in u_rows])], shift = 2 weight_shift: EUPU at the scale 2^(-4 weightShift) of EVOU
def eupuOf (c : Cert) : List (List Int) :=
  unpackRows (unpackOffset c.width c.dVocab) c.width c.dVocab
    (rowsTimes (scaleRow (Int.ofNat (2 ^ (2 * c.weightShift))) (unembedPacked c)) (embedQuery c))

-- Python: path_tables, after magnitudes_fit: Tables(EQKE, EQKP, epvou[:d], epvou[d:], EUPU)
def pathTablesFit (c : Cert) : Tables :=
  Tables.mk (eqkeRows c.width c.dVocab (attnNat c)) (eqkpRows c.width c.dVocab c.nCtx (attnNat c))
    (takeN c.dVocab (epvouOf c)) (dropN c.dVocab (epvouOf c)) (eupuOf c)

-- Python: path_tables [pathTables]; none = Reject (packing width too small)
def pathTables (c : Cert) : Option Tables :=
  if magnitudesFit c then some (pathTablesFit c) else none

-- Python: top_two's state (top, second, n_top)
structure TopTwo where
  top : Int
  second : Int
  count : Nat

-- Python: top_two, the loop: second is the largest entry below top, or top itself while
-- there is none; count is how often top occurs
def topTwoAux : TopTwo -> List Int -> TopTwo
  | st, [] => st
  | st, x :: xs =>
    if st.top < x then topTwoAux (TopTwo.mk x st.top 1) xs
    else if x = st.top then topTwoAux (TopTwo.mk st.top st.second (st.count + 1)) xs
    else if decide (st.second = st.top) || decide (st.second < x) then
      topTwoAux (TopTwo.mk st.top x st.count) xs
    else topTwoAux st xs

-- Python: top_two [topTwo] (top = second = row[0], n = 0, then the loop over the row)
def topTwo : List Int -> TopTwo
  | [] => TopTwo.mk 0 0 0
  | x :: xs => topTwoAux (TopTwo.mk x x 0) (x :: xs)

-- Python: margin_row, [x - (second if (x == top and n_top == 1) else top) for x in row]
def marginMap (st : TopTwo) : List Int -> List Int
  | [] => []
  | x :: xs =>
    (x - (if decide (x = st.top) && Nat.beq st.count 1 then st.second else st.top)) ::
      marginMap st xs

-- Python: margin_row [marginRow]: d[m] = row[m] - max_{j != m} row[j]
def marginRow (row : List Int) : List Int := marginMap (topTwo row) row

-- Python: [margin_row(r) for r in rows]
def marginRows : List (List Int) -> List (List Int)
  | [] => []
  | r :: rs => marginRow r :: marginRows rs

-- Python: prefix(row, max), the loop with acc
def prefixMaxAux : Int -> List Int -> List Int
  | _, [] => []
  | acc, x :: xs => if acc < x then x :: prefixMaxAux x xs else acc :: prefixMaxAux acc xs

-- Python: prefix(row, max) [prefixMax]: running max, acc = row[0]
def prefixMax : List Int -> List Int
  | [] => []
  | x :: xs => prefixMaxAux x (x :: xs)

-- Python: prefix(row, min), the loop with acc
def prefixMinAux : Int -> List Int -> List Int
  | _, [] => []
  | acc, x :: xs => if x < acc then x :: prefixMinAux x xs else acc :: prefixMinAux acc xs

-- Python: prefix(row, min) [prefixMin]: running min, acc = row[0]
def prefixMin : List Int -> List Int
  | [] => []
  | x :: xs => prefixMinAux x (x :: xs)

/-! ## Exp enclosures and tables -/

-- Python: (lo, hi) pairs
structure Bounds where
  lo : Int
  hi : Int

-- Python: exp_neg_bounds (arith.py), the squaring loop for lo: lo = floor_div(lo * lo, one)
def squareLo (one : Int) : Nat -> Int -> Int
  | 0, lo => lo
  | n + 1, lo => squareLo one n (floorDiv (lo * lo) one)

-- Python: exp_neg_bounds (arith.py), the squaring loop for hi: hi = ceil_div(hi * hi, one)
def squareHi (one : Int) : Nat -> Int -> Int
  | 0, hi => hi
  | n + 1, hi => squareHi one n (ceilDiv (hi * hi) one)

-- Python: exp_neg_bounds (arith.py), the Taylor loop for n = EXP_TAYLOR_DEGREE = 4:
-- num = sum_{k=0..4} (-a)^k (4!/k!) 2^(bb (4-k)), with 4!/k! = 24, 24, 12, 4, 1
def taylorNum (a : Int) (bb : Nat) : Int :=
  24 * Int.ofNat (2 ^ (4 * bb)) -
    24 * a * Int.ofNat (2 ^ (3 * bb)) +
    12 * (a * a) * Int.ofNat (2 ^ (2 * bb)) -
    4 * (a * a * a) * Int.ofNat (2 ^ bb) +
    a * a * a * a

-- Python: exp_neg_bounds (arith.py) [expNegBounds]: lo <= 2^F exp(-a / 2^b) <= hi for
-- a >= 0. Taylor degree n = 4: den = 4! << (bb n) = 24 * 2^(4 bb), remainder bound
-- rem_num / rem_den = a^5 / (5! << (bb (n+1))) = a^5 / (120 * 2^(5 bb)).
-- The clamp branch (a > 64 << b) is omitted: the only calls, (a, b) = (1, 9) and (1, 0)
-- in expTables, never clamp (1 <= 64 << b).
def expNegBounds (a : Int) (b fracBits squarings : Nat) : Bounds :=
  let bb := b + squarings
  let one : Int := Int.ofNat (2 ^ fracBits)
  let num : Int := taylorNum a bb
  let den : Int := 24 * Int.ofNat (2 ^ (4 * bb))
  let rem : Int := ceilDiv (a * a * a * a * a * one) (120 * Int.ofNat (2 ^ (5 * bb)))
  Bounds.mk
    (squareLo one squarings (max0 (floorDiv (num * one) den - rem)))
    (squareHi one squarings (ceilDiv (num * one) den + rem))

-- Python: ExpTables [ExpTables]
structure ExpTables where
  fineUp : Packed
  fineLo : Packed
  coarseUp : Packed
  coarseLo : Packed

-- Python: power_table, the loop: out.append(acc); acc = round(acc * step / 2^EXP_FRAC)
-- (round_up: -((-acc * step) >> EXP_FRAC), else (acc * step) >> EXP_FRAC)
def powerTableAux (step : Int) (roundUp : Bool) : Nat -> Int -> List Int
  | 0, _ => []
  | n + 1, acc =>
    acc :: powerTableAux step roundUp n
      (if roundUp then ceilShift (acc * step) expFrac else floorShift (acc * step) expFrac)

-- Python: power_table [powerTable]: [1, step, step^2, ...] (n entries), one = 1 << EXP_FRAC
def powerTable (step : Int) (n : Nat) (roundUp : Bool) : List Int :=
  powerTableAux step roundUp n (Int.ofNat (2 ^ expFrac))

-- Python: exp_tables, b_lo, b_up = exp_neg_bounds(1, EXP_RES, EXP_FRAC)  (exp(-1/512))
def fineStep : Bounds := expNegBounds 1 expRes expFrac expSquarings

-- Python: exp_tables, e_lo, e_up = exp_neg_bounds(1, 0, EXP_FRAC)  (exp(-1))
def coarseStep : Bounds := expNegBounds 1 0 expFrac expSquarings

-- Python: exp_tables [expTables] (width = EXP_FRAC + 8; every entry is in [0, 2^EXP_FRAC],
-- far inside the packing range)
def expTables : ExpTables :=
  ExpTables.mk (pack (powerTable fineStep.hi expSteps true) (expFrac + 8))
    (pack (powerTable fineStep.lo expSteps false) (expFrac + 8))
    (pack (powerTable coarseStep.hi (expUnits + 1) true) (expFrac + 8))
    (pack (powerTable coarseStep.lo (expUnits + 1) false) (expFrac + 8))

-- Python: exp_up, after k = min(k, EXP_UNITS * EXP_STEPS)
def expUpAt (t : ExpTables) (k : Nat) : Int :=
  Packed.get t.coarseUp (Nat.shiftRight k expRes) * Packed.get t.fineUp (k % expSteps)

-- Python: exp_up [expUp]: >= 2^(2 EXP_FRAC) exp(-k / 512) for k >= 0 (clamped)
def expUp (t : ExpTables) (k : Nat) : Int :=
  if k <= expUnits * expSteps then expUpAt t k else expUpAt t (expUnits * expSteps)

-- Python: exp_lo [expLo]: <= 2^(2 EXP_FRAC) exp(-k / 512) for k >= 0 (0 beyond exp(-64))
def expLo (t : ExpTables) (k : Nat) : Int :=
  if expUnits * expSteps <= k then 0
  else Packed.get t.coarseLo (Nat.shiftRight k expRes) * Packed.get t.fineLo (k % expSteps)

-- Python: ScoreScale [ScoreScale]
structure ScoreScale where
  isqLo : Nat
  isqHi : Nat
  shift : Nat

-- Python: Scoring [Scoring]
structure Scoring where
  exp : ExpTables
  scale : ScoreScale

-- Python: e_up [eUp]: index (D isq_lo) >> shift, rounded down. Every D passed here is
-- >= 0 (a row maximum minus an entry of that row) and isqLo is a Nat, so the index is
-- >= 0 and Int.toNat is exact.
def eUp (sc : Scoring) (gap : Int) : Int :=
  expUp sc.exp (Int.toNat (floorShift (gap * Int.ofNat sc.scale.isqLo) sc.scale.shift))

-- Python: e_lo [eLo]: index -((-(D isq_hi)) >> shift), rounded up (>= 0 as in eUp)
def eLo (sc : Scoring) (gap : Int) : Int :=
  expLo sc.exp (Int.toNat (ceilShift (gap * Int.ofNat sc.scale.isqHi) sc.scale.shift))

-- Python: lower_prod [lowerProd]: lo * w if w >= 0 else hi * w
def lowerProd (lo hi w : Int) : Int := if 0 <= w then lo * w else hi * w

/-! ## The gap proof -/

-- Python: family_size [familySize]. validate guarantees s >= -2, so for s >= 0 Int.toNat
-- is exact and (s+2)^free >= (s+1)^free (the Nat subtraction does not truncate).
def familySize (q m : Nat) (s : Int) (nCtx : Nat) : Nat :=
  if s = -2 then 0
  else if s = -1 then 1
  else (Int.toNat s + 2) ^ (nCtx - 1) - (if q < m then (Int.toNat s + 1) ^ (nCtx - 1) else 0)

-- Python: MaxInfo [MaxInfo]: dEV_mm = dEV[m][m], dPV = dPV[i][m] for the free positions
-- i = 0 .. K-2, dPV_q = dPV[K-1][m] (the query position's), pm_dEV: s -> min_{t<=s} dEV[t][m]
structure MaxInfo where
  dEVmm : Int
  dPV : List Int
  dPVq : Int
  pmDEV : Packed

-- Python: QueryInfo [QueryInfo]: ref = max_t EQKE[q][t]; posE = the position factor of
-- each free position; qE = the whole weight of the query position (both factors);
-- tLo = lower bound of the token factor of any token; pmax: s -> max_{t<=s} EQKE[q][t]
structure QueryInfo where
  ref : Int
  posE : List Bounds
  qE : Bounds
  tLo : Int
  pmax : Packed

-- Python: terms [terms]: [lower_prod(lo * b.lo, hi * b.hi, w0 + x) for b, x in
-- zip(pos_e, dPV)]
def terms (lo hi w0 : Int) : List Bounds -> List Int -> List Int
  | b :: bs, x :: xs => lowerProd (lo * b.lo) (hi * b.hi) (w0 + x) :: terms lo hi w0 bs xs
  | _, _ => []

-- Python: worst_placement_ok, sum(min(a, b) for a, b in zip(A, B))
def minSum : List Int -> List Int -> Int
  | a :: xs, b :: ys => (if a < b then a else b) + minSum xs ys
  | _, _ => 0

-- Python: worst_placement_ok, low = min(a - b over zip(A, B)), the running min from acc
def minDiffFrom : Int -> List Int -> List Int -> Int
  | acc, a :: xs, b :: ys => if a - b < acc then minDiffFrom (a - b) xs ys else minDiffFrom acc xs ys
  | acc, _, _ => acc

-- Python: A[0] (0 for []; A has K - 1 >= 1 entries after validation)
def headOr (d : Int) : List Int -> Int
  | [] => d
  | x :: _ => x

-- Python: worst_placement_ok [worstPlacementOk]: Q + sum_i min(A_i, B_i)
-- + (max(low, 0) if c_min == 1 else 0) > 0, low = min_i (A_i - B_i): the smallest of the
-- sums Q + sum B + (the c smallest A_i - B_i) over c >= c_min
def worstPlacementOk (total : Int) (a b : List Int) (cMin : Nat) : Bool :=
  decide (0 < total + minSum a b +
    (if cMin = 1 then max0 (minDiffFrom (headOr 0 a - headOr 0 b) a b) else 0))

-- Python: query_term [queryTerm]: the query position K-1, holding q
def queryTerm (dEVqm dEUqm : Int) (qi : QueryInfo) (mi : MaxInfo) : Int :=
  lowerProd qi.qE.lo qi.qE.hi (dEVqm + mi.dPVq + dEUqm)

-- Python: max_terms [maxTerms]: the free positions holding the max token m
-- (gap = ref - eqke_qm)
def maxTerms (eqkeQm dEUqm : Int) (qi : QueryInfo) (mi : MaxInfo) (sc : Scoring) : List Int :=
  terms (eLo sc (qi.ref - eqkeQm)) (eUp sc (qi.ref - eqkeQm)) (mi.dEVmm + dEUqm) qi.posE mi.dPV

-- Python: check_family, from `if s == -1` on (total, A given). For s >= 0, Int.toNat s = s.
def checkFamilyWith (q m : Nat) (s dEUqm : Int) (qi : QueryInfo) (mi : MaxInfo) (sc : Scoring)
    (total : Int) (a : List Int) : Bool :=
  if s = -1 then decide (0 < total + sumList a)
  else
    worstPlacementOk total a
      (terms qi.tLo (eUp sc (qi.ref - Packed.get qi.pmax (Int.toNat s)))
        (Packed.get mi.pmDEV (Int.toNat s) + dEUqm) qi.posE mi.dPV)
      (if q < m then 1 else 0)

-- Python: check_family [checkFamily]: every input of F(q, m, s) is correct
def checkFamily (q m : Nat) (s eqkeQm dEUqm dEVqm : Int) (qi : QueryInfo) (mi : MaxInfo)
    (sc : Scoring) : Bool :=
  if s = -2 then true
  else
    checkFamilyWith q m s dEUqm qi mi sc (queryTerm dEVqm dEUqm qi mi)
      (maxTerms eqkeQm dEUqm qi mi sc)

/-! ## Context -/

-- Python: Context [Context]
structure Context where
  eqke : List (List Int)
  dEU : List (List Int)
  dEV : List (List Int)
  queries : List QueryInfo
  maxes : List MaxInfo
  scoring : Scoring

-- Python: build_context, maxes = [MaxInfo(dEV_cols[m][m], dPV_cols[m], dPV[-1][m],
-- pack(prefix(dEV_cols[m], min), w)) for m in range(d)], walking the columns of dEV, the
-- columns of dPV[:-1] and the row dPV[-1] in lockstep
def buildMaxes (w : Nat) : Nat -> List (List Int) -> List (List Int) -> List Int -> List MaxInfo
  | m, ev :: evs, pv :: pvs, x :: xs =>
    MaxInfo.mk (nth ev m) pv x (pack (prefixMin ev) w) :: buildMaxes w (m + 1) evs pvs xs
  | _, _, _, _ => []

-- Python: enclose [enclose]: Bounds(e_lo(gap), e_up(gap))
def enclose (sc : Scoring) (gap : Int) : Bounds := Bounds.mk (eLo sc gap) (eUp sc gap)

-- Python: query_info, pos_e = [enclose(sc, pref - x) for x in prow[:-1]]
def posEnc (sc : Scoring) (pref : Int) : List Int -> List Bounds
  | [] => []
  | x :: xs => enclose sc (pref - x) :: posEnc sc pref xs

-- Python: query_info, the QueryInfo built from qe = enclose(ref - row[q]) and
-- pq = enclose(pref - prow[-1]): q_e = Bounds(qe.lo * pq.lo, qe.hi * pq.hi)
def queryInfoFrom (sc : Scoring) (row prow : List Int) (pmax : Packed) (ref pref : Int)
    (qe pq : Bounds) : QueryInfo :=
  QueryInfo.mk ref (posEnc sc pref (initOf prow)) (Bounds.mk (qe.lo * pq.lo) (qe.hi * pq.hi))
    (eLo sc (ref - minList row)) pmax

-- Python: query_info, after pmax: ref = get(pmax, len(row) - 1) (the row max ends the
-- prefix max), pref = max_list(prow)
def queryInfoWith (sc : Scoring) (q : Nat) (row prow : List Int) (pmax : Packed) (ref pref : Int) :
    QueryInfo :=
  queryInfoFrom sc row prow pmax ref pref (enclose sc (ref - nth row q))
    (enclose sc (pref - lastOr 0 prow))

-- Python: query_info, after pmax = pack(prefix(row, max), w)
def queryInfoPacked (sc : Scoring) (q : Nat) (row prow : List Int) (pmax : Packed) : QueryInfo :=
  queryInfoWith sc q row prow pmax (Packed.get pmax (row.length - 1)) (maxList prow)

-- Python: query_info [queryInfo]
def queryInfo (sc : Scoring) (w q : Nat) (row prow : List Int) : QueryInfo :=
  queryInfoPacked sc q row prow (pack (prefixMax row) w)

-- Python: build_context, queries = [query_info(...) for q in range(d)] over the EQKE and
-- EQKP rows in lockstep
def buildQueries (sc : Scoring) (w : Nat) :
    Nat -> List (List Int) -> List (List Int) -> List QueryInfo
  | q, row :: rows, prow :: prows => queryInfo sc w q row prow :: buildQueries sc w (q + 1) rows prows
  | _, _, _ => []

-- Python: build_context, after sc is built (dEV, dPV given)
def buildContextWith (c : Cert) (tab : Tables) (sc : Scoring) (dEV dPV : List (List Int)) :
    Context :=
  Context.mk tab.eqke (marginRows tab.eupu) dEV (buildQueries sc c.width 0 tab.eqke tab.eqkp)
    (buildMaxes c.width 0 (transpose dEV) (transpose (initOf dPV)) (lastOr [] dPV)) sc

-- Python: build_context [buildContext]; shift = ISQ_FRAC + 4 weight_shift - EXP_RES (>= 55,
-- so the Nat subtraction does not truncate)
def buildContext (c : Cert) (tab : Tables) : Context :=
  buildContextWith c tab
    (Scoring.mk expTables (ScoreScale.mk c.isqLo c.isqHi (isqFrac + 4 * c.weightShift - expRes)))
    (marginRows tab.evou) (marginRows tab.pvou)

/-! ## Validation -/

-- Python: inv_sqrt_ok (arith.py) [invSqrtOk]: lo^2 d <= 2^(2F) <= hi^2 d
-- (0 <= lo holds since lo is a Nat)
def invSqrtOk (d lo hi fracBits : Nat) : Bool :=
  decide (lo * lo * d <= 2 ^ (2 * fracBits)) && decide (2 ^ (2 * fracBits) <= hi * hi * d)

-- Python: validate, the inner loop `for m in range(q, d)` on gaps[q][q:]:
-- -2 <= gaps[q][m] <= m - 1 (m - 1 computed in Int)
def gapRowOk : Nat -> List Int -> Bool
  | _, [] => true
  | m, s :: ss => decide (-2 <= s) && decide (s <= Int.ofNat m - 1) && gapRowOk (m + 1) ss

-- Python: validate, the outer loop `for q in range(d)`
def gapsOkAux : Nat -> List (List Int) -> Bool
  | _, [] => true
  | q, row :: rows => gapRowOk q (dropN q row) && gapsOkAux (q + 1) rows

-- Python: validate [wellFormed]; false = Reject. weight_shift >= 0 and 0 <= isq_lo hold
-- by the Nat types.
def wellFormed (c : Cert) : Bool :=
  decide (1 <= c.dVocab) && decide (1 <= c.dModel) && decide (1 <= c.dHead) &&
  decide (2 <= c.dVocab) && decide (2 <= c.nCtx) &&
  shapeOk c.wE c.dVocab c.dModel && shapeOk c.wPos c.nCtx c.dModel &&
  shapeOk c.wQ c.dModel c.dHead && shapeOk c.wK c.dModel c.dHead &&
  shapeOk c.wV c.dModel c.dHead && shapeOk c.wO c.dHead c.dModel &&
  shapeOk c.wU c.dModel c.dVocab &&
  decide (2 <= c.width) &&
  invSqrtOk c.dHead c.isqLo c.isqHi isqFrac &&
  shapeOk c.gaps c.dVocab c.dVocab &&
  gapsOkAux 0 c.gaps

/-! ## The count -/

-- Python: certified_count, the inner loop `for m in range(q, d)`: the rows gaps[q],
-- EQKE[q], dEU[q], dEV[q] and the list maxes, each dropped to index q, walked in lockstep.
-- none = Reject (a family is not proven correct).
def countRow (c : Cert) (sc : Scoring) (q : Nat) (qi : QueryInfo) :
    Nat -> List Int -> List Int -> List Int -> List Int -> List MaxInfo -> Option Nat
  | m, s :: ss, e :: es, u :: us, v :: vs, mi :: mis =>
    if checkFamily q m s e u v qi mi sc = false then none
    else
      match countRow c sc q qi (m + 1) ss es us vs mis with
      | none => none
      | some t => some (familySize q m s c.nCtx + t)
  | _, _, _, _, _, _ => some 0

-- Python: certified_count, the outer loop `for q in range(d)` over the rows of gaps, EQKE,
-- dEU, dEV and the queries, in lockstep
def countRows (c : Cert) (ctx : Context) :
    Nat -> List (List Int) -> List (List Int) -> List (List Int) -> List (List Int) ->
      List QueryInfo -> Option Nat
  | q, g :: gs, e :: es, u :: us, v :: vs, qi :: qis =>
    match countRow c ctx.scoring q qi q (dropN q g) (dropN q e) (dropN q u) (dropN q v) (dropN q ctx.maxes) with
    | none => none
    | some t =>
      match countRows c ctx (q + 1) gs es us vs qis with
      | none => none
      | some r => some (t + r)
  | _, _, _, _, _, _ => some 0

-- Python: certified_count, the loops over the context's rows from q = 0
def countWith (c : Cert) (ctx : Context) : Option Nat :=
  countRows c ctx 0 c.gaps ctx.eqke ctx.dEU ctx.dEV ctx.queries

-- Python: certified_count [certifiedCount]: the number of inputs the witness proves
-- correct; none = Reject
def certifiedCount (c : Cert) : Option Nat :=
  if wellFormed c = false then none
  else
    match pathTables c with
    | none => none
    | some tab => countWith c (buildContext c tab)

-- Python: check [check]: true iff certifiedCount c = some k with n <= k
def check (c : Cert) (n : Nat) : Bool :=
  match certifiedCount c with
  | none => false
  | some k => Nat.ble n k

end MaxKCert

-- Grounding (leanprover/lean4 sources; one line per core name or construct used):
-- Int, Int.ofNat, Int.negSucc: src/Init/Data/Int/Basic.lean
-- Int.toNat: src/Init/Data/Int/Basic.lean (`def toNat : Int -> Nat`, not deprecated)
-- Int.natAbs: src/Init/Data/Int/Basic.lean
-- Int.decEq (DecidableEq Int), Int.decLe, Int.decLt: src/Init/Data/Int/Basic.lean
-- Int.fdiv: src/Init/Data/Int/DivMod/Basic.lean (older trees: src/Init/Data/Int/Basic.lean)
-- Int.shiftRight: src/Init/Data/Int/Bitwise/Basic.lean (protected; floor semantics)
-- Nat.shiftRight: src/Init/Data/Nat/Bitwise/Basic.lean
-- Nat.beq, Nat.ble, Nat.decLe, Nat.decLt, Nat.pow, List.length, Option: src/Init/Prelude.lean
-- Decidable.decide (exported as `decide`), ite: src/Init/Prelude.lean
-- `<=` `<` `=` (ASCII binrel), `&&` `||` `!`, `::`, `->`: src/Init/Notation.lean
-- and (Bool, lazy match on the first argument): src/Init/Prelude.lean
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
