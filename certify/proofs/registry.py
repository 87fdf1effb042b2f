"""The strategy registry: every proof strategy by name, in a fixed order.

Adding a strategy family: write one module with a function `strategies()` that returns
{name: runner} (a runner takes a `strategies.ProofInput` and returns a
`strategies.ProofResult`), and add the module's name to FAMILIES below. Names must be
unique (a duplicate is an error); listings and CSV columns follow this order.

ALIASES maps old names to new ones for one release: `subcubic` (our gap proof, now
`gap`) and `subcubic/<direct>/<attention>/<positions>` (now `gap/...`). The paper's
family uses `subcubic/<EUPU>/<attention>/<attention_error>` (four segments with the
paper's values), which never collide with the aliases' three-segment names.
"""

from __future__ import annotations

import importlib
from typing import Callable

STRATEGIES: dict[str, Callable] = {}
ALIASES: dict[str, str] = {}

# one line per family module, in listing order (the built-in strategies register first)
FAMILIES = (
    "certify.proofs.paper_family",
)


def register(name: str, run: Callable) -> None:
    if name in STRATEGIES or name in ALIASES:
        raise ValueError(f"strategy {name!r} is registered twice")
    STRATEGIES[name] = run


def alias(old: str, new: str) -> None:
    if old in STRATEGIES or old in ALIASES:
        raise ValueError(f"alias {old!r} collides with a registered name")
    ALIASES[old] = new


def load_families() -> None:
    for module in FAMILIES:
        for name, run in importlib.import_module(module).strategies().items():
            register(name, run)


def canonical(name: str) -> str:
    return ALIASES.get(name, name)
