"""Speed and tightness on Max-of-4 seeds: prints the figures quoted in the README.

    python benchmarks/bench.py [--seeds 123,50,104] [--models-dir models]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from certify.modelio.model import Config
from certify.modelio.seeds import parse_seeds
from certify.modelio.store import get_model
from certify.proofs.strategies import prove


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="123,50,104")
    ap.add_argument("--models-dir", type=Path, default=Path("models"))
    args = ap.parse_args()
    cfg = Config()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}")
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for seed in parse_seeds(args.seeds):
        t0 = time.perf_counter()
        m = get_model(cfg, seed, args.models_dir)
        load = time.perf_counter() - t0
        acc = m.meta["exhaustive"]["accuracy"]
        print(f"seed {seed}: model ready in {load:.1f} s, exhaustive accuracy {acc:.6f}")
        for name in ("bruteforce", "cubic", "subcubic"):
            r = prove(cfg, m.weights, name, acc)
            rows.setdefault(name, []).append((r.seconds + r.search_seconds, r.ratio, r.checker_ops))
            print(f"  {name:<10} {r.seconds:6.2f} s check + {r.search_seconds:5.2f} s search   "
                  f"bound {r.bound:.6f}  ratio {r.ratio:.4f}  ops {r.checker_ops:.3g}")
    print("\nmean over seeds:")
    for name, vals in rows.items():
        secs, ratios, ops = zip(*vals)
        print(f"  {name:<10} time {statistics.mean(secs):6.2f} s   ratio {statistics.mean(ratios):.4f}"
              f"   checker ops {statistics.mean(ops):.3g}")


if __name__ == "__main__":
    main()
