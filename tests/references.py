"""Ground truth computed independently of the code under test: exact counts (Fractions
from the float32 weights) and mean losses (mpmath forward passes at PREC bits), for both
architectures. Used by the tests and by benchmarks/soundness.py."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import mpmath

PREC = 160


def mpf_fraction(x: mpmath.mpf) -> Fraction:
    man, exp = mpmath.mpf(x).man_exp
    return Fraction(int(man)) * Fraction(2) ** int(exp)


def mp_exact_within(value: mpmath.mpf, lo: Fraction, hi: Fraction) -> bool:
    """value (known to ~2^-150 relative) lies in [lo, hi], up to that precision."""
    v, tol = mpf_fraction(value), abs(mpf_fraction(value)) * Fraction(1, 2 ** 140) + Fraction(1, 2 ** 200)
    return lo - tol <= v <= hi + tol


def mp_cross_entropy(logits: list, m: int) -> mpmath.mpf:
    """log(1 + sum_{j != m} exp(l_j - l_m)), precise however small."""
    return mpmath.log1p(mpmath.fsum(mpmath.exp(x - logits[m]) for j, x in enumerate(logits) if j != m))


# ------------------------------------------------------------------ Max-of-K attention
def mp_logits_maxk(cfg, w):
    """(tokens, logits) of every input by a plain forward pass in mpmath (PREC bits)."""
    mpmath.mp.prec = PREC
    W = {k: [[mpmath.mpf(float(x)) for x in row] for row in v.tolist()] for k, v in w.items()}

    def vecmat(v, M):
        return [mpmath.fsum(v[a] * M[a][b] for a in range(len(v))) for b in range(len(M[0]))]
    K, d = cfg.n_ctx, cfg.d_vocab
    resid = {(i, t): [e + p for e, p in zip(W["W_E"][t], W["W_pos"][i])] for i in range(K) for t in range(d)}
    keys = {it: vecmat(r, W["W_K"]) for it, r in resid.items()}
    vals = {it: vecmat(vecmat(vecmat(r, W["W_V"]), W["W_O"]), W["W_U"]) for it, r in resid.items()}
    queries = {t: vecmat(resid[(K - 1, t)], W["W_Q"]) for t in range(d)}
    direct = {t: vecmat(resid[(K - 1, t)], W["W_U"]) for t in range(d)}
    inv = 1 / mpmath.sqrt(cfg.d_head)
    for toks in itertools.product(range(d), repeat=K):
        q = toks[-1]
        s = [mpmath.fsum(a * b for a, b in zip(queries[q], keys[(i, t)])) * inv for i, t in enumerate(toks)]
        top = max(s)
        e = [mpmath.exp(x - top) for x in s]
        Z = mpmath.fsum(e)
        yield toks, [direct[q][j] + mpmath.fsum(e[i] * vals[(i, t)][j] for i, t in enumerate(toks)) / Z
                     for j in range(d)]


def mp_truth_maxk(cfg, w) -> tuple[int, mpmath.mpf]:
    """(correct inputs, exact mean loss) from one mpmath forward pass. Correct: the max
    token's logit strictly largest; a margin within 2^-120 of the logits' size would be
    beyond PREC's reach and is refused rather than guessed (ValueError)."""
    correct, total = 0, mpmath.mpf(0)
    for toks, logits in mp_logits_maxk(cfg, w):
        m = max(toks)
        scale = max(abs(x) for x in logits) or mpmath.mpf(1)
        margin = logits[m] - max(x for j, x in enumerate(logits) if j != m)
        if abs(margin) <= scale * mpmath.mpf(2) ** -120:
            raise ValueError("near-tie beyond the reference's precision")
        correct += margin > 0
        total += mp_cross_entropy(logits, m)
    return correct, total / cfg.d_vocab ** cfg.n_ctx


def mp_mean_loss_maxk(cfg, w) -> mpmath.mpf:
    """The exact mean loss (to PREC bits)."""
    total = mpmath.mpf(0)
    for toks, logits in mp_logits_maxk(cfg, w):
        total += mp_cross_entropy(logits, max(toks))
    return total / cfg.d_vocab ** cfg.n_ctx


# ------------------------------------------------------------------ sum-linear
def exact_logit_table(w) -> list[list[Fraction]]:
    """T[t][j] = (U W E)[j, t] exactly, in Fractions."""
    E = [[Fraction(float(x)) for x in r] for r in w["embedding.weight"].tolist()]
    W = [[Fraction(float(x)) for x in r] for r in w["linear.weight"].tolist()]
    Um = [[Fraction(float(x)) for x in r] for r in w["unembedding.weight"].tolist()]
    d, dm = len(E[0]), len(E)
    h = [[sum(W[a][b] * E[b][t] for b in range(dm)) for a in range(dm)] for t in range(d)]
    return [[sum(Um[j][a] * h[t][a] for a in range(dm)) for j in range(d)] for t in range(d)]


def multisets(d: int, K: int):
    """(sorted tokens, number of inputs that are its permutations)."""
    for ms in itertools.combinations_with_replacement(range(d), K):
        n = math.factorial(K)
        for v in set(ms):
            n //= math.factorial(ms.count(v))
        yield ms, n


def exact_count_sumlinear(w, K: int) -> int:
    T = exact_logit_table(w)
    d = len(T)
    total = 0
    for ms, n in multisets(d, K):
        m = ms[-1]
        lg = [sum(T[t][j] for t in ms) for j in range(d)]
        total += n * all(lg[m] > lg[j] for j in range(d) if j != m)
    return total


def mp_mean_loss_sumlinear(w, K: int) -> mpmath.mpf:
    """The mean loss from the exact table: every multiset once, weighted by its permutations."""
    mpmath.mp.prec = PREC
    T = exact_logit_table(w)
    d = len(T)
    total = mpmath.mpf(0)
    for ms, n in multisets(d, K):
        logits = [mpmath.mpf(sum(T[t][j] for t in ms).numerator) / sum(T[t][j] for t in ms).denominator
                  for j in range(d)]
        total += n * mp_cross_entropy(logits, ms[-1])
    return total / d ** K
