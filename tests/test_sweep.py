"""Sweep -> report on a small config: rows, resume after interruption, plot files."""

import csv
import json

import pytest
import torch

from certify.experiments.estimate import estimate_accuracy, sample_with_max
from certify.modelio.model import Config
from certify.experiments.report import pareto, report
from certify.experiments.sweep import done_pairs, sweep
from helpers import forward_count, random_model

SMALL = dict(d_vocab=6, k=3, d_model=8, d_head=8)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    out = root / "results.csv"
    info = sweep([1, 2], ["bruteforce", "cubic", "subcubic"], out, models_dir=root / "models",
                 lean_dir=root / "lean", progress=False, **SMALL)
    return root, out, info


def test_sweep_writes_one_row_per_seed_and_strategy(swept):
    root, out, info = swept
    rows = list(csv.DictReader(out.open()))
    assert info["rows_written"] == 6 and len(rows) == 6
    assert {(r["seed"], r["strategy"]) for r in rows} == {(s, n) for s in ("1", "2")
                                                          for n in ("bruteforce", "cubic", "gap")}
    jl = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert len(jl) == 6 and all(r["accuracy_kind"] == "exhaustive" for r in jl)
    for r in rows:
        assert int(r["count"]) <= int(r["total"])
    sub = [r for r in rows if r["strategy"] == "gap"]  # `subcubic` is its old name (an alias)
    assert all(r["certificate"].endswith(".lean") for r in sub)


def test_rerun_skips_finished_rows(swept):
    root, out, _ = swept
    info = sweep([1, 2], ["bruteforce", "cubic", "subcubic"], out, models_dir=root / "models",
                 lean_dir=None, progress=False, **SMALL)
    assert info["rows_written"] == 0 and info["rows_skipped"] == 6


def test_resume_after_interruption(tmp_path, swept):
    root, out, _ = swept
    torn = tmp_path / "r.csv"
    lines = out.read_text().splitlines(keepends=True)
    torn.write_text("".join(lines[:4]) + lines[4][:10])  # killed while writing the 4th row
    assert len(done_pairs(torn)) == 3  # the torn row is dropped, finished rows are kept
    info = sweep([1, 2], ["bruteforce", "cubic", "subcubic"], torn, models_dir=root / "models",
                 lean_dir=None, progress=False, **SMALL)
    assert info["rows_written"] == 3
    assert len(list(csv.DictReader(torn.open()))) == 6


def test_report_produces_plot_and_table(swept, tmp_path):
    _, out, _ = swept
    info = report(out, tmp_path / "rep")
    for key in ("png", "svg", "markdown"):
        assert (tmp_path / "rep" / info[key].split("/")[-1]).stat().st_size > 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| cubic |" in md and "0.9539" in md


def test_pareto_frontier():
    pts = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.9), (3.0, 0.8), (10.0, 1.0)]
    assert pareto(pts) == [0, 2, 4]


def test_stratified_estimate_is_close_to_exhaustive():
    cfg = Config(6, 3, 8, 8)
    w = random_model(cfg, 1, scale=2.0)
    truth = forward_count(w, cfg) / 6 ** 3
    est = estimate_accuracy(w, cfg, per_stratum=3000)
    assert est.ci_low - 0.02 <= truth <= est.ci_high + 0.02


def test_samples_have_the_requested_max():
    toks = sample_with_max(Config(10, 5, 4, 4), 7, 500, torch.Generator().manual_seed(0))
    assert bool((toks.max(dim=1).values == 7).all())


def test_reconcile_makes_csv_and_jsonl_agree(tmp_path):
    """JSON lines are the record: rows only they hold are copied into the CSV, rows only
    the CSV holds are dropped (recomputed), torn lines and duplicates go."""
    from certify.experiments.sweep import COLUMNS, append_rows, reconcile_results
    out, jsonl = tmp_path / "r.csv", tmp_path / "r.jsonl"
    rows = [{"seed": s, "strategy": n, "count": 3, "bound": 0.5, "accuracy": None}
            for s in (1, 2) for n in ("cubic", "gap")]
    append_rows(out, jsonl, rows[:2])
    with jsonl.open("a") as f:  # killed between seed 2's JSON lines and its CSV rows
        f.writelines(json.dumps({k: r.get(k) for k in COLUMNS}, sort_keys=True) + "\n" for r in rows[2:])
    with out.open("a") as f:
        f.write("3,3,6,cubic,1,2,0.5")  # a torn CSV line of a row the record never had
    assert reconcile_results(out, jsonl) == {(1, "cubic"), (1, "gap"), (2, "cubic"), (2, "gap")}
    csv_rows = list(csv.DictReader(out.open()))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(r["seed"], r["strategy"]) for r in csv_rows] == [(str(r["seed"]), r["strategy"]) for r in records]
    assert [r["bound"] for r in csv_rows] == ["0.5"] * 4 and csv_rows[0]["accuracy"] == ""
    with out.open("a") as f:  # a CSV row the record lacks (the old write order crashed there)
        f.write("5," + ",".join([""] * (len(COLUMNS) - 1)) + "\n")
    assert (5, "") not in reconcile_results(out, jsonl) and len(list(csv.DictReader(out.open()))) == 4


def test_a_second_sweep_on_one_output_is_refused(tmp_path):
    import os
    import socket
    from certify.experiments.outlock import OutputLocked, output_lock
    out = tmp_path / "r.csv"
    with output_lock(out):
        with pytest.raises(OutputLocked, match=f"pid {os.getpid()} on host {socket.gethostname()}"):
            with output_lock(out):
                pass
    assert not (tmp_path / "r.lock").exists()
    with output_lock(out):  # free again
        pass


@pytest.mark.parametrize("seed", [str(2**64), "-1", str(2**70)])
def test_seeds_outside_torchs_range_are_refused_up_front(seed, capsys):
    from certify.cli import main
    from certify.modelio.seeds import parse_seeds
    with pytest.raises(ValueError, match="seed"):
        parse_seeds(f"1,{seed}")
    assert main(["sweep", "--seeds", f"1,{seed}", "--out", "unused.csv"]) == 2
    with pytest.raises(SystemExit):
        main(["train", "--seed", seed])
    assert "2^64 - 1" in capsys.readouterr().err


def test_the_largest_seed_is_accepted():
    from certify.modelio.seeds import MAX_SEED, parse_seeds
    assert parse_seeds(str(MAX_SEED)) == [2**64 - 1]
    import torch
    torch.Generator().manual_seed(MAX_SEED)  # torch takes it
