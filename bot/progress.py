"""A progress bar on stderr for the command line (`python -m bot query`), drawn with tqdm, shown only when the
stream is a terminal.

One small function interface so every command that reads a room shows progress the same way:

    with progress_bar("Reading room lobby") as update:
        update(done, total)   # total 0 while unknown

When the stream is a pipe or a file (scripts, CI, the tests), `update` does nothing and nothing is written, so
the output stays exactly what it was.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

# Called with (users read so far, users ZIM reports in the room; 0 while unknown).
Update = Callable[[int, int], None]


def _ignore(done: int, total: int) -> None:
    del done, total


@contextmanager
def progress_bar(description: str = "", *, unit: str = "users", file: TextIO | None = None) -> Iterator[Update]:
    """Yield `update(done, total)`. On a terminal (`file`, stderr by default) it draws a bar that is cleared
    when the block ends, so what follows reads as if it had never been there; otherwise it prints nothing."""
    stream = sys.stderr if file is None else file
    if not stream.isatty():
        yield _ignore
        return
    # A terminal that reports no size (a bare pty) would get no bar at all; draw it 80 by 24 there.
    sized = _columns(stream) > 0
    with tqdm(
        total=None,
        desc=description or None,
        unit=f" {unit}",
        file=stream,
        leave=False,
        dynamic_ncols=sized,
        ncols=None if sized else 80,
        nrows=None if sized else 24,
        mininterval=0.2,
    ) as bar:

        def update(done: int, total: int) -> None:
            if total and bar.total != max(total, done):
                bar.total = max(total, done)
            if done > bar.n:
                bar.update(done - bar.n)
                if bar.total and done >= bar.total:
                    bar.refresh()  # the last step is drawn even within mininterval of the one before

        yield update


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0
