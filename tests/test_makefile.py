"""The Makefile's environment handling: Ctrl-C during the first `make` must never break the
checkout. No torch install here: tools/ensure-venv.sh is run directly, and make only with -n."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "ensure-venv.sh"


def ensure(venv_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT), str(venv_dir), sys.executable], capture_output=True, text=True)


def pip_works(venv_dir: Path) -> bool:
    return subprocess.run([str(venv_dir / "bin" / "python"), "-m", "pip", "--version"],
                          capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def healed(tmp_path_factory) -> Path:
    """A venv interrupted before pip (what Ctrl-C during `python3 -m venv` leaves), then the script."""
    d = tmp_path_factory.mktemp("venv") / ".venv"
    venv.create(d, with_pip=False)
    assert not pip_works(d)
    r = ensure(d)
    assert r.returncode == 0, r.stderr
    assert "incomplete" in r.stderr
    return d


def test_a_venv_without_pip_is_recreated(healed: Path) -> None:
    assert pip_works(healed)
    assert (healed / ".complete").is_file()


def test_a_complete_venv_is_left_alone(healed: Path) -> None:
    before = (healed / "pyvenv.cfg").stat().st_ino
    r = ensure(healed)
    assert r.returncode == 0 and r.stderr == ""
    assert (healed / "pyvenv.cfg").stat().st_ino == before


def test_a_working_venv_without_marker_is_adopted_not_rebuilt(healed: Path) -> None:
    (healed / ".complete").unlink()
    before = (healed / "pyvenv.cfg").stat().st_ino
    r = ensure(healed)
    assert r.returncode == 0 and "re-creating" not in r.stderr
    assert (healed / "pyvenv.cfg").stat().st_ino == before
    # dated like the environment: make must not re-install the dependencies into it
    assert (healed / ".complete").stat().st_mtime <= (healed / "pyvenv.cfg").stat().st_mtime + 1


def test_an_empty_directory_is_recreated(tmp_path: Path) -> None:
    d = tmp_path / ".venv"
    d.mkdir()  # interrupted before python was even linked
    r = ensure(d)
    assert r.returncode == 0, r.stderr
    assert pip_works(d) and (d / ".complete").is_file()


def make_dry(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PY")}
    r = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_make_builds_the_venv_through_the_script(tmp_path: Path) -> None:
    out = make_dry("test", f"VENV={tmp_path}/v")
    assert f"tools/ensure-venv.sh {tmp_path}/v" in out
    assert f"{tmp_path}/v/bin/python -m pip install" in out


def test_make_clean_removes_the_project_venv_but_never_your_own(tmp_path: Path) -> None:
    out = make_dry("clean", f"VENV={tmp_path}/v")
    assert "rm -rf build models results lean/.lake" in out
    assert f"rm -rf {tmp_path}/v" in out
    out = make_dry("clean", f"VENV={tmp_path}/v", "PY=python")
    assert f"{tmp_path}/v" not in out
