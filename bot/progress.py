"""A progress bar for long reads on a terminal (`python -m bot query`), drawn with tqdm on stderr.

Only a terminal gets one: when stderr is a pipe or a file (scripts, CI, the tests), nothing is written, so
the output stays exactly what it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

# Called with (users read so far, users ZIM reports in the room; 0 while unknown).
ShowProgress = Callable[[int, int], None]


@contextmanager
def progress_bar(stream: TextIO, description: str) -> Iterator[ShowProgress | None]:
    """A bar on `stream` while the block runs, or None when `stream` is not a terminal. It is cleared at the
    end, so what follows on the terminal reads as if it had never been there."""
    if not stream.isatty():
        yield None
        return
    # A terminal that reports no size (a bare pty) would get no bar at all; draw it 80 by 24 there.
    sized = _columns(stream) > 0
    with tqdm(
        total=None,
        desc=description,
        unit=" users",
        file=stream,
        leave=False,
        dynamic_ncols=sized,
        ncols=None if sized else 80,
        nrows=None if sized else 24,
        mininterval=0.2,
    ) as bar:

        def show(users_read: int, expected: int) -> None:
            if expected and bar.total != max(expected, users_read):
                bar.total = max(expected, users_read)
            if users_read != bar.n:
                bar.update(users_read - bar.n)
                if bar.total and users_read >= bar.total:
                    bar.refresh()  # the last step is drawn even within mininterval of the one before

        yield show


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0
