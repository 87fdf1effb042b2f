"""Rigorous outward-rounded float64 enclosures of the transcendental functions of a
transformer's forward pass: exp (fine), tanh, sigmoid, erf, 1/sqrt, on `Iv` arrays.

Every function here is monotone (or a product of enclosures), so an interval [lo, hi] is
mapped to [lower bound of f(lo), upper bound of f(hi)]; the point bounds come from
  - exp: `sound_linalg`'s table (exp of multiples of 2^-16, from `arith`'s integer
    bounds), refined by exp(r) in [1 + r + r^2/2, 1 + r + r^2/2 + r^3] for the remainder
    0 <= r < 2^-16 + tiny (Taylor with Lagrange remainder, e^r < 1.0001 there);
  - tanh(v) = 1 - 2 / (exp(2v) + 1), sigmoid(v) = 1 / (1 + exp(-v)) from exp;
  - erf: Taylor series in interval arithmetic for |v| <= 3.5 (an alternating series whose
    terms decrease after n > v^2; the remainder after N = 64 terms is below the last
    term, added on both sides), the enveloping asymptotic series of erfc for |v| > 3.5
    (the remainder has the sign and at most the size of the first omitted term);
  - 1/sqrt and division: IEEE sqrt and / are correctly rounded, so the neighbours of the
    computed float enclose the exact value.
Constants (2/sqrt(pi), sqrt(2/pi)) are enclosed by floats checked against rational
bounds of pi at import.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..proofs.sound_linalg import GRID_BITS, Y_MAX, Y_MIN, Iv, _exp_grid, down, up

# pi to 35 decimals (a lower bound; + 10^-35 an upper bound)
PI_LO = Fraction(314159265358979323846264338327950288, 10 ** 35)
PI_HI = PI_LO + Fraction(1, 10 ** 35)


def _const(approx: float, square_times_pi_le: Fraction) -> Iv:
    """The float interval around `approx` enclosing c > 0 with c^2 pi = `square_times_pi_le`."""
    lo, hi = float(down(down(np.float64(approx)))), float(up(up(np.float64(approx))))
    assert Fraction(lo) ** 2 * PI_HI <= square_times_pi_le <= Fraction(hi) ** 2 * PI_LO
    return Iv(np.float64(lo), np.float64(hi))


TWO_OVER_SQRT_PI = _const(2 / np.sqrt(np.pi), Fraction(4))  # (2/sqrt pi)^2 pi = 4
SQRT_TWO_OVER_PI = _const(np.sqrt(2 / np.pi), Fraction(2))  # (sqrt(2/pi))^2 pi = 2


def point_const(x: float) -> Iv:
    """A decimal constant such as 0.044715: the float nearest it and its neighbours."""
    f = np.float64(x)
    return Iv(down(f), up(f))


def recip_int(m: int) -> Iv:
    """1/m for a positive integer m."""
    f = np.float64(1.0) / np.float64(m)
    return Iv(down(f), up(f))


# --- exp ----------------------------------------------------------------------------

def _exp_lower(x: np.ndarray) -> np.ndarray:
    """A lower bound of exp(x) for float arrays (x may be -inf)."""
    xs = np.clip(np.nan_to_num(x, nan=-np.inf), Y_MIN, Y_MAX - 1)
    k = np.floor(xs * float(1 << GRID_BITS)).astype(np.int64)
    base = _exp_grid(k, 0)
    r = np.maximum(down(xs - np.ldexp(k.astype(np.float64), -GRID_BITS)), 0.0)
    poly = down(down(1.0 + r) + down(down(r * r) * 0.5))
    with np.errstate(over="ignore", under="ignore"):
        out = down(base * poly)
    return np.where(x <= Y_MIN, 0.0, np.maximum(out, 0.0))


def _exp_upper(x: np.ndarray) -> np.ndarray:
    """An upper bound of exp(x) for float arrays (x may be +inf)."""
    xs = np.clip(np.nan_to_num(x, nan=np.inf), Y_MIN, Y_MAX - 1)
    k = np.floor(xs * float(1 << GRID_BITS)).astype(np.int64)
    base = _exp_grid(k, 1)
    r = np.maximum(up(xs - np.ldexp(k.astype(np.float64), -GRID_BITS)), 0.0)
    r2 = up(r * r)
    poly = up(up(up(1.0 + r) + up(r2 * 0.5)) + up(r2 * r))
    with np.errstate(over="ignore", under="ignore"):
        out = up(base * poly)
    return np.where(x >= Y_MAX - 1, np.inf, out)


def iexp(x: Iv) -> Iv:
    return Iv(_exp_lower(x.lo), _exp_upper(x.hi))


# --- tanh, sigmoid ------------------------------------------------------------------

def itanh(x: Iv) -> Iv:
    """tanh = 1 - 2/(exp(2v)+1), increasing in exp(2v)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e_lo = _exp_lower(2.0 * x.lo)  # 2v is exact (or overflows to inf, then clipped)
        e_hi = _exp_upper(2.0 * x.hi)
        lo = down(1.0 - up(2.0 / down(e_lo + 1.0)))
        hi = up(1.0 - down(2.0 / up(e_hi + 1.0)))
    return Iv(np.clip(np.nan_to_num(lo, nan=-1.0), -1.0, 1.0), np.clip(np.nan_to_num(hi, nan=1.0), -1.0, 1.0))


def isigmoid(x: Iv) -> Iv:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        lo = down(1.0 / up(1.0 + _exp_upper(-x.lo)))
        hi = up(1.0 / down(1.0 + _exp_lower(-x.hi)))
    return Iv(np.clip(np.nan_to_num(lo, nan=0.0), 0.0, 1.0), np.clip(np.nan_to_num(hi, nan=1.0), 0.0, 1.0))


# --- erf ----------------------------------------------------------------------------

ERF_TAYLOR_MAX = 3.5
ERF_TAYLOR_TERMS = 64
ERFC_ASYMPTOTIC_TERMS = 12


def _erf_taylor(a: np.ndarray) -> Iv:
    """erf(a) = 2/sqrt(pi) sum_n (-1)^n a^(2n+1) / (n! (2n+1)), |a| <= 3.5."""
    x = Iv.point(a)
    x2 = x * x
    t = x  # a^(2n+1) / n!
    total = Iv.point(np.zeros_like(a))
    for n in range(ERF_TAYLOR_TERMS):
        term = t * recip_int(2 * n + 1)
        total = total + term if n % 2 == 0 else total - term
        t = t * x2 * recip_int(n + 1)
    tail = up(np.maximum(np.abs(t.lo), np.abs(t.hi)))  # >= the first omitted term (before /(2N+1))
    total = Iv(down(total.lo - tail), up(total.hi + tail))
    return total * TWO_OVER_SQRT_PI


def _erfc_asymptotic(a: np.ndarray) -> Iv:
    """erfc(a) = exp(-a^2)/(a sqrt(pi)) (sum_{n<N} (-1)^n (2n-1)!!/(2a^2)^n + R), a > 3.5,
    |R| <= the first omitted term (the series envelops erfc for real a > 0)."""
    x = Iv.point(a)
    inv2x2 = Iv.point(np.ones_like(a)) * _recip(x * x * 2.0)
    term = Iv.point(np.ones_like(a))
    total = Iv.point(np.zeros_like(a))
    for n in range(ERFC_ASYMPTOTIC_TERMS):
        total = total + term if n % 2 == 0 else total - term
        term = term * inv2x2 * float(2 * n + 1)
    tail = up(np.maximum(np.abs(term.lo), np.abs(term.hi)))
    total = Iv(down(total.lo - tail), up(total.hi + tail))
    x2 = x * x
    gauss = Iv(_exp_lower(-x2.hi), _exp_upper(-x2.lo))
    return gauss * _recip(x) * TWO_OVER_SQRT_PI * 0.5 * total


def _erf_point(a: np.ndarray) -> Iv:
    """An enclosure of erf at each (point) entry of `a`, by symmetry erf(-a) = -erf(a)."""
    a = np.asarray(a, dtype=np.float64)
    s = np.abs(np.nan_to_num(a, nan=0.0, posinf=1e300, neginf=-1e300))
    small = s <= ERF_TAYLOR_MAX
    lo, hi = np.empty_like(s), np.empty_like(s)
    if small.any():
        e = _erf_taylor(s[small])
        lo[small], hi[small] = e.lo, e.hi
    if (~small).any():
        c = _erfc_asymptotic(s[~small])
        lo[~small], hi[~small] = down(1.0 - c.hi), up(1.0 - c.lo)
    lo, hi = np.clip(lo, -1.0, 1.0), np.clip(hi, -1.0, 1.0)
    neg = a < 0
    return Iv(np.where(neg, -hi, lo), np.where(neg, -lo, hi))


def ierf(x: Iv) -> Iv:
    return Iv(_erf_point(x.lo).lo, _erf_point(x.hi).hi)


# --- algebraic ----------------------------------------------------------------------

def _recip(x: Iv) -> Iv:
    """1/x for x > 0 (entrywise; an interval that may reach 0 gives +inf above)."""
    with np.errstate(divide="ignore"):
        return Iv(down(1.0 / x.hi), np.where(x.lo > 0, up(1.0 / np.where(x.lo > 0, x.lo, 1.0)), np.inf))


def divide_positive(a: Iv, b: Iv) -> Iv:
    return a * _recip(b)


def rsqrt_positive(v: Iv) -> Iv:
    """1/sqrt(v) for v > 0 (LayerNorm: v = variance + eps >= eps > 0)."""
    with np.errstate(divide="ignore"):
        s_lo, s_hi = down(np.sqrt(np.maximum(v.lo, 0.0))), up(np.sqrt(v.hi))
        return Iv(down(1.0 / s_hi), np.where(s_lo > 0, up(1.0 / np.where(s_lo > 0, s_lo, 1.0)), np.inf))


def isquare(x: Iv) -> Iv:
    """x^2 without the dependency loss of x * x (an interval straddling 0 starts at 0)."""
    a, b = np.abs(x.lo), np.abs(x.hi)
    straddle = (x.lo <= 0) & (x.hi >= 0)
    lo = np.where(straddle, 0.0, down(np.minimum(a, b) ** 2))
    return Iv(lo, up(np.maximum(a, b) ** 2))


def irelu(x: Iv) -> Iv:
    return Iv(np.maximum(x.lo, 0.0), np.maximum(x.hi, 0.0))
