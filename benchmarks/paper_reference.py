"""Run the paper's own code (JasonGross/guarantees-based-mechanistic-interpretability) on our
canonical models and record its counts as fixtures (tests/fixtures/paper_faithful/).

Not part of the package or CI: it needs the paper's repository and a separate environment
with TransformerLens 2.x (see docs/paper-faithful.md). Usage:

    PYTHONPATH=/work/paper-code /work/papervenv/bin/python benchmarks/paper_reference.py \
        --seeds 123 --out tests/fixtures/paper_faithful

For each seed it builds the paper's HookedTransformer (1 layer, 1 head, attention only, no
normalization, zero biases), loads our float32 weights, runs `cubic.verify_proof` and, for
each of the 100 `LargestWrongLogitQuadraticConfig` values, the paper's search
(`find_min_gaps_with_EQKE`) then its check (`subcubic.verify_proof`), exactly as its
notebook `max_of_K_all_models.py` does (`sanity_check=False`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

SHIPPED = Path(__file__).resolve().parents[1] / "certify" / "modelio" / "shipped"


def paper_model(stem: Path):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    sidecar = json.loads(stem.with_suffix(".json").read_text())
    c = sidecar["config"]
    w = load_file(str(stem.with_suffix(".safetensors")))
    cfg = HookedTransformerConfig(n_layers=1, n_heads=1, d_model=c["d_model"], d_head=c["d_head"],
                                  d_vocab=c["d_vocab"], d_vocab_out=c["d_vocab"], n_ctx=c["n_ctx"],
                                  attn_only=True, normalization_type=None, device="cpu", seed=0)
    model = HookedTransformer(cfg)
    sd = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    sd.update({"embed.W_E": w["W_E"], "pos_embed.W_pos": w["W_pos"], "unembed.W_U": w["W_U"],
               "blocks.0.attn.W_Q": w["W_Q"][None], "blocks.0.attn.W_K": w["W_K"][None],
               "blocks.0.attn.W_V": w["W_V"][None], "blocks.0.attn.W_O": w["W_O"][None]})
    keep = {k: v for k, v in model.state_dict().items() if k.endswith(("IGNORE", "mask"))}
    sd.update(keep)
    model.load_state_dict(sd)
    return model, c


def our_name(tricks) -> str:
    return f"subcubic/{tricks.EUPU_handling}/{tricks.attention_handling}/{tricks.attention_error_handling}"


def memoised(fn):
    """The paper's search functions are pure: the same inputs give the same tensor. Its gap
    search repeats the attention passes for every variant that shares an error bound; we
    keep their results (keyed by the inputs' bytes) so the 100 searches fit in our time."""
    memo: dict = {}

    def key(x):
        if isinstance(x, torch.Tensor):
            return (tuple(x.shape), str(x.dtype), x.detach().contiguous().numpy().tobytes())
        return repr(x)

    def wrapped(*args, **kwargs):
        k = (tuple(key(a) for a in args), tuple(sorted((n, key(v)) for n, v in kwargs.items())))
        if k not in memo:
            memo[k] = fn(*args, **kwargs)
        return memo[k].clone()
    return wrapped


def run_seed(stem: Path, dump: Path | None, errors: list[str] | None, with_cubic: bool,
             first: list[str] = (), progress_file=None) -> dict:
    from gbmi.exp_max_of_n.analysis import subcubic as analysis_subcubic
    from gbmi.exp_max_of_n.analysis import quadratic as analysis_quadratic
    from gbmi.exp_max_of_n.verification import LargestWrongLogitQuadraticConfig, cubic, subcubic

    for fn in ("compute_extreme_right_attention_quadratic", "compute_extreme_softmaxed_right_attention_quadratic"):
        setattr(analysis_quadratic, fn, memoised(getattr(analysis_quadratic, fn)))
    model, c = paper_model(stem)
    out = {"config": c, "counts": {}, "total": c["d_vocab"] ** c["n_ctx"]}
    with torch.no_grad():
        if with_cubic:
            r = cubic.verify_proof(model, cubic.find_proof(model), print_complexity=False, print_results=False,
                                   sanity_check=False)
            out["counts"]["cubic"] = int(r["correct_count_lower_bound"])
            print("cubic", out["counts"]["cubic"], file=sys.stderr, flush=True)
        dirs, gaps_kwargs, sq_kwargs, _ = analysis_subcubic.find_proof_shared(model)
        values = LargestWrongLogitQuadraticConfig.all_values()
        order = errors or sorted({v.attention_error_handling for v in values})
        todo = [v for e in order for v in values if v.attention_error_handling == e]
        if first:
            todo = sorted(todo, key=lambda v: our_name(v) not in first)
        for tricks in todo:
            min_gaps, _ = analysis_subcubic.find_min_gaps_with_EQKE(model=model, **gaps_kwargs, **sq_kwargs,
                                                                     tricks=tricks, record_time=True)
            W_EP_direction = analysis_quadratic.W_EP_direction_for_tricks(**dirs, tricks=tricks)
            res = subcubic.verify_proof(model, W_EP_direction=W_EP_direction, **sq_kwargs, min_gaps=min_gaps,
                                        tricks=tricks, sanity_check=False, print_complexity=False,
                                        print_results=False)
            name = our_name(tricks)
            out["counts"][name] = int(res["correct_count_lower_bound"])
            if dump is not None:
                torch.save({"min_gaps": min_gaps, "lwl": res["largest_wrong_logit"],
                            "err": res["err_upper_bound"]}, dump / f"{stem.name}-{name.replace('/', '~')}.pt")
            print(name, out["counts"][name], file=sys.stderr, flush=True)
            if progress_file is not None:
                progress_file.write(json.dumps({"variant": name, "count": out["counts"][name]}) + "\n")
                progress_file.flush()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="comma-separated seeds")
    ap.add_argument("--family", default="maxk-v64-k4-dm32-dh32")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dump", type=Path, default=None, help="also save the paper's gaps and logit bounds here")
    ap.add_argument("--errors", default=None, help="comma-separated attention_error_handling values (default all)")
    ap.add_argument("--no-cubic", action="store_true")
    ap.add_argument("--first", default="", help="comma-separated variants to run before the others")
    ap.add_argument("--part", default="", help="suffix of the output file (to run parts in parallel)")
    args = ap.parse_args()
    import gbmi
    code = Path(gbmi.__file__).resolve().parents[1]
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    import transformer_lens
    from importlib.metadata import version
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in [int(s) for s in args.seeds.split(",")]:
        target = args.out / f"{args.family}-seed{seed}{args.part}.json"
        if target.exists():
            continue
        if args.dump is not None:
            args.dump.mkdir(parents=True, exist_ok=True)
        errors = args.errors.split(",") if args.errors else None
        r = run_seed(SHIPPED / args.family / f"seed{seed}", args.dump, errors, not args.no_cubic,
                     [f for f in args.first.split(",") if f],
                     (args.out / f"{args.family}-seed{seed}{args.part}.partial.jsonl").open("a"))
        pins = {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
        r = {"seed": seed, "family": args.family, "paper_commit": commit, "torch": torch.__version__, "cpu_pins": pins,
             "transformer_lens": version("transformer_lens"), "dtype": "float32", **r}
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(r, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, target)
        print(f"seed {seed}: written {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
