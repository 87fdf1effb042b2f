"""Atomic file writes: a temporary file renamed into place, so that an interrupted
write never leaves a half-written model, certificate or summary behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .config import ModelError


def umask_mode() -> int:
    """The mode open() would give a new file (0666 less the umask); mkstemp's is 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so no half-written file is ever left.
    The file gets the mode a plain write would (the umask), not mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


DEFAULT_MODELS_DIR = Path("models")


def check_models_dir(models_dir: Path) -> None:
    """A --models-dir that does not exist is a typo, not a request to retrain everything."""
    if models_dir != DEFAULT_MODELS_DIR and not models_dir.is_dir():
        raise ModelError(f"--models-dir {models_dir}: no such directory (create it first if you mean a new "
                         f"model store; the default is {DEFAULT_MODELS_DIR}/)")


def require_file(path: Path, what: str, label: str | None = None) -> None:
    """`path` is a regular file; otherwise a ModelError that says which of 'not found'
    and 'is a directory' it is (`label`: how the user gave it, e.g. '--config x')."""
    name = label or str(path)
    if path.is_dir():
        raise ModelError(f"{name}: is a directory; give the {what} file")
    if not path.is_file():
        raise ModelError(f"{name}: {what} file not found")


def model_ref_is_path(ref: str, with_config: bool) -> bool:
    """`--model REF` names a file (not an imported model's id or name) when it exists as
    one, holds a '/', has a checkpoint suffix, or comes with a config."""
    p = Path(ref)
    return p.exists() or with_config or "/" in ref or p.suffix in (".pt", ".pth", ".safetensors")


def read_json_object(path: Path, what: str) -> dict:
    """A JSON object from `path`; a missing, unreadable or non-object file is a
    ModelError naming the file and `what` it should have been."""
    require_file(path, what)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: {what} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: {what} must be a JSON object")
    return data
