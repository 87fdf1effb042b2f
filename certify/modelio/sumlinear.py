"""The tutorial's second architecture ("sum-linear"): the sum of the K one-hot tokens ->
embedding -> linear -> unembedding, no biases, no nonlinearity, trained on Max-of-K
(LouisYRYJ/Proof_based_approach_tutorial, `proof_public.ipynb`, class `MLP`).

Weights are the notebook's state dict: `embedding.weight` [d_model, d_vocab],
`linear.weight` [d_model, d_model], `unembedding.weight` [d_vocab, d_model] (nn.Linear
layouts, y = x W^T). logits(x) = U W E c(x), c(x) the token counts, so the model is
permutation-invariant and linear in c.

Training, as in the notebook: AdamW (torch defaults: betas 0.9/0.999, weight decay
0.01), lr 1e-3, batch 1024, 2 epochs over a random 5% subset of the d_vocab^K inputs,
cross-entropy on the max token, nn.Linear's default init U(+-1/sqrt(fan_in)).
What we change, for determinism and fidelity to the notebook's intent: one
torch.Generator seeded by the seed drives the init, the subset and the shuffles (the
notebook seeds Python's `random` once, 57); the subset is a real subset (distinct
inputs drawn without replacement: the notebook's dataset ignores the index and draws
fresh random tokens for every item, so its "5% subset" is only a count of samples);
one CPU thread; the embedding of the count vector is computed as a sum of rows (the
same function as the one-hot matmul, fewer operations).
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .config import ModelError
from .digest import weights_sha256_arrays
from .store import StoredModel
from .weights import read_model_files, write_model_files

ARCH = "sum-linear"
SL_WEIGHT_NAMES = ("embedding.weight", "linear.weight", "unembedding.weight")


@dataclass(frozen=True)
class SumLinearConfig:
    d_vocab: int = 256
    n_ctx: int = 3
    d_model: int = 128

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelError(f"config field {name} must be a positive integer, got {value!r}")
        if self.d_vocab < 2 or self.n_ctx < 2:
            raise ModelError("sum-linear needs d_vocab >= 2 and n_ctx (K) >= 2")

    def shapes(self) -> dict[str, tuple[int, int]]:
        return {"embedding.weight": (self.d_model, self.d_vocab), "linear.weight": (self.d_model, self.d_model),
                "unembedding.weight": (self.d_vocab, self.d_model)}

    def to_dict(self) -> dict:
        return {"arch": ARCH, **asdict(self)}

    @staticmethod
    def from_dict(data: dict) -> "SumLinearConfig":
        try:
            return SumLinearConfig(data["d_vocab"], data["n_ctx"], data["d_model"])
        except KeyError as missing:
            raise ModelError(f"sum-linear config is missing field {missing}") from None


Weights = dict[str, torch.Tensor]


def validate_weights(cfg: SumLinearConfig, weights: Weights) -> Weights:
    missing = [n for n in SL_WEIGHT_NAMES if n not in weights]
    extra = sorted(set(weights) - set(SL_WEIGHT_NAMES))
    if missing or extra:
        raise ModelError(f"sum-linear state dict: missing {', '.join(missing) or 'nothing'}, unexpected "
                         f"{', '.join(extra) or 'nothing'} (expected {', '.join(SL_WEIGHT_NAMES)})")
    for name, shape in cfg.shapes().items():
        w = weights[name]
        if not isinstance(w, torch.Tensor) or w.dtype != torch.float32:
            raise ModelError(f"{name}: expected a float32 tensor")
        if tuple(w.shape) != shape:
            raise ModelError(f"{name}: shape must be {list(shape)}, got {list(w.shape)}")
        if not bool(torch.isfinite(w).all()):
            raise ModelError(f"{name}: contains NaN or infinite values")
    return weights


def init_weights(cfg: SumLinearConfig, gen: torch.Generator) -> Weights:
    """nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform, a = sqrt 5)."""
    out = {}
    for name, (fan_out, fan_in) in cfg.shapes().items():
        bound = 1.0 / math.sqrt(fan_in)
        out[name] = (torch.rand((fan_out, fan_in), generator=gen, dtype=torch.float32) * 2 - 1) * bound
    return out


def forward_logits(weights: Weights, tokens: torch.Tensor) -> torch.Tensor:
    """logits [batch, d_vocab] of tokens [batch, K]: U W (sum_i E[:, t_i])."""
    emb = weights["embedding.weight"].T[tokens].sum(dim=1)  # [batch, d_model]
    return (emb @ weights["linear.weight"].T) @ weights["unembedding.weight"].T


@dataclass(frozen=True)
class SumLinearTrainParams:
    epochs: int = 2
    batch_size: int = 1024
    lr: float = 1e-3
    subset_fraction: float = 0.05
    weight_decay: float = 0.01  # torch's AdamW default, which the notebook uses

    def to_dict(self) -> dict:
        return asdict(self)


def decode_inputs(idx: torch.Tensor, cfg: SumLinearConfig) -> torch.Tensor:
    """Input number idx -> its K tokens (base d_vocab digits, first token most significant)."""
    toks = []
    for _ in range(cfg.n_ctx):
        toks.append(idx % cfg.d_vocab)
        idx = idx // cfg.d_vocab
    return torch.stack(toks[::-1], dim=1)


def train(cfg: SumLinearConfig, seed: int, params: SumLinearTrainParams = SumLinearTrainParams(),
          progress: bool = False) -> tuple[Weights, float]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(seed)
        w = {k: v.clone().requires_grad_(True) for k, v in init_weights(cfg, gen).items()}
        opt = torch.optim.AdamW(list(w.values()), lr=params.lr, weight_decay=params.weight_decay)
        total = cfg.d_vocab ** cfg.n_ctx
        n = int(total * params.subset_fraction)
        subset = torch.randperm(total, generator=gen)[:n]
        loss_value = float("nan")
        from ..progress import steps
        for epoch in range(params.epochs):
            order = subset[torch.randperm(n, generator=gen)]
            for k in steps(range(0, n, params.batch_size), f"train sum-linear seed {seed}, epoch {epoch + 1}/"
                           f"{params.epochs}", progress, unit="batch"):
                toks = decode_inputs(order[k:k + params.batch_size], cfg)
                loss = torch.nn.functional.cross_entropy(forward_logits(w, toks), toks.max(dim=1).values)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_value = float(loss.detach())
        return {k: v.detach().clone().contiguous() for k, v in w.items()}, loss_value
    finally:
        torch.set_num_threads(threads)


def weights_sha256(weights: Weights) -> str:
    """sha256 in the one canonical form of `certify.modelio.digest` (-0.0 hashed as +0.0)."""
    return weights_sha256_arrays({n: weights[n].detach().cpu().numpy() for n in SL_WEIGHT_NAMES}, SL_WEIGHT_NAMES)


# ------------------------------------------------------------------ the store
@dataclass(frozen=True)
class StoredSumLinear(StoredModel):
    """A sum-linear model ready for the proofs: the store's StoredModel (sha256, name,
    source, assumptions) with this architecture's label and identity. Its accuracy is
    proved by `sumlinear_proofs`, not read from a Max-of-K exhaustive count."""

    @property
    def label(self) -> str:
        return f"seed {self.seed}" if self.seed is not None else (self.source or self.sha256[:12])

    @property
    def accuracy(self) -> float | None:
        return None

    def identity(self) -> dict:
        return {"arch": ARCH, **super().identity(),
                "model": None if self.seed is not None else self.sha256[:12]}


def model_stem(models_dir: Path, cfg: SumLinearConfig, seed: int) -> Path:
    return models_dir / f"sumlinear-v{cfg.d_vocab}-k{cfg.n_ctx}-dm{cfg.d_model}" / f"seed{seed}"


def save(stem: Path, cfg: SumLinearConfig, weights: Weights, meta: dict) -> None:
    validate_weights(cfg, weights)
    write_model_files(stem, {k: weights[k] for k in SL_WEIGHT_NAMES}, cfg.to_dict(), meta, weights_sha256(weights))


def load(stem: Path) -> StoredSumLinear:
    meta, weights = read_model_files(
        stem, lambda side, w: validate_weights(SumLinearConfig.from_dict(side["config"]), w), weights_sha256)
    return StoredSumLinear(SumLinearConfig.from_dict(meta["config"]), meta.get("seed"), weights, meta, stem)


def get_model(cfg: SumLinearConfig, seed: int, models_dir: Path,
              log=lambda msg: print(msg, file=sys.stderr), progress: bool = False) -> StoredSumLinear:
    """The cached model of (config, seed), else trained and stored."""
    stem = model_stem(models_dir, cfg, seed)
    if stem.with_suffix(".json").exists() and stem.with_suffix(".safetensors").exists():
        m = load(stem)
        if m.cfg != cfg or m.seed != seed:
            raise ModelError(f"{stem}: cached model does not match {cfg} / seed {seed}")
        return m
    log(f"training sum-linear seed {seed} (d_vocab={cfg.d_vocab}, K={cfg.n_ctx}, d_model={cfg.d_model})...")
    params = SumLinearTrainParams()
    weights, loss = train(cfg, seed, params, progress=progress)
    from .train import training_environment
    save(stem, cfg, weights, {"seed": seed, "arch": ARCH, "training": params.to_dict(), "final_loss": loss,
                              "trained_with": training_environment()})
    return load(stem)


def import_state_dict(path: Path, n_ctx: int | None) -> StoredSumLinear:
    """A notebook state dict (torch .pt, loaded with weights_only=True, or safetensors),
    keys with or without a `model.` prefix. The state dict does not hold K: --k is required."""
    if n_ctx is None:
        raise ModelError("a sum-linear state dict does not record K (the number of tokens): give --k")
    if path.suffix == ".safetensors":
        from safetensors.torch import load as st_load
        try:
            sd = st_load(path.read_bytes())
        except Exception as err:  # noqa: BLE001
            raise ModelError(f"{path}: not a readable safetensors file ({err})") from None
    else:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001
            raise ModelError(f"{path}: not a torch state dict loadable with weights_only=True ({err}); save "
                             "model.state_dict()") from None
    if not isinstance(sd, dict):
        raise ModelError(f"{path}: expected a state dict (a mapping of names to tensors)")
    sd = {k[len("model."):] if k.startswith("model.") else k: v for k, v in sd.items()}
    for k, v in list(sd.items()):
        if isinstance(v, torch.Tensor) and v.dtype in (torch.float16, torch.bfloat16):
            sd[k] = v.to(torch.float32)  # exact
        elif isinstance(v, torch.Tensor) and v.dtype == torch.float64:
            if not torch.equal(v.to(torch.float32).to(torch.float64), v):
                raise ModelError(f"{k}: float64 values that are not float32 values (nothing is rounded silently)")
            sd[k] = v.to(torch.float32)
    if "embedding.weight" not in sd or not isinstance(sd["embedding.weight"], torch.Tensor):
        raise ModelError(f"{path}: no embedding.weight (expected keys {', '.join(SL_WEIGHT_NAMES)})")
    d_model, d_vocab = sd["embedding.weight"].shape
    cfg = SumLinearConfig(int(d_vocab), int(n_ctx), int(d_model))
    validate_weights(cfg, sd)
    weights = {k: sd[k].contiguous() for k in SL_WEIGHT_NAMES}
    meta = {"seed": None, "source": path.name, "sha256": weights_sha256(weights)}
    return StoredSumLinear(cfg, None, weights, meta, None)
