"""Random general TransformerLens-style models (numpy) and an independent high-precision
reference forward pass (mpmath, plain loops, written from TransformerLens 3.x's code, not
from certify.evaluation) giving exact-enough logits to count correct inputs."""

from __future__ import annotations

import itertools

import mpmath
import numpy as np

from certify.modelio.general import GeneralConfig, GeneralModel, expected_params


def make_config(**kw) -> GeneralConfig:
    base = dict(n_layers=1, n_heads=2, d_model=8, d_head=4, d_vocab=6, d_vocab_out=6, n_ctx=3, d_mlp=None,
                act_fn=None, normalization_type=None, eps=1e-5, causal=True, attn_scale=None,
                scale_by_layer=False, attn_soft_cap=None, logit_soft_cap=None)
    base.update(kw)
    if base["d_mlp"] is not None and base["act_fn"] is None:
        base["act_fn"] = "relu"
    return GeneralConfig(**base)


def random_model(cfg: GeneralConfig, seed: int, scale: float = 1.0, bias_scale: float = 0.3) -> GeneralModel:
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in expected_params(cfg).items():
        last = name.split(".")[-1]
        if last == "w":
            a = 1.0 + 0.2 * rng.standard_normal(shape)
        elif last.startswith("b"):
            a = bias_scale * rng.standard_normal(shape)
        else:
            a = scale * rng.standard_normal(shape) / np.sqrt(shape[-2] if len(shape) > 1 else 1)
        params[name] = a.astype(np.float32)
    return GeneralModel(cfg, params, "random", "test")


def all_inputs(d_vocab: int, n: int) -> np.ndarray:
    return np.array(list(itertools.product(range(d_vocab), repeat=n)), dtype=np.int64)


# --- the reference -----------------------------------------------------------------

def _mp(a) -> list:
    return [mpmath.mpf(float(x)) for x in np.asarray(a, dtype=np.float64).ravel()]


def _norm(x: list, kind, w, b, eps):
    if kind is None:
        return x
    d = len(x)
    if kind in ("LN", "LNPre"):
        mean = mpmath.fsum(x) / d
        x = [v - mean for v in x]
    scale = mpmath.sqrt(mpmath.fsum(v * v for v in x) / d + mpmath.mpf(repr(eps)))
    x = [v / scale for v in x]
    if kind in ("LN", "RMS"):
        x = [v * wi for v, wi in zip(x, w)]
    if kind == "LN":
        x = [v + bi for v, bi in zip(x, b)]
    return x


def _act(v, act):
    if act == "relu":
        return v if v > 0 else mpmath.mpf(0)
    if act == "gelu":
        return v * (1 + mpmath.erf(v / mpmath.sqrt(2))) / 2
    if act == "gelu_new":
        return v * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi) * (v + mpmath.mpf("0.044715") * v ** 3))) / 2
    if act == "silu":
        return v / (1 + mpmath.exp(-v))
    raise ValueError(act)


def _vecmat(x: list, W: np.ndarray, b=None) -> list:
    """x [d_in] @ W [d_in, d_out] (+ b)."""
    Wm = [[mpmath.mpf(float(W[i, j])) for j in range(W.shape[1])] for i in range(W.shape[0])]
    out = [mpmath.fsum(x[i] * Wm[i][j] for i in range(len(x))) for j in range(W.shape[1])]
    if b is not None:
        out = [o + mpmath.mpf(float(bb)) for o, bb in zip(out, b)]
    return out


def reference_logits(model: GeneralModel, tokens, position: int, dps: int = 60) -> list:
    """Logits at `position` by TransformerLens 3.x's forward, in mpmath at `dps` digits."""
    cfg, P = model.cfg, model.params
    with mpmath.workdps(dps):
        n = len(tokens)
        resid = [[mpmath.mpf(float(P["embed.W_E"][t, j])) + mpmath.mpf(float(P["pos_embed.W_pos"][i, j]))
                  for j in range(cfg.d_model)] for i, t in enumerate(tokens)]
        for layer in range(cfg.n_layers):
            p = f"blocks.{layer}."
            ln = lambda x, which: _norm(x, cfg.normalization_type, _mp(P.get(p + which + ".w", [])),  # noqa: E731
                                        _mp(P.get(p + which + ".b", [])), cfg.eps)
            xs = [ln(r, "ln1") for r in resid]
            heads_out = [[mpmath.mpf(0)] * cfg.d_model for _ in range(n)]
            for h in range(cfg.n_heads):
                q = [_vecmat(x, P[p + "attn.W_Q"][h], P[p + "attn.b_Q"][h]) for x in xs]
                k = [_vecmat(x, P[p + "attn.W_K"][h], P[p + "attn.b_K"][h]) for x in xs]
                v = [_vecmat(x, P[p + "attn.W_V"][h], P[p + "attn.b_V"][h]) for x in xs]
                div = mpmath.sqrt(cfg.d_head) if cfg.attn_scale is None else mpmath.mpf(cfg.attn_scale)
                if cfg.scale_by_layer:
                    div *= layer + 1
                for i in range(n):
                    keys = range(i + 1) if cfg.causal else range(n)
                    s = [mpmath.fsum(a * b for a, b in zip(q[i], k[j])) / div for j in keys]
                    if cfg.attn_soft_cap is not None:
                        c = mpmath.mpf(cfg.attn_soft_cap)
                        s = [c * mpmath.tanh(x / c) for x in s]
                    m = max(s)
                    e = [mpmath.exp(x - m) for x in s]
                    tot = mpmath.fsum(e)
                    z = [mpmath.fsum(e[jj] / tot * v[j][d] for jj, j in enumerate(keys)) for d in range(cfg.d_head)]
                    o = _vecmat(z, P[p + "attn.W_O"][h])
                    heads_out[i] = [a + b for a, b in zip(heads_out[i], o)]
            bO = _mp(P[p + "attn.b_O"])
            resid = [[r + o + b for r, o, b in zip(resid[i], heads_out[i], bO)] for i in range(n)]
            if cfg.d_mlp is not None:
                new = []
                for r in resid:
                    pre = _vecmat(ln(r, "ln2"), P[p + "mlp.W_in"], P[p + "mlp.b_in"])
                    out = _vecmat([_act(v, cfg.act_fn) for v in pre], P[p + "mlp.W_out"], P[p + "mlp.b_out"])
                    new.append([a + b for a, b in zip(r, out)])
                resid = new
        x = _norm(resid[position], cfg.normalization_type, _mp(P.get("ln_final.w", [])),
                  _mp(P.get("ln_final.b", [])), cfg.eps)
        logits = _vecmat(x, P["unembed.W_U"], P["unembed.b_U"])
        if cfg.logit_soft_cap is not None:
            c = mpmath.mpf(cfg.logit_soft_cap)
            logits = [c * mpmath.tanh(v / c) for v in logits]
        return logits


def reference_correct(model: GeneralModel, tokens, position: int, label: int, dps: int = 60) -> bool:
    """Correct iff the label's logit is strictly the largest (a tie within 10^-(dps-10) is wrong)."""
    logits = reference_logits(model, tokens, position, dps)
    with mpmath.workdps(dps):
        eps = mpmath.mpf(10) ** (-(dps - 10))
        return all(logits[label] - v > eps for j, v in enumerate(logits) if j != label)
