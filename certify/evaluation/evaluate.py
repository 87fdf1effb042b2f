"""Certified accuracy and a loss bound of a general model on a finite input set.

Each example (tokens, readout position, label) is decided by the batched float64
interval forward pass when its intervals separate the label's logit from every other
(correct) or show another logit >= it (wrong); the rest go to arb balls at rising
precision (`ball_forward`); what no precision decides (an exact tie, say) counts as
wrong. The loss bound is the interval pass's: CE = log sum_j exp(l_j - l_label) <=
log sum_j exp(hi_j - lo_label), log bounded above by checking exp(t) >= S with the
rigorous exp lower bound; the mean is rounded up; None if any bound is infinite.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..modelio.general import GeneralModel
from ..proofs.sound_linalg import Iv, down, up
from .enclosures import _exp_lower, _exp_upper
from .sound_forward import FloatIntervals, backend_params, forward_logits

BATCH_ELEMENTS = 1 << 22  # interval entries per batch of the widest activation (memory bound)


@dataclass
class Evaluation:
    total: int
    correct: int
    paths: dict = field(default_factory=dict)  # inputs decided by each path
    loss_upper: float | None = None
    seconds: float = 0.0
    ball_seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "accuracy": self.accuracy}


def interval_decisions(logits: Iv, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(certainly correct, certainly wrong) per example; a tie is wrong."""
    rows = np.arange(len(labels))
    lo_label, hi_label = logits.lo[rows, labels], logits.hi[rows, labels]
    others_hi = logits.hi.copy()
    others_hi[rows, labels] = -np.inf
    others_lo = logits.lo.copy()
    others_lo[rows, labels] = -np.inf
    correct = lo_label > others_hi.max(axis=1)
    wrong = others_lo.max(axis=1) >= hi_label
    return correct, wrong


def log_upper(s: np.ndarray) -> np.ndarray:
    """t >= log(s) for s >= 1, checked: the rigorous lower bound of exp(t) reaches s."""
    t = up(up(np.log(s)))
    delta = 1e-13 * np.maximum(np.abs(t), 1e-3)
    for _ in range(64):
        short = _exp_lower(t) < s
        if not short.any():
            return t
        t = np.where(short, up(t + delta), t)
        delta = delta * 2.0
    return np.where(_exp_lower(t) >= s, t, np.inf)


def cross_entropy_upper(logits: Iv, labels: np.ndarray) -> np.ndarray:
    rows = np.arange(len(labels))
    diff_hi = up(logits.hi - logits.lo[rows, labels][:, None])
    e = _exp_upper(diff_hi)
    s = Iv(e, e).sum(axis=1).hi  # upper bound of the sum
    return log_upper(np.maximum(s, 1.0))


def _batch_size(model: GeneralModel, n: int) -> int:
    c = model.cfg
    widest = max(c.d_model, c.d_mlp or 0, c.d_vocab_out, c.n_heads * n * max(n, c.d_head))
    return max(1, BATCH_ELEMENTS // (n * widest))


def evaluate(model: GeneralModel, tokens: np.ndarray, positions: np.ndarray, labels: np.ndarray,
             loss: bool = False, progress: bool = False) -> Evaluation:
    """Certify every example; count the paths; optionally the mean cross-entropy bound."""
    t0 = time.perf_counter()
    tokens, positions, labels = (np.asarray(a, dtype=np.int64) for a in (tokens, positions, labels))
    be = FloatIntervals()
    params = backend_params(be, model)
    N, n = tokens.shape
    step = _batch_size(model, n)
    correct = np.zeros(N, bool)
    wrong = np.zeros(N, bool)
    ce = np.zeros(N) if loss else None
    bar = _progress(N, progress)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for start in range(0, N, step):
            sl = slice(start, min(N, start + step))
            logits = forward_logits(be, model, params, tokens[sl], positions[sl])
            correct[sl], wrong[sl] = interval_decisions(logits, labels[sl])
            if ce is not None:
                ce[sl] = cross_entropy_upper(logits, labels[sl])
            if bar is not None:
                bar.update(sl.stop - sl.start)
    if bar is not None:
        bar.close()
    paths = {"float64-intervals": int(correct.sum() + wrong.sum())}
    undecided = np.flatnonzero(~(correct | wrong))
    t1 = time.perf_counter()
    ball_correct = 0
    if len(undecided):
        from .ball_forward import ball_decide
        for i in undecided:
            verdict, prec = ball_decide(model, tokens[i], int(positions[i]), int(labels[i]))
            key = f"arb-{prec}-bits" if verdict != "undecided" else "undecided (counted wrong)"
            paths[key] = paths.get(key, 0) + 1
            ball_correct += verdict == "correct"
    loss_upper = None
    if ce is not None and np.isfinite(ce).all() and N:
        total = Iv(ce, ce).sum().hi
        loss_upper = float(up(total / N)) if np.isfinite(total) else None
    return Evaluation(N, int(correct.sum()) + ball_correct, paths, loss_upper,
                      time.perf_counter() - t0, time.perf_counter() - t1)


def _progress(total: int, on: bool):
    if not on or total < 20000:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=sys.stderr, unit="input", desc="sound forward")
