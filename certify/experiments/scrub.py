"""Causal scrubbing (Chan et al. 2022) of the Max-of-K model: the hypotheses of
certify.experiments.hypotheses judged by resampling ablation.

Metric (the causal-scrubbing appendix), with cross-entropy against the label max(x):

    % loss recovered = (L_random - L_scrubbed) / (L_random - L_model)

L_random is the loss when labels are shuffled against the model's outputs: the
expected loss of logits(x) against the label of an independent input, computed
exactly as sum_j P(max = j) CE(logits(x), j). The scrubbed accuracy counts an input
right when the label's logit is the unique largest (ties are wrong, as in the proofs).

Everything runs on the path tables (certify.proofs.exact) rounded to float64: this is
an estimate of an average, not a bound, so plain floats are fine here and nothing in
this module feeds a certificate.

`exact`: every reference input and every joint value of the draws is enumerated with
its probability (small models). `monte-carlo`: S reference inputs drawn uniformly,
one resample each; L_model, L_random and L_scrubbed are averaged over the same inputs
(paired), and the 95% interval of the ratio is the delta method's. Deterministic by
seed: the reference inputs depend on the seed only, each hypothesis' draws on the
seed and its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .hypotheses import HYPOTHESES, QUERY_SLOTS, STRATEGY_OF, Context, Draw, Hypothesis

if TYPE_CHECKING:  # torch stays unimported until a model is loaded
    from ..proofs.exact import PathTables

Z95 = 1.959963984540054
BLOCK = 1 << 15  # rows of logits per block (BLOCK x K x d_vocab float64 at a time)
EXACT_INPUTS = 1 << 16  # enumerate reference inputs up to this many ...
EXACT_EVALUATIONS = 1 << 22  # ... and (input, resample) pairs up to this many
DEFAULT_SAMPLES = 200_000


@dataclass(frozen=True)
class FloatTables:
    """Path tables in float64, attention scores already divided by sqrt(d_head)."""
    eqke: np.ndarray  # [q, t]
    eqkp: np.ndarray  # [q, i]
    evou: np.ndarray  # [t, j]
    pvou: np.ndarray  # [i, j]
    eupu: np.ndarray  # [q, j]

    @property
    def d_vocab(self) -> int:
        return self.eqke.shape[0]

    @property
    def n_ctx(self) -> int:
        return self.eqkp.shape[1]

    @staticmethod
    def of(t: PathTables) -> "FloatTables":
        scale = 1.0 / math.sqrt(t.d_head)
        return FloatTables(t.EQKE.to_float64() * scale, t.EQKP.to_float64() * scale, t.EVOU.to_float64(),
                           t.PVOU.to_float64(), t.EUPU.to_float64())


Slots = dict[str, np.ndarray]  # query slots [N], the others [N, K]


def model_slots(x: np.ndarray) -> Slots:
    """Every path reads the input itself: the un-scrubbed model."""
    pos = np.broadcast_to(np.arange(x.shape[1]), x.shape)
    return {"q_direct": x[:, -1], "q_attn": x[:, -1], "key_tok": x, "key_pos": pos, "val_tok": x, "val_pos": pos}


def scrubbed_slots(x: np.ndarray, draws: list[Draw], values: list[np.ndarray]) -> Slots:
    """The model's slots with each draw's values fed where the draw says."""
    s = {k: np.array(v) for k, v in model_slots(x).items()}
    for draw, v in zip(draws, values):
        for slot, i in draw.feeds:
            if slot in QUERY_SLOTS:
                s[slot] = v
            else:
                s[slot][:, i] = v
    return s


def logits(ft: FloatTables, s: Slots) -> np.ndarray:
    """Treeified forward pass (hypotheses module docstring), [N, d_vocab]."""
    qa = s["q_attn"][:, None]
    scores = ft.eqke[qa, s["key_tok"]] + ft.eqkp[qa, s["key_pos"]]  # [N, K]
    a = np.exp(scores - scores.max(axis=1, keepdims=True))
    a /= a.sum(axis=1, keepdims=True)
    values = ft.evou[s["val_tok"]] + ft.pvou[s["val_pos"]]  # [N, K, d]
    return ft.eupu[s["q_direct"]] + np.einsum("nk,nkj->nj", a, values)


def label_marginal(d_vocab: int, n_ctx: int) -> np.ndarray:
    """P(max = j) = ((j+1)^K - j^K) / d^K under uniform inputs."""
    j = np.arange(d_vocab, dtype=np.float64)
    return ((j + 1) ** n_ctx - j ** n_ctx) / float(d_vocab) ** n_ctx


@dataclass(frozen=True)
class Losses:
    """Per-row losses: against the label, against a shuffled label; correctness."""
    ce: np.ndarray
    shuffled: np.ndarray
    correct: np.ndarray


def losses(z: np.ndarray, labels: np.ndarray, marginal: np.ndarray) -> Losses:
    top = z.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    right = z[np.arange(len(z)), labels]
    others = z.copy()
    others[np.arange(len(z)), labels] = -np.inf
    return Losses(lse - right, lse - z @ marginal, right > others.max(axis=1))


def blocked_losses(ft: FloatTables, s: Slots, labels: np.ndarray, marginal: np.ndarray) -> Losses:
    parts = []
    for lo in range(0, len(labels), BLOCK):
        sl = {k: v[lo:lo + BLOCK] for k, v in s.items()}
        parts.append(losses(logits(ft, sl), labels[lo:lo + BLOCK], marginal))
    return Losses(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("ce", "shuffled", "correct")))


@dataclass(frozen=True)
class ScrubResult:
    hypothesis: str
    strategy: str | None  # the proof strategy that relies on the same claim
    method: str  # "exact" or "monte-carlo"
    samples: int  # Monte Carlo: reference inputs; exact: (input, resample) pairs enumerated
    l_model: float
    l_random: float
    l_scrubbed: float
    recovered: float  # fraction (1.0 = 100%)
    recovered_ci: tuple[float, float]
    accuracy: float  # scrubbed accuracy
    accuracy_ci: tuple[float, float]
    model_accuracy: float

    def to_dict(self) -> dict:
        return {"hypothesis": self.hypothesis, "strategy": self.strategy, "method": self.method,
                "samples": self.samples, "l_model": self.l_model, "l_random": self.l_random,
                "l_scrubbed": self.l_scrubbed, "recovered": self.recovered,
                "recovered_ci_low": self.recovered_ci[0], "recovered_ci_high": self.recovered_ci[1],
                "scrubbed_accuracy": self.accuracy, "scrubbed_accuracy_ci_low": self.accuracy_ci[0],
                "scrubbed_accuracy_ci_high": self.accuracy_ci[1], "model_accuracy": self.model_accuracy}


def recovered_fraction(l_random: float, l_scrubbed: float, l_model: float) -> float:
    gain = l_random - l_model
    if not gain > 0:
        raise ValueError(f"the model's loss {l_model:.6g} is not below the shuffled-label loss {l_random:.6g}: "
                         "% loss recovered is undefined")
    return (l_random - l_scrubbed) / gain


def delta_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float]]:
    """mean(a) / mean(b) and its 95% interval by the delta method (a, b paired)."""
    n, ma, mb = len(a), float(a.mean()), float(b.mean())
    r = ma / mb
    cov = np.cov(np.stack([a, b]), ddof=1) if n > 1 else np.zeros((2, 2))
    var = max(0.0, float(cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1])) / (n * mb * mb)
    half = Z95 * math.sqrt(var)
    return r, (r - half, r + half)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sane near 0 and 1, unlike Wald's)."""
    p, z2 = successes / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def all_inputs(d_vocab: int, n_ctx: int) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(d_vocab)] * n_ctx, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def supports(draws: list[Draw], x: np.ndarray, ctx: Context) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for draw in draws:
        lo, hi = (np.asarray(v, dtype=np.int64) for v in draw.support(x, ctx))
        if np.any(hi <= lo):
            raise AssertionError(f"empty resampling support in draw feeding {draw.feeds}")
        out.append((lo, hi))
    return out


def sample_draws(draws: list[Draw], x: np.ndarray, ctx: Context, rng: np.random.Generator) -> list[np.ndarray]:
    """One value per reference input for each draw, uniform on its support."""
    return [rng.integers(lo, hi) for lo, hi in supports(draws, x, ctx)]


def enumeration_size(hyp: Hypothesis, ctx: Context) -> int | None:
    """(input, resample) pairs of the exact computation, or None if inputs are too many."""
    if ctx.d_vocab ** ctx.n_ctx > EXACT_INPUTS:
        return None
    x = all_inputs(ctx.d_vocab, ctx.n_ctx)
    sizes = np.ones(len(x), dtype=np.int64)
    for lo, hi in supports(hyp.draws(ctx), x, ctx):
        sizes *= hi - lo
        if sizes.sum() > EXACT_EVALUATIONS:
            return int(sizes.sum())
    return int(sizes.sum())


def expand(x: np.ndarray, sups: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Every (input, joint draw value) pair: rows of x repeated, draw values, probabilities."""
    rows = np.arange(len(x))
    values: list[np.ndarray] = []
    prob = np.full(len(x), 1.0 / len(x))
    for lo, hi in sups:
        n = (hi - lo)[rows]
        start = np.repeat(np.cumsum(n) - n, n)
        offset = np.arange(int(n.sum())) - start  # 0..n-1 within each row
        values = [np.repeat(v, n) for v in values] + [np.repeat(lo[rows], n) + offset]
        prob = np.repeat(prob / n, n)
        rows = np.repeat(rows, n)
    return rows, values, prob


@dataclass(frozen=True)
class Baseline:
    """The reference inputs and the un-scrubbed model's per-input losses (shared by hypotheses)."""
    x: np.ndarray
    labels: np.ndarray
    weight: np.ndarray | None  # exact: probability of each input; Monte Carlo: None (equal)
    model: Losses


def baseline(ft: FloatTables, method: str, samples: int, seed: int) -> Baseline:
    d, K = ft.d_vocab, ft.n_ctx
    if method == "exact":
        x = all_inputs(d, K)
        weight = np.full(len(x), 1.0 / len(x))
    else:
        x = np.random.default_rng([seed, 0]).integers(0, d, size=(samples, K))
        weight = None
    labels = x.max(axis=1)
    return Baseline(x, labels, weight, blocked_losses(ft, model_slots(x), labels, label_marginal(d, K)))


def scrub_exact(ft: FloatTables, hyp: Hypothesis, ctx: Context, base: Baseline) -> ScrubResult:
    draws = hyp.draws(ctx)
    rows, values, prob = expand(base.x, supports(draws, base.x, ctx))
    x, labels = base.x[rows], base.labels[rows]
    scr = blocked_losses(ft, scrubbed_slots(x, draws, values), labels, label_marginal(ft.d_vocab, ft.n_ctx))
    w = base.weight
    l_model, l_random = float(w @ base.model.ce), float(w @ base.model.shuffled)
    l_scrubbed = float(prob @ scr.ce)
    rec = recovered_fraction(l_random, l_scrubbed, l_model)
    acc = float(prob @ scr.correct)
    return ScrubResult(hyp.name, STRATEGY_OF.get(hyp.name), "exact", len(rows), l_model, l_random, l_scrubbed,
                       rec, (rec, rec), acc, (acc, acc), float(w @ base.model.correct))


def scrub_monte_carlo(ft: FloatTables, hyp: Hypothesis, ctx: Context, base: Baseline, seed: int) -> ScrubResult:
    draws = hyp.draws(ctx)
    values = sample_draws(draws, base.x, ctx, np.random.default_rng([seed, hyp.stream]))
    marg = label_marginal(ft.d_vocab, ft.n_ctx)
    scr = blocked_losses(ft, scrubbed_slots(base.x, draws, values), base.labels, marg) if draws else base.model
    m = base.model
    rec, rec_ci = delta_interval(m.shuffled - scr.ce, m.shuffled - m.ce)
    recovered_fraction(float(m.shuffled.mean()), float(scr.ce.mean()), float(m.ce.mean()))  # refuses a useless model
    n = len(base.x)
    right = int(scr.correct.sum())
    return ScrubResult(hyp.name, STRATEGY_OF.get(hyp.name), "monte-carlo", n, float(m.ce.mean()),
                       float(m.shuffled.mean()), float(scr.ce.mean()), rec, rec_ci, right / n, wilson(right, n),
                       float(m.correct.mean()))


def choose_method(method: str, hyps: list[Hypothesis], ctx: Context) -> str:
    """'exact' where every hypothesis can be enumerated (small models), else 'monte-carlo'."""
    if method not in ("auto", "exact", "monte-carlo"):
        raise ValueError(f"unknown method {method!r}; known: auto, exact, monte-carlo")
    if method != "auto":
        if method == "exact":
            for h in hyps:
                size = enumeration_size(h, ctx)
                if size is None or size > EXACT_EVALUATIONS:
                    raise ValueError(f"{h.name}: too many (input, resample) pairs to enumerate "
                                     f"({'more than ' + str(EXACT_INPUTS) + ' inputs' if size is None else size}; "
                                     f"limit {EXACT_EVALUATIONS}); use Monte Carlo")
        return method
    sizes = [enumeration_size(h, ctx) for h in hyps]
    return "exact" if all(s is not None and s <= EXACT_EVALUATIONS for s in sizes) else "monte-carlo"


def scrub_tables(ft: FloatTables, names: list[str], ctx: Context, *, method: str = "auto",
                 samples: int = DEFAULT_SAMPLES, seed: int = 0) -> list[ScrubResult]:
    """Each named hypothesis scrubbed on one model's (float) path tables."""
    if samples < 2:
        raise ValueError(f"--samples must be at least 2, got {samples}")
    hyps = [HYPOTHESES[n] for n in names]
    method = choose_method(method, hyps, ctx)
    base = baseline(ft, method, samples, seed)
    if method == "exact":
        return [scrub_exact(ft, h, ctx, base) for h in hyps]
    return [scrub_monte_carlo(ft, h, ctx, base, seed) for h in hyps]


def scrub_model(cfg, weights, names: list[str], *, method: str = "auto", samples: int = DEFAULT_SAMPLES,
                seed: int = 0) -> list[ScrubResult]:
    """Scrub a model given by its weights; the gap proof's thresholds are searched only if needed."""
    from ..proofs.certificate import cert_from_weights, search_gaps
    from ..proofs.exact import path_tables

    def gaps() -> np.ndarray:
        return np.array(search_gaps(cert_from_weights(cfg, weights)).gaps)
    ctx = Context(cfg.d_vocab, cfg.n_ctx, gaps)
    return scrub_tables(FloatTables.of(path_tables(weights)), names, ctx, method=method, samples=samples, seed=seed)
