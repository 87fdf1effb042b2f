"""The Lean kernel's expected work per certificate: the checker mirror's operation count,
split by phase, against the 250k-simple-kernel-steps-per-minute yardstick of
../shared/lean-notes.md. Prints the figures quoted in the README ("Proof cost").

    python benchmarks/kernel_work.py [CERTIFICATE.lean ...]   (default: lean/MaxKCert/Certs/*.lean)

No torch needed: it parses the certificate text, as `certify check` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from certify.lean.checker import Ops, build_context, certified_count, path_tables, validate
from certify.lean.emit import parse_certificate

REPO = Path(__file__).resolve().parent.parent
STEPS_PER_MINUTE = 250_000  # third-party measurement of `decide +kernel` (lean-notes.md)


def phases(path: Path) -> tuple[int, dict[str, int]]:
    """(certified count, operations per phase): path tables, derived tables, family checks."""
    cert = parse_certificate(path.read_text()).cert
    validate(cert)
    ops = Ops()
    tables = path_tables(cert, ops)
    after_tables = ops.n
    build_context(cert, tables, ops)
    after_context = ops.n
    total = Ops()
    count = certified_count(cert, total)  # the whole check, as `certify check` runs it
    return count, {"path tables": after_tables, "derived tables": after_context - after_tables,
                   "family checks": total.n - after_context, "total": total.n}


def main(argv: list[str]) -> None:
    paths = [Path(a) for a in argv] or sorted((REPO / "lean" / "MaxKCert" / "Certs").glob("*.lean"))
    if not paths:
        sys.exit("no certificate found: run `make certify SEED=123` first")
    for path in paths:
        count, by_phase = phases(path)
        print(f"{path.name}: certifies {count:,} inputs")
        for name, n in by_phase.items():
            print(f"  {name:<15} {n:>9,} ops")
        minutes = by_phase["total"] / STEPS_PER_MINUTE
        print(f"  at {STEPS_PER_MINUTE:,} kernel steps per minute, if one op is one step: "
              f"{60 * minutes:.0f} s (unmeasured: no Lean toolchain here)")


if __name__ == "__main__":
    main(sys.argv[1:])
