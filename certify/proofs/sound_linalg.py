"""Outward-rounded float64 interval arithmetic, counted in the paper's FLOP measure.

Why floats: the paper's 100 subcubic proofs are linear algebra on d_vocab x d_model
matrices plus a softmax per proof family; exact rationals would be slow, plain floats
unsound. Every value here is an interval [lo, hi] of float64 that contains the exact
real value (the weights are float32, so the inputs are exact points).

Soundness of each operation (IEEE 754, round to nearest, |error| <= half an ulp):
- +, -, *, /, sqrt of floats: the exact result lies between the neighbours of the
  computed float (`np.nextafter` down / up), subnormals included.
- sums over n terms and matrix products with k terms per entry: the a-priori bound
  |fl(sum) - sum| <= gamma_n sum|x_i|, gamma_n = n u / (1 - n u) (Higham, Thm 3.1 / 3.5;
  any summation order, so BLAS blocking and FMA are covered); products use the
  midpoint-radius form |AB - mA mB| <= |mA| rB + rA (|mB| + rB) (Rump). The radius is
  itself computed in floats and inflated by a factor well above its own rounding error.
- exp: a rigorous table (exp of integers, of multiples of 2^-8 and of 2^-16, enclosed
  from `arith`'s integer bounds and powered up with outward rounding); exp(y) lies
  between the table values at the grid points below and above y (exp is increasing),
  so the only loss is the grid's 2^-16 (relative 1.5e-5), never soundness.
- NaN (inf - inf, 0 * inf) widens to (-inf, +inf): a decision `hi < 0` is then False.

FLOPs are counted the way the paper's code counts them: a matrix product with output
size n x m and inner size k costs n m (2k - 1), a reduction over n values n - 1, an
elementwise operation 1 per output entry. An interval operation counts once (it is
the proof's one operation on one value; its two float bounds are how it is made sound).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .arith import exp_neg_bounds_relative, inv_sqrt_bounds

U = 2.0 ** -53  # unit roundoff
ETA = 2.0 ** -1074  # smallest subnormal: bounds the error of a product that underflows


class Flops:
    """A FLOP counter in the paper's measure."""

    def __init__(self) -> None:
        self.n = 0


_COUNTERS: list[Flops] = []


@contextmanager
def counting(counter: Flops):
    """Charge the operations done inside the block to `counter` (nested blocks: innermost)."""
    _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        _COUNTERS.pop()


def charge(n: int) -> None:
    if _COUNTERS:
        _COUNTERS[-1].n += int(n)


def down(x: np.ndarray) -> np.ndarray:
    return np.nextafter(x, -np.inf)


def up(x: np.ndarray) -> np.ndarray:
    return np.nextafter(x, np.inf)


def _clean(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.where(np.isnan(lo), -np.inf, lo)
    hi = np.where(np.isnan(hi), np.inf, hi)
    return lo, hi


@dataclass(frozen=True)
class Iv:
    """An array of intervals [lo, hi] (float64), each containing the exact value."""

    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def point(x) -> "Iv":
        a = np.asarray(x, dtype=np.float64)
        return Iv(a, a)

    @staticmethod
    def of(x) -> "Iv":
        return x if isinstance(x, Iv) else Iv.point(x)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.lo.shape

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * self.lo + 0.5 * self.hi

    @property
    def T(self) -> "Iv":
        return Iv(self.lo.T, self.hi.T)

    def __getitem__(self, idx) -> "Iv":
        return Iv(self.lo[idx], self.hi[idx])

    def __add__(self, other) -> "Iv":
        o = Iv.of(other)
        lo, hi = down(self.lo + o.lo), up(self.hi + o.hi)
        charge(np.size(lo))
        return Iv(*_clean(lo, hi))

    __radd__ = __add__

    def __sub__(self, other) -> "Iv":
        o = Iv.of(other)
        lo, hi = down(self.lo - o.hi), up(self.hi - o.lo)
        charge(np.size(lo))
        return Iv(*_clean(lo, hi))

    def __rsub__(self, other) -> "Iv":
        return Iv.of(other) - self

    def __neg__(self) -> "Iv":
        charge(np.size(self.lo))
        return Iv(-self.hi, -self.lo)

    def __mul__(self, other) -> "Iv":
        o = Iv.of(other)
        with np.errstate(invalid="ignore", over="ignore"):
            p = np.stack(np.broadcast_arrays(self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi))
        nan = np.isnan(p).any(axis=0)
        lo = np.where(nan, -np.inf, down(np.nanmin(np.where(np.isnan(p), np.inf, p), axis=0)))
        hi = np.where(nan, np.inf, up(np.nanmax(np.where(np.isnan(p), -np.inf, p), axis=0)))
        charge(np.size(lo))
        return Iv(lo, hi)

    __rmul__ = __mul__

    def abs(self) -> "Iv":
        lo = np.where(self.lo > 0, self.lo, np.where(self.hi < 0, -self.hi, 0.0))
        charge(np.size(lo))
        return Iv(lo, np.maximum(np.abs(self.lo), np.abs(self.hi)))

    def max(self, axis=None) -> "Iv":
        charge(_reduction_cost(self.lo.shape, axis))
        return Iv(self.lo.max(axis=axis), self.hi.max(axis=axis))

    def min(self, axis=None) -> "Iv":
        charge(_reduction_cost(self.lo.shape, axis))
        return Iv(self.lo.min(axis=axis), self.hi.min(axis=axis))

    def sum(self, axis=None) -> "Iv":
        n = self.lo.size if axis is None else self.lo.shape[axis]
        charge(_reduction_cost(self.lo.shape, axis))
        return Iv(*_sum_bounds(self.lo, self.hi, n, axis))

    def row_range(self) -> np.ndarray:
        """Upper bound of max_{i,j} (X[r,i] - X[r,j]) per row r (last axis)."""
        charge(2 * _reduction_cost(self.lo.shape, -1) + self.lo.size // max(self.lo.shape[-1], 1))
        return up(self.hi.max(axis=-1) - self.lo.min(axis=-1))

    def __matmul__(self, other: "Iv") -> "Iv":
        return matmul(self, other)


def _reduction_cost(shape: tuple[int, ...], axis) -> int:
    size = int(np.prod(shape)) if shape else 1
    if axis is None:
        return max(size - 1, 0)
    n = shape[axis]
    return (size // n) * (n - 1) if n else 0


def _sum_bounds(lo: np.ndarray, hi: np.ndarray, n: int, axis) -> tuple[np.ndarray, np.ndarray]:
    """Sums of the bounds, widened by the a-priori summation error bound."""
    g = 4.0 * (n + 2) * U  # > 2 gamma_n, also covering the rounding of the error term
    with np.errstate(invalid="ignore", over="ignore"):
        slo, shi = lo.sum(axis=axis), hi.sum(axis=axis)
        elo = up(g * np.abs(lo).sum(axis=axis) + n * ETA)
        ehi = up(g * np.abs(hi).sum(axis=axis) + n * ETA)
        return _clean(down(slo - elo), up(shi + ehi))


def matmul(a: Iv, b: Iv) -> Iv:
    """Interval matrix product (midpoint-radius); costs n m (2k - 1)."""
    k = a.lo.shape[-1]
    if b.lo.shape[-2 if b.lo.ndim >= 2 else 0] != k:  # batched (stacked) products broadcast as np.matmul
        raise ValueError(f"matmul: inner sizes differ ({a.lo.shape} @ {b.lo.shape})")
    with np.errstate(invalid="ignore", over="ignore"):
        ma, mb = a.mid, b.mid
        ra = up(np.maximum(a.hi - ma, ma - a.lo))
        rb = up(np.maximum(b.hi - mb, mb - b.lo))
        c = ma @ mb
        g = 2.0 * (k + 2) * U
        am, bm = np.abs(ma), np.abs(mb)
        rad = am @ (rb + g * bm) + ra @ (bm + rb)
        rad = up(rad * (1.0 + 4.0 * (k + 3) * U) + 4.0 * (k + 1) * ETA)
        lo, hi = down(c - rad), up(c + rad)
    out_size = int(np.prod(c.shape)) if np.ndim(c) else 1
    charge(out_size * (2 * k - 1))
    return Iv(*_clean(lo, hi))


def point_sqrt_up(x: float) -> float:
    return float(up(np.sqrt(np.float64(x))))


# ---- exp -----------------------------------------------------------------------------

GRID_BITS = 16  # exp(y) is enclosed between its values at multiples of 2^-16 around y
Y_MIN, Y_MAX = -746, 709  # below: exp(y) < 2^-1075 (lower bound 0); above: overflow (inf)


def _enclose_fraction(lo: Fraction, hi: Fraction) -> tuple[float, float]:
    return float(down(np.float64(float(lo)))), float(up(np.float64(float(hi))))


def _exp_base(a: int, b: int) -> tuple[float, float]:
    """Float enclosure of exp(a / 2^b) for any integer a (negative or positive)."""
    lo, hi, f = exp_neg_bounds_relative(abs(a), b)
    if a <= 0:
        return _enclose_fraction(Fraction(lo, 1 << f), Fraction(hi, 1 << f))
    return _enclose_fraction(Fraction(1 << f, hi), Fraction(1 << f, lo))


def _powers(base: tuple[float, float], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Enclosures of base^j for j = 0 .. count - 1 by outward-rounded products."""
    blo, bhi = base
    los, his = np.empty(count), np.empty(count)
    lo, hi = 1.0, 1.0
    with np.errstate(over="ignore", under="ignore"):
        for j in range(count):
            los[j], his[j] = lo, hi
            lo, hi = float(down(np.float64(lo) * blo)), float(up(np.float64(hi) * bhi))
    return los, his


@lru_cache(maxsize=1)
def _exp_tables():
    """(E2 over integers Y_MIN..Y_MAX, E1 over j/2^8, E0 over j/2^16), as (lo, hi) arrays."""
    e2_down = _powers(_exp_base(-1, 0), -Y_MIN + 1)  # exp(-j), j = 0..746
    e2_up = _powers(_exp_base(1, 0), Y_MAX + 1)  # exp(j), j = 0..709
    e2 = (np.concatenate([e2_down[0][::-1], e2_up[0][1:]]), np.concatenate([e2_down[1][::-1], e2_up[1][1:]]))
    e1 = _powers(_exp_base(1, 8), 256)
    e0 = _powers(_exp_base(1, 16), 256)
    return e2, e1, e0


def _exp_grid(k: np.ndarray, side: int) -> np.ndarray:
    """Lower (side 0) or upper (side 1) bound of exp(k / 2^16) for integer arrays k."""
    e2, e1, e0 = _exp_tables()
    k2 = k >> GRID_BITS
    k1 = (k >> 8) & 255
    k0 = k & 255
    a, b, c = e2[side][k2 - Y_MIN], e1[side][k1], e0[side][k0]
    rnd = down if side == 0 else up
    with np.errstate(over="ignore", under="ignore"):
        return rnd(rnd(a * b) * c)


def iexp(x: Iv) -> Iv:
    """Rigorous enclosure of exp on an interval array (elementwise op: 1 FLOP each)."""
    charge(np.size(x.lo))
    scale = float(1 << GRID_BITS)
    lo_arg = np.clip(np.nan_to_num(x.lo, nan=-np.inf), Y_MIN, Y_MAX)
    hi_arg = np.clip(np.nan_to_num(x.hi, nan=np.inf), Y_MIN, Y_MAX)
    klo = np.floor(lo_arg * scale).astype(np.int64)
    khi = np.ceil(hi_arg * scale).astype(np.int64)
    khi = np.minimum(khi, Y_MAX << GRID_BITS)
    lo = np.where(x.lo <= Y_MIN, 0.0, _exp_grid(np.maximum(klo, Y_MIN << GRID_BITS), 0))
    hi = np.where(x.hi >= Y_MAX, np.inf, _exp_grid(khi, 1))
    return Iv(lo, hi)


def inv_sqrt_interval(d: int) -> Iv:
    """1/sqrt(d) enclosed from `arith`'s integer bounds (rounded outward to floats)."""
    lo, hi = inv_sqrt_bounds(d, 64)
    flo, fhi = _enclose_fraction(Fraction(lo, 1 << 64), Fraction(hi, 1 << 64))
    return Iv.point(flo) if flo == fhi else Iv(np.float64(flo), np.float64(fhi))


# ---- spectral norm ---------------------------------------------------------------------

SQUARINGS = 8  # rho(G) <= ||G^(2^8)||_F^(1/256)


def spectral_norm_upper(x: Iv, y: Iv) -> float:
    """Rigorous upper bound of sigma_1(X Y) without forming X Y (X: n x r, Y: r x n').

    sigma_1(XY)^2 is the largest eigenvalue of (XY)^T XY, equal to the spectral radius of
    the r x r matrix G = (X^T X)(Y Y^T) (same non-zero eigenvalues; all real and >= 0). By
    Gelfand, rho(G) <= ||G^k||_F^(1/k) for every k; k = 2^8 by repeated squaring in
    interval arithmetic, each square rescaled by an exact power of two (kept apart as an
    exponent) so nothing overflows. The bound exceeds rho by at most a factor
    (rank * cond)^(1/k), i.e. a few per cent on sigma_1 (measured in the README).
    Cost: two Gram products (2 r^2 n) and 8 squarings (r^3 each), subcubic in n.
    """
    g = matmul(matmul(x.T, x), matmul(y, y.T))
    expo = 0  # G_true^k = G * 2^expo
    for _ in range(SQUARINGS):
        g = matmul(g, g)
        expo *= 2
        top = float(np.max(np.maximum(np.abs(g.lo), np.abs(g.hi))))
        if not math.isfinite(top):
            return math.inf
        if top > 0:
            e = math.frexp(top)[1]
            g = Iv(down(np.ldexp(g.lo, -e)), up(np.ldexp(g.hi, -e)))
            expo += e
    mag = np.maximum(np.abs(g.lo), np.abs(g.hi))
    fro2 = float(_sum_bounds(mag * mag, mag * mag, mag.size, None)[1])
    charge(2 * mag.size)
    if fro2 == 0:
        return 0.0
    # rho <= (fro2 * 2^(2 expo))^(1 / 2k) and sigma_1 = sqrt(rho): a (4k)-th root
    val, e = math.frexp(fro2)  # fro2 = val 2^e
    total_e = e + 2 * expo
    for _ in range(SQUARINGS + 2):  # 2k = 2^(S+1), then one more root for sigma = sqrt(rho)
        if total_e % 2:
            val, total_e = val * 2.0, total_e - 1
        val = float(up(np.sqrt(np.float64(val))))
        total_e //= 2
        charge(1)
    return float(up(np.float64(math.ldexp(val, total_e))))


def charge_svd(rows: int, cols: int) -> None:
    """FLOPs of a thin SVD of a rows x cols float matrix (Golub-Van Loan: 4 m n^2 + 8 n^3
    for U, S, V with m >= n), charged where a proof computes an approximation direction."""
    m, n = max(rows, cols), min(rows, cols)
    charge(4 * m * n * n + 8 * n ** 3)
