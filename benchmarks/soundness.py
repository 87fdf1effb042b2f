"""Soundness at scale. Prints the tally; exits non-zero on a violation.

--suite maxk (default): N random and adversarial small Max-of-K models; no strategy may
certify more inputs than the exhaustive count.
--suite extremes: N edge-of-domain models (tests/extremes.py `random_case`): Max-of-K at
every float32 magnitude (subnormal .. near 3e38, score spreads to 1e38) and sum-linear
float-sum ties, integer ties and magnitudes for K 2..16; every accuracy proof against an
exact count and every loss proof against an mpmath mean (tests/references.py), a
strategy error counting as a violation. --shard I/S runs the I-th of S interleaved slices.

    python benchmarks/soundness.py [--n 2000]
    python benchmarks/soundness.py --suite extremes --n 2000 [--shard 0/2]
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
from extremes import random_case  # noqa: E402

PROOFS = ("cubic", "gap", *(v.replace("subcubic/", "gap/", 1) for v in VARIANTS), *PAPER_VARIANTS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suite", choices=("maxk", "extremes"), default="maxk")
    ap.add_argument("--shard", default="0/1", help="I/S: run models i with i %% S == I")
    args = ap.parse_args()
    shard, shards = (int(x) for x in args.shard.split("/"))
    if args.suite == "extremes":
        sys.exit(extremes(args.n, args.seed, shard, shards))
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


def extremes(n: int, seed: int, shard: int, shards: int) -> int:
    """The edge-of-domain suite; returns the exit status."""
    from collections import Counter
    rng = random.Random(seed)
    t0 = time.perf_counter()
    families, violations, models = Counter(), 0, 0
    for i in range(n):
        label, check = random_case(rng)  # drawn for every i, so shards see the same sequence
        if i % shards != shard:
            continue
        models += 1
        families[" ".join(label.split()[:2])] += 1
        try:
            found = check()
        except Exception as err:  # noqa: BLE001 - a crash on a legal model is a violation, not the end
            found = [f"crashed: {type(err).__name__}: {err}"]
        for v in found:
            violations += 1
            print(f"VIOLATION: model {i} ({label}): {v}", flush=True)
    print(f"extremes suite, seed {seed}, shard {shard}/{shards}: {models} models in "
          f"{time.perf_counter() - t0:.0f} s; violations: {violations}")
    for name, k in sorted(families.items()):
        print(f"  {name:<24} {k} models")
    return 1 if violations else 0


if __name__ == "__main__":
    main()
