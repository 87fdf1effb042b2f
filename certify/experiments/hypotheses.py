"""Causal-scrubbing hypotheses for the Max-of-K model: each is the informal claim one
proof strategy relies on, written as a resampling ablation.

The model is treeified along the path decomposition (certify.proofs.exact): its
logits read six kinds of inputs (slots), which are all the same input x in the model

    logits = EUPU[q_direct] + sum_i a_i (EVOU[val_tok_i] + PVOU[val_pos_i]),
    a = softmax((EQKE[q_attn, key_tok_i] + EQKP[q_attn, key_pos_i]) / sqrt(d_head)),

with q_direct = q_attn = x[K-1], key_tok_i = val_tok_i = x[i], key_pos_i = val_pos_i = i.
A hypothesis is a list of `Draw`s: each draws one value, uniformly from [lo, hi) given
the reference input x, and feeds it to some slots; draws are independent (causal
scrubbing resamples each node on its own). For a token draw that interval is the
closed form of "the token at position `source` of an input x' drawn uniformly among
inputs that agree with x on `feature`" (tests check the closed form against that
definition by enumeration). A position draw replaces a position index.

"Free" positions are 0..K-2 (the last one holds the query); the proofs fix the query
token q and the max m per family, so the hypotheses that mirror them resample only
free positions that do not hold the max.

Adding a hypothesis is one `register(...)` call; `STRATEGY_OF` says which proof
strategy relies on it (one table, easy to update when strategies are renamed).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

SLOTS = ("q_direct", "q_attn", "key_tok", "key_pos", "val_tok", "val_pos")
QUERY_SLOTS = ("q_direct", "q_attn")  # one per input; the others have one per position


@dataclass
class Context:
    """What the draws of a hypothesis may read besides the input: sizes and, for the
    gap hypothesis, the gap proof's thresholds s(q, m) (computed on first use)."""
    d_vocab: int
    n_ctx: int
    gaps_fn: Callable[[], np.ndarray] | None = None
    _gaps: np.ndarray | None = field(default=None, repr=False)

    def gaps(self) -> np.ndarray:
        """[q, m] -> s: the gap proof's family (q, m) holds the inputs whose free tokens are m or <= s."""
        if self._gaps is None:
            if self.gaps_fn is None:
                raise ValueError("this hypothesis needs the gap proof's thresholds, and none were given")
            self._gaps = np.asarray(self.gaps_fn(), dtype=np.int64)
        return self._gaps


Interval = tuple[np.ndarray, np.ndarray]  # lo, hi per reference input: uniform over [lo, hi)


@dataclass(frozen=True)
class Draw:
    """One resampled node: a value uniform on support(x) fed to `feeds` ((slot, position))."""
    feeds: tuple[tuple[str, int], ...]
    support: Callable[[np.ndarray, Context], Interval]
    source: int | None = None  # token draws: the position of x' whose token is taken
    feature: Callable[[np.ndarray, Context], np.ndarray] | None = None  # [N, F]: what x' must share with x


@dataclass(frozen=True)
class Hypothesis:
    name: str
    claim: str
    draws: Callable[[Context], list[Draw]]

    @property
    def stream(self) -> int:
        """A stable id for this hypothesis' random stream (adding others changes nothing)."""
        return zlib.crc32(self.name.encode())


HYPOTHESES: dict[str, Hypothesis] = {}


def register(name: str, claim: str, draws: Callable[[Context], list[Draw]]) -> None:
    if name in HYPOTHESES:
        raise ValueError(f"hypothesis {name!r} registered twice")
    HYPOTHESES[name] = Hypothesis(name, claim, draws)


# Which strategy's proof relies on each claim (README: "Causal scrubbing beside the proofs").
# our gap proof and its family (`subcubic` and `subcubic/...` are aliases of the
# previous release: results files written then are read through certify's aliases)
GAP = "gap"
STRATEGY_OF: dict[str, str | None] = {
    "full": "bruteforce",
    "empty": None,
    "value-max-only": GAP,
    "nonmax-interchangeable": "cubic",
    "gap-threshold": GAP,
    "keys-any": f"{GAP}/exact/row/each",
    "positions-irrelevant": f"{GAP}/exact/prefix/worst",
    "direct-query-mean": f"{GAP}/norm/prefix/each",
}


def resolve(names: str) -> list[str]:
    """'all', one name or a comma list; unknown names are an error that lists the known ones."""
    if names == "all":
        return list(HYPOTHESES)
    out = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in out if n not in HYPOTHESES]
    if unknown or not out:
        raise ValueError(f"unknown hypothesis {', '.join(unknown) or names!r}; known: {', '.join(HYPOTHESES)}, all")
    return out


# ---- features and their closed-form conditional supports ---------------------------------

def _max(x: np.ndarray) -> np.ndarray:
    return x.max(axis=1)


def max_and_is_max(i: int) -> Callable[[np.ndarray, Context], np.ndarray]:
    """Feature (m, [x_i = m]): the max, and whether position i holds it."""
    return lambda x, ctx: np.stack([_max(x), x[:, i] == _max(x)], axis=1).astype(np.int64)


def below_max(i: int) -> Callable[[np.ndarray, Context], Interval]:
    """x'_i given (m, [x'_i = m]) equal to x's: m itself, or uniform on [0, m)."""
    def support(x: np.ndarray, ctx: Context) -> Interval:
        m = _max(x)
        is_max = x[:, i] == m
        return np.where(is_max, m, 0), np.where(is_max, m + 1, m)
    return support


def any_token_unless_max(i: int) -> Callable[[np.ndarray, Context], Interval]:
    """The key at position i: m itself where x_i is the max, otherwise any token, uniform.
    Not a conditional of one feature of x': the node is "the max token, if position i
    holds it", and where it does not, nothing is kept (not even that x'_i is below the max)."""
    def support(x: np.ndarray, ctx: Context) -> Interval:
        m = _max(x)
        is_max = x[:, i] == m
        return np.where(is_max, m, 0), np.where(is_max, m + 1, ctx.d_vocab)
    return support


def gap_bin_feature(i: int) -> Callable[[np.ndarray, Context], np.ndarray]:
    """Feature (q, m, bin of x_i): bin 2 = the max, 1 = at most s(q, m), 0 = in (s, m)."""
    def feature(x: np.ndarray, ctx: Context) -> np.ndarray:
        q, m = x[:, -1], _max(x)
        s = ctx.gaps()[q, m]
        b = np.where(x[:, i] == m, 2, np.where(x[:, i] <= s, 1, 0))
        return np.stack([q, m, b], axis=1).astype(np.int64)
    return feature


def gap_bin(i: int) -> Callable[[np.ndarray, Context], Interval]:
    """x'_i given (q, m, bin) equal to x's: m, uniform on [0, s], or uniform on (s, m)."""
    def support(x: np.ndarray, ctx: Context) -> Interval:
        q, m = x[:, -1], _max(x)
        s = ctx.gaps()[q, m]
        low = np.maximum(s + 1, 0)  # tokens in [0, s] (s may be -1 or -2: then none)
        is_max, below = x[:, i] == m, x[:, i] <= s
        lo = np.where(is_max, m, np.where(below, 0, low))
        hi = np.where(is_max, m + 1, np.where(below, low, m))
        return lo, hi
    return support


def constant(x: np.ndarray, ctx: Context) -> np.ndarray:
    return np.zeros((len(x), 1), dtype=np.int64)


def any_token(x: np.ndarray, ctx: Context) -> Interval:
    return np.zeros(len(x), dtype=np.int64), np.full(len(x), ctx.d_vocab, dtype=np.int64)


def any_free_position(x: np.ndarray, ctx: Context) -> Interval:
    return np.zeros(len(x), dtype=np.int64), np.full(len(x), ctx.n_ctx - 1, dtype=np.int64)


def free(ctx: Context) -> range:
    return range(ctx.n_ctx - 1)


# ---- the registry -----------------------------------------------------------------------

register("full", "nothing is resampled: the model itself (100% by construction; a check)",
         lambda ctx: [])
register("empty", "nothing matters: the whole model runs on an independent uniform input (0% by construction)",
         lambda ctx: [Draw((("key_tok", i), ("val_tok", i))
                           + (tuple((s, -1) for s in QUERY_SLOTS) if i == ctx.n_ctx - 1 else ()),
                           any_token, i, constant) for i in range(ctx.n_ctx)])
register("value-max-only", "the value path carries only the max token: the value input of each free non-max "
         "position comes from an input with the same max whose token there is not the max",
         lambda ctx: [Draw((("val_tok", i),), below_max(i), i, max_and_is_max(i)) for i in free(ctx)])
# Resampling a whole position (key and value together) from its own conditional law keeps the
# input distribution and the label: 100% by construction, whatever the model (see the README).
register("nonmax-interchangeable", "non-max tokens are interchangeable: each free non-max position's token "
         "(its key and its value together) comes from an input with the same max, non-max there",
         lambda ctx: [Draw((("key_tok", i), ("val_tok", i)), below_max(i), i, max_and_is_max(i))
                      for i in free(ctx)])
register("gap-threshold", "only whether a non-max token is at most the gap proof's threshold s(q, m) matters: "
         "key and value of each free non-max position are resampled independently within its bin "
         "([0, s] or (s, m)) from inputs with the same query and max",
         lambda ctx: [Draw(((slot, i),), gap_bin(i), i, gap_bin_feature(i))
                      for i in free(ctx) for slot in ("key_tok", "val_tok")])
register("keys-any", "attention does not need non-max keys to be below the max: the key input of each free "
         "non-max position is any token (uniform), its value kept",
         lambda ctx: [Draw((("key_tok", i),), any_token_unless_max(i), i, None) for i in free(ctx)])
register("positions-irrelevant", "positional terms do not matter among free positions: each free position's "
         "positional input (to its key and its value) is a uniformly drawn free position",
         lambda ctx: [Draw((("key_pos", i), ("val_pos", i)), any_free_position) for i in free(ctx)])
register("direct-query-mean", "the direct path depends on the query only through its mean: its query token "
         "comes from an independent uniform input",
         lambda ctx: [Draw((("q_direct", -1),), any_token, ctx.n_ctx - 1, constant)])
