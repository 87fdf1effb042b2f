"""The proof summary table that `certify run` and `certify prove` print (at most 100 columns).

One FLOPs measure throughout: the paper's (`paper_flops`, what the README and the report
plot). Checker operations appear only for strategies with a Lean checker, since for the
others there is no separate checker whose work could be counted. The paper's 100 variants
and our gap variants are summarised by their best member per group unless every row is
asked for (`--all`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

WIDTH = 100
LABEL = 38
HEADER = f"{'strategy':<{LABEL}} {'bound':>9} {'ratio':>7} {'FLOPs':>8} {'checker ops':>11} {'seconds':>8}"

OUR_VARIANTS = "our gap variants (Python-checked)"


def group_of(r) -> str | None:
    """The section a result belongs to: None for the stand-alone proofs."""
    if r.group:
        return r.group
    return OUR_VARIANTS if r.strategy.startswith("gap/") else None


def short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def row(label: str, r, with_checker: bool) -> str:
    if r.error:
        return short(f"{label:<{LABEL}} FAILED: {r.error}", WIDTH)
    ratio = f"{r.ratio:.4f}" if r.ratio is not None else "-"
    flops = f"{r.paper_flops:.2e}" if r.paper_flops is not None else "-"
    checker = f"{r.checker_ops:.2e}" if with_checker else "-"
    return (f"{short(label, LABEL):<{LABEL}} {r.bound:>9.6f} {ratio:>7} {flops:>8} {checker:>11} "
            f"{r.seconds + r.search_seconds:>8.2f}")


def wrapped_name(name: str, indent: str = "    = ") -> list[str]:
    """A long strategy name on continuation lines, broken after '/' to stay in WIDTH."""
    lines, cur = [], indent
    for part in name.split("/"):
        piece = part if cur in (indent,) else "/" + part
        if len(cur) + len(piece) > WIDTH and cur.strip(" =/"):
            lines.append(cur + "/")
            cur, piece = " " * len(indent), part
        cur += piece
    lines.append(cur)
    return lines


def best(rows: Sequence) -> object:
    """Highest bound; among equal bounds the cheapest (paper FLOPs); failures last."""
    return max(rows, key=lambda r: (r.error is None, r.count, -(r.paper_flops or 0)))


def proof_table(results: Iterable, checked: Iterable[str], show_all: bool = False) -> list[str]:
    """Header, the stand-alone proofs, then one section per group (its best member, or all)."""
    checked = set(checked)
    results = list(results)
    lines = [HEADER, "-" * len(HEADER)]
    sections: dict[str, list] = {}
    for r in results:
        g = group_of(r)
        if g is None:
            lines.append(row(r.strategy, r, r.strategy in checked))
        else:
            sections.setdefault(g, []).append(r)
    for g, rs in sections.items():
        title = g if g == OUR_VARIANTS else f"the paper's family, {g}"
        lines.append(f"{title}: {len(rs)} variants")
        for r in (rs if show_all else [best(rs)]):
            lines.append(row("  " + (r.strategy if show_all else f"best of {len(rs)}"), r, r.strategy in checked))
            if not show_all or len(r.strategy) + 2 > LABEL:
                lines.extend(wrapped_name(r.strategy))
    if sections and not show_all:
        lines.append(f"(best of each group by bound; --all lists all {sum(map(len, sections.values()))})")
    lines.append("FLOPs: the paper's measure; checker ops: the Lean checker's integer operations (gap only)")
    return lines


def lean_status_line(lean: dict) -> str:
    """The last line of `certify run`: did Lean itself check the certificate here?"""
    if lean.get("lean") == "checked":
        return f"Lean: lake build checked the certificate ({lean.get('lean_seconds')} s)"
    return ("Lean: NOT checked here: lake is not on PATH (the Python mirror checked it; to run Lean:\n"
            "      install elan, then `lake build` in the Lean directory, as .github/workflows/lean.yml does)")
