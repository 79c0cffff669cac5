"""A progress bar on stderr for the command line, shown only when stderr is a terminal (tqdm).

One small function interface so every command that reads a room shows progress the same way:

    with progress_bar(unit="users") as update:
        update(done, total)   # total 0 while unknown
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

Update = Callable[[int, int], None]


def _ignore(done: int, total: int) -> None:
    del done, total


@contextmanager
def progress_bar(*, unit: str = "users", file: TextIO | None = None) -> Iterator[Update]:
    """Yield `update(done, total)`. On a terminal it draws a bar that is cleared when the block ends;
    otherwise (pipes, files, tests) it prints nothing at all."""
    stream = sys.stderr if file is None else file
    if not stream.isatty():
        yield _ignore
        return
    bar = tqdm(total=None, unit=unit, unit_scale=True, file=stream, leave=False, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if total and bar.total != max(total, done):
            bar.total = max(total, done)
            bar.refresh()
        if done > bar.n:
            bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
