"""Command line: `certify <command> ...` (also `python -m certify`).

Every command accepts --json and then prints exactly one JSON object on stdout;
progress and logs go to stderr. Errors exit with status 2 and a message naming the
problem (with --json: an object with "error").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

from .model import Config, ModelError


class CliError(Exception):
    """A user error: bad argument, unknown seed set or strategy."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def common_args() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--k", type=int, default=4, help="sequence length K (n_ctx), default 4")
    p.add_argument("--d-vocab", type=int, default=64, help="vocabulary size, default 64")
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--d-head", type=int, default=32)
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="model cache (default models/)")
    return p


def config_of(args: argparse.Namespace) -> Config:
    return Config(d_vocab=args.d_vocab, n_ctx=args.k, d_model=args.d_model, d_head=args.d_head)


def seed_arg(value: str) -> int:
    try:
        seed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {value!r}") from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {seed}")
    return seed


def cmd_train(args: argparse.Namespace) -> tuple[dict, str]:
    from .store import get_model
    m = get_model(config_of(args), args.seed, args.models_dir, log=log)
    ex = m.meta.get("exhaustive") or {}
    out = {"seed": m.seed, "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "path": str(m.stem),
           "final_loss": m.meta["final_loss"], "sha256": m.meta["sha256"],
           "accuracy": ex.get("accuracy")}
    return out, f"seed {m.seed}: {m.stem}.safetensors (loss {m.meta['final_loss']:.3g}, accuracy {ex.get('accuracy')})"


def cmd_bruteforce(args: argparse.Namespace) -> tuple[dict, str]:
    from .bruteforce import bruteforce
    from .exact import path_tables
    from .store import get_model
    m = get_model(config_of(args), args.seed, args.models_dir, log=log)
    r = bruteforce(path_tables(m.weights))
    out = {"seed": m.seed, "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "correct": r.correct,
           "total": r.total, "accuracy": r.accuracy, "exact_path_inputs": r.exact_path_inputs,
           "seconds": round(r.seconds, 3)}
    text = (f"seed {m.seed}: {r.correct} / {r.total} correct = {r.accuracy:.6f} "
            f"(certified; {r.exact_path_inputs} inputs decided exactly; {r.seconds:.2f} s)")
    return out, text


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], tuple[dict, str]]]] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certify", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = common_args()
    p = sub.add_parser("train", parents=[common], help="train (or load) the model for a seed")
    p.add_argument("--seed", type=seed_arg, required=True)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("bruteforce", parents=[common], help="certified exhaustive accuracy")
    p.add_argument("--seed", type=seed_arg, required=True)
    p.set_defaults(func=cmd_bruteforce)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out, text = args.func(args)
    except (CliError, ModelError, ValueError, OSError) as err:
        msg = str(err) or type(err).__name__
        if getattr(args, "json", False):
            print(json.dumps({"error": msg}))
        log(f"certify: error: {msg}")
        return 2
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print(text)
    return 0 if out.get("ok", True) else 1
