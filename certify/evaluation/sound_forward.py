"""The whole TransformerLens forward pass, soundly, for a batch of inputs.

One implementation of the forward pass, written against a `Backend` (the number type):
`FloatIntervals` (outward-rounded float64 `Iv`, batched over inputs, fast) and
`Balls` (python-flint arb balls at a chosen precision, one input at a time, for the
inputs whose float intervals cannot decide the argmax). Every value encloses the exact
real-number value of the model with the given float32 weights; the semantics is
TransformerLens 3.x's (HookedTransformer.forward), with constants exact:
attention scores divided by exactly sqrt(d_head) (or the configured divisor, times
layer + 1 with scale_attn_by_inverse_layer_idx); eps, soft caps and the divisor are the
config's float64 values; gelu_new's 0.044715 and sqrt(2/pi) are the real constants.

Per layer: resid += sum_h softmax(mask(cap(q_h k_h^T / scale))) v_h W_O[h] + b_O with
q_h = ln1(resid) W_Q[h] + b_Q[h] (k, v alike); then resid += act(ln2(resid) W_in + b_in)
W_out + b_out; logits = cap(ln_final(resid) W_U + b_U) at the readout position. In the
last layer only the readout positions' queries and MLP are computed (the logits there
depend on nothing else).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..modelio.general import GeneralConfig, GeneralModel
from ..proofs.sound_linalg import Iv, down, inv_sqrt_interval, matmul, up
from . import enclosures as enc


class FloatIntervals:
    """Outward-rounded float64 intervals (`Iv`), arrays with a leading batch axis."""

    def const(self, a: np.ndarray) -> Iv:
        return Iv.point(np.asarray(a, dtype=np.float64))

    def scalar(self, lo: float, hi: float) -> Iv:
        return Iv(np.float64(lo), np.float64(hi))

    def inv_sqrt(self, d: int) -> Iv:
        return inv_sqrt_interval(d)

    def recip_int(self, m: int) -> Iv:
        return enc.recip_int(m)

    def recip_float(self, f: float) -> Iv:
        return enc.divide_positive(Iv.point(np.float64(1.0)), Iv.point(np.float64(f)))

    def decimal(self, x: float) -> Iv:
        return enc.point_const(x)

    def decimal_exact(self, f: float) -> Iv:
        return Iv.point(np.float64(f))

    def sqrt_two_over_pi(self) -> Iv:
        return enc.SQRT_TWO_OVER_PI

    def matmul(self, a: Iv, b: Iv) -> Iv:
        return matmul(a, b)

    def transpose(self, a: Iv) -> Iv:
        return Iv(np.swapaxes(a.lo, -1, -2), np.swapaxes(a.hi, -1, -2))

    def sum(self, a: Iv, axis: int, keepdims: bool = False) -> Iv:
        s = a.sum(axis=axis)
        return Iv(np.expand_dims(s.lo, axis), np.expand_dims(s.hi, axis)) if keepdims else s

    def take(self, a: Iv, index: Any) -> Iv:
        return a[index]

    def expand(self, a: Iv, axis: int) -> Iv:
        return Iv(np.expand_dims(a.lo, axis), np.expand_dims(a.hi, axis))

    square, rsqrt, relu = staticmethod(enc.isquare), staticmethod(enc.rsqrt_positive), staticmethod(enc.irelu)
    tanh, erf, sigmoid = staticmethod(enc.itanh), staticmethod(enc.ierf), staticmethod(enc.isigmoid)

    def softmax(self, s: Iv, keep: np.ndarray) -> Iv:
        """softmax over the last axis; entries where `keep` is False get weight exactly 0.
        p_i = e_i / (e_i + R_i), R_i = sum_{j != i} e_j: increasing in e_i, decreasing in R_i,
        so p in [e_lo / (e_lo + R_hi), e_hi / (e_hi + R_lo)] (no dependency loss)."""
        keep = np.broadcast_to(keep, s.lo.shape)
        m = np.max(np.where(keep, s.hi, -np.inf), axis=-1, keepdims=True)
        shifted = s - Iv.point(m)
        e = enc.iexp(shifted)
        e = Iv(np.where(keep, e.lo, 0.0), np.where(keep, e.hi, 0.0))
        tot = e.sum(axis=-1)
        s_lo, s_hi = tot.lo[..., None], tot.hi[..., None]
        r_lo = np.maximum(down(s_lo - e.lo), 0.0)
        r_hi = up(s_hi - e.hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            p_lo = down(e.lo / up(e.lo + r_hi))
            p_hi = up(e.hi / down(e.hi + r_lo))
        p_lo = np.where(keep, np.clip(np.nan_to_num(p_lo, nan=0.0), 0.0, 1.0), 0.0)
        p_hi = np.where(keep, np.clip(np.nan_to_num(p_hi, nan=1.0), 0.0, 1.0), 0.0)
        return Iv(p_lo, p_hi)


def layer_norm(be, x, kind: str | None, w, b, eps: float, d: int):
    """TransformerLens LayerNorm / LNPre / RMSNorm / RMSPre over the last axis:
    LN: (x - mean x) / sqrt(mean (x - mean x)^2 + eps) * w + b; RMS: x / sqrt(mean x^2 + eps) * w."""
    if kind is None:
        return x
    inv_d = be.recip_int(d)
    if kind in ("LN", "LNPre"):
        x = x - be.sum(x, -1, keepdims=True) * inv_d
    var = be.sum(be.square(x), -1, keepdims=True) * inv_d + be.decimal(eps)
    x = x * be.rsqrt(var)
    if kind in ("LN", "RMS"):
        x = x * w
    if kind == "LN":
        x = x + b
    return x


def activation(be, x, act: str):
    if act == "relu":
        return be.relu(x)
    if act == "gelu":  # x Phi(x) = x/2 (1 + erf(x / sqrt 2))
        return x * (be.erf(x * be.inv_sqrt(2)) + 1.0) * 0.5
    if act == "gelu_new":  # x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        inner = (x + x * x * x * be.decimal(0.044715)) * be.sqrt_two_over_pi()
        return x * (be.tanh(inner) + 1.0) * 0.5
    if act == "silu":
        return x * be.sigmoid(x)
    raise ValueError(f"act_fn {act!r} is not modelled")


def soft_cap(be, x, cap: float | None):
    """cap * tanh(x / cap) (TransformerLens applies it when cap > 0)."""
    if cap is None:
        return x
    return be.tanh(x * be.recip_float(cap)) * be.decimal_exact(cap)


def forward_logits(be, model: GeneralModel, params: dict, tokens: np.ndarray, positions: np.ndarray):
    """Enclosures of the logits [B, d_vocab_out] at `positions` [B] of `tokens` [B, n].
    `params` are the model's parameters as backend constants (`backend_params`)."""
    cfg = model.cfg
    B, n = tokens.shape
    P = params
    resid = be.take(P["embed.W_E"], tokens) + be.take(P["pos_embed.W_pos"], slice(0, n))  # [B, n, dm]
    rows = np.arange(B)
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        last = layer == cfg.n_layers - 1
        x = layer_norm(be, resid, cfg.normalization_type, P.get(p + "ln1.w"), P.get(p + "ln1.b"), cfg.eps, cfg.d_model)
        xe = be.expand(x, 1)  # [B, 1, n, dm] against [h, dm, dh]
        xq = be.expand(be.expand(be.take(x, (rows, positions)), 1), 1) if last else xe  # [B, 1, 1|n, dm]
        q = be.matmul(xq, P[p + "attn.W_Q"]) + be.expand(P[p + "attn.b_Q"], 1)  # [B, h, nq, dh]
        k = be.matmul(xe, P[p + "attn.W_K"]) + be.expand(P[p + "attn.b_K"], 1)
        v = be.matmul(xe, P[p + "attn.W_V"]) + be.expand(P[p + "attn.b_V"], 1)
        scores = be.matmul(q, be.transpose(k))  # [B, h, nq, n]
        scores = scores * (be.inv_sqrt(cfg.d_head) if cfg.attn_scale is None else be.recip_float(cfg.attn_scale))
        if cfg.scale_by_layer:
            scores = scores * be.recip_int(layer + 1)
        scores = soft_cap(be, scores, cfg.attn_soft_cap)
        qpos = positions[:, None, None, None] if last else np.arange(n)[None, None, :, None]
        keep = (np.arange(n)[None, None, None, :] <= qpos) if cfg.causal else np.ones((1, 1, 1, n), bool)
        pattern = be.softmax(scores, keep)
        z = be.matmul(pattern, v)  # [B, h, nq, dh]
        out = be.sum(be.matmul(z, P[p + "attn.W_O"]), 1) + P[p + "attn.b_O"]  # [B, nq, dm]
        resid = (be.take(resid, (rows, positions)) if last else resid) + (be.take(out, (slice(None), 0)) if last else out)
        if cfg.d_mlp is not None:
            x2 = layer_norm(be, resid, cfg.normalization_type, P.get(p + "ln2.w"), P.get(p + "ln2.b"), cfg.eps, cfg.d_model)
            pre = be.matmul(x2, P[p + "mlp.W_in"]) + P[p + "mlp.b_in"]
            resid = resid + be.matmul(activation(be, pre, cfg.act_fn), P[p + "mlp.W_out"]) + P[p + "mlp.b_out"]
    x = layer_norm(be, resid, cfg.normalization_type, P.get("ln_final.w"), P.get("ln_final.b"), cfg.eps, cfg.d_model)
    logits = be.matmul(x, P["unembed.W_U"]) + P["unembed.b_U"]
    return soft_cap(be, logits, cfg.logit_soft_cap)


def backend_params(be, model: GeneralModel) -> dict:
    return {k: be.const(v) for k, v in model.params.items()}


def interval_logits(model: GeneralModel, tokens: np.ndarray, positions: np.ndarray,
                    params: dict | None = None) -> Iv:
    be = FloatIntervals()
    return forward_logits(be, model, params if params is not None else backend_params(be, model),
                          np.asarray(tokens, dtype=np.int64), np.asarray(positions, dtype=np.int64))


def check_config_supported(cfg: GeneralConfig) -> None:
    if cfg.d_mlp is not None and cfg.act_fn not in ("relu", "gelu", "gelu_new", "silu"):
        raise ValueError(f"act_fn={cfg.act_fn!r} is not modelled")
