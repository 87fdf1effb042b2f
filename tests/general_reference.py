"""A float64 numpy forward pass of TransformerLens models, written from TL's sources.

Independent of certify's general evaluator (issue 21): it exists to check that the
conventions stated in tests/fixtures/general/FORMATS.md are complete, i.e. that the
weights + config of every fixture determine TL's own float64 logits. numpy only
(no torch, no TransformerLens), so CI can run it.

Weights are first mapped to one canonical, TL-3.x-like layout (``canonical_weights``):
per layer W_Q/W_K/W_V [n_heads, d_model, d_head], W_O [n_heads, d_head, d_model],
W_in [d_model, d_mlp], W_out [d_mlp, d_model]; W_U [d_model, d_vocab_out].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Arithmetic:
    """The number type of a forward pass: float64, or mpmath at high precision (object arrays)."""

    convert: object  # float64 array -> array of this arithmetic (exact)
    sqrt: object
    exp: object
    tanh: object
    erf: object
    sqrt_int: object  # sqrt of a Python int, in this arithmetic
    pi: object


FLOAT64 = Arithmetic(
    convert=lambda a: np.asarray(a, dtype=np.float64), sqrt=np.sqrt, exp=np.exp, tanh=np.tanh,
    erf=np.vectorize(math.erf, otypes=[np.float64]), sqrt_int=math.sqrt, pi=math.pi)


def mpmath_arithmetic(dps: int = 50) -> Arithmetic:
    """mpmath at dps decimal digits: the near-tie oracle (every float64 weight converts exactly)."""
    import mpmath

    ctx = mpmath.mp.clone()
    ctx.dps = dps

    def vec(f):
        u = np.frompyfunc(f, 1, 1)
        return lambda a: u(a)

    return Arithmetic(convert=vec(ctx.mpf), sqrt=vec(ctx.sqrt), exp=vec(ctx.exp),
                      tanh=vec(ctx.tanh), erf=vec(ctx.erf), sqrt_int=lambda n: ctx.sqrt(n),
                      pi=+ctx.pi)


@dataclass(frozen=True)
class Semantics:
    """What the config means for the forward pass, resolved per TL major version."""

    n_layers: int
    n_heads: int
    d_head: int
    attn_only: bool
    block_norm: str | None  # None, "LN", "LNPre", "RMS", "RMSPre"
    final_norm: str | None
    eps: float
    attn_divisor: float  # scores = q.k / attn_divisor (unless divisor_is_sqrt_d_head)
    divisor_is_sqrt_d_head: bool  # 4.x default: the real sqrt(d_head), not a config float
    divisor_times_layer: bool  # 3.x scale_attn_by_inverse_layer_idx: layer i divides by (i + 1) too
    causal: bool
    act_fn: str
    attn_soft_cap: float  # <= 0: off
    logit_soft_cap: float  # <= 0: off


def semantics(cfg: dict, tl_major: int) -> Semantics:
    """Resolve a TL config dict (cfg.to_dict() as saved) into forward-pass semantics.

    3.x (HookedTransformer): scores / cfg.attn_scale if use_attn_scale else / 1;
    ln_final is RMS/RMSPre for RMS/RMSPre, and for LN/LNPre it is LN/LNPre unless
    final_rms (then RMS/RMSPre); none without normalization.
    4.x (boot_native NativeModel): scores / attn_scale if use_attn_scale and attn_scale > 0,
    else / sqrt(d_head) (so use_attn_scale=False still divides by sqrt(d_head));
    the final norm is RMS (RMSPre for the parameter-free types) whenever final_rms,
    even with normalization_type None.
    """
    norm = cfg["normalization_type"]
    d_head = int(cfg["d_head"])
    if tl_major == 3:
        divisor = float(cfg["attn_scale"]) if cfg["use_attn_scale"] else 1.0
        is_sqrt = False
        final = {"RMS": "RMS", "RMSPre": "RMSPre", None: None}.get(norm)
        if norm == "LN":
            final = "RMS" if cfg["final_rms"] else "LN"
        elif norm == "LNPre":
            final = "RMSPre" if cfg["final_rms"] else "LNPre"
    else:
        scale = float(cfg["attn_scale"])
        is_sqrt = not (cfg["use_attn_scale"] and scale > 0)
        divisor = math.sqrt(d_head) if is_sqrt else scale
        if cfg["final_rms"] or norm in ("RMS", "RMSPre"):
            final = "RMSPre" if norm in ("RMSPre", "LNPre") else "RMS"
        else:
            final = norm
    return Semantics(
        n_layers=int(cfg["n_layers"]), n_heads=int(cfg["n_heads"]), d_head=d_head,
        attn_only=bool(cfg["attn_only"]), block_norm=norm, final_norm=final,
        eps=float(cfg["eps"]), attn_divisor=divisor, divisor_is_sqrt_d_head=is_sqrt,
        divisor_times_layer=tl_major == 3 and bool(cfg.get("scale_attn_by_inverse_layer_idx", False)),
        causal=cfg["attention_dir"] == "causal", act_fn=cfg["act_fn"],
        attn_soft_cap=float(cfg["attn_scores_soft_cap"] or -1.0),
        logit_soft_cap=float(cfg["output_logits_soft_cap"] or -1.0),
    )


def canonical_weights(sd: dict, cfg: dict, tl_major: int) -> dict:
    """Map a 3.x HookedTransformer or 4.x TransformerBridge state dict to the canonical layout."""
    f = {n: np.asarray(t, dtype=np.float64) for n, t in sd.items()}
    n_layers, n_heads, d_head = int(cfg["n_layers"]), int(cfg["n_heads"]), int(cfg["d_head"])
    w: dict = {}
    if tl_major == 3:
        w["W_E"], w["W_pos"] = f["embed.W_E"], f["pos_embed.W_pos"]
        w["W_U"], w["b_U"] = f["unembed.W_U"], f["unembed.b_U"]
        for i in range(n_layers):
            p = f"blocks.{i}."
            for n in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
                w[f"{i}.{n}"] = f[p + "attn." + n]
            for n in ("W_in", "b_in", "W_out", "b_out"):
                if p + "mlp." + n in f:
                    w[f"{i}.{n}"] = f[p + "mlp." + n]
            for ln in ("ln1", "ln2"):
                for n in ("w", "b"):
                    if f"{p}{ln}.{n}" in f:
                        w[f"{i}.{ln}.{n}"] = f[f"{p}{ln}.{n}"]
        for n in ("w", "b"):
            if f"ln_final.{n}" in f:
                w[f"ln_final.{n}"] = f[f"ln_final.{n}"]
        return w
    # 4.x bridge: nn.Linear weights [out, in]; heads concatenated head-major (h*d_head + j).
    w["W_E"], w["W_pos"] = f["embed.weight"], f["pos_embed.weight"]
    w["W_U"] = f["unembed.weight"].T
    w["b_U"] = f.get("unembed.bias", np.zeros(w["W_U"].shape[1]))
    d_model = w["W_E"].shape[1]
    for i in range(n_layers):
        p = f"blocks.{i}."
        for n, key in (("Q", "q"), ("K", "k"), ("V", "v")):
            wt = f[p + f"attn.{key}.weight"]  # [n_heads*d_head, d_model]
            w[f"{i}.W_{n}"] = wt.reshape(n_heads, d_head, d_model).transpose(0, 2, 1)
            w[f"{i}.b_{n}"] = f[p + f"attn.{key}.bias"].reshape(n_heads, d_head)
        wo = f[p + "attn.o.weight"]  # [d_model, n_heads*d_head]
        w[f"{i}.W_O"] = wo.T.reshape(n_heads, d_head, d_model)
        w[f"{i}.b_O"] = f[p + "attn.o.bias"]
        if p + "mlp.in.weight" in f:
            w[f"{i}.W_in"] = f[p + "mlp.in.weight"].T
            w[f"{i}.b_in"] = f[p + "mlp.in.bias"]
            w[f"{i}.W_out"] = f[p + "mlp.out.weight"].T
            w[f"{i}.b_out"] = f[p + "mlp.out.bias"]
        for ln in ("ln1", "ln2"):
            for n, key in (("w", "weight"), ("b", "bias")):
                if f"{p}{ln}.{key}" in f:
                    w[f"{i}.{ln}.{n}"] = f[f"{p}{ln}.{key}"]
    for n, key in (("w", "weight"), ("b", "bias")):
        if f"ln_final.{key}" in f:
            w[f"ln_final.{n}"] = f[f"ln_final.{key}"]
    return w


def _norm(x, kind: str | None, eps, ar: Arithmetic, w=None, b=None):
    """LN: (x - mean) / sqrt(mean((x - mean)^2) + eps) * w + b; RMS: x / sqrt(mean(x^2) + eps) * w."""
    if kind is None:
        return x
    if kind in ("LN", "LNPre"):
        x = x - x.mean(-1, keepdims=True)
    x = x / ar.sqrt((x * x).mean(-1, keepdims=True) + eps)
    if kind in ("LN", "RMS"):
        x = x * w
    if kind == "LN":
        x = x + b
    return x


def _act(x, name: str, ar: Arithmetic):
    if name == "relu":
        return np.where(x > 0, x, 0 * x)
    if name == "gelu":  # erf form
        return x * (1 + ar.erf(x / ar.sqrt_int(2))) / 2
    if name == "gelu_new":  # tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        c = ar.sqrt(2 / ar.pi)
        return x * (1 + ar.tanh(c * (x + ar.convert(np.array(0.044715)) * x * x * x))) / 2
    if name == "silu":
        return x / (1 + ar.exp(-x))
    raise ValueError(f"act_fn={name!r} not modelled")


def _soft_cap(x, cap: float, ar: Arithmetic):
    return cap * ar.tanh(x / cap) if cap > 0 else x


def forward(w: dict, sem: Semantics, tokens: np.ndarray, ar: Arithmetic = FLOAT64):
    """Logits [batch, n_ctx, d_vocab_out] for integer tokens [batch, n_ctx], in arithmetic ar."""
    w = {n: ar.convert(t) for n, t in w.items()}
    eps = ar.convert(np.array(sem.eps))
    divisor = (ar.sqrt_int(sem.d_head) if sem.divisor_is_sqrt_d_head
               else ar.convert(np.array(sem.attn_divisor)))
    n = tokens.shape[1]
    resid = w["W_E"][tokens] + w["W_pos"][:n]
    keep = ~np.triu(np.ones((n, n), dtype=bool), k=1) if sem.causal else np.ones((n, n), bool)
    for i in range(sem.n_layers):
        x = _norm(resid, sem.block_norm, eps, ar, w.get(f"{i}.ln1.w"), w.get(f"{i}.ln1.b"))
        q = np.einsum("bpd,hde->bhpe", x, w[f"{i}.W_Q"]) + w[f"{i}.b_Q"][None, :, None, :]
        k = np.einsum("bpd,hde->bhpe", x, w[f"{i}.W_K"]) + w[f"{i}.b_K"][None, :, None, :]
        v = np.einsum("bpd,hde->bhpe", x, w[f"{i}.W_V"]) + w[f"{i}.b_V"][None, :, None, :]
        # 3.x: attn_scale *= layer_id + 1, one float (TL rounds the product; exact here for small i)
        layer_divisor = divisor * ar.convert(np.array(float(i + 1))) if sem.divisor_times_layer else divisor
        scores = _soft_cap(np.einsum("bhqe,bhke->bhqk", q, k) / layer_divisor, sem.attn_soft_cap, ar)
        # softmax over the kept keys: masked entries get exp(...) * 0 (the -inf of the mask)
        floor = scores.min()
        scores = np.where(keep, scores, floor)
        pattern = ar.exp(scores - scores.max(-1, keepdims=True)) * keep
        pattern = pattern / pattern.sum(-1, keepdims=True)
        z = np.einsum("bhqk,bhke->bhqe", pattern, v)
        resid = resid + np.einsum("bhqe,hed->bqd", z, w[f"{i}.W_O"]) + w[f"{i}.b_O"]
        if not sem.attn_only:
            x = _norm(resid, sem.block_norm, eps, ar, w.get(f"{i}.ln2.w"), w.get(f"{i}.ln2.b"))
            pre = x @ w[f"{i}.W_in"] + w[f"{i}.b_in"]
            resid = resid + _act(pre, sem.act_fn, ar) @ w[f"{i}.W_out"] + w[f"{i}.b_out"]
    x = _norm(resid, sem.final_norm, eps, ar, w.get("ln_final.w"), w.get("ln_final.b"))
    return _soft_cap(x @ w["W_U"] + w["b_U"], sem.logit_soft_cap, ar)


def readout_logits(sd: dict, cfg: dict, tl_major: int, tokens: np.ndarray,
                   positions: np.ndarray, ar: Arithmetic = FLOAT64) -> np.ndarray:
    """Logits [N, d_vocab_out] at each input's readout position (float64, or ar's objects)."""
    w = canonical_weights(sd, cfg, tl_major)
    logits = forward(w, semantics(cfg, tl_major), tokens, ar)
    return logits[np.arange(tokens.shape[0]), positions]


def exact_correct(sd: dict, cfg: dict, tl_major: int, tokens: np.ndarray, positions: np.ndarray,
                  labels: np.ndarray, dps: int = 50) -> np.ndarray:
    """Per input: label logit strictly above all others, decided with mpmath at dps digits.

    The model is taken in real arithmetic (every norm exact, even where TL 4.x rounds RMSNorm
    to float32); structural ties (equal W_U columns) stay exactly equal."""
    logits = readout_logits(sd, cfg, tl_major, tokens, positions, mpmath_arithmetic(dps))
    return np.array([all(row[lab] > row[j] for j in range(len(row)) if j != lab)
                     for row, lab in zip(logits, labels)], dtype=bool)
