"""Loss bounds at full size (figures for the README; minutes, not for CI).

    python benchmarks/loss.py [--maxk-seed 123] [--skip-maxk] [--skip-sumlinear]

Sum-linear: the tutorial's two configurations (max-of-2, d_vocab 2048; max-of-3,
d_vocab 256; d_model 128), seed 0, trained here once and cached under models/; every
loss proof and the exhaustive accuracy. Max-of-K: the canonical Max-of-4 model of a
paper seed: brute-force loss, cubic and gap loss bounds.
"""

import argparse
import time
from pathlib import Path

from certify.modelio.sumlinear import SumLinearConfig, get_model
from certify.proofs import sumlinear_proofs as sl


def sumlinear(cfg: SumLinearConfig) -> None:
    m = get_model(cfg, 0, Path("models"))
    tab = sl.logit_table(m.weights, cfg.n_ctx)
    bf = sl.bruteforce_loss(tab)
    print(f"sum-linear {cfg}: exact mean loss in [{float(bf.exact.lo):.12g}, {float(bf.exact.hi):.12g}] "
          f"(relative width {bf.exact.rel_width:.2e})")
    for name, r in [("bruteforce", bf), *((n, sl.LOSS_PROOFS[n](tab, bf.exact)) for n in
                                           ("symmetry", "convexity", "convexity/pure"))]:
        print(f"  {name:<15} loss <= {r.bound:.6g}  ratio {r.ratio:.4f}  {r.seconds:.2f} s  flops {r.flops:.3g}")
    for name in ("symmetry",):
        t0 = time.perf_counter()
        correct, total, _ = sl.ACCURACY_PROOFS[name](tab, m.weights)
        print(f"  accuracy ({name}) {correct} / {total} = {correct / total:.6f}  {time.perf_counter() - t0:.2f} s")


def maxk(seed: int) -> None:
    from certify.modelio.model import Config
    from certify.modelio.store import get_model as get_maxk
    from certify.proofs.loss_maxk import prove_loss_many
    m = get_maxk(Config(), seed, Path("models"))
    for r in prove_loss_many(m.cfg, m.weights, ["bruteforce", "cubic", "subcubic"]):
        extra = f"  certified inputs {r.detail['certified_inputs']}" if "certified_inputs" in r.detail else ""
        print(f"max-of-4 seed {seed} {r.strategy:<10} loss <= {r.bound:.6g}  ratio {r.ratio:.2f}  "
              f"{r.seconds:.2f} s{extra}" + (f"  (exact in [{float(r.exact.lo):.10g}, {float(r.exact.hi):.10g}])"
                                             if r.strategy == "bruteforce" else ""))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--maxk-seed", type=int, default=123)
    ap.add_argument("--skip-maxk", action="store_true")
    ap.add_argument("--skip-sumlinear", action="store_true")
    a = ap.parse_args()
    if not a.skip_sumlinear:
        sumlinear(SumLinearConfig(256, 3, 128))
        sumlinear(SumLinearConfig(2048, 2, 128))
    if not a.skip_maxk:
        maxk(a.maxk_seed)
