"""The command line for general models (`--task` / `--dataset`): bruteforce, prove, run,
tasks, strategies --model and `check` of JSON certificates. Kept apart from cli.py,
which routes here when a task or dataset is given."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .modelio.config import ModelError

STRATEGY = "sound-forward"  # float64 intervals, then arb balls at rising precision
MAXK_STRATEGY = "maxk-bruteforce"
CERT_KIND = "certify-general-certificate"
TASK_OPTIONS = {  # CLI option -> task parameter
    "p": "p", "op": "op", "group_n": "n", "sort_k": "k", "n_values": "n_values", "n_ctx": "n_ctx",
    "readout": "readout", "n_sequences": "n_sequences", "task_seed": "seed",
}


def add_task_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("general models (TransformerLens, any task; see `certify tasks`)")
    g.add_argument("--task", help="a task name (`certify tasks`) or module:function")
    g.add_argument("--dataset", type=Path, help="a .safetensors/.npz file with tokens [N, n_ctx], labels [N], "
                                                "optional positions [N]")
    g.add_argument("--p", type=int, help="modular-addition: the modulus")
    g.add_argument("--op", help="modular-addition: add or sub")
    g.add_argument("--group-n", type=int, help="group-composition: S_n")
    g.add_argument("--sort-k", type=int, help="sort: list length")
    g.add_argument("--n-values", type=int, help="sort: number of values")
    g.add_argument("--n-ctx", type=int, help="max-of-k, parity, balanced-parens, induction: sequence length")
    g.add_argument("--readout", help="balanced-parens: last or first")
    g.add_argument("--n-sequences", type=int, help="induction: number of random sequences")
    g.add_argument("--task-seed", type=int, help="induction: the generator's seed")
    g.add_argument("--certificate", type=Path, help="where the JSON certificate is written (run, prove)")


def general_requested(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "task", None) or getattr(args, "dataset", None))


def task_params(args: argparse.Namespace) -> dict:
    return {param: getattr(args, opt) for opt, param in TASK_OPTIONS.items() if getattr(args, opt, None) is not None}


def load_general(model: str, config: Path | None):
    from .modelio.general import import_general
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{model}: file not found (general models are read from their checkpoint file "
                         "and --config; the model store holds Max-of-K models only)")
    return import_general(path, config)


def build_inputs(args: argparse.Namespace, cfg):
    from .tasks import build_task, check_against_model, read_dataset
    if args.task and args.dataset:
        raise ValueError("give --task or --dataset, not both")
    task = read_dataset(args.dataset) if args.dataset else build_task(args.task, cfg, task_params(args))
    check_against_model(task, cfg)
    return task


def maxk_fast_path(args: argparse.Namespace):
    """The specialised Max-of-K brute force, when the model is exactly that architecture."""
    if args.task != "max-of-k" or task_params(args):
        return None
    from .modelio.importers import import_model
    try:
        return import_model(Path(args.model), args.config, False)
    except ModelError:
        return None


def certify_general(args: argparse.Namespace, loss: bool) -> dict:
    """Evaluate, and return the result fields shared by bruteforce, prove and run."""
    if getattr(args, "model", None) is None:
        raise ValueError("--task/--dataset need --model FILE --config CONFIG.json")
    imp = maxk_fast_path(args)
    if imp is not None and not loss:
        from .modelio.weights import weights_sha256
        from .proofs.bruteforce import bruteforce
        from .proofs.exact import path_tables
        r = bruteforce(path_tables(imp.weights))
        return {"strategy": MAXK_STRATEGY, "weights_sha256": weights_sha256(imp.weights), "source": imp.source,
                "task": {"name": "max-of-k", "params": {"n_ctx": imp.cfg.n_ctx, "d_vocab": imp.cfg.d_vocab}},
                "correct": r.correct, "total": r.total, "accuracy": r.accuracy,
                "paths": {"maxk-bruteforce (exact path)": r.exact_path_inputs}, "loss_upper": None,
                "seconds": round(r.seconds, 3)}
    from .evaluation.evaluate import evaluate
    model = load_general(args.model, args.config)
    task = build_inputs(args, model.cfg)
    ev = evaluate(model, task.tokens, task.positions, task.labels, loss=loss, progress=not args.json)
    return {"strategy": STRATEGY, "weights_sha256": model.sha256, "source": model.source, "format": model.format,
            "config": model.cfg.to_dict(), "task": task_record(task, bool(args.dataset)),
            "correct": ev.correct, "total": ev.total, "accuracy": ev.accuracy, "paths": ev.paths,
            "loss_upper": ev.loss_upper, "seconds": round(ev.seconds, 3)}


def task_record(task, from_file: bool) -> dict:
    rec = {"name": task.name, "params": task.params, "inputs_sha256": task.digest(), "size": task.size}
    if not from_file:
        rec["generator"] = "certify.tasks"
    return rec


def text_of(r: dict) -> str:
    loss = f"; mean cross-entropy <= {r['loss_upper']:.10g}" if r.get("loss_upper") is not None else ""
    paths = ", ".join(f"{v} by {k}" for k, v in r["paths"].items())
    return (f"{r['task']['name']}: {r['correct']} / {r['total']} correct = {r['accuracy']:.6f} (certified by "
            f"{r['strategy']}; {paths}){loss}; {r['seconds']:.2f} s")


def cmd_general(args: argparse.Namespace, mode: str) -> tuple[dict, str]:
    loss = getattr(args, "metric", "accuracy") == "loss"
    r = certify_general(args, loss)
    text = text_of(r)
    if mode in ("run", "prove") and r["strategy"] == STRATEGY:
        path = write_certificate(r, args)
        r["certificate"] = str(path)
        text += f"\ncertificate: {path} (re-check: certify check {path} --model {args.model} --config {args.config})"
    return {**r, "ok": True}, text


def certificate_of(r: dict) -> dict:
    return {"kind": CERT_KIND, "version": 1, "weights_sha256": r["weights_sha256"], "source": r["source"],
            "format": r["format"], "config": r["config"], "task": r["task"], "claimed_correct": r["correct"],
            "total": r["total"], "claimed_loss_upper": r["loss_upper"], "strategy": r["strategy"],
            "paths": r["paths"]}


def write_certificate(r: dict, args: argparse.Namespace) -> Path:
    """Append-only: a certificate file is never overwritten with different contents."""
    from .modelio.files import atomic_write_text
    cert = certificate_of(r)
    path = args.certificate or Path("certificates/general") / (
        f"{r['weights_sha256'][:12]}-{r['task']['name'].replace(':', '_').replace('/', '_')}-"
        f"{r['task']['inputs_sha256'][:12]}{'-loss' if r['loss_upper'] is not None else ''}.json")
    text = json.dumps(cert, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") != text:
        raise ValueError(f"{path} exists with other contents; certificates are append-only (choose --certificate)")
    atomic_write_text(path, text)
    return path


def check_certificate(path: Path, model: str | None, config: Path | None, dataset: Path | None) -> tuple[dict, str]:
    """Re-check from the weights: same digest, same inputs, and an independent evaluation
    certifying at least the claimed count (and at most the claimed loss)."""
    from .evaluation.evaluate import evaluate
    from .modelio.files import read_json_object
    from .tasks import build_task, read_dataset
    cert = read_json_object(path, "certificate")
    if cert.get("kind") != CERT_KIND:
        raise ValueError(f"{path}: not a general certificate (kind {cert.get('kind')!r})")
    if model is None:
        raise ValueError("checking a general certificate needs --model FILE --config CONFIG.json (the weights)")
    m = load_general(model, config)
    problems = []
    if m.sha256 != cert["weights_sha256"]:
        problems.append(f"weights sha256 {m.sha256[:12]}... differs from the certificate's "
                        f"{str(cert['weights_sha256'])[:12]}...")
    if m.cfg.to_dict() != cert["config"]:
        problems.append("the architecture differs from the certificate's config")
    t = cert["task"]
    task = read_dataset(dataset) if "generator" not in t else build_task(t["name"], m.cfg, t["params"])
    if task.digest() != t["inputs_sha256"]:
        problems.append("the input set's sha256 differs from the certificate's")
    out = {"ok": False, "path": str(path), "claimed": cert["claimed_correct"], "total": cert["total"]}
    if problems:
        return {**out, "reason": "; ".join(problems)}, f"REJECTED: {path}: {'; '.join(problems)}"
    loss = cert.get("claimed_loss_upper") is not None
    ev = evaluate(m, task.tokens, task.positions, task.labels, loss=loss)
    ok = ev.correct >= cert["claimed_correct"] and (not loss or (ev.loss_upper is not None
                                                            and ev.loss_upper <= cert["claimed_loss_upper"]))
    out = {**out, "ok": ok, "count": ev.correct, "loss_upper": ev.loss_upper,
           "reason": None if ok else "the re-evaluation does not reach the claim"}
    text = (f"OK: {path} proves {cert['claimed_correct']} / {cert['total']} correct (the re-evaluation certifies "
            f"{ev.correct})" if ok else f"REJECTED: {path}: re-evaluation certifies {ev.correct} < claimed")
    return out, text


def cmd_tasks(args: argparse.Namespace) -> tuple[dict, str]:
    from .tasks import describe
    d = describe()
    lines = []
    for name, info in d.items():
        params = ", ".join(f"{p}={v['default']}" for p, v in info["params"].items())
        lines.append(f"{name}  ({params})\n    {info['conventions']}")
    lines.append("user-defined: --task module:function, or --dataset FILE (.safetensors/.npz: tokens, labels, "
                 "optional positions)")
    return {"tasks": d}, "\n".join(lines)


STRATEGY_SCOPE = {  # strategy -> (architectures, tasks)
    STRATEGY: ("any supported TransformerLens architecture", "any finite task"),
    MAXK_STRATEGY: ("1 layer, 1 head, attention only, no norm, no biases", "max-of-k"),
}


def applicable_strategies(model: str, config: Path | None) -> tuple[dict, str]:
    from .modelio.importers import import_model
    general = load_general(model, config)
    names = [STRATEGY]
    try:
        import_model(Path(model), config, False)
        names.append(MAXK_STRATEGY)
        maxk = True
    except ModelError:
        maxk = False
    text = "\n".join(f"{n}: architectures {STRATEGY_SCOPE[n][0]}; tasks {STRATEGY_SCOPE[n][1]}" for n in names)
    if maxk:
        text += "\n(and every Max-of-K proof strategy: certify strategies)"
    return {"model": general.source, "applicable": names, "maxk_architecture": maxk}, text
