"""The comparison with the paper: group statistics next to its published figures, and
Pareto plots (bound / accuracy against FLOPs in the paper's measure, log x) coloured by
the paper's groups.

    python -m certify.experiments.paper_report RESULTS.csv [MORE.csv ...] --out docs/paper

Rows of any sweep are accepted; old names (aliases) are mapped to the new ones, and rows
without `paper_flops` (sweeps before the column existed) get it from `proofs.paper_cost`
(d_model = d_head = 32 assumed for them).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from ..modelio.config import Config
from ..proofs import paper_cost
from ..proofs.paper_subcubic import Tricks
from ..proofs.strategies import aliases
from .report import finish_legend, pareto, read_rows, scatter_families, style_log_cost_axis

# published Max-of-4 figures (bound / accuracy, mean +- std over the 151 seeds; the
# best variant of each group per seed)
PAPER_GROUPS = {
    "best subcubic (any of the 100)": "0.700 +- 0.036",
    "subcubic (attention-d_vocab d_model^2)": "0.675 +- 0.035",
    "subcubic (direct-quadratic)": "0.633 +- 0.062",
    "subcubic (attention-quadratic)": "0.316 +- 0.037",
    "subcubic (attention-quadratic, direct-quadratic)": "0.283 +- 0.037",
}


def group_of(name: str) -> str:
    if name.startswith("subcubic/"):
        return Tricks.parse(name).group()
    if name == "gap" or name.startswith("gap/"):
        return "gap (ours)"
    return name


def normalise(rows: list[dict]) -> list[dict]:
    out, old = [], aliases()
    for r in rows:
        r = dict(r)
        r["strategy"] = old.get(r["strategy"], r["strategy"])
        if not r.get("paper_flops") or r["paper_flops"] in ("None", ""):
            cfg = Config(int(r["d_vocab"]), int(r["k"]), 32, 32)
            fn = {"bruteforce": paper_cost.bruteforce, "cubic": paper_cost.cubic}.get(r["strategy"], paper_cost.gap)
            r["paper_flops"] = fn(cfg, int(float(r["flops"])))
        r["paper_flops"] = float(r["paper_flops"])
        r["ratio"] = float(r["ratio"]) if r.get("ratio") not in ("", "None", None) else float(r["bound"])
        r["group"] = group_of(r["strategy"])
        out.append(r)
    return out


def best_per_seed(rows: list[dict], keep) -> list[float]:
    best: dict[str, float] = {}
    for r in rows:
        if keep(r):
            best[r["seed"]] = max(best.get(r["seed"], 0.0), r["ratio"])
    return list(best.values())


def _fmt(v: list[float]) -> str:
    if not v:
        return "-"
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):.3f} +- {sd:.3f} (n={len(v)})"


def comparison_markdown(rows: list[dict]) -> str:
    lines = ["| group (paper's classification) | variants | ours: best bound / accuracy per seed | paper | "
             "ours: median FLOPs (paper's measure) |", "|---|---|---|---|---|"]
    groups = sorted({r["group"] for r in rows if r["group"].startswith("subcubic")})
    paper_rows = [r for r in rows if r["group"].startswith("subcubic")]
    lines.append(f"| best subcubic (any of the 100) | {len({r['strategy'] for r in paper_rows})} | "
                 f"{_fmt(best_per_seed(paper_rows, lambda r: True))} | {PAPER_GROUPS['best subcubic (any of the 100)']} | "
                 f"{statistics.median([r['paper_flops'] for r in paper_rows]):.3g} |" if paper_rows else "")
    for g in groups:
        rs = [r for r in rows if r["group"] == g]
        lines.append(f"| {g} | {len({r['strategy'] for r in rs})} | {_fmt(best_per_seed(rs, lambda r: True))} | "
                     f"{PAPER_GROUPS.get(g, '-')} | {statistics.median([r['paper_flops'] for r in rs]):.3g} |")
    for name in ("bruteforce", "cubic", "gap"):
        rs = [r for r in rows if r["strategy"] == name]
        if rs:
            lines.append(f"| {name} | 1 | {_fmt([r['ratio'] for r in rs])} | "
                         f"{ {'bruteforce': '1', 'cubic': '0.9539 +- 0.0080', 'gap': '-'}[name]} | "
                         f"{statistics.median([r['paper_flops'] for r in rs]):.3g} |")
    return "\n".join(ln for ln in lines if ln) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    scatter_families(ax, rows, [r["paper_flops"] for r in rows], [r["ratio"] for r in rows], 10)
    pts = [(r["paper_flops"], r["ratio"]) for r in rows]
    fr = sorted(pareto(pts), key=lambda i: pts[i][0])
    ax.plot([pts[i][0] for i in fr], [pts[i][1] for i in fr], "k--", lw=1, label="Pareto frontier", zorder=20)
    style_log_cost_axis(ax)
    ax.set_xlabel("proof cost: FLOPs in the paper's measure (log)")
    ax.set_ylabel("certified bound / exhaustive accuracy")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    finish_legend(ax, fontsize=6, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/paper"))
    ap.add_argument("--seed", default="123")
    args = ap.parse_args()
    rows = normalise([r for p in args.results for r in read_rows(p)])
    seeds = {r["seed"] for r in rows}
    plot(rows, args.out / "pareto_all.png", f"Max-of-4, {len(seeds)} seeds: bound vs proof cost")
    plot([r for r in rows if r["seed"] == args.seed], args.out / f"pareto_seed{args.seed}.png",
         f"Max-of-4, seed {args.seed}: bound vs proof cost")
    md = comparison_markdown(rows)
    (args.out / "comparison.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
