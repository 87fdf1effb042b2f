"""The paper's configurations: `--k K` alone is the paper's model for K, presets name them."""

import argparse

import pytest

from certify.cli import CliError, config_of, main
from certify.modelio.presets import PAPER_PRESETS, PAPER_TRAINING, preset_config
from certify.modelio.train import TrainParams


def args(**given):
    base = {"k": None, "d_vocab": None, "d_model": None, "d_head": None, "preset": None}
    return argparse.Namespace(**{**base, **given})


@pytest.mark.parametrize("k", [4, 5, 10, 20])
def test_k_alone_is_the_papers_config(k):
    assert config_of(args(k=k)) == PAPER_PRESETS[f"paper-k{k}"] == config_of(args(preset=f"paper-k{k}"))


def test_training_is_the_papers():
    assert TrainParams().to_dict() == PAPER_TRAINING


def test_larger_vocabularies_and_conflicts():
    assert config_of(args(preset="paper-k20-v512")).d_vocab == 512
    assert config_of(args(preset="paper-k10-v128", k=10, d_vocab=128)).d_vocab == 128  # repeating is fine
    with pytest.raises(CliError, match="--d-vocab 64 disagrees with --preset paper-k10-v128"):
        config_of(args(preset="paper-k10-v128", d_vocab=64))
    with pytest.raises(ValueError, match="known: paper-k4"):
        preset_config("paper-k7")


def test_bad_executor_options_are_clear(capsys):
    assert main(["sweep", "--seeds", "1", "--dask", "--scheduler", "tcp://x:1"]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(["sweep", "--seeds", "1", "-j", "2", "--scheduler", "tcp://x:1"]) == 2
    assert "has its own" in capsys.readouterr().err
