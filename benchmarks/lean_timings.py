"""`make lean-check`: time `lake build` per committed certificate and write docs/lean-timings.md.

Needs elan (the toolchain is the one pinned in lean/lean-toolchain). Builds the checker
once, then each certificate module on its own (`lake build +MaxKCert.Certs.<name>`),
from a clean `.lake`, and records wall-clock seconds next to the cost model's estimate
and the theorem's heartbeat budget; then times the rejection of a tampered copy of the
first certificate (claimed count + 1), which the budget bounds. Everything from the
"## The heartbeat budget" heading on is kept as it is.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LEAN = REPO / "lean"
OUT = REPO / "docs" / "lean-timings.md"


KEPT_FROM = "## The heartbeat budget"


def run(args: list[str], cwd: Path = LEAN) -> tuple[int, float]:
    t0 = time.perf_counter()
    rc = subprocess.run(args, cwd=cwd).returncode
    return rc, time.perf_counter() - t0


def time_tampered_rejection(module: str) -> tuple[int, float]:
    """`lake build` of the module in a scratch copy of lean/ (built checker included) with
    the claimed count raised by one: (exit code, seconds). A nonzero exit is the expected
    outcome."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "lean"
        shutil.copytree(LEAN, copy)
        cert = copy / "MaxKCert" / "Certs" / f"{module}.lean"
        text = cert.read_text()
        cert.write_text(re.sub(r"(check data )(\d+)( = true)", lambda m: f"{m.group(1)}{int(m.group(2)) + 1}{m.group(3)}",
                               text, count=1))
        return run(["lake", "build", f"+MaxKCert.Certs.{module}"], cwd=copy)


def main() -> None:
    if shutil.which("lake") is None:
        sys.exit("lake not found: install elan (https://github.com/leanprover/elan) first")
    sys.path.insert(0, str(REPO))
    from certify.lean.checker import Ops, certified_count
    from certify.lean.emit import parse_certificate
    from certify.lean.kernel_cost import kernel_work

    version = subprocess.run(["lake", "env", "lean", "--version"], cwd=LEAN, capture_output=True,
                             text=True).stdout.strip()
    shutil.rmtree(LEAN / ".lake", ignore_errors=True)
    rc, checker_s = run(["lake", "build", "MaxKCert.Checker"])
    if rc:
        sys.exit("building MaxKCert.Checker failed")
    rows = []
    for path in sorted((LEAN / "MaxKCert" / "Certs").glob("*.lean")):
        ops = Ops()
        certified_count(parse_certificate(path.read_text()).cert, ops)
        rc, secs = run(["lake", "build", f"+MaxKCert.Certs.{path.stem}"])
        budget = re.search(r"^set_option maxHeartbeats (\d+) in$", path.read_text(), re.MULTILINE)
        rows.append((path.stem, "ok" if rc == 0 else f"FAILED (exit {rc})", secs, kernel_work(ops).steps,
                     budget.group(1) if budget else "-"))
    rc, audit_s = run(["lake", "build", "MaxKCertAudit"])
    tampered = rows[0][0] if rows else None
    tampered_rc, tampered_s = time_tampered_rejection(tampered) if tampered else (1, 0.0)
    lines = ["# `lake build` timings", "",
             f"Measured by `make lean-check` on {datetime.date.today().isoformat()}, {version},",
             f"{platform.machine()}, {os.cpu_count()} CPUs. Clean `.lake`; the checker module built first",
             f"({checker_s:.1f} s); the axiom audit afterwards ({audit_s:.1f} s, {'ok' if rc == 0 else 'FAILED'}).", "",
             "| certificate | result | seconds | estimated kernel steps (certify/lean/kernel_cost.py) | maxHeartbeats |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {res} | {secs:.1f} | {steps:,} | {budget} |" for name, res, secs, steps, budget in rows]
    if tampered:
        lines += ["", f"Tampered copy of {tampered} (claimed count + 1): "
                      f"{'rejected' if tampered_rc else 'ACCEPTED (a defect)'} after {tampered_s:.1f} s."]
    old = OUT.read_text() if OUT.exists() else ""
    kept = old[old.index(KEPT_FROM):] if KEPT_FROM in old else ""
    OUT.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    print(OUT.read_text())
    if any(r[1] != "ok" for r in rows) or rc or (tampered and tampered_rc == 0):
        sys.exit(1)


if __name__ == "__main__":
    main()
