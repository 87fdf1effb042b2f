"""Loss proofs for the Max-of-K attention model: the exact mean (brute force, enclosed)
and compact upper bounds from the gap proof and the cubic proof.

Compact bounds. A proof family F certifies that on every input of F the label m beats
every other logit: l_m - l_j >= mu_F > 0 for all j != m, with mu_F a rigorous margin
lower bound (`gap_family_margins`, `cubic_family_margins`). Then
    loss = log(1 + sum_{j != m} exp(l_j - l_m)) <= log(1 + (d_vocab - 1) exp(-mu_F)).
Every input that no family certifies gets the same bound with the worst-case margin of
its (query q, max m): l_m - l_j = sum_i a_i (Y_im - Y_ij) with softmax weights a_i
(a convex combination), so l_m - l_j >= min_i (Y[q,i,t_i,m] - max_{j != m} Y[q,i,t_i,j])
>= min_{t <= m} dEV[t][m] + min_i dPV[i][m] + dEU[q][m] =: w(q, m) (`worst_case_margins`;
exact integers; w may be negative, and then log(1 + (d-1) e^-w) <= -w + log d).
The mean over all inputs adds these per-input bounds with the families' sizes, exactly.
"""

from __future__ import annotations

import time
from dataclasses import replace
from fractions import Fraction

import numpy as np

from ..lean.checker import (Ops, build_context, e_up, encode_cert, get_at, max_terms, path_tables as cert_tables,
                            query_term, terms_pre, validate)
from .bruteforce import UNDERFLOW_UNIT, AttentionTable, check_exhaustive_in_reach, float_tables
from .certificate import search_gaps
from .exact import Dyadic, PathTables
from .loss import Enclosure, LossResult, enclose_sum, log1p_exp_neg_upper, loss_from_logits

U = 2.0 ** -53
LOSS_BLOCK = 1 << 14  # inputs per vectorised block (a [block, d_vocab] logit array)


def head_length(d_vocab: int, n_ctx: int, block: int = LOSS_BLOCK) -> int:
    """h: the first h tokens are looped over, the rest (at most ~block inputs) vectorised."""
    h = 0
    while n_ctx - h > 1 and d_vocab ** (n_ctx - h) > block:
        h += 1
    return h


def input_blocks(d_vocab: int, n_ctx: int, block: int = LOSS_BLOCK):
    """All d_vocab^K inputs, lexicographically, as int64 arrays [n, K] of at most ~block rows
    (d_vocab^h of them, h = head_length)."""
    h = head_length(d_vocab, n_ctx, block)
    tail = np.indices([d_vocab] * (n_ctx - h)).reshape(n_ctx - h, -1).T
    for head in np.ndindex(*([d_vocab] * h)):
        yield np.concatenate([np.broadcast_to(np.array(head, dtype=np.int64), (len(tail), h)), tail], axis=1)


def bruteforce_loss(tables: PathTables, progress: bool = False) -> LossResult:
    """The mean loss over every input, enclosed (float64 with an a-priori error bound).

    Logit error (per input): the attention weights are upper bounds v_i with true values
    (times a common factor) in [v_i (1 - rho), v_i], so the softmax weights a_i are within
    1.01 rho a~_i and sum_i |a_i - a~_i| |Y_ij| <= 1.01 rho B; the float Y is within
    4.04 u B of the exact table; evaluating sum_i v_i Y_ij / sum_i v_i costs (2K + 3) u B
    1.01; products that underflow add (K + 2) 2^-1074 / Z~. In all
    delta = B (1.02 rho + (2K + 10) u) + (K + 2) 2^-1073 / Z~ (B = max|EVOU| + max|PVOU| +
    max|EUPU|, rounded up). `loss_from_logits` turns it into each input's loss error.
    """
    d, K = tables.PVOU.shape[1], tables.PVOU.shape[0]
    check_exhaustive_in_reach(d, K)
    t0 = time.perf_counter()
    ft = float_tables(tables)
    att = ft.att
    rescale = att.needs_rescaling
    value = None if rescale else att.value
    base_delta = ft.B * (1.02 * att.rho + (2 * K + 10) * U)
    losses, errs = [], []
    flops = ft.flops
    from ..progress import steps
    for toks in steps(input_blocks(d, K), "exact mean loss", progress, total=d ** head_length(d, K),
                      unit="block"):
        q, m = toks[:, -1], toks.max(axis=1)
        if rescale:
            mants = [att.mant[q, i, toks[:, i]] for i in range(K)]
            expos = [att.expo[q, i, toks[:, i]] for i in range(K)]
            top = np.maximum.reduce(expos)
            v = [AttentionTable.scaled(mt, ex, top) for mt, ex in zip(mants, expos)]
        else:
            v = [value[q, i, toks[:, i]] for i in range(K)]
        Z = np.sum(v, axis=0)
        L = sum(v[i][:, None] * ft.Y_rows(i, toks[:, i], q) for i in range(K))
        logits = L / Z[:, None]
        delta = base_delta + (K + 2) * 2 * UNDERFLOW_UNIT / Z
        loss, err = loss_from_logits(logits, m, delta)
        losses.append(loss)
        errs.append(err)
        flops += len(toks) * d * (2 * K + 40)
    total = d ** K
    s = enclose_sum(np.concatenate(losses), np.concatenate(errs))
    if s is None:
        raise ArithmeticError("the float sum of the per-input losses has no finite error bound")
    exact = Enclosure(s.lo / total, s.hi / total)
    return LossResult("bruteforce", exact.hi, exact.lo, flops, time.perf_counter() - t0, exact=exact)


# ------------------------------------------------------------------ worst-case margins
def margin_table(X: Dyadic) -> tuple[list[list[int]], int]:
    """dX[r][m] = X[r,m] - max_{j != m} X[r,j] exactly (integers at the scale 2^exp)."""
    out = []
    for row in X.ints:
        row = [int(v) for v in row]
        top = max(row)
        second = max(row[:row.index(top)] + row[row.index(top) + 1:])
        out.append([v - (second if v == top else top) for v in row])
    return out, X.exp


def worst_case_margins(tables: PathTables) -> list[list[Fraction]]:
    """w[q][m] <= l_m - l_j for every input with query q, max m, every j != m (module
    docstring); exact rationals (q <= m only; other entries are unused)."""
    e = min(tables.EVOU.exp, tables.PVOU.exp, tables.EUPU.exp)
    dEV, _ = margin_table(tables.EVOU.align(e))
    dPV, _ = margin_table(tables.PVOU.align(e))
    dEU, _ = margin_table(tables.EUPU.align(e))
    d = len(dEV)
    scale = Fraction(2) ** e
    pv_min = [min(r[m] for r in dPV) for m in range(d)]
    out = [[Fraction(0)] * d for _ in range(d)]
    for m in range(d):
        ev_min = min(dEV[t][m] for t in range(m + 1))
        for q in range(m + 1):
            out[q][m] = (ev_min + pv_min[m] + dEU[q][m]) * scale
    return out


def inputs_of(q: int, m: int, K: int) -> int:
    """Inputs with last token q and max m (q <= m): free tokens <= m, at least one m if q < m."""
    return (m + 1) ** (K - 1) - (m ** (K - 1) if q < m else 0)


def compact_loss(name: str, d: int, K: int, worst: list[list[Fraction]],
                 families: dict[tuple[int, int], tuple[int, Fraction | None]], flops: int,
                 seconds: float, exact: Enclosure | None) -> LossResult:
    """Mean of the per-input bounds: each family's inputs at its margin, the rest of each
    (q, m) at the worst case (module docstring). Exact rational sums."""
    t0 = time.perf_counter()
    total = Fraction(0)
    certified = 0
    for m in range(d):
        for q in range(m + 1):
            size, mu = families.get((q, m), (0, None))
            rest = inputs_of(q, m, K) - size
            w = worst[q][m]
            if size:
                total += size * log1p_exp_neg_upper(max(mu, w), d)
                certified += size
            if rest:
                total += rest * log1p_exp_neg_upper(w, d)
    upper = total / d ** K
    return LossResult(name, upper, None, flops, seconds + time.perf_counter() - t0, exact=exact,
                      detail={"certified_inputs": certified, "total": d ** K})


# ------------------------------------------------------------------ the gap proof
def gap_family_margins(cert) -> dict[tuple[int, int], tuple[int, Fraction | None]]:
    """For each (q, m) whose family F(q, m, s) the checker accepts (s from the witness),
    its size and a margin lower bound mu = LB / Zmax 2^(-4 weight_shift).

    LB: the worst-placement value the checker compares with 0 (`worst_placement_ok`:
    Q + sum_i min(A_i, B_i) + c_min max(0, min_i (A_i - B_i)), from the same terms
    `query_term`, `max_terms`, `terms_pre` with their offsets T removed), a lower bound
    of sum_i e_i w_i <= Z (l_m - l_j) on every input of the family, so positive for an
    accepted family. Zmax >= Z = sum_i e_i on every input of the family: the query's
    q_e.hi plus, per free position, its position factor's upper bound times the larger of
    the token factors' upper bounds for m (e_up(ref - EQKE[q][m])) and for the tokens
    <= s (e_up(ref - max_{t <= s} EQKE[q][t]): exp is increasing). Both in the checker's
    fixed point (terms and weights at 2^-512), so l_m - l_j >= LB / Zmax at the weights'
    scale 2^(-4 weight_shift). The checker's functions are called, not changed.
    """
    from ..lean.checker import family_size
    data = encode_cert(cert)
    validate(data)
    ops = Ops()
    ctx = build_context(data, cert_tables(data, ops), ops)
    sc = ctx.scoring
    T = sc.t_off
    scale = Fraction(1, 1 << (4 * data.weight_shift))
    d, K = cert.d_vocab, cert.n_ctx
    out: dict[tuple[int, int], tuple[int, Fraction | None]] = {}
    for q in range(d):
        qi = ctx.queries[q]
        for m in range(q, d):
            g = cert.gaps[q][m] + 2
            if g == 0:
                continue
            mi = ctx.maxes[m]
            total = query_term(ctx.dEV[q][m] + mi.dPV_q + ctx.dEU[q][m], qi, sc, ops)
            A = max_terms(ctx.eqke[q][m], ctx.dEU[q][m], qi, mi, sc, ops)
            e_m = e_up(sc, qi.ref - ctx.eqke[q][m], ops)
            if g == 1:
                lb = total + sum(A) - sc.t_k
                zmax = qi.q_e.hi + sum(e_m * b.hi for b in qi.pos_e)
            else:
                bit = (g - 2) * (sc.width + 1)
                t_hi = e_up(sc, qi.ref - get_at(qi.pmax, bit, ops), ops)
                B = terms_pre(qi.pos_tlo, lambda: t_hi, get_at(mi.pm_dEV, bit, ops) + ctx.dEU[q][m], qi.pos_e,
                              mi.dPV, sc, ops)
                lb = total + sum(min(a, b) for a, b in zip(A, B)) - (1 + len(A)) * T
                if q < m:
                    lb += max(min(a + T - b for a, b in zip(A, B)), T) - T
                zmax = qi.q_e.hi + sum(b.hi * max(e_m, t_hi) for b in qi.pos_e)
            if lb <= 0:  # the checker would reject this family: a witness bug, never a bound
                raise AssertionError(f"family ({q}, {m}) of the witness does not check")
            out[(q, m)] = (family_size(q, m, g, K, ops), Fraction(lb, zmax) * scale)
    return out


def gap_loss(p, name: str = "subcubic", exact: Enclosure | None = None) -> LossResult:
    """The gap proof's loss bound: its witness (searched as for accuracy), each accepted
    family at its margin, the rest at the worst case."""
    t0 = time.perf_counter()
    cert = p.cert()
    cert = replace(cert, gaps=search_gaps(cert).gaps)
    families = gap_family_margins(cert)
    worst = worst_case_margins(p.tables)
    d, K = p.cfg.d_vocab, p.cfg.n_ctx
    flops = 3 * d * d * (p.cfg.d_model + K)
    return compact_loss(name, d, K, worst, families, flops, time.perf_counter() - t0, exact)


# ------------------------------------------------------------------ the cubic proof
def cubic_family_margins(tables: PathTables, sets: dict[tuple[int, int], list[int]]
                         ) -> dict[tuple[int, int], tuple[int, Fraction | None]]:
    """For each (q, m) with the cubic witness S (non-max tokens), its family size and a
    margin lower bound LB / Zmax.

    LB: the cubic proof's worst placement over the family (strategies.py docstring:
    Q + sum_i min_{t in S} b_i(t) + the c smallest (A_i - Bmin_i), minimised over the
    feasible c) in float64, minus the threshold thr that bounds its float error; so LB <=
    sum_i e_i G[q,i,t_i,m] <= Z (l_m - l_j) exactly (weights v in the family's scale).
    Zmax = v_q + sum_i max_{t in S u {m}} v_i(t) (+ 2^-1074 per term for rescaled weights
    that underflow) >= Z, the v being upper bounds. Taken as exact rationals of the floats.
    """
    ft = float_tables(tables)
    att = ft.att
    K = ft.EP.shape[0]
    free = K - 1
    kappa = K * ft.B * (2 * att.rho + (32 * K + 32) * U)
    slack = 8.0 * (K + 1) * (2 * ft.B + 1) * UNDERFLOW_UNIT
    v = None if att.needs_rescaling else att.value
    out = {}
    Gq, q_of_Gq = None, None
    for (q, m), S in sorted(sets.items()):
        if q != q_of_Gq:  # one query's slice of G at a time (O(d^2 K) memory)
            Gq, q_of_Gq = ft.G(q), q
        if v is None:
            top = max(int(att.expo[q, K - 1, q]), int(att.expo[q, :free, : m + 1].max()))
            vq = float(AttentionTable.scaled(att.mant[q, K - 1, q], att.expo[q, K - 1, q], top))
            vf = AttentionTable.scaled(att.mant[q, :free, : m + 1], att.expo[q, :free, : m + 1], top)
        else:
            vq, vf = float(v[q, K - 1, q]), v[q, :free, : m + 1]
        thr = kappa * max(vq, float(vf.max())) + slack
        Q = vq * Gq[K - 1, q, m]
        A = vf[:, m] * Gq[:free, m, m]
        n = len(S)
        if n:
            bmin = (vf[:, S] * Gq[:free, S, m]).min(axis=1) if free else np.zeros(0)
            diffs = np.sort(A - bmin)
            partial = Q + bmin.sum() + np.concatenate([[0.0], np.cumsum(diffs)])
            c_min = 1 if q < m else 0
            lb_float = float(partial[c_min:].min())
            ztok = np.maximum(vf[:, m], vf[:, S].max(axis=1))
        else:
            lb_float = float(Q + A.sum())
            ztok = vf[:, m]
        lb = Fraction(lb_float) - Fraction(thr)
        if lb <= 0:
            raise AssertionError(f"cubic family ({q}, {m}) is not certified")
        zmax = Fraction(vq) + sum(Fraction(float(x)) for x in ztok) + K * Fraction(UNDERFLOW_UNIT)
        size = (n + 1) ** free - (n ** free if q < m else 0)
        out[(q, m)] = (size, lb / zmax)
    return out


def cubic_loss(p, exact: Enclosure | None = None) -> LossResult:
    from .strategies import run_cubic
    t0 = time.perf_counter()
    r = run_cubic(p)
    families = cubic_family_margins(p.tables, r.witness)
    worst = worst_case_margins(p.tables)
    return compact_loss("cubic", p.cfg.d_vocab, p.cfg.n_ctx, worst, families, r.flops,
                        time.perf_counter() - t0, exact)


# ------------------------------------------------------------------ registry
def _gap_name() -> str:
    """The registry's name of the Lean-checked gap proof ('gap' once renamed, else 'subcubic')."""
    from .strategies import STRATEGIES
    return "gap" if "gap" in STRATEGIES else "subcubic"


def loss_strategy_names() -> list[str]:
    return ["bruteforce", "cubic", _gap_name()]


def resolve_loss(names: str) -> list[str]:
    """'all', one name or a comma list of loss proofs ('subcubic' and 'gap' name the gap proof)."""
    known = loss_strategy_names()
    if names == "all":
        return known
    out = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in out if n not in known and n not in ("gap", "subcubic")]
    if unknown or not out:
        raise ValueError(f"no loss proof named {', '.join(unknown) or names!r}; loss proofs: {', '.join(known)}, all")
    return out


def prove_loss_many(cfg, weights, names: list[str], on_error: str = "raise", progress: bool = False
                    ) -> list[LossResult]:
    """Loss proofs for one Max-of-K model; the brute force (when in reach, d^K <= 2^31) is
    run once and gives every result its exact mean, hence its ratio."""
    from .bruteforce import EXHAUSTIVE_MAX
    from .exact import path_tables
    from .strategies import ProofInput
    p = ProofInput(cfg, weights, path_tables(weights), None)
    exact_result: LossResult | Exception | None = None
    if cfg.d_vocab ** cfg.n_ctx <= EXHAUSTIVE_MAX:
        try:
            exact_result = bruteforce_loss(p.tables, progress)
        except Exception as err:  # noqa: BLE001 - the brute force's own failure; the others still run
            if on_error == "raise":
                raise
            exact_result = err
    exact = exact_result.exact if isinstance(exact_result, LossResult) else None

    def brute() -> LossResult | None:
        if isinstance(exact_result, Exception):
            raise exact_result
        return exact_result
    runs = {"bruteforce": brute, "cubic": lambda: cubic_loss(p, exact),
            "gap": lambda: gap_loss(p, "gap", exact), "subcubic": lambda: gap_loss(p, "subcubic", exact)}
    out = []
    from ..progress import steps
    for name in steps(names, "loss proofs", progress, unit="proof"):
        try:
            r = runs[name]()
            if r is None:
                raise ValueError(f"{cfg.d_vocab}^{cfg.n_ctx} inputs are out of reach for the brute force")
            out.append(r)
        except Exception as err:  # noqa: BLE001 - recorded per strategy, re-raised on request
            if on_error == "raise":
                raise
            out.append(LossResult.failed(name, f"{type(err).__name__}: {err}"))
    return out
