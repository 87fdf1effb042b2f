"""Soundness at scale: N random and adversarial small models; no strategy may certify
more inputs than the exhaustive count. Prints the tally; exits non-zero on a violation.

    python benchmarks/soundness.py [--n 2000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from certify.proofs.bruteforce import bruteforce  # noqa: E402
from certify.proofs.exact import path_tables  # noqa: E402
from certify.proofs.strategies import prove_many  # noqa: E402
from certify.proofs.paper_subcubic import PAPER_VARIANTS  # noqa: E402
from certify.proofs.variants import VARIANTS  # noqa: E402
from models import KINDS, SMALL_CONFIGS, make_model  # noqa: E402

PROOFS = ("cubic", "gap", *(v.replace("subcubic/", "gap/", 1) for v in VARIANTS), *PAPER_VARIANTS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    tally = {"models": 0, "violations": 0, "truth": 0, **{name: 0 for name in PROOFS}}
    for i in range(args.n):
        cfg = rng.choice(SMALL_CONFIGS)
        kind = KINDS[i % len(KINDS)]
        w = make_model(cfg, kind, rng.randrange(60), rng.randrange(cfg.d_vocab), rng.randrange(cfg.d_vocab),
                       rng.random())
        truth = bruteforce(path_tables(w)).correct
        tally["models"] += 1
        tally["truth"] += truth
        for r in prove_many(cfg, w, list(PROOFS)):  # shared tables: the paper's 100 share their pieces
            name, count = r.strategy, r.count
            tally[name] += count
            if count > truth:
                tally["violations"] += 1
                print(f"VIOLATION: model {i} {cfg} {kind}: {name} certified {count} > {truth}")
    print(f"{tally['models']} models in {time.perf_counter() - t0:.0f} s; strategies checked per model: "
          f"{len(PROOFS)}; violations: {tally['violations']}")
    for name in PROOFS:
        print(f"  {name:<28} certified / true inputs: {tally[name] / tally['truth']:.3f}")
    sys.exit(1 if tally["violations"] else 0)


if __name__ == "__main__":
    main()
