"""Progress bars on stderr (tqdm) for work that can take more than a few seconds.

Off unless the caller asks (`enabled`), so library calls stay quiet (sweep workers,
tests) and only the CLI shows them; stdout is never written, so `--json` stays one
object. A bar appears only after 2 s, so quick steps print nothing.
"""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def steps(iterable: Iterable[T], desc: str, enabled: bool, total: int | None = None,
          unit: str = "it", delay: float = 2.0) -> Iterator[T] | Iterable[T]:
    """`iterable`, with a bar on stderr when `enabled` (shown once `delay` seconds pass)."""
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False, delay=delay,
                mininterval=0.5, dynamic_ncols=True)
