"""The Lean kernel's expected work per certificate: the checker mirror's Nat and Int
operation counts, split by phase, weighed by the kernel cost model of
`certify/lean/kernel_cost.py` (weights and their grounding in Lean's sources are stated there).
Prints the figures quoted in the README ("Proof cost").

    python benchmarks/kernel_work.py [--json] [CERTIFICATE.lean ...]
        (default: lean/MaxKCert/Certs/*.lean)

`--json` prints one JSON line per certificate with `nat_ops`, `int_ops`,
`kernel_steps_estimate` (and the legacy checker's figure for the committed seed-123
certificate). No torch needed: it parses the certificate text, as `certify check` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from certify.lean.checker import Ops, build_context, certified_count, path_tables, validate
from certify.lean.emit import parse_certificate
from certify.lean.kernel_cost import (INT_CMP_STEPS, INT_STEPS, LEGACY_SEED123, NAT_STEPS, STEPS_PER_MINUTE,
                                 kernel_work)

REPO = Path(__file__).resolve().parent.parent
LEGACY_SHA = "51c6508c59646032f4191df8856bab9b1f17fac6068b89f6ecb15ef118f17ccf"


def phases(path: Path) -> tuple[int, str, dict[str, Ops]]:
    """(certified count, weights sha256, operations per phase)."""
    cf = parse_certificate(path.read_text())
    cert = cf.cert
    validate(cert)
    ops = Ops()
    tables = path_tables(cert, ops)
    after_tables = Ops(ops.nat, ops.int)
    build_context(cert, tables, ops)
    after_context = Ops(ops.nat, ops.int)
    total = Ops()
    count = certified_count(cert, total)  # the whole check, as `certify check` runs it
    return count, cf.sha256, {
        "path tables": after_tables,
        "derived tables": Ops(after_context.nat - after_tables.nat, after_context.int - after_tables.int),
        "family checks": Ops(total.nat - after_context.nat, total.int - after_context.int),
        "total": total}


def main(argv: list[str]) -> None:
    as_json = "--json" in argv
    paths = [Path(a) for a in argv if a != "--json"] or sorted((REPO / "lean" / "MaxKCert" / "Certs").glob("*.lean"))
    if not paths:
        sys.exit("no certificate found: run `make certify SEED=123` first")
    for path in paths:
        count, sha, by_phase = phases(path)
        work = kernel_work(by_phase["total"])
        legacy = LEGACY_SEED123 if sha == LEGACY_SHA else None
        if as_json:
            row = {"certificate": path.name, "count": count, "nat_ops": work.nat_ops, "int_ops": work.int_ops,
                   "kernel_steps_estimate": work.steps,
                   "weights": {"nat": NAT_STEPS, "int": INT_STEPS, "int_compare": INT_CMP_STEPS}}
            if legacy:
                row["legacy"] = {"nat_ops": legacy.nat_ops, "int_ops": legacy.int_ops,
                                 "int_compare_ops": legacy.int_cmp_ops, "kernel_steps_estimate": legacy.steps}
            print(json.dumps(row, sort_keys=True))
            continue
        print(f"{path.name}: certifies {count:,} inputs")
        for name, n in by_phase.items():
            print(f"  {name:<15} {n.nat:>9,} Nat ops  {n.int:>9,} Int ops")
        print(f"  kernel steps (estimate: {NAT_STEPS} per Nat op, {INT_STEPS} per Int op, "
              f"{INT_CMP_STEPS} per Int comparison): {work.steps:,}"
              f"  (~{60 * work.steps / STEPS_PER_MINUTE:.0f} s at {STEPS_PER_MINUTE:,} steps/min; unmeasured)")
        if legacy:
            print(f"  the checker before issue 11 on these weights: {legacy.nat_ops:,} Nat ops, "
                  f"{legacy.int_ops:,} Int ops ({legacy.int_cmp_ops:,} comparisons): {legacy.steps:,} steps; "
                  f"now {work.steps / legacy.steps:.3f} of that")


if __name__ == "__main__":
    main(sys.argv[1:])
