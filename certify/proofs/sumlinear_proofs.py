"""The tutorial's three loss proofs for the sum-linear model, made sound, and its
accuracy (exhaustive count).

logits(x) = sum_i T[t_i, :] with the one-token logit table T = E^T W^T U^T
(E = embedding.weight, W = linear.weight, U = unembedding.weight), so with any row
constants c_t and D[t, j] = T[t, j] - c_t,

    loss(x) = log sum_j prod_i exp(D[t_i, j]) - sum_i D[t_i, m]        (m = max token).

* bruteforce: every one of the d_vocab^K inputs on its own: X = exp(D) once (d^2
  rigorous float exps), Z(x) = sum_j prod_i X[t_i, j] for all inputs sharing their first
  K-1 tokens by one matrix product (d^(K+1) multiply-adds), one log per input.
* symmetry: the model only sees the token counts, so the mean is the sum over
  multisets (sorted inputs) weighted by K! / prod(count!): the same formula on the
  sorted inputs only.
* convexity: cross-entropy after a linear map is convex in the counts c. For an input
  with max m (c_m copies) and r = K - c_m other tokens t_1..t_r (a multiset R):
  c = sum_k (1/r) (c_m e_m + r e_{t_k}), so loss(x) <= (1/r) sum_k loss(m^c_m t_k^r)
  (the notebook's max-of-3 proof, "keep the max"; exact when R has one distinct token,
  so for K = 2 it is the exact mean). Summed over all inputs with max m and c_m = c, each
  vertex (m^c, t^r), t < m, has weight C(K, c) m^(r-1); the all-m input weight 1.
  `convexity/pure` is the notebook's max-of-2 proof: c = sum_t (c_t / K)(K e_t), so
  loss(x) <= sum_t (c_t / K) L(K T[t], m), weights (m+1)^(K-1) for t = m and
  (m+1)^(K-1) - m^(K-1) for t < m.

Arithmetic: T~ from the float32 weights (`logit_table`: two products of inner size
d_model in extended precision, any order, FMA or not, gamma_n = n u / (1 - n u), then
rounded to float64), |T~ - T| <= delta_T; D~ = fl(T~ - c) is within
Delta = delta_T + u max|D~| of T - c. X~ = fexp(D~) is within the factor
(1 + Delta (1 + 2 Delta) + EXP_REL) of exp(T - c) (+ EXP_ABS); a product of K of them
and a sum of d (any order) stay within (1 + theta), theta <= 1.01 (K eps_X + gamma_{d+K}),
plus 2 d K EXP_ABS absolute. Then |log Z~ - log Z| <= 1.02 (theta + abs / Z~),
flog adds LOG_ERR (1 + |log Z~|), sum_i D~[t_i, m] is within K Delta + K^2 u max|D~|,
and the subtraction u |loss~|. The sums over inputs are exact (`loss.enclose_sum`).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .bruteforce import check_exhaustive_in_reach
from .loss import (EXP_ABS, EXP_REL, LOG_ERR, Enclosure, LossResult, enclose_sum, fexp, flog,
                   loss_from_logits)

U = 2.0 ** -53
NO_FINITE_SUM = "the float sum of the per-input losses has no finite error bound (overflow)"
ROW_BLOCK = 1 << 12  # prefixes per matrix product


def gamma(n: int) -> float:
    """gamma_n = n u / (1 - n u) bounds n roundings; infinite once n u is not small."""
    return n * U / (1 - n * U) if n * U < 0.01 else math.inf


@dataclass(frozen=True)
class LogitTable:
    """T~ [d, d] (float64) with |T~ - T| <= delta elementwise; D~ = T~ - rowmax, X~ = fexp(D~)."""
    T: np.ndarray
    delta: float
    D: np.ndarray
    X: np.ndarray
    Delta: float  # |D~ - (T - c)| <= Delta
    n_ctx: int

    @property
    def d_vocab(self) -> int:
        return self.T.shape[0]


def logit_table(weights, n_ctx: int) -> LogitTable:
    """T~ from the float32 weights in extended precision (numpy's longdouble, unit
    u_ld: 2^-64 on x86, 2^-53 where it is double), rounded once to float64:
    |T~ - T| <= 2.2 gamma_ld(dm) max(|E^T||W^T||U^T|) + u max|T~| (products of float32
    values are exact in either format)."""
    ld = np.longdouble
    u_ld = float(np.finfo(ld).eps) / 2
    A = weights["embedding.weight"].detach().numpy().astype(ld).T  # [d, dm]
    B = weights["linear.weight"].detach().numpy().astype(ld).T     # [dm, dm]
    C = weights["unembedding.weight"].detach().numpy().astype(ld).T  # [dm, d]
    T = ((A @ B) @ C).astype(np.float64)
    N = (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64)) @ np.abs(C).astype(np.float64)
    dm = A.shape[1]
    g = dm * u_ld / (1 - dm * u_ld)
    delta = (2.2 * g * float(N.max()) * (1 + gamma(2 * dm)) + U * float(np.abs(T).max())) * 1.01
    D = T - T.max(axis=1, keepdims=True)
    Delta = delta + U * float(np.abs(D).max())
    return LogitTable(T, delta, D, fexp(D), Delta, n_ctx)


def _errors(tab: LogitTable, Z: np.ndarray, loss: np.ndarray, lz: np.ndarray) -> np.ndarray:
    """The per-input error bound of the module docstring."""
    K, d = tab.n_ctx, tab.d_vocab
    eps_x = tab.Delta * (1 + 2 * tab.Delta) + EXP_REL
    theta = 1.01 * (K * eps_x + gamma(d + K))
    maxD = float(np.abs(tab.D).max())
    const = 1.02 * theta + LOG_ERR + K * tab.Delta + gamma(K) * K * maxD
    Zs = np.where(Z > 0, Z, 1.0)
    err = const + (1.02 * 2 * d * K * EXP_ABS) / Zs + LOG_ERR * np.abs(lz) + 2 * U * np.abs(loss)
    under = ~(Z > 0) | ~(2 * d * K * EXP_ABS / Zs <= 0.001) | ~(theta <= 0.01)  # no bound here: `_repair`
    return np.where(under, np.inf, err * (1 + 2.0 ** -40))


def _repair(tab: LogitTable, toks: np.ndarray, loss: np.ndarray, err: np.ndarray) -> None:
    """Inputs whose normaliser Z~ underflowed (no finite error bound from the products of
    exps), in place: their loss from the float logits L~ = sum_i T~[t_i] (within
    eps = K delta_T + gamma_K K max|T~| of the exact logits, `accuracy_tau`) by
    `loss_from_logits`, which is finite at every magnitude."""
    bad = np.flatnonzero(~np.isfinite(err))
    if bad.size == 0:
        return
    t = toks[bad]
    K = t.shape[1]
    L = sum(tab.T[t[:, i]] for i in range(K))
    eps = (K * tab.delta + gamma(K) * K * float(np.abs(tab.T).max())) * (1 + 2.0 ** -40)
    loss[bad], err[bad] = loss_from_logits(L, t.max(axis=1), eps)


def _loss_rows(tab: LogitTable, toks: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """loss~ and its error for inputs toks [n, K] whose Z~ is given."""
    m = toks.max(axis=1)
    sumD = sum(tab.D[toks[:, i], m] for i in range(toks.shape[1]))
    loss, err = _finish(tab, Z, sumD)
    _repair(tab, toks, loss, err)
    return loss, err


def _finish(tab: LogitTable, Z: np.ndarray, sumD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """loss~ = log Z~ - sum_i D~[t_i, m] and its error."""
    lz = flog(np.where(Z > 0, Z, 1.0))
    loss = lz - sumD
    return loss, _errors(tab, Z, loss, lz)


def _prefix_products(tab: LogitTable, prefixes: np.ndarray) -> np.ndarray:
    P = tab.X[prefixes[:, 0]].copy()
    for i in range(1, prefixes.shape[1]):
        P *= tab.X[prefixes[:, i]]
    return P


def bruteforce_loss(tab: LogitTable, progress: bool = False) -> LossResult:
    """The exact mean over every input, enclosed (module docstring)."""
    d, K = tab.d_vocab, tab.n_ctx
    check_exhaustive_in_reach(d, K)
    t0 = time.perf_counter()
    prefixes = np.indices([d] * (K - 1)).reshape(K - 1, -1).T
    losses, errs = [], []
    last = np.arange(d)[None, :]
    from ..progress import steps
    for k in steps(range(0, len(prefixes), ROW_BLOCK), "sum-linear exact mean loss", progress, unit="block"):
        pre = prefixes[k:k + ROW_BLOCK]
        Z = _prefix_products(tab, pre) @ tab.X.T  # [prefix, last token]
        m = np.maximum(pre.max(axis=1)[:, None], last)
        sumD = tab.D[last, m] + sum(tab.D[pre[:, i:i + 1], m] for i in range(K - 1))
        loss, err = _finish(tab, Z.ravel(), sumD.ravel())
        if not np.all(np.isfinite(err)):
            rows, cols = np.divmod(np.arange(Z.size), d)
            _repair(tab, np.concatenate([pre[rows], cols[:, None]], axis=1), loss, err)
        losses.append(loss)
        errs.append(err)
    s = enclose_sum(np.concatenate(losses), np.concatenate(errs))
    if s is None:
        return LossResult.failed("bruteforce", NO_FINITE_SUM, time.perf_counter() - t0)
    exact = Enclosure(s.lo / d ** K, s.hi / d ** K)
    flops = d ** K * d * 2 + d ** (K - 1) * d * (K - 2) + d ** K * (K + 30)
    return LossResult("bruteforce", exact.hi, exact.lo, flops, time.perf_counter() - t0, exact=exact)


def sorted_inputs(d: int, K: int) -> np.ndarray:
    """The multisets of K tokens as sorted rows [n, K] (lexicographic)."""
    return np.array(list(itertools.combinations_with_replacement(range(d), K)), dtype=np.int64).reshape(-1, K)


def multiplicities(rows: np.ndarray) -> np.ndarray:
    """K! / prod(count!) for sorted rows: the inputs that are permutations of each."""
    K = rows.shape[1]
    # exact integers: int64 while K! fits, Python ints beyond (K >= 21)
    out = np.full(len(rows), math.factorial(K), dtype=np.int64 if math.factorial(K) < 2 ** 62 else object)
    run = np.ones(len(rows), dtype=np.int64)
    for i in range(1, K):
        same = rows[:, i] == rows[:, i - 1]
        run = np.where(same, run + 1, 1)
        out //= np.where(same, run, 1)
    return out


def symmetry_loss(tab: LogitTable, exact: Enclosure | None = None) -> LossResult:
    """The exact mean from the multisets only (the tutorial's symmetry proof)."""
    t0 = time.perf_counter()
    d, K = tab.d_vocab, tab.n_ctx
    prefixes = sorted_inputs(d, K - 1)
    losses, errs, weights = [], [], []
    flops = 0
    for k in range(0, len(prefixes), ROW_BLOCK):
        pre = prefixes[k:k + ROW_BLOCK]
        lo = int(pre[:, -1].min())
        Z = _prefix_products(tab, pre) @ tab.X[lo:].T  # last token >= lo; keep last >= prefix's last
        flops += Z.size * d * 2
        rr, cc = np.nonzero(np.arange(lo, d)[None, :] >= pre[:, -1:])
        toks = np.concatenate([pre[rr], (cc + lo)[:, None]], axis=1)
        loss, err = _loss_rows(tab, toks, Z[rr, cc])
        losses.append(loss)
        errs.append(err)
        weights.append(multiplicities(toks))
    s = enclose_sum(np.concatenate(losses), np.concatenate(errs), np.concatenate(weights))
    if s is None:
        return LossResult.failed("symmetry", NO_FINITE_SUM, time.perf_counter() - t0)
    enc = Enclosure(s.lo / d ** K, s.hi / d ** K)
    return LossResult("symmetry", enc.hi, enc.lo, flops, time.perf_counter() - t0, exact=exact or enc)


def vertex_losses(tab: LogitTable, toks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """loss~ and error of the inputs toks [n, K] (any order), by row-wise products."""
    out_l, out_e = [], []
    for k in range(0, len(toks), ROW_BLOCK):
        t = toks[k:k + ROW_BLOCK]
        Z = np.einsum("nj,nj->n", _prefix_products(tab, t[:, :-1]), tab.X[t[:, -1]])
        loss, err = _loss_rows(tab, t, Z)
        out_l.append(loss)
        out_e.append(err)
    return np.concatenate(out_l), np.concatenate(out_e)


def convexity_loss(tab: LogitTable, exact: Enclosure | None = None) -> LossResult:
    """Keep-the-max convexity (module docstring): vertices (t^r, m^c), t < m, 1 <= c < K."""
    t0 = time.perf_counter()
    d, K = tab.d_vocab, tab.n_ctx
    rows, weights = [], []
    for c in range(1, K):
        r = K - c
        t, m = np.nonzero(np.arange(d)[:, None] < np.arange(d)[None, :])  # t < m
        rows.append(np.concatenate([np.repeat(t[:, None], r, axis=1), np.repeat(m[:, None], c, axis=1)], axis=1))
        weights.append(math.comb(K, c) * m.astype(object) ** (r - 1))  # Python ints: m^(r-1) exceeds int64
    rows.append(np.repeat(np.arange(d)[:, None], K, axis=1))  # m^K, weight 1
    weights.append(np.ones(d, dtype=object))
    toks, w = np.concatenate(rows), np.concatenate(weights)
    loss, err = vertex_losses(tab, toks)
    s = enclose_sum(loss, err, w)
    if s is None:
        return LossResult.failed("convexity", NO_FINITE_SUM, time.perf_counter() - t0)
    return LossResult("convexity", s.hi / d ** K, None, len(toks) * d * (K + 30), time.perf_counter() - t0,
                      exact=exact, detail={"vertices": len(toks)})


def convexity_pure_loss(tab: LogitTable, exact: Enclosure | None = None) -> LossResult:
    """The notebook's max-of-2 convexity (module docstring): L(K T[t], m) for t <= m.
    L(K T[t], m) = lse(K T[t]) - K T[t, m]; lse(K T[t]) = loss(K T[t], argmax) + K max T[t]."""
    t0 = time.perf_counter()
    d, K = tab.d_vocab, tab.n_ctx
    KT = K * tab.T  # exact scaling by a small integer? not in general: one rounding, in delta
    top = KT.argmax(axis=1)
    delta = K * tab.delta + U * float(np.abs(KT).max())
    base, base_err = loss_from_logits(KT, top, delta)
    lse = base + KT[np.arange(d), top]
    t, m = np.nonzero(np.arange(d)[:, None] <= np.arange(d)[None, :])
    vals = lse[t] - KT[t, m]
    errs = (base_err[t] + 2 * delta + 2 * U * (np.abs(lse[t]) + np.abs(KT[t, m]))) * (1 + 2.0 ** -40)
    mm = m.astype(object)  # Python ints: (m+1)^(K-1) exceeds int64 for large d, K
    w = np.where(t == m, (mm + 1) ** (K - 1), (mm + 1) ** (K - 1) - mm ** (K - 1))
    s = enclose_sum(vals, errs, w)
    if s is None:
        return LossResult.failed("convexity/pure", NO_FINITE_SUM, time.perf_counter() - t0)
    return LossResult("convexity/pure", s.hi / d ** K, None, d * d * 40, time.perf_counter() - t0, exact=exact)


# ------------------------------------------------------------------ accuracy
def exact_integer_table(weights) -> tuple[np.ndarray, int]:
    """(Tint, e) with T[t, j] = Tint[t, j] 2^e exactly (Python ints in an object array).

    float32 weights are dyadic: each matrix is an integer matrix times 2^(its smallest
    exponent), so T = E^T W^T U^T is an integer matrix times 2^(e_E + e_W + e_U)."""
    ints, e = [], 0
    for name in ("embedding.weight", "linear.weight", "unembedding.weight"):
        a = weights[name].detach().numpy().astype(np.float64)
        mant, ex = np.frexp(a)  # a = mant 2^ex, mant a 24-bit fraction
        lo = int(ex[mant != 0].min()) - 24 if np.any(mant != 0) else 0
        ints.append(np.array([[int(Fraction(float(v)) / Fraction(2) ** lo) for v in row] for row in a], dtype=object))
        e += lo
    E, W, Um = ints
    return (E.T.dot(W.T)).dot(Um.T), e


def exact_table_entry(weights, t: int, j: int) -> Fraction:
    """T[t, j] exactly (float32 weights are rationals)."""
    T, e = exact_integer_table(weights)
    return Fraction(T[t, j]) * Fraction(2) ** e


def accuracy_tau(tab: LogitTable, K: int) -> float:
    """A bound on |margin~ - margin| for the float margin of `correct_mask`.

    L~_j = fl(...fl(T~[t_1, j] + T~[t_2, j]) ... + T~[t_K, j]) (K - 1 roundings): with
    M = max|T~|, the exact sum of the T~ is within gamma_{K-1} sum_i |T~[t_i, j]| <=
    gamma_K K M of L~_j (the partial sums reach k M: the error is O(K^2 u M), not O(K u M)),
    and each T~ is within delta_T of T, so eps = K delta_T + gamma_K K M bounds every
    logit's error. margin = L_m - max_{j != m} L_j moves by at most 2 eps (a max of values
    each within eps moves by at most eps), and the final subtraction rounds by at most
    u |L~_m - L~_j| <= 2 u K M (1 + gamma_K). tau = 1.01 (2 eps + 2.01 u K M): infinite
    when K u is not small (gamma_K undefined) or the sum overflows, so everything is exact.
    """
    M = float(np.abs(tab.T).max())
    if K * U >= 0.01:
        return math.inf
    eps = K * tab.delta + gamma(K) * K * M
    tau = 1.01 * (2 * eps + 2.01 * U * K * M)
    return tau if math.isfinite(tau) else math.inf


def correct_mask(tab: LogitTable, weights, toks: np.ndarray) -> np.ndarray:
    """Which inputs toks [n, K] are correct: l_m > l_j for all j != m (ties wrong). The
    float margin is within `accuracy_tau` of the exact one; inputs whose float margin is
    not beyond it are decided exactly, in integers (`exact_integer_table`)."""
    K = toks.shape[1]
    tau = accuracy_tau(tab, K)
    out = np.zeros(len(toks), dtype=bool)
    exact: list[np.ndarray] = []  # the integer table, built on the first undecided input
    for k in range(0, len(toks), ROW_BLOCK):
        t = toks[k:k + ROW_BLOCK]
        L = sum(tab.T[t[:, i]] for i in range(K))
        m = t.max(axis=1)
        rows = np.arange(len(t))
        lm = L[rows, m].copy()
        L[rows, m] = -np.inf
        margin = lm - L.max(axis=1)
        out[k:k + len(t)] = margin > tau
        for r in np.flatnonzero(~(np.abs(margin) > tau)):  # NaN (inf - inf) is undecided too
            if not exact:
                exact.append(exact_integer_table(weights)[0])
            lg = sum(exact[0][int(a)] for a in t[r])
            mm = int(m[r])
            out[k + r] = all(lg[mm] > lg[j] for j in range(tab.d_vocab) if j != mm)
    return out


def bruteforce_accuracy(tab: LogitTable, weights, progress: bool = False) -> tuple[int, int, float]:
    """(correct, total, seconds) over every input."""
    d, K = tab.d_vocab, tab.n_ctx
    check_exhaustive_in_reach(d, K)
    t0 = time.perf_counter()
    correct = 0
    from ..progress import steps
    for k in steps(range(0, d ** K, 1 << 20), "sum-linear brute force", progress, unit="block"):
        idx = np.arange(k, min(k + (1 << 20), d ** K))
        toks = np.stack([(idx // d ** (K - 1 - i)) % d for i in range(K)], axis=1)
        correct += int(correct_mask(tab, weights, toks).sum())
    return correct, d ** K, time.perf_counter() - t0


def symmetry_accuracy(tab: LogitTable, weights) -> tuple[int, int, float]:
    """(correct, total, seconds) from the multisets, weighted by their permutations."""
    t0 = time.perf_counter()
    rows = sorted_inputs(tab.d_vocab, tab.n_ctx)
    correct = int(multiplicities(rows)[correct_mask(tab, weights, rows)].sum())
    return correct, tab.d_vocab ** tab.n_ctx, time.perf_counter() - t0


# ------------------------------------------------------------------ registry
LOSS_PROOFS = {"bruteforce": lambda tab, exact: bruteforce_loss(tab), "symmetry": symmetry_loss,
               "convexity": convexity_loss, "convexity/pure": convexity_pure_loss}
ACCURACY_PROOFS = {"bruteforce": bruteforce_accuracy, "symmetry": symmetry_accuracy}


def resolve(names: str, metric: str) -> list[str]:
    known = list(LOSS_PROOFS if metric == "loss" else ACCURACY_PROOFS)
    if names == "all":
        return known
    out = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in out if n not in known]
    if unknown or not out:
        raise ValueError(f"no sum-linear {metric} proof named {', '.join(unknown) or names!r}; "
                         f"known: {', '.join(known)}, all")
    return out


def prove_loss(weights, n_ctx: int, names: list[str], progress: bool = False) -> list[LossResult]:
    """Loss proofs; the symmetry proof (the exact mean, fastest) gives every result its
    exact value and ratio."""
    tab = logit_table(weights, n_ctx)
    exact = symmetry_loss(tab)
    out = []
    for n in names:
        try:
            r = (exact if n == "symmetry" else bruteforce_loss(tab, progress) if n == "bruteforce"
                 else LOSS_PROOFS[n](tab, exact.exact))
        except ValueError as err:  # out of reach (the brute force): recorded, the others still run
            out.append(LossResult.failed(n, str(err)))
            continue
        if n == "bruteforce" and r.upper is not None:
            r.exact = exact.exact if r.exact is None else r.exact
        out.append(r)
    return out


def prove_accuracy(weights, n_ctx: int, names: list[str], progress: bool = False) -> list[dict]:
    tab = logit_table(weights, n_ctx)
    out = []
    for n in names:
        correct, total, seconds = (bruteforce_accuracy(tab, weights, progress) if n == "bruteforce"
                                   else ACCURACY_PROOFS[n](tab, weights))
        d = tab.d_vocab
        evals = total if n == "bruteforce" else math.comb(d + n_ctx - 1, n_ctx)
        out.append({"strategy": n, "metric": "accuracy", "count": correct, "total": total, "bound": correct / total,
                    "flops": evals * d * (n_ctx + 2), "seconds": round(seconds, 4)})
    acc = next((r["bound"] for r in out), None)
    for r in out:
        r["accuracy"], r["ratio"] = acc, (r["bound"] / acc if acc else None)
    return out
