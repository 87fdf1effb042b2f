"""Sweeps over seeds x strategies, resumable, one row per (seed, strategy).

Rows go to a CSV file and a JSON-lines file side by side; each row is appended and
flushed as soon as it is done, so an interrupted sweep loses no finished row, and a
re-run skips the (seed, strategy) pairs already present.

Jobs (one per seed) run inline, in local processes (`jobs`), or on a Dask cluster
(certify.experiments.executors); whichever runs them, a job only computes and returns
its rows and certificates: this process alone writes the results files, emits the
certificates and stores the models that workers trained.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..modelio.config import Config

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
    models_dir: str  # where the job finds (or trains) its model: the client's store, or a worker's own
    emit: bool  # return the certificates of the emittable strategies (the client writes them)
    loss: bool = False  # also the loss bounds (columns loss_bound, loss_exact, loss_ratio, loss_flops)


@dataclass(frozen=True)
class PendingCertificate:
    """A certificate a job produced and checked, for the client to write: `row` is the
    index of the result row whose `certificate` column names the file."""
    row: int
    certificate: object  # certify.lean.emit.CertificateFile (a plain, picklable dataclass)
    checker_ops: int


@dataclass
class JobOutput:
    """What one job hands back; `model_files` holds the store files of a model a remote
    worker trained ({suffix: bytes}), for the client's model store."""
    rows: list[dict]
    certificates: list[PendingCertificate] = field(default_factory=list)
    model_files: dict[str, bytes] | None = None


def done_pairs(csv_path: Path, key: str = "strategy") -> set[tuple[int, str]]:
    """(seed, key) pairs already in a results file; a torn last line is dropped. Strategy
    names are read through the registry's aliases, so a sweep of the previous release
    resumes under the new names."""
    from ..proofs.registry import canonical
    if not csv_path.exists():
        return set()
    lines = csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
    good = [ln for ln in lines if ln.endswith("\n")]
    if len(good) != len(lines):  # interrupted mid-line: rewrite without the torn line
        csv_path.write_text("".join(good), encoding="utf-8")
    name = canonical if key == "strategy" else (lambda v: v)
    return {(int(r["seed"]), name(r[key])) for r in csv.DictReader(good) if r.get(key)}


def run_job(job: SweepJob) -> JobOutput:
    """Train or load one seed's model and run its strategies (in a worker process).
    Certificates are rendered and checked here, and written by the client."""
    import torch
    torch.set_num_threads(1)
    from ..lean.emit import EMITTABLE, CertificateFile, check_certificate_text, render_certificate
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
    rows, certificates = [], []
    names = [n for n in job.strategies if ex or n != "bruteforce"]  # out of reach: the estimate
    for name, r in zip(names, prove_many(cfg, m.weights, names, acc)):  # is reported instead
        if job.emit and name in EMITTABLE:
            cf = CertificateFile(r.witness, r.count, job.seed, m.meta["sha256"], name)
            rep = check_certificate_text(render_certificate(cf))
            if not rep.ok:
                raise RuntimeError(f"seed {job.seed}: emitted certificate does not check: {rep.reason}")
            certificates.append(PendingCertificate(len(rows), cf, r.checker_ops))
        d = r.to_dict()
        rows.append({"seed": job.seed, "k": cfg.n_ctx, "d_vocab": cfg.d_vocab, **d, "accuracy": acc,
                     "accuracy_kind": kind, "accuracy_ci_low": ci[0], "accuracy_ci_high": ci[1],
                     "ratio": r.count / r.total / acc if acc else None, "certificate": ""})
    if job.loss:
        add_loss_columns(rows, cfg, m.weights)
    return JobOutput(rows, certificates)


def emit_certificates(output: JobOutput, lean_dir: Path | None) -> list[dict]:
    """Write a job's certificates into the client's archive (append-only: `emit` refuses
    to replace a certificate about other weights) and name them in the job's rows."""
    from ..lean.emit import emit
    rows = [dict(r) for r in output.rows]
    if lean_dir is None:
        return rows
    for pending in output.certificates:
        e = emit(pending.certificate, pending.checker_ops, lean_dir)
        rows[pending.row]["certificate"] = str(e.lean_path)
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


def append_rows(csv_path: Path, jsonl_path: Path | None, rows: list[dict], columns: list[str] = COLUMNS) -> None:
    """Append rows to the CSV (and the JSON-lines file) and fsync, so an interrupted
    sweep loses no finished row."""
    new = not csv_path.exists() or csv_path.stat().st_size == 0
    with csv_path.open("a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            w.writeheader()
        for r in rows:
            w.writerow(r)
        f.flush()
        os.fsync(f.fileno())
    if jsonl_path is None:
        return
    with jsonl_path.open("a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: r.get(k) for k in columns}, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def sweep(seeds: list[int], strategies: list[str], out: Path, *, d_vocab: int, k: int, d_model: int,
          d_head: int, models_dir: Path, lean_dir: Path | None, jobs: int = 1, progress: bool = True,
          loss: bool = False, dask: bool = False, scheduler: str | None = None) -> dict:
    """Run the missing (seed, strategy) rows; `dask` starts a LocalCluster of `jobs`
    workers, `scheduler` uses an existing Dask cluster; otherwise local processes.
    A failed job is retried once, then reported in `failures` (the sweep goes on)."""
    from tqdm import tqdm
    from .executors import drive, make_executor
    from ..proofs.registry import canonical
    strategies = [canonical(n) for n in strategies]  # old names (aliases) resume under the new ones
    out.parent.mkdir(parents=True, exist_ok=True)
    jsonl = out.with_suffix(".jsonl")
    done = done_pairs(out)
    todo = [SweepJob(s, tuple(n for n in strategies if (s, n) not in done), d_vocab, k, d_model, d_head,
                     str(models_dir), lean_dir is not None, loss) for s in dict.fromkeys(seeds)]
    todo = [j for j in todo if j.strategies]
    t0 = time.perf_counter()
    written = 0
    bar = tqdm(total=len(todo), desc="sweep", unit="seed", disable=not progress, file=sys.stderr)

    def record(job: SweepJob, output: JobOutput) -> None:
        """The client's side of a finished job: its model, certificates, then rows."""
        nonlocal written
        if output.model_files is not None:  # trained by a remote worker
            from ..modelio.transfer import adopt_entry
            adopt_entry(models_dir, Config(d_vocab, k, d_model, d_head), job.seed, output.model_files)
        rows = emit_certificates(output, lean_dir)
        append_rows(out, jsonl, rows)
        written += len(rows)
        bar.update(1)

    with make_executor(jobs=jobs, dask=dask, scheduler=scheduler, models_dir=models_dir) as executor:
        failures = drive(executor, todo, record, failures_path=out.with_suffix(".failures.jsonl"),
                         log=lambda msg: bar.write(msg, file=sys.stderr))
    bar.close()
    return {"csv": str(out), "jsonl": str(jsonl), "rows_written": written,
            "rows_skipped": len(done), "seconds": round(time.perf_counter() - t0, 1),
            "executor": executor.describe(), "failures": [f.to_dict() for f in failures],
            "failures_log": str(out.with_suffix(".failures.jsonl")), "ok": not failures}
