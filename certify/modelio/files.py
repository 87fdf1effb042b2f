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


def read_json_object(path: Path, what: str) -> dict:
    """A JSON object from `path`; a missing, unreadable or non-object file is a
    ModelError naming the file and `what` it should have been."""
    if not path.is_file():
        raise ModelError(f"{path}: {what} file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: {what} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: {what} must be a JSON object")
    return data
