"""The talk's "compounding errors" table: bounds on the row differences of the attention
error term (the residual E_q3 Q_perp K_perp^T E_k3^T of the subproduct decomposition,
in EQKE units, before the 1/sqrt(d_head) scale), all sound (outward-rounded intervals).

    python benchmarks/compounding.py [--seed 123]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from certify.modelio.model import Config
from certify.modelio.store import get_model
from certify.proofs.paper_subcubic import (Shared, eqke_subproduct, eqke_svd, product, row_diff_best_split,
                                           row_diff_recursive)
from certify.proofs.sound_linalg import spectral_norm_upper


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args()
    m = get_model(Config(), args.seed, Path("models"))
    s = Shared(m.weights, 32)
    _, chain = eqke_subproduct(s)[0]
    res = product(chain)
    mag = np.maximum(np.abs(res.lo), np.abs(res.hi))
    rows = [("exact max row diff (multiplied out)", res.row_range().max()),
            ("2 * max |entry|", 2 * mag.max()),
            ("max row diff on the subproduct (best split)", row_diff_best_split(chain, False).max()),
            ("recursive max row diff", row_diff_recursive(chain, False, False).max())]
    _, svd_chain, cross = eqke_svd(s)[0]
    sigma_float = np.linalg.norm(svd_chain[0].mid @ svd_chain[1].mid, 2)
    sigma_bound = spectral_norm_upper(*svd_chain)
    print(f"seed {args.seed}: bound on the attention error term (max over query rows)")
    for name, v in rows:
        print(f"  {name:<46} {v:8.3f}")
    print(f"  svd route: sqrt(2) sigma_1 bound {np.sqrt(2) * sigma_bound:.3f} (float sigma_1 {sigma_float:.4f}, "
          f"rigorous bound {sigma_bound:.4f}, ratio {sigma_bound / sigma_float:.5f}); "
          f"cross terms the paper drops: max {cross.max():.2e}")


if __name__ == "__main__":
    main()
