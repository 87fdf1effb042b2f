"""A real dask.distributed cluster for the sweep fault tests: `dask scheduler` and
`dask worker` started as subprocesses on 127.0.0.1 (never a mock), with a worker
environment that carries no CPU pins (a worker's environment is not to be trusted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PIN_VARS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "CERTIFY_CPU_PINS")


def unpinned_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PIN_VARS}
    return {**env, **extra}


class ProcessCluster:
    """One scheduler subprocess and any number of worker subprocesses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.tmp = root / "worker-tmp"  # TMPDIR of every worker: no certify-job-* may be left there
        self.tmp.mkdir(exist_ok=True)
        self.workers: list[subprocess.Popen] = []
        sched_file = root / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            env=unpinned_env(), cwd=root, stdout=subprocess.DEVNULL, stderr=(root / "scheduler.log").open("w"))
        deadline = time.monotonic() + 120
        while not sched_file.exists() or not sched_file.read_text().strip():
            assert time.monotonic() < deadline and self.scheduler.poll() is None, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(sched_file.read_text())["address"]

    def add_worker(self, name: str, env: dict | None = None, preload: str | None = None) -> subprocess.Popen:
        """A worker (with a nanny, which restarts it when it dies) named `name`, started in
        the cluster's directory (so `import certify` finds the installed package, or
        PYTHONPATH's, never the current directory's)."""
        cmd = [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1",
               "--name", name, "--host", "127.0.0.1", "--no-dashboard",
               "--local-directory", str(self.root / f"local-{name}")]
        if preload:
            cmd += ["--preload", preload]
        proc = subprocess.Popen(cmd, env=env or unpinned_env(TMPDIR=str(self.tmp)), cwd=self.root,
                                stdout=subprocess.DEVNULL,
                                stderr=(self.root / f"worker-{name}.log").open("w"))
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int) -> dict:
        """{address: name} once `n` workers are connected."""
        from distributed import Client
        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(n, timeout=180)
            return {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}

    def stop_worker(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.workers.remove(proc)

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
