"""Exact weights and exact path tables.

A float32 weight is a dyadic rational m * 2^e. A tensor becomes a matrix of Python
integers with one power-of-two scale (`Dyadic`), losslessly, and the path tables
(EQKE, EQKP, EVOU, PVOU, EUPU) are then computed exactly in integer arithmetic. Every
bound in the project starts from these tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch


@dataclass(frozen=True)
class Dyadic:
    """A matrix of exact rationals `ints * 2**exp` (`ints`: numpy object array of int)."""

    ints: np.ndarray
    exp: int

    @property
    def shape(self) -> tuple[int, ...]:
        return self.ints.shape

    def align(self, exp: int) -> "Dyadic":
        if exp > self.exp:
            raise ValueError("can only align to a smaller exponent (exactly)")
        if exp == self.exp:
            return self
        return Dyadic(self.ints * (1 << (self.exp - exp)), exp)

    def __add__(self, other: "Dyadic") -> "Dyadic":
        e = min(self.exp, other.exp)
        return Dyadic(self.align(e).ints + other.align(e).ints, e)

    def __sub__(self, other: "Dyadic") -> "Dyadic":
        e = min(self.exp, other.exp)
        return Dyadic(self.align(e).ints - other.align(e).ints, e)

    def __matmul__(self, other: "Dyadic") -> "Dyadic":
        return Dyadic(np.dot(self.ints, other.ints), self.exp + other.exp)

    @property
    def T(self) -> "Dyadic":
        return Dyadic(self.ints.T.copy(), self.exp)

    def __getitem__(self, idx) -> "Dyadic":
        out = self.ints[idx]
        return Dyadic(out if isinstance(out, np.ndarray) else np.array(out, dtype=object), self.exp)

    def fraction(self, *idx: int) -> Fraction:
        return Fraction(int(self.ints[idx])) * Fraction(2) ** self.exp

    def to_float64(self) -> np.ndarray:
        """Round each entry to the nearest float64 (relative error <= 2^-53).

        Python's int -> float conversion is correctly rounded, and ldexp is exact
        unless the result over/underflows, which `to_float64` refuses.
        """
        out = np.array([math.ldexp(float(v), self.exp) for v in self.ints.ravel()], dtype=np.float64)
        if not np.all(np.isfinite(out)):
            raise OverflowError("dyadic entry out of float64 range")
        tiny = np.abs(out) < 2.0 ** -1000
        if np.any(tiny & (self.ints.ravel() != 0)):
            raise OverflowError("dyadic entry too small for a relative float64 error bound")
        return out.reshape(self.ints.shape)

    def normalized(self) -> "Dyadic":
        """Same values with the largest exponent that keeps the integers exact."""
        nz = [int(v) for v in self.ints.ravel() if v != 0]
        if not nz:
            return Dyadic(self.ints.copy(), 0)
        shift = min((v & -v).bit_length() - 1 for v in nz)
        return Dyadic(np.vectorize(lambda v: int(v) >> shift, otypes=[object])(self.ints), self.exp + shift)


def float32_to_dyadic(t: torch.Tensor) -> Dyadic:
    """Exact integer mantissas with a common power-of-two scale (lossless)."""
    arr = t.detach().cpu().numpy()
    if arr.dtype != np.float32:
        raise TypeError(f"expected float32, got {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("non-finite value cannot be made exact")
    mant, ex = np.frexp(arr.astype(np.float64))  # arr = mant * 2^ex, |mant| in [0.5, 1)
    # float32 has a 24-bit significand: mant * 2^24 is an integer.
    m24 = (mant * (1 << 24)).astype(np.int64)
    e = ex.astype(np.int64) - 24
    nonzero = m24 != 0
    base = int(e[nonzero].min()) if nonzero.any() else 0
    ints = np.empty(arr.shape, dtype=object)
    flat_m, flat_e = m24.ravel(), e.ravel()
    out = ints.ravel()
    for i in range(flat_m.size):
        out[i] = int(flat_m[i]) << int(flat_e[i] - base) if flat_m[i] != 0 else 0
    return Dyadic(ints.reshape(arr.shape), base).normalized()


def dyadic_to_float32(d: Dyadic) -> torch.Tensor:
    """Inverse of `float32_to_dyadic`; raises if an entry is not exactly a float32."""
    vals = d.to_float64() if d.ints.size else np.zeros(d.shape)
    as32 = vals.astype(np.float32)
    if not np.array_equal(as32.astype(np.float64), vals):
        raise ValueError("dyadic value is not exactly representable as float32")
    return torch.from_numpy(as32.copy())


@dataclass(frozen=True)
class PathTables:
    """Exact path decomposition of the Max-of-K model (zero biases, no LayerNorm).

    With E = W_E, P = W_pos and the query (last-position) token q:
      EQKE[q, t] = (E[q] + P[-1]) Q K^T E[t]^T      EQKP[q, i] = (E[q] + P[-1]) Q K^T P[i]^T
      EVOU[t, j] = E[t] V O U                       PVOU[i, j] = P[i] V O U
      EUPU[q, j] = (E[q] + P[-1]) U
    logits[j] = EUPU[q, j] + sum_i a_i (EVOU[t_i, j] + PVOU[i, j]),
    a = softmax((EQKE[q, t_i] + EQKP[q, i]) / sqrt(d_head)).
    """

    EQKE: Dyadic
    EQKP: Dyadic
    EVOU: Dyadic
    PVOU: Dyadic
    EUPU: Dyadic
    d_head: int


def exact_weights(weights: dict[str, torch.Tensor]) -> dict[str, Dyadic]:
    return {name: float32_to_dyadic(t) for name, t in weights.items()}


def path_tables(weights: dict[str, torch.Tensor]) -> PathTables:
    w = exact_weights(weights)
    E, P, U = w["W_E"], w["W_pos"], w["W_U"]
    E_q = E + P[-1:]  # query side: token embedding plus the last position's embedding
    QK = w["W_Q"] @ w["W_K"].T  # [d_model, d_model]
    EQK = E_q @ QK
    VOU = w["W_V"] @ w["W_O"] @ U  # [d_model, d_vocab]
    return PathTables(
        EQKE=EQK @ E.T,
        EQKP=EQK @ P.T,
        EVOU=E @ VOU,
        PVOU=P @ VOU,
        EUPU=E_q @ U,
        d_head=int(weights["W_Q"].shape[1]),
    )
