"""The docs check: every command shown in a fenced `sh` block of README.md or docs/*.md
is run here, in a scratch directory, on small models.

A command that runs in seconds as written runs as written. A command that takes minutes
(151 seeds, full-size models, a cluster by hand) is listed in LONG with the small variant
that runs instead, exercising the same code path; a command covered elsewhere says where
(COVERED). A documented command in none of these fails `test_every_command_is_known`, so
the docs cannot show a command that nothing runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SMALL = "--k 3 --d-vocab 6 --d-model 8 --d-head 8"
SL_SMALL = "--d-vocab 8 --d-model 8"
CERT = "lean/MaxKCert/Certs/V64K4M32H32Seed123_40c30c87.lean"
SWEEP_SMALL = f"certify sweep --seeds 1,2 --strategies bruteforce,cubic,gap {SMALL} --out results/results.csv"


def documented_commands() -> list[tuple[str, str]]:
    """(page, command) for every command line of every ```sh block, comments dropped."""
    out = []
    for page in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line and not line.startswith("#"):
                    out.append((page.relative_to(ROOT).as_posix(), line))
    return out


# documented command -> the commands run instead (in order, in the scratch directory)
LONG: dict[str, list[str]] = {
    "make certify SEED=123": ["@make-certify"],  # the real make target, PY = this interpreter
    "make certify MODEL=model.pt CONFIG=config.json": ["@make-certify-model"],
    "certify sweep --seeds paper151 --strategies all -j 2": [SWEEP_SMALL + " -j 2"],
    "certify report results/results.csv --out docs/report": [SWEEP_SMALL, "certify report results/results.csv --out docs/report"],
    "python benchmarks/soundness.py --n 2000": ["python benchmarks/soundness.py --n 2"],
    "python benchmarks/loss.py": [  # full-size sum-linear models (minutes): the same proofs, small
        f"certify prove --seed 1 {SMALL} --metric loss",
        f"certify prove --arch sum-linear --seed 0 --k 3 {SL_SMALL} --metric loss"],
    "certify prove --seed 123 --metric loss": [f"certify prove --seed 1 {SMALL} --metric loss"],
    "certify prove --arch sum-linear --seed 0 --k 3 --metric loss":
        [f"certify prove --arch sum-linear --seed 0 --k 3 {SL_SMALL} --metric loss"],
    "certify sweep --seeds 1,2 --strategies bruteforce,cubic,subcubic --loss":
        [f"certify sweep --seeds 1,2 --strategies bruteforce,cubic,subcubic --loss {SMALL} --out results/loss.csv"],
    "python -m certify.experiments.paper_report results/results.csv --out docs/paper":
        [SWEEP_SMALL, "python -m certify.experiments.paper_report results/results.csv --out docs/paper --seed 1"],
    "certify prove --seed 123 --strategy all": [f"certify prove --seed 1 {SMALL} --strategy all"],
    "certify sweep --scrub --seeds paper151 -j 2": [f"certify sweep --scrub --seeds 1,2 {SMALL} --samples 200"],
    "certify report results/results.csv --scrub results/scrub.csv --out docs/scrub":
        [SWEEP_SMALL, f"certify sweep --scrub --seeds 1,2 {SMALL} --samples 200",
         "certify report results/results.csv --scrub results/scrub.csv --out docs/scrub"],
    "python benchmarks/k_configs.py": ["python benchmarks/k_configs.py --presets paper-k5 --cubic-sample 64"],
    "certify sweep --dask -j 2 --k 5 --seeds 123 --strategies all":
        [f"certify sweep --dask -j 1 --seeds 1 --strategies gap {SMALL} --out results/dask.csv"],
    # the cluster by hand: a real scheduler and worker started as in the docs (@cluster)
    "dask scheduler": ["@cluster"],
    "export ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE": ["@cluster"],
    "dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1": ["@cluster"],
    "certify sweep --scheduler tcp://HOST:8786 --k 10 --seeds paper151 --out results/k10.csv": ["@cluster"],
    "certify run --model model.pt --config config.json": ["certify run --model model.pt --config config.json "
                                                          "--lean-dir lean-out"],  # not into the checkout's lean/
    "certify prove --arch sum-linear --model tutorial.pt --k 2": ["certify prove --arch sum-linear --model tutorial.pt --k 2"],
}
# run as written (cwd: the scratch directory, or the checkout for paths into it)
AS_WRITTEN = {
    "certify import model.pt --config config.json --name mine",
    "certify prove --model mine --strategy gap",
    "certify prove --model mine --strategy all",
    "certify train --seed 123",
    f"certify check {CERT}",
    "python benchmarks/compounding.py --seed 123",
}
COVERED = {"make test": ".ci/run (CI runs exactly this)"}


def test_every_command_is_known():
    unknown = sorted({c for _, c in documented_commands()} - set(LONG) - AS_WRITTEN - set(COVERED))
    assert not unknown, f"documented commands nothing runs (add them to tests/test_docs.py): {unknown}"


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 210


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A directory with what the docs' commands expect: model.pt + config.json (a small
    TransformerLens 3.x model) and tutorial.pt (a small sum-linear state dict)."""
    import torch
    sys.path.insert(0, str(ROOT / "tests"))
    from test_import import tl_config, tl_state
    from certify.modelio.model import Config
    from certify.modelio.sumlinear import SumLinearConfig, train as train_sum_linear
    from certify.modelio.train import TrainParams, train
    d = tmp_path_factory.mktemp("docs")
    cfg = Config(6, 3, 8, 8)
    w, _ = train(cfg, 11, TrainParams(steps=300))
    torch.save(tl_state(w), d / "model.pt")
    (d / "config.json").write_text(json.dumps(tl_config(cfg), default=str))
    sl, _ = train_sum_linear(SumLinearConfig(d_vocab=8, d_model=8, n_ctx=2), 0)
    torch.save(dict(sl), d / "tutorial.pt")  # keys embedding.weight, linear.weight, unembedding.weight
    return d


def env() -> dict:
    bin_dir = str(Path(sys.executable).parent)  # `certify` and `python` of this environment
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "PYTHONPATH": str(ROOT)}


def sh(command: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
        if argv[1].startswith("benchmarks/"):
            argv[1] = str(ROOT / argv[1])
    elif argv[0] == "certify":
        argv = [sys.executable, "-m", "certify", *argv[1:]]
    if command.startswith("certify check lean/"):
        cwd = ROOT
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env(), timeout=timeout)
    assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


def make(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real Makefile target with this interpreter (PY=) and a ready deps marker
    (STAMP=): nothing is installed, the recipe is the documented one."""
    stamp = cwd / "deps-ready"
    stamp.touch()
    r = subprocess.run(["make", "-C", str(ROOT), *args, f"PY={sys.executable}", f"STAMP={stamp}"],
                       capture_output=True, text=True, env=env(), timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cluster_by_hand(cwd: Path) -> None:
    """docs/sweeps.md's cluster by hand: `dask scheduler`, the CPU pins, `dask worker`, then
    `certify sweep --scheduler` (on 127.0.0.1, one worker, a small model)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    worker_env = {**env(), "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
    procs = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], cwd=cwd,
                              env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(3)
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                       "--nworkers", "1", "--nthreads", "1", "--no-dashboard"], cwd=cwd,
                                      env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        r = sh(f"certify sweep --scheduler {address} --seeds 1 --strategies gap {SMALL} --out results/k.csv "
               "--json", cwd)
        assert json.loads(r.stdout)["rows_written"] == 1
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


def run_variant(step: str, cwd: Path) -> None:
    if step == "@make-certify":
        out = make("certify", "SEED=123", cwd=cwd).stdout
        table = [line for line in out.splitlines() if not line.startswith(sys.executable) and
                 not line.strip().endswith(".lean") and not line.startswith("make")]
        assert any(line.startswith("strategy ") for line in table) and max(map(len, table)) <= 100
    elif step == "@make-certify-model":  # the recipe (it writes into the checkout's lean/: run above with --lean-dir)
        out = make("-n", "certify", f"MODEL={cwd / 'model.pt'}", f"CONFIG={cwd / 'config.json'}", cwd=cwd).stdout
        assert f"-m certify run --model {cwd / 'model.pt'} --config {cwd / 'config.json'}" in out
    elif step == "@cluster":
        run_cluster_by_hand(cwd)
    else:
        sh(step, cwd)


def plan() -> list[tuple[str, list[str]]]:
    """Each distinct documented command once, with what runs for it, in document order."""
    seen, out = set(), []
    for _, c in documented_commands():
        if c in seen or c in COVERED:
            continue
        seen.add(c)
        steps = LONG.get(c, [c])
        if steps == ["@cluster"] and any(s == ["@cluster"] for _, s in out):
            continue  # the four lines of the cluster by hand run together once
        out.append((c, steps))
    return out


@pytest.mark.parametrize("command,steps", plan(), ids=[c[:60] for c, _ in plan()])
def test_documented_command_runs(command, steps, scratch):
    if command == "certify prove --model mine --strategy gap" or "--model mine" in command:
        run_variant("certify import model.pt --config config.json --name mine", scratch)
    for step in steps:
        run_variant(step, scratch)
