"""End to end with the real TransformerLens (skipped where it is not installed: CI).

Build a small model with the installed TransformerLens (3.x HookedTransformer or 4.x
TransformerBridge), save it the way the README tells users to, run `certify
bruteforce --model`, and compare with TransformerLens' own float64 forward pass.
"""

import copy
import itertools
import json
import subprocess
import sys

import pytest

tl = pytest.importorskip("transformer_lens")
torch = pytest.importorskip("torch")

D_VOCAB, K = 7, 3


def _major() -> int:
    from importlib.metadata import version
    return int(version("transformer_lens").split(".")[0])


def _build():
    """(model, config dict, state dict) with zero biases, random weights (seeded)."""
    torch.manual_seed(0)
    kwargs = dict(n_layers=1, n_heads=1, d_model=8, d_head=8, n_ctx=K, d_vocab=D_VOCAB, attn_only=True,
                  normalization_type=None, positional_embedding_type="standard", act_fn="relu", seed=0)
    if _major() < 4:  # 3.x: HookedTransformer
        model = tl.HookedTransformer(tl.HookedTransformerConfig(**kwargs))
    else:  # 4.x
        import transformer_lens.model_bridge.sources.native  # noqa: F401 - attaches boot_native
        from transformer_lens.model_bridge import TransformerBridge
        from transformer_lens.config import TransformerBridgeConfig
        model = TransformerBridge.boot_native(TransformerBridgeConfig(**kwargs))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.split(".")[-1].startswith("b_"):
                p.zero_()
    return model, json.loads(json.dumps(model.cfg.to_dict(), default=str)), model.state_dict()


def test_certified_count_equals_transformer_lens(tmp_path):
    model, config, state = _build()
    torch.save(state, tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps(config))
    toks = torch.tensor(list(itertools.product(range(D_VOCAB), repeat=K)))
    with torch.no_grad():
        logits = copy.deepcopy(model).to(torch.float64)(toks)[:, -1, :]
    label = toks.max(dim=1).values
    right = logits.gather(1, label[:, None])[:, 0]
    logits[torch.arange(len(toks)), label] = -torch.inf
    want = int((right > logits.max(dim=1).values).sum())
    (tmp_path / "models").mkdir()
    proc = subprocess.run([sys.executable, "-m", "certify", "bruteforce", "--model", str(tmp_path / "model.pt"),
                           "--config", str(tmp_path / "config.json"), "--models-dir", str(tmp_path / "models"),
                           "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["correct"] == want
