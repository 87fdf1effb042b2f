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
import signal
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

from ..modelio.config import Config
from ..provenance import source_digest
from .sweep import JobOutput, SweepJob, SweepStopped, run_job

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
    then reported. Any error of `on_output` (the client refusing a certificate or a
    model, or failing to write one seed's outputs: a directory in the way, a full disk,
    no permission) is that seed's failure, reported without a retry (it would fail
    again); the other seeds go on, and a re-run retries it. Returns the jobs that
    failed for good."""
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
            except Exception as err:  # noqa: BLE001 - this seed's failure, recorded below
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
        self.pool = self.new_pool()
        self.pending: dict[Future, SweepJob] = {}

    def new_pool(self) -> ProcessPoolExecutor:
        """Workers ignore Ctrl-C: the client alone handles it (and stops them)."""
        return ProcessPoolExecutor(max_workers=self.jobs, initializer=signal.signal,
                                   initargs=(signal.SIGINT, signal.SIG_IGN))

    def submit(self, job: SweepJob) -> None:
        try:
            fut = self.pool.submit(run_job, job)
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self.new_pool()
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

    def abort(self) -> None:
        """Stop at once (Ctrl-C): jobs in flight are dropped, their rows were not written."""
        for proc in list(getattr(self.pool, "_processes", {}).values()):  # no public kill before 3.14
            proc.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)


class WorkerRefused(RuntimeError):
    """A worker that must not run certify's jobs: other certify code, or torch loaded
    without the CPU pins (its training would give other bits)."""


def worker_report(dask_worker=None) -> dict:
    """What a worker runs, asked by the client when it connects (client.run): the
    source digest of its certify, and the CPU code paths of its torch if loaded."""
    import socket
    import sys
    torch = sys.modules.get("torch")
    return {"digest": source_digest(), "host": socket.gethostname(), "pid": os.getpid(),
            "torch_capability": torch.backends.cpu.get_cpu_capability() if torch is not None else None,
            "mkl_cbwr": os.environ.get("MKL_CBWR")}


def worker_problem(report, digest: str, pins: dict[str, str]) -> str | None:
    """Why a worker is unusable for this client (None: usable)."""
    from ..modelio.pins import mismatch
    if isinstance(report, BaseException):
        return f"cannot run certify there ({describe_error(report)})"
    if report["digest"] != digest:
        return (f"it runs other certify code (source digest {report['digest'][:12]}, the client's {digest[:12]}); "
                "install the client's checkout there")
    why = report["torch_capability"] and mismatch(report["torch_capability"], report["mkl_cbwr"], pins)
    if why:
        return (f"torch is already loaded there without the CPU pins ({why}); start it with "
                + " ".join(f"{k}={v}" for k, v in pins.items()) + " in its environment")
    return None


def run_remote_job(job: SweepJob, model_files: dict[str, bytes] | None, client_digest: str) -> JobOutput:
    """A Dask task: set the job's CPU pins before torch loads (or refuse a torch loaded
    without them), check that this worker runs the client's code, then run `job` in a
    scratch store under the worker's own local directory (cleaned by Dask even after a
    kill). `model_files` is the client's copy of the model; without one the worker uses
    the shipped model or trains it, and a model it trained goes back in the output."""
    from ..modelio.pins import apply_pins_before_torch
    unpinned = apply_pins_before_torch(dict(job.cpu_pins))
    where, scratch_root = "this process", None
    try:
        from distributed import get_worker
        worker = get_worker()
        where, scratch_root = f"worker {worker.address}", worker.local_directory
    except (ImportError, ValueError):  # not in a Dask worker (tests)
        pass
    try:
        here = source_digest()
        if here != client_digest:
            raise WorkerRefused(f"{where} runs other certify code (source digest {here[:12]}, the client's "
                                f"{client_digest[:12]}); install the same checkout on every worker")
        if unpinned:
            raise WorkerRefused(f"{where}: torch was loaded without the CPU pins ({unpinned})")
        from ..modelio.store import model_stem
        from ..modelio.transfer import read_entry, write_entry
        with tempfile.TemporaryDirectory(prefix="certify-job-", dir=scratch_root) as scratch:
            stem = model_stem(Path(scratch), Config(job.d_vocab, job.k, job.d_model, job.d_head), job.seed)
            if model_files is not None:
                write_entry(stem, model_files)
            output = run_job(replace(job, models_dir=scratch))
            if model_files is None:
                output.model_files = read_entry(stem)  # None: the shipped model was used
            return output
    except Exception as err:
        err.certify_worker = where  # type: ignore[attr-defined] - so that the retry goes elsewhere
        raise


def quiet_client_logs() -> dict:
    """Silence the Dask client's own connection errors while a sweep runs (a lost
    scheduler is reported once, by the sweep); returns the levels to restore."""
    import logging
    loggers = [logging.getLogger(name) for name in ("distributed.client", "distributed.comm", "distributed.core")]
    levels = {lg: lg.level for lg in loggers}
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    return levels


class DaskExecutor:
    """Jobs as tasks on a dask.distributed cluster; results stream back in completion order.

    Workers are checked when they appear (at connect time, then as the cluster grows or
    a worker restarts): one that runs other certify code or an unpinned torch is
    excluded, by name, and tasks are restricted to the checked workers. A job that
    failed on one worker is retried on another where there is one. A lost scheduler
    ends the sweep once (SweepStopped), with no retries against it."""

    POLL_SECONDS = 0.5

    def __init__(self, client, models_dir: Path, label: str, cluster=None,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        from distributed import as_completed
        from ..modelio.pins import wanted_pins
        self.client, self.cluster, self.label, self.log = client, cluster, label, log
        self.models_dir = models_dir
        self.digest, self.pins = source_digest(), wanted_pins()
        self.usable: set[str] = set()
        self.refused: dict[str, str] = {}
        self.done = as_completed()
        self.jobs: dict[str, SweepJob] = {}
        self.futures: dict[str, object] = {}
        self.allowed: dict[str, set[str]] = {}
        self.failed_on: dict[SweepJob, set[str]] = {}
        self.quieted = quiet_client_logs()
        self.check_workers()
        if self.refused and not self.usable:
            raise RuntimeError(f"{label}: no usable worker; " + "; ".join(f"{a}: {w}" for a, w in self.refused.items()))

    def alive(self) -> None:
        if self.client.status != "running":
            raise SweepStopped(f"lost the Dask scheduler ({self.label})")

    def check_workers(self) -> None:
        """Check the workers that appeared since the last look; forget those that left."""
        self.alive()
        try:
            present = set(self.client.scheduler_info(n_workers=-1)["workers"])
            new = sorted(present - self.usable - set(self.refused))
            reports = self.client.run(worker_report, workers=new, on_error="return") if new else {}
        except OSError as err:  # CommClosedError and the like: the scheduler went away
            raise SweepStopped(f"lost the Dask scheduler ({self.label}: {describe_error(err)})") from None
        for address, report in reports.items():
            why = worker_problem(report, self.digest, self.pins)
            if why is None:
                self.usable.add(address)
            else:
                self.refused[address] = why
                who = "" if isinstance(report, BaseException) else f" (host {report['host']}, pid {report['pid']})"
                self.log(f"excluding worker {address}{who}: {why}")
        self.usable &= present
        self.refused = {a: w for a, w in self.refused.items() if a in present}

    def wait_for_usable(self) -> None:
        said = False
        while not self.usable:
            if not said:
                self.log(f"waiting for a usable worker on {self.label} ...")
                said = True
            time.sleep(self.POLL_SECONDS)
            self.check_workers()

    def submit(self, job: SweepJob) -> None:
        from ..modelio.store import model_stem
        from ..modelio.transfer import read_entry
        self.wait_for_usable()
        files = read_entry(model_stem(self.models_dir, Config(job.d_vocab, job.k, job.d_model, job.d_head),
                                      job.seed))
        allowed = (self.usable - self.failed_on.get(job, set())) or set(self.usable)
        remote = replace(job, models_dir="")  # no client path travels to a worker
        fut = self.client.submit(run_remote_job, remote, files, self.digest, pure=False,
                                 key=f"certify-seed{job.seed}-{os.urandom(6).hex()}", workers=sorted(allowed),
                                 allow_other_workers=False)
        self.jobs[fut.key], self.futures[fut.key], self.allowed[fut.key] = job, fut, allowed
        self.done.add(fut)

    def rescue_stranded(self) -> None:
        """Resubmit the tasks whose allowed workers are all gone (a restarted worker
        comes back under a new address, checked again)."""
        for key in [k for k, allowed in self.allowed.items() if not allowed & self.usable]:
            if not self.usable:
                return
            job, fut = self.jobs.pop(key), self.futures.pop(key)
            del self.allowed[key]
            fut.cancel()
            self.submit(job)

    def next_done(self) -> tuple[SweepJob, Outcome]:
        from distributed.client import FutureCancelledError
        while True:
            while not self.done.has_ready():
                time.sleep(self.POLL_SECONDS)
                self.check_workers()
                self.rescue_stranded()
            fut = next(self.done)
            if fut.key not in self.jobs:  # resubmitted by rescue_stranded
                continue
            job = self.jobs.pop(fut.key)
            self.futures.pop(fut.key)
            self.allowed.pop(fut.key)
            try:
                return job, fut.result()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as err:  # noqa: BLE001 - a remote error, KilledWorker, a cancelled task
                if isinstance(err, (FutureCancelledError, OSError)):
                    self.alive()  # a task cancelled because the scheduler is gone: say that, once
                worker = getattr(err, "certify_worker", None)
                if worker is not None:
                    self.failed_on.setdefault(job, set()).add(worker)
                return job, err
            finally:
                fut.release()

    def describe(self) -> str:
        return self.label

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.close(timeout=10)
            finally:
                for logger, level in self.quieted.items():
                    logger.setLevel(level)

    def abort(self) -> None:
        """Stop at once (Ctrl-C, a lost scheduler): drop the tasks in flight."""
        if self.client.status == "running":
            try:
                self.client.cancel(list(self.futures.values()))
            except Exception:  # noqa: BLE001 - we are leaving anyway
                pass
        self.close()


def dask_executor(*, jobs: int, scheduler: str | None, models_dir: Path,
                  log: Callable[[str], None] = lambda _m: None) -> DaskExecutor:
    """A LocalCluster of `jobs` one-thread worker processes on loopback (no dashboard),
    or a client of `scheduler`."""
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
        return DaskExecutor(client, models_dir, f"dask scheduler {scheduler}", log=log)
    # no dashboard; the scheduler's own HTTP routes (health, metrics) on loopback, any free port
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, scheduler_kwargs={"dashboard": False,
                                                                     "dashboard_address": "127.0.0.1:0"},
                           silence_logs=logging.ERROR)
    return DaskExecutor(Client(cluster), models_dir, f"dask LocalCluster ({jobs} workers)", cluster, log=log)


@contextmanager
def make_executor(*, jobs: int, dask: bool, scheduler: str | None, models_dir: Path,
                  log: Callable[[str], None] = lambda _m: None) -> Iterator[Executor]:
    """The executor for these options, closed on the way out; on Ctrl-C or a lost
    scheduler it is stopped at once (its finished rows are already written)."""
    if dask or scheduler is not None:
        executor: Executor = dask_executor(jobs=jobs, scheduler=scheduler, models_dir=models_dir, log=log)
    elif jobs <= 1:
        executor = InlineExecutor()
    else:
        executor = ProcessExecutor(jobs)
    try:
        yield executor
    except (KeyboardInterrupt, SweepStopped):
        getattr(executor, "abort", executor.close)()
        raise
    except BaseException:
        executor.close()
        raise
    executor.close()
