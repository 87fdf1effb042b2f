"""Deterministic training of a Max-of-K model from a seed.

One torch.Generator seeded by the seed drives both the initialisation and the fresh
uniform batches, and training runs on one CPU thread, so the same seed and config give
bit-identical weights on every run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch

from .model import Config, Weights, all_forward_logits, init_weights


@dataclass(frozen=True)
class TrainParams:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.01

    def to_dict(self) -> dict:
        return asdict(self)


def training_environment() -> dict:
    """What decides the training bits besides the seed: torch, and the CPU code paths."""
    import platform
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl_cbwr": os.environ.get("MKL_CBWR"), "machine": platform.machine(), "cpu": _cpu_name()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"


def train(cfg: Config, seed: int, params: TrainParams = TrainParams(),
          progress: bool = False) -> tuple[Weights, float]:
    """Train with AdamW on cross-entropy at the last position; return weights, final loss."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # determinism and room for parallel seeds
    try:
        gen = torch.Generator().manual_seed(seed)
        params_t = {k: v.clone().requires_grad_(True) for k, v in init_weights(cfg, gen).items()}
        opt = torch.optim.AdamW(list(params_t.values()), lr=params.lr,
                                betas=(params.beta1, params.beta2),
                                weight_decay=params.weight_decay)
        from ..progress import steps as progress_steps
        steps = progress_steps(range(params.steps), f"train seed {seed}", progress, unit="step")
        loss_value = float("nan")
        for _ in steps:
            tokens = torch.randint(0, cfg.d_vocab, (params.batch_size, cfg.n_ctx), generator=gen)
            logits = all_forward_logits(params_t, tokens)[:, -1, :]
            loss = torch.nn.functional.cross_entropy(logits, tokens.max(dim=-1).values)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_value = float(loss.detach())
        return {k: v.detach().clone().contiguous() for k, v in params_t.items()}, loss_value
    finally:
        torch.set_num_threads(threads)
