"""The wheel ships what a non-editable install needs to emit: the top-level templates/
mapped into certify.lean.templates (no copy in the repository), and the canonical models."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_the_templates_and_the_shipped_models(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    templates = {p.name for p in (ROOT / "templates").glob("*.j2")}
    assert templates and {f"certify/lean/templates/{t}" for t in templates} <= set(names)
    assert any(n.startswith("certify/modelio/shipped/") and n.endswith(".safetensors") for n in names)
    assert not (ROOT / "certify" / "lean" / "templates").exists()  # one copy: the top-level one
