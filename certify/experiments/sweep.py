"""Sweeps over seeds x strategies, resumable, one row per (seed, strategy).

Rows go to a JSON-lines file (the record) and a CSV file side by side; each seed's rows
are appended and fsynced as soon as they are done, so an interrupted sweep loses no
finished row; a re-run first makes the two files agree (reconcile_results), then skips
the (seed, strategy) pairs already present. The output is locked (outlock) while a
sweep runs.

Jobs (one per seed) run inline, in local processes (`jobs`), or on a Dask cluster
(certify.experiments.executors); whichever runs them, a job only computes and returns
its rows and certificates: this process alone writes the results files, emits the
certificates and stores the models that workers trained.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..modelio.config import Config
from ..modelio.files import atomic_write_text

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
    cpu_pins: tuple[tuple[str, str], ...] = ()  # set by a remote job before torch loads (certify.modelio.pins)


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


FAULT_HOOK = "CERTIFY_TEST_KILL_AFTER_JSONL_ROWS"  # tests only: SIGKILL between a seed's two writes


def _append(path: Path, write) -> int:
    """Append with `write(f)`, flush and fsync; on any error cut the file back to its old
    length, so a failed write never leaves a torn line that later rows would follow."""
    size = path.stat().st_size if path.exists() else 0
    try:
        with path.open("a", newline="", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with path.open("r+b") as f:
            f.truncate(size)
        raise
    return size


def _csv_writer(f, columns: list[str], header: bool):
    w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
    if header:
        w.writeheader()
    return w


def append_rows(csv_path: Path, jsonl_path: Path | None, rows: list[dict], columns: list[str] = COLUMNS) -> None:
    """Append rows to the JSON-lines file, then to the CSV (each fsynced), so an
    interrupted sweep loses no finished row. The JSON lines are the record: a crash
    between the two writes leaves rows that `reconcile_results` copies into the CSV."""
    if jsonl_path is not None:
        _append(jsonl_path, lambda f: f.writelines(json.dumps({k: r.get(k) for k in columns}, sort_keys=True)
                                                   + "\n" for r in rows))
        kill_after = os.environ.get(FAULT_HOOK)
        if kill_after and len(jsonl_path.read_text(encoding="utf-8").splitlines()) >= int(kill_after):
            import signal
            os.kill(os.getpid(), signal.SIGKILL)
    new = not csv_path.exists() or csv_path.stat().st_size == 0
    try:
        _append(csv_path, lambda f: _csv_writer(f, columns, new).writerows(rows))
    except BaseException:
        if jsonl_path is not None:  # the CSV refused: take the rows out of the record again
            _drop_last_lines(jsonl_path, len(rows))
        raise


def _drop_last_lines(path: Path, n: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    atomic_write_text(path, "".join(lines[:len(lines) - n]))


def _complete_lines(path: Path) -> list[str]:
    """The file's complete lines (a torn last line, from a kill mid-write, is dropped)."""
    if not path.exists():
        return []
    return [ln for ln in path.read_text(encoding="utf-8").splitlines(keepends=True) if ln.endswith("\n")]


def _row_key(row: dict) -> tuple[int, str]:
    from ..proofs.registry import canonical
    return int(row["seed"]), canonical(row["strategy"])


def _typed(value: str):
    """A CSV cell back as the JSON value it was written from ('' was None)."""
    if value == "":
        return None
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            pass
    return value


def reconcile_results(csv_path: Path, jsonl_path: Path, columns: list[str] = COLUMNS,
                      log=lambda _msg: None) -> set[tuple[int, str]]:
    """Make the CSV and the JSON lines hold the same rows, in the same order, before a
    sweep resumes; returns their (seed, strategy) pairs. The JSON lines are the record
    (written first): rows only they hold (a crash between the two writes) are copied
    into the CSV, rows only the CSV holds are dropped (and recomputed), torn lines and
    duplicates go. A missing JSON-lines file is rebuilt from the CSV."""
    csv_rows = list(csv.DictReader(_complete_lines(csv_path)))
    if not jsonl_path.exists() and csv_rows:
        log(f"{jsonl_path}: missing; rebuilt from {csv_path}")
        records = [{k: _typed(r.get(k) or "") for k in columns} for r in csv_rows]
    else:
        records = []
        for line in _complete_lines(jsonl_path):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    kept, seen = [], set()
    for rec in records:
        if _row_key(rec) not in seen:
            seen.add(_row_key(rec))
            kept.append(rec)
    jsonl_text = "".join(json.dumps({k: r.get(k) for k in columns}, sort_keys=True) + "\n" for r in kept)
    buf = io.StringIO(newline="")
    _csv_writer(buf, columns, True).writerows(kept)
    csv_text = buf.getvalue() if kept else ""
    csv_keys = [_row_key(r) for r in csv_rows]
    if csv_keys != [_row_key(r) for r in kept]:
        log(f"{csv_path}: {len(set(csv_keys) - seen)} row(s) missing from {jsonl_path.name} dropped (to be "
            f"recomputed), {len(seen - set(csv_keys))} row(s) copied from it")
    if jsonl_path.exists() or kept:
        if not jsonl_path.exists() or jsonl_path.read_text(encoding="utf-8") != jsonl_text:
            atomic_write_text(jsonl_path, jsonl_text)
    if (csv_path.exists() or kept) and (not csv_path.exists() or csv_path.read_text(encoding="utf-8") != csv_text):
        atomic_write_text(csv_path, csv_text)
    return seen


class SweepStopped(RuntimeError):
    """The sweep stopped early (Ctrl-C, a lost scheduler); the message says what was
    kept and how to resume."""

    def __init__(self, message: str, interrupted: bool = False) -> None:
        super().__init__(message)
        self.interrupted = interrupted


def sweep(seeds: list[int], strategies: list[str], out: Path, *, d_vocab: int, k: int, d_model: int,
          d_head: int, models_dir: Path, lean_dir: Path | None, jobs: int = 1, progress: bool = True,
          loss: bool = False, dask: bool = False, scheduler: str | None = None) -> dict:
    """Run the missing (seed, strategy) rows; `dask` starts a LocalCluster of `jobs`
    workers, `scheduler` uses an existing Dask cluster; otherwise local processes.
    A failed job is retried once, then reported in `failures` (the sweep goes on).
    The output is locked for the sweep's life (a second sweep on it refuses)."""
    from .outlock import output_lock
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return _locked_sweep(seeds, strategies, out, d_vocab=d_vocab, k=k, d_model=d_model, d_head=d_head,
                             models_dir=models_dir, lean_dir=lean_dir, jobs=jobs, progress=progress, loss=loss,
                             dask=dask, scheduler=scheduler)


def _locked_sweep(seeds: list[int], strategies: list[str], out: Path, *, d_vocab: int, k: int, d_model: int,
                  d_head: int, models_dir: Path, lean_dir: Path | None, jobs: int, progress: bool,
                  loss: bool, dask: bool, scheduler: str | None) -> dict:
    from tqdm import tqdm
    from .executors import drive, make_executor
    from ..modelio.pins import sidecar_mismatch, wanted_pins
    from ..proofs.registry import canonical
    strategies = [canonical(n) for n in strategies]  # old names (aliases) resume under the new ones
    jsonl = out.with_suffix(".jsonl")
    log = lambda msg: tqdm.write(msg, file=sys.stderr)  # noqa: E731 - above the progress bar
    done = reconcile_results(out, jsonl, log=log)
    pins = wanted_pins()
    todo = [SweepJob(s, tuple(n for n in strategies if (s, n) not in done), d_vocab, k, d_model, d_head,
                     str(models_dir), lean_dir is not None, loss, tuple(sorted(pins.items())))
            for s in dict.fromkeys(seeds)]
    todo = [j for j in todo if j.strategies]
    bar = tqdm(total=len(todo), desc="sweep", unit="seed", disable=not progress, file=sys.stderr)
    t0 = time.perf_counter()
    written = 0
    cfg = Config(d_vocab, k, d_model, d_head)

    def record(job: SweepJob, output: JobOutput) -> None:
        """The client's side of a finished job: its model, certificates, then rows."""
        nonlocal written
        if output.model_files is not None:  # trained by a remote worker
            from ..modelio.transfer import adopt_entry
            meta = json.loads(output.model_files[".json"])
            why = sidecar_mismatch(meta, pins)
            if why is not None:
                raise RuntimeError(f"seed {job.seed}: the worker trained its model without the CPU pins ({why}); "
                                   "refusing it (its bits would differ from `certify train`)")
            adopt_entry(models_dir, cfg, job.seed, output.model_files)
        rows = emit_certificates(output, lean_dir)
        append_rows(out, jsonl, rows)
        written += len(rows)
        bar.update(1)

    failures_path = out.with_suffix(".failures.jsonl")
    try:
        with make_executor(jobs=jobs, dask=dask, scheduler=scheduler, models_dir=models_dir, log=log) as executor:
            failures = drive(executor, todo, record, failures_path=failures_path, log=log)
    except (KeyboardInterrupt, SweepStopped) as err:
        bar.close()
        why = "interrupted" if isinstance(err, KeyboardInterrupt) else str(err)
        raise SweepStopped(f"{why}: {written} new row(s) kept in {out} and {jsonl.name} ({len(done)} were there "
                           "before); jobs in flight were dropped; re-run the same command to resume",
                           interrupted=isinstance(err, KeyboardInterrupt)) from None
    bar.close()
    return {"csv": str(out), "jsonl": str(jsonl), "rows_written": written,
            "rows_skipped": len(done), "seconds": round(time.perf_counter() - t0, 1),
            "executor": executor.describe(), "failures": [f.to_dict() for f in failures],
            "failures_log": str(failures_path), "ok": not failures}
