"""Sound exhaustive accuracy through the path decomposition.

For query token q (the last token), max token m and competitor j != m, the logit
margin times the softmax normaliser Z = sum_i e_i is

    Z (logit_m - logit_j) = sum_i e_i (Y[q,i,t_i,m] - Y[q,i,t_i,j]),
    e_i = exp((EQKE[q,t_i] + EQKP[q,i] - c_q) / sqrt(d_head)),
    Y[q,i,t,:] = EVOU[t,:] + PVOU[i,:] + EUPU[q,:]

(c_q is any per-query shift; Z > 0 so signs are unchanged). The float64 pass:

1. Convexity pre-test: margin_j Z >= sum_i e_i G[q,i,t_i,m] with
   G[q,i,t,m] = min_{j != m} (Y[q,i,t,m] - Y[q,i,t,j]). If that is above the error
   bound, the input is certainly correct.
2. Full check of the rest: all d_vocab logits.
3. Inputs whose float margin lies within the error bound go to the exact path.

Error bound (a priori, u = 2^-53): the path tables are exact integers rounded once
to float64; e_i is enclosed rigorously (integer enclosure, relative width rho, stored
as mantissa times a power of two so that no weight underflows). When some weight lies
below 2^-960 (attention scores spread by more than about 665), each input is rescaled
by its own largest weight (an exact power of two: signs are unchanged), so Z~ >= 1/2.
With B = max|EVOU| + max|PVOU| + max|EUPU|, every float logit obeys
|L~_j - L_j| <= Z B ((K + 4) u + 1.01 rho) + (K + 1)(2B + 1) 2^-1074 (the last term:
products and rescaled weights that underflow, each off by at most 2^-1075), and G~
obeys a bound of the same form with 2B. We decide only when the float margin exceeds
TAU = 8 B ((4K + 16) u + 2 rho) Z~ + 8 (K + 1)(2B + 1) 2^-1074, more than twice any
possible error, so every float decision is certain.

Exact path: the margin is sum over distinct scores s of e^s * (sum of the exact
rational coefficients of the positions with that score). The scores are distinct
algebraic numbers (rationals times 1/sqrt(d_head)), so by Lindemann-Weierstrass the
sum is zero iff every grouped coefficient is zero (an exact tie: wrong). Otherwise it
is nonzero and interval evaluation at rising precision (mpmath.iv) finds its sign.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np

from .arith import exp_neg_relative_side
from .exact import PathTables

TAIL_SIZE = 1 << 19  # inputs per vectorised block
EXHAUSTIVE_MAX = 1 << 31  # inputs: about two minutes of brute force on 2 cores


def check_exhaustive_in_reach(d_vocab: int, n_ctx: int) -> None:
    if d_vocab ** n_ctx > EXHAUSTIVE_MAX:
        raise ValueError(f"{d_vocab}^{n_ctx} inputs are out of reach for an exhaustive count (limit "
                         f"{EXHAUSTIVE_MAX}); `certify sweep` reports a sampled estimate of the accuracy instead")


@dataclass(frozen=True)
class BruteForceResult:
    correct: int
    total: int
    exact_path_inputs: int
    seconds: float
    flops: int = 0  # float operations of the vectorised pass (the exact path not counted)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


@dataclass(frozen=True)
class AttentionTable:
    """e[q, i, t] = exp((score(q, i, t) - c_q) / sqrt(d_head)) enclosed as mant * 2^expo.

    `mant` (float64 in [0.5, 1]) times 2^`expo` (int) is an upper bound and the true
    value lies in [upper (1 - rho), upper]. The exponent is kept apart so that no
    weight ever underflows, however far below the row maximum c_q it lies: a consumer
    rescales the terms of one input (or one proof family) by its own largest exponent
    with `scaled`, where only terms 2^-1022 below that input's largest can underflow.
    `scores` are the exact integer scores EQKE[q,t] + EQKP[q,i] (scale 2^score_exp).
    """

    mant: np.ndarray
    expo: np.ndarray  # int64, or Python ints (object) when some exponent does not fit (score spreads ~1e19+)
    rho: float
    scores: np.ndarray  # object array [q, i, t] of int
    score_exp: int

    @property
    def value(self) -> np.ndarray:
        """The upper bounds as plain float64 (entries below 2^-1022 underflow towards 0:
        use only where `needs_rescaling` is False)."""
        return np.ldexp(self.mant, _clamped_exponent(self.expo))

    @property
    def needs_rescaling(self) -> bool:
        """True when some weight is too small for `value` to hold it as a normal float."""
        return bool(self.expo.min() < MIN_SAFE_EXPO)

    @staticmethod
    def scaled(mant: np.ndarray, expo: np.ndarray, top: np.ndarray | int) -> np.ndarray:
        """mant * 2^(expo - top): exact while the result is normal; below 2^-1022 the
        rounding error is at most 2^-1075 in absolute value (UNDERFLOW_SLACK covers it).
        The exponents may be Python ints of any size: only their clamped difference is
        handed to ldexp."""
        return np.ldexp(mant, _clamped_exponent(expo - top))


def _clamped_exponent(e) -> np.ndarray:
    """max(e, -2000) as int64 for integers e <= 2000 of any size (scalars, int or object arrays)."""
    if np.ndim(e) == 0:
        return np.int64(max(int(e), -2000))
    return np.maximum(e, -2000).astype(np.int64)


MIN_SAFE_EXPO = -960  # 2^-960 times any mantissa in [0.5, 1] is a normal float64
UNDERFLOW_UNIT = 2.0 ** -1074  # bounds the absolute error of one product that underflows


def attention_table(tables: PathTables) -> AttentionTable:
    eqke, eqkp = tables.EQKE, tables.EQKP
    e = min(eqke.exp, eqkp.exp)
    qe, qp = eqke.align(e).ints, eqkp.align(e).ints
    d_vocab, n_ctx = qp.shape
    scores = qe[:, None, :] + qp[:, :, None]  # [q, i, t]
    # x = (s - c_q) 2^e / sqrt(d_head) = -(c_q - s) 2^e / sqrt(d);  a/2^b with
    # a = (c_q - s)^2 * 2^(2e+2w) / d exactly is not an integer, so enclose the
    # square root: sqrt((c_q - s)^2 2^(2e) / d) through integers (exact for d square).
    mant = np.empty(scores.shape)
    expo = np.empty(scores.shape, dtype=object)  # Python ints: attention spreads near 1e38 need ~1e38-bit exponents
    rho = 0.0
    w = max(128, e + 64)  # extra bits for the square-root enclosure of the argument
    for q in range(d_vocab):
        c = max(scores[q].ravel())
        for i in range(n_ctx):
            for t in range(d_vocab):
                diff = int(c - scores[q, i, t])  # >= 0
                lo_arg, b = _scaled_arg_lower(diff, e, tables.d_head, w)
                # |x| in [lo_arg, lo_arg + 1] / 2^b, so exp(x) in [exp(-(lo_arg+1)/2^b), exp(-lo_arg/2^b)]
                hi, frac = exp_neg_relative_side(lo_arg, b, True)
                lo, frac_lo = exp_neg_relative_side(lo_arg + 1, b, False)
                m_hi, k = _ceil_mantissa(hi, frac)
                m_lo = _floor_float(lo, frac_lo + k)  # the lower bound / 2^k, in [0.25, 1]
                mant[q, i, t], expo[q, i, t] = m_hi, k
                rho = max(rho, (m_hi - m_lo) / m_hi)
    if all(-(1 << 62) < int(x) < (1 << 62) for x in expo.flat):
        expo = expo.astype(np.int64)  # the usual case: vectorised exponent arithmetic
    return AttentionTable(mant, expo, max(rho, 2.0 ** -52), scores, e)


def _ceil_mantissa(v: int, frac: int) -> tuple[float, int]:
    """(m, k) with v / 2^frac <= m 2^k, m a float64 in [0.5, 1] (v > 0)."""
    k = v.bit_length() - frac
    return _ceil_float(v, frac + k), k


SMALLEST_NORMAL = 2.0 ** -1022


def _ceil_float(v: int, frac: int) -> float:
    """A float64 >= v / 2^frac (v >= 0): round the integer up to 53 bits, scale exactly.

    The scaling is exact only for normal results (ldexp rounds subnormals to nearest),
    so anything below the smallest normal float is bounded by that float instead.
    """
    sh = max(0, v.bit_length() - 53)
    out = math.ldexp(float(-((-v) >> sh)), sh - frac)
    return out if out >= SMALLEST_NORMAL or v == 0 else SMALLEST_NORMAL


def _floor_float(v: int, frac: int) -> float:
    """A float64 <= v / 2^frac (v >= 0); 0 below the normal range (ldexp could round up)."""
    sh = max(0, v.bit_length() - 53)
    out = math.ldexp(float(v >> sh), sh - frac)
    return out if out >= SMALLEST_NORMAL else 0.0


def _scaled_arg_lower(diff: int, e: int, d_head: int, w: int) -> tuple[int, int]:
    """(a, b) with a / 2^b <= diff * 2^e / sqrt(d_head) < (a + 1) / 2^b, a >= 0.

    diff 2^e / sqrt(d) = sqrt(diff^2 2^(2e) / d); with b = w - e (w large), a =
    isqrt(diff^2 2^(2w) // d) is floor(sqrt(...)), exactly the floor of the argument.
    """
    b = w - e
    if b < 0:
        raise OverflowError("score exponent too large")
    a = math.isqrt((diff * diff << (2 * w)) // d_head)
    return a, b


@dataclass(frozen=True)
class FloatTables:
    """Float64 tables shared by the brute force, the cubic proof and the loss proofs.

    Y[q, i, t, j] = (EVOU[t, j] + PVOU[i, j]) + EUPU[q, j] and
    G[q, i, t, m] = min_{j != m} (Y[q,i,t,m] - Y[q,i,t,j]) (the convexity table), each
    within 8 u B of the exact value; `att` encloses the attention exponentials.
    Y and G have d_vocab^3 K entries (21 GB apiece at K = 20, d_vocab 512), so they are
    never built whole: `Y(q)` and `G(q)` give one query's slice [K, d_vocab, d_vocab],
    entry for entry the same floats (the same operations in the same order).
    """

    att: AttentionTable
    EP: np.ndarray  # [K, d_vocab, d_vocab]: EVOU[t, j] + PVOU[i, j], rounded once
    eupu: np.ndarray  # [d_vocab, d_vocab]
    B: float  # max|EVOU| + max|PVOU| + max|EUPU| (rounded up)
    flops: int  # operations spent building the tables (every query's slices counted)

    def Y(self, q: int) -> np.ndarray:
        """Y[q] as [K, t, j]."""
        return self.EP + self.eupu[q]

    def Y_rows(self, i: int, t: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Y[q_n, i, t_n, :] for each n, as [n, d_vocab] (one row per input)."""
        return self.EP[i, t] + self.eupu[q]

    def G(self, q: int) -> np.ndarray:
        """G[q] as [K, t, m]."""
        y = self.Y(q)
        return y - _max_excluding_self(y)


def float_tables(tables: PathTables) -> FloatTables:
    att = attention_table(tables)
    evou, pvou, eupu = (t.to_float64() for t in (tables.EVOU, tables.PVOU, tables.EUPU))
    EP = evou[None, :, :] + pvou[:, None, :]
    u = 2.0 ** -53
    B = float(np.abs(evou).max() + np.abs(pvou).max() + np.abs(eupu).max()) * (1 + 8 * u)
    d, K = evou.shape[0], pvou.shape[0]
    flops = att.mant.size * 60 + d * K * d * d * 6  # Y (2 per entry) and G (4 per entry)
    return FloatTables(att, EP, eupu, B, flops)


def bruteforce(tables: PathTables, progress: bool = False) -> BruteForceResult:
    """Certified count of correct inputs over all d_vocab^K inputs, one query token q
    at a time (so that only G[q] and Y[q], O(d_vocab^2 K), are ever held; progress: a bar on stderr)."""
    from ..progress import steps
    check_exhaustive_in_reach(tables.PVOU.shape[1], tables.PVOU.shape[0])
    t0 = time.perf_counter()
    ft = float_tables(tables)
    att = ft.att
    d_vocab, n_ctx = ft.eupu.shape[0], ft.EP.shape[0]
    u = 2.0 ** -53
    eta = (4 * n_ctx + 16) * u + 2 * att.rho
    tau_factor = 8.0 * ft.B * eta
    flops = ft.flops
    # an underflowing product or rescaled weight errs by at most 2^-1075 in absolute
    # value; 2 (K + 1) of them per logit difference, each times at most 2B + 1
    slack = 8.0 * (n_ctx + 1) * (2 * ft.B + 1) * UNDERFLOW_UNIT
    free = n_ctx - 1  # positions 0..K-2; position K-1 holds q
    # the free tokens are enumerated as head (first h, a Python loop) x tail (numpy)
    h = 0
    while free - h > 1 and d_vocab ** (free - h) > TAIL_SIZE:
        h += 1
    tail = np.indices([d_vocab] * (free - h)).reshape(free - h, -1).T  # [T, free-h]
    m_tail = tail.max(axis=1)
    idx_tail = [i * d_vocab + tail[:, i - h] for i in range(h, free)]  # into [i, t] of one query
    rescale = att.needs_rescaling
    correct = 0
    ambiguous: list[np.ndarray] = []
    for q in steps(range(d_vocab), "exhaustive count", progress, total=d_vocab, unit="query"):
        G_flat = ft.G(q).ravel()  # index (i * d + t) * d + m
        Yq = None  # built only if some input needs the full check
        mant_q, expo_q = att.mant[q].ravel(), att.expo[q].ravel()
        q_idx = (n_ctx - 1) * d_vocab + q
        m_q = np.maximum(m_tail, q)
        for head in np.ndindex(*([d_vocab] * h)):
            m = np.maximum(m_q, max(head)) if h else m_q
            idx = [np.full(1, i * d_vocab + t) for i, t in enumerate(head)] + idx_tail + [np.full(1, q_idx)]
            if rescale:  # some weights are below 2^-960: rescale each input by its largest weight
                expos = [expo_q[ix] for ix in idx]
                top = np.maximum.reduce(np.broadcast_arrays(*expos))  # the input's largest weight is >= 2^(top-1)
                es = [AttentionTable.scaled(mant_q[ix], ex, top) for ix, ex in zip(idx, expos)]
            else:
                es = [np.ldexp(mant_q[ix], expo_q[ix]) for ix in idx]
            Z = sum(es)
            tau = tau_factor * Z + slack
            lb = sum(e_i * np.take(G_flat, ix * d_vocab + m) for e_i, ix in zip(es, idx))
            sure = lb > tau
            flops += lb.size * (3 * n_ctx + 2)
            correct += int(np.count_nonzero(sure))
            rest = np.flatnonzero(~sure)
            if rest.size == 0:
                continue
            if Yq is None:
                Yq = ft.Y(q)
            toks_r = np.concatenate([np.broadcast_to(np.array(head, dtype=tail.dtype), (rest.size, h)), tail[rest],
                                     np.full((rest.size, 1), q, dtype=tail.dtype)], axis=1)
            m_r, tau_r = m[rest], tau[rest]
            L = sum(np.broadcast_to(es[i], lb.shape)[rest, None] * Yq[i, toks_r[:, i]] for i in range(n_ctx))
            flops += rest.size * d_vocab * (2 * n_ctx + 2)
            rows = np.arange(rest.size)
            Lm = L[rows, m_r]
            L[rows, m_r] = -np.inf
            margin = Lm - L.max(axis=1)
            correct += int(np.count_nonzero(margin > tau_r))
            unsure = np.abs(margin) <= tau_r
            if unsure.any():
                ambiguous.append(toks_r[unsure])
    amb = np.concatenate(ambiguous) if ambiguous else np.zeros((0, n_ctx), dtype=np.int64)
    for toks in amb:
        if exact_is_correct(tables, att, [int(t) for t in toks]):
            correct += 1
    return BruteForceResult(correct, d_vocab ** n_ctx, len(amb), time.perf_counter() - t0, flops)


def _max_excluding_self(Y: np.ndarray) -> np.ndarray:
    """out[..., m] = max_{j != m} Y[..., j] (exact: only comparisons)."""
    top = Y.max(axis=-1, keepdims=True)
    at_top = Y == top
    masked = np.where(at_top, -np.inf, Y).max(axis=-1, keepdims=True)
    # the max over j != m is the top unless m is the only place the top is attained
    unique_top = at_top.sum(axis=-1, keepdims=True) == 1
    return np.where(at_top & unique_top, masked, top)


def exact_is_correct(tables: PathTables, att: AttentionTable, toks: list[int]) -> bool:
    """Decide one input exactly (see the module docstring: Lindemann-Weierstrass)."""
    q, m = toks[-1], max(toks)
    d_vocab = tables.EVOU.shape[1]
    scores = [int(att.scores[q, i, t]) for i, t in enumerate(toks)]
    for j in range(d_vocab):
        if j == m:
            continue
        groups: dict[int, Fraction] = {}
        for i, t in enumerate(toks):
            coeff = (tables.EVOU.fraction(t, m) - tables.EVOU.fraction(t, j)
                     + tables.PVOU.fraction(i, m) - tables.PVOU.fraction(i, j)
                     + tables.EUPU.fraction(q, m) - tables.EUPU.fraction(q, j))
            groups[scores[i]] = groups.get(scores[i], Fraction(0)) + coeff
        if all(c == 0 for c in groups.values()):
            return False  # exact tie between logit m and logit j: counts as wrong
        if _sign_of_exp_sum(groups, att.score_exp, tables.d_head) < 0:
            return False
    return True


def _sign_of_exp_sum(groups: dict[int, Fraction], score_exp: int, d_head: int) -> int:
    """Sign of sum_s c_s exp(s 2^score_exp / sqrt(d_head)), known to be nonzero."""
    smax = max(groups)
    iv = mpmath.iv
    saved = iv.prec
    try:
        prec = 64
        while prec <= 1 << 16:
            iv.prec = prec
            inv_sqrt = 1 / iv.sqrt(iv.mpf(d_head))
            total = iv.mpf(0)
            for s, c in groups.items():
                x = iv.mpf(s - smax) * iv.mpf(2) ** score_exp * inv_sqrt
                total += iv.exp(x) * (iv.mpf(c.numerator) / iv.mpf(c.denominator))
            if total.a > 0:
                return 1
            if total.b < 0:
                return -1
            prec *= 2
    finally:
        iv.prec = saved  # mpmath's interval context is global: leave it as found
    raise ArithmeticError("could not decide the sign of a nonzero margin; refusing to count it")
