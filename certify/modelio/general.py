"""Import a general TransformerLens model: any number of layers and heads, an optional
MLP, LayerNorm/RMSNorm (with or without weights), all biases, attention scale, causal or
bidirectional attention, soft caps, d_vocab_out != d_vocab.

The same discipline as `importers` (the Max-of-K importer): the architecture is read from
the TransformerLens config, every field is classified (`GENERAL_REQUIRED` constrains it,
`GENERAL_IRRELEVANT` cannot change the logits once the weights are given) and anything
else is refused naming the field. Weights become exact float32 values (numpy), nothing is
rounded. Parameters are kept under TransformerLens 3.x names
(`blocks.{l}.attn.W_Q` [n_heads, d_model, d_head], ...) whatever the file's layout.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import ModelError
from .digest import weights_sha256_arrays
from .importers import (IRRELEVANT, REQUIRED, _as_float, _as_int, _off, _soft_cap_off, read_checkpoint,
                        read_config, recorded_source, strip_prefix, to_exact_float32)

ACT_FNS = ("relu", "gelu", "gelu_new", "silu")
NORMS = (None, "LN", "LNPre", "RMS", "RMSPre")


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _soft_cap_ok(v: Any) -> bool:
    f = _as_float(v) if v is not None else -1.0
    return f is not None and math.isfinite(f)


def _norm_ok(v: Any) -> bool:
    return (None if _off(v) else v) in NORMS


# field -> (predicate, what the general evaluator models). Fields of the Max-of-K table
# (`importers.REQUIRED`) that this one does not override keep their constraint there.
GENERAL_REQUIRED: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{k: v for k, v in REQUIRED.items() if k not in {
        "n_layers", "n_heads", "attn_only", "normalization_type", "use_attn_scale", "attn_scale",
        "attn_scores_soft_cap", "output_logits_soft_cap"}},
    "n_layers": (_positive_int, "a positive number of layers"),
    "n_heads": (_positive_int, "a positive number of heads"),
    "attn_only": (lambda v: isinstance(v, bool), "true or false"),
    "normalization_type": (_norm_ok, "None, 'LN', 'LNPre', 'RMS' or 'RMSPre'"),
    "use_attn_scale": (lambda v: isinstance(v, bool), "true or false"),
    "attn_scale": (lambda v: (_as_float(v) or 0) == -1.0 or (_as_float(v) or 0) > 0, "-1 (sqrt(d_head)) or > 0"),
    "attn_scores_soft_cap": (_soft_cap_ok, "a number (tanh cap when > 0)"),
    "output_logits_soft_cap": (_soft_cap_ok, "a number (tanh cap when > 0)"),
    "act_fn": (lambda v: v is None or v in ACT_FNS, "one of " + ", ".join(ACT_FNS)),
    "gated_mlp": (_off, "a plain MLP (no gated MLP)"),
    "num_experts": (_off, "no mixture of experts"),
    "eps": (lambda v: (_as_float(v) or 0) > 0, "a positive eps"),
    "uses_rms_norm": (_off, "normalization given by normalization_type only"),
    "rmsnorm_uses_offset": (_off, "RMSNorm without a (1 + w) offset"),
    "use_normalization_before_and_after": (_off, "one normalization per sublayer"),
    "scale_embedding": (_off, "unscaled embeddings"),
    "scale_attn_by_inverse_layer_idx": (lambda v: isinstance(v, bool), "true or false (modelled)"),
    "final_rms": (_off, "the final norm given by normalization_type (final_rms differs between 3.x and 4.x)"),
}

GENERAL_IRRELEVANT = frozenset(
    (IRRELEVANT - set(GENERAL_REQUIRED)) | {"d_mlp", "experts_per_token", "norm_topk_prob"})


@dataclass(frozen=True)
class GeneralConfig:
    """The architecture the general evaluator runs (TransformerLens semantics)."""
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    d_vocab_out: int
    n_ctx: int
    d_mlp: int | None  # None: attention only
    act_fn: str | None
    normalization_type: str | None
    eps: float
    causal: bool
    attn_scale: float | None  # None: exactly sqrt(d_head); else the divisor as given
    scale_by_layer: bool  # TransformerLens' scale_attn_by_inverse_layer_idx
    attn_soft_cap: float | None
    logit_soft_cap: float | None

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "GeneralConfig":
        try:
            return GeneralConfig(**d)
        except TypeError as err:
            raise ModelError(f"bad general config: {err}") from None


@dataclass(frozen=True)
class GeneralModel:
    cfg: GeneralConfig
    params: dict[str, np.ndarray]  # TL 3.x names, float32, biases filled with zeros
    source: str
    format: str

    @property
    def sha256(self) -> str:
        return general_sha256(self.params)


def general_sha256(params: dict[str, np.ndarray]) -> str:
    """The project's weights digest over the sorted parameter names."""
    return weights_sha256_arrays(params, tuple(sorted(params)))


def check_general_options(config: dict, fmt: str) -> None:
    """Refuse, naming each field, every option the general evaluator does not model."""
    problems = [f"{k}={config[k]!r} (the general evaluator needs {need})"
                for k, (ok, need) in GENERAL_REQUIRED.items() if k in config and not ok(config[k])]
    for k in ("n_layers", "n_heads", "d_model", "d_head", "d_vocab", "n_ctx"):
        if k not in config:
            problems.append(f"{k} is missing")
    if fmt == "transformer-lens-4-bridge" and config.get("use_attn_scale", True) is False:
        problems.append("use_attn_scale=False with a 4.x bridge (TransformerLens 4.x still divides by "
                        "sqrt(d_head) there, 3.x does not: the semantics is ambiguous)")
    if fmt == "transformer-lens-4-bridge" and config.get("scale_attn_by_inverse_layer_idx", False) is True:
        problems.append("scale_attn_by_inverse_layer_idx=True with a 4.x bridge (TransformerLens 4.x applies it "
                        "only in some attention components, 3.x in every layer: the semantics is ambiguous)")
    if config.get("parallel_attn_mlp") not in (None, False):
        problems.append(f"parallel_attn_mlp={config['parallel_attn_mlp']!r} (not modelled)")
    unknown = sorted(k for k in config if k not in GENERAL_REQUIRED and k not in GENERAL_IRRELEVANT)
    if unknown:
        problems.append("unknown option(s) " + ", ".join(f"{k}={config[k]!r}" for k in unknown)
                        + " (not known to leave the forward pass unchanged)")
    if problems:
        raise ModelError("unsupported architecture: " + "; ".join(problems))


def general_config(config: dict) -> GeneralConfig:
    attn_only = bool(config.get("attn_only", False))
    norm = None if _off(config.get("normalization_type")) else config["normalization_type"]
    d_head = _as_int(config["d_head"])
    scale = _as_float(config.get("attn_scale", -1.0))
    use_scale = config.get("use_attn_scale", True)
    if not use_scale:
        divisor = 1.0
    elif scale == -1.0 or math.isclose(scale, math.sqrt(d_head), rel_tol=1e-12):
        divisor = None  # TransformerLens' float sqrt(d_head): modelled as the exact sqrt(d_head)
    else:
        divisor = scale

    def cap(key: str) -> float | None:
        return None if _soft_cap_off(config.get(key)) else float(config[key])

    d_out = config.get("d_vocab_out", -1)
    return GeneralConfig(
        n_layers=_as_int(config["n_layers"]), n_heads=_as_int(config["n_heads"]),
        d_model=_as_int(config["d_model"]), d_head=d_head, d_vocab=_as_int(config["d_vocab"]),
        d_vocab_out=_as_int(config["d_vocab"]) if d_out in (None, -1) else _as_int(d_out),
        n_ctx=_as_int(config["n_ctx"]), d_mlp=None if attn_only else _as_int(config.get("d_mlp")),
        act_fn=None if attn_only else config.get("act_fn", "relu"), normalization_type=norm,
        eps=float(config.get("eps", 1e-5)), causal=config.get("attention_dir", "causal") == "causal",
        attn_scale=divisor, scale_by_layer=bool(config.get("scale_attn_by_inverse_layer_idx", False)),
        attn_soft_cap=cap("attn_scores_soft_cap"), logit_soft_cap=cap("output_logits_soft_cap"))


# --- state-dict layouts -> TL 3.x names ---------------------------------------------

def _f32(state: dict, key: str) -> np.ndarray:
    if key not in state:
        raise ModelError(f"the state dict has no '{key}'")
    return to_exact_float32(key, state[key]).numpy()


def _opt(state: dict, key: str, shape: tuple[int, ...]) -> np.ndarray:
    return _f32(state, key) if key in state else np.zeros(shape, np.float32)


def expected_params(cfg: GeneralConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter the forward pass reads, with its TL 3.x shape."""
    h, dm, dh = cfg.n_heads, cfg.d_model, cfg.d_head
    out: dict[str, tuple[int, ...]] = {"embed.W_E": (cfg.d_vocab, dm), "pos_embed.W_pos": (cfg.n_ctx, dm),
                                       "unembed.W_U": (dm, cfg.d_vocab_out), "unembed.b_U": (cfg.d_vocab_out,)}
    weighted = cfg.normalization_type in ("LN", "RMS")
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        for n in "QKV":
            out[p + f"attn.W_{n}"] = (h, dm, dh)
            out[p + f"attn.b_{n}"] = (h, dh)
        out[p + "attn.W_O"], out[p + "attn.b_O"] = (h, dh, dm), (dm,)
        norms = ["ln1"] if cfg.d_mlp is None else ["ln1", "ln2"]
        if cfg.d_mlp is not None:
            out.update({p + "mlp.W_in": (dm, cfg.d_mlp), p + "mlp.b_in": (cfg.d_mlp,),
                        p + "mlp.W_out": (cfg.d_mlp, dm), p + "mlp.b_out": (dm,)})
        if weighted:
            for ln in norms:
                out[p + f"{ln}.w"] = (dm,)
                if cfg.normalization_type == "LN":
                    out[p + f"{ln}.b"] = (dm,)
    if weighted:
        out["ln_final.w"] = (dm,)
        if cfg.normalization_type == "LN":
            out["ln_final.b"] = (dm,)
    return out


BIAS_OPTIONAL = (".b_Q", ".b_K", ".b_V", ".b_O", ".b_U", ".b_in", ".b_out")


def params_tl3(state: dict, cfg: GeneralConfig) -> tuple[dict[str, np.ndarray], set[str]]:
    want = expected_params(cfg)
    params = {k: (_opt(state, k, s) if k.endswith(BIAS_OPTIONAL) else _f32(state, k)) for k, s in want.items()}
    used = set(want) | {k for k in state if k.split(".")[-1] in ("IGNORE", "mask")}
    return params, used


def params_tl4(state: dict, cfg: GeneralConfig) -> tuple[dict[str, np.ndarray], set[str]]:
    """TransformerBridge: nn.Linear [out, in], heads concatenated head-major (see
    tests/fixtures/transformer_lens/FORMATS.md); LN weights `.weight`/`.bias`."""
    h, dm, dh = cfg.n_heads, cfg.d_model, cfg.d_head
    used: set[str] = set()

    def get(key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        used.add(key)
        return _opt(state, key, shape) if shape is not None else _f32(state, key)

    params = {"embed.W_E": get("embed.weight"), "pos_embed.W_pos": get("pos_embed.weight"),
              "unembed.W_U": get("unembed.weight").T.copy(), "unembed.b_U": get("unembed.bias", (cfg.d_vocab_out,))}
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        for n, k in (("Q", "q"), ("K", "k"), ("V", "v")):
            w = get(p + f"attn.{k}.weight")  # [h*dh, dm]
            params[p + f"attn.W_{n}"] = w.reshape(h, dh, dm).transpose(0, 2, 1).copy() if w.shape == (h * dh, dm) else w
            params[p + f"attn.b_{n}"] = get(p + f"attn.{k}.bias", (h * dh,)).reshape(h, dh)
        o = get(p + "attn.o.weight")  # [dm, h*dh]
        params[p + "attn.W_O"] = o.reshape(dm, h, dh).transpose(1, 2, 0).copy() if o.shape == (dm, h * dh) else o
        params[p + "attn.b_O"] = get(p + "attn.o.bias", (dm,))
        if cfg.d_mlp is not None:
            params[p + "mlp.W_in"] = get(p + "mlp.in.weight").T.copy()
            params[p + "mlp.b_in"] = get(p + "mlp.in.bias", (cfg.d_mlp,))
            params[p + "mlp.W_out"] = get(p + "mlp.out.weight").T.copy()
            params[p + "mlp.b_out"] = get(p + "mlp.out.bias", (dm,))
    for key in expected_params(cfg):
        if key.split(".")[-1] in ("w", "b") and key not in params:
            params[key] = get(key[:-2] + (".weight" if key.endswith(".w") else ".bias"))
    return params, used


def validate_params(cfg: GeneralConfig, params: dict[str, np.ndarray]) -> None:
    for key, shape in expected_params(cfg).items():
        a = params.get(key)
        if a is None:
            raise ModelError(f"missing parameter '{key}'")
        if tuple(a.shape) != shape:
            raise ModelError(f"{key}: shape must be {list(shape)} (from the config), got {list(a.shape)}")
        if a.dtype != np.float32:
            raise ModelError(f"{key}: dtype must be float32, got {a.dtype}")
        if not np.isfinite(a).all():
            raise ModelError(f"{key}: contains NaN or infinite values")
    extra = sorted(set(params) - set(expected_params(cfg)))
    if extra:
        raise ModelError(f"unexpected parameter(s): {', '.join(extra[:8])}")


def import_general(path: Path, config_path: Path | None) -> GeneralModel:
    """Read, check and convert a general TransformerLens checkpoint (config required)."""
    state, embedded = read_checkpoint(path)
    config = read_config(config_path) if config_path else embedded
    if config is None:
        raise ModelError(f"{path}: no model config; pass --config CONFIG.json "
                         "(json.dump(model.cfg.to_dict(), f, default=str))")
    state = strip_prefix(dict(state))
    fmt = "transformer-lens-3" if "embed.W_E" in state else (
        "transformer-lens-4-bridge" if "embed.weight" in state else None)
    if fmt is None:
        raise ModelError(f"unrecognised state dict (keys: {', '.join(sorted(state)[:6])}, ...); expected "
                         "TransformerLens 3.x ('embed.W_E', ...) or a 4.x bridge ('embed.weight', ...)")
    check_general_options(config, fmt)
    cfg = general_config(config)
    params, used = (params_tl3 if fmt == "transformer-lens-3" else params_tl4)(state, cfg)
    extra = sorted(set(state) - used)
    if extra:
        raise ModelError(f"the state dict has parameters the config does not account for: {', '.join(extra[:8])}"
                         + (" ..." if len(extra) > 8 else "") + " (normalization_type, attn_only, n_layers?)")
    validate_params(cfg, params)
    return GeneralModel(cfg, params, recorded_source(path), fmt)
