"""Time and peak memory of the proofs at the paper's sizes, new code beside the old.

    python benchmarks/scale.py [--presets paper-k4,paper-k10-v128,paper-k20-v512]
        [--groups cubic,gap,paper100,bruteforce] [--seed 123] [--models models]
        [--old DIR] [--old-presets paper-k4,paper-k10-v128]

Every (implementation, preset, group) runs in a fresh child process, so its peak
resident memory (ru_maxrss, which includes Python, numpy and torch themselves) is
its own; time is wall and CPU seconds of the proof (exact path tables included,
training excluded: the model is trained or loaded first, into --models). The groups:
`cubic`, `gap`, `paper100` (the paper's 100 subcubic variants, run together as in a
sweep, sharing their pieces) and `bruteforce` (where d_vocab^K is in reach).

`--old DIR` runs the same children against another checkout of the package (e.g.
`git archive main certify | tar -x -C DIR`), for a side-by-side ratio; only on
`--old-presets` (the old code held d_vocab^3 K float64 tables, ~42 GB at K = 20,
d_vocab 512, beyond this machine). Counts of the two implementations must be equal:
a difference is printed as MISMATCH and the script exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

GROUPS = ("cubic", "gap", "paper100", "bruteforce")


def child(preset: str, group: str, seed: int, models: Path) -> dict:
    """Run one group on one model in this process; a JSON-able summary."""
    import torch
    torch.set_num_threads(1)  # as in a sweep job
    from certify.modelio.presets import PAPER_PRESETS
    from certify.modelio.store import get_model
    from certify.proofs.strategies import prove_many, strategy_names
    cfg = PAPER_PRESETS[preset]
    m = get_model(cfg, seed, models, log=lambda _m: None)
    names = {"cubic": ["cubic"], "gap": ["gap"], "bruteforce": ["bruteforce"],
             "paper100": [n for n in strategy_names() if n.count("/") == 3 and n.startswith("subcubic/")]}[group]
    wall, cpu = time.perf_counter(), time.process_time()
    results = prove_many(cfg, m.weights, names)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"preset": preset, "group": group, "strategies": len(names), "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "counts": [r.count for r in results], "total": results[0].total}


def spawn(preset: str, group: str, seed: int, models: Path, package_dir: Path | None) -> dict:
    env = dict(os.environ)
    if package_dir is not None:  # the old checkout's `certify` shadows the installed one
        env["PYTHONPATH"] = str(package_dir)
    cmd = [sys.executable, __file__, "--child", preset, group, "--seed", str(seed), "--models", str(models)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return {"preset": preset, "group": group, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(label: str, r: dict) -> str:
    if "error" in r:
        return f"  {label:<4} {r['group']:<10} FAILED: {r['error']}"
    counts = r["counts"]
    what = f"count {counts[0]}" if len(counts) == 1 else f"{len(counts)} strategies, best {max(counts)}"
    return (f"  {label:<4} {r['group']:<10} {r['wall_s']:>8.1f} s wall {r['cpu_s']:>8.1f} s CPU  "
            f"peak RSS {r['peak_rss_mb']:>6} MB  {what} of {r['total']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2, metavar=("PRESET", "GROUP"), help=argparse.SUPPRESS)
    ap.add_argument("--presets", default="paper-k4,paper-k10-v128,paper-k20-v512")
    ap.add_argument("--groups", default="cubic,gap,paper100")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--models", type=Path, default=Path("models"))
    ap.add_argument("--old", type=Path, default=None, help="a checkout holding the old `certify` package")
    ap.add_argument("--old-presets", default="paper-k4,paper-k10-v128")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.seed, args.models)))
        return
    groups = args.groups.split(",")
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        sys.exit(f"unknown group {', '.join(bad)}; known: {', '.join(GROUPS)}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    mismatch = False
    for preset in args.presets.split(","):
        spawn(preset, "gap", args.seed, args.models, None)  # trains (or loads) the model first
        print(f"{preset} seed {args.seed}:", flush=True)
        for group in groups:
            new = spawn(preset, group, args.seed, args.models, None)
            print(show("new", new), flush=True)
            if args.old is not None and preset in args.old_presets.split(","):
                old = spawn(preset, group, args.seed, args.models, args.old)
                print(show("old", old), flush=True)
                if "error" not in new and "error" not in old:
                    same = new["counts"] == old["counts"]
                    mismatch |= not same
                    print(f"       new/old wall {new['wall_s'] / max(old['wall_s'], 0.1):.2f}, CPU "
                          f"{new['cpu_s'] / max(old['cpu_s'], 0.1):.2f}; counts {'equal' if same else 'MISMATCH'}",
                          flush=True)
    sys.exit(1 if mismatch else 0)


if __name__ == "__main__":
    main()
