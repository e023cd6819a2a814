"""SIGTERM handled as Ctrl-C, so that a long-running command has one way to stop cleanly."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger("sluice")


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, the first SIGTERM or SIGINT raises ``KeyboardInterrupt`` in the main
    thread; later ones are ignored while the command stops (its ``finally`` blocks stop its
    children and close its database), so a second signal cannot cut that short."""
    stopping = False

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            log.warning("already stopping (%s ignored)", signal.Signals(signum).name)
            return
        stopping = True
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
