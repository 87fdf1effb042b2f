"""The model cache: train once per (config, seed), then load from `models/`."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .bruteforce import BruteForceResult, bruteforce
from .exact import path_tables
from .model import Config, Weights
from .train import TrainParams, train
from .weights import load_model, save_model

BRUTEFORCE_LIMIT = 1 << 26  # exhaustive accuracy only where d_vocab^K is at most this


@dataclass(frozen=True)
class StoredModel:
    cfg: Config
    seed: int
    weights: Weights
    meta: dict
    stem: Path


def model_stem(models_dir: Path, cfg: Config, seed: int) -> Path:
    name = f"maxk-v{cfg.d_vocab}-k{cfg.n_ctx}-dm{cfg.d_model}-dh{cfg.d_head}"
    return models_dir / name / f"seed{seed}"


def bruteforce_meta(result: BruteForceResult) -> dict:
    return {"correct": result.correct, "total": result.total, "accuracy": result.accuracy,
            "exact_path_inputs": result.exact_path_inputs}


def get_model(cfg: Config, seed: int, models_dir: Path, params: TrainParams = TrainParams(),
              log=lambda msg: print(msg, file=sys.stderr)) -> StoredModel:
    """Load the cached model or train it (and record its exhaustive accuracy)."""
    stem = model_stem(models_dir, cfg, seed)
    if stem.with_suffix(".json").exists() and stem.with_suffix(".safetensors").exists():
        loaded_cfg, weights, meta = load_model(stem)
        if loaded_cfg != cfg or meta.get("seed") != seed:
            from .model import ModelError
            raise ModelError(f"{stem}: cached model does not match config {cfg} / seed {seed}")
        return StoredModel(cfg, seed, weights, meta, stem)
    log(f"training seed {seed} ({cfg.d_vocab=}, K={cfg.n_ctx}, {params.steps} steps)...")
    weights, loss = train(cfg, seed, params)
    meta = {"seed": seed, "training": params.to_dict(), "final_loss": loss, "exhaustive": None}
    if cfg.d_vocab ** cfg.n_ctx <= BRUTEFORCE_LIMIT:
        meta["exhaustive"] = bruteforce_meta(bruteforce(path_tables(weights)))
    save_model(stem, cfg, weights, meta)
    return StoredModel(cfg, seed, weights, load_model(stem)[2], stem)
