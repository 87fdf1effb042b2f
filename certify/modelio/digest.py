"""The sha256 of a model's weights, without torch (so `certify check` needs no torch).

One canonical form for every digest (model store, sidecars, certificate headers, the
re-check from a certificate's integers): for each weight in a fixed name order, the name,
a NUL, the shape as `repr(list(shape))`, a NUL, then the entries as little-endian
float32 bytes in row-major order with every zero written as +0.0 (bytes 00 00 00 00).
Why +0.0: a certificate stores each weight as an exact integer, where -0.0 and +0.0 are
the same number 0, so a digest that kept the sign of zero could not be re-derived from
the certificate (issue 18, defect 5). Both zeros are the same value in every proof, so
nothing the proofs depend on is lost. Weights without a -0.0 get exactly the bytes (and
the digest) they always had.
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

import numpy as np

WEIGHT_NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U")


def canonical_float32(a: np.ndarray) -> np.ndarray:
    """`a` as contiguous little-endian float32 with -0.0 replaced by +0.0."""
    out = np.array(a, dtype="<f4", order="C", copy=True)
    out[out == 0] = 0.0  # -0.0 == 0 is true: both zeros become +0.0
    return out


def weights_sha256_arrays(arrays: Mapping[str, np.ndarray], names: Sequence[str] = WEIGHT_NAMES) -> str:
    """sha256 over `names` in order: name, shape, canonical float32 bytes (module docstring)."""
    h = hashlib.sha256()
    for name in names:
        a = canonical_float32(arrays[name])
        h.update(name.encode() + b"\0" + repr(list(a.shape)).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()
