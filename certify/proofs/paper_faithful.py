"""The paper's own computation for its 100 subcubic variants, step for step (`--paper-faithful`).

`paper_subcubic` is our sound version of the paper's family. This module is the other half
of a replication: what the paper's code (JasonGross/guarantees-based-mechanistic-
interpretability, `gbmi/exp_max_of_n`) computes on a model, with its float32 arithmetic, its
gap search and its counting, so that "the paper's computation on our models" can be put
beside "ours (sound)" (docs/paper-faithful.md). It is our implementation, written from the
paper's algorithm; tests/fixtures/paper_faithful/ holds the paper code's own counts on our
canonical models and the tests require exact agreement.

The computation (per query q, max m, number c of non-max tokens, the query counted when
q != m), in float32 like the paper's models:
- EQKE = (W_E + W_pos[-1]) W_Q W_K^T (W_E + mean W_pos)^T, the positional rest EQKE_pos_err.
- extreme score gaps: EQKE[q,m] - max/min_{k<=m-g} EQKE[q,k], widened by the error bound.
- extreme attention on the max: softmax with the max copies on the least (most) favoured
  positions, the positional scores sorted.
- largest wrong logit: Base(avg) + EUPU_gap[q] + (a - avg) R_max - (a - avg) W.
- gap search: for g = d_vocab-1 down to 1, one uniform-gap pass; an entry keeps the last
  (smallest) g at which its bound was negative, else 1. The check recomputes everything at
  the found gaps (the wrong-attention term then uses the smallest gap over the queries).
- counting: count_sequences(n_ctx-1, c', m-g) = C(n_ctx-1, c') (m-g)^c' per passing entry,
  nothing for m = 0 with c > 0.

Steps that are unsound (the faithful number is kept, the result is marked):
- `float32`: every quantity is a float32 value with no rounding error bound.
- `mean_query+diff`: the attention correction (a - avg) R_max is too small when a < avg
  (sound: max over a in {a_lo, a_hi}, R in {R_min, R_max} of (a - avg)(R - W)).
- `svd_cross_terms`: the SVD split drops the two rank-one cross terms of the residual,
  zero only for exact singular vectors (the `svd`, `max_diff*` and `mean+*` error bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .paper_subcubic import PAPER_VARIANTS, Tricks

FAITHFUL_ERRORS = ("exact_EQKE+max_diff_exact", "max_diff_exact", "svd", "max_diff", "mean+max_diff")
FAITHFUL_VARIANTS = [n for n in PAPER_VARIANTS if Tricks.parse(n).error in FAITHFUL_ERRORS]


@dataclass(frozen=True)
class FaithfulResult:
    name: str
    count: int
    total: int
    unsound_steps: tuple[str, ...]
    gaps: torch.Tensor


@dataclass(frozen=True)
class PaperTables:
    """The paper's float32 tables of one model (biases are zero in our architecture)."""
    W_E: torch.Tensor
    W_pos: torch.Tensor
    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_U: torch.Tensor
    EVOU: torch.Tensor
    PVOU: torch.Tensor
    attn_scale: float

    @staticmethod
    def of(weights: dict, d_head: int) -> "PaperTables":
        w = {k: v.detach().cpu().to(torch.float32) for k, v in weights.items()}
        vo = w["W_V"], w["W_O"]
        evou = ((w["W_E"] @ vo[0]) @ vo[1]) @ w["W_U"]
        pvou = ((w["W_pos"] @ vo[0]) @ vo[1]) @ w["W_U"]
        return PaperTables(w["W_E"], w["W_pos"], w["W_Q"], w["W_K"], w["W_U"], evou, pvou, math.sqrt(d_head))


def unsound_steps(tricks: Tricks) -> tuple[str, ...]:
    steps = ["float32"]
    if tricks.attention == "mean_query+diff":
        steps.append("mean_query+diff")
    if tricks.error not in ("exact_EQKE+max_diff_exact",):
        steps.append("svd_cross_terms")
    return tuple(steps)


# ---- EQKE and its error bound ---------------------------------------------------------------

def eqke_pieces(t: PaperTables, tricks: Tricks) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(EQKE~, EQKE_pos_err, err[q] or err[1]) as the paper's `decompose_EQKE_error`."""
    mean_pos = t.W_pos.mean(dim=0)[None, :]
    e_k = t.W_E + mean_pos
    pos_err = t.W_pos - mean_pos
    e_q = t.W_E + t.W_pos[-1][None, :]
    eqke_pos_err = e_q @ (t.W_Q @ (t.W_K.T @ pos_err.T))
    if tricks.error == "exact_EQKE+max_diff_exact":
        eqke = (e_q @ t.W_Q) @ (t.W_K.T @ e_k.T)
        return eqke, eqke_pos_err, torch.zeros(1)
    eqke, (ar, br) = rank_one_split((e_q @ t.W_Q) @ t.W_K.T, e_k.T)
    return eqke, eqke_pos_err, error_bound(tricks.error, ar, br).reshape(-1)


def factored_svd(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD of the product a b from the SVDs of the factors (U, S, V with a b = U diag(S) V^T),
    the way the paper's FactoredMatrix computes it."""
    ua, sa, va = torch.svd(a)
    ub, sb, vb = torch.svd(b)
    middle = ((sa[:, None] * va.T) @ ub) * sb[None, :]
    um, sm, vm = torch.svd(middle)
    return ua @ um, sm, vb @ vm


def _unit_column(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=0, keepdim=True)


def rank_one_split(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """EQKE = a b ~ (u u^T a)(b v v^T) with u, v the top singular vectors of a b; returns the
    rank-one EQKE~ and the residual factors (a - u u^T a, b - b v v^T). UNSOUND STEP
    (`svd_cross_terms`): a b - EQKE~ is not Ar Br: the cross terms u u^T a Br + Ar b v v^T
    are dropped, zero only for exact singular vectors."""
    u, _, v = factored_svd(a, b)
    u1 = _unit_column(u[:, :1])
    left = a.T @ u1  # [d_model, 1]
    ar = (a.T - left @ u1.T).T
    v1 = _unit_column(v[:, :1])
    right = b @ v1
    br = b - right @ v1.T
    core = left.T @ right  # [1, 1]
    return (u1 @ core) @ v1.T + 0.0, (ar, br)


def error_bound(handling: str, ar: torch.Tensor, br: torch.Tensor) -> torch.Tensor:
    """Bound on the row differences of ar br (`bound_attention_error`)."""
    if handling == "svd":
        return factored_svd(ar, br)[1][0] * math.sqrt(2)
    if handling in ("max_diff", "mean+max_diff"):
        b_range = br.max(dim=-1).values - br.min(dim=-1).values
        if handling == "mean+max_diff":
            mean_row = ar.mean(dim=-2, keepdim=True)
            mean_prod = mean_row @ br
            return (mean_prod.max(dim=-1).values - mean_prod.min(dim=-1).values) + (ar - mean_row).abs() @ b_range
        return torch.stack([ar.abs() @ b_range], dim=-1).min(dim=-1).values
    if handling == "max_diff_exact":
        prod = ar @ br
        return prod.max(dim=-1).values - prod.min(dim=-1).values
    raise NotImplementedError(f"paper-faithful attention error handling {handling!r}")


# ---- the paper's pipeline at given gaps -------------------------------------------------------

def extreme_score_gaps(eqke: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
    """[2, q, m, c]: EQKE[q,m] - max_{k<=m-g} EQKE[q,k] and - min_{...}; nan where the query
    cannot be a non-max token, 0 where no non-max token fits (m < g)."""
    dq, dk = eqke.shape
    n = gaps.shape[-1]
    run_max = torch.cummax(eqke, dim=1).values
    run_min = torch.cummin(eqke, dim=1).values
    m = torch.arange(dk)[None, :, None].expand(dq, dk, n)
    q = torch.arange(dq)[:, None, None].expand(dq, dk, n)
    idx = (m - gaps).clamp(min=0)
    qi = q.reshape(dq, -1)
    lo = eqke[qi, m.reshape(dq, -1)].reshape(dq, dk, n) - torch.gather(run_max, 1, idx.reshape(dq, -1)).reshape(dq, dk, n)
    hi = eqke[qi, m.reshape(dq, -1)].reshape(dq, dk, n) - torch.gather(run_min, 1, idx.reshape(dq, -1)).reshape(dq, dk, n)
    out = torch.stack([lo, hi])
    out[:, m < gaps] = 0.0
    out[:, (m != q) & (m - q < gaps)] = float("nan")
    return out


def extreme_attention(ext: torch.Tensor, eqke_pos_err: torch.Tensor, gaps: torch.Tensor,
                      attn_scale: float) -> torch.Tensor:
    """[2, q, m, c]: least and most softmaxed attention on the max token."""
    _, dq, dm, n = ext.shape
    pos = eqke_pos_err - eqke_pos_err[:, -1].unsqueeze(-1)
    pos = pos[:, :-1].sort(dim=-1).values
    base = torch.zeros(2, dq, n)
    base[0, :, :-1] = pos
    base[1, :, :-1] = pos.flip(dims=[1])
    result = torch.full((2, dq, dm, n), float("nan"))
    q = torch.arange(dq)[:, None]
    m = torch.arange(dm)[None, :]
    for c in range(n):
        g = gaps[:, :, c]
        valid = (m >= q) & ~((c == 0) & (m != q)) & ~((m < g) & (c != 0)) & ~((m != q) & (m - q < g))
        n_max = n - c
        for q_is_max in (False, True):
            if q_is_max and n_max < 1:
                continue
            sel = valid & ((m == q) if q_is_max else (m != q))
            if not sel.any():
                continue
            idx = list(range(n_max - 1)) + [-1] if q_is_max else list(range(n_max))
            qs, ms = torch.nonzero(sel, as_tuple=True)
            tmp = base[:, qs].clone()  # [2, B, n]
            tmp[:, :, idx] += ext[:, qs, ms, c].unsqueeze(-1)
            tmp = (tmp / attn_scale).softmax(dim=-1)
            result[:, qs, ms, c] = tmp[:, :, idx].sum(dim=-1)
    return result


def split_direct(t: PaperTables, w_ep: torch.Tensor, direction: torch.Tensor | None,
                 tricks: Tricks) -> tuple[torch.Tensor, torch.Tensor]:
    """(EUPU_mean_query [out], EUPU_per_query_max_gap [q]) as the paper's `split_EPU`."""
    if tricks.eupu in ("global_max_diff_exact", "max_diff_exact"):
        eupu = w_ep @ t.W_U
        centre = eupu.mean(dim=0) if tricks.eupu == "mean_query+max_diff" else torch.zeros_like(eupu).mean(dim=0)
        per_q = eupu - centre[None, :]
        gap = per_q.max(dim=-1).values - per_q.min(dim=-1).values
        if tricks.eupu == "global_max_diff_exact":
            gap[:] = per_q.max() - per_q.min()
        return centre, gap
    if tricks.eupu == "mean_query+max_diff":
        mu = w_ep.mean(dim=0)
    elif tricks.eupu == "svd_query+max_diff":
        mu = direction
    else:
        mu = torch.zeros_like(w_ep).mean(dim=0)
    centre = mu @ t.W_U
    u_range = t.W_U.max(dim=-1).values - t.W_U.min(dim=-1).values
    return centre, (w_ep - mu[None, :]).abs() @ u_range


def direct_direction(t: PaperTables) -> torch.Tensor:
    """`W_EP_direction_for_tricks`: the top left singular vector of (W_E + mean W_pos) W_U
    pulled back to d_model, its sign chosen by the paper's test."""
    w_ep = t.W_E + t.W_pos.mean(dim=0, keepdim=True)
    u, _, _ = torch.linalg.svd(w_ep @ t.W_U)
    d = u[:, 0] @ w_ep
    if ((w_ep - d) @ t.W_U).norm(dim=-1).mean() > ((w_ep + d) @ t.W_U).norm(dim=-1).mean():
        d = -d
    return d


@dataclass(frozen=True)
class LogitTables:
    """The gap-independent part of the paper's `compute_largest_wrong_logit_quadratic`, per
    max token m, with its cumulative re-centring of PVOU and EUPU_mean_query (so the float32
    values are the paper's): logits[m] = EUPU_mean_query + max_i PVOU[i] (centred on m),
    right[m] = EVOU[m] - EVOU[m,m], right_max[m] = max_{j != m} right[m, j], only_max[m]."""
    logits: torch.Tensor
    right: torch.Tensor
    right_max: torch.Tensor
    right_min: torch.Tensor
    only_max: torch.Tensor
    eupu_gap: torch.Tensor
    wrong_prefix: torch.Tensor

    @staticmethod
    def of(t: PaperTables, w_ep: torch.Tensor, direction: torch.Tensor | None, tricks: Tricks) -> "LogitTables":
        dm = t.EVOU.shape[0]
        evou_range = t.EVOU.max(dim=-1).values - t.EVOU.min(dim=-1).values
        eupu_centre, eupu_gap = split_direct(t, w_ep, direction, tricks)
        evou = t.EVOU - t.EVOU.diag()[:, None]
        pvou = t.PVOU
        logits, only, rmax, rmin = [], [], [], []
        for m in range(dm):
            pvou = pvou - pvou[:, m].unsqueeze(-1)
            eupu_centre = eupu_centre - eupu_centre[m].item()
            cur_pvou = pvou.max(dim=0).values
            only_max = w_ep[m, :] @ t.W_U + evou[m, :] + cur_pvou
            only_max -= only_max[m].item()
            only_max[m] = float("-inf")
            only.append(only_max.max())
            logits.append(eupu_centre + cur_pvou)
            tmp = evou[m].clone()
            tmp[m] = float("-inf")
            rmax.append(tmp.max())
            tmp[m] = float("inf")
            rmin.append(tmp.min())
        return LogitTables(torch.stack(logits), evou, torch.stack(rmax), torch.stack(rmin), torch.stack(only), eupu_gap,
                           torch.cummax(evou_range, dim=0).values)


FIXES = ("count", "attention_correction", "search_w_ep")
"""Switches that replace one of the paper's steps by the sound/consistent one, to measure
what each cause is worth (docs/paper-faithful.md): `count` counts the m-g+1 tokens 0..m-g;
`attention_correction` uses max over a in {a_lo, a_hi}, R in {R_min, R_max} of
(a - avg)(R - W); `search_w_ep` searches with the checked W_EP = W_E + W_pos[-1]."""


def largest_wrong_logit(att: torch.Tensor, lt: LogitTables, gaps: torch.Tensor, tricks: Tricks,
                        fixes: frozenset[str] = frozenset()) -> torch.Tensor:
    """[q, m, c]: the paper's largest wrong logit minus the max's logit,
        (max_{j != m} logits[m] + avg right[m]) + (1 - avg) W + EUPU_gap[q]
            + (a - avg) R_max - (a - avg) W,
    W = max_{k <= m-g} (max EVOU[k] - min EVOU[k]) with g the smallest gap over the queries,
    a the least attention when R_max < W, else the most; avg its mean over the valid
    queries (`mean_query+diff`) or 0."""
    _, dq, dm, n = att.shape
    results = torch.full((dq, dm, n), float("nan"))
    ms = torch.arange(dm)
    results[ms, ms, 0] = lt.only_max
    q = torch.arange(dq)[:, None]
    m = ms[None, :]
    for c in range(1, n):
        g = torch.stack([gaps[: k + 1, k, c].min() for k in range(dm)])
        live = ms >= g
        wrong = lt.wrong_prefix[(ms - g).clamp(min=0)]
        idx = (lt.right_max >= wrong).long()  # 0: least attention when R_max < W
        a = att[idx, :, ms, c].T  # [q, m]
        if tricks.attention == "mean_query+diff":
            avg = torch.stack([a[:, k][~a[:, k].isnan()].mean() for k in range(dm)])
        else:
            avg = torch.zeros(dm)
        cur = lt.logits + avg[:, None] * lt.right
        cur[ms, ms] = float("-inf")
        average_wrong = cur.max(dim=-1).values + (1 - avg) * wrong
        extra = a - avg[None, :]
        r = average_wrong[None, :] + lt.eupu_gap[:, None]
        if "attention_correction" in fixes:
            a_lo, a_hi = att[0, :, ms, c].T - avg[None, :], att[1, :, ms, c].T - avg[None, :]
            corr = torch.stack([x * (rr[None, :] - wrong[None, :]) for x in (a_lo, a_hi)
                                for rr in (lt.right_min, lt.right_max)]).amax(dim=0)
            r = r + corr
        else:
            r = r + extra * lt.right_max[None, :]
            r = r + (-extra * wrong[None, :])
        ok = live[None, :] & (q <= m) & ((q == m) | (m - q >= gaps[:, :, c]))
        results[:, :, c] = torch.where(ok, r, results[:, :, c])
    return results


def count_correct(lwl: torch.Tensor, gaps: torch.Tensor, fixes: frozenset[str] = frozenset()) -> int:
    """The paper's `count_correct_sequences`: C(n_ctx-1, c') (m-g)^c' per passing entry."""
    dq, dm, n = lwl.shape
    passing = (lwl < 0).tolist()
    g_all = gaps.tolist()
    total = 0
    for q in range(dq):
        for m in range(q, dm):
            for c in range(n):
                g = int(g_all[q][m][c])
                if not passing[q][m][c] or (q != m and c == 0) or (q != m and m - q < g) or (m == 0 and c > 0):
                    continue
                pre = c - 1 if q != m else c
                if pre == 0:
                    total += 1
                else:
                    choices = m - g + 1 if "count" in fixes else m - g
                    total += math.comb(n - 1, pre) * (choices ** pre if choices > 0 else 0)
    return total


def _pass(t: PaperTables, eqke, pos_err, err, lt: LogitTables, gaps, tricks, fixes=frozenset()) -> torch.Tensor:
    ext = extreme_score_gaps(eqke, gaps)
    ext[0] -= err[:, None, None]
    ext[1] += err[:, None, None]
    att = extreme_attention(ext, pos_err, gaps, t.attn_scale)
    return largest_wrong_logit(att, lt, gaps, tricks, fixes)


def search_gaps(t: PaperTables, eqke, pos_err, err, direction, tricks: Tricks,
                fixes: frozenset[str] = frozenset()) -> torch.Tensor:
    """The paper's `find_min_gaps`: uniform gaps from d_vocab-1 down to 1 (its W_EP here is
    W_E + mean W_pos); each entry keeps the smallest gap at which its bound was negative."""
    dq, dk = eqke.shape
    n = pos_err.shape[-1]
    w_ep = t.W_E + (t.W_pos[-1] if "search_w_ep" in fixes else t.W_pos.mean(dim=0, keepdim=True))
    lt = LogitTables.of(t, w_ep, direction, tricks)
    min_gaps = torch.ones((dq, dk, n), dtype=torch.long)
    for g in reversed(range(1, dk)):
        lwl = _pass(t, eqke, pos_err, err, lt, torch.full((dq, dk, n), g, dtype=torch.long), tricks, fixes)
        min_gaps[lwl < 0] = g
    return min_gaps


def run_faithful(t: PaperTables, name: str, fixes: frozenset[str] = frozenset()) -> FaithfulResult:
    """Search, then check at the found gaps (W_EP = W_E + W_pos[-1]), then count; `fixes`
    (see FIXES) only for measuring causes: with any, the result is no longer the paper's."""
    tricks = Tricks.parse(name)
    unknown = set(fixes) - set(FIXES)
    if unknown:
        raise ValueError(f"unknown fix {sorted(unknown)}; known: {', '.join(FIXES)}")
    with torch.no_grad():
        eqke, pos_err, err = eqke_pieces(t, tricks)
        direction = direct_direction(t) if tricks.eupu == "svd_query+max_diff" else None
        gaps = search_gaps(t, eqke, pos_err, err, direction, tricks, fixes)
        lt = LogitTables.of(t, t.W_E + t.W_pos[-1], direction, tricks)
        lwl = _pass(t, eqke, pos_err, err, lt, gaps, tricks, fixes)
        count = count_correct(lwl, gaps, fixes)
    return FaithfulResult(name, count, t.W_E.shape[0] ** t.W_pos.shape[0], unsound_steps(tricks), gaps)


# ---- the paper's cubic proof ---------------------------------------------------------------

CUBIC_UNSOUND_STEPS = ("float32",)


def cubic_attention(eqke: torch.Tensor, eqkp: torch.Tensor, attn_scale: float) -> torch.Tensor:
    """[2, 3, q, m, k, c]: least/most softmaxed attention on the max (0), the non-max token k
    (1) and the query (2), over orderings of c copies of k and the max copies (the paper's
    `compute_extreme_softmaxed_right_attention_cubic_simple`); nan where undefined."""
    d, n = eqke.shape[-1], eqkp.shape[-1]
    res = torch.full((2, 3, d, d, d, n), float("nan"))
    pos, pos_q = eqkp[:, :-1].sort(dim=-1).values, eqkp[:, -1]
    for m in range(d):
        qs, ks = torch.meshgrid(torch.arange(m + 1), torch.arange(m + 1), indexing="ij")
        qs, ks = qs.reshape(-1), ks.reshape(-1)
        query_score = eqke[qs, qs] + pos_q[qs]
        # k = m: only max tokens besides the query (c = 0)
        sel = (ks == m) & (qs != m)
        q1 = qs[sel]
        if len(q1):
            tmp = torch.empty(2, len(q1), n)
            tmp[:, :, :-1] = pos[q1] + eqke[q1, m][:, None]
            tmp[:, :, -1] = query_score[sel]
            sm = (tmp / attn_scale).softmax(dim=-1)
            res[:, 0, q1, m, m, 0] = sm[:, :, :-1].sum(dim=-1)
            res[:, 1, q1, m, m, 0] = 0
            res[:, 2, q1, m, m, 0] = sm[:, :, -1]
        res[:, 0, m, m, m, 0] = 1
        res[:, 1, m, m, m, 0] = 0
        res[:, 2, m, m, m, 0] = 0
        for c in range(n):
            sel = (ks != m) & ((qs == m) | (c < n - 1))
            if not sel.any():
                continue
            q2, k2 = qs[sel], ks[sel]
            n_max = n - c - 1
            tmp = torch.empty(2, len(q2), n)
            tmp[0, :, :-1] = pos[q2]
            tmp[1, :, :-1] = pos[q2].flip(dims=[1])
            tmp[:, :, -1] = query_score[sel]
            tmp[:, :, :n_max] += eqke[q2, m][:, None]
            tmp[:, :, n_max:-1] += eqke[q2, k2][:, None]
            sm = (tmp / attn_scale).softmax(dim=-1)
            is_max = (q2 == m)
            res[:, 0, q2, m, k2, c] = sm[:, :, :n_max].sum(dim=-1) + torch.where(is_max, sm[:, :, -1], 0.0)
            res[:, 1, q2, m, k2, c] = sm[:, :, n_max:-1].sum(dim=-1)
            res[:, 2, q2, m, k2, c] = torch.where(is_max, 0.0, sm[:, :, -1])
    return res


def cubic_largest_wrong_logit(att: torch.Tensor, eupu: torch.Tensor, evou: torch.Tensor,
                              pvou: torch.Tensor) -> torch.Tensor:
    """[q, m, k, c]: the paper's `compute_largest_wrong_logit_cubic` (cumulative re-centring
    of PVOU, EUPU, EVOU on each max token, as its float32 values)."""
    d, n = att.shape[2], att.shape[-1]
    res = torch.full((d, d, d, n), float("nan"))
    for m in range(d):
        pvou = pvou - pvou[:, m].unsqueeze(-1)
        eupu = eupu - eupu[:, m].unsqueeze(-1)
        evou = evou - evou[:, m].unsqueeze(-1)
        pv = pvou.max(dim=0).values
        only = eupu[m, :] + evou[m, :] + pv
        only -= only[m].item()
        only[m] = float("-inf")
        res[m, m, m, 0] = only.max().item()
        if m > 0:
            qs = torch.arange(m)
            a = att[:, :, qs, m, m, 0]  # [2, 3, q]
            logits = (eupu[qs, :][None] + pv) + evou[m, :] * a[:, 0].unsqueeze(-1) \
                + evou[qs, :][None] * a[:, 2].unsqueeze(-1)  # [2, q, out]
            logits -= logits[:, :, m].unsqueeze(-1)
            logits[:, :, m] = float("-inf")
            res[qs, m, m, 0] = logits.amax(dim=(0, 2))
        e_tmp = eupu.clone()
        e_tmp[:, m] = float("-inf")
        eupu_q = e_tmp.max(dim=-1).values
        ep = evou + pv
        ep[:, m] = float("-inf")
        ep_k = ep.max(dim=-1).values
        if m == 0:
            continue
        for c in range(1, n):
            qs = torch.arange(m + 1) if c < n - 1 else torch.tensor([m])
            ks = torch.arange(m)
            a = att[:, :, qs[:, None], m, ks[None, :], c]  # [2, 3, q, k]
            v = (a[:, 0] * ep_k[m] + a[:, 2] * ep_k[qs][:, None]) + a[:, 1] * ep_k[ks][None, :]
            res[qs[:, None], m, ks[None, :], c] = eupu_q[qs][:, None] + v.max(dim=0).values
    return res


def cubic_count(lwl: torch.Tensor) -> int:
    """The paper's `count_correct_sequences_cubic`: per (q, m, c), the k < m whose bound is
    negative give C(n_ctx-1, c) (#k)^c inputs (c copies drawn from any of them)."""
    d, n = lwl.shape[0], lwl.shape[-1]
    neg = (lwl < 0)
    total = 0
    for m in range(d):
        for q in range(m + 1):
            for c in range(n):
                if q != m and c >= n - 1:
                    continue
                if c == 0:
                    total += int(neg[q, m, m, 0])
                else:
                    choices = int(neg[q, m, :m, c].sum())
                    total += math.comb(n - 1, c) * (choices ** c if choices > 0 else 0)
    return total


def run_faithful_cubic(t: PaperTables) -> FaithfulResult:
    """The paper's cubic proof (`verification/cubic.py`) on the model's float32 tables."""
    with torch.no_grad():
        e_q = t.W_E + t.W_pos[-1]
        eqke = (e_q @ t.W_Q) @ (t.W_E @ t.W_K).T
        eqkp = (e_q @ t.W_Q) @ (t.W_pos @ t.W_K).T
        eupu = (t.W_E + t.W_pos[-1][None, :]) @ t.W_U
        att = cubic_attention(eqke, eqkp, t.attn_scale)
        lwl = cubic_largest_wrong_logit(att, eupu, t.EVOU, t.PVOU)
        count = cubic_count(lwl)
    return FaithfulResult("cubic", count, t.W_E.shape[0] ** t.W_pos.shape[0], CUBIC_UNSOUND_STEPS,
                          torch.zeros(0))
