"""Canonical shipped models and the append-only certificate archive.

Training bits depend on the CPU's code paths, so the repository ships the weights that
every machine certifies: the 151 paper seeds, and the model behind every committed
certificate. These tests tie the committed archive to those weights.
"""

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from certify.lean.emit import (CURRENT_FORMAT, CertificateError, CertificateFile, check_certificate_text, emit,
                               matching_format, parse_certificate, render_certificate)
from certify.modelio.model import Config
from certify.modelio.seeds import PAPER151
from certify.modelio.store import SHIPPED_DIR, model_stem, shipped_by_digest, shipped_model
from certify.proofs.strategies import prove

REPO = Path(__file__).resolve().parent.parent
CERTS = sorted((REPO / "lean" / "MaxKCert" / "Certs").glob("*.lean"))
PAPER = Config(64, 4, 32, 32)


def test_every_paper_seed_is_shipped_with_a_valid_digest():
    for seed in PAPER151:
        assert model_stem(SHIPPED_DIR, PAPER, seed).with_suffix(".safetensors").is_file(), seed
    m = shipped_model(PAPER, 50)  # loading checks the sidecar's sha256 against the tensors
    assert m.meta["trained_with"]["cpu_capability"] == "DEFAULT" and m.meta["trained_with"]["mkl_cbwr"] == "COMPATIBLE"


@pytest.mark.parametrize("path", CERTS, ids=lambda p: p.stem)
def test_committed_certificate_is_the_shipped_models_and_reemits_byte_identical(path, tmp_path):
    """Re-proving the shipped model re-emits the committed certificate: byte for byte when
    it is in today's format; an archived one (committed before issue 18) gets the same
    proof in today's format, and rendering that in the archived format gives its bytes."""
    text = path.read_text(encoding="utf-8")
    cf = parse_certificate(text)
    m = shipped_by_digest(cf.sha256)
    assert m is not None, f"no shipped model has the weights of {path.name}"
    assert check_certificate_text(text).ok
    fmt = matching_format(cf, text)
    r = prove(m.cfg, m.weights, cf.strategy)
    e = emit(CertificateFile(r.witness, r.count, m.seed, m.sha256, cf.strategy, model_name=m.name),
             r.checker_ops, tmp_path / "lean")
    assert e.lean_path.name == path.name
    emitted = e.lean_path.read_text(encoding="utf-8")
    assert render_certificate(parse_certificate(emitted), fmt=fmt) == text
    summary = json.loads(e.summary_path.read_text())
    committed = json.loads(path.with_suffix(".json").read_text())
    assert summary["strategy"] == CURRENT_FORMAT.strategy_label and committed["strategy"] == fmt.strategy_label
    assert {**summary, "strategy": fmt.strategy_label} == committed
    if fmt is CURRENT_FORMAT:
        assert emitted == text
        assert e.summary_path.read_bytes() == path.with_suffix(".json").read_bytes()


def test_emitting_over_a_certificate_of_other_weights_is_refused(tmp_path):
    src = CERTS[0]
    cf = parse_certificate(src.read_text(encoding="utf-8"))
    m = shipped_by_digest(cf.sha256)
    r = prove(m.cfg, m.weights, cf.strategy)
    target = CertificateFile(r.witness, r.count, m.seed, m.sha256, cf.strategy)
    shutil.copytree(REPO / "lean", tmp_path / "lean", ignore=shutil.ignore_patterns(".lake"))
    certs = tmp_path / "lean" / "MaxKCert" / "Certs"
    other = "0" * 64
    (certs / f"{target.module}.lean").write_text(src.read_text().replace(cf.sha256, other))
    with pytest.raises(CertificateError, match=f"weights {other}, not {cf.sha256}"):
        emit(target, r.checker_ops, tmp_path / "lean")


def test_run_seed_123_leaves_the_committed_archive_untouched(tmp_path):
    lean = tmp_path / "lean"
    shutil.copytree(REPO / "lean", lean, ignore=shutil.ignore_patterns(".lake"))
    (tmp_path / "models").mkdir()
    proc = subprocess.run([sys.executable, "-m", "certify", "run", "--seed", "123", "--lean-dir", str(lean),
                           "--models-dir", str(tmp_path / "models"), "--json"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "training" not in proc.stderr  # the shipped model, not a local training run
    cmp = filecmp.dircmp(REPO / "lean", lean, ignore=[".lake"])

    def differences(c):
        return c.left_only + c.right_only + c.diff_files + [d for s in c.subdirs.values() for d in differences(s)]
    assert differences(cmp) == []
    assert json.loads(proc.stdout)["lean_path"].endswith(".lean")
