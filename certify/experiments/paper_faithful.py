"""`--paper-faithful`: the paper's own computation beside our sound one, per variant.

Each row says what the paper's computation certifies on the model (`count`, marked
`"faithful": true` and with the unsound steps it takes), what our sound variant of the
same name certifies (`sound_count`), and the difference. `sweep --paper-faithful` writes
these rows for many seeds to a JSON-lines file, resumable, one line per (seed, strategy).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..modelio.config import Config
from ..proofs.paper_faithful import FAITHFUL_VARIANTS, PaperTables, run_faithful, run_faithful_cubic

FAITHFUL_NAMES = ["cubic", *FAITHFUL_VARIANTS]


def resolve_faithful(spec: str) -> list[str]:
    """'all' (cubic and every variant with a faithful implementation) or a comma list."""
    if spec == "all":
        return list(FAITHFUL_NAMES)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAITHFUL_NAMES]
    if unknown or not names:
        raise ValueError(f"--paper-faithful has no faithful implementation of {', '.join(unknown) or spec!r}; "
                         f"it covers cubic and {len(FAITHFUL_VARIANTS)} of the paper's 100 subcubic variants "
                         f"(see `certify strategies`, docs/paper-faithful.md), or 'all'")
    return names


def faithful_rows(cfg: Config, weights, names: list[str], progress: bool = False) -> list[dict]:
    """One row per variant: the paper's computation and ours (sound) on one model."""
    from ..proofs.strategies import prove_many
    tables = PaperTables.of(weights, cfg.d_head)
    sound = {r.strategy: r for r in prove_many(cfg, weights, names, on_error="record")}
    rows = []
    it = names
    if progress:
        from tqdm import tqdm
        it = tqdm(names, desc="paper-faithful", unit="variant", leave=False)
    for name in it:
        t0 = time.perf_counter()
        r = run_faithful_cubic(tables) if name == "cubic" else run_faithful(tables, name)
        s = sound[name]
        rows.append({"strategy": name, "faithful": True, "count": r.count, "total": r.total,
                     "bound": r.count / r.total, "unsound_steps": list(r.unsound_steps),
                     "unsound-step": ", ".join(r.unsound_steps), "seconds": round(time.perf_counter() - t0, 3),
                     "sound_count": None if s.error else s.count,
                     "sound_minus_faithful": None if s.error else s.count - r.count})
    return rows


def faithful_line(row: dict) -> str:
    sound = "-" if row["sound_count"] is None else f"{row['sound_count']} ({row['sound_minus_faithful']:+d})"
    return (f"{row['strategy']}  paper's computation {row['count']} / {row['total']}  "
            f"[unsound-step: {row['unsound-step']}]  ours (sound) {sound}")


def faithful_sweep(seeds: list[int], names: list[str], out: Path, cfg: Config, models_dir: Path,
                   progress: bool = True) -> dict:
    """Rows for every (seed, variant) into `out` (JSON lines), skipping those present; each
    seed's rows are appended and flushed together once computed."""
    from ..modelio.store import get_model
    done: set[tuple[int, str]] = set()
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done.add((row["seed"], row["strategy"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    t0, written = time.perf_counter(), 0
    for seed in seeds:
        todo = [n for n in names if (seed, n) not in done]
        if not todo:
            continue
        m = get_model(cfg, seed, models_dir)
        rows = faithful_rows(m.cfg, m.weights, todo, progress=progress)
        with out.open("a") as f:
            for row in rows:
                f.write(json.dumps({"seed": seed, "k": cfg.n_ctx, "d_vocab": cfg.d_vocab, **row}, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        written += len(rows)
    return {"jsonl": str(out), "rows_written": written, "rows_skipped": len(done),
            "seconds": round(time.perf_counter() - t0, 1), "faithful": True}
