"""Model-store entries as bytes, so that a model moves between the client's store and a
remote worker's private store without either process writing the other's files.

A worker gets the client's copy of a model (the same bits on every worker, whatever
its own training would give) and hands back, as bytes, any model it had to train; the
client checks it (digest, config, seed) before it enters the store, and never lets it
replace a model with other weights.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .config import Config, ModelError
from .files import atomic_write_bytes

SUFFIXES = (".safetensors", ".json")  # written in this order: the sidecar last, as save_model does


def read_entry(stem: Path) -> dict[str, bytes] | None:
    """The files of a stored model ({suffix: bytes}), or None when it is not stored."""
    paths = {s: stem.with_suffix(s) for s in SUFFIXES}
    if not all(p.is_file() for p in paths.values()):
        return None
    return {s: p.read_bytes() for s, p in paths.items()}


def write_entry(stem: Path, files: dict[str, bytes]) -> None:
    if set(files) != set(SUFFIXES):
        raise ModelError(f"a model entry needs exactly the files {', '.join(SUFFIXES)}, got {sorted(files)}")
    for suffix in SUFFIXES:
        atomic_write_bytes(stem.with_suffix(suffix), files[suffix])


def checked_sha256(files: dict[str, bytes], cfg: Config, seed: int) -> str:
    """Load the entry from a scratch directory (load_model checks shapes and the digest);
    it must be the model of this config and seed. Returns the weights' sha256."""
    from .weights import load_model
    with tempfile.TemporaryDirectory(prefix="certify-entry-") as tmp:
        stem = Path(tmp) / "model"
        write_entry(stem, files)
        loaded_cfg, _, meta = load_model(stem)
    if loaded_cfg != cfg or meta.get("seed") != seed:
        raise ModelError(f"the model sent back for seed {seed} is for config {loaded_cfg} / seed "
                         f"{meta.get('seed')}, not {cfg} / seed {seed}")
    return meta["sha256"]


def adopt_entry(models_dir: Path, cfg: Config, seed: int, files: dict[str, bytes]) -> None:
    """Store a model that a worker trained, after checking it; the same weights again
    are a no-op, other weights under the same seed are refused (the store is append-only)."""
    from .store import model_stem
    from .weights import load_model
    digest = checked_sha256(files, cfg, seed)
    stem = model_stem(models_dir, cfg, seed)
    if read_entry(stem) is not None:
        held = load_model(stem)[2]["sha256"]
        if held != digest:
            raise ModelError(f"{stem}: the store already holds weights {held[:12]}... for seed {seed}; a worker "
                             f"trained {digest[:12]}... (different CPU code paths?); refusing to replace them")
        return
    write_entry(stem, files)
