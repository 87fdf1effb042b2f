"""Long steps show a bar on stderr (the CLI asks for it); stdout stays one JSON object."""

import json

import pytest

from certify import cli, progress

SMALL = ["--k", "3", "--d-vocab", "6", "--d-model", "8", "--d-head", "8"]


def test_steps_writes_to_stderr_only_when_enabled(capsys):
    assert list(progress.steps(range(3), "quiet", False)) == [0, 1, 2]
    assert capsys.readouterr() == ("", "")
    assert list(progress.steps(range(3), "counting", True, delay=0)) == [0, 1, 2]
    out, err = capsys.readouterr()
    assert out == "" and "counting" in err


@pytest.fixture
def recorded(monkeypatch):
    """The descriptions of the bars the commands asked for."""
    seen = []
    real = progress.steps

    def spy(iterable, desc, enabled, *a, **k):
        if enabled:
            seen.append(desc)
        return real(iterable, desc, False)
    monkeypatch.setattr(progress, "steps", spy)
    return seen


@pytest.mark.parametrize("args,bars", [
    (["prove", "--seed", "3", *SMALL, "--metric", "loss"], {"loss proofs", "exact mean loss"}),
    (["prove", "--seed", "3", *SMALL], {"proofs"}),
    (["prove", "--arch", "sum-linear", "--seed", "1", "--k", "2", "--d-vocab", "8", "--d-model", "8",
      "--metric", "accuracy", "--strategy", "bruteforce"], {"sum-linear brute force", "train sum-linear seed 1, epoch 1/2"}),
    (["prove", "--arch", "sum-linear", "--seed", "1", "--k", "2", "--d-vocab", "8", "--d-model", "8",
      "--metric", "loss", "--strategy", "bruteforce"], {"sum-linear exact mean loss"}),
])
def test_long_commands_ask_for_progress_and_json_stays_clean(args, bars, recorded, tmp_path, capsys):
    rc = cli.main([*args, "--models-dir", str(tmp_path), "--json"])
    out, _ = capsys.readouterr()
    assert rc == 0 and isinstance(json.loads(out), dict)
    assert bars <= set(recorded), recorded


def test_training_a_seed_asks_for_progress(recorded, tmp_path, capsys, monkeypatch):
    from certify.modelio import train as train_mod
    calls = []
    real = train_mod.train
    monkeypatch.setattr("certify.modelio.store.train", lambda *a, **k: calls.append(k) or real(*a, **k))
    assert cli.main(["bruteforce", "--seed", "4", *SMALL, "--models-dir", str(tmp_path), "--json"]) == 0
    assert calls and calls[0].get("progress") is True and "exhaustive count" in recorded
