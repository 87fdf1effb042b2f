"""Which code this process runs: a digest of the installed package's source files.

The version string does not change with the code (it stayed "0.1.0" for 88 commits);
a sweep's client and its workers must run the same proofs, so they compare this.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_SUFFIXES = (".py", ".j2")  # the code and the certificate templates (not the shipped weights)


def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over every source file of the package, in path order: relative path, NUL,
    length, NUL, bytes. Caches (__pycache__) and build leftovers are not sources."""
    h = hashlib.sha256()
    files = sorted(p for p in package_dir.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()
                   and "__pycache__" not in p.parts)
    for p in files:
        data = p.read_bytes()
        h.update(p.relative_to(package_dir).as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()
