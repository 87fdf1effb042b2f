"""Scrubbing beside the proofs over many seeds: the sweep pass (`certify sweep --scrub`,
its own resumable CSV) and the head-to-head report (`certify report --scrub`):
per hypothesis a scatter of % loss recovered against the normalized bound of the
strategy that relies on the same claim, and Spearman rank correlations.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ["seed", "k", "d_vocab", "hypothesis", "strategy", "method", "samples", "l_model", "l_random",
           "l_scrubbed", "recovered", "recovered_ci_low", "recovered_ci_high", "scrubbed_accuracy",
           "scrubbed_accuracy_ci_low", "scrubbed_accuracy_ci_high", "model_accuracy", "seconds"]


@dataclass(frozen=True)
class ScrubJob:
    seed: int
    hypotheses: tuple[str, ...]
    d_vocab: int
    k: int
    d_model: int
    d_head: int
    models_dir: str
    samples: int


def done_pairs(csv_path: Path) -> set[tuple[int, str]]:
    """(seed, hypothesis) pairs already written (the sweep's resumable reader)."""
    from .sweep import done_pairs as done
    return done(csv_path, key="hypothesis")


def run_scrub_job(job: ScrubJob) -> list[dict]:
    import torch
    torch.set_num_threads(1)
    from ..modelio.model import Config
    from ..modelio.store import get_model
    from .scrub import scrub_model
    cfg = Config(job.d_vocab, job.k, job.d_model, job.d_head)
    m = get_model(cfg, job.seed, Path(job.models_dir), log=lambda _msg: None)
    t0 = time.perf_counter()
    results = scrub_model(cfg, m.weights, list(job.hypotheses), samples=job.samples, seed=job.seed)
    per = (time.perf_counter() - t0) / max(1, len(results))
    return [{"seed": job.seed, "k": cfg.n_ctx, "d_vocab": cfg.d_vocab, **r.to_dict(), "seconds": round(per, 3)}
            for r in results]


def append_rows(csv_path: Path, rows: list[dict]) -> None:
    from .sweep import append_rows as append
    append(csv_path, None, rows, COLUMNS)


def scrub_sweep(seeds: list[int], hypotheses: list[str], out: Path, *, d_vocab: int, k: int, d_model: int,
                d_head: int, models_dir: Path, samples: int, jobs: int = 1, progress: bool = True) -> dict:
    """Seeds x hypotheses into `out` (one row per pair, appended as each seed finishes)."""
    from tqdm import tqdm
    out.parent.mkdir(parents=True, exist_ok=True)
    done = done_pairs(out)
    todo = [ScrubJob(s, tuple(h for h in hypotheses if (s, h) not in done), d_vocab, k, d_model, d_head,
                     str(models_dir), samples) for s in seeds]
    todo = [j for j in todo if j.hypotheses]
    t0 = time.perf_counter()
    written = 0
    bar = tqdm(total=len(todo), desc="scrub", unit="seed", disable=not progress, file=sys.stderr)
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for fut in as_completed([pool.submit(run_scrub_job, j) for j in todo]):
            rows = fut.result()
            append_rows(out, rows)
            written += len(rows)
            bar.update(1)
    bar.close()
    return {"csv": str(out), "rows_written": written, "rows_skipped": len(done),
            "seconds": round(time.perf_counter() - t0, 1)}


# ---- the head-to-head -----------------------------------------------------------------

def ranks(values: list[float]) -> list[float]:
    """Ranks 1..n, ties given their average rank (as Spearman's rho needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for t in range(i, j + 1):
            out[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rho: Pearson's correlation of the ranks; nan when either side is constant."""
    if len(x) != len(y) or len(x) < 2:
        return float("nan")
    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True)
class Pair:
    seed: int
    hypothesis: str
    strategy: str
    recovered: float
    scrubbed_accuracy: float
    ratio: float  # the strategy's bound / exhaustive accuracy


def pairs(scrub_rows: list[dict], proof_rows: list[dict]) -> list[Pair]:
    """Scrub rows joined with the proof row of the mapped strategy on the same seed."""
    from ..proofs.registry import canonical  # results of the previous release use old names
    ratio = {}
    for r in proof_rows:
        if r.get("strategy") and r.get("ratio") not in (None, "", "None"):
            ratio[(int(r["seed"]), canonical(r["strategy"]))] = float(r["ratio"])
    out = []
    for r in scrub_rows:
        key = (int(r["seed"]), canonical(r["strategy"])) if r["strategy"] else (int(r["seed"]), "")
        if r["strategy"] and key in ratio:
            out.append(Pair(key[0], r["hypothesis"], key[1], float(r["recovered"]),
                            float(r["scrubbed_accuracy"]), ratio[key]))
    return out


def correlations(ps: list[Pair]) -> dict:
    """Across seeds per hypothesis, and across hypotheses (per seed, and of the means)."""
    by_h: dict[str, list[Pair]] = {}
    by_s: dict[int, list[Pair]] = {}
    for p in ps:
        by_h.setdefault(p.hypothesis, []).append(p)
        by_s.setdefault(p.seed, []).append(p)
    per_h = {h: {"strategy": v[0].strategy, "seeds": len(v),
                 "rho_recovered": spearman([p.recovered for p in v], [p.ratio for p in v]),
                 "rho_accuracy": spearman([p.scrubbed_accuracy for p in v], [p.ratio for p in v]),
                 "recovered_mean": statistics.fmean(p.recovered for p in v),
                 "recovered_min": min(p.recovered for p in v),
                 "accuracy_mean": statistics.fmean(p.scrubbed_accuracy for p in v),
                 "ratio_mean": statistics.fmean(p.ratio for p in v), "ratio_min": min(p.ratio for p in v)}
             for h, v in by_h.items()}
    per_seed = [spearman([p.recovered for p in v], [p.ratio for p in v]) for v in by_s.values() if len(v) > 2]
    per_seed = [r for r in per_seed if not math.isnan(r)]
    hs = list(per_h)
    return {"hypotheses": per_h,
            "across_hypotheses_of_means": spearman([per_h[h]["recovered_mean"] for h in hs],
                                                   [per_h[h]["ratio_mean"] for h in hs]),
            "across_hypotheses_per_seed_median": statistics.median(per_seed) if per_seed else float("nan"),
            "seeds": len(by_s)}


def markdown(c: dict) -> str:
    lines = ["| hypothesis | strategy | seeds | % loss recovered (mean, min) | scrubbed accuracy | "
             "bound / accuracy (mean, min) | Spearman over seeds: recovered vs bound | scrubbed acc. vs bound |",
             "|---|---|---|---|---|---|---|---|"]
    for h, v in c["hypotheses"].items():
        lines.append(f"| {h} | {v['strategy']} | {v['seeds']} | {100 * v['recovered_mean']:.4f}, "
                     f"{100 * v['recovered_min']:.4f} | {v['accuracy_mean']:.5f} | {v['ratio_mean']:.4f}, "
                     f"{v['ratio_min']:.4f} | {v['rho_recovered']:.3f} | {v['rho_accuracy']:.3f} |")
    lines += ["", f"Spearman across hypotheses, of the means over seeds: {c['across_hypotheses_of_means']:.3f}; "
              f"per seed, median over {c['seeds']} seeds: {c['across_hypotheses_per_seed_median']:.3f}."]
    return "\n".join(lines) + "\n"


def plot(ps: list[Pair], out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hs = list(dict.fromkeys(p.hypothesis for p in ps))
    cols = min(3, len(hs))
    rows = math.ceil(len(hs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, h in zip(axes.ravel(), hs):
        v = [p for p in ps if p.hypothesis == h]
        ax.scatter([p.ratio for p in v], [100 * p.recovered for p in v], s=10, alpha=0.6)
        ax.set_title(f"{h}\nvs {v[0].strategy}", fontsize=8)
        ax.set_xlabel("bound / accuracy", fontsize=7)
        ax.set_ylabel("% loss recovered", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(axis="both", style="plain", useOffset=False)  # values as they are, no "+1e-3"
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[len(hs):]:
        ax.axis("off")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "scrub_vs_bound.png", out_dir / "scrub_vs_bound.svg"]
    for p in paths:
        fig.savefig(p, dpi=120, metadata={"Date": None} if p.suffix == ".svg" else None)
    plt.close(fig)
    return paths


def scrub_report(results: Path, scrub_csv: Path, out_dir: Path) -> dict:
    ps = pairs(read_csv(scrub_csv), read_csv(results))
    if not ps:
        raise ValueError(f"{scrub_csv} and {results} share no (seed, strategy) pair: nothing to compare")
    c = correlations(ps)
    paths = plot(ps, out_dir)
    md = out_dir / "scrub.md"
    md.write_text(f"# Causal scrubbing beside the proofs\n\nSources: {results}, {scrub_csv}\n\n" + markdown(c),
                  encoding="utf-8")
    return {"png": str(paths[0]), "svg": str(paths[1]), "markdown": str(md), "pairs": len(ps),
            "correlations": c}
