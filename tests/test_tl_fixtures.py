"""The importer on files made with the real TransformerLens 3.9 and 4.3.

`tests/fixtures/transformer_lens/make_fixtures.py` made them (with transformer_lens
installed; CI has none) together with TransformerLens' own exhaustive count from a
float64 forward pass, in `manifest.json`. The certified count must equal it, and every
fixture of an option the proofs do not model must be refused with its name.
"""

import json
from pathlib import Path

import pytest

from certify.proofs.bruteforce import bruteforce
from certify.proofs.exact import path_tables
from certify.modelio.importers import import_model
from certify.modelio.model import ModelError

FIXTURES = Path(__file__).parent / "fixtures" / "transformer_lens"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
# options whose fixtures the manifest lists as refused but which cannot change the
# last position's logits (measured there): accepted, and the count must still agree
ACCEPTED = {"attention_dir"}


def _paths(entry):
    return FIXTURES / entry["weights"], (FIXTURES / entry["config"]) if entry["config"] else None


def _supported(entry):
    return "tl_float64_correct" in entry["expected"] or entry.get("config_field") in ACCEPTED


@pytest.mark.parametrize("entry", [e for e in MANIFEST if _supported(e)], ids=lambda e: e["name"])
def test_certified_count_equals_transformer_lens_count(entry):
    weights, config = _paths(entry)
    imp = import_model(weights, config, assume_architecture=config is None and entry["format"] != "checkpoint")
    want = entry["expected"].get("tl_float64_correct", (entry.get("tl_check") or {}).get("tl_float64_correct"))
    assert (imp.cfg.d_vocab, imp.cfg.n_ctx, imp.cfg.d_model, imp.cfg.d_head) == (
        entry["d_vocab"], entry["n_ctx"], entry["d_model"], entry["d_head"])
    assert bruteforce(path_tables(imp.weights)).correct == want


def _needle(entry):
    field = entry.get("config_field")
    if field:
        return f"{field}="
    reason = entry["expected"]["refused"]
    for key, needle in [("bias", "non-zero biases"), ("pickled", "pickled"), ("truncated", "truncated"),
                        ("float64", "not float32 values")]:
        if key in reason:
            return needle
    raise AssertionError(f"no expected message for {entry['name']}: {reason}")


@pytest.mark.parametrize("entry", [e for e in MANIFEST if not _supported(e)], ids=lambda e: e["name"])
def test_unsupported_fixture_is_refused_by_name(entry):
    weights, config = _paths(entry)
    with pytest.raises(ModelError) as err:
        import_model(weights, config, assume_architecture=config is None)
    assert _needle(entry) in str(err.value), str(err.value)


def test_both_versions_give_the_same_weights():
    """The 4.x bridge fixture was converted from the 3.x one by TransformerLens itself."""
    a = import_model(FIXTURES / "tl3_v8k2.safetensors", FIXTURES / "tl3_v8k2.config.json")
    b = import_model(FIXTURES / "tl4_bridge_v8k2.safetensors", FIXTURES / "tl4_bridge_v8k2.config.json")
    assert a.format == "transformer-lens-3" and b.format == "transformer-lens-4-bridge"
    assert all(bool((a.weights[k] == b.weights[k]).all()) for k in a.weights)
