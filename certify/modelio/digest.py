"""The sha256 of a model's weights, without torch (so `certify check` needs no torch)."""

from __future__ import annotations

import hashlib

import numpy as np

WEIGHT_NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U")


def weights_sha256_arrays(arrays: dict[str, np.ndarray], names: tuple[str, ...] | None = None) -> str:
    """sha256 over `names` in order (default WEIGHT_NAMES, the Max-of-K weights; general
    models pass their sorted parameter names): name, shape, little-endian float32 bytes."""
    h = hashlib.sha256()
    for name in (WEIGHT_NAMES if names is None else names):
        a = np.ascontiguousarray(arrays[name], dtype="<f4")
        h.update(name.encode() + b"\0" + repr(list(a.shape)).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()
