"""Importing a user's model: formats, dtypes, biases, and the architecture check.

These tests build TransformerLens-shaped state dicts by hand (CI has no
transformer_lens); `test_tl_fixtures.py` runs the importer on files made with the real
library, and `test_tl_integration.py` runs only where transformer_lens is importable.
"""

import json
import math

import pytest
import torch

from certify.modelio.importers import import_model, check_architecture, ASSUMED
from certify.modelio.model import Config, ModelError
from helpers import random_model

SMALL = Config(d_vocab=6, n_ctx=3, d_model=8, d_head=4)


def tl_state(w, bias=0.0):
    d_model, d_head = w["W_Q"].shape
    return {
        "embed.W_E": w["W_E"], "pos_embed.W_pos": w["W_pos"],
        "blocks.0.attn.W_Q": w["W_Q"][None], "blocks.0.attn.W_K": w["W_K"][None],
        "blocks.0.attn.W_V": w["W_V"][None], "blocks.0.attn.W_O": w["W_O"][None],
        "blocks.0.attn.b_Q": torch.zeros(1, d_head), "blocks.0.attn.b_K": torch.zeros(1, d_head),
        "blocks.0.attn.b_V": torch.zeros(1, d_head), "blocks.0.attn.b_O": torch.full((d_model,), bias),
        "blocks.0.attn.IGNORE": torch.tensor(-1e5), "blocks.0.attn.mask": torch.ones(3, 3, dtype=torch.bool).tril(),
        "unembed.W_U": w["W_U"], "unembed.b_U": torch.zeros(w["W_U"].shape[1]),
    }


def tl_config(cfg=SMALL, **changes):
    """A HookedTransformerConfig.to_dict() of the plain architecture (3.x field names)."""
    d = {"n_layers": 1, "d_model": cfg.d_model, "n_ctx": cfg.n_ctx, "d_head": cfg.d_head, "model_name": "custom",
         "n_heads": 1, "d_mlp": None, "act_fn": None, "d_vocab": cfg.d_vocab, "eps": 1e-5,
         "use_attn_result": False, "use_attn_scale": True, "attn_scale": math.sqrt(cfg.d_head),
         "use_split_qkv_input": False, "use_hook_mlp_in": False, "use_attn_in": False, "use_local_attn": False,
         "original_architecture": None, "from_checkpoint": False, "checkpoint_index": None,
         "checkpoint_label_type": None, "checkpoint_value": None, "tokenizer_name": None, "window_size": None,
         "attn_types": None, "init_mode": "gpt2", "normalization_type": None, "device": "cpu", "n_devices": 1,
         "attention_dir": "causal", "attn_only": True, "seed": None, "initializer_range": 0.1,
         "init_weights": True, "scale_attn_by_inverse_layer_idx": False, "positional_embedding_type": "standard",
         "final_rms": False, "d_vocab_out": cfg.d_vocab, "parallel_attn_mlp": False, "rotary_dim": None,
         "n_params": 100, "use_hook_tokens": False, "gated_mlp": False, "default_prepend_bos": True,
         "dtype": "torch.float32", "tokenizer_prepends_bos": None, "n_key_value_heads": None,
         "post_embedding_ln": False, "rotary_base": 10000, "trust_remote_code": False,
         "rotary_adjacent_pairs": False, "load_in_4bit": False, "num_experts": None, "experts_per_token": None,
         "relative_attention_max_distance": None, "relative_attention_num_buckets": None,
         "decoder_start_token_id": None, "tie_word_embeddings": False,
         "use_normalization_before_and_after": False, "attn_scores_soft_cap": -1.0,
         "output_logits_soft_cap": -1.0, "use_NTK_by_parts_rope": False}
    d.update(changes)
    return d


def write(tmp_path, state, config=None, name="m.pt"):
    p = tmp_path / name
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, str(p))
    else:
        torch.save(state, p)
    c = None
    if config is not None:
        c = tmp_path / "config.json"
        c.write_text(json.dumps(config, default=str))
    return p, c


@pytest.mark.parametrize("name", ["m.pt", "m.safetensors"])
def test_tl3_state_dict_round_trips_exactly(tmp_path, name):
    w = random_model(SMALL, 3)
    p, c = write(tmp_path, tl_state(w), tl_config(), name)
    imp = import_model(p, c)
    assert imp.cfg == SMALL and imp.format == "transformer-lens-3" and imp.assumptions == ()
    assert all(torch.equal(w[k], imp.weights[k]) for k in w)


def test_model_prefix_and_checkpoint_with_config(tmp_path):
    w = random_model(SMALL, 3)
    prefixed = {f"model.{k}": v for k, v in tl_state(w).items()}
    p, _ = write(tmp_path, {"state_dict": prefixed, "config": tl_config()}, name="ckpt.pt")
    imp = import_model(p)
    assert all(torch.equal(w[k], imp.weights[k]) for k in w)


def test_no_config_is_refused_unless_assumed(tmp_path):
    p, _ = write(tmp_path, tl_state(random_model(SMALL, 3)))
    with pytest.raises(ModelError, match="no model config.*--config.*--assume-architecture"):
        import_model(p)
    assert import_model(p, assume_architecture=True).assumptions == (ASSUMED,)


@pytest.mark.parametrize("field,value", [
    ("normalization_type", "LN"), ("normalization_type", "LNPre"), ("normalization_type", "RMS"),
    ("normalization_type", "RMSPre"), ("positional_embedding_type", "shortformer"),
    ("positional_embedding_type", "rotary"), ("use_attn_scale", False), ("attn_scale", 3.0),
    ("attn_scores_soft_cap", 5.0), ("output_logits_soft_cap", 30.0), ("n_layers", 2), ("n_heads", 2),
    ("attn_only", False), ("d_vocab_out", 5), ("n_ctx", 4), ("use_local_attn", True), ("final_rms", True),
    ("use_qk_norm", True), ("some_new_option", 3),
])
def test_every_unmodelled_option_is_refused_by_name(field, value):
    with pytest.raises(ModelError, match=rf"{field}={value!r}"):
        check_architecture(tl_config(**{field: value}), SMALL)


def test_the_plain_config_passes_and_irrelevant_options_may_vary():
    check_architecture(tl_config(), SMALL)
    check_architecture(tl_config(model_name="x", seed=5, device="cuda", dtype="torch.float16",
                                 attention_dir="bidirectional", use_hook_tokens=True), SMALL)


def test_all_nonzero_biases_are_named(tmp_path):
    st = tl_state(random_model(SMALL, 3), bias=0.5)
    st["unembed.b_U"] = torch.ones(6)
    p, c = write(tmp_path, st, tl_config())
    with pytest.raises(ModelError, match=r"non-zero biases: blocks\.0\.attn\.b_O, unembed\.b_U"):
        import_model(p, c)


def test_two_heads_and_mlp_weights_refused(tmp_path):
    st = tl_state(random_model(SMALL, 3))
    st["blocks.0.attn.W_Q"] = torch.zeros(2, 8, 4)
    p, c = write(tmp_path, st, tl_config())
    with pytest.raises(ModelError, match="one head"):
        import_model(p, c)
    st = tl_state(random_model(SMALL, 3))
    st["blocks.0.mlp.W_in"] = torch.zeros(8, 16)
    p, c = write(tmp_path, st, tl_config())
    with pytest.raises(ModelError, match="blocks.0.mlp.W_in"):
        import_model(p, c)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_converts_exactly(tmp_path, dtype):
    w = {k: v.to(dtype) for k, v in random_model(SMALL, 3).items()}
    p, c = write(tmp_path, tl_state(w), tl_config())
    imp = import_model(p, c)
    assert all(imp.weights[k].dtype == torch.float32 and torch.equal(imp.weights[k].to(dtype), w[k]) for k in w)


def test_float64_only_when_exactly_float32(tmp_path):
    w = random_model(SMALL, 3)
    p, c = write(tmp_path, tl_state({k: v.double() for k, v in w.items()}), tl_config())
    assert all(torch.equal(import_model(p, c).weights[k], w[k]) for k in w)
    w64 = {k: v.double() for k, v in w.items()}
    w64["W_V"][0, 0] += 1e-12
    p, c = write(tmp_path, tl_state(w64), tl_config())
    with pytest.raises(ModelError, match="blocks.0.attn.W_V' is float64 with values that are not float32"):
        import_model(p, c)


def test_pickled_model_gets_advice_and_no_code_runs(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed!",))
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match=r"pickled.*model.state_dict\(\)"):
        import_model(tmp_path / "evil.pt")


def test_truncated_files_are_named(tmp_path):
    p, c = write(tmp_path, tl_state(random_model(SMALL, 3)), tl_config(), "m.safetensors")
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(ModelError, match="corrupted or truncated"):
        import_model(p, c)
    p, c = write(tmp_path, tl_state(random_model(SMALL, 3)), tl_config(), "m.pt")
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ModelError, match="not a readable torch checkpoint"):
        import_model(p, c)


def test_unknown_layout_says_what_was_expected(tmp_path):
    p, c = write(tmp_path, {"foo.weight": torch.zeros(2, 2)}, tl_config())
    with pytest.raises(ModelError, match="unrecognised state dict.*embed.W_E"):
        import_model(p, c)


def test_nan_weight_is_named(tmp_path):
    w = random_model(SMALL, 3)
    w["W_K"][1, 1] = float("nan")
    p, c = write(tmp_path, tl_state(w), tl_config())
    with pytest.raises(ModelError, match="W_K: contains NaN"):
        import_model(p, c)


def test_checkpoint_with_transformer_lens_numpy_scalars_loads(tmp_path):
    """torch.save({"state_dict": sd, "config": model.cfg.to_dict()}): TransformerLens's raw
    to_dict() holds np.float64 (attn_scale, initializer_range) and a torch.float32 dtype."""
    import numpy as np
    w = random_model(SMALL, 3)
    raw = tl_config(attn_scale=np.float64(math.sqrt(SMALL.d_head)), initializer_range=np.float64(0.1),
                    dtype=torch.float32, n_devices=np.int64(1))
    p, _ = write(tmp_path, {"state_dict": tl_state(w), "config": raw}, name="model.pt")
    imp = import_model(p)
    assert imp.assumptions == () and all(torch.equal(w[k], imp.weights[k]) for k in w)
    # the same config as a JSON file agrees by value ("torch.float32" and torch.float32)
    c = tmp_path / "cfg.json"
    c.write_text(json.dumps(tl_config()))
    assert import_model(p, c).cfg == SMALL
    c.write_text(json.dumps(tl_config(initializer_range=0.2)))
    with pytest.raises(ModelError, match="differs"):
        import_model(p, c)


def test_numpy_values_other_than_plain_scalars_are_refused(tmp_path):
    import numpy as np
    p, _ = write(tmp_path, {"state_dict": tl_state(random_model(SMALL, 3)),
                            "config": tl_config(attn_scale=np.complex128(1j))}, name="model.pt")
    with pytest.raises(ModelError, match="(?i)pickled object of type numpy.*complex128"):
        import_model(p)


def test_random_bytes_are_not_called_pickled_objects(tmp_path):
    p = tmp_path / "random.pt"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ModelError, match="not a readable torch checkpoint") as err:
        import_model(p)
    assert "pickled" not in str(err.value) and "whole model" not in str(err.value)


def test_a_refused_object_is_named_by_type(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(ModelError, match=r"torch\.nn\.modules\.linear\.Linear \(a whole model"):
        import_model(tmp_path / "module.pt")


def test_the_source_is_the_path_as_given_and_safe_in_a_lean_comment():
    from pathlib import Path
    from certify.modelio.importers import recorded_source
    assert recorded_source(Path("../models/my model.pt")) == "../models/my model.pt"
    tricky = recorded_source(Path("a-/b/-c\n.pt"))
    assert "-/" not in tricky and "/-" not in tricky and "\n" not in tricky
