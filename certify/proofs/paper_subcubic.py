"""The paper's 100 subcubic proofs, made sound: `subcubic/<EUPU>/<attention>/<attention_error>`.

Names and knobs are those of `LargestWrongLogitQuadraticConfig` in the paper's code
(gbmi/exp_max_of_n/verification); the code here is our own, in outward-rounded interval
arithmetic (`sound_linalg`), with the FLOPs counted in the paper's measure.

The proof, per query q, max m and number c of non-max tokens (the query counts when
q != m), certifies every input whose non-max tokens are all <= m - g, for the smallest
gap g that works (found by binary search; the check is one pass at the found gaps):

    logit_j - logit_m <= LWL = Base + EUPU_gap[q] + (1 - avg) W(m, g) + corr  < 0 for all j != m.

- Direct path (EUPU_handling): EUPU[q, j] - EUPU[q, m] <= EUm[j] - EUm[m] + EUPU_gap[q],
  with EUm = mu U for a centre mu and EUPU_gap[q] = sum_k |W_EP[q,k] - mu_k| (max U[k] - min U[k])
  (`mean_query+max_diff`: mu = mean row; `svd_query+max_diff`: mu along the top singular
  direction; `max_diff`: mu = 0); `max_diff_exact`: EUm = 0 and the row range of the full
  EUPU; `global_max_diff_exact`: the largest row range.
- Position: sum_i a_i (PVOU[i,j] - PVOU[i,m]) <= PV_m[j] = max_i (PVOU[i,j] - PVOU[i,m]).
- Value path: the max token's attention a gives a R_m[j], R_m[j] = EVOU[m,j] - EVOU[m,m];
  non-max tokens t <= m - g give at most (1 - a) W(m, g), W = max_t (max EVOU[t] - min EVOU[t]).
- Attention (attention_handling): with a in [a_lo, a_hi] and any constant avg
  (`mean_query+diff`: the mean over queries of the extreme attention; `drop_average_query_
  per_output_logit_reasoning`: 0),
      a R_j + (1 - a) W = avg R_j + (1 - avg) W + (a - avg)(R_j - W),
  so Base = max_j (EUm[j] - EUm[m] + PV_m[j] + avg R_m[j]) and
  corr = max over a in {a_lo, a_hi}, R in {R_min, R_max} of (a - avg)(R - W).
  FIX: the paper adds (a - avg) R_max, which is too small when a < avg (there R_min is
  the worst case); its bound is unsound beyond rounding for `mean_query+diff`. With
  avg = 0 both agree.
- a_lo, a_hi: the score difference between the max token and a non-max token k,
  EQKE[q,m] - EQKE[q,k], lies in [EQKE~[q,m] - max_{k<=m-g} EQKE~[q,k] - err[q],
  EQKE~[q,m] - min_{k<=m-g} EQKE~[q,k] + err[q]] where EQKE~ approximates EQKE and err[q]
  bounds the row differences of EQKE - EQKE~ (attention_error_handling). The attention
  on the max is increasing in every such difference; the worst placement puts the max
  copies on the positions with the smallest positional scores (largest for a_hi).
- attention_error_handling: EQKE = E_q Q K^T E_k^T (E_q = W_E + W_pos[-1], E_k = W_E + mean
  W_pos, the positional rest in the position term). `svd`, `max_diff`, `mean+max_diff`,
  `max_diff_exact`: EQKE~ = s u v^T from the top singular pair, the residual
  Ar Br + u z^T + y v^T (FIX: the paper drops the two rank-one cross terms, zero only for
  exact singular vectors; we bound them, |u_q| range(z) + |y_q| range(v)). `*_subproduct*`:
  EQKE~ of rank 6 peeled along the top two directions of E_q and E_k and the top direction
  of W_Q and W_K; the residual is the product of four matrices. `exact_EQKE+max_diff_exact`:
  EQKE~ = EQKE, err = 0. The bounds on the residual's row differences: `svd`: sqrt(2) times a
  rigorous bound on sigma_1 (`sound_linalg.spectral_norm_upper`); `max_diff`:
  |A| range(B) at the best split of the product; `mean+`: after taking out the mean row;
  `*_recursive`: |A| (|B| range(C ...)) without multiplying; `max_diff_exact`: the row range
  of the multiplied-out residual.

Soundness: every quantity is an interval containing the exact value for the float
directions chosen (any direction is valid: the decompositions are identities), so the
certified count never exceeds the truth (tests/test_soundness.py, benchmarks/soundness.py).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .sound_linalg import Flops, Iv, charge, charge_svd, counting, down, iexp, inv_sqrt_interval, matmul, \
    spectral_norm_upper, up

EUPU_HANDLING = ("mean_query+max_diff", "svd_query+max_diff", "max_diff", "max_diff_exact", "global_max_diff_exact")
ATTENTION_HANDLING = ("mean_query+diff", "drop_average_query_per_output_logit_reasoning")
ATTENTION_ERROR_HANDLING = ("svd", "max_diff", "max_diff_subproduct", "max_diff_subproduct_recursive",
                            "mean+max_diff", "mean+max_diff_subproduct", "mean+max_diff_subproduct_recursive",
                            "mean_recursive+max_diff_subproduct_recursive", "exact_EQKE+max_diff_exact",
                            "max_diff_exact")
PAPER_VARIANTS = [f"subcubic/{e}/{a}/{r}" for e, a, r in
                  itertools.product(EUPU_HANDLING, ATTENTION_HANDLING, ATTENTION_ERROR_HANDLING)]
RECURSIVE = ("max_diff_subproduct_recursive", "mean+max_diff_subproduct_recursive",
             "mean_recursive+max_diff_subproduct_recursive")
EXACT_ERR = ("max_diff_exact", "exact_EQKE+max_diff_exact")
EXACT_EUPU = ("max_diff_exact", "global_max_diff_exact")


@dataclass(frozen=True)
class Tricks:
    eupu: str
    attention: str
    error: str

    @staticmethod
    def parse(name: str) -> "Tricks":
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "subcubic" or parts[1] not in EUPU_HANDLING \
                or parts[2] not in ATTENTION_HANDLING or parts[3] not in ATTENTION_ERROR_HANDLING:
            raise ValueError(f"unknown paper subcubic variant {name!r}")
        return Tricks(*parts[1:])

    def group(self) -> str:
        """The paper's group (`subcubic_group_df` in its notebooks): the attention part is
        quadratic for the recursive error bounds, d_vocab d_model^2 for the other
        non-exact ones; the direct part is quadratic unless EUPU is formed exactly."""
        parts = []
        if self.error in RECURSIVE:
            parts.append("attention-quadratic")
        elif self.error not in EXACT_ERR:
            parts.append("attention-d_vocab d_model^2")
        if self.eupu not in EXACT_EUPU:
            parts.append("direct-quadratic")
        return "subcubic" + (f" ({', '.join(parts)})" if parts else "")

    def unexplained_dimension(self, d_vocab: int, d_model: int) -> int:
        """The paper's effective-dimension estimate (its `effective_dimension_estimate`
        plus the PVOU (d_vocab), EPQKP (0) and EVOU (d_vocab^2) costs of its notebooks)."""
        eupu = {"global_max_diff_exact": 2, "max_diff_exact": 2 * d_vocab,
                "mean_query+max_diff": d_vocab + d_vocab * d_model + 2,
                "svd_query+max_diff": d_vocab + d_vocab * d_model + 2,
                "max_diff": d_vocab * d_model + 2}[self.eupu]
        svd = 2 * d_vocab
        mean = d_vocab if self.error.startswith("mean") else 0
        if self.error == "svd":
            err = svd
        elif self.error == "max_diff_exact":
            err = svd + 2 * d_vocab
        elif self.error == "exact_EQKE+max_diff_exact":
            err = d_vocab * d_vocab
        else:
            err = svd + mean + 2 * d_model
        return eupu + err + d_vocab + d_vocab * d_vocab


# ---- shared precomputation (one model, all variants) --------------------------------------

class Shared:
    """Memoised pieces of the proof. Each records its own FLOPs and the pieces it used;
    a variant pays for the closure of the pieces it uses, each once (sharing between
    variants saves time, never proof cost)."""

    def __init__(self, weights: dict, d_head: int) -> None:
        self.w = {k: Iv.point(v.detach().cpu().numpy().astype(np.float64)) for k, v in weights.items()}
        self.d_head = d_head
        self._memo: dict[str, tuple[object, int]] = {}
        self._deps: dict[str, set[str]] = {}
        self._stack: list[str] = []

    def get(self, key: str, make: Callable[[], object]) -> tuple[object, int]:
        if self._stack:
            self._deps[self._stack[-1]].add(key)
        if key not in self._memo:
            self._deps[key] = set()
            self._stack.append(key)
            c = Flops()
            try:
                with counting(c):
                    value = make()
            finally:
                self._stack.pop()
            self._memo[key] = (value, c.n)
        return self._memo[key]

    def cost(self, keys: list[str]) -> int:
        """FLOPs of the pieces `keys` and everything they used, each counted once."""
        seen: set[str] = set()
        todo = list(keys)
        while todo:
            k = todo.pop()
            if k not in seen:
                seen.add(k)
                todo.extend(self._deps[k])
        return sum(self._memo[k][1] for k in seen)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else np.eye(len(v))[0]


def _top_right(m: np.ndarray) -> np.ndarray:
    return _unit(np.linalg.svd(m, full_matrices=False)[2][0])


def _top_left(m: np.ndarray) -> np.ndarray:
    return _unit(np.linalg.svd(m, full_matrices=False)[0][:, 0])


def _peel(m: Iv, direction: np.ndarray) -> tuple[Iv, Iv, Iv]:
    """m = (m d) d^T + rest for a unit float vector d: returns (m d, d as a row, rest)."""
    d = Iv.point(direction[:, None])
    md = matmul(m, d)
    return md, d.T, m - matmul(md, d.T)


def _peel_left(m: Iv, direction: np.ndarray) -> tuple[Iv, Iv, Iv]:
    """m = d (d^T m) + rest."""
    d = Iv.point(direction[:, None])
    dm = matmul(d.T, m)
    return d, dm, m - matmul(d, dm)


def embeddings(s: Shared):
    def make():
        w = s.w
        e_q = w["W_E"] + w["W_pos"][-1:]
        mu_pos = w["W_pos"].mid.mean(axis=0, keepdims=True)  # any centre is valid
        e_k = w["W_E"] + Iv.point(mu_pos)
        p_err = w["W_pos"] - Iv.point(mu_pos)
        return e_q, e_k, p_err
    return s.get("embeddings", make)


def position_scores(s: Shared):
    """EQKE_pos_err[q, i] = E_q Q K^T (P[i] - mean P)^T, in units of the score (x 1/sqrt(d_head))."""
    def make():
        e_q, e_k, p_err = embeddings(s)[0]
        w = s.w
        return matmul(e_q, matmul(w["W_Q"], matmul(w["W_K"].T, p_err.T))) * inv_sqrt_interval(s.d_head)
    return s.get("pos", make)


def value_tables(s: Shared):
    """EVOU, PVOU (d_vocab^2 d_model), and from them W[t], R, PV."""
    def make():
        w = s.w
        vou = matmul(w["W_V"], matmul(w["W_O"], w["W_U"]))
        evou, pvou = matmul(w["W_E"], vou), matmul(w["W_pos"], vou)
        d = evou.shape[0]
        w_t = evou.row_range()  # max_j EVOU[t, j] - min_j EVOU[t, j]
        diag = Iv(np.diag(evou.lo), np.diag(evou.hi))
        r = evou - Iv(diag.lo[:, None], diag.hi[:, None])  # R[m, j] = EVOU[m, j] - EVOU[m, m]
        # PV[m, j] = max_i PVOU[i, j] - PVOU[i, m]
        diff = Iv(pvou.lo[:, None, :], pvou.hi[:, None, :]) - Iv(pvou.lo[:, :, None], pvou.hi[:, :, None])
        pv = diff.max(axis=0)
        off = ~np.eye(d, dtype=bool)
        r_max = np.array([r.hi[m][off[m]].max() if d > 1 else -np.inf for m in range(d)])
        r_min = np.array([r.lo[m][off[m]].min() if d > 1 else np.inf for m in range(d)])
        charge(2 * d * max(d - 2, 0))
        return {"evou": evou, "w_t": w_t, "r": r, "r_max": r_max, "r_min": r_min, "pv": pv}
    return s.get("values", make)


def eupu_full(s: Shared):
    def make():
        e_q = embeddings(s)[0][0]
        return matmul(e_q, s.w["W_U"])
    return s.get("eupu_full", make)


def direct_terms(s: Shared, how: str):
    """(EUm [d], EUPU_gap [d] upper bounds) for the EUPU handling."""
    def make():
        e_q = embeddings(s)[0][0]
        u = s.w["W_U"]
        d = u.shape[1]
        if how in EXACT_EUPU:
            gap = eupu_full(s)[0].row_range()
            if how == "global_max_diff_exact":
                gap = np.full(d, gap.max())
                charge(d - 1)
            return Iv.point(np.zeros(d)), gap
        if how == "mean_query+max_diff":
            mu = e_q.mid.mean(axis=0)
        elif how == "svd_query+max_diff":  # the top singular direction of EUPU, as the paper's search
            eupu = e_q.mid @ u.mid
            uu = np.linalg.svd(eupu)[0][:, 0]
            mu = uu @ e_q.mid
            if np.linalg.norm((e_q.mid - mu) @ u.mid, axis=1).mean() > np.linalg.norm((e_q.mid + mu) @ u.mid,
                                                                                     axis=1).mean():
                mu = -mu
        else:
            mu = np.zeros(e_q.shape[1])
        mu_iv = Iv.point(mu[None, :])
        eum = matmul(mu_iv, u)[0]
        u_range = Iv.point(u.row_range()[:, None])
        gap = matmul(Iv.point((e_q - mu_iv).abs().hi), u_range).hi[:, 0]
        return eum, gap
    return s.get(f"direct:{how}", make)


# ---- EQKE approximations and residual bounds ----------------------------------------------

def eqke_svd(s: Shared):
    """EQKE~ = s' u v^T and the residual (Ar, Br) plus the cross-term row bound."""
    def make():
        e_q, e_k, _ = embeddings(s)[0]
        w = s.w
        m_a = matmul(matmul(e_q, w["W_Q"]), w["W_K"].T)  # d x d_model
        m_b = e_k.T  # d_model x d
        d, r = m_a.shape
        charge_svd(d, r)  # top singular pair of the factored product
        qa, ra = np.linalg.qr(m_a.mid)
        qb, rb = np.linalg.qr(m_b.mid.T)
        uu, _, vh = np.linalg.svd(ra @ rb.T)
        u, v = _unit(qa @ uu[:, 0]), _unit(qb @ vh[0])
        u_iv, v_iv = Iv.point(u[:, None]), Iv.point(v[:, None])
        ut_ma = matmul(u_iv.T, m_a)  # 1 x r
        mb_v = matmul(m_b, v_iv)  # r x 1
        s_top = matmul(ut_ma, mb_v)  # 1 x 1
        approx = matmul(matmul(u_iv, s_top), v_iv.T)
        a_r = m_a - matmul(u_iv, ut_ma)
        b_r = m_b - matmul(mb_v, v_iv.T)
        z = matmul(ut_ma, b_r)  # 1 x d
        y = matmul(a_r, mb_v)  # d x 1
        cross = (Iv.point(np.abs(u)) * float(z.row_range()[0]) + Iv.point(y.abs().hi[:, 0]) * float(
            up(np.float64(v.max() - v.min()))))
        return approx, (a_r, b_r), cross.hi
    return s.get("eqke_svd", make)


def eqke_subproduct(s: Shared):
    """EQKE~ of rank 6 and the residual chain (Eq3, Q_perp, K_perp^T, Ek3^T)."""
    def make():
        e_q, e_k, _ = embeddings(s)[0]
        wq, wk = s.w["W_Q"], s.w["W_K"]
        d, dm = e_q.shape
        for rows, cols in ((d, dm), (d, dm), (d, dm), (d, dm), (dm, wq.shape[1]), (dm, wk.shape[1])):
            charge_svd(rows, cols)  # the six directions
        qd, kd = _top_right(e_q.mid), _top_right(e_k.mid)
        q1, q1row, q_perp = _peel(e_q, qd)
        k1, k1row, k_perp = _peel(e_k, kd)
        q2, q2row, eq3 = _peel(q_perp, _top_right(q_perp.mid))
        k2, k2row, ek3 = _peel(k_perp, _top_right(k_perp.mid))
        wq_dir, wq_row, wq_perp = _peel_left(wq, _top_left(wq.mid))
        wk_dir, wk_row, wk_perp = _peel_left(wk, _top_left(wk.mid))
        m = matmul(wq, wk.T)  # Q K^T, d_model x d_model
        l_q = Iv(np.hstack([q1.lo, q2.lo]), np.hstack([q1.hi, q2.hi]))  # d x 2
        r_q = Iv(np.vstack([q1row.lo, q2row.lo]), np.vstack([q1row.hi, q2row.hi]))  # 2 x dm
        l_k = Iv(np.hstack([k1.lo, k2.lo]), np.hstack([k1.hi, k2.hi]))
        r_k = Iv(np.vstack([k1row.lo, k2row.lo]), np.vstack([k1row.hi, k2row.hi]))
        # EQKE = Lq (Rq M Ek^T) + (Eq3 M Rk^T) Lk^T + (Eq3 wq)(wq^T M Ek3^T) + (Eq3 Q_perp K^T wk)(Ek3 wk)^T + residual
        t1 = matmul(r_q, matmul(m, e_k.T))
        t2 = matmul(eq3, matmul(m, r_k.T))
        t3a, t3b = matmul(eq3, wq_dir), matmul(matmul(wq_row, wk.T), ek3.T)
        t4a = matmul(eq3, matmul(wq_perp, matmul(wk.T, wk_dir)))
        t4b = matmul(ek3, wk_dir).T
        left = _hcat([l_q, t2, t3a, t4a])
        right = _vcat([t1, l_k.T, t3b, t4b])
        return matmul(left, right), (eq3, wq_perp, wk_perp.T, ek3.T)
    return s.get("eqke_subproduct", make)


def _hcat(xs: list[Iv]) -> Iv:
    return Iv(np.hstack([x.lo for x in xs]), np.hstack([x.hi for x in xs]))


def _vcat(xs: list[Iv]) -> Iv:
    return Iv(np.vstack([x.lo for x in xs]), np.vstack([x.hi for x in xs]))


def eqke_exact(s: Shared):
    def make():
        e_q, e_k, _ = embeddings(s)[0]
        return matmul(matmul(e_q, s.w["W_Q"]), matmul(s.w["W_K"].T, e_k.T))
    return s.get("eqke_exact", make)


def row_diff_split(a: Iv, b: Iv, use_mean: bool) -> np.ndarray:
    """Upper bound of max_{i,j} (AB)[r,i] - (AB)[r,j]: sum_k |A[r,k]| range(B[k]) (after
    taking out the mean row of A, whose product is ranged exactly, when use_mean)."""
    rng = Iv.point(b.row_range()[:, None])
    if not use_mean:
        return matmul(Iv.point(a.abs().hi), rng).hi[:, 0]
    mean_row = Iv.point(a.mid.mean(axis=0, keepdims=True))
    head = float(matmul(mean_row, b).row_range()[0])
    tail = matmul(Iv.point((a - mean_row).abs().hi), rng).hi[:, 0]
    return up(tail + head)


def row_diff_best_split(chain: tuple[Iv, ...], use_mean: bool) -> np.ndarray:
    """The paper's max_row_diffs_per_dim: every split of the product, the best per row."""
    lefts, rights = [chain[0]], [chain[-1]]
    for ml, mr in zip(chain[1:-1], reversed(chain[1:-1])):
        lefts.append(matmul(lefts[-1], ml))
        rights.append(matmul(mr, rights[-1]))
    bounds = np.stack([row_diff_split(l, r, use_mean) for l, r in zip(lefts, reversed(rights))])
    charge(bounds.size - bounds.shape[1])
    return bounds.min(axis=0)


def row_diff_recursive(chain: tuple[Iv, ...], use_mean: bool, mean_recursively: bool) -> np.ndarray:
    """The paper's max_row_diffs_per_dim_no_multipy: |A| (|B| (... range(last)))."""
    if len(chain) == 1:
        return chain[0].row_range()
    a, rest = chain[0], chain[1:]
    inner = Iv.point(row_diff_recursive(rest, mean_recursively, mean_recursively)[:, None])
    if not use_mean:
        return matmul(Iv.point(a.abs().hi), inner).hi[:, 0]
    mean_row = Iv.point(a.mid.mean(axis=0, keepdims=True))
    prod = mean_row
    for m in rest:
        prod = matmul(prod, m)
    head = float(prod.row_range()[0])
    return up(matmul(Iv.point((a - mean_row).abs().hi), inner).hi[:, 0] + head)


def product(chain: tuple[Iv, ...]) -> Iv:
    out = chain[0]
    for m in chain[1:]:
        out = matmul(out, m)
    return out


def attention_error(s: Shared, how: str):
    """(EQKE~ [d, d] in score units, err [d] upper bounds in score units)."""
    def make():
        isq = inv_sqrt_interval(s.d_head)
        d = s.w["W_E"].shape[0]
        if how == "exact_EQKE+max_diff_exact":
            return eqke_exact(s)[0] * isq, np.zeros(d)
        if "subproduct" in how:
            approx, chain = eqke_subproduct(s)[0]
            cross = np.zeros(d)
        else:
            approx, chain, cross = eqke_svd(s)[0]
        if how == "svd":
            err = np.full(d, math.sqrt(2) * (1 + 4 * 2 ** -52) * spectral_norm_upper(*chain))
        elif how == "max_diff_exact":
            err = product(chain).row_range()
        elif how in RECURSIVE:
            err = row_diff_recursive(chain, how.startswith("mean"), how.startswith("mean_recursive"))
        else:
            err = row_diff_best_split(chain, how.startswith("mean"))
        err = up(err + cross)
        return approx * isq, (Iv.point(err) * isq).hi
    return s.get(f"err:{how}", make)


# ---- the per-family bound ------------------------------------------------------------------

@dataclass(frozen=True)
class Families:
    """Index arrays of the (q, m, c) families with c >= 1 (c = non-max tokens incl. a non-max query)."""
    q: np.ndarray
    m: np.ndarray
    c: np.ndarray
    g_max: np.ndarray  # the largest gap: m - q for q < m, m for q == m


def families(d: int, k: int) -> Families:
    qs, ms, cs = [], [], []
    for q in range(d):
        for m in range(max(q, 1), d):
            for c in range(1, k):
                qs.append(q), ms.append(m), cs.append(c)
    q, m, c = np.array(qs, dtype=np.int64), np.array(ms, dtype=np.int64), np.array(cs, dtype=np.int64)
    return Families(q, m, c, np.where(q < m, m - q, m))


def _sorted_sums(e: Iv, k: int) -> dict[str, np.ndarray]:
    """Per (q, c): lower/upper attention sums for the worst/best placement of the max copies.

    e: exp of the positional scores, [d, K]. Free positions 0..K-2; the query is K-1.
    Returns arrays [d, K] indexed by c (number of non-max tokens incl. a non-max query).
    """
    d = e.shape[0]
    free_lo = np.sort(e.lo[:, :-1], axis=1)  # ascending
    free_hi = np.sort(e.hi[:, :-1], axis=1)
    csum = lambda a: np.concatenate([np.zeros((d, 1)), np.cumsum(a, axis=1)], axis=1)  # noqa: E731
    lo_small = csum(free_lo)
    hi_large = csum(free_hi[:, ::-1])
    out = {k2: np.zeros((d, k)) for k2 in ("smax_lo_qm", "snon_hi_qm", "smax_hi_qm", "snon_lo_qm",
                                           "smax_lo_q", "snon_hi_q", "smax_hi_q", "snon_lo_q")}
    slack = 4.0 * (k + 2) * 2.0 ** -53
    for c in range(k):
        # q == m: query is a max position; K-1-c max copies and c non-max among the free
        n_max = k - 1 - c
        out["smax_lo_qm"][:, c] = e.lo[:, -1] + lo_small[:, n_max]
        out["snon_hi_qm"][:, c] = hi_large[:, c]
        out["smax_hi_qm"][:, c] = e.hi[:, -1] + hi_large[:, n_max]
        out["snon_lo_qm"][:, c] = lo_small[:, c]
        if c >= 1:  # q != m: K-c max copies among the free, c-1 non-max free plus the query
            out["smax_lo_q"][:, c] = lo_small[:, k - c]
            out["snon_hi_q"][:, c] = e.hi[:, -1] + hi_large[:, c - 1]
            out["smax_hi_q"][:, c] = hi_large[:, k - c]
            out["snon_lo_q"][:, c] = e.lo[:, -1] + lo_small[:, c - 1]
    charge(8 * d * k)
    for key in out:  # the float sums' rounding (a-priori, at most K terms)
        out[key] = down(out[key] * (1 - slack)) if "_lo" in key else up(out[key] * (1 + slack))
    return out


def _attention(smax: np.ndarray, snon: np.ndarray, x: Iv, lower: bool) -> np.ndarray:
    """Attention on the max, smax / (smax + exp(-x) snon): a lower bound from (smax_lo,
    snon_hi, x_lo), an upper bound from (smax_hi, snon_lo, x_hi); monotone in each."""
    t = iexp(-x)
    charge(3 * np.size(smax))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if lower:
            den = up(smax + up(t.hi * snon))
            a = down(smax / den)
            return np.where(np.isnan(a), 0.0, np.clip(a, 0.0, 1.0))
        den = down(smax + down(t.lo * snon))
        a = up(smax / den)
        return np.where(np.isnan(a), 1.0, np.clip(a, 0.0, 1.0))


class Prepared:
    """Everything one variant needs before the per-family check."""

    def __init__(self, s: Shared, tricks: Tricks, k: int) -> None:
        c0 = Flops()
        # the only-max families (q = m, c = 0) use the exact EUPU row of every m: all of EUPU
        for piece in (embeddings, position_scores, value_tables, eupu_full):
            piece(s)
        direct_terms(s, tricks.eupu), attention_error(s, tricks.error)
        self.shared_flops = s.cost(["embeddings", "pos", "values", "eupu_full", f"direct:{tricks.eupu}",
                                    f"err:{tricks.error}"])
        pos = position_scores(s)[0]
        self.vals = value_tables(s)[0]
        self.eum, self.eupu_gap = direct_terms(s, tricks.eupu)[0]
        self.approx, self.err = attention_error(s, tricks.error)[0]
        self.eupu_rows = eupu_full(s)[0]
        self.tricks, self.k = tricks, k
        d = pos.shape[0]
        with counting(c0):
            ref = Iv.point(pos.mid.max(axis=1, keepdims=True))  # softmax is shift-invariant per query
            self.sums = _sorted_sums(iexp(pos - ref), k)
            # prefix extrema of EQKE~ over the key token: pmax[q, t] = max_{k <= t} EQKE~_hi[q, k]
            self.pmax = np.maximum.accumulate(self.approx.hi, axis=1)
            self.pmin = np.minimum.accumulate(self.approx.lo, axis=1)
            charge(2 * d * (d - 1))
            self.w_prefix = np.maximum.accumulate(self.vals["w_t"])  # W(m, g) = w_prefix[m - g]
            charge(d - 1)
        self.prep_flops = c0.n

    def attention_bounds(self, f: Families, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q, m, c = f.q, f.m, f.c
        diag = self.approx[q, m]
        err = Iv(np.zeros(len(q)), self.err[q])
        x_lo = Iv.point(diag.lo) - Iv.point(self.pmax[q, m - g]) - err.hi
        x_hi = Iv.point(diag.hi) - Iv.point(self.pmin[q, m - g]) + err.hi
        is_qm = q == m
        s = self.sums
        pick = lambda a, b: np.where(is_qm, s[a][q, c], s[b][q, c])  # noqa: E731
        a_lo = _attention(pick("smax_lo_qm", "smax_lo_q"), pick("snon_hi_qm", "snon_hi_q"), Iv.point(x_lo.lo), True)
        a_hi = _attention(pick("smax_hi_qm", "smax_hi_q"), pick("snon_lo_qm", "snon_lo_q"), Iv.point(x_hi.hi), False)
        return a_lo, a_hi

    def averages(self, f: Families) -> np.ndarray:
        """avg[m, c]: `mean_query+diff` uses the mean over the queries of the extreme
        attention at gap 1 (any constant is sound); `drop...` uses 0."""
        d = self.pmax.shape[0]
        avg = np.zeros((d, self.k))
        if self.tricks.attention != "mean_query+diff":
            return avg
        a_lo, a_hi = self.attention_bounds(f, np.ones_like(f.q))
        w1 = self.w_prefix[np.maximum(f.m - 1, 0)]
        pick_lo = self.vals["r_max"][f.m] < w1  # the paper's min_max_index
        a = np.where(pick_lo, a_lo, a_hi)
        tot, cnt = np.zeros((d, self.k)), np.zeros((d, self.k))
        np.add.at(tot, (f.m, f.c), a)
        np.add.at(cnt, (f.m, f.c), 1)
        charge(2 * len(a) + d * self.k)
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), 0.0)

    def base(self, avg: np.ndarray) -> np.ndarray:
        """Base[m, c] upper bounds: max_{j != m} EUm[j] - EUm[m] + PV[m, j] + avg R[m, j]."""
        d = avg.shape[0]
        v = self.vals
        eum = self.eum
        core = Iv(eum.lo[None, :], eum.hi[None, :]) - Iv(eum.lo[:, None], eum.hi[:, None]) + v["pv"]  # [m, j]
        out = np.empty((d, self.k))
        mask = np.eye(d, dtype=bool)
        if self.tricks.attention == "mean_query+diff":
            for c in range(self.k):
                t = core + v["r"] * Iv.point(avg[:, c:c + 1])
                out[:, c] = np.where(mask, -np.inf, t.hi).max(axis=1)
            charge(self.k * d * (d - 1))
        else:
            out[:, :] = np.where(mask, -np.inf, core.hi).max(axis=1)[:, None]
            charge(d * (d - 1))
        return out

    def lwl(self, f: Families, g: np.ndarray, avg: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Upper bound of the largest wrong logit minus the right one, per family at gap g."""
        a_lo, a_hi = self.attention_bounds(f, g)
        av = Iv.point(avg[f.m, f.c])
        w = Iv.point(self.w_prefix[f.m - g])
        r_max, r_min = Iv.point(self.vals["r_max"][f.m]), Iv.point(self.vals["r_min"][f.m])
        corr = np.maximum.reduce([((Iv.point(a) - av) * (r - w)).hi for a in (a_lo, a_hi) for r in (r_max, r_min)])
        charge(3 * len(corr))
        total = Iv.point(base[f.m, f.c]) + Iv.point(self.eupu_gap[f.q]) + (1.0 - av) * w + Iv.point(corr)
        return total.hi

    def only_max(self) -> np.ndarray:
        """Families q = m, c = 0 (every token is m): exact EUPU row, R, PV; upper bounds."""
        d = self.pmax.shape[0]
        rows = self.eupu_rows
        diag = Iv(np.diag(rows.lo)[:, None], np.diag(rows.hi)[:, None])
        t = rows - diag + self.vals["r"] + self.vals["pv"]
        charge(d * (d - 1))
        return np.where(np.eye(d, dtype=bool), -np.inf, t.hi).max(axis=1)


def family_count(f: Families, g: np.ndarray, k: int) -> np.ndarray:
    """Inputs of a certified family: q == m: C(K-1, c) (m-g+1)^c; q < m: C(K-1, c-1) (m-g+1)^(c-1)."""
    free = np.where(f.q == f.m, f.c, f.c - 1)
    comb = np.array([math.comb(k - 1, int(n)) for n in free], dtype=object)
    return comb * np.array([int(b) ** int(e) for b, e in zip(f.m - g + 1, free)], dtype=object)


@dataclass(frozen=True)
class PaperResult:
    count: int
    flops: int
    search_flops: int
    unexplained_dimension: int
    search_seconds: float
    check_seconds: float
    gaps: dict
    group: str


def run_paper_variant(s: Shared, name: str, d_vocab: int, k: int, d_model: int) -> PaperResult:
    """Search the smallest gap per family, then check once at the found gaps (counted)."""
    tricks = Tricks.parse(name)
    t0 = time.perf_counter()
    prep = Prepared(s, tricks, k)
    f = families(d_vocab, k)
    search = Flops()
    with counting(search):
        avg = prep.averages(f)
        base = prep.base(avg)
        lo, hi = np.ones_like(f.g_max), f.g_max.copy()  # smallest passing g in [lo, hi], or none
        ok_hi = prep.lwl(f, hi, avg, base) < 0
        hi_search = hi.copy()
        while True:
            active = ok_hi & (lo < hi_search)
            if not active.any():
                break
            mid = (lo + hi_search) // 2
            okm = prep.lwl(f, np.where(active, mid, hi_search), avg, base) < 0
            hi_search = np.where(active & okm, mid, hi_search)
            lo = np.where(active & ~okm, mid + 1, lo)
        gaps = np.where(ok_hi, hi_search, -1)
    search_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    check = Flops()
    with counting(check):  # the proof: the pieces above and one pass over the witness
        avg = prep.averages(f) if tricks.attention == "mean_query+diff" else avg
        base = prep.base(avg)
        use = gaps > 0
        g = np.where(use, gaps, f.g_max)
        good = use & (prep.lwl(f, g, avg, base) < 0)
        only = prep.only_max() < 0
        charge(len(f.q) + d_vocab)
    if (good != use).any():
        raise AssertionError(f"{name}: the search's gaps do not check")
    count = int(family_count(f, g, k)[good].sum()) + int(only.sum())
    flops = prep.shared_flops + prep.prep_flops + check.n
    witness = {"gaps": gaps.tolist(), "only_max": only.tolist()}
    return PaperResult(count, flops, search.n, tricks.unexplained_dimension(d_vocab, d_model), search_seconds,
                       time.perf_counter() - t1, witness, tricks.group())
