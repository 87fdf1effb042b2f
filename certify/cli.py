"""Command line: `certify <command> ...` (also `python -m certify`).

Every command accepts --json and then prints exactly one JSON object on stdout;
progress and logs go to stderr. Errors exit with status 2 and a message naming the
problem (with --json: an object with "error").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .general_cli import (add_task_args, applicable_strategies, check_certificate, cmd_general, cmd_tasks,
                          general_requested)
from .modelio.config import Config, ModelError
from .modelio.pins import CPU_PINS, pin_cpu_code_paths  # noqa: F401 - set before torch loads
from .modelio.seeds import MAX_SEED
from .modelio.files import check_models_dir, model_ref_is_path, require_file


class CliError(Exception):
    """A user error: bad argument, unknown seed set or strategy."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def json_args() -> argparse.ArgumentParser:
    """What every command takes (check, strategies and report take nothing else)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


def common_args() -> argparse.ArgumentParser:
    """--json and the options of commands that train, load or store models."""
    p = argparse.ArgumentParser(add_help=False, parents=[json_args()])
    p.add_argument("--k", type=int, default=None, help="sequence length K (n_ctx), default 4")
    p.add_argument("--d-vocab", type=int, default=None, help="vocabulary size, default 64")
    p.add_argument("--d-model", type=int, default=None, help="default 32")
    p.add_argument("--d-head", type=int, default=None, help="default 32")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="model store (default models/)")
    p.add_argument("--preset", default=None,
                   help="a configuration of the paper by name: paper-k4, paper-k5, paper-k10, paper-k10-v128, "
                        "paper-k20, paper-k20-v512 (size options may only repeat its values)")
    return p


SIZE_OPTIONS = {"k": ("n_ctx", 4), "d_vocab": ("d_vocab", 64), "d_model": ("d_model", 32), "d_head": ("d_head", 32)}


def config_of(args: argparse.Namespace) -> Config:
    """The seed model's config from --k/--d-vocab/--d-model/--d-head (or the defaults),
    or from --preset (then a size option that disagrees with it is an error)."""
    if getattr(args, "preset", None) is not None:
        from .modelio.presets import preset_config
        cfg = preset_config(args.preset)
        for opt, (field, _) in SIZE_OPTIONS.items():
            given = getattr(args, opt)
            if given is not None and given != getattr(cfg, field):
                raise CliError(f"--{opt.replace('_', '-')} {given} disagrees with --preset {args.preset} "
                               f"({field} = {getattr(cfg, field)})")
        return cfg
    return Config(**{field: getattr(args, opt) if getattr(args, opt) is not None else default
                     for opt, (field, default) in SIZE_OPTIONS.items()})


def model_source_args(p: argparse.ArgumentParser) -> None:
    """--seed N | --model REF (exactly one), and how a model file's architecture is known."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--seed", type=seed_arg, help="a seed model (trained, or loaded from the store)")
    g.add_argument("--model", help="your model: a checkpoint file, or the id or name of an imported model")
    p.add_argument("--config", type=Path, help="the model's TransformerLens config as JSON (with --model FILE)")
    p.add_argument("--assume-architecture", action="store_true",
                   help="no config: state that the model is the plain 1-layer attention-only architecture "
                        "(recorded in the results and the certificate)")


def seed_arg(value: str) -> int:
    try:
        seed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {value!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be an integer from 0 to 2^64 - 1 (torch's seed range), got {seed}")
    return seed


def cmd_train(args: argparse.Namespace) -> tuple[dict, str]:
    from .modelio.store import get_model, retrain_against_shipped, shipped_model
    cfg = config_of(args)
    if shipped_model(cfg, args.seed) is not None:
        r = retrain_against_shipped(cfg, args.seed, log=log)
        verdict = ("bit-identical to the shipped model" if r["identical"] else
                   f"DIFFERENT from the shipped model (local {r['local_sha256'][:12]}, shipped "
                   f"{r['shipped_sha256'][:12]}): this machine takes other CPU code paths; every command "
                   "uses the shipped model")
        return ({"seed": args.seed, "k": cfg.n_ctx, "d_vocab": cfg.d_vocab, "shipped": True, **r},
                f"seed {args.seed}: trained here, {verdict}")
    m = get_model(cfg, args.seed, args.models_dir, log=log, progress=True)
    loss = m.meta.get("final_loss")  # absent for a model that was not trained here
    out = {"seed": m.seed, "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "path": str(m.stem), "shipped": False,
           "final_loss": loss, "sha256": m.sha256, "accuracy": m.accuracy}
    loss_text = f"loss {loss:.3g}" if loss is not None else "not trained here: no training loss"
    return out, f"seed {m.seed}: {m.stem}.safetensors ({loss_text}, accuracy {m.accuracy})"


def load_model_arg(args: argparse.Namespace):
    """The model of --seed or --model (a StoredModel); sizes given with --model must agree."""
    from .modelio.store import get_model, user_model
    if args.model is None:
        if args.config is not None or args.assume_architecture:
            raise CliError("--config and --assume-architecture apply to --model, not to --seed")
        return get_model(config_of(args), args.seed, args.models_dir, log=log, progress=True)
    m = user_model(args.model, args.models_dir, args.config, args.assume_architecture, log=log)
    for opt, (field, _) in SIZE_OPTIONS.items():
        given = getattr(args, opt)
        if given is not None and given != getattr(m.cfg, field):
            raise CliError(f"--{opt.replace('_', '-')} {given} disagrees with the model ({field} = "
                           f"{getattr(m.cfg, field)}); the model's own sizes are used, omit the option")
    for note in m.assumptions:
        log(f"note: {note}")
    return m


def cmd_bruteforce(args: argparse.Namespace) -> tuple[dict, str]:
    if general_requested(args):
        return cmd_general(args, "bruteforce")
    from .proofs.bruteforce import bruteforce, check_exhaustive_in_reach
    from .proofs.exact import path_tables
    if args.model is None:
        check_exhaustive_in_reach(config_of(args).d_vocab, config_of(args).n_ctx)
    m = load_model_arg(args)
    check_exhaustive_in_reach(m.cfg.d_vocab, m.cfg.n_ctx)
    r = bruteforce(path_tables(m.weights), progress=True)
    out = {**m.identity(), "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "correct": r.correct,
           "total": r.total, "accuracy": r.accuracy, "exact_path_inputs": r.exact_path_inputs,
           "seconds": round(r.seconds, 3)}
    text = (f"{m.label}: {r.correct} / {r.total} correct = {r.accuracy:.6f} "
            f"(certified; {r.exact_path_inputs} inputs decided exactly; {r.seconds:.2f} s)")
    return out, text


def cmd_strategies(args: argparse.Namespace) -> tuple[dict, str]:
    if getattr(args, "model", None):
        return applicable_strategies(args.model, args.config)
    from .lean.emit import EMITTABLE
    from .proofs.strategies import aliases, strategy_names
    names, old = strategy_names(), aliases()
    return ({"strategies": names, "emittable": list(EMITTABLE), "aliases": old},
            "\n".join(f"{n}{'  (Lean certificate)' if n in EMITTABLE else ''}" for n in names)
            + "\naliases (old names, accepted for one release):\n"
            + "\n".join(f"  {a} -> {n}" for a, n in old.items()))


def cmd_prove_faithful(args: argparse.Namespace) -> tuple[dict, str]:
    """--paper-faithful: the paper's own computation (and ours, sound) for its variants."""
    from .experiments.paper_faithful import faithful_line, faithful_rows, resolve_faithful
    names = resolve_faithful(args.strategy)
    m = load_model_arg(args)
    rows = [{**m.identity(), "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, **r}
            for r in faithful_rows(m.cfg, m.weights, names, progress=not args.json)]
    text = "\n".join(faithful_line(r) for r in rows)
    if len(rows) > 1:
        return {**m.identity(), "faithful": True, "results": rows, "ok": True}, text
    return {**rows[0], "ok": True}, text


def cmd_prove(args: argparse.Namespace) -> tuple[dict, str]:
    if general_requested(args):
        return cmd_general(args, "prove")
    if getattr(args, "paper_faithful", False):
        if args.metric != "accuracy" or args.arch != "maxk-attention":
            raise CliError("--paper-faithful replicates the paper's accuracy proofs of the Max-of-K attention model")
        return cmd_prove_faithful(args)
    if getattr(args, "arch", "maxk-attention") == "sum-linear":
        return cmd_prove_sum_linear(args)
    if getattr(args, "metric", "accuracy") == "loss":
        return cmd_prove_loss(args)
    from .proofs.strategies import in_reach, prove_many, resolve
    names = resolve(args.strategy)
    m = load_model_arg(args)
    if args.strategy == "all":
        names = in_reach(names, m.cfg)
    results = prove_many(m.cfg, m.weights, names, m.accuracy, on_error="record", progress=True)
    rows = [{**m.identity(), "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, **r.to_dict()} for r in results]
    from .lean.emit import EMITTABLE
    from .summary import proof_table
    text = "\n".join(proof_table(results, EMITTABLE, show_all=args.all or args.strategy != "all"))
    failed = [r.strategy for r in results if r.error]
    if args.strategy == "all" or len(rows) > 1:
        return {**m.identity(), "results": rows, "ok": not failed, "failed": failed}, text
    return {**rows[0], "ok": not failed}, text


def loss_line(r) -> str:
    if r.error:
        return f"{r.strategy:<15} FAILED: {r.error}"
    ratio = f"{r.ratio:.4f}" if r.ratio is not None else "-"
    exact = f"  (exact mean in [{float(r.exact.lo):.10g}, {float(r.exact.hi):.10g}])" if r.lower is not None else ""
    return f"{r.strategy:<15} loss <= {r.bound:.10g}  ratio {ratio}  flops {r.flops:.3g}  {r.seconds:.2f} s{exact}"


def cmd_prove_loss(args: argparse.Namespace) -> tuple[dict, str]:
    """--metric loss for the Max-of-K attention model: upper bounds on the mean cross-entropy."""
    from .proofs.loss_maxk import prove_loss_many, resolve_loss
    names = resolve_loss(args.strategy)
    m = load_model_arg(args)
    results = prove_loss_many(m.cfg, m.weights, names, on_error="record", progress=True)
    rows = [{**m.identity(), "arch": "maxk-attention", "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, **r.to_dict()}
            for r in results]
    failed = [r.strategy for r in results if r.error]
    return ({**m.identity(), "metric": "loss", "results": rows, "ok": not failed, "failed": failed},
            "\n".join(loss_line(r) for r in results))


SUM_LINEAR_DEFAULTS = {"k": 3, "d_vocab": 256, "d_model": 128}


def load_sum_linear(args: argparse.Namespace):
    """The sum-linear model of --seed (trained once, cached) or --model (a state dict file)."""
    from .modelio.sumlinear import SumLinearConfig, get_model, import_state_dict
    if args.d_head is not None:
        raise CliError("--d-head does not apply to --arch sum-linear (it has no attention)")
    if args.model is not None:
        if args.config is not None or args.assume_architecture:
            raise CliError("--config and --assume-architecture apply to the attention model; a sum-linear state "
                           "dict needs only --k")
        path = Path(args.model)
        require_file(path, "sum-linear state dict", f"--model {args.model}")
        m = import_state_dict(path, args.k)
        for opt in ("d_vocab", "d_model"):
            given = getattr(args, opt)
            if given is not None and given != getattr(m.cfg, opt):
                raise CliError(f"--{opt.replace('_', '-')} {given} disagrees with the model ({getattr(m.cfg, opt)})")
        return m
    cfg = SumLinearConfig(**{o: getattr(args, o) if getattr(args, o) is not None else v
                             for o, v in SUM_LINEAR_DEFAULTS.items() if o != "k"},
                          n_ctx=args.k if args.k is not None else SUM_LINEAR_DEFAULTS["k"])
    return get_model(cfg, args.seed, args.models_dir, log=log, progress=True)


def cmd_prove_sum_linear(args: argparse.Namespace) -> tuple[dict, str]:
    """--arch sum-linear: the tutorial's model, its loss proofs or its exhaustive accuracy."""
    from .proofs.sumlinear_proofs import prove_accuracy, prove_loss, resolve
    metric = getattr(args, "metric", "accuracy")
    names = resolve(args.strategy, metric)
    m = load_sum_linear(args)
    ident = {**m.identity(), "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "d_model": m.cfg.d_model}
    failed: list[str] = []
    if metric == "loss":
        results = prove_loss(m.weights, m.cfg.n_ctx, names, progress=True)
        rows = [{**ident, **r.to_dict()} for r in results]
        text = "\n".join(loss_line(r) for r in results)
        failed = [r.strategy for r in results if r.error]
    else:
        rows = [{**ident, **r} for r in prove_accuracy(m.weights, m.cfg.n_ctx, names, progress=True)]
        text = "\n".join(f"{r['strategy']:<15} {r['count']:>10} / {r['total']:<10} accuracy {r['bound']:.6f}  "
                         f"{r['seconds']:.2f} s" for r in rows)
    return {**ident, "metric": metric, "results": rows, "ok": not failed, "failed": failed}, f"{m.label} (sum-linear, K={m.cfg.n_ctx}, d_vocab={m.cfg.d_vocab}):\n{text}"


def do_emit(m, strategy: str, lean_dir: Path):
    from .lean.emit import EMITTABLE, CertificateFile, emit
    from .proofs.strategies import prove
    if strategy not in EMITTABLE:
        raise CliError(f"strategy {strategy!r} has no Lean checker; certificates are emitted for: "
                       f"{', '.join(EMITTABLE)}")
    r = prove(m.cfg, m.weights, strategy)
    cf = CertificateFile(r.witness, r.count, m.seed, m.sha256, strategy, model_name=m.name,
                         source=m.source, assumptions=m.assumptions)
    return emit(cf, r.checker_ops, lean_dir)


def cmd_emit(args: argparse.Namespace) -> tuple[dict, str]:
    check_emit_target(args.strategy, args.lean_dir)
    m = load_model_arg(args)
    e = do_emit(m, args.strategy, args.lean_dir)
    out = {**m.identity(), "lean_path": str(e.lean_path), "summary_path": str(e.summary_path),
           "strategy": args.strategy, "count": e.count, "total": e.total, "checker_ops": e.checker_ops}
    return out, f"wrote {e.lean_path} and {e.summary_path} ({e.count} / {e.total}, {e.checker_ops} checker ops)"


def cmd_import(args: argparse.Namespace) -> tuple[dict, str]:
    from .modelio.importers import import_model
    from .modelio.store import store_imported
    imp = import_model(Path(args.path), args.config, args.assume_architecture)
    m = store_imported(args.models_dir, imp.cfg, imp.weights, source=imp.source, fmt=imp.format,
                       assumptions=imp.assumptions, name=args.name, log=log)
    out = {**m.identity(), "id": m.sha256, "name": m.name, "format": imp.format, "path": str(m.stem),
           "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "d_model": m.cfg.d_model, "d_head": m.cfg.d_head,
           "accuracy": m.accuracy}
    text = (f"imported {imp.source} ({imp.format}, d_vocab={m.cfg.d_vocab}, K={m.cfg.n_ctx}) as model "
            f"{m.sha256[:12]}{' (' + m.name + ')' if m.name else ''}; exhaustive accuracy {m.accuracy}\n"
            f"use it with: certify run --model {m.name or m.sha256[:12]}")
    for note in m.assumptions:
        text += f"\nnote: {note}"
    return out, text


def cmd_check(args: argparse.Namespace) -> tuple[dict, str]:
    from .lean.emit import check_certificate_text
    path = Path(args.path)
    require_file(path, "certificate (.lean or .json)")
    if path.suffix == ".json":
        return check_certificate(path, args.model, args.config, args.dataset)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a UTF-8 text file") from None
    r = check_certificate_text(text)
    out = {"ok": r.ok, "count": r.count, "claimed": r.claimed, "total": r.total, "reason": r.reason,
           "checker_ops": r.checker_ops, "path": str(path), "format": r.format}
    text_out = (f"OK: {path} proves {r.claimed} / {r.total} correct (the proof supports {r.count}); "
                f"format: {r.format}" if r.ok else f"REJECTED: {path}: {r.reason}")
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
        return {"lean": "skipped", "lean_message": msg}
    log(f"running lake build in {lean_dir} ...")
    t0 = time.perf_counter()
    proc = subprocess.run([lake, "build"], cwd=lean_dir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        log(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise CliError(f"lake build failed (exit {proc.returncode}); see the output above")
    return {"lean": "checked", "lean_seconds": round(seconds, 1)}


def check_emit_target(strategy: str, lean_dir: Path, lean: str = "optional") -> None:
    """Everything `run`/`emit` could fail on after the proofs, checked before them."""
    import shutil
    from .lean.emit import EMITTABLE, check_lean_dir_writable
    if strategy not in EMITTABLE:
        raise CliError(f"strategy {strategy!r} has no Lean checker; certificates are emitted for: "
                       f"{', '.join(EMITTABLE)}")
    if lean == "required" and shutil.which("lake") is None:
        raise CliError("--lean required (LEAN=required) but lake is not on PATH: install elan "
                       "(https://github.com/leanprover/elan), or use --lean optional")
    check_lean_dir_writable(lean_dir)


def cmd_run(args: argparse.Namespace) -> tuple[dict, str]:
    """load (train or import), exhaustive accuracy, every proof, emit, re-check (mirror, then lake)."""
    if general_requested(args):
        return cmd_general(args, "run")
    from .lean.emit import EMITTABLE, check_certificate_text
    from .proofs.strategies import in_reach, prove_many, strategy_names
    from .summary import lean_status_line, proof_table
    check_emit_target(args.strategy, args.lean_dir, args.lean)  # before minutes of work, not after
    m = load_model_arg(args)
    accuracy = m.accuracy
    results = prove_many(m.cfg, m.weights, in_reach(strategy_names(), m.cfg), accuracy, on_error="record",
                         progress=True)
    e = do_emit(m, args.strategy, args.lean_dir)
    rep = check_certificate_text(e.lean_path.read_text(encoding="utf-8"))
    if not rep.ok:
        raise CliError(f"the emitted certificate does not check: {rep.reason}")
    lean = lake_build(args.lean_dir, args.lean == "required")
    failed = [r.strategy for r in results if r.error]
    out = {**m.identity(), "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "accuracy": accuracy,
           "results": [r.to_dict() for r in results], "lean_path": str(e.lean_path),
           "summary_path": str(e.summary_path), "python_check": rep.ok, "ok": not failed, "failed": failed,
           **lean}
    lines = [f"{m.label}, K={m.cfg.n_ctx}, d_vocab={m.cfg.d_vocab}: exhaustive accuracy {accuracy}", "",
             *proof_table(results, EMITTABLE, show_all=args.all), "",
             f"certificate ({args.strategy}): claims {e.count} / {e.total}; Python mirror of the Lean checker: "
             f"{'OK' if rep.ok else 'REJECTED'}", f"  {e.lean_path}",
             *(f"note: {a}" for a in m.assumptions),
             lean_status_line(lean)]
    return out, "\n".join(lines)


def cmd_scrub(args: argparse.Namespace) -> tuple[dict, str]:
    from .experiments.hypotheses import resolve as resolve_hypotheses
    from .experiments.scrub import scrub_model
    names = resolve_hypotheses(args.hypothesis)
    m = load_model_arg(args)
    results = scrub_model(m.cfg, m.weights, names, method=args.method, samples=args.samples,
                          seed=args.seed if args.seed is not None else 0)
    out = {**m.identity(), "k": m.cfg.n_ctx, "d_vocab": m.cfg.d_vocab, "results": [r.to_dict() for r in results]}
    r0 = results[0]
    how = (f"exact ({r0.method}: every input and resample enumerated)" if r0.method == "exact" else
           f"Monte Carlo, {r0.samples} inputs, 95% intervals")
    lines = [f"{m.label}: causal scrubbing, {how}; L_model {r0.l_model:.6g}, L_random {r0.l_random:.6g}, "
             f"model accuracy {r0.model_accuracy:.5f}",
             f"{'hypothesis':<24} {'L_scrubbed':>11} {'% loss recovered [95% CI]':>34} {'scrubbed acc [95% CI]':>30}"
             "  strategy"]
    for r in results:
        lines.append(f"{r.hypothesis:<24} {r.l_scrubbed:>11.6g} {100 * r.recovered:>12.4f} "
                     f"[{100 * r.recovered_ci[0]:.4f}, {100 * r.recovered_ci[1]:.4f}] {r.accuracy:>9.5f} "
                     f"[{r.accuracy_ci[0]:.5f}, {r.accuracy_ci[1]:.5f}]  {r.strategy or '-'}")
    return out, "\n".join(lines)


def cmd_sweep(args: argparse.Namespace) -> tuple[dict, str]:
    from .modelio.seeds import parse_seeds
    from .proofs.strategies import resolve
    from .experiments.sweep import sweep
    seeds = parse_seeds(args.seeds)
    if args.paper_faithful:
        return faithful_sweep_pass(args, seeds)
    if args.scrub:
        return scrub_sweep_pass(args, seeds)
    strategies = resolve(args.strategies)
    if args.jobs < 1:
        raise CliError("-j must be at least 1")
    if args.dask and args.scheduler:
        raise CliError("--dask starts a cluster here, --scheduler uses an existing one: give one of them")
    if args.scheduler and args.jobs != 1:
        raise CliError("-j sets the local processes or --dask workers; the cluster at --scheduler has its own")
    cfg = config_of(args)
    out = sweep(seeds, strategies, args.out, d_vocab=cfg.d_vocab, k=cfg.n_ctx, d_model=cfg.d_model,
                d_head=cfg.d_head, models_dir=args.models_dir,
                lean_dir=None if args.no_emit else args.lean_dir, jobs=args.jobs, progress=not args.json,
                loss=args.loss, dask=args.dask, scheduler=args.scheduler)
    text = (f"{out['rows_written']} rows written ({out['rows_skipped']} already there) to {out['csv']} "
            f"and {out['jsonl']} in {out['seconds']} s ({out['executor']})")
    if out["failures"]:
        text += f"\n{len(out['failures'])} seed(s) failed (details in {out['failures_log']}); re-run to retry:"
        text += "".join(f"\n  seed {f['seed']} ({f['attempts']} attempts): {f['error']}" for f in out["failures"])
    return out, text


def faithful_sweep_pass(args: argparse.Namespace, seeds: list[int]) -> tuple[dict, str]:
    """`certify sweep --paper-faithful`: the paper's computation per (seed, variant), JSON lines."""
    from .experiments.paper_faithful import faithful_sweep, resolve_faithful
    if args.jobs != 1 or args.dask or args.scheduler or args.loss or args.scrub:
        raise CliError("--paper-faithful sweeps run in this process: drop -j, --dask, --scheduler, --loss, --scrub")
    names = resolve_faithful(args.strategies)
    out = args.out if args.out != Path("results/results.csv") else Path("results/paper_faithful.jsonl")
    res = faithful_sweep(seeds, names, out, config_of(args), args.models_dir, progress=not args.json)
    return res, (f"{res['rows_written']} paper-faithful rows written ({res['rows_skipped']} already there) "
                 f"to {res['jsonl']} in {res['seconds']} s")


def scrub_sweep_pass(args: argparse.Namespace, seeds: list[int]) -> tuple[dict, str]:
    """`certify sweep --scrub`: the causal-scrubbing pass, into its own CSV."""
    from .experiments.hypotheses import resolve as resolve_hypotheses
    from .experiments.scrub_results import scrub_sweep
    if args.jobs < 1:
        raise CliError("-j must be at least 1")
    cfg = config_of(args)
    out = scrub_sweep(seeds, resolve_hypotheses(args.hypotheses), args.scrub_out, d_vocab=cfg.d_vocab, k=cfg.n_ctx,
                      d_model=cfg.d_model, d_head=cfg.d_head, models_dir=args.models_dir, samples=args.samples,
                      jobs=args.jobs, progress=not args.json)
    return out, (f"{out['rows_written']} scrub rows written ({out['rows_skipped']} already there) to "
                 f"{out['csv']} in {out['seconds']} s")


def cmd_report(args: argparse.Namespace) -> tuple[dict, str]:
    from .experiments.report import report
    if args.scrub is not None:
        from .experiments.scrub_results import scrub_report
        sr = scrub_report(Path(args.results), args.scrub, args.out)
        return sr, f"wrote {sr['png']}, {sr['svg']} and {sr['markdown']} ({sr['pairs']} scrub/proof pairs)"
    out = report(Path(args.results), args.out)
    return out, f"wrote {out['png']}, {out['svg']} and {out['markdown']} ({out['rows']} rows)"


def default_lean_dir() -> Path:
    from .lean.emit import LEAN_DIR
    return LEAN_DIR


def scrub_default_samples() -> int:
    from .experiments.scrub import DEFAULT_SAMPLES  # numpy only, no torch
    return DEFAULT_SAMPLES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certify", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = common_args()
    json_only = json_args()
    p = sub.add_parser("train", parents=[common], help="train (or load) the model for a seed")
    p.add_argument("--seed", type=seed_arg, required=True, help="the training seed (a non-negative integer)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("import", parents=[common], help="check and store your model (TransformerLens)")
    p.add_argument("path", help="a state dict (.safetensors or .pt) or a checkpoint with its config")
    p.add_argument("--config", type=Path, help="the TransformerLens config as JSON")
    p.add_argument("--assume-architecture", action="store_true",
                   help="no config: state that the model is the plain architecture (recorded)")
    p.add_argument("--name", help="a name to use with --model")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("bruteforce", parents=[common], help="certified exhaustive accuracy")
    model_source_args(p)
    add_task_args(p)
    p.set_defaults(func=cmd_bruteforce)
    p = sub.add_parser("strategies", parents=[json_only], help="list the proof strategies")
    p.add_argument("--model", help="a general model file: list the strategies that apply to it")
    p.add_argument("--config", type=Path, help="its TransformerLens config (with --model)")
    p.set_defaults(func=cmd_strategies)
    p = sub.add_parser("prove", parents=[common], help="run a proof strategy (or all)")
    model_source_args(p)
    p.add_argument("--strategy", default="all", help="a strategy name, a comma list, or 'all'")
    p.add_argument("--all", action="store_true",
                   help="list every variant of the paper's family (default: the best of each group)")
    p.add_argument("--metric", choices=["accuracy", "loss"], default="accuracy",
                   help="accuracy: a lower bound on the accuracy; loss: an upper bound on the mean cross-entropy")
    p.add_argument("--paper-faithful", action="store_true",
                   help="run the paper's own computation (float32, its gap search and counting) beside ours")
    p.add_argument("--arch", choices=["maxk-attention", "sum-linear"], default="maxk-attention",
                   help="the architecture: the Max-of-K attention model, or the tutorial's sum-linear model")
    add_task_args(p)
    p.set_defaults(func=cmd_prove)
    p = sub.add_parser("emit", parents=[common], help="write the Lean certificate for a model")
    model_source_args(p)
    p.add_argument("--strategy", default="gap", help="the strategy whose certificate is written (one with a Lean "
                                                      "checker: gap)")
    p.add_argument("--lean-dir", type=Path, default=default_lean_dir(), help="the Lake project that holds the checker (default: this checkout's lean/; a new or empty directory is made into one)")
    p.set_defaults(func=cmd_emit)
    p = sub.add_parser("check", parents=[json_only], help="re-check a .lean certificate (no torch needed)")
    p.add_argument("path", help="a certificate file (lean/MaxKCert/Certs/*.lean)")
    p.add_argument("--model", help="a general (.json) certificate: the model file it is about")
    p.add_argument("--config", type=Path, help="a general certificate: the model's TransformerLens config")
    p.add_argument("--dataset", type=Path, help="a general certificate over a dataset file: that file")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("tasks", parents=[common], help="the built-in tasks and their parameters")
    p.set_defaults(func=cmd_tasks)
    p = sub.add_parser("run", parents=[common], help="everything for one model (what `make certify` runs)")
    model_source_args(p)
    p.add_argument("--strategy", default="gap", help="the strategy whose certificate is emitted")
    p.add_argument("--all", action="store_true",
                   help="list every variant of the paper's family (default: the best of each group)")
    p.add_argument("--lean", choices=["optional", "required"], default="optional",
                   help="'required' makes a missing lake an error")
    p.add_argument("--lean-dir", type=Path, default=default_lean_dir(), help="the Lake project that holds the checker (default: this checkout's lean/; a new or empty directory is made into one)")
    add_task_args(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("sweep", parents=[common], help="seeds x strategies into a results file (resumable)")
    p.add_argument("--seeds", default="paper151", help="'paper151' or a comma list")
    p.add_argument("--strategies", default="all", help="'all' or a comma list")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--out", type=Path, default=Path("results/results.csv"),
                   help="the results CSV (a JSONL beside it); rows already there are skipped")
    p.add_argument("--lean-dir", type=Path, default=Path("results/lean"),
                   help="where certificates are emitted (default results/lean)")
    p.add_argument("--no-emit", action="store_true", help="do not emit certificates")
    p.add_argument("--loss", action="store_true",
                   help="also prove loss bounds (columns loss_bound, loss_exact, loss_ratio)")
    p.add_argument("--scrub", action="store_true",
                   help="instead of the proofs, run causal scrubbing (all hypotheses) into --scrub-out")
    p.add_argument("--scrub-out", type=Path, default=Path("results/scrub.csv"),
                   help="with --scrub: the scrubbing results CSV")
    p.add_argument("--hypotheses", default="all", help="with --scrub: 'all' or a comma list")
    p.add_argument("--samples", type=int, default=scrub_default_samples(), help="with --scrub: Monte Carlo samples")
    p.add_argument("--paper-faithful", action="store_true",
                   help="the paper's own computation per variant (default --out results/paper_faithful.jsonl)")
    p.add_argument("--dask", action="store_true", help="run the jobs on a Dask LocalCluster of -j workers here")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the jobs on an existing Dask cluster (e.g. tcp://host:8786)")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("report", parents=[json_only], help="Pareto plot and Markdown table of a sweep")
    p.add_argument("results", help="a `certify sweep` results CSV")
    p.add_argument("--out", type=Path, default=Path("results/report"),
                   help="the output directory (pareto.png, pareto.svg, a Markdown table)")
    p.add_argument("--scrub", type=Path, default=None,
                   help="a `sweep --scrub` CSV: draw scrubbing against the proofs instead")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("scrub", parents=[common], help="causal scrubbing of the hypotheses the proofs rely on")
    model_source_args(p)
    p.add_argument("--hypothesis", default="all", help="a hypothesis name, a comma list, or 'all'")
    p.add_argument("--samples", type=int, default=scrub_default_samples(),
                   help="Monte Carlo reference inputs (when the model is too large to enumerate)")
    p.add_argument("--method", choices=["auto", "exact", "monte-carlo"], default="auto",
                   help="auto: exact when every input and resample can be enumerated")
    p.set_defaults(func=cmd_scrub)
    return parser


def preflight(args: argparse.Namespace) -> None:
    """The paths a command reads, checked before it imports torch or starts any work,
    so that a typo is reported in a fraction of a second."""
    config = getattr(args, "config", None)
    if config is not None and (args.command == "import" or getattr(args, "model", None) is not None):
        require_file(config, "TransformerLens config (JSON)", f"--config {config}")
    model = getattr(args, "model", None)
    if model is not None and (getattr(args, "arch", None) == "sum-linear" or
                              model_ref_is_path(model, config is not None or args.assume_architecture)):
        require_file(Path(model), "checkpoint", f"--model {model}")
    if args.command == "import":
        require_file(Path(args.path), "checkpoint")
    if args.command == "report":
        require_file(Path(args.results), "results (CSV)")
        if args.scrub is not None:
            require_file(args.scrub, "scrub results (CSV)", f"--scrub {args.scrub}")


def os_error_text(err: OSError) -> str:
    """'PATH: Read-only file system', not '[Errno 30] Read-only file system: PATH'."""
    if err.strerror and err.filename is not None:
        return f"{err.filename}: {err.strerror.lower() if err.strerror[1:].islower() else err.strerror}"
    return str(err) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    pin_cpu_code_paths()
    parser = build_parser()
    args = parser.parse_args(argv)
    from .experiments.sweep import SweepStopped
    try:
        if getattr(args, "models_dir", None) is not None and args.command != "check":
            check_models_dir(args.models_dir)
        preflight(args)
        out, text = args.func(args)
    except (SweepStopped, KeyboardInterrupt) as err:  # one line, no traceback; says how to resume
        msg = str(err) if isinstance(err, SweepStopped) else "interrupted"
        if getattr(args, "json", False):
            print(json.dumps({"error": msg}))
        log(f"certify: {msg}")
        return 130 if getattr(err, "interrupted", True) else 2
    except (CliError, ModelError, ValueError, OSError, ArithmeticError, RuntimeError) as err:
        msg = os_error_text(err) if isinstance(err, OSError) else (str(err) or type(err).__name__)
        if getattr(args, "json", False):
            print(json.dumps({"error": msg}))
        log(f"certify: error: {msg}")
        return 2
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print(text)
    return 0 if out.get("ok", True) else 1
