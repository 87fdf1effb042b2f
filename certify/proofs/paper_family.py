"""Registers the paper's 100 subcubic proofs (`paper_subcubic`) as strategies."""

from __future__ import annotations

from typing import Callable

from .paper_subcubic import PAPER_VARIANTS, Shared, run_paper_variant


def _shared(p) -> Shared:
    """One `Shared` per proof input: the 100 variants share their pieces."""
    cache = p.__dict__.setdefault("_paper_shared", None)
    if cache is None:
        cache = Shared(p.weights, p.cfg.d_head)
        p.__dict__["_paper_shared"] = cache
    return cache


def _runner(name: str) -> Callable:
    def run(p):
        from .strategies import ProofResult
        cfg = p.cfg
        r = run_paper_variant(_shared(p), name, cfg.d_vocab, cfg.n_ctx, cfg.d_model)
        return ProofResult(name, r.count, cfg.d_vocab ** cfg.n_ctx, r.flops, 0, r.unexplained_dimension,
                           r.check_seconds, r.search_seconds, accuracy=p.accuracy, witness=r.gaps,
                           paper_flops=r.flops, group=r.group)
    return run


def strategies() -> dict[str, Callable]:
    return {name: _runner(name) for name in PAPER_VARIANTS}
