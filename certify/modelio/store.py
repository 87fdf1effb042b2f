"""The model store under `models/`: seed models (trained once per (config, seed), then
loaded) and imported user models (content-addressed by the weights' sha256)."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..proofs.bruteforce import BruteForceResult, bruteforce
from ..proofs.exact import path_tables
from .files import DEFAULT_MODELS_DIR, model_ref_is_path, require_file
from .model import Config, ModelError, Weights
from .train import TrainParams, train, training_environment
from .weights import load_model, save_model, weights_sha256

BRUTEFORCE_LIMIT = 1 << 26  # exhaustive accuracy only where d_vocab^K is at most this
# Canonical weights shipped with the package: the 151 paper seeds (Max-of-4, d_vocab 64)
# and, under archive/, the model behind every committed certificate. Every machine
# certifies these, whatever bits its own training would give.
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
IMPORTED = "imported"


@dataclass(frozen=True)
class StoredModel:
    """A model ready for the proofs. Seed models have `seed`; user models a `name`
    (or none) and their `source` file; `assumptions` are carried into every result."""
    cfg: Config
    seed: int | None
    weights: Weights
    meta: dict
    stem: Path | None

    @property
    def sha256(self) -> str:
        return self.meta["sha256"]

    @property
    def name(self) -> str | None:
        return self.meta.get("name")

    @property
    def source(self) -> str | None:
        return self.meta.get("source")

    @property
    def assumptions(self) -> tuple[str, ...]:
        return tuple(self.meta.get("assumptions") or ())

    @property
    def label(self) -> str:
        """How results name the model: 'seed 123', or the user model's name or id."""
        if self.seed is not None:
            return f"seed {self.seed}"
        return self.name or self.sha256[:12]

    @property
    def accuracy(self) -> float | None:
        """The certified exhaustive accuracy (computed once, where in reach), else None."""
        if "exhaustive" not in self.meta:
            self.meta["exhaustive"] = exhaustive_meta(self.cfg, self.weights)
        return (self.meta["exhaustive"] or {}).get("accuracy")

    def identity(self) -> dict:
        """The fields every JSON result carries to say which model it is about."""
        return {"seed": self.seed, "model": None if self.seed is not None else (self.name or self.sha256[:12]),
                "weights_sha256": self.sha256, "source": self.source,
                "assumptions": list(self.assumptions)}


def model_stem(models_dir: Path, cfg: Config, seed: int) -> Path:
    name = f"maxk-v{cfg.d_vocab}-k{cfg.n_ctx}-dm{cfg.d_model}-dh{cfg.d_head}"
    return models_dir / name / f"seed{seed}"


def bruteforce_meta(result: BruteForceResult) -> dict:
    return {"correct": result.correct, "total": result.total, "accuracy": result.accuracy,
            "exact_path_inputs": result.exact_path_inputs}


def exhaustive_meta(cfg: Config, weights: Weights, progress: bool = False) -> dict | None:
    """The certified exhaustive count where it is in reach (else None)."""
    if cfg.d_vocab ** cfg.n_ctx <= BRUTEFORCE_LIMIT:
        return bruteforce_meta(bruteforce(path_tables(weights), progress))
    return None


def get_model(cfg: Config, seed: int, models_dir: Path, params: TrainParams = TrainParams(),
              log=lambda msg: print(msg, file=sys.stderr), progress: bool = False) -> StoredModel:
    """The shipped model, else the cached one, else train it (and record its accuracy);
    progress: bars on stderr for the training and the exhaustive count (the CLI's)."""
    shipped = shipped_model(cfg, seed)
    if shipped is not None:
        return shipped
    stem = model_stem(models_dir, cfg, seed)
    if stem.with_suffix(".json").exists() and stem.with_suffix(".safetensors").exists():
        loaded_cfg, weights, meta = load_model(stem)
        if loaded_cfg != cfg or meta.get("seed") != seed:
            raise ModelError(f"{stem}: cached model does not match config {cfg} / seed {seed}")
        return StoredModel(cfg, seed, weights, meta, stem)
    log(f"training seed {seed} ({cfg.d_vocab=}, K={cfg.n_ctx}, {params.steps} steps)...")
    weights, loss = train(cfg, seed, params, progress=progress)
    meta = {"seed": seed, "training": params.to_dict(), "final_loss": loss,
            "trained_with": training_environment(), "exhaustive": exhaustive_meta(cfg, weights, progress)}
    save_model(stem, cfg, weights, meta)
    return StoredModel(cfg, seed, weights, load_model(stem)[2], stem)


def shipped_model(cfg: Config, seed: int) -> StoredModel | None:
    stem = model_stem(SHIPPED_DIR, cfg, seed)
    if not stem.with_suffix(".json").exists():
        return None
    loaded_cfg, weights, meta = load_model(stem)
    if loaded_cfg != cfg or meta.get("seed") != seed:
        raise ModelError(f"{stem}: shipped model does not match config {cfg} / seed {seed}")
    return StoredModel(cfg, seed, weights, meta, stem)


def shipped_by_digest(sha256: str) -> StoredModel | None:
    """A shipped model (canonical or archived) with these weights, if any."""
    for p in sorted(SHIPPED_DIR.rglob("*.json")):
        meta = json.loads(p.read_text(encoding="utf-8"))
        if meta.get("sha256") == sha256:
            return load_stored(p.with_suffix(""))
    return None


def retrain_against_shipped(cfg: Config, seed: int, params: TrainParams = TrainParams(),
                            log=lambda msg: print(msg, file=sys.stderr)) -> dict:
    """Train a seed that has a shipped model here, and say whether the bits agree.
    Nothing is written: every command keeps using the shipped model."""
    shipped = shipped_model(cfg, seed)
    assert shipped is not None
    log(f"training seed {seed} to compare with the shipped model ({params.steps} steps)...")
    weights, loss = train(cfg, seed, params, progress=True)
    local = weights_sha256(weights)
    return {"shipped_sha256": shipped.sha256, "local_sha256": local, "identical": local == shipped.sha256,
            "final_loss": loss, "trained_with": training_environment(),
            "shipped_trained_with": shipped.meta.get("trained_with")}


# --- imported user models --------------------------------------------------------------

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
ID_PATTERN = re.compile(r"^[0-9a-f]{8,64}$")


def imported_dir(models_dir: Path) -> Path:
    return models_dir / IMPORTED


def store_imported(models_dir: Path, cfg: Config, weights: Weights, *, source: str, fmt: str,
                   assumptions: tuple[str, ...], name: str | None,
                   log=lambda msg: print(msg, file=sys.stderr)) -> StoredModel:
    """Store a user's model under its weights' sha256 (idempotent); names are unique."""
    if name is not None and not NAME_PATTERN.match(name):
        raise ModelError(f"model name {name!r}: use 1-64 letters, digits, '_', '.', '-', starting with a letter")
    if name is not None and ID_PATTERN.match(name):
        raise ModelError(f"model name {name!r} looks like a model id (hex); choose another name")
    digest = weights_sha256(weights)
    for other in list_imported(models_dir):
        if name is not None and other.get("name") == name and other["sha256"] != digest:
            raise ModelError(f"the name {name!r} is taken by model {other['sha256'][:12]}; choose another")
    stem = imported_dir(models_dir) / digest
    if stem.with_suffix(".json").exists():  # the same weights again: same id
        _, _, meta = load_model(stem)
        if name is not None and meta.get("name") not in (None, name):
            raise ModelError(f"model {digest[:12]} is already stored as {meta['name']!r}")
        updates = {}
        if name is not None and meta.get("name") is None:
            updates["name"] = name
        if meta.get("assumptions") and not assumptions:  # now checked against a config
            updates["assumptions"] = []
        if updates:
            kept = {k: v for k, v in meta.items() if k not in ("sha256", "config")}
            save_model(stem, cfg, weights, {**kept, **updates})
        return load_stored(stem)
    log(f"computing the exhaustive accuracy of {source} ...")
    meta = {"seed": None, "name": name, "source": source, "format": fmt, "assumptions": list(assumptions),
            "exhaustive": exhaustive_meta(cfg, weights)}
    save_model(stem, cfg, weights, meta)
    return load_stored(stem)


def load_stored(stem: Path) -> StoredModel:
    cfg, weights, meta = load_model(stem)
    return StoredModel(cfg, meta.get("seed"), weights, meta, stem)


def list_imported(models_dir: Path) -> list[dict]:
    """The sidecars of the imported models (unreadable ones are skipped)."""
    out = []
    for p in sorted(imported_dir(models_dir).glob("*.json")):
        try:
            meta = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(meta, dict) and "sha256" in meta:
            out.append(meta)
    return out


def find_imported(models_dir: Path, ref: str) -> StoredModel:
    """An imported model by id (a sha256 prefix of at least 8 hex digits) or by name."""
    metas = list_imported(models_dir)
    if ID_PATTERN.match(ref):
        hits = [m for m in metas if m["sha256"].startswith(ref)]
        if not hits:  # a shipped model (e.g. the one behind an archived certificate)
            shipped = [p for p in sorted(SHIPPED_DIR.rglob("*.json"))
                       if json.loads(p.read_text(encoding="utf-8")).get("sha256", "").startswith(ref)]
            if len(shipped) == 1:
                return load_stored(shipped[0].with_suffix(""))
        if len(hits) > 1:
            raise ModelError(f"model id {ref!r} is ambiguous: {', '.join(m['sha256'][:12] for m in hits)}")
    else:
        hits = [m for m in metas if m.get("name") == ref]
    if not hits:
        known = ", ".join(f"{m.get('name') or '-'} ({m['sha256'][:12]})" for m in metas) or "none"
        raise ModelError(f"--model {ref}: no such file, and no imported model with that id (8 or more hex "
                         f"digits of its sha256) or name in {imported_dir(models_dir)} (imported: {known}); "
                         "`certify import PATH --config C` stores a model")
    return load_stored(imported_dir(models_dir) / hits[0]["sha256"])


def user_model(ref: str, models_dir: Path, config_path: Path | None, assume_architecture: bool,
               log=lambda msg: print(msg, file=sys.stderr)) -> StoredModel:
    """`--model REF`: a checkpoint file (imported in memory, checked), an id or a name."""
    from .importers import import_model
    path = Path(ref)
    if path.is_file():
        imp = import_model(path, config_path, assume_architecture)
        meta = {"seed": None, "name": None, "source": imp.source, "format": imp.format,
                "assumptions": list(imp.assumptions), "sha256": weights_sha256(imp.weights)}
        return StoredModel(imp.cfg, None, imp.weights, meta, None)
    if model_ref_is_path(ref, config_path is not None or assume_architecture):
        require_file(path, "checkpoint", f"--model {ref}")
    return find_imported(models_dir, ref)
