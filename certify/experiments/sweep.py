"""Sweeps over seeds x strategies, resumable, one row per (seed, strategy).

Rows go to a CSV file and a JSON-lines file side by side; each row is appended and
flushed as soon as it is done, so an interrupted sweep loses no finished row, and a
re-run skips the (seed, strategy) pairs already present.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ["seed", "k", "d_vocab", "strategy", "count", "total", "bound", "accuracy", "accuracy_kind",
           "accuracy_ci_low", "accuracy_ci_high", "ratio", "flops", "checker_ops", "unexplained_dimension",
           "seconds", "search_seconds", "certificate", "paper_flops", "group", "loss_bound", "loss_exact",
           "loss_ratio", "loss_flops"]


@dataclass(frozen=True)
class SweepJob:
    seed: int
    strategies: tuple[str, ...]
    d_vocab: int
    k: int
    d_model: int
    d_head: int
    models_dir: str
    lean_dir: str | None
    loss: bool = False  # also the loss bounds (columns loss_bound, loss_exact, loss_ratio, loss_flops)


def done_pairs(csv_path: Path) -> set[tuple[int, str]]:
    """(seed, strategy) pairs already in the results; a torn last line is dropped."""
    if not csv_path.exists():
        return set()
    lines = csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
    good = [ln for ln in lines if ln.endswith("\n")]
    if len(good) != len(lines):  # interrupted mid-line: rewrite without the torn line
        csv_path.write_text("".join(good), encoding="utf-8")
    rows = list(csv.DictReader(good))
    return {(int(r["seed"]), r["strategy"]) for r in rows if r.get("strategy")}


def run_job(job: SweepJob) -> list[dict]:
    """Train or load one seed's model and run its strategies (in a worker process)."""
    import torch
    torch.set_num_threads(1)
    from ..lean.emit import EMITTABLE, CertificateFile, check_certificate_text, emit
    from ..modelio.model import Config
    from ..modelio.store import get_model
    from ..proofs.strategies import prove_many
    cfg = Config(job.d_vocab, job.k, job.d_model, job.d_head)
    m = get_model(cfg, job.seed, Path(job.models_dir), log=lambda _msg: None)
    ex = m.meta.get("exhaustive")
    if ex:
        acc, kind, ci = ex["accuracy"], "exhaustive", (ex["accuracy"], ex["accuracy"])
    else:
        from .estimate import estimate_accuracy
        est = estimate_accuracy(m.weights, cfg, seed=job.seed)
        acc, kind, ci = est.accuracy, "estimate", (est.ci_low, est.ci_high)
    rows = []
    names = [n for n in job.strategies if ex or n != "bruteforce"]  # out of reach: the estimate
    for name, r in zip(names, prove_many(cfg, m.weights, names, acc)):  # is reported instead
        certificate = ""
        if job.lean_dir and name in EMITTABLE:
            e = emit(CertificateFile(r.witness, r.count, job.seed, m.meta["sha256"], name), r.checker_ops,
                     Path(job.lean_dir))
            rep = check_certificate_text(e.lean_path.read_text(encoding="utf-8"))
            if not rep.ok:
                raise RuntimeError(f"seed {job.seed}: emitted certificate does not check: {rep.reason}")
            certificate = str(e.lean_path)
        d = r.to_dict()
        rows.append({"seed": job.seed, "k": cfg.n_ctx, "d_vocab": cfg.d_vocab, **d, "accuracy": acc,
                     "accuracy_kind": kind, "accuracy_ci_low": ci[0], "accuracy_ci_high": ci[1],
                     "ratio": r.count / r.total / acc if acc else None, "certificate": certificate})
    if job.loss:
        add_loss_columns(rows, cfg, m.weights)
    return rows


def add_loss_columns(rows: list[dict], cfg, weights) -> None:
    """The loss bound of every strategy that has one (certify.proofs.loss_maxk), in place."""
    from ..proofs.loss_maxk import prove_loss_many, resolve_loss
    names = [r["strategy"] for r in rows if r["strategy"] in resolve_loss("all") + ["gap", "subcubic"]]
    by_name = {lr.strategy: lr for lr in prove_loss_many(cfg, weights, names, on_error="record")}
    for r in rows:
        lr = by_name.get(r["strategy"])
        if lr is not None and not lr.error:
            r.update(loss_bound=lr.bound, loss_exact=None if lr.exact is None else lr.exact.mid, loss_ratio=lr.ratio,
                     loss_flops=lr.flops)


def append_rows(csv_path: Path, jsonl_path: Path, rows: list[dict]) -> None:
    new = not csv_path.exists() or csv_path.stat().st_size == 0
    with csv_path.open("a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        for r in rows:
            w.writerow(r)
        f.flush()
        os.fsync(f.fileno())
    with jsonl_path.open("a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: r.get(k) for k in COLUMNS}, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def sweep(seeds: list[int], strategies: list[str], out: Path, *, d_vocab: int, k: int, d_model: int,
          d_head: int, models_dir: Path, lean_dir: Path | None, jobs: int = 1, progress: bool = True,
          loss: bool = False) -> dict:
    from tqdm import tqdm
    from ..proofs.registry import canonical
    strategies = [canonical(n) for n in strategies]  # old names (aliases) resume under the new ones
    out.parent.mkdir(parents=True, exist_ok=True)
    jsonl = out.with_suffix(".jsonl")
    done = done_pairs(out)
    todo = [SweepJob(s, tuple(n for n in strategies if (s, n) not in done), d_vocab, k, d_model, d_head,
                     str(models_dir), str(lean_dir) if lean_dir else None, loss) for s in seeds]
    todo = [j for j in todo if j.strategies]
    t0 = time.perf_counter()
    written = 0
    bar = tqdm(total=len(todo), desc="sweep", unit="seed", disable=not progress, file=sys.stderr)
    if jobs <= 1:
        for job in todo:
            rows = run_job(job)
            append_rows(out, jsonl, rows)
            written += len(rows)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_job, job) for job in todo]
            for fut in as_completed(futures):
                rows = fut.result()
                append_rows(out, jsonl, rows)
                written += len(rows)
                bar.update(1)
    bar.close()
    return {"csv": str(out), "jsonl": str(jsonl), "rows_written": written,
            "rows_skipped": len(done), "seconds": round(time.perf_counter() - t0, 1)}
