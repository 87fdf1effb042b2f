"""Benchmark of the general sound evaluator (issue 21 targets), printing figures.

  modular-addition: p = 113 in Nanda et al.'s configuration (1 layer, 4 heads, d_model 128,
      d_head 32, d_mlp 512, ReLU, no LayerNorm), weights briefly trained here (seeded), all
      12,769 inputs, side by side with a plain float32 forward over the same inputs (ratio);
  induction: a 2-layer attention-only model with LayerNorm (random weights, seeded) over
      >= 10^5 examples of the induction task;
  balls: python-flint arb against mpmath iv on the same inputs, same precision;
  maxk: the general evaluator against the Max-of-K brute force on canonical models.
Each case runs in its own process so that its peak memory (ru_maxrss) is its own.

    python benchmarks/general.py [--case modadd|induction|balls|maxk] [--maxk-seeds N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def modadd_model(steps: int = 300, seed: int = 0):
    """Nanda's architecture, trained briefly (full batch AdamW) with a plain torch forward."""
    import torch
    from certify.modelio.general import GeneralModel
    from certify.tasks import build_task
    from general_models import make_config, random_model
    cfg = make_config(n_layers=1, n_heads=4, d_model=128, d_head=32, d_vocab=114, d_vocab_out=113, n_ctx=3,
                      d_mlp=512, act_fn="relu")
    init = random_model(cfg, seed, bias_scale=0.0)
    task = build_task("modular-addition", cfg, {"p": 113})
    params = {k: torch.tensor(v, requires_grad=True) for k, v in init.params.items()}
    toks, labels = torch.tensor(task.tokens), torch.tensor(task.labels)
    opt = torch.optim.AdamW(params.values(), lr=3e-3, weight_decay=1.0)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(plain_forward(params, toks, cfg), labels)
        loss.backward()
        opt.step()
    model = GeneralModel(cfg, {k: v.detach().numpy().astype(np.float32) for k, v in params.items()}, "modadd", "bench")
    return model, task, float(loss), time.perf_counter() - t0


def plain_forward(P: dict, toks, cfg):
    """TransformerLens' forward for this architecture (1 layer, no LN), last position only."""
    import torch
    x = P["embed.W_E"][toks] + P["pos_embed.W_pos"][: toks.shape[1]]
    q = torch.einsum("bpd,hde->bhpe", x, P["blocks.0.attn.W_Q"]) + P["blocks.0.attn.b_Q"][:, None]
    k = torch.einsum("bpd,hde->bhpe", x, P["blocks.0.attn.W_K"]) + P["blocks.0.attn.b_K"][:, None]
    v = torch.einsum("bpd,hde->bhpe", x, P["blocks.0.attn.W_V"]) + P["blocks.0.attn.b_V"][:, None]
    s = (q @ k.transpose(-1, -2)) / cfg.d_head ** 0.5
    n = toks.shape[1]
    s = s.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    z = torch.softmax(s, -1) @ v
    x = x + torch.einsum("bhpe,hed->bpd", z, P["blocks.0.attn.W_O"]) + P["blocks.0.attn.b_O"]
    x = x + torch.relu(x @ P["blocks.0.mlp.W_in"] + P["blocks.0.mlp.b_in"]) @ P["blocks.0.mlp.W_out"] \
        + P["blocks.0.mlp.b_out"]
    return (x @ P["unembed.W_U"] + P["unembed.b_U"])[:, -1]


def case_modadd() -> dict:
    import torch
    from certify.evaluation.evaluate import evaluate
    model, task, loss, train_s = modadd_model()
    P = {k: torch.tensor(v) for k, v in model.params.items()}
    toks = torch.tensor(task.tokens)
    with torch.no_grad():
        plain_forward(P, toks, model.cfg)
        t0 = time.perf_counter()
        logits = plain_forward(P, toks, model.cfg)
        plain_s = time.perf_counter() - t0
    plain_correct = int((logits.argmax(-1).numpy() == task.labels).sum())
    r = evaluate(model, task.tokens, task.positions, task.labels, loss=True)
    return {"case": "modular-addition p=113 (Nanda config, trained 300 full-batch steps)", "train_loss": loss,
            "train_seconds": round(train_s, 1), "inputs": r.total, "certified_correct": r.correct,
            "float32_argmax_correct": plain_correct, "paths": r.paths, "loss_upper": r.loss_upper,
            "sound_seconds": round(r.seconds, 2), "float32_seconds": round(plain_s, 4),
            "ratio": round(r.seconds / plain_s, 1), "peak_mib": round(peak_mib())}


def case_induction(n_sequences: int = 15000) -> dict:
    from certify.evaluation.evaluate import evaluate
    from certify.tasks import build_task
    from general_models import make_config, random_model
    cfg = make_config(n_layers=2, n_heads=4, d_model=64, d_head=16, d_vocab=32, d_vocab_out=32, n_ctx=16,
                      normalization_type="LN")
    model = random_model(cfg, 0)
    task = build_task("induction", cfg, {"n_sequences": n_sequences, "seed": 0})
    r = evaluate(model, task.tokens, task.positions, task.labels, loss=True)
    return {"case": "induction, 2 layers attention-only + LN (4 heads, d_model 64, n_ctx 16, random weights)",
            "inputs": r.total, "certified_correct": r.correct, "paths": r.paths, "loss_upper": r.loss_upper,
            "sound_seconds": round(r.seconds, 2), "peak_mib": round(peak_mib())}


def case_balls(n: int = 10) -> dict:
    """The same forward pass in arb (python-flint) and in mpmath iv at 128 bits."""
    import mpmath
    from flint import ctx
    from certify.evaluation.ball_forward import Balls
    from certify.evaluation.sound_forward import backend_params, forward_logits
    from general_models import all_inputs, make_config, random_model

    class MpmathIv(Balls):
        def __init__(self) -> None:
            super().__init__()
            iv = mpmath.iv
            self._exp = np.frompyfunc(iv.exp, 1, 1)
            self._arb = np.frompyfunc(lambda f: iv.mpf(float(f)), 1, 1)
            self._rsqrt = np.frompyfunc(lambda a: 1 / iv.sqrt(a), 1, 1)

        def inv_sqrt(self, d):
            return 1 / mpmath.iv.sqrt(d)

        def recip_int(self, m):
            return 1 / mpmath.iv.mpf(m)

        def softmax(self, s, keep):
            keep = np.broadcast_to(keep, s.shape)
            zero = mpmath.iv.mpf(0)
            e = np.where(keep, self._exp(np.where(keep, s, zero)), zero)
            return e / np.sum(e, axis=-1, keepdims=True)

    cfg = make_config(n_layers=1, n_heads=4, d_model=32, d_head=8, d_vocab=16, d_vocab_out=16, n_ctx=4)
    model = random_model(cfg, 1)
    toks = all_inputs(16, 4)[:: 16 ** 4 // n][:n]
    pos = np.full(len(toks), 3)
    out = {"case": f"ball arithmetic, {n} inputs, 1 layer 4 heads d_model 32, 128 bits"}
    for name, make in (("arb (python-flint)", Balls), ("mpmath iv", MpmathIv)):
        ctx.prec, mpmath.iv.prec = 128, 128
        be = make()
        P = backend_params(be, model)
        t0 = time.perf_counter()
        for t, p in zip(toks, pos):
            forward_logits(be, model, P, t[None], np.array([p]))
        out[name + " seconds per input"] = round((time.perf_counter() - t0) / n, 4)
    return out


def case_maxk(seeds: int) -> dict:
    """The general evaluator against the Max-of-K brute force on shipped canonical models."""
    from certify.evaluation.evaluate import evaluate
    from certify.modelio.general import GeneralModel, general_config
    from certify.modelio.presets import preset_config  # noqa: F401
    from certify.modelio.store import shipped_model
    from certify.modelio.model import Config
    from certify.proofs.bruteforce import bruteforce
    from certify.proofs.exact import path_tables
    from certify.modelio.seeds import parse_seeds
    from certify.tasks import build_task
    cfg = Config()
    rows, t_general, t_brute = [], 0.0, 0.0
    for seed in parse_seeds("paper151")[:seeds]:
        m = shipped_model(cfg, seed)
        w = {k: v.numpy() for k, v in m.weights.items()}
        g = general_config({"n_layers": 1, "n_heads": 1, "d_model": cfg.d_model, "d_head": cfg.d_head,
                            "d_vocab": cfg.d_vocab, "n_ctx": cfg.n_ctx, "attn_only": True})
        z = np.zeros
        params = {"embed.W_E": w["W_E"], "pos_embed.W_pos": w["W_pos"], "unembed.W_U": w["W_U"],
                  "unembed.b_U": z(cfg.d_vocab, np.float32), "blocks.0.attn.b_O": z(cfg.d_model, np.float32),
                  **{f"blocks.0.attn.W_{n}": w[f"W_{n}"][None] for n in "QKVO"},
                  **{f"blocks.0.attn.b_{n}": z((1, cfg.d_head), np.float32) for n in "QKV"}}
        model = GeneralModel(g, params, f"seed{seed}", "shipped")
        task = build_task("max-of-k", g, {})
        r = evaluate(model, task.tokens, task.positions, task.labels, progress=True)
        t0 = time.perf_counter()
        b = bruteforce(path_tables(m.weights))
        t_brute += time.perf_counter() - t0
        t_general += r.seconds
        rows.append({"seed": seed, "general": r.correct, "bruteforce": b.correct, "paths": r.paths})
    return {"case": f"Max-of-4 d_vocab 64 canonical models, first {seeds} seeds", "models": rows,
            "all_agree": all(x["general"] == x["bruteforce"] for x in rows),
            "general_seconds": round(t_general, 1), "bruteforce_seconds": round(t_brute, 1),
            "peak_mib": round(peak_mib())}


CASES = {"modadd": case_modadd, "induction": case_induction, "balls": case_balls}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=[*CASES, "maxk"])
    ap.add_argument("--maxk-seeds", type=int, default=2)
    args = ap.parse_args()
    if args.case == "maxk":
        print(json.dumps(case_maxk(args.maxk_seeds)))
    elif args.case:
        print(json.dumps(CASES[args.case]()))
    else:
        for case in CASES:
            subprocess.run([sys.executable, __file__, "--case", case], check=True)


if __name__ == "__main__":
    main()
