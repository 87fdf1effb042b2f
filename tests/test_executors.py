"""The job driver and the model hand-over, without a cluster: retry once, report, never
let a worker's model replace other weights in the client's store."""

import json

import pytest

from certify.experiments.executors import drive
from certify.experiments.sweep import JobOutput, SweepJob
from certify.modelio.config import ModelError
from certify.modelio.model import Config
from certify.modelio.store import model_stem
from certify.modelio.transfer import adopt_entry, read_entry
from certify.modelio.weights import save_model
from helpers import random_model

CFG = Config(5, 3, 4, 4)


def job(seed):
    return SweepJob(seed, ("cubic",), CFG.d_vocab, CFG.n_ctx, CFG.d_model, CFG.d_head, "", False)


class Scripted:
    """An executor whose jobs succeed or raise as scripted, attempt by attempt."""

    def __init__(self, script):
        self.script, self.queue, self.runs = script, [], []

    def submit(self, j):
        self.queue.append(j)

    def next_done(self):
        j = self.queue.pop(0)
        self.runs.append(j.seed)
        outcome = self.script[j.seed].pop(0)
        return j, outcome if isinstance(outcome, BaseException) else JobOutput([{"seed": j.seed}])


def test_drive_retries_once_then_reports(tmp_path):
    ex = Scripted({1: ["ok"], 2: [RuntimeError("flaky"), "ok"], 3: [RuntimeError("a"), RuntimeError("b")]})
    got = []
    failures = drive(ex, [job(1), job(2), job(3)], lambda j, o: got.append(j.seed),
                     failures_path=tmp_path / "f.jsonl")
    assert sorted(got) == [1, 2] and sorted(ex.runs) == [1, 2, 2, 3, 3]
    assert [(f.seed, f.attempts, f.error) for f in failures] == [(3, 2, "RuntimeError: b")]
    log = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [(e["seed"], e["attempt"], e["final"]) for e in log] == [(2, 1, False), (3, 1, False), (3, 2, True)]


def test_a_refusal_by_the_client_is_reported_without_a_retry(tmp_path):
    ex = Scripted({1: ["ok", "ok"]})

    def refuse(j, o):
        raise ValueError("already holds a certificate for other weights")

    failures = drive(ex, [job(1)], refuse, failures_path=tmp_path / "f.jsonl")
    assert ex.runs == [1] and [(f.seed, f.attempts) for f in failures] == [(1, 1)]


def entry(tmp_path, seed, weights_seed):
    stem = tmp_path / f"src{weights_seed}" / "m"
    save_model(stem, CFG, random_model(CFG, weights_seed), {"seed": seed})
    return read_entry(stem)


def test_adopting_a_trained_model(tmp_path):
    store = tmp_path / "store"
    adopt_entry(store, CFG, 7, entry(tmp_path, 7, 0))
    adopt_entry(store, CFG, 7, entry(tmp_path, 7, 0))  # the same weights again: a no-op
    assert read_entry(model_stem(store, CFG, 7)) == entry(tmp_path, 7, 0)
    with pytest.raises(ModelError, match="refusing to replace"):
        adopt_entry(store, CFG, 7, entry(tmp_path, 7, 1))
    with pytest.raises(ModelError, match="not .* seed 8"):
        adopt_entry(store, CFG, 8, entry(tmp_path, 7, 0))
    files = entry(tmp_path, 9, 0)
    files[".safetensors"] = files[".safetensors"][:-1] + bytes([files[".safetensors"][-1] ^ 1])
    with pytest.raises(ModelError, match="sha256"):
        adopt_entry(store, CFG, 9, files)
    assert read_entry(model_stem(store, CFG, 9)) is None  # nothing half-stored


def test_a_write_error_of_one_seed_is_its_failure(tmp_path):
    """Not only ValueError: an OSError writing one seed's outputs (a directory in the
    way, a full disk, no permission) is that seed's recorded failure; the others go on."""
    ex = Scripted({1: ["ok"], 2: ["ok"], 3: ["ok"]})
    got = []

    def write(j, o):
        if j.seed == 2:
            raise IsADirectoryError(21, "Is a directory", "lean/Seed2.lean")
        got.append(j.seed)

    failures = drive(ex, [job(1), job(2), job(3)], write, failures_path=tmp_path / "f.jsonl")
    assert got == [1, 3] and [(f.seed, f.attempts) for f in failures] == [(2, 1)]
    assert "Is a directory" in failures[0].error
    log = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [(e["seed"], e["final"]) for e in log] == [(2, True)]


def test_a_worker_on_other_code_or_unpinned_torch_is_named_unusable():
    from certify.experiments.executors import worker_problem
    from certify.modelio.pins import CPU_PINS
    good = {"digest": "a" * 64, "host": "h", "pid": 1, "torch_capability": None, "mkl_cbwr": None}
    assert worker_problem(good, "a" * 64, CPU_PINS) is None
    assert "other certify code" in worker_problem({**good, "digest": "b" * 64}, "a" * 64, CPU_PINS)
    unpinned = {**good, "torch_capability": "AVX512", "mkl_cbwr": None}
    assert "AVX512" in worker_problem(unpinned, "a" * 64, CPU_PINS)
    pinned = {**good, "torch_capability": "DEFAULT", "mkl_cbwr": "COMPATIBLE"}
    assert worker_problem(pinned, "a" * 64, CPU_PINS) is None
    assert "cannot run certify" in worker_problem(ModuleNotFoundError("certify"), "a" * 64, CPU_PINS)


def test_a_model_trained_without_the_pins_is_named():
    from certify.modelio.pins import CPU_PINS, sidecar_mismatch
    pinned = {"trained_with": {"cpu_capability": "DEFAULT", "mkl_cbwr": "COMPATIBLE"}}
    assert sidecar_mismatch(pinned, CPU_PINS) is None
    why = sidecar_mismatch({"trained_with": {"cpu_capability": "AVX512", "mkl_cbwr": None}}, CPU_PINS)
    assert "AVX512" in why and "MKL_CBWR unset" in why
    assert sidecar_mismatch({}, CPU_PINS) is not None
    assert sidecar_mismatch({}, {}) is None  # CERTIFY_CPU_PINS=off: nothing is asked


def test_the_source_digest_changes_with_the_code(tmp_path):
    from certify.provenance import source_digest
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.py").write_text("cached\n")
    before = source_digest(tmp_path)
    (tmp_path / "__pycache__" / "a.py").write_text("other cache\n")
    assert source_digest(tmp_path) == before
    (tmp_path / "a.py").write_text("x = 2\n")
    assert source_digest(tmp_path) != before
