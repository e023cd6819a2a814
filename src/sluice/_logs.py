"""Logging that stays readable when a library repeats itself (librdkafka logs every failed
connection attempt, ~100 lines a second against an unreachable broker)."""

from __future__ import annotations

import logging
import re
import threading
import time

_VARYING = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s)\b")  # "after 0ms": the same message
_REMEMBERED = 1_000  # distinct messages kept before those not repeated lately are forgotten


class RepeatFilter(logging.Filter):
    """Lets each distinct message through at most once per ``interval`` seconds. The first
    one passes at once; repeats are counted, and the next that passes after the interval says
    how many were left out. ``flush()`` logs the counts still pending."""

    def __init__(self, interval: float = 30.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], tuple[float, int, logging.LogRecord]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, _VARYING.sub("#", record.getMessage()))
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.interval:
                self._seen[key] = (last[0], last[1] + 1, record)
                return False
            repeats = last[1] if last is not None else 0
            self._seen[key] = (now, 0, record)
            if len(self._seen) > _REMEMBERED:  # a long-running process: stay bounded
                self._forget(now)
        if repeats:
            _mention_repeats(record, repeats, now - last[0] if last else 0.0)
        return True

    def _forget(self, now: float) -> None:
        """Drop what passed more than ``interval`` ago and has not been repeated since (a
        repeat arriving later simply passes again)."""
        for key, (since, n, _) in list(self._seen.items()):
            if n == 0 and now - since >= self.interval:
                del self._seen[key]

    def flush(self, logger: logging.Logger) -> None:
        """Log, once, each message of ``logger`` repeated since it last passed, with the count."""
        with self._lock:
            pending = [(k, v) for k, v in self._seen.items() if v[1] and k[0] == logger.name]
            for key, _ in pending:
                del self._seen[key]
        now = time.monotonic()
        for _, (since, n, record) in pending:
            _mention_repeats(record, n, now - since)
            logger.handle(record)


def _mention_repeats(record: logging.LogRecord, n: int, seconds: float) -> None:
    record.msg = f"{record.getMessage()} (and {n} more like it in {seconds:.1f} s)"
    record.args = None
