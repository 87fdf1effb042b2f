"""Tasks: finite input sets with exact labels. A new task is one module (PARAMS, build)
and one line in TASKS; `--task module:function` and `--dataset FILE` are user-defined."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from . import (balanced_parens, group_composition, induction, max_of_k, modular_addition, parity,
               sort)
from .base import Param, TaskError, TaskSet

TASKS = {
    "max-of-k": max_of_k,
    "sort": sort,
    "modular-addition": modular_addition,
    "group-composition": group_composition,
    "parity": parity,
    "balanced-parens": balanced_parens,
    "induction": induction,
}


def describe() -> dict:
    return {name: {"conventions": " ".join((m.__doc__ or "").split()),
                   "params": {p: {"type": v.type.__name__, "default": v.default, "help": v.help}
                              for p, v in m.PARAMS.items()}} for name, m in TASKS.items()}


def build_task(name: str, cfg, params: dict) -> TaskSet:
    """A built-in task by name, or `module:function` (returning (tokens, labels[, positions])
    or a dict with those keys)."""
    if name in TASKS:
        mod = TASKS[name]
        unknown = sorted(k for k, v in params.items() if v is not None and k not in mod.PARAMS)
        if unknown:
            raise TaskError(f"task {name} has no parameter(s) {', '.join(unknown)} "
                            f"(it takes: {', '.join(mod.PARAMS) or 'none'})")
        given = {k: v for k, v in params.items() if v is not None and k in mod.PARAMS}
        return mod.build(cfg, **given)
    if ":" in name:
        mod_name, fn_name = name.split(":", 1)
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as err:
            raise TaskError(f"--task {name}: cannot load it ({err})") from None
        out = fn(cfg)
        if isinstance(out, dict):
            return examples(name, {}, out.get("tokens"), out.get("labels"), out.get("positions"))
        return examples(name, {}, *out)
    raise TaskError(f"unknown task {name!r}; built in: {', '.join(TASKS)} (or module:function, or --dataset)")


def examples(name: str, params: dict, tokens, labels, positions=None) -> TaskSet:
    tokens = np.asarray(tokens)
    labels = np.asarray(labels)
    if tokens.ndim != 2 or labels.ndim != 1 or len(labels) != len(tokens):
        raise TaskError(f"{name}: need tokens [N, n_ctx] and labels [N], got {list(tokens.shape)} and "
                        f"{list(labels.shape)}")
    for what, a in (("tokens", tokens), ("labels", labels)):
        if not np.issubdtype(a.dtype, np.integer):
            raise TaskError(f"{name}: {what} must be integers, got {a.dtype}")
    if positions is None:
        positions = np.full(len(labels), tokens.shape[1] - 1)
    positions = np.asarray(positions)
    if positions.shape != labels.shape or not np.issubdtype(positions.dtype, np.integer):
        raise TaskError(f"{name}: positions must be integers [N], got {positions.dtype} {list(positions.shape)}")
    return TaskSet(name, params, tokens, positions, labels)


def read_dataset(path: Path) -> TaskSet:
    """tokens [N, n_ctx], labels [N], optional positions [N] from safetensors or npz."""
    if not path.is_file():
        raise TaskError(f"{path}: dataset file not found")
    if path.suffix == ".safetensors":
        from safetensors.numpy import load
        try:
            data = load(path.read_bytes())
        except Exception as err:  # noqa: BLE001 - any failure is a bad file
            raise TaskError(f"{path}: not a readable safetensors file ({err})") from None
    elif path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except Exception as err:  # noqa: BLE001
            raise TaskError(f"{path}: not a readable npz file ({err})") from None
    else:
        raise TaskError(f"{path}: a dataset must be .safetensors or .npz")
    missing = [k for k in ("tokens", "labels") if k not in data]
    if missing:
        raise TaskError(f"{path}: the dataset has no {', '.join(missing)}")
    return examples(f"dataset:{path.name}", {"file": path.name}, data["tokens"], data["labels"], data.get("positions"))


def check_against_model(task: TaskSet, cfg) -> None:
    """Tokens, positions and labels in the model's range, before any long work."""
    t = task.tokens
    if t.shape[1] > cfg.n_ctx:
        raise TaskError(f"{task.name}: inputs of length {t.shape[1]} exceed the model's n_ctx {cfg.n_ctx}")
    if t.size and (t.min() < 0 or t.max() >= cfg.d_vocab):
        raise TaskError(f"{task.name}: tokens must lie in [0, {cfg.d_vocab}) (d_vocab), found {t.min()}..{t.max()}")
    if task.size and (task.positions.min() < 0 or task.positions.max() >= t.shape[1]):
        raise TaskError(f"{task.name}: readout positions must lie in [0, {t.shape[1]})")
    if task.size and (task.labels.min() < 0 or task.labels.max() >= cfg.d_vocab_out):
        raise TaskError(f"{task.name}: labels must lie in [0, {cfg.d_vocab_out}) (d_vocab_out)")


__all__ = ["TASKS", "Param", "TaskError", "TaskSet", "build_task", "check_against_model", "describe",
           "examples", "read_dataset"]
