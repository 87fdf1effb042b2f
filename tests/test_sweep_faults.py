"""Sweeps under faults, on a real dask.distributed cluster (`dask scheduler` and
`dask worker` subprocesses on 127.0.0.1, workers without the CPU pins in their
environment): a killed worker, a killed client then a re-run, a failing write of one
seed, mismatched workers, two sweeps on one --out, a lost scheduler, Ctrl-C. Each
asserts that the CSV and the JSON lines hold the same rows, row for row, and that
the finished sweep equals the reference (`certify sweep -j 2`, pinned)."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from certify.cli import main  # noqa: E402
from certify.experiments.sweep import FAULT_HOOK, sweep  # noqa: E402
from certify.provenance import PACKAGE_DIR  # noqa: E402
from sweep_cluster import ProcessCluster, unpinned_env  # noqa: E402

SMALL = dict(d_vocab=6, k=3, d_model=8, d_head=8)
SMALL_ARGS = ["--k", "3", "--d-vocab", "6", "--d-model", "8", "--d-head", "8"]
SEEDS = [1, 2, 3]
STRATEGIES = "bruteforce,cubic,subcubic"
RUN_DEPENDENT = ("seconds", "search_seconds", "certificate")


def sweep_args(root: Path, *extra: str) -> list[str]:
    return ["sweep", *SMALL_ARGS, "--seeds", ",".join(map(str, SEEDS)), "--strategies", STRATEGIES,
            "--out", str(root / "results.csv"), "--models-dir", str(root / "models"),
            "--lean-dir", str(root / "lean"), *extra]


def cli(args: list[str], **env: str) -> subprocess.Popen:
    """`certify ...` as a separate client process (it pins, like every user's CLI)."""
    return subprocess.Popen([sys.executable, "-m", "certify", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def finish(proc: subprocess.Popen, timeout: int = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def table(csv_path: Path) -> dict:
    """The rows without timings, keyed by (seed, strategy); no key twice."""
    out = {}
    for r in csv.DictReader(csv_path.open()):
        key = (int(r["seed"]), r["strategy"])
        assert key not in out, f"duplicate row {key}"
        out[key] = {**{k: v for k, v in r.items() if k not in RUN_DEPENDENT},
                    "certificate": os.path.basename(r["certificate"])}
    return out


def assert_files_agree(csv_path: Path) -> int:
    """The CSV and the JSON lines hold the same rows in the same order, cell for cell."""
    csv_rows = list(csv.DictReader(csv_path.open())) if csv_path.exists() else []
    jsonl = csv_path.with_suffix(".jsonl")
    records = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
    as_csv = [{k: "" if v is None else str(v) for k, v in rec.items()} for rec in records]
    assert len(csv_rows) == len(as_csv), f"CSV {len(csv_rows)} rows, JSON lines {len(as_csv)}"
    for c, j in zip(csv_rows, as_csv):
        assert c == j
    return len(csv_rows)


def model_digests(models: Path) -> dict:
    return {p.name: json.loads(p.read_text())["sha256"] for p in models.rglob("seed*.json")}


def no_scratch_left(cluster: ProcessCluster) -> None:
    assert not list(cluster.tmp.glob("certify-job-*")), "a job's scratch was left in the worker's TMPDIR"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """`certify sweep -j 2` as a user runs it (pinned), training the models here."""
    root = tmp_path_factory.mktemp("reference")
    (root / "models").mkdir()
    code, out, err = finish(cli(sweep_args(root, "-j", "2", "--json")))
    assert code == 0, err
    assert assert_files_agree(root / "results.csv") == 9
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = ProcessCluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.add_worker("w1")
        c.add_worker("w2")
        c.wait_for_workers(2)
        yield c
    finally:
        c.close()


def client_store(reference: Path, tmp_path: Path, without: tuple[int, ...] = ()) -> None:
    shutil.copytree(reference / "models", tmp_path / "models")
    for seed in without:
        for p in (tmp_path / "models").rglob(f"seed{seed}.*"):
            p.unlink()


def run_sweep(root: Path, address: str) -> dict:
    return sweep(SEEDS, STRATEGIES.split(","), root / "results.csv", models_dir=root / "models",
                 lean_dir=root / "lean", progress=False, scheduler=address, **SMALL)


def test_every_worker_proves_the_same_bits(reference, cluster, tmp_path):
    """Workers whose environment has no CPU pins train every seed: the job sets the
    pins before torch loads, so the models are the pinned `certify sweep -j 2` bits,
    and the client adopts them (their sidecars say pinned)."""
    (tmp_path / "models").mkdir()
    info = run_sweep(tmp_path, cluster.address)
    assert info["ok"] and info["rows_written"] == 9
    assert model_digests(tmp_path / "models") == model_digests(reference / "models")
    for p in (tmp_path / "models").rglob("seed*.json"):
        env = json.loads(p.read_text())["trained_with"]
        assert (env["cpu_capability"], env["mkl_cbwr"]) == ("DEFAULT", "COMPATIBLE")
    assert table(tmp_path / "results.csv") == table(reference / "results.csv")
    assert assert_files_agree(tmp_path / "results.csv") == 9
    no_scratch_left(cluster)


def stale_checkout(tmp_path: Path) -> Path:
    """A copy of the installed package with one proof file changed (same "0.1.0")."""
    root = tmp_path / "stale-checkout"
    shutil.copytree(PACKAGE_DIR, root / "certify", ignore=shutil.ignore_patterns("__pycache__", "shipped"))
    os.symlink(PACKAGE_DIR / "modelio" / "shipped", root / "certify" / "modelio" / "shipped")
    with (root / "certify" / "proofs" / "strategies.py").open("a") as f:
        f.write("\n# a worker on another checkout: other proof code, same version string\n")
    return root


def test_a_mismatched_worker_is_excluded_by_name(reference, cluster, tmp_path, capsys):
    """A worker on other certify code and one whose torch was loaded without the pins
    are excluded when the client connects, each named; every seed still runs (on the
    good workers) and the rows are the reference's."""
    stale = cluster.add_worker("stale", env=unpinned_env(PYTHONPATH=str(stale_checkout(tmp_path)),
                                                         TMPDIR=str(cluster.tmp)))
    unpinned = cluster.add_worker("unpinned", preload="torch",
                                  env=unpinned_env(ATEN_CPU_CAPABILITY="avx2", TMPDIR=str(cluster.tmp)))
    try:
        names = cluster.wait_for_workers(4)
        client_store(reference, tmp_path)
        info = run_sweep(tmp_path, cluster.address)
        err = capsys.readouterr().err
        by_name = {n: a for a, n in names.items()}
        assert f"excluding worker {by_name['stale']}" in err and "runs other certify code" in err
        assert f"excluding worker {by_name['unpinned']}" in err and "without the CPU pins" in err
        assert f"excluding worker {by_name['w1']}" not in err
        assert info["ok"] and info["rows_written"] == 9, info["failures"]
        assert table(tmp_path / "results.csv") == table(reference / "results.csv")
        assert assert_files_agree(tmp_path / "results.csv") == 9
    finally:
        cluster.stop_worker(stale)
        cluster.stop_worker(unpinned)


def test_failures_are_recorded_not_fatal(reference, cluster, tmp_path, capsys):
    """A directory where seed 2's certificate should go: seed 2 is recorded as failed
    (with its error), seeds 1 and 3 are written, and a re-run finishes seed 2."""
    client_store(reference, tmp_path)
    blocked = next((reference / "lean").rglob("*Seed2_*.lean")).relative_to(reference)
    shutil.copytree(reference / "lean", tmp_path / "lean")  # the Lake project; seeds 1 and 3 re-emit the same bytes
    for p in (tmp_path / "lean").rglob("*Seed2_*"):
        p.unlink()
    (tmp_path / blocked).mkdir()
    code = main(sweep_args(tmp_path, "--scheduler", cluster.address, "--json"))
    info = json.loads(capsys.readouterr().out)
    assert code == 1 and [(f["seed"], f["attempts"]) for f in info["failures"]] == [(2, 1)]
    assert "Is a directory" in info["failures"][0]["error"]
    assert {k[0] for k in table(tmp_path / "results.csv")} == {1, 3}
    assert assert_files_agree(tmp_path / "results.csv") == 6
    log = [json.loads(line) for line in (tmp_path / "results.failures.jsonl").read_text().splitlines()]
    assert [(e["seed"], e["final"]) for e in log] == [(2, True)]
    (tmp_path / blocked).rmdir()
    code = main(sweep_args(tmp_path, "--scheduler", cluster.address, "--json"))
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["rows_written"] == 3 and info["rows_skipped"] == 6
    assert table(tmp_path / "results.csv") == table(reference / "results.csv")
    assert assert_files_agree(tmp_path / "results.csv") == 9


@pytest.mark.parametrize("kill_after_rows", [3, 6])
def test_an_interrupted_sweep_loses_no_finished_row(reference, cluster, tmp_path, kill_after_rows):
    """The client is SIGKILLed between a seed's JSON-lines write and its CSV write (the
    worst point); the re-run repairs the CSV from the JSON lines, runs only what is
    missing, and the files agree row for row with each other and with the reference."""
    client_store(reference, tmp_path)
    code, _, err = finish(cli(sweep_args(tmp_path, "--scheduler", cluster.address),
                              **{FAULT_HOOK: str(kill_after_rows)}))
    assert code == -signal.SIGKILL, err
    jsonl = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(jsonl) == kill_after_rows  # the killed seed's rows are in the record, not in the CSV
    csv_rows = len(list(csv.DictReader((tmp_path / "results.csv").open()))) if (tmp_path / "results.csv").exists() else 0
    assert csv_rows == kill_after_rows - 3
    code, out, err = finish(cli(sweep_args(tmp_path, "--scheduler", cluster.address, "--json")))
    info = json.loads(out)
    assert code == 0 and info["rows_skipped"] == kill_after_rows and info["rows_written"] == 9 - kill_after_rows
    assert table(tmp_path / "results.csv") == table(reference / "results.csv")
    assert assert_files_agree(tmp_path / "results.csv") == 9


def test_a_killed_worker_loses_no_row(reference, cluster, tmp_path):
    """A worker that holds a task is SIGKILLed once the first rows are written; its nanny
    restarts it under a new address (checked again), the task runs again, the rows
    written before stay as they were, and seed 3's model (trained on a worker) comes
    back to the client's store; no scratch directory is left behind."""
    client_store(reference, tmp_path, without=(3,))
    out = tmp_path / "results.csv"
    killed: dict = {}

    def kill_a_busy_worker():
        with distributed.Client(cluster.address, timeout="30s") as client:
            pids = client.run(os.getpid)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and "pid" not in killed:
                if out.exists() and len(out.read_text().splitlines()) > 1:
                    busy = [w for w, keys in client.processing().items() if keys and w in pids]
                    if busy:
                        killed["before"] = out.read_text()
                        killed["pid"] = pids[busy[0]]
                        os.kill(pids[busy[0]], signal.SIGKILL)
                time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    info = run_sweep(tmp_path, cluster.address)
    killer.join()
    assert "pid" in killed, "no worker was busy after the first rows: the kill never happened"
    assert info["ok"] and info["rows_written"] == 9, info["failures"]
    assert out.read_text().startswith(killed["before"])
    assert table(out) == table(reference / "results.csv")
    assert assert_files_agree(out) == 9
    assert model_digests(tmp_path / "models") == model_digests(reference / "models")
    cluster.wait_for_workers(2)
    no_scratch_left(cluster)


def test_two_sweeps_on_one_out_refuse_the_second(reference, cluster, tmp_path, capsys):
    """While one sweep holds --out, a second one on it refuses, naming the holder;
    the first finishes alone (no row twice)."""
    client_store(reference, tmp_path, without=(1, 2, 3))  # the first sweep trains: it runs for a while
    first = cli(sweep_args(tmp_path, "--scheduler", cluster.address, "--json"))
    lock = tmp_path / "results.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().strip()):
        assert time.monotonic() < deadline and first.poll() is None, "the first sweep never took the lock"
        time.sleep(0.05)
    code = main(sweep_args(tmp_path, "--scheduler", cluster.address))
    err = capsys.readouterr().err
    assert code == 2 and f"in use by another sweep (pid {first.pid} on host" in err
    code, out, err = finish(first)
    assert code == 0, err
    assert not lock.exists()
    assert table(tmp_path / "results.csv") == table(reference / "results.csv")
    assert assert_files_agree(tmp_path / "results.csv") == 9


def test_a_stale_lock_is_taken_over(reference, tmp_path):
    """A lock file left by a sweep that died (its pid is gone) does not block."""
    client_store(reference, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "results.lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                                       "since": "then"}))
    assert main(sweep_args(tmp_path, "--json")) == 0
    assert assert_files_agree(tmp_path / "results.csv") == 9


def test_a_lost_scheduler_is_reported_once(reference, tmp_path):
    """The scheduler dies mid-sweep: the client says so in one line (no per-seed
    'cancelled' failures, no retries, no traceback) and keeps the finished rows."""
    lone = ProcessCluster(tmp_path / "lone")
    try:
        lone.add_worker("only")
        lone.wait_for_workers(1)
        client_store(reference, tmp_path, without=(2, 3))  # seeds 2 and 3 train: time to kill
        proc = cli(sweep_args(tmp_path, "--scheduler", lone.address))
        out = tmp_path / "results.csv"
        deadline = time.monotonic() + 300
        while not (out.exists() and len(out.read_text().splitlines()) > 1):
            assert time.monotonic() < deadline and proc.poll() is None, "no first row"
            time.sleep(0.05)
        lone.scheduler.kill()
        code, _, err = finish(proc, timeout=120)
    finally:
        lone.close()
    assert code == 2, err
    assert err.count("lost the Dask scheduler") == 1 and "re-run the same command to resume" in err
    assert "cancelled" not in err and "Traceback" not in err and "attempt" not in err
    assert not (tmp_path / "results.failures.jsonl").exists()
    rows = assert_files_agree(tmp_path / "results.csv")
    assert rows >= 3 and rows % 3 == 0


def test_ctrl_c_exits_at_once_saying_what_was_kept(reference, tmp_path):
    """Ctrl-C during `-j 2`: one line (what was kept, how to resume), no traceback,
    exit 130; the re-run completes the reference rows."""
    client_store(reference, tmp_path, without=(2, 3))
    proc = cli(sweep_args(tmp_path, "-j", "2"))
    out = tmp_path / "results.csv"
    deadline = time.monotonic() + 300
    while not (out.exists() and len(out.read_text().splitlines()) > 1):
        assert time.monotonic() < deadline and proc.poll() is None, "no first row"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc, timeout=60)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "interrupted:" in err and "re-run the same command to resume" in err
    assert assert_files_agree(out) >= 3
    code, _, err = finish(cli(sweep_args(tmp_path, "-j", "2")))
    assert code == 0, err
    assert table(out) == table(reference / "results.csv")
    assert assert_files_agree(out) == 9
