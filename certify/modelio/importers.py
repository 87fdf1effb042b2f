"""Import a user's Max-of-K model: TransformerLens 3.x state dicts (HookedTransformer),
TransformerLens 4.x TransformerBridge state dicts, and checkpoints holding both the
state dict and the config.

A certificate must be about the user's model, not an approximation of it. A state
dict alone cannot say whether the forward pass normalizes, caps, rescales or adds
positions differently, so the architecture is read from the model's configuration and
every option the proofs do not model is refused by name (`check_architecture`).
Without a configuration the import is refused unless the caller says the architecture
is assumed; that assumption is then carried into every result and certificate.

Weights become exact float32 values: float16 and bfloat16 convert exactly; float64 is
accepted only when every entry already is a float32 value; nothing is rounded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .files import read_json_object
from .model import WEIGHT_NAMES, Config, ModelError, Weights, validate_weights

# --- the architecture the proofs model, field by field --------------------------------
#
# `REQUIRED`: field -> (predicate on the value, what the proofs need). Any other value
# changes the forward pass of a 1-layer attention-only model in a way the proofs do not
# model. `IRRELEVANT`: fields that cannot change the logits of the LAST position of
# such a model once its weights are given (names, devices, initialisation, hooks,
# tokenizer, options of parts this architecture does not have). Any field in neither
# table is refused: an option we have not classified could change the forward pass.


def _is(expected: Any) -> Callable[[Any], bool]:
    return lambda v: v == expected


def _off(v: Any) -> bool:
    return v in (None, False, 0, "None", "none", "false", "False")


def _soft_cap_off(v: Any) -> bool:
    try:
        return v is None or float(v) <= 0  # TransformerLens applies a cap only when > 0
    except (TypeError, ValueError):
        return False


def _attn_scale_ok(v: Any) -> bool:
    return True  # checked against sqrt(d_head) in check_architecture (it needs d_head)


REQUIRED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_layers": (_is(1), "exactly 1 layer"),
    "n_heads": (_is(1), "exactly 1 attention head"),
    "attn_only": (_is(True), "attention only (no MLP)"),
    "normalization_type": (_off, "no normalization (None)"),
    "positional_embedding_type": (_is("standard"), "learned absolute positions ('standard')"),
    "use_attn_scale": (_is(True), "attention scores divided by sqrt(d_head)"),
    "attn_scale": (_attn_scale_ok, "sqrt(d_head)"),
    "attn_scores_soft_cap": (_soft_cap_off, "no soft cap on attention scores"),
    "output_logits_soft_cap": (_soft_cap_off, "no soft cap on the logits"),
    "use_local_attn": (_off, "global attention (no local window)"),
    "final_rms": (_off, "no final RMSNorm (4.x adds one even without normalization_type)"),
    "post_embedding_ln": (_off, "no LayerNorm after the embedding"),
    "use_qk_norm": (_off, "no query/key normalization"),
    "clip_qkv": (_off, "no clipping of queries, keys and values"),
    "use_logn_attn": (_off, "no log-n attention scaling"),
    "use_attention_sinks": (_off, "no attention sinks"),
    "parallel_attn_mlp": (_off, "no parallel MLP"),
    "load_in_4bit": (_off, "unquantized weights"),
    "n_key_value_heads": (_off, "plain attention (n_key_value_heads None; 3.x switches to grouped-query keys)"),
    "per_layer_head_dim": (_off, "one head size"),
    "per_layer_num_key_value_heads": (_off, "plain attention"),
    # the last position attends to every token either way, and only its logits count
    # (measured with TransformerLens 3.9 and 4.3: last-position logits differ by <= 1e-14)
    "attention_dir": (lambda v: v in ("causal", "bidirectional"), "'causal' or 'bidirectional'"),
    "original_architecture": (lambda v: v is None or "olmo" not in str(v).lower(),
                              "not an OLMo architecture (those add query/key norms)"),
    "architecture": (lambda v: v in (None, "TransformerLensNative"), "TransformerLensNative (4.x native model)"),
}

IRRELEVANT = frozenset({
    # names, bookkeeping, devices, dtype (the weights are given; dtype is rounding only)
    "model_name", "from_checkpoint", "checkpoint_index", "checkpoint_label_type", "checkpoint_value",
    "n_params", "device", "n_devices", "dtype", "seed", "trust_remote_code", "quantization_method",
    "layer_norm_folding",
    # initialisation (the weights are given)
    "init_mode", "initializer_range", "init_weights",
    # tokenizer and inputs (we feed token ids); modality flags
    "tokenizer_name", "default_prepend_bos", "tokenizer_prepends_bos", "tokenizer_appends_eos",
    "default_padding_side", "decoder_start_token_id", "tie_word_embeddings", "is_audio_model",
    "is_visual_model", "is_stateful", "is_multimodal", "vision_hidden_size", "vision_num_layers",
    "vision_num_heads", "mm_tokens_per_image", "attn_implementation", "split_attention_weights",
    # hooks and caching switches: they expose activations, they do not change them
    "use_attn_result", "use_split_qkv_input", "use_hook_mlp_in", "use_attn_in", "use_hook_tokens",
    "ungroup_grouped_query_attention",
    # one layer: the factor (layer index + 1) is 1
    "scale_attn_by_inverse_layer_idx",
    # parts this architecture does not have (REQUIRED guarantees: attn_only, no norm, standard positions)
    "d_mlp", "act_fn", "gated_mlp", "num_experts", "experts_per_token", "norm_topk_prob", "eps",
    "uses_rms_norm", "rmsnorm_uses_offset", "use_normalization_before_and_after", "window_size",
    "attn_types", "train_seq_length", "scale_embedding",
    "rotary_dim", "rotary_base", "rotary_base_local", "rotary_scaling_factor", "rotary_adjacent_pairs",
    "qk_norm_after_rope", "rotary_interleaved_cos_sin", "use_dynamic_ntk_rope", "use_NTK_by_parts_rope",
    "NTK_by_parts_low_freq_factor", "NTK_by_parts_high_freq_factor", "NTK_by_parts_factor",
    "NTK_original_ctx_len", "use_yarn_rope", "yarn_factor", "yarn_attention_factor", "yarn_beta_fast",
    "yarn_beta_slow", "yarn_original_max_position_embeddings", "yarn_truncate", "yarn_global_attn_only",
    "relative_attention_max_distance", "relative_attention_num_buckets",
    # checked against the weights separately
    "d_model", "d_head", "d_vocab", "d_vocab_out", "n_ctx",
})


# --- reading files --------------------------------------------------------------------

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
CONFIG_KEYS = ("config", "cfg")


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """(state dict, config or None) from safetensors or a torch file (weights_only)."""
    if not path.is_file():
        raise ModelError(f"{path}: file not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load
        try:
            return load(path.read_bytes()), None
        except (SafetensorError, ValueError, RuntimeError, OverflowError) as err:
            raise ModelError(f"{path}: corrupted or truncated safetensors file ({err})") from None
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: the file is empty")
    try:
        with torch.serialization.safe_globals(numpy_scalar_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any loader failure is a bad file; no pickle code runs
        raise ModelError(refused_checkpoint_message(path, str(err), type(err).__name__)) from None
    if not isinstance(obj, dict):
        raise ModelError(f"{path}: expected a state dict, got {type(obj).__name__}; save model.state_dict()")
    nested = [k for k in STATE_DICT_KEYS if isinstance(obj.get(k), dict)]
    if nested:
        config = next((obj[k] for k in CONFIG_KEYS if isinstance(obj.get(k), dict)), None)
        return obj[nested[0]], None if config is None else plain_config(config, path)
    return obj, None


# TransformerLens's raw cfg.to_dict() holds numpy scalars (attn_scale, initializer_range
# are np.float64): `torch.save({"state_dict": sd, "config": model.cfg.to_dict()})` is the
# natural way to write a checkpoint. torch's weights_only unpickler is told to allow the
# numpy scalar reconstructor and dtypes (never a full unpickle: no other class, no code),
# and `plain_config` then refuses any numpy value that is not one of these plain scalars.
NUMPY_SCALARS = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")


def numpy_scalar_globals() -> list:
    import numpy as np
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar
    return [scalar, np.dtype, *(type(np.dtype(t)) for t in NUMPY_SCALARS)]


def plain_config(config: Any, path: Path) -> Any:
    """The embedded config as the JSON file would hold it: numpy scalars as numbers,
    torch dtypes as their names ("torch.float32"), tuples as lists; anything else
    from numpy is refused by name."""
    import numpy as np
    if isinstance(config, dict):
        return {k: plain_config(v, path) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [plain_config(v, path) for v in config]
    if isinstance(config, np.generic):
        if config.dtype.name not in NUMPY_SCALARS:
            raise ModelError(f"{path}: the config holds a numpy {type(config).__name__} value, not a plain number")
        return config.item()
    if isinstance(config, np.ndarray | np.dtype):
        raise ModelError(f"{path}: the config holds a numpy {type(config).__name__}, not a plain number")
    if isinstance(config, (torch.dtype, torch.device)):
        return str(config)
    return config


def refused_checkpoint_message(path: Path, text: str, err_type: str) -> str:
    """Why torch.load refused the file, naming the refused type where there is one."""
    refused = (re.search(r"Unsupported global: GLOBAL (\S+)", text)
               or re.search(r"but got <class '([^']+)'>", text))
    if refused:
        name = refused.group(1)
        hint = (" (a whole model: save model.state_dict() instead)" if ".nn." in name or "transformer_lens" in name
                else "")
        return (f"{path}: this file holds a pickled object of type {name}{hint}, which is never loaded (it "
                "could run code); a checkpoint may hold tensors, numbers, strings, lists and dicts. Save "
                "torch.save(model.state_dict(), 'model.pt') or safetensors")
    first = (text.splitlines() or [""])[0].split(". ")[0][:160]
    if "Weights only load failed" in text:
        why = re.search(r"WeightsUnpickler error: \s*(.+)", text)
        first = why.group(1).strip()[:160] if why else first
    return (f"{path}: not a readable torch checkpoint: truncated, corrupted, or not a file written by "
            f"torch.save ({err_type}{': ' + first if first else ''})")


def read_config(path: Path) -> dict:
    """The TransformerLens config: HookedTransformerConfig.to_dict() or the 4.x bridge's."""
    return read_json_object(path, "config")


def strip_prefix(state: dict[str, Any], prefix: str = "model.") -> dict[str, Any]:
    """Drop a common key prefix such as 'model.' (checkpoints of wrapped modules)."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


# --- dtypes ---------------------------------------------------------------------------

def to_exact_float32(name: str, t: Any) -> torch.Tensor:
    """float32 as is; float16/bfloat16 exactly; float64 only if every entry is a float32."""
    if not isinstance(t, torch.Tensor):
        raise ModelError(f"'{name}' is not a tensor (got {type(t).__name__})")
    t = t.detach().to("cpu")
    if t.dtype == torch.float32:
        return t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.to(torch.float32).contiguous()  # every float16/bfloat16 value is a float32 value
    if t.dtype == torch.float64:
        as32 = t.to(torch.float32)
        same = torch.equal(as32.to(torch.float64), t) | bool(torch.isnan(t).any())
        if not same:
            raise ModelError(f"'{name}' is float64 with values that are not float32 values; certify "
                             "works with exact float32 weights and never rounds silently: convert the "
                             "model to float32 yourself (model.float()) if that is the model you mean")
        return as32.contiguous()
    raise ModelError(f"'{name}' has dtype {t.dtype}; expected float32 (or float16/bfloat16/exact float64)")


# --- formats --------------------------------------------------------------------------

def _nonzero_biases(state: dict[str, Any], is_bias: Callable[[str], bool]) -> list[str]:
    return sorted(k for k, t in state.items()
                  if is_bias(k) and isinstance(t, torch.Tensor) and t.is_floating_point() and bool((t != 0).any()))


def _layer_ids(state: dict[str, Any]) -> set[str]:
    return {k.split(".")[1] for k in state if k.startswith("blocks.") and k.count(".") >= 2}


def weights_from_tl3(state: dict[str, Any]) -> Weights:
    """HookedTransformer: embed.W_E [d_vocab, d_model], pos_embed.W_pos [n_ctx, d_model],
    blocks.0.attn.W_Q/W_K/W_V [1, d_model, d_head], W_O [1, d_head, d_model], unembed.W_U
    [d_model, d_vocab]; biases b_Q, b_K, b_V [1, d_head], b_O [d_model], b_U [d_vocab]."""
    out: Weights = {}
    for name, key in (("W_E", "embed.W_E"), ("W_pos", "pos_embed.W_pos"), ("W_U", "unembed.W_U")):
        out[name] = _get(state, key)
    for name in ("W_Q", "W_K", "W_V", "W_O"):
        t = _get(state, f"blocks.0.attn.{name}")
        if t.dim() != 3 or t.shape[0] != 1:
            raise ModelError(f"blocks.0.attn.{name}: expected shape [1, ...] (one head), got {list(t.shape)}")
        out[name] = t[0]
    return out


def _get(state: dict[str, Any], key: str) -> torch.Tensor:
    if key not in state:
        raise ModelError(f"the state dict has no '{key}'")
    return to_exact_float32(key, state[key])


@dataclass(frozen=True)
class Format:
    """A state-dict layout: how to recognise it, read the weights, find biases and extras."""
    name: str
    marker: str  # a key only this format has
    weights: Callable[[dict[str, Any]], Weights]
    is_bias: Callable[[str], bool]
    known: Callable[[str], bool]  # keys this format may hold besides the weights (buffers, biases)


def _tl3_known(k: str) -> bool:
    last = k.split(".")[-1]
    return last.startswith("b_") or last in ("IGNORE", "mask") or k in (
        "embed.W_E", "pos_embed.W_pos", "unembed.W_U",
        "blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V", "blocks.0.attn.W_O")


def weights_from_tl4(state: dict[str, Any]) -> Weights:
    """TransformerBridge (4.x): nn.Linear layouts [out, in] with heads concatenated
    head-major (row h*d_head + j); one head, so W_Q = q.weight^T, W_O = o.weight^T,
    W_U = unembed.weight^T (TransformerLens' own convert_tl_checkpoint, inverted; checked
    against the bridge's float64 forward pass, see tests/fixtures/transformer_lens)."""
    out: Weights = {"W_E": _get(state, "embed.weight"), "W_pos": _get(state, "pos_embed.weight"),
                    "W_U": _get(state, "unembed.weight").T}
    for name, key in (("W_Q", "q"), ("W_K", "k"), ("W_V", "v"), ("W_O", "o")):
        out[name] = _get(state, f"blocks.0.attn.{key}.weight").T
    return {k: v.contiguous() for k, v in out.items()}


TL4_KEYS = frozenset({"embed.weight", "pos_embed.weight", "unembed.weight", "unembed.bias",
                      *(f"blocks.0.attn.{p}.{kind}" for p in "qkvo" for kind in ("weight", "bias"))})

FORMATS: list[Format] = [
    Format("transformer-lens-3", "embed.W_E", weights_from_tl3,
           lambda k: k.split(".")[-1].startswith("b_"), _tl3_known),
    Format("transformer-lens-4-bridge", "embed.weight", weights_from_tl4,
           lambda k: k.endswith(".bias"), lambda k: k in TL4_KEYS),
]


def detect_format(state: dict[str, Any]) -> Format:
    for fmt in FORMATS:
        if fmt.marker in state:
            return fmt
    sample = ", ".join(sorted(state)[:6]) or "(no keys)"
    raise ModelError(f"unrecognised state dict (keys: {sample}, ...); expected a TransformerLens 3.x "
                     "HookedTransformer state dict ('embed.W_E', 'blocks.0.attn.W_Q', ...) or a "
                     "TransformerLens 4.x TransformerBridge state dict ('embed.weight', "
                     "'blocks.0.attn.q.weight', ...)")


# --- the architecture -----------------------------------------------------------------

def check_architecture(config: dict, cfg: Config) -> None:
    """Refuse, naming each field and value, every option the proofs do not model."""
    check_options(config)
    check_sizes(config, cfg)


def check_options(config: dict) -> None:
    """The options of the forward pass (before the weights are read: the config names
    the reason for a refusal better than an unexpected key does)."""
    problems = []
    for key, (ok, need) in REQUIRED.items():
        if key in config and not ok(config[key]):
            problems.append(f"{key}={config[key]!r} (the proofs need {need})")
    for key, value in [("n_layers", 1), ("n_heads", 1)]:
        if key not in config:
            problems.append(f"{key} is missing (the proofs need {value})")
    unknown = sorted(k for k in config if k not in REQUIRED and k not in IRRELEVANT)
    if unknown:
        problems.append("unknown option(s) " + ", ".join(f"{k}={config[k]!r}" for k in unknown)
                        + " (not known to leave the forward pass unchanged; remove them from the config "
                        "only if you know they do)")
    if problems:
        raise ModelError("unsupported architecture: " + "; ".join(problems))


def check_sizes(config: dict, cfg: Config) -> None:
    """The config's sizes, output vocabulary and attention scale against the weights."""
    problems = []
    dims = {"d_vocab": cfg.d_vocab, "n_ctx": cfg.n_ctx, "d_model": cfg.d_model, "d_head": cfg.d_head}
    for key, actual in dims.items():
        if key in config and _as_int(config[key]) != actual:
            problems.append(f"{key}={config[key]!r} disagrees with the weights ({actual})")
        if key not in config:
            problems.append(f"{key} is missing")
    out = config.get("d_vocab_out", -1)
    if out not in (None, -1) and _as_int(out) != cfg.d_vocab:
        problems.append(f"d_vocab_out={out!r} differs from d_vocab={cfg.d_vocab} (Max-of-K predicts a token)")
    if config.get("use_attn_scale", True) is True and "attn_scale" in config:
        scale = _as_float(config["attn_scale"])  # -1.0: TransformerLens' "use sqrt(d_head)"
        if scale != -1.0 and (scale is None or not math.isclose(scale, math.sqrt(cfg.d_head), rel_tol=1e-12)):
            problems.append(f"attn_scale={config['attn_scale']!r} is not sqrt(d_head)={math.sqrt(cfg.d_head)!r} "
                            "(the proofs divide attention scores by exactly sqrt(d_head))")
    if problems:
        raise ModelError("unsupported architecture: " + "; ".join(problems))


def _as_int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _as_float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# --- the whole import -----------------------------------------------------------------

@dataclass(frozen=True)
class ImportedModel:
    cfg: Config
    weights: Weights
    source: str  # the checkpoint's path as given (`recorded_source`)
    format: str
    assumptions: tuple[str, ...] = field(default=())


ASSUMED = "architecture assumed, not checked: no TransformerLens config was given (--assume-architecture)"


def import_model(path: Path, config_path: Path | None = None, assume_architecture: bool = False) -> ImportedModel:
    """Read, check and convert a user's checkpoint into exact float32 weights."""
    state, embedded_config = read_checkpoint(path)
    config = read_config(config_path) if config_path else None
    if config is not None and embedded_config is not None and plain_config(config, path) != embedded_config:
        raise ModelError(f"{path}: the checkpoint holds a config that differs from {config_path}; give one")
    config = config if config is not None else embedded_config
    state = strip_prefix(dict(state))
    fmt = detect_format(state)
    if config is not None:
        check_options(config)
    elif not assume_architecture:
        raise ModelError(f"{path}: no model config: the state dict alone cannot show the architecture "
                         "(normalization, attention scale, soft caps, positions). Pass --config CONFIG.json "
                         "(json.dump(model.cfg.to_dict(), f, default=str)), or --assume-architecture to "
                         "state that it is the plain 1-layer attention-only architecture (recorded in the "
                         "results and the certificate)")
    layers = _layer_ids(state)
    if layers != {"0"}:
        raise ModelError(f"expected exactly one layer (blocks.0), found blocks {sorted(layers)}")
    extra = sorted(k for k in state if not fmt.known(k))
    if extra:
        raise ModelError(f"the state dict has parameters the proofs do not model: {', '.join(extra[:8])}"
                         + (" ..." if len(extra) > 8 else "") + " (an MLP, a normalization or rotary positions?)")
    weights = fmt.weights(state)  # exact float32, or a message naming the tensor
    biases = _nonzero_biases(state, fmt.is_bias)
    if biases:
        raise ModelError(f"non-zero biases: {', '.join(biases)}; the Max-of-K proofs assume zero biases")
    cfg = config_from_weights(weights)
    if config is not None:
        check_sizes(config, cfg)
    validate_weights(cfg, weights)
    assumptions = () if config is not None else (ASSUMED,)
    return ImportedModel(cfg, weights, recorded_source(path), fmt.name, assumptions)


def recorded_source(path: Path) -> str:
    """The checkpoint's path as the user gave it, for results and certificate headers:
    printable ASCII only, and no '/-' or '-/' (a header line can then neither break a line
    nor open or close a Lean comment); at most its last 200 characters."""
    text = re.sub(r"[^\x20-\x7e]", "_", str(path)).replace("/-", "/_").replace("-/", "_/")
    return (text if len(text) <= 200 else "..." + text[-197:]) or "_"


def config_from_weights(weights: Weights) -> Config:
    for name in WEIGHT_NAMES:
        if weights[name].dim() != 2:
            raise ModelError(f"{name}: expected a matrix, got shape {list(weights[name].shape)}")
    d_vocab, d_model = weights["W_E"].shape
    return Config(d_vocab=int(d_vocab), n_ctx=int(weights["W_pos"].shape[0]), d_model=int(d_model),
                  d_head=int(weights["W_Q"].shape[1]))


assert set(WEIGHT_NAMES) == {"W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U"}
