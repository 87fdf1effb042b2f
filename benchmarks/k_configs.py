"""One seed of each of the paper's Max-of-K configurations, phase by phase: the per-seed
times and bounds quoted in the README (section "Sweeps on a cluster").

    python benchmarks/k_configs.py [--presets paper-k5,paper-k10,...] [--seed 123] [--cubic-sample N]

Each phase is what one sweep job does (certify.experiments.sweep.run_job): train the
model (a fresh store, so training is timed), estimate the accuracy (stratified
sampling, 95% interval), run cubic, subcubic and the gap family, and render and
re-check the subcubic certificate. Wall and CPU seconds are both printed: on a shared
machine the CPU seconds are the steadier figure.

`--cubic-sample N` times the cubic proof on every N-th query token only and multiplies
by N: an EXTRAPOLATION (printed as such, with no bound), for sizes where the whole
proof takes too long here (its families (q, m) are independent, so the time is a sum
over q; every N-th q samples the cheap and the dear ones alike).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from certify.experiments.estimate import estimate_accuracy
from certify.lean.emit import CertificateFile, check_certificate_text, render_certificate
from certify.modelio.presets import PAPER_PRESETS
from certify.modelio.store import get_model
from certify.proofs.exact import path_tables
from certify.proofs.strategies import STRATEGIES, ProofInput, strategy_names


class Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU"


def time_cubic_sample(p: ProofInput, every: int) -> Clock:
    """The cubic proof over every `every`-th query token (the module's `for q in
    range(d)` loop, narrowed for this call only); the caller extrapolates."""
    from certify.proofs import strategies

    def sampled_range(*bounds):
        return range(0, bounds[0], every) if len(bounds) == 1 else range(*bounds)

    strategies.range = sampled_range  # a module global shadows the builtin
    try:
        with Clock() as c:
            strategies.run_cubic(p)
    finally:
        del strategies.range
    return c


def run(preset: str, seed: int, cubic_sample: int) -> None:
    cfg = PAPER_PRESETS[preset]
    with tempfile.TemporaryDirectory() as store:
        with Clock() as c:
            m = get_model(cfg, seed, Path(store), log=lambda _m: None)
        print(f"{preset} (K={cfg.n_ctx}, d_vocab={cfg.d_vocab}) seed {seed}: train {c}, "
              f"final loss {m.meta['final_loss']:.3g}", flush=True)
    with Clock() as c:
        est = estimate_accuracy(m.weights, cfg, seed=seed)
    print(f"  estimate {est.accuracy:.5f} [{est.ci_low:.5f}, {est.ci_high:.5f}] ({est.samples} samples): {c}",
          flush=True)
    with Clock() as c:  # shared by the strategies, as in prove_many
        p = ProofInput(cfg, m.weights, path_tables(m.weights), est.accuracy)
        p.cert()
    print(f"  exact path tables + the checker's transcription: {c}", flush=True)
    for name in (n for n in strategy_names() if n != "bruteforce"):
        if name == "cubic" and cubic_sample > 1:
            c = time_cubic_sample(p, cubic_sample)
            print(f"  cubic: 1/{cubic_sample} of the query tokens in {c}; EXTRAPOLATED whole proof "
                  f"~{c.wall * cubic_sample:.0f} s wall, ~{c.cpu * cubic_sample:.0f} s CPU (no bound)", flush=True)
            continue
        with Clock() as c:
            r = STRATEGIES[name](p)
        print(f"  {name:<28} bound {r.bound:.5f}  bound/estimate {r.bound / est.accuracy:.4f}  {c}", flush=True)
        if name == "subcubic":
            with Clock() as c:
                rep = check_certificate_text(render_certificate(
                    CertificateFile(r.witness, r.count, seed, m.sha256, name)))
            print(f"  certificate render + mirror check: {'OK' if rep.ok else rep.reason}, {c}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="paper-k5,paper-k10,paper-k10-v128,paper-k20,paper-k20-v512")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--cubic-sample", type=int, default=1, help="time cubic on every N-th query token (see above)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as in a sweep job
    for preset in args.presets.split(","):
        run(preset, args.seed, args.cubic_sample)


if __name__ == "__main__":
    main()
