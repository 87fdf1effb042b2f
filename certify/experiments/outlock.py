"""An exclusive lock on a sweep's output, so that two sweeps never append to one file.

The lock is `<out>.lock`, held with flock(2) for the sweep's life and naming its holder
(pid, host, start time). The kernel drops the lock when the holder dies, so a lock file
left by a killed sweep is stale by construction and is simply taken over; the file's
contents only serve to name a live holder in the refusal.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class OutputLocked(RuntimeError):
    """Another sweep holds the lock on this output."""


def lock_path(out: Path) -> Path:
    return out.with_suffix(".lock")


def holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on host {info['host']}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its name"


@contextmanager
def output_lock(out: Path) -> Iterator[Path]:
    """Hold `<out>.lock` exclusively, or raise OutputLocked naming the holder."""
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLocked(f"{out} is in use by another sweep ({holder_text(path)}); wait for it to finish "
                               f"(the lock {path} goes when it does)") from None
        try:  # the holder we beat may have unlinked the file after we opened it: lock the live one
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
        yield path
    finally:
        try:
            path.unlink(missing_ok=True)  # while still holding it: a waiter re-checks the inode
        finally:
            os.close(fd)
