"""Where sweep jobs run: inline, in local processes, or on a Dask cluster.

Every executor offers `submit(job)` and `next_done() -> (job, JobOutput or the error)`;
`drive` submits the jobs, hands each finished output to the client's callback (which
alone writes results, certificates and models), retries a failed job once and records
every failure. On Dask (dask.distributed) the scheduler reschedules the tasks of a lost
worker by itself; a task that still fails is a failure like any other.

A Dask task gets no path of the client's: it runs in a private scratch store, receives
the client's copy of its model as bytes (or uses the shipped model, or trains one and
returns it as bytes), and returns rows and certificates by value.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
from collections import deque
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Protocol

from .. import __version__
from ..modelio.config import Config
from .sweep import JobOutput, SweepJob, run_job

Outcome = JobOutput | BaseException


class Executor(Protocol):
    def submit(self, job: SweepJob) -> None: ...
    def next_done(self) -> tuple[SweepJob, Outcome]: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Failure:
    seed: int
    attempts: int
    error: str

    def to_dict(self) -> dict:
        return asdict(self)


def describe_error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".strip()


def record_attempt(path: Path, job: SweepJob, attempt: int, err: BaseException, final: bool) -> None:
    """Append one failed attempt to the failures log (JSON lines, written by the client)."""
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))[-4000:]
    entry = {"seed": job.seed, "strategies": list(job.strategies), "attempt": attempt, "final": final,
             "error": describe_error(err), "traceback": tb, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def drive(executor: Executor, jobs: list[SweepJob], on_output: Callable[[SweepJob, JobOutput], None], *,
          failures_path: Path, retries: int = 1, log: Callable[[str], None] = lambda _m: None) -> list[Failure]:
    """Run every job; a job that raises is logged and resubmitted up to `retries` times,
    then reported. A ValueError from `on_output` (the client refusing a certificate or a
    model: the archive and the store are append-only) is reported without a retry,
    since it would refuse again. Returns the jobs that failed for good."""
    attempts = {job: 1 for job in jobs}
    for job in jobs:
        executor.submit(job)
    failures, open_jobs = [], len(attempts)
    while open_jobs:
        job, outcome = executor.next_done()
        if isinstance(outcome, JobOutput):
            try:
                on_output(job, outcome)
                open_jobs -= 1
                continue
            except ValueError as err:
                outcome, final = err, True
        else:
            final = attempts[job] > retries
        record_attempt(failures_path, job, attempts[job], outcome, final)
        log(f"seed {job.seed}: attempt {attempts[job]} failed: {describe_error(outcome)}"
            f"{'' if final else '; retrying'}")
        if final:
            failures.append(Failure(job.seed, attempts[job], describe_error(outcome)))
            open_jobs -= 1
        else:
            attempts[job] += 1
            executor.submit(job)
    return failures


class InlineExecutor:
    """One job at a time in this process, run when its result is asked for (so rows
    stream out one seed at a time)."""

    def __init__(self) -> None:
        self.queue: deque[SweepJob] = deque()

    def submit(self, job: SweepJob) -> None:
        self.queue.append(job)

    def next_done(self) -> tuple[SweepJob, Outcome]:
        job = self.queue.popleft()
        try:
            return job, run_job(job)
        except Exception as err:  # noqa: BLE001 - reported by drive()
            return job, err

    def describe(self) -> str:
        return "inline"

    def close(self) -> None:
        self.queue.clear()


class ProcessExecutor:
    """`jobs` local worker processes (concurrent.futures); a pool broken by a dead
    process is replaced when the next job is submitted."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool = ProcessPoolExecutor(max_workers=jobs)
        self.pending: dict[Future, SweepJob] = {}

    def submit(self, job: SweepJob) -> None:
        try:
            fut = self.pool.submit(run_job, job)
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = ProcessPoolExecutor(max_workers=self.jobs)
            fut = self.pool.submit(run_job, job)
        self.pending[fut] = job

    def next_done(self) -> tuple[SweepJob, Outcome]:
        done, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
        fut = next(iter(done))
        job = self.pending.pop(fut)
        err = fut.exception()
        return job, err if err is not None else fut.result()

    def describe(self) -> str:
        return f"local processes ({self.jobs})"

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def run_remote_job(job: SweepJob, model_files: dict[str, bytes] | None, client_version: str) -> JobOutput:
    """A Dask task: run `job` in a private scratch store. `model_files` is the client's
    copy of the model; without one the worker uses the shipped model or trains it, and
    a model it trained goes back in the output."""
    from ..modelio.store import model_stem
    from ..modelio.transfer import read_entry, write_entry
    if client_version != __version__:
        raise RuntimeError(f"this worker runs certify {__version__}, the client {client_version}; "
                           "install the same version on every worker")
    with tempfile.TemporaryDirectory(prefix="certify-job-") as scratch:
        stem = model_stem(Path(scratch), Config(job.d_vocab, job.k, job.d_model, job.d_head), job.seed)
        if model_files is not None:
            write_entry(stem, model_files)
        output = run_job(replace(job, models_dir=scratch))
        if model_files is None:
            output.model_files = read_entry(stem)  # None: the shipped model was used
        return output


class DaskExecutor:
    """Jobs as tasks on a dask.distributed cluster; results stream back in completion order."""

    def __init__(self, client, models_dir: Path, label: str, cluster=None) -> None:
        from distributed import as_completed
        self.client, self.cluster, self.label = client, cluster, label
        self.models_dir = models_dir
        self.done = as_completed()
        self.jobs: dict[str, SweepJob] = {}

    def submit(self, job: SweepJob) -> None:
        from ..modelio.store import model_stem
        from ..modelio.transfer import read_entry
        files = read_entry(model_stem(self.models_dir, Config(job.d_vocab, job.k, job.d_model, job.d_head),
                                      job.seed))
        remote = replace(job, models_dir="")  # no client path travels to a worker
        fut = self.client.submit(run_remote_job, remote, files, __version__, pure=False,
                                 key=f"certify-seed{job.seed}-{os.urandom(6).hex()}")
        self.jobs[fut.key] = job
        self.done.add(fut)

    def next_done(self) -> tuple[SweepJob, Outcome]:
        fut = next(self.done)
        job = self.jobs.pop(fut.key)
        try:
            return job, fut.result()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # noqa: BLE001 - a remote error, KilledWorker, a cancelled task
            return job, err
        finally:
            fut.release()

    def describe(self) -> str:
        return self.label

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def dask_executor(*, jobs: int, scheduler: str | None, models_dir: Path) -> DaskExecutor:
    """A LocalCluster of `jobs` one-thread worker processes, or a client of `scheduler`."""
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError("--dask and --scheduler need dask.distributed: pip install 'certify[dask]' "
                           "(or pip install 'dask[distributed]')") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as err:
            raise RuntimeError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({err})") from None
        return DaskExecutor(client, models_dir, f"dask scheduler {scheduler}")
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    return DaskExecutor(Client(cluster), models_dir, f"dask LocalCluster ({jobs} workers)", cluster)


@contextmanager
def make_executor(*, jobs: int, dask: bool, scheduler: str | None, models_dir: Path) -> Iterator[Executor]:
    """The executor for these options, closed on the way out (an interrupted sweep
    stops its workers; its finished rows are already written)."""
    if dask or scheduler is not None:
        executor: Executor = dask_executor(jobs=jobs, scheduler=scheduler, models_dir=models_dir)
    elif jobs <= 1:
        executor = InlineExecutor()
    else:
        executor = ProcessExecutor(jobs)
    try:
        yield executor
    finally:
        executor.close()
