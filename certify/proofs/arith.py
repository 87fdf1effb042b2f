"""Sound arithmetic: rigorous integer enclosures of exp and 1/sqrt(d_head).

Every function here uses integer semantics that the Lean checker transcribes one to
one (Lean names in the docstrings). Fixed-point values carry FRAC_BITS fraction bits:
the integer v stands for v / 2^FRAC_BITS. Lower bounds are rounded down (floor) and
upper bounds up (ceil), so every enclosure is outward.
"""

from __future__ import annotations

import math
from functools import lru_cache

FRAC_BITS = 64          # fixed-point fraction bits of exp values and of 1/sqrt(d_head)
EXP_SQUARINGS = 16      # exp(x) = exp(x / 2^16)^(2^16)
EXP_TAYLOR_DEGREE = 4   # |y| <= 2^-10 after reduction: remainder <= 2^-50/120
EXP_CLAMP = 64          # for x < -64 we only claim 0 <= exp(x) <= exp(-64)


def floor_div(a: int, b: int) -> int:
    """floor(a / b) for b > 0 (Lean: `Int.fdiv` / `floorDiv`)."""
    return a // b


def ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for b > 0 (Lean: `ceilDiv`)."""
    return -((-a) // b)


def inv_sqrt_bounds(d: int, frac_bits: int = FRAC_BITS) -> tuple[int, int]:
    """(lo, hi) with lo / 2^F <= 1/sqrt(d) <= hi / 2^F (Lean: `invSqrtOk` checks them).

    lo = floor(2^F / sqrt d) = isqrt(floor(2^2F / d)); hi = lo + 1 unless exact.
    """
    if d < 1:
        raise ValueError("d must be positive")
    one = 1 << (2 * frac_bits)
    lo = math.isqrt(one // d)
    hi = lo if lo * lo * d == one else lo + 1
    assert inv_sqrt_ok(d, lo, hi, frac_bits)
    return lo, hi


def inv_sqrt_ok(d: int, lo: int, hi: int, frac_bits: int = FRAC_BITS) -> bool:
    """lo^2 d <= 2^2F <= hi^2 d, i.e. lo/2^F <= 1/sqrt(d) <= hi/2^F (Lean: `invSqrtOk`)."""
    one = 1 << (2 * frac_bits)
    return 0 <= lo and lo * lo * d <= one and one <= hi * hi * d


def exp_neg_bounds(a: int, b: int, frac_bits: int = FRAC_BITS,
                   squarings: int = EXP_SQUARINGS, clamp: int | None = EXP_CLAMP) -> tuple[int, int]:
    """Fixed-point (lo, hi) with lo <= 2^F exp(-a / 2^b) <= hi, for a >= 0, b >= 0.

    The defaults are the Lean checker's; `exp_neg_bounds_relative` picks more
    fraction bits and squarings for a relative (not absolute) precision.

    Lean: `expNegBounds`. Argument reduction y = x / 2^16, so |y| <= 2^-10 when
    |x| <= 64; Taylor T_4(y) with Lagrange remainder |R| <= |y|^5 / 5! (exp(xi) <= 1 for
    xi <= 0); then 16 squarings, rounding lo down and hi up (all values are >= 0, and
    squaring is monotone there). For x < -64: [0, upper bound of exp(-64)].
    """
    if a < 0 or b < 0:
        raise ValueError("exp_neg_bounds needs a >= 0 and b >= 0")
    if clamp is not None and a > (clamp << b):
        return 0, exp_neg_bounds(clamp, 0, frac_bits, squarings, clamp)[1]
    return _exp_neg_side(a, b, frac_bits, squarings, False), _exp_neg_side(a, b, frac_bits, squarings, True)


def _exp_neg_side(a: int, b: int, frac_bits: int, squarings: int, upper: bool) -> int:
    """One end of `exp_neg_bounds` (no clamp): the Taylor enclosure, then the squarings of
    that end only (lo rounded down, hi up), so a caller that needs one end pays half."""
    n = EXP_TAYLOR_DEGREE
    bb = b + squarings  # y = -a / 2^bb
    # T_n(y) = sum_k (-a)^k / (k! 2^(bb k)) = num / (n! 2^(bb n))
    num = 0
    fact_ratio = 1  # n! / k!, built from k = n downwards
    for k in range(n, -1, -1):
        num += ((-a) ** k) * fact_ratio * (1 << (bb * (n - k)))
        fact_ratio *= k if k > 0 else 1
    den = math.factorial(n) << (bb * n)
    # remainder bound |R| <= a^(n+1) / ((n+1)! 2^(bb (n+1)))
    rem_num = a ** (n + 1)
    rem_den = math.factorial(n + 1) << (bb * (n + 1))
    one = 1 << frac_bits
    if upper:
        hi = ceil_div(num * one, den) + ceil_div(rem_num * one, rem_den)
        for _ in range(squarings):
            hi = ceil_div(hi * hi, one)
        return hi
    lo = max(0, floor_div(num * one, den) - ceil_div(rem_num * one, rem_den))
    for _ in range(squarings):
        lo = floor_div(lo * lo, one)
    return lo


LN2_BITS = 256  # fraction bits of the ln 2 enclosure used to reduce large arguments


@lru_cache(maxsize=64)
def ln2_bounds(bits: int = LN2_BITS) -> tuple[int, int]:
    """(lo, hi) with lo / 2^bits <= ln 2 <= hi / 2^bits, hi - lo small.

    ln 2 = 2 atanh(1/3) = sum_k 2 / ((2k+1) 3^(2k+1)); every term is positive, so a
    partial sum (each term floored) is a lower bound, and the tail after N terms is at
    most the geometric bound 2 / ((2N+1) 3^(2N+1)) * 9/8.
    """
    one = 1 << (bits + 8)  # 8 guard bits, dropped at the end (floor / ceil)
    n_terms = bits // 3 + 4  # 3^(2N+1) > 2^(bits+8)
    lo = sum((2 * one) // ((2 * k + 1) * 3 ** (2 * k + 1)) for k in range(n_terms))
    tail = ceil_div(2 * one * 9, (2 * n_terms + 1) * 3 ** (2 * n_terms + 1) * 8)
    hi = lo + n_terms + tail  # + one per floored term
    return lo >> 8, ceil_div(hi, 1 << 8)


def exp_neg_bounds_relative(a: int, b: int, rel_bits: int = 60) -> tuple[int, int, int]:
    """(lo, hi, F) with lo / 2^F <= exp(-a / 2^b) <= hi / 2^F and (hi - lo) / lo below
    about 2^-(rel_bits - 8), for ANY a >= 0 (no underflow: F grows with the argument).

    Used for bulk tables in Python (brute force, strategies), where a tiny attention
    weight must still be known to a relative precision. Range reduction:
    x = a / 2^b = n ln 2 + r with n = floor(x / ln2_hi) and r in [0, ln 2 + tiny], so
    exp(-x) = 2^-n exp(-r); r is enclosed from the ln 2 enclosure and exp(-r) by
    `exp_neg_bounds` (monotone: exp(-r_hi) <= exp(-r) <= exp(-r_lo)).
    """
    if a < 0 or b < 0:
        raise ValueError("exp_neg_bounds_relative needs a >= 0 and b >= 0")
    lo, frac = exp_neg_relative_side(a, b, False, rel_bits)
    hi, _ = exp_neg_relative_side(a, b, True, rel_bits)
    return lo, hi, frac


def exp_neg_relative_side(a: int, b: int, upper: bool, rel_bits: int = 60) -> tuple[int, int]:
    """(v, F): one end of `exp_neg_bounds_relative(a, b)` (its lo, or with `upper` its
    hi) and its F, the same integers at half the cost (bulk tables need one end per entry)."""
    if a < 0 or b < 0:
        raise ValueError("exp_neg_bounds_relative needs a >= 0 and b >= 0")
    p = max(LN2_BITS, b)  # fixed point with p fraction bits
    x_lo = a << (p - b)   # x * 2^p exactly (p >= b)
    guard = max(0, x_lo.bit_length() - p) + 8  # ln 2 precision must beat n's size
    l_lo, l_hi = ln2_bounds(p + guard)
    x_scaled = x_lo << guard  # x * 2^(p + guard)
    n = x_scaled // l_hi
    frac_bits = rel_bits + 8
    if upper:  # exp(-r) <= exp(-r_lo), r_lo = x - n ln2_hi
        return _exp_neg_side(x_scaled - n * l_hi, p + guard, frac_bits, EXP_SQUARINGS, True), frac_bits + n
    # exp(-r) >= exp(-r_hi), r_hi = x - n ln2_lo
    return _exp_neg_side(x_scaled - n * l_lo, p + guard, frac_bits, EXP_SQUARINGS, False), frac_bits + n
