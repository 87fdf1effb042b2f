"""The same forward pass (`sound_forward.forward_logits`) in python-flint arb balls at a
chosen precision: rigorous (Arb's exp, erf, tanh and rsqrt are proven enclosures), slower
(one Python object per number), so used only on the inputs whose float64 intervals
cannot decide the argmax. Precision rises until the decision is made or MAX_PREC bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PRECISIONS = (128, 256, 512, 1024)


def _vec(f):
    return np.frompyfunc(f, 1, 1)


class Balls:
    """arb balls in numpy object arrays (np.matmul / np.sum work on object dtype)."""

    def __init__(self) -> None:
        from flint import arb
        self.arb = arb
        self._exp = _vec(lambda a: a.exp())
        self._tanh = _vec(lambda a: a.tanh())
        self._erf = _vec(lambda a: a.erf())
        self._sigmoid = _vec(lambda a: 1 / (1 + (-a).exp()))
        self._rsqrt = _vec(lambda a: a.rsqrt())
        self._relu = _vec(lambda a: (a + abs(a)) / 2)
        self._arb = _vec(lambda f: arb(float(f)))

    def const(self, a: np.ndarray) -> np.ndarray:
        return self._arb(np.asarray(a, dtype=np.float64))

    def inv_sqrt(self, d: int):
        return self.arb(d).rsqrt()

    def recip_int(self, m: int):
        return 1 / self.arb(m)

    def recip_float(self, f: float):
        return 1 / self.arb(float(f))

    def decimal(self, x: float):
        return self.arb(repr(float(x)))  # the decimal reading of the constant, enclosed

    def decimal_exact(self, f: float):
        return self.arb(float(f))

    def sqrt_two_over_pi(self):
        return (2 / self.arb.pi()).sqrt()

    def matmul(self, a, b):
        return np.matmul(a, b)

    def transpose(self, a):
        return np.swapaxes(a, -1, -2)

    def sum(self, a, axis: int, keepdims: bool = False):
        return np.sum(a, axis=axis, keepdims=keepdims)

    def take(self, a, index: Any):
        return a[index]

    def expand(self, a, axis: int):
        return np.expand_dims(a, axis)

    def square(self, x):
        return x * x

    def rsqrt(self, v):
        return self._rsqrt(v)

    def relu(self, x):
        return self._relu(x)

    def tanh(self, x):
        return self._tanh(x)

    def erf(self, x):
        return self._erf(x)

    def sigmoid(self, x):
        return self._sigmoid(x)

    def softmax(self, s, keep: np.ndarray):
        keep = np.broadcast_to(keep, s.shape)
        e = np.where(keep, self._exp(np.where(keep, s, self.arb(0))), self.arb(0))
        return e / np.sum(e, axis=-1, keepdims=True)


def ball_decide(model, tokens: np.ndarray, position: int, label: int) -> tuple[str, int]:
    """('correct' | 'wrong' | 'undecided', the precision in bits that decided it)."""
    from flint import ctx
    from .sound_forward import backend_params, forward_logits
    old = ctx.prec
    try:
        for prec in PRECISIONS:
            ctx.prec = prec
            be = Balls()
            logits = forward_logits(be, model, backend_params(be, model), tokens[None, :],
                                    np.array([position]))[0]
            target = logits[label]
            others = [logits[j] for j in range(len(logits)) if j != label]
            if all(target > o for o in others):
                return "correct", prec
            if any(o >= target for o in others):
                return "wrong", prec
        return "undecided", PRECISIONS[-1]
    finally:
        ctx.prec = old
