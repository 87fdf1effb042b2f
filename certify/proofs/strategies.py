"""Proof strategies: each turns exact path tables into a certified count of correct
inputs (a lower bound on accuracy), with its cost and its witness.

- `bruteforce`: the exhaustive count (the top of the frontier).
- `cubic`: per (query q, max m) the largest set S of non-max tokens such that every
  input whose free tokens lie in {m} u S is proven correct by the convexity bound
  (below); cost ~ d_vocab^3 K.
- `subcubic`: the gap proof that the Lean checker re-checks (certify.lean.checker): one
  threshold s per (q, m); checking costs ~ d_vocab^2 (d_model + K) integer operations.
- `subcubic/<direct>/<attention>/<positions>`: the family of weaker, cheaper variants
  of the gap proof (certify.variants); Python-checked only.

Soundness of `cubic` (the counting step). Fix q, m and an input whose last token is q,
whose max is m and whose free tokens (positions 0..K-2) are m or lie in S. For every
j != m, with e_i = exp(score_i / sqrt(d_head)) > 0 and
G[q,i,t,m] = min_{j' != m} (Y[q,i,t,m] - Y[q,i,t,j']):

    Z (logit_m - logit_j) = sum_i e_i (Y[q,i,t_i,m] - Y[q,i,t_i,j]) >= sum_i e_i G[q,i,t_i,m].

Each position's term depends only on its own token (convexity: the attention mixes
the per-position vectors, and a mixture is bounded by its worst components). So the
sum is at least Q + sum_{i in P} A_i + sum_{i not in P} min_{t in S} b_i(t), where P
is the set of free positions holding m (|P| = c), A_i = e(q,m,i) G[q,i,m,m],
b_i(t) = e(q,t,i) G[q,i,t,m] and Q = e(q,q,K-1) G[q,K-1,q,m]; minimising over P of
size c gives Q + sum_i Bmin_i + (the c smallest A_i - Bmin_i). If that exceeds the
float error bound for every feasible c, all such inputs are correct; different (q, m)
give disjoint families, so the counts add up. The float error bound: every e is an
upper bound v with true value in [v (1 - rho), v]; every G is within 8.1 u B of its
exact value (three roundings of Y, one of the difference). So each of the K terms
e G is within vmax B (2 rho + 10.1 u) of its float value, where vmax is the largest v
any term of the family can carry; the at most 3K float additions, subtractions and
minima that combine them add at most 3K u (4 K vmax B). The total,
vmax K B (2 rho + (10.1 + 12 K) u), is below the threshold used,
vmax K B (2 rho + (32 K + 32) u), plus 8 (K + 1)(2B + 1) 2^-1074 for products that
underflow (each off by at most 2^-1075). When some weight lies below 2^-960, each
family's weights are first rescaled by the family's largest (an exact power of two,
which changes no sign), so vmax >= 1/2 and nothing that matters underflows. Minima and the choice of the c smallest differences
are taken over float values, each within that error of its exact value, so the float
minimum minus the error bounds the exact minimum from below.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .bruteforce import UNDERFLOW_UNIT, AttentionTable, bruteforce, float_tables
from ..lean.checker import Cert, check
from .certificate import cert_from_weights, search_gaps
from .exact import PathTables, path_tables
from . import paper_cost, registry
from .variants import VARIANTS, run_variant
from ..modelio.model import Config, Weights


@dataclass
class ProofResult:
    """One strategy's result for one model."""
    strategy: str
    count: int
    total: int
    flops: int
    checker_ops: int
    unexplained_dimension: int
    seconds: float
    search_seconds: float
    accuracy: float | None = None
    witness: object = field(default=None, repr=False)
    error: str | None = None  # set when the strategy failed on this model (count 0 then)
    paper_flops: int | None = None  # FLOPs in the paper's measure (`paper_cost`); None: not known
    group: str | None = None  # the paper's group of a paper-family strategy

    @property
    def bound(self) -> float:
        return self.count / self.total

    @property
    def ratio(self) -> float | None:
        return None if not self.accuracy else self.bound / self.accuracy

    def to_dict(self) -> dict:
        """A failed strategy reports count, bound and ratio as null: no number stands in for a bound."""
        ok = self.error is None
        return {"strategy": self.strategy, "count": self.count if ok else None, "total": self.total,
                "bound": self.bound if ok else None, "accuracy": self.accuracy, "ratio": self.ratio if ok else None,
                "flops": self.flops, "checker_ops": self.checker_ops,
                "unexplained_dimension": self.unexplained_dimension,
                "seconds": round(self.seconds, 4), "search_seconds": round(self.search_seconds, 4),
                "error": self.error, "paper_flops": self.paper_flops, "group": self.group}


@dataclass
class ProofInput:
    """What every strategy reads; the checker's transcription of the weights (the
    `Cert` without a witness) is built once and shared by the gap proofs."""
    cfg: Config
    weights: Weights
    tables: PathTables
    accuracy: float | None
    _cert: Cert | None = None

    def cert(self) -> Cert:
        if self._cert is None:
            self._cert = cert_from_weights(self.cfg, self.weights)
        return self._cert


def run_bruteforce(p: ProofInput) -> ProofResult:
    r = bruteforce(p.tables)
    d, K = p.cfg.d_vocab, p.cfg.n_ctx
    return ProofResult("bruteforce", r.correct, r.total, r.flops, r.flops, d ** (K + 1), r.seconds, 0.0,
                       accuracy=r.accuracy, paper_flops=paper_cost.bruteforce(p.cfg, r.flops))


def run_subcubic(p: ProofInput) -> ProofResult:
    """The gap proof: search the witness, then check it with the checker mirror."""
    t0 = time.perf_counter()
    cert = p.cert()
    found = search_gaps(cert)
    cert = replace(cert, gaps=found.gaps)
    search_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    verdict = check(cert, found.count)
    if not verdict.ok:  # the search and the checker disagree: a bug, never a bound
        raise AssertionError(f"gap search produced an invalid witness: {verdict.reason}")
    d, K = p.cfg.d_vocab, p.cfg.n_ctx
    return ProofResult("gap", verdict.count, d ** K, verdict.ops, verdict.ops,
                       3 * d * d + 2 * K * d, time.perf_counter() - t1, search_seconds,
                       accuracy=p.accuracy, witness=cert, paper_flops=paper_cost.gap(p.cfg, verdict.ops))


def run_cubic(p: ProofInput) -> ProofResult:
    """The cubic convexity proof (module docstring), decided in float64 with an error bound."""
    t0 = time.perf_counter()
    ft = float_tables(p.tables)
    att = ft.att  # weights v[q, i, t] = mant 2^expo
    v = None if att.needs_rescaling else att.value
    d, K = p.cfg.d_vocab, p.cfg.n_ctx
    u = 2.0 ** -53
    kappa = K * ft.B * (2 * att.rho + (32 * K + 32) * u)
    slack = 8.0 * (K + 1) * (2 * ft.B + 1) * UNDERFLOW_UNIT  # products that underflow
    flops = ft.flops
    count = 0
    sets: dict[tuple[int, int], list[int]] = {}
    free = K - 1
    for q in range(d):
        Gq = ft.G(q)  # G[q, i, t, m] as Gq[i, t, m]: one query's slice, O(d^2 K) memory
        for m in range(q, d):
            if v is None:  # rescale the family by its largest weight (exact powers of 2)
                top = max(int(att.expo[q, K - 1, q]), int(att.expo[q, :free, : m + 1].max()))
                vq = AttentionTable.scaled(att.mant[q, K - 1, q], att.expo[q, K - 1, q], top)
                vf = AttentionTable.scaled(att.mant[q, :free, : m + 1], att.expo[q, :free, : m + 1], top)
            else:
                vq, vf = v[q, K - 1, q], v[q, :free, : m + 1]
            Q = vq * Gq[K - 1, q, m]
            A = vf[:, m] * Gq[:free, m, m]  # [free]
            b = vf[:, :m] * Gq[:free, :m, m]  # [free, m]: tokens t < m
            # error bound relative to the largest attention weight any term can carry
            thr = kappa * max(vq, vf.max()) + slack
            flops += 4 + 2 * free + 3 * free * m
            if not Q + A.sum() > thr:  # not even the all-max input
                continue
            order = np.argsort(-b.min(axis=0), kind="stable") if m else np.zeros(0, dtype=int)
            bmin = np.minimum.accumulate(b[:, order], axis=1)  # [free, n]: S = first n+1 tokens
            diffs = np.sort(A[:, None] - bmin, axis=0)  # [free, n]
            acc = Q + bmin.sum(axis=0)  # c = 0
            partial = np.vstack([acc, acc + np.cumsum(diffs, axis=0)])  # [K, n]: c = 0..K-1
            c_min = 1 if q < m else 0
            ok = (partial[c_min:] > thr).all(axis=0)
            flops += 6 * free * m + K * m
            n = int(np.argmin(ok)) if not ok.all() else m  # largest passing prefix
            sets[(q, m)] = [int(t) for t in order[:n]]
            count += (n + 1) ** free - (n ** free if q < m else 0)
    return ProofResult("cubic", count, d ** K, flops, flops, 3 * d * d + 2 * K * d,
                       time.perf_counter() - t0, 0.0, accuracy=p.accuracy, witness=sets,
                       paper_flops=paper_cost.cubic(p.cfg, flops))


def run_subcubic_variant(name: str) -> Callable[[ProofInput], ProofResult]:
    def run(p: ProofInput) -> ProofResult:
        r = run_variant(p.cert(), name.replace("gap/", "subcubic/", 1))
        return ProofResult(name, r.count, p.cfg.d_vocab ** p.cfg.n_ctx, r.ops, r.ops, r.unexplained_dimension,
                           r.check_seconds, r.search_seconds, accuracy=p.accuracy, witness=r.gaps,
                           paper_flops=paper_cost.gap(p.cfg, r.ops))
    return run


STRATEGIES: dict[str, Callable[[ProofInput], ProofResult]] = registry.STRATEGIES
if not STRATEGIES:  # the built-in strategies, then the family modules of registry.FAMILIES
    registry.register("bruteforce", run_bruteforce)
    registry.register("cubic", run_cubic)
    registry.register("gap", run_subcubic)
    registry.alias("subcubic", "gap")
    for _old in VARIANTS:  # subcubic/<direct>/<attention>/<positions> -> gap/...
        registry.register(_old.replace("subcubic/", "gap/", 1), run_subcubic_variant(_old.replace("subcubic/", "gap/", 1)))
        registry.alias(_old, _old.replace("subcubic/", "gap/", 1))
    registry.load_families()


def strategy_names() -> list[str]:
    return list(STRATEGIES)


def aliases() -> dict[str, str]:
    """Old name -> new name, accepted for one release."""
    return dict(registry.ALIASES)


def in_reach(names: list[str], cfg: Config) -> list[str]:
    """`names` without the brute force where d_vocab^K inputs are too many to enumerate."""
    from .bruteforce import EXHAUSTIVE_MAX
    return [n for n in names if n != "bruteforce" or cfg.d_vocab ** cfg.n_ctx <= EXHAUSTIVE_MAX]


def resolve(names: str) -> list[str]:
    """'all', one name, or a comma list; unknown names are an error that lists the known ones."""
    if names == "all":
        return strategy_names()
    out = [registry.canonical(n.strip()) for n in names.split(",") if n.strip()]
    unknown = [n for n in out if n not in STRATEGIES]
    if not out:
        raise ValueError(f"no strategy named in {names!r}; `certify strategies` lists them ({len(STRATEGIES)})")
    if unknown:
        raise ValueError(unknown_strategy_message(unknown[0]))
    return out


def unknown_strategy_message(name: str) -> str:
    """One short line: the three closest names, not the whole list (116 names, 8 kB)."""
    import difflib
    known = [*STRATEGIES, *registry.ALIASES, "all"]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"closest: {', '.join(close)}; " if close else ""
    return f"unknown strategy {name!r}; {hint}`certify strategies` lists all {len(STRATEGIES)}"



def prove_many(cfg: Config, weights: Weights, strategies: list[str],
               accuracy: float | None = None, on_error: str = "raise", progress: bool = False) -> list[ProofResult]:
    """Several strategies on one model, sharing the exact tables and the transcription.

    on_error="record": a strategy that raises becomes a result with `error` set (and
    count 0, a trivially true bound), so one failure does not lose the others.
    progress: a bar on stderr (the CLI's; sweep workers stay quiet).
    """
    from ..progress import steps
    p = ProofInput(cfg, weights, path_tables(weights), accuracy)
    results = []
    for name in steps(list(map(registry.canonical, strategies)), "proofs", progress, unit="strategy"):
        try:
            results.append(STRATEGIES[name](p))
        except Exception as err:  # noqa: BLE001 - recorded per strategy, re-raised on request
            if on_error == "raise":
                raise
            results.append(ProofResult(name, 0, cfg.d_vocab ** cfg.n_ctx, 0, 0, 0, 0.0, 0.0, accuracy=accuracy,
                                       error=f"{type(err).__name__}: {err}"))
    return results


def prove(cfg: Config, weights: Weights, strategy: str, accuracy: float | None = None) -> ProofResult:
    return prove_many(cfg, weights, [strategy], accuracy)[0]
