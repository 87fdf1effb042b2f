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

from .config import Config, ModelError


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
    from .bruteforce import bruteforce, check_exhaustive_in_reach
    from .exact import path_tables
    from .store import get_model
    cfg = config_of(args)
    check_exhaustive_in_reach(cfg.d_vocab, cfg.n_ctx)
    m = get_model(cfg, args.seed, args.models_dir, log=log)
    r = bruteforce(path_tables(m.weights))
    out = {"seed": m.seed, "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "correct": r.correct,
           "total": r.total, "accuracy": r.accuracy, "exact_path_inputs": r.exact_path_inputs,
           "seconds": round(r.seconds, 3)}
    text = (f"seed {m.seed}: {r.correct} / {r.total} correct = {r.accuracy:.6f} "
            f"(certified; {r.exact_path_inputs} inputs decided exactly; {r.seconds:.2f} s)")
    return out, text


def load_for_proof(args: argparse.Namespace):
    from .store import get_model
    m = get_model(config_of(args), args.seed, args.models_dir, log=log)
    accuracy = (m.meta.get("exhaustive") or {}).get("accuracy")
    return m, accuracy


def cmd_strategies(args: argparse.Namespace) -> tuple[dict, str]:
    from .emit import EMITTABLE
    from .strategies import strategy_names
    names = strategy_names()
    return ({"strategies": names, "emittable": list(EMITTABLE)},
            "\n".join(f"{n}{'  (Lean certificate)' if n in EMITTABLE else ''}" for n in names))


def result_line(r) -> str:
    ratio = f"{r.ratio:.4f}" if r.ratio is not None else "-"
    return (f"{r.strategy:<11} {r.count:>10} / {r.total:<10} bound {r.bound:.6f}  ratio {ratio}  "
            f"flops {r.flops:.3g}  checker ops {r.checker_ops:.3g}  {r.seconds:.2f} s "
            f"(+{r.search_seconds:.2f} s search)")


def cmd_prove(args: argparse.Namespace) -> tuple[dict, str]:
    from .strategies import in_reach, prove_many, resolve
    names = resolve(args.strategy)
    if args.strategy == "all":
        names = in_reach(names, config_of(args))
    m, accuracy = load_for_proof(args)
    results = prove_many(m.cfg, m.weights, names, accuracy)
    rows = [{"seed": m.seed, "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, **r.to_dict()} for r in results]
    text = "\n".join(result_line(r) for r in results)
    if args.strategy == "all" or len(rows) > 1:
        return {"seed": m.seed, "results": rows}, text
    return rows[0], text


def do_emit(m, strategy: str, lean_dir: Path):
    from .emit import EMITTABLE, CertificateFile, emit
    from .strategies import prove
    if strategy not in EMITTABLE:
        raise CliError(f"strategy {strategy!r} has no Lean checker; certificates are emitted for: "
                       f"{', '.join(EMITTABLE)}")
    r = prove(m.cfg, m.weights, strategy)
    cf = CertificateFile(r.witness, r.count, m.seed, m.meta["sha256"], strategy)
    return emit(cf, r.checker_ops, lean_dir)


def cmd_emit(args: argparse.Namespace) -> tuple[dict, str]:
    m, _ = load_for_proof(args)
    e = do_emit(m, args.strategy, args.lean_dir)
    out = {"lean_path": str(e.lean_path), "summary_path": str(e.summary_path), "strategy": args.strategy,
           "count": e.count, "total": e.total, "checker_ops": e.checker_ops, "seed": m.seed}
    return out, f"wrote {e.lean_path} and {e.summary_path} ({e.count} / {e.total}, {e.checker_ops} checker ops)"


def cmd_check(args: argparse.Namespace) -> tuple[dict, str]:
    from .emit import check_certificate_text
    path = Path(args.path)
    if not path.is_file():
        raise CliError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a UTF-8 text file") from None
    r = check_certificate_text(text)
    out = {"ok": r.ok, "count": r.count, "claimed": r.claimed, "total": r.total, "reason": r.reason,
           "checker_ops": r.checker_ops, "path": str(path)}
    text_out = (f"OK: {path} proves {r.claimed} / {r.total} correct (the proof supports {r.count})" if r.ok
                else f"REJECTED: {path}: {r.reason}")
    return out, text_out


def lake_build(lean_dir: Path, required: bool) -> dict:
    """Run `lake build` when lake is on PATH; say clearly when it is not."""
    import shutil
    import subprocess
    lake = shutil.which("lake")
    if lake is None:
        msg = ("lake not found on PATH: the Lean re-check was skipped (install elan from "
               "https://github.com/leanprover/elan, then run `lake build` in lean/); "
               "the Python mirror of the checker accepted the certificate")
        if required:
            raise CliError("LEAN=required but " + msg.split(":")[0])
        log(msg)
        return {"lean": "skipped", "lean_message": msg}
    log(f"running lake build in {lean_dir} ...")
    t0 = time.perf_counter()
    proc = subprocess.run([lake, "build"], cwd=lean_dir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        log(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise CliError(f"lake build failed (exit {proc.returncode}); see the output above")
    return {"lean": "checked", "lean_seconds": round(seconds, 1)}


def cmd_run(args: argparse.Namespace) -> tuple[dict, str]:
    """train/load, exhaustive accuracy, every proof, emit, re-check (Python mirror, then lake)."""
    from .emit import EMITTABLE, check_certificate_text
    from .strategies import in_reach, prove_many, strategy_names
    if args.strategy not in EMITTABLE:  # say so before minutes of work, not after
        raise CliError(f"strategy {args.strategy!r} has no Lean checker; certificates are emitted for: "
                       f"{', '.join(EMITTABLE)}")
    m, accuracy = load_for_proof(args)
    results = prove_many(m.cfg, m.weights, in_reach(strategy_names(), m.cfg), accuracy)
    e = do_emit(m, args.strategy, args.lean_dir)
    rep = check_certificate_text(e.lean_path.read_text(encoding="utf-8"))
    if not rep.ok:
        raise CliError(f"the emitted certificate does not check: {rep.reason}")
    lean = lake_build(args.lean_dir, args.lean == "required")
    out = {"seed": m.seed, "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "accuracy": accuracy,
           "results": [r.to_dict() for r in results], "lean_path": str(e.lean_path),
           "summary_path": str(e.summary_path), "python_check": rep.ok, **lean}
    lines = [f"seed {m.seed}, K={m.cfg.n_ctx}, d_vocab={m.cfg.d_vocab}: exhaustive accuracy {accuracy}",
             *(result_line(r) for r in results),
             f"certificate ({args.strategy}): {e.lean_path}  claims {e.count} / {e.total}",
             f"Python mirror check: {'OK' if rep.ok else 'REJECTED'}; Lean: {lean['lean']}"]
    return out, "\n".join(lines)


def cmd_sweep(args: argparse.Namespace) -> tuple[dict, str]:
    from .seeds import parse_seeds
    from .strategies import resolve
    from .sweep import sweep
    seeds = parse_seeds(args.seeds)
    strategies = resolve(args.strategies)
    if args.jobs < 1:
        raise CliError("-j must be at least 1")
    out = sweep(seeds, strategies, args.out, d_vocab=args.d_vocab, k=args.k, d_model=args.d_model,
                d_head=args.d_head, models_dir=args.models_dir,
                lean_dir=None if args.no_emit else args.lean_dir, jobs=args.jobs, progress=not args.json)
    return out, (f"{out['rows_written']} rows written ({out['rows_skipped']} already there) to {out['csv']} "
                 f"and {out['jsonl']} in {out['seconds']} s")


def cmd_report(args: argparse.Namespace) -> tuple[dict, str]:
    from .report import report
    out = report(Path(args.results), args.out)
    return out, f"wrote {out['png']}, {out['svg']} and {out['markdown']} ({out['rows']} rows)"


def default_lean_dir() -> Path:
    from .emit import LEAN_DIR
    return LEAN_DIR


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
    p = sub.add_parser("strategies", parents=[common], help="list the proof strategies")
    p.set_defaults(func=cmd_strategies)
    p = sub.add_parser("prove", parents=[common], help="run a proof strategy (or all)")
    p.add_argument("--seed", type=seed_arg, required=True)
    p.add_argument("--strategy", default="all", help="a strategy name, a comma list, or 'all'")
    p.set_defaults(func=cmd_prove)
    p = sub.add_parser("emit", parents=[common], help="write the Lean certificate for a seed")
    p.add_argument("--seed", type=seed_arg, required=True)
    p.add_argument("--strategy", default="subcubic")
    p.add_argument("--lean-dir", type=Path, default=default_lean_dir(), help="the Lake project (default lean/)")
    p.set_defaults(func=cmd_emit)
    p = sub.add_parser("check", parents=[common], help="re-check a .lean certificate (no torch needed)")
    p.add_argument("path")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("run", parents=[common], help="everything for one seed (what `make certify` runs)")
    p.add_argument("--seed", type=seed_arg, required=True)
    p.add_argument("--strategy", default="subcubic", help="the strategy whose certificate is emitted")
    p.add_argument("--lean", choices=["optional", "required"], default="optional",
                   help="'required' makes a missing lake an error")
    p.add_argument("--lean-dir", type=Path, default=default_lean_dir(), help="the Lake project (default lean/)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("sweep", parents=[common], help="seeds x strategies into a results file (resumable)")
    p.add_argument("--seeds", default="paper151", help="'paper151' or a comma list")
    p.add_argument("--strategies", default="all", help="'all' or a comma list")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--out", type=Path, default=Path("results/results.csv"))
    p.add_argument("--lean-dir", type=Path, default=Path("results/lean"),
                   help="where certificates are emitted (default results/lean)")
    p.add_argument("--no-emit", action="store_true", help="do not emit certificates")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("report", parents=[common], help="Pareto plot and Markdown table of a sweep")
    p.add_argument("results")
    p.add_argument("--out", type=Path, default=Path("results/report"))
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out, text = args.func(args)
    except (CliError, ModelError, ValueError, OSError, ArithmeticError, RuntimeError) as err:
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
