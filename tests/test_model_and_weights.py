
import pytest
import torch

from certify.modelio.model import Config, ModelError, validate_weights
from certify.modelio.train import TrainParams, train
from certify.modelio.weights import load_model, save_model, weights_sha256
from helpers import random_model

SMALL = Config(d_vocab=6, n_ctx=3, d_model=8, d_head=4)


def test_training_is_bit_identical_for_the_same_seed():
    params = TrainParams(steps=60)
    w1, loss1 = train(SMALL, 7, params)
    w2, loss2 = train(SMALL, 7, params)
    w3, _ = train(SMALL, 8, params)
    assert loss1 == loss2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert weights_sha256(w1) == weights_sha256(w2) != weights_sha256(w3)


def test_save_load_round_trip(tmp_path):
    w = random_model(SMALL, 1)
    save_model(tmp_path / "m", SMALL, w, {"seed": 1})
    cfg, w2, meta = load_model(tmp_path / "m")
    assert cfg == SMALL and meta["seed"] == 1
    assert all(torch.equal(w[k], w2[k]) for k in w)
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind


def test_truncated_file_is_a_clear_error(tmp_path):
    save_model(tmp_path / "m", SMALL, random_model(SMALL, 1), {"seed": 1})
    p = tmp_path / "m.safetensors"
    p.write_bytes(p.read_bytes()[:-40])
    with pytest.raises(ModelError, match="corrupted or truncated"):
        load_model(tmp_path / "m")


def test_changed_weight_fails_the_sha256(tmp_path):
    from safetensors.torch import load, save
    save_model(tmp_path / "m", SMALL, random_model(SMALL, 1), {"seed": 1})
    p = tmp_path / "m.safetensors"
    tensors = load(p.read_bytes())
    tensors["W_U"][0, 0] += 1.0
    p.write_bytes(save(tensors))
    with pytest.raises(ModelError, match="sha256"):
        load_model(tmp_path / "m")


def test_bad_sidecar_json(tmp_path):
    save_model(tmp_path / "m", SMALL, random_model(SMALL, 1), {"seed": 1})
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(tmp_path / "m")


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="file not found"):
        load_model(tmp_path / "nothing")


@pytest.mark.parametrize("name,bad,msg", [
    ("W_Q", torch.full((8, 4), float("nan")), "W_Q: contains NaN"),
    ("W_E", torch.zeros(5, 8), r"W_E: shape must be \[6, 8\]"),
    ("W_U", torch.zeros(8, 6, dtype=torch.float64), "W_U: dtype must be float32"),
])
def test_validation_names_tensor_and_problem(name, bad, msg):
    w = random_model(SMALL, 1)
    w[name] = bad
    with pytest.raises(ModelError, match=msg):
        validate_weights(SMALL, w)


def test_nan_weights_rejected_on_save_and_load(tmp_path):
    from safetensors.torch import save
    w = random_model(SMALL, 1)
    save_model(tmp_path / "m", SMALL, w, {"seed": 1})
    w["W_V"][0, 0] = float("inf")
    (tmp_path / "m.safetensors").write_bytes(save(w))
    with pytest.raises(ModelError, match="W_V: contains NaN or infinite"):
        load_model(tmp_path / "m")


def test_bad_config_rejected():
    with pytest.raises(ModelError, match="d_vocab"):
        Config(d_vocab=0)


TRAIN_SCRIPT = """
from certify.cli import pin_cpu_code_paths
pin_cpu_code_paths()  # what `certify ...` does first, before torch is imported
from certify.modelio.model import Config
from certify.modelio.train import TrainParams, train
from certify.modelio.weights import weights_sha256
print(weights_sha256(train(Config(6, 3, 8, 8), 1, TrainParams(steps=300))[0]))
"""


def _train_digest(env_extra: dict) -> str:
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "CERTIFY_CPU_PINS")}
    proc = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT], capture_output=True, text=True,
                          env={**env, **env_extra})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_cpu_pins_make_training_independent_of_the_code_path():
    """The command line pins ATen's CPU capability and MKL's dispatch before torch is
    imported, so machines whose default paths differ train the same bits."""
    unpinned = {_train_digest({"CERTIFY_CPU_PINS": "off", "ATEN_CPU_CAPABILITY": cap})
                for cap in ("default", "avx2")}
    if len(unpinned) == 1:
        pytest.skip("this machine trains the same bits on every code path: the pins cannot be tested here")
    pinned = {_train_digest(extra) for extra in
              ({"ATEN_CPU_CAPABILITY": "avx2"}, {"ATEN_CPU_CAPABILITY": "default"}, {"MKL_CBWR": "AVX2"}, {})}
    assert len(pinned) == 1
