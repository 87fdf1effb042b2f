"""Model files: safetensors (no pickle) plus a JSON sidecar, written atomically.

The sidecar holds the config, seed, training hyper-parameters, final loss, the sha256
of the tensors and the exhaustive accuracy. Loading validates everything and raises
`ModelError` naming the problem; it never executes code from the file.
"""

from __future__ import annotations

import json
from pathlib import Path


from .digest import weights_sha256_arrays
from .files import atomic_write_bytes, atomic_write_text, read_json_object
from .model import WEIGHT_NAMES, Config, ModelError, Weights, validate_weights


def weights_sha256(weights: Weights) -> str:
    """sha256 in the one canonical form of `certify.modelio.digest` (-0.0 hashed as +0.0)."""
    return weights_sha256_arrays({n: weights[n].detach().cpu().numpy() for n in WEIGHT_NAMES})


def write_model_files(stem: Path, tensors: dict, config: dict, meta: dict, sha256: str) -> None:
    """Write `<stem>.safetensors` and `<stem>.json` (tensors first, sidecar last), for any
    architecture: the sidecar is the config, the metadata and the weights' sha256."""
    from safetensors.torch import save

    blob = save({k: t.contiguous() for k, t in tensors.items()})
    sidecar = {"config": config, **meta, "sha256": sha256}
    atomic_write_bytes(stem.with_suffix(".safetensors"), blob)
    atomic_write_text(stem.with_suffix(".json"), json.dumps(sidecar, indent=2, sort_keys=True) + "\n")


def read_model_files(stem: Path, validate, digest) -> tuple[dict, dict]:
    """(sidecar, tensors) of `<stem>`, for any architecture: `validate(sidecar, tensors)`
    checks the tensors against the sidecar's config, `digest(tensors)` must equal the
    sidecar's sha256. Any defect raises ModelError naming the file and the problem."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    st_path, json_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not st_path.is_file():
        raise ModelError(f"{st_path}: file not found")
    sidecar = read_json_object(json_path, "sidecar")
    if "config" not in sidecar or "sha256" not in sidecar:
        raise ModelError(f"{json_path}: sidecar needs 'config' and 'sha256'")
    try:
        tensors = load(st_path.read_bytes())
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as err:
        raise ModelError(f"{st_path}: corrupted or truncated safetensors file ({err})") from None
    try:
        validate(sidecar, tensors)
    except ModelError as err:
        raise ModelError(f"{st_path}: {err}") from None
    found = digest(tensors)
    if found != sidecar["sha256"]:
        raise ModelError(f"{st_path}: sha256 {found[:12]}... does not match the sidecar's "
                         f"{str(sidecar['sha256'])[:12]}...; the file was changed or corrupted")
    return sidecar, tensors


def save_model(stem: Path, cfg: Config, weights: Weights, meta: dict) -> None:
    """A Max-of-K model's files (validated first)."""
    validate_weights(cfg, weights)
    write_model_files(stem, {k: weights[k] for k in WEIGHT_NAMES}, cfg.to_dict(), meta, weights_sha256(weights))


def load_model(stem: Path) -> tuple[Config, Weights, dict]:
    """Load and validate a model; any defect raises ModelError naming the file and problem."""
    sidecar, weights = read_model_files(
        stem, lambda side, w: validate_weights(Config.from_dict(side["config"]), w), weights_sha256)
    return Config.from_dict(sidecar["config"]), weights, sidecar
