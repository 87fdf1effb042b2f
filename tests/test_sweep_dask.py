"""The Dask executor: the same rows as the local executor, and a failing job reported
(after one retry), not fatal. Faults on a real scheduler: tests/test_sweep_faults.py."""

import csv
import json
import logging
import os
import shutil

import pytest

distributed = pytest.importorskip("distributed")

from certify.cli import main  # noqa: E402
from certify.experiments.sweep import sweep  # noqa: E402

SMALL = dict(d_vocab=6, k=3, d_model=8, d_head=8)
SMALL_ARGS = ["--k", "3", "--d-vocab", "6", "--d-model", "8", "--d-head", "8"]
SEEDS = [1, 2, 3]
STRATEGIES = ["bruteforce", "cubic", "subcubic"]
RUN_DEPENDENT = ("seconds", "search_seconds", "certificate")  # timings; the certificate's path


def table(csv_path):
    """The rows without timings, keyed by (seed, strategy); the certificate by file name."""
    out = {}
    for r in csv.DictReader(csv_path.open()):
        key = (int(r["seed"]), r["strategy"])
        assert key not in out, f"duplicate row {key}"
        out[key] = {**{k: v for k, v in r.items() if k not in RUN_DEPENDENT},
                    "certificate": os.path.basename(r["certificate"])}
    return out


def certificates(lean_dir):
    return {p.name: p.read_text() for p in (lean_dir / "MaxKCert" / "Certs").iterdir()}


def run_sweep(root, **executor):
    return sweep(SEEDS, STRATEGIES, root / "results.csv", models_dir=root / "models", lean_dir=root / "lean",
                 progress=False, **SMALL, **executor)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The reference: the local executor (two processes), training the models here."""
    root = tmp_path_factory.mktemp("local")
    info = run_sweep(root, jobs=2)
    assert info["ok"] and info["rows_written"] == len(SEEDS) * len(STRATEGIES)
    return root


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as c:
        yield c


def test_dask_gives_the_local_rows_and_certificates(local, cluster, tmp_path):
    """Workers get the client's models as bytes; the client writes rows and certificates."""
    shutil.copytree(local / "models", tmp_path / "models")
    info = run_sweep(tmp_path, scheduler=cluster.scheduler_address)
    assert info["ok"] and info["executor"].startswith("dask") and info["rows_written"] == 9
    assert table(tmp_path / "results.csv") == table(local / "results.csv")
    assert certificates(tmp_path / "lean") == certificates(local / "lean")
    jsonl = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(jsonl) == 9
    again = run_sweep(tmp_path, scheduler=cluster.scheduler_address)  # resumable: nothing left to do
    assert again["rows_written"] == 0 and again["rows_skipped"] == 9


def failing_store(local, tmp_path):
    """A client store where seed 1 is fine and seed 2's weights were changed on disk."""
    shutil.copytree(local / "models", tmp_path / "models")
    bad = next((tmp_path / "models").rglob("seed2.safetensors"))
    blob = bytearray(bad.read_bytes())
    blob[-1] ^= 0x01  # one weight bit: the digest no longer matches the sidecar
    bad.write_bytes(bytes(blob))


@pytest.mark.parametrize("executor", [[], ["--dask", "-j", "1"]], ids=["local", "dask"])
def test_a_failing_job_is_retried_once_and_reported(local, tmp_path, capsys, executor):
    failing_store(local, tmp_path)
    out = tmp_path / "results.csv"
    code = main(["sweep", *SMALL_ARGS, "--seeds", "1,2", "--strategies", ",".join(STRATEGIES), "--out", str(out),
                 "--models-dir", str(tmp_path / "models"), "--lean-dir", str(tmp_path / "lean"), "--json",
                 *executor])
    info = json.loads(capsys.readouterr().out)
    assert code == 1 and not info["ok"]
    assert [(f["seed"], f["attempts"]) for f in info["failures"]] == [(2, 2)]
    assert "sha256" in info["failures"][0]["error"]
    assert {r["seed"] for r in csv.DictReader(out.open())} == {"1"} and info["rows_written"] == 3
    log = [json.loads(line) for line in (tmp_path / "results.failures.jsonl").read_text().splitlines()]
    assert [(e["seed"], e["attempt"], e["final"]) for e in log] == [(2, 1, False), (2, 2, True)]


def test_the_local_cluster_serves_no_dashboard(tmp_path):
    """`--dask` starts its LocalCluster without a dashboard (it used to listen on every
    interface) and on loopback only."""
    from certify.experiments.executors import dask_executor
    ex = dask_executor(jobs=1, scheduler=None, models_dir=tmp_path)
    try:
        scheduler = ex.cluster.scheduler
        assert ex.cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        bound = {sock.getsockname()[0] for sock in scheduler.http_server._sockets.values()}
        assert bound == {"127.0.0.1"}  # its HTTP routes (health, metrics) on loopback only
    finally:
        ex.close()
