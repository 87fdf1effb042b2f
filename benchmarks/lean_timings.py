"""`make lean-check`: time `lake build` per committed certificate and write docs/lean-timings.md.

Needs elan (the toolchain is the one pinned in lean/lean-toolchain). Builds the checker
once, then each certificate module on its own (`lake build +MaxKCert.Certs.<name>`),
from a clean `.lake`, and records wall-clock seconds next to the cost model's estimate.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LEAN = REPO / "lean"
OUT = REPO / "docs" / "lean-timings.md"


def run(args: list[str]) -> tuple[int, float]:
    t0 = time.perf_counter()
    rc = subprocess.run(args, cwd=LEAN).returncode
    return rc, time.perf_counter() - t0


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
        rows.append((path.stem, "ok" if rc == 0 else f"FAILED (exit {rc})", secs, kernel_work(ops).steps))
    rc, audit_s = run(["lake", "build", "MaxKCertAudit"])
    lines = ["# `lake build` timings", "",
             f"Measured by `make lean-check` on {datetime.date.today().isoformat()}, {version},",
             f"{platform.machine()}, {os.cpu_count()} CPUs. Clean `.lake`; the checker module built first",
             f"({checker_s:.1f} s); the axiom audit afterwards ({audit_s:.1f} s, {'ok' if rc == 0 else 'FAILED'}).", "",
             "| certificate | result | seconds | estimated kernel steps (certify/lean/kernel_cost.py) |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {res} | {secs:.1f} | {steps:,} |" for name, res, secs, steps in rows]
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())
    if any(r[1] != "ok" for r in rows) or rc:
        sys.exit(1)


if __name__ == "__main__":
    main()
