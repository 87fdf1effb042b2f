"""Sound arithmetic: rigorous integer enclosures of exp and 1/sqrt(d_head).

Every function here uses integer semantics that the Lean checker transcribes one to
one (Lean names in the docstrings). Fixed-point values carry FRAC_BITS fraction bits:
the integer v stands for v / 2^FRAC_BITS. Lower bounds are rounded down (floor) and
upper bounds up (ceil), so every enclosure is outward.
"""

from __future__ import annotations

import math

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
    lo = max(0, floor_div(num * one, den) - ceil_div(rem_num * one, rem_den))
    hi = ceil_div(num * one, den) + ceil_div(rem_num * one, rem_den)
    for _ in range(squarings):
        lo = floor_div(lo * lo, one)
        hi = ceil_div(hi * hi, one)
    return lo, hi


def exp_neg_bounds_relative(a: int, b: int, rel_bits: int = 60) -> tuple[int, int, int]:
    """(lo, hi, F) with lo / 2^F <= exp(-a / 2^b) <= hi / 2^F, relative width ~2^-(rel_bits-16).

    Used for bulk tables in Python (brute force, strategies), where a tiny attention
    weight must still be known to a relative precision: the fraction bits grow with
    |x| and the squarings keep |y| <= 2^-10.
    """
    x_int_bits = max(0, a.bit_length() - b)  # |x| < 2^x_int_bits
    if x_int_bits > 10:
        raise OverflowError("exp argument below -1024: outside the range of float64 tables")
    frac_bits = rel_bits + 2 * (1 << x_int_bits) + 8  # exp(-|x|) >= 2^(-1.45 |x|)
    squarings = max(EXP_SQUARINGS, x_int_bits + 10)
    lo, hi = exp_neg_bounds(a, b, frac_bits, squarings, clamp=None)
    return lo, hi, frac_bits
