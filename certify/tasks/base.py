"""What a task is: a finite set of examples (tokens [N, n_ctx], readout positions [N],
labels [N]), exact by construction, and the parameters that generated it."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EXHAUSTIVE_LIMIT = 1 << 22  # examples a built-in exhaustive task may enumerate


class TaskError(ValueError):
    """A task that cannot be built as asked (a parameter out of range, too many inputs)."""


@dataclass(frozen=True)
class Param:
    type: type
    default: Any
    help: str


@dataclass
class TaskSet:
    name: str
    params: dict
    tokens: np.ndarray  # [N, n] int64
    positions: np.ndarray  # [N] int64
    labels: np.ndarray  # [N] int64
    conventions: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = np.ascontiguousarray(self.tokens, dtype=np.int64)
        self.positions = np.ascontiguousarray(self.positions, dtype=np.int64)
        self.labels = np.ascontiguousarray(self.labels, dtype=np.int64)

    @property
    def size(self) -> int:
        return int(len(self.labels))

    def digest(self) -> str:
        """sha256 of the examples: shapes, then tokens, positions, labels as little-endian int64."""
        h = hashlib.sha256()
        for a in (self.tokens, self.positions, self.labels):
            h.update(repr(list(a.shape)).encode() + b"\0" + a.astype("<i8").tobytes())
        return h.hexdigest()


def all_sequences(d_vocab: int, length: int) -> np.ndarray:
    if d_vocab ** length > EXHAUSTIVE_LIMIT:
        raise TaskError(f"{d_vocab}^{length} = {d_vocab ** length} inputs is more than {EXHAUSTIVE_LIMIT}")
    return np.array(list(itertools.product(range(d_vocab), repeat=length)), dtype=np.int64).reshape(-1, length)


def check_vocab(what: str, needed: int, d_vocab: int) -> None:
    if needed > d_vocab:
        raise TaskError(f"{what} needs {needed} tokens but the model's d_vocab is {d_vocab}")
