"""Sound cross-entropy loss: rigorous enclosures of exp, log and log-sum-exp, and the
exact mean over all inputs enclosed by an outward interval of rationals.

The claim a loss proof makes is E[loss] <= b over the d_vocab^K inputs, with
loss(x) = log sum_j exp(l_j) - l_m = log(1 + sum_{j != m} exp(l_j - l_m)) (m the label).

Two kinds of arithmetic, both outward:

* Integers (`log_bounds`, `log1p_exp_neg_upper`): a handful of values per proof (one per
  proof family), through `arith.exp_neg_bounds_relative` and a log by ln 2 range
  reduction plus the atanh series with a geometric tail bound.
* float64 with an a-priori error bound (`fexp`, `flog`, `flog1p`, `loss_from_logits`):
  the bulk evaluation (millions of inputs). They use only IEEE operations that are
  correctly rounded (+ - * /, frexp, ldexp, floor), never libm's exp or log, so the
  error bounds below follow from u = 2^-53 alone (the tests compare with mpmath).

Error bounds of the float primitives (u = 2^-53; each claimed constant is several
times the derived one):
  fexp(x), x <= 0: x = n ln2 + r, n = round(x / ln2), r from a 32-bit ln2_hi (n ln2_hi
    exact for |n| < 2^21) and ln2_lo: |r~ - r| <= 2u|r| + 2^-70, |r| <= 0.35; Taylor of
    degree 13 by Horner: truncation < 2^-56, rounding <= 28u e^0.35 (coefficients and
    steps), relative to exp(r) >= e^-0.35: <= 60u in all. ldexp is exact unless the
    result is subnormal (absolute error <= 2^-1075); below -740 the result is 0
    (exp(-740) < 2^-1067). So |fexp(x) - exp(x)| <= EXP_REL exp(x) + EXP_ABS.
  flog(x), x > 0: x = f 2^e exactly (frexp), f in [1/sqrt2, sqrt2); log f = 2 atanh(s),
    s = (f - 1)/(f + 1) (f - 1 exact by Sterbenz), |s| <= 0.172, 11 series terms
    (tail < 2^-58 |log f|), Horner in s^2 (positive terms): <= 40u |log f|; e ln2:
    <= 2u |e ln 2|; the sum: u |result|. So |flog(x) - log x| <= LOG_ERR (1 + |flog(x)|).
  flog1p(S), S >= 0: S <= 1: 2 atanh(S / (2 + S)), s <= 1/3, 18 terms (tail <
    2^-57 of the sum), rounding <= 45u relative; S > 1: flog(1 + S) with 1 + S rounded
    (<= 1.01u absolute), and log(1 + S) >= ln 2: relative <= (1.01u + LOG_ERR (2 + r)) / r.
    So |flog1p(S) - log1p(S)| <= LOG1P_REL log1p(S).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .arith import ceil_div, exp_neg_bounds_relative, ln2_bounds

U = 2.0 ** -53
EXP_REL = 2.0 ** -44     # relative error of fexp (derived: 60u ~ 2^-47)
EXP_ABS = 2.0 ** -1000   # absolute error of fexp (underflow; derived 2^-1067)
LOG_ERR = 2.0 ** -45     # flog: absolute error <= LOG_ERR (1 + |result|) (derived ~ 45u)
LOG1P_REL = 2.0 ** -43   # flog1p: relative error (derived <= 2^-45)

_LN2_HI = float.fromhex("0x1.62e42fefa0000p-1")  # ln 2 to 32 significant bits (n * hi exact)
_LN2_LO = float(Fraction(ln2_bounds(200)[0], 1 << 200) - Fraction(_LN2_HI))  # the rest (error < 2^-86)
_LN2 = math.log(2.0)                              # correctly rounded ln 2 (|err| <= u ln 2)
_INV_LN2 = 1.0 / _LN2
_EXP_COEFFS = [1.0 / math.factorial(k) for k in range(13, -1, -1)]  # Horner, highest first
_ATANH_COEFFS_11 = [1.0 / (2 * k + 1) for k in range(10, -1, -1)]
_ATANH_COEFFS_18 = [1.0 / (2 * k + 1) for k in range(17, -1, -1)]
EXP_UNDERFLOW = -740.0


def fexp(x: np.ndarray) -> np.ndarray:
    """exp(x) for x <= 0 (float64 array), within EXP_REL exp(x) + EXP_ABS."""
    x = np.asarray(x, dtype=np.float64)
    if np.any(x > 0) or np.any(np.isnan(x)):
        raise ValueError("fexp takes arguments <= 0")
    xc = np.maximum(x, EXP_UNDERFLOW)
    n = np.floor(xc * _INV_LN2 + 0.5)  # |x / ln2 - n| <= 0.5 + tiny: |r| <= 0.35
    r = (xc - n * _LN2_HI) - n * _LN2_LO
    p = np.full_like(r, _EXP_COEFFS[0])
    for c in _EXP_COEFFS[1:]:
        p = p * r + c
    out = np.ldexp(p, n.astype(np.int64))
    return np.where(x < EXP_UNDERFLOW, 0.0, out)


def _atanh_series(s: np.ndarray, coeffs: list[float]) -> np.ndarray:
    """2 (s + s^3/3 + ...) by Horner in s^2 (positive coefficients)."""
    w = s * s
    p = np.full_like(s, coeffs[0])
    for c in coeffs[1:]:
        p = p * w + c
    return 2.0 * s * p


def flog(x: np.ndarray) -> np.ndarray:
    """log(x) for x > 0, within LOG_ERR (1 + |result|)."""
    x = np.asarray(x, dtype=np.float64)
    if np.any(~(x > 0)) or np.any(np.isinf(x)):
        raise ValueError("flog takes finite arguments > 0")
    f, e = np.frexp(x)  # x = f 2^e, f in [0.5, 1)
    low = f < math.sqrt(0.5)
    f = np.where(low, f * 2.0, f)  # exact
    e = np.where(low, e - 1, e).astype(np.float64)
    s = (f - 1.0) / (f + 1.0)
    return e * _LN2 + _atanh_series(s, _ATANH_COEFFS_11)


def flog1p(S: np.ndarray) -> np.ndarray:
    """log(1 + S) for S >= 0, within LOG1P_REL log(1 + S) (relative, so tiny losses keep
    their precision)."""
    S = np.asarray(S, dtype=np.float64)
    if np.any(~(S >= 0)) or np.any(np.isinf(S)):
        raise ValueError("flog1p takes finite arguments >= 0")
    small = S <= 1.0
    s = np.where(small, S, 0.0)
    out_small = _atanh_series(s / (2.0 + s), _ATANH_COEFFS_18)
    big = np.where(small, 1.0, S)
    return np.where(small, out_small, flog(1.0 + big))


def loss_from_logits(logits: np.ndarray, labels: np.ndarray, delta: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy of each row and an upper bound on its error: |loss~ - loss| <= err.

    `logits` [n, d] are float values within `delta` (per row, or one value) of the true
    logits; loss = log sum_j exp(l_j - l_m). With x_j = l_j - l_m and M = max_j x~_j >= 0:
    M = 0 (the label leads): loss = log1p(sum_{j != m} exp(x_j)), relative error;
    else loss = M + log(sum_j exp(x_j - M)). Each exp argument is within
    arg = 2 delta + 4u (max|x~| + M) of the true one, so every exp term, and their sum W,
    is within the factor (1 + theta): theta = arg (1 + 2 arg) + EXP_REL + gamma_d (+ the
    absolute underflow, relative to W >= 1 or added). The log moves by at most
    1.02 theta log1p(S) (log1p(S(1 + t)) - log1p(S) <= |t| S/(1+S) / (1 - |t|) and
    S/(1+S) <= log1p(S)), resp. 1.02 theta for the log of W >= 1. Rows with theta > 0.01
    (logit spreads beyond about 1e13, where u max|x| is no longer small) are enclosed by
    monotonicity instead (`monotone_loss_enclosure`): finite at every float32 magnitude.
    """
    logits = np.asarray(logits, dtype=np.float64)
    n, d = logits.shape
    rows = np.arange(n)
    lm = logits[rows, labels]
    x = logits - lm[:, None]
    x[rows, labels] = 0.0
    M = x.max(axis=1)
    X = np.abs(x).max(axis=1) + M
    arg = 2.0 * np.asarray(delta, dtype=np.float64) + 4.0 * U * X
    gamma_d = (d + 2) * U * 1.01
    theta = arg * (1.0 + 2.0 * arg) + EXP_REL + gamma_d
    y = np.minimum(x - M[:, None], 0.0)  # <= 0; equals x where M = 0
    ey = fexp(y)
    lead = M == 0.0
    ey[rows, labels] = np.where(lead, 0.0, ey[rows, labels])  # M = 0: S without the label's 1
    W = ey.sum(axis=1)
    under = d * 2.0 * EXP_ABS
    loss_lead = flog1p(W)
    W_big = np.where(lead, 1.0, W)
    loss_other = M + flog(np.maximum(W_big, 1.0))  # W >= exp(0) = 1 (the max term)
    loss = np.where(lead, loss_lead, loss_other)
    err_lead = 1.02 * theta * loss_lead + under + LOG1P_REL * loss_lead * 1.01
    err_other = 1.02 * (theta + under) + LOG_ERR * (1.0 + np.abs(loss_other - M)) + 2 * U * np.abs(loss_other)
    err = np.where(lead, err_lead, err_other) * (1.0 + 2.0 ** -40)
    wide = np.flatnonzero(~(theta <= 0.01))
    if wide.size:
        r = 2.0 * np.broadcast_to(np.asarray(delta, dtype=np.float64), (n,))[wide, None] + 1.01 * U * np.abs(x[wide])
        lo, hi = monotone_loss_enclosure(x[wide], r, labels[wide])
        loss[wide], err[wide] = interval_as_value_error(lo, hi)
    return loss, err


def interval_as_value_error(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(v, e) with [lo, hi] inside [v - e, v + e] (e rounded up; infinite on overflow)."""
    v = 0.5 * lo + 0.5 * hi
    e = np.maximum(hi - v, v - lo) * (1 + 4 * U)
    return v, np.nextafter(e, np.inf)


def monotone_loss_enclosure(x: np.ndarray, r: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] holding loss = log(1 + sum_{j != m} exp(x_j)) for every true x with
    |x_j - x~_j| <= r_j (x~ = `x`, the label's entry ignored), at any magnitude.

    The loss increases in each x_j, so it lies between F(x~ - r) and F(x~ + r), the
    arguments rounded outward (nextafter). F(z) <= M + log(exp(-M) + sum_j exp(z_j - M)),
    M = max(0, max z) (exact): each z_j - M rounded up, each exp bounded above by
    (fexp + EXP_ABS)(1 + 2 EXP_REL), the float sum by (1 + 2 gamma_{d+2}), the log by
    flog + LOG_ERR (1 + |flog|) (or flog1p (1 + 2 LOG1P_REL) when M = 0), the final sum
    rounded up. F(z) >= max(0, max_j z_j) (log(1 + sum exp) is at least the largest term's
    argument), which is exact.
    """
    n, d = x.shape
    rows = np.arange(n)
    z_hi = np.nextafter(x + r, np.inf)
    z_lo = np.nextafter(x - r, -np.inf)
    z_hi[rows, labels] = -np.inf
    z_lo[rows, labels] = -np.inf
    lo = np.maximum(0.0, z_lo.max(axis=1))
    M = np.maximum(0.0, z_hi.max(axis=1))
    y = np.minimum(np.nextafter(z_hi - M[:, None], np.inf), 0.0)
    y[rows, labels] = -np.inf
    terms = (fexp(np.maximum(y, -1e300)) + EXP_ABS) * (1 + 2 * EXP_REL)
    terms[rows, labels] = 0.0
    g = 2 * (d + 2) * U * 1.01
    lead = M == 0.0
    S = terms.sum(axis=1) * (1 + g)  # M = 0: sum_{j != m} exp(z_j) (the 1 is log1p's)
    W = (S + (fexp(-M) + EXP_ABS) * (1 + 2 * EXP_REL)) * (1 + g)
    hi_lead = flog1p(np.where(lead, S, 0.0)) * (1 + 2 * LOG1P_REL)
    lw = flog(np.where(lead, 1.0, W))
    hi_other = (M + (lw + LOG_ERR * (1 + np.abs(lw)))) * (1 + 2 * U)
    hi = np.nextafter(np.where(lead, hi_lead, hi_other), np.inf)
    return lo, hi


# ------------------------------------------------------------------ exact sums
@dataclass(frozen=True)
class Enclosure:
    """lo <= value <= hi, rationals."""
    lo: Fraction
    hi: Fraction

    @property
    def mid(self) -> float:
        return float((self.lo + self.hi) / 2)

    @property
    def rel_width(self) -> float:
        return float((self.hi - self.lo) / abs(self.hi)) if self.hi else 0.0

    def contains(self, x) -> bool:
        return self.lo <= Fraction(x) <= self.hi


SUM_BLOCK = 1 << 14


def enclose_sum(values: np.ndarray, errs: np.ndarray, weights: np.ndarray | None = None) -> Enclosure | None:
    """sum_i w_i v_i where each true v_i is within errs_i of values_i (w_i >= 0 integers of
    any size below float64's max). Blocks of SUM_BLOCK are summed in float64 (error <=
    gamma_{n+2} sum |w v|: the weight's conversion to float64 and the product are two more
    roundings) and the block sums added exactly as rationals.
    None when some error is not finite or a float block sum overflows: never a stand-in."""
    values, errs = np.asarray(values, dtype=np.float64).ravel(), np.asarray(errs, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(errs)) and np.all(np.isfinite(values))):
        return None  # no finite error bound: the caller reports the strategy as failed
    try:
        w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    except OverflowError:  # a weight beyond float64 (Python ints): no float sum
        return None
    total, slack = Fraction(0), Fraction(0)
    gamma = (SUM_BLOCK + 3) * U * 1.01
    for k in range(0, values.size, SUM_BLOCK):
        v, e, ww = values[k:k + SUM_BLOCK], errs[k:k + SUM_BLOCK], w[k:k + SUM_BLOCK]
        with np.errstate(over="ignore"):  # an overflowing block is refused just below
            block = [float(np.sum(ww * v)), float(np.sum(ww * e)), float(np.sum(ww * np.abs(v)) + np.sum(ww * e))]
        if not all(math.isfinite(b) for b in block):
            return None
        total += Fraction(block[0])
        # error of the float sums, and the per-value errors (summed in float, rounded up)
        slack += Fraction(block[1]) * (1 + Fraction(gamma)) + Fraction(gamma) * Fraction(block[2])
    return Enclosure(total - slack, total + slack)


# ------------------------------------------------------------------ integer enclosures
def log_bounds(num: int, den: int, bits: int = 96) -> tuple[int, int]:
    """(lo, hi) with lo / 2^bits <= log(num / den) <= hi / 2^bits, num, den > 0.

    num/den = 2^e m with m in [1, 2) (exact); log m = 2 atanh(s), s = (m-1)/(m+1) in
    [0, 1/3): every series term is >= 0, so the floored partial sum is a lower bound and
    the tail after N terms is <= 2 s^(2N+1) / ((2N+1)(1 - s^2)) <= 9/4 s^(2N+1)/(2N+1);
    e ln 2 from `ln2_bounds` (its sign decides which end is used).
    """
    if num <= 0 or den <= 0:
        raise ValueError("log_bounds needs a positive rational")
    e = num.bit_length() - den.bit_length()
    a, b = (num, den << e) if e >= 0 else (num << -e, den)
    if a < b:
        a, e = a * 2, e - 1
    # m = a / b in [1, 2); s = (a - b) / (a + b)
    sn, sd = a - b, a + b
    g = bits + 8
    one = 1 << g
    n_terms = g // 3 + 4  # s < 1/3: s^(2N+1) < 2^-g
    lo, terms = 0, 0
    for k in range(n_terms):
        p = 2 * k + 1
        lo += (2 * one * sn ** p) // (p * sd ** p)
        terms += 1
    tail = ceil_div(9 * one * sn ** (2 * n_terms + 1), 4 * (2 * n_terms + 1) * sd ** (2 * n_terms + 1))
    hi = lo + terms + tail
    l_lo, l_hi = ln2_bounds(g)
    lo += e * (l_lo if e >= 0 else l_hi)
    hi += e * (l_hi if e >= 0 else l_lo)
    return lo >> 8, ceil_div(hi, 1 << 8)


MARGIN_FAR = 4096
FAR_BITS = 5909  # e^-4096 = 2^-5909.3...


def log1p_exp_neg_upper(x: Fraction, d: int, bits: int = 80) -> Fraction:
    """An upper bound of log(1 + (d - 1) exp(-x)): the cross-entropy of an input whose
    label beats each of the d - 1 other logits by at least x (x may be negative).

    Far from 0 (|x| >= MARGIN_FAR) the exact exp would need about |x| / ln 2 bits, so:
    x <= -MARGIN_FAR: log(1 + (d-1) e^y) = y + log(e^-y + d - 1) <= y + log d (e^-y <= 1);
    x >= MARGIN_FAR: log(1 + s) <= s = (d-1) e^-x <= (d-1) 2^-FAR_BITS (e^-4096 < 2^-5909)."""
    if x <= -MARGIN_FAR:
        return -x + Fraction(log_bounds(d, 1, bits)[1], 1 << bits)
    if x >= MARGIN_FAR:
        return Fraction(d - 1, 1 << FAR_BITS)
    if x < 0:  # log(1 + (d-1) e^y) = y + log(e^-y + d - 1), y = -x > 0
        a = math.floor(-x * (1 << bits))  # e^-y <= exp(-a / 2^bits)
        _, hi, frac = exp_neg_bounds_relative(a, bits)
        return -x + Fraction(log_bounds(((d - 1) << frac) + hi, 1 << frac, bits)[1], 1 << bits)
    a = math.floor(x * (1 << bits))  # x >= a / 2^bits, so exp(-x) <= exp(-a / 2^bits)
    _, hi, frac = exp_neg_bounds_relative(a, bits)
    num = (1 << frac) + (d - 1) * hi  # 1 + (d-1) exp(-x) <= num / 2^frac
    return Fraction(log_bounds(num, 1 << frac, bits)[1], 1 << bits)


# ------------------------------------------------------------------ results
@dataclass
class LossResult:
    """One loss proof for one model: an upper bound (and, for exact proofs, a lower
    bound) on the mean cross-entropy over every input, as rationals."""
    strategy: str
    upper: Fraction | None  # None: the proof failed (`error` says why); never a stand-in number
    lower: Fraction | None
    flops: int
    seconds: float
    exact: Enclosure | None = None  # the brute-force enclosure of the true mean, when known
    detail: dict = field(default_factory=dict)
    error: str | None = None

    @staticmethod
    def failed(strategy: str, reason: str, seconds: float = 0.0) -> "LossResult":
        """A proof that produced no bound: `loss_bound` is null in --json."""
        return LossResult(strategy, None, None, 0, seconds, error=reason)

    @property
    def bound(self) -> float | None:
        """The upper bound as a float, rounded up (None when the proof failed)."""
        if self.upper is None:
            return None
        v = float(self.upper)
        return v if Fraction(v) >= self.upper else math.nextafter(v, math.inf)

    @property
    def ratio(self) -> float | None:
        """bound / exact mean loss (>= 1; 1 for the exact proofs, up to the enclosure)."""
        if self.upper is None or self.exact is None or self.exact.hi <= 0:
            return None
        return float(self.upper / self.exact.hi)

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "metric": "loss", "loss_bound": self.bound,
                "loss_lower": None if self.lower is None else float(self.lower),
                "loss_upper_rational": None if self.upper is None else f"{self.upper.numerator}/{self.upper.denominator}",
                "loss_exact": None if self.exact is None else self.exact.mid,
                "loss_exact_interval": None if self.exact is None else [float(self.exact.lo), float(self.exact.hi)],
                "loss_ratio": self.ratio, "flops": self.flops, "seconds": round(self.seconds, 4),
                **self.detail, "error": self.error}
