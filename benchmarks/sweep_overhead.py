"""The overhead of the Dask path against local processes, on the same seeds, side by
side in one run: `certify sweep -j 2`, `--dask -j 2` (a LocalCluster here) and
`--scheduler` (a `dask scheduler` and two `dask worker` subprocesses on 127.0.0.1).

    python benchmarks/sweep_overhead.py [--seeds 50,104,123,519] [--strategies cubic,gap] [--rounds 1]

The seeds default to shipped Max-of-4 models (nothing is trained: every mode proves the
same bits). Each mode runs the same fresh sweep (own results file and certificate
archive) as a separate `certify` process; the figure is the sweep's own time (its
`seconds`: the executor's start, checks, jobs and writes, not Python's start-up), the
process's wall time beside it. The ratio is each mode's time over `-j 2`'s. The rows
of every mode are compared with `-j 2`'s (timings aside) and must be equal.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sweep_cluster import ProcessCluster  # noqa: E402 - the test suite's real cluster (subprocesses)

TIMINGS = ("seconds", "search_seconds", "certificate")


def run_mode(root: Path, name: str, seeds: str, strategies: str, executor: list[str]) -> dict:
    out = root / name / "results.csv"
    (root / name / "models").mkdir(parents=True)
    cmd = [sys.executable, "-m", "certify", "sweep", "--seeds", seeds, "--strategies", strategies,
           "--out", str(out), "--lean-dir", str(root / name / "lean"), "--models-dir", str(root / name / "models"),
           "--json", *executor]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    info = json.loads(proc.stdout)
    rows = sorted(tuple(sorted((k, v) for k, v in r.items() if k not in TIMINGS)) for r in csv.DictReader(out.open()))
    return {"mode": name, "seconds": info["seconds"], "wall": wall, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="50,104,123,519")
    ap.add_argument("--strategies", default="cubic,gap")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the three modes, interleaved")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as tmp:
        root = Path(tmp)
        cluster = ProcessCluster(root / "cluster")
        try:
            cluster.add_worker("w1")
            cluster.add_worker("w2")
            cluster.wait_for_workers(2)
            results = []
            for r in range(args.rounds):
                for name, executor in (("-j 2", ["-j", "2"]), ("--dask -j 2", ["--dask", "-j", "2"]),
                                       ("--scheduler (2 workers)", ["--scheduler", cluster.address])):
                    results.append(run_mode(root / f"round{r}", name.split()[0].strip("-") or "j2",
                                            args.seeds, args.strategies, executor) | {"mode": name})
        finally:
            cluster.close()
    base = {r["mode"]: r for r in results if r["mode"] == "-j 2"}["-j 2"]
    n_seeds = len(args.seeds.split(","))
    print(f"seeds {args.seeds} ({n_seeds}), strategies {args.strategies}, {args.rounds} round(s); "
          f"load average {load:.1f} at start on {os.cpu_count()} CPUs (wall times under that load)")
    print(f"{'mode':<26} {'sweep s':>8} {'process wall s':>15} {'ratio to -j 2':>14}  rows equal to -j 2's")
    for mode in dict.fromkeys(r["mode"] for r in results):
        runs = [r for r in results if r["mode"] == mode]
        sec = sum(r["seconds"] for r in runs) / len(runs)
        wall = sum(r["wall"] for r in runs) / len(runs)
        base_sec = sum(r["seconds"] for r in results if r["mode"] == "-j 2") / len(runs)
        same = all(r["rows"] == base["rows"] for r in runs)
        print(f"{mode:<26} {sec:>8.1f} {wall:>15.1f} {sec / base_sec:>14.2f}  {same}")


if __name__ == "__main__":
    main()
