"""Report of a sweep: the Pareto frontier plot and a Markdown comparison with the paper."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

# Published Max-of-4 figures (../shared/reference/paper-max-of-4.md): bound / accuracy.
PAPER = {
    "bruteforce": ("1 (exhaustive)", "~8.8e11"),
    "cubic": ("0.9539 +- 0.0080", "~3.5e7"),
}


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: results file not found")
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("strategy")]
    if not rows:
        raise ValueError(f"{path}: no result rows")
    return rows


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (cheaper-or-equal and at-least-as-tight), by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def group_stats(rows: list[dict]) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["strategy"], []).append(r)
    out = []
    for name, rs in groups.items():
        ratios = [float(r["ratio"]) for r in rs if r["ratio"] not in ("", "None")]
        bounds = [float(r["bound"]) for r in rs]
        flops = [cost(r) for r in rs]
        ops = [float(r["checker_ops"]) for r in rs if r.get("checker_ops") not in (None, "", "None")]
        out.append({"strategy": name, "n": len(rs), "checker_ops_mean": statistics.mean(ops) if ops else None,
                    "ratio_mean": statistics.mean(ratios) if ratios else float("nan"),
                    "ratio_std": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
                    "bound_mean": statistics.mean(bounds), "flops_mean": statistics.mean(flops),
                    "estimated": any(r.get("accuracy_kind") == "estimate" for r in rs)})
    return out


def cost(r: dict) -> float:
    """FLOPs in the paper's measure (matmul n m (2k-1), reduction n-1, elementwise 1)
    where the row has them; rows of older sweeps fall back to our own count."""
    v = r.get("paper_flops")
    return float(v) if v not in (None, "", "None") else float(r["flops"])


GAP_VARIANTS = "gap variants (ours)"
# One colour per strategy family, shared by every plot (docs/report and docs/paper), so
# that a strategy looks the same wherever it is drawn. Drawn in this order (last on top).
COLOURS = {"subcubic": "tab:blue", "subcubic (direct-quadratic)": "tab:orange",
           "subcubic (attention-d_vocab d_model^2)": "tab:green",
           "subcubic (attention-d_vocab d_model^2, direct-quadratic)": "tab:olive",
           "subcubic (attention-quadratic)": "tab:purple",
           "subcubic (attention-quadratic, direct-quadratic)": "tab:pink",
           GAP_VARIANTS: "tab:gray", "bruteforce": "black", "cubic": "tab:red", "gap": "tab:cyan"}
MARKERS = {"bruteforce": "s", "cubic": "D", "gap": "*"}  # the three stand-alone proofs stand out


def plot_key(strategy: str, group: str | None) -> str:
    """The colour key: the paper's group for its variants, one key for our gap variants,
    else the strategy itself."""
    if strategy.startswith("gap/"):
        return GAP_VARIANTS
    if group and strategy.startswith("subcubic/"):
        return group
    return strategy


def family(r: dict) -> str:
    return plot_key(r["strategy"], r.get("group"))


def style_log_cost_axis(ax) -> None:
    """Log x axis labelled at 1, 2 and 5 times each power of ten (the points of one
    configuration sit within a decade or two: 2-5e6 must carry labels)."""
    from matplotlib import ticker
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:.0e}".replace("e+0", "e").replace("e+", "e")))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.tick_params(axis="x", labelsize=7)


def scatter_families(ax, rows: list[dict], xs: list[float], ys: list[float], size: float) -> None:
    """Each family in its shared colour; the stand-alone proofs on top, with opaque legend markers."""
    keys = [family(r) for r in rows]
    order = [k for k in COLOURS if k in keys] + sorted(set(keys) - set(COLOURS))
    for z, k in enumerate(order):
        idx = [i for i, key in enumerate(keys) if key == k]
        big = k in MARKERS
        ax.scatter([xs[i] for i in idx], [ys[i] for i in idx], s=size * (4 if big else 1), alpha=0.9 if big else 0.5,
                   color=COLOURS.get(k, "tab:brown"), marker=MARKERS.get(k, "o"), label=k, zorder=3 + z,
                   edgecolors="k" if big else "none", linewidths=0.4)


def finish_legend(ax, **kw) -> None:
    leg = ax.legend(**kw)
    for h in leg.legend_handles:
        h.set_alpha(1.0)


def markdown(rows: list[dict]) -> str:
    lines = ["| strategy | seeds | bound / accuracy (ours) | bound (ours) | FLOPs (paper's measure) | checker ops "
             "| paper bound / accuracy | paper FLOPs |",
             "|---|---|---|---|---|---|---|---|"]
    for g in group_stats(rows):
        paper = PAPER.get(g["strategy"], ("-", "-"))
        note = " (accuracy estimated, not certified)" if g["estimated"] else ""
        ops = f"{g['checker_ops_mean']:.3g}" if g["checker_ops_mean"] is not None and g["strategy"].startswith("gap") else "-"
        lines.append(f"| {g['strategy']} | {g['n']} | {g['ratio_mean']:.4f} +- {g['ratio_std']:.4f}{note} | "
                     f"{g['bound_mean']:.4f} | {g['flops_mean']:.3g} | {ops} | {paper[0]} | {paper[1]} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pts = [(cost(r), float(r["ratio"]) if r["ratio"] not in ("", "None") else float(r["bound"]))
           for r in rows]
    front = set(pareto(pts))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    scatter_families(ax, rows, [p[0] for p in pts], [p[1] for p in pts], 14)
    fr = sorted(front, key=lambda i: pts[i][0])
    ax.plot([pts[i][0] for i in fr], [pts[i][1] for i in fr], "k--", lw=1, label="Pareto frontier", zorder=20)
    ax.scatter([pts[i][0] for i in fr], [pts[i][1] for i in fr], s=40, facecolors="none", edgecolors="k", zorder=21)
    style_log_cost_axis(ax)
    ax.set_xlabel("proof cost (FLOPs, the paper's measure)")
    ax.set_ylabel("certified bound / exhaustive accuracy")
    ax.set_title("Max-of-K: bound vs proof cost")
    ax.grid(True, which="both", alpha=0.3)
    finish_legend(ax, loc="center right", fontsize=7)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "pareto.png", out_dir / "pareto.svg"]
    for p in paths:
        fig.savefig(p, dpi=120, metadata={"Date": None} if p.suffix == ".svg" else None)
    plt.close(fig)
    return paths


def loss_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("loss_bound") not in (None, "", "None")]


def loss_markdown(rows: list[dict]) -> str:
    """Mean loss bound and bound / exact mean loss per strategy (rows with a loss bound)."""
    lines = ["| strategy | seeds | loss bound (mean) | loss bound / exact loss |", "|---|---|---|---|"]
    groups: dict[str, list[dict]] = {}
    for r in loss_rows(rows):
        groups.setdefault(r["strategy"], []).append(r)
    for name, rs in groups.items():
        ratios = [float(r["loss_ratio"]) for r in rs if r.get("loss_ratio") not in (None, "", "None")]
        ratio = f"{statistics.mean(ratios):.4g} +- {statistics.stdev(ratios) if len(ratios) > 1 else 0.0:.3g}" \
            if ratios else "-"
        lines.append(f"| {name} | {len(rs)} | {statistics.mean(float(r['loss_bound']) for r in rs):.4g} | {ratio} |")
    return "\n".join(lines) + "\n"


def plot_loss(rows: list[dict], out_dir: Path) -> Path:
    """The loss bound against proof cost (log-log), one colour per strategy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rs = loss_rows(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n in sorted({r["strategy"] for r in rs}):
        pts = [(float(r.get("loss_flops") or r["flops"]), float(r["loss_bound"])) for r in rs if r["strategy"] == n]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, alpha=0.6, label=n)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("proof cost (FLOPs, the paper's measure)")
    ax.set_ylabel("certified upper bound on the mean loss")
    ax.set_title("Max-of-K: loss bound vs proof cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "loss.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(results: Path, out_dir: Path) -> dict:
    rows = read_rows(results)
    paths = plot(rows, out_dir)
    md = out_dir / "report.md"
    text = "# Sweep report\n\nSource: " + str(results) + "\n\n" + markdown(rows)
    out = {"png": str(paths[0]), "svg": str(paths[1]), "markdown": str(md), "rows": len(rows)}
    if loss_rows(rows):
        text += "\n## Loss bounds\n\n" + loss_markdown(rows)
        out["loss_png"] = str(plot_loss(rows, out_dir))
    md.write_text(text, encoding="utf-8")
    return out
