"""Helpers for testing code that uses Sluice: a local broker, producing, waiting on conditions.

Everything here talks to real components (the bundled Kafka-compatible broker, real files);
nothing is faked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from confluent_kafka import Producer

from sluice.broker import LocalBroker, create_topic, delete_topics

T = TypeVar("T")

__all__ = ["LocalBroker", "create_topic", "delete_topics", "produce", "unique_name", "wait_for"]


def unique_name(prefix: str) -> str:
    """A name no other test uses: ``prefix_1a2b3c4d``."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def wait_for(
    condition: Callable[[], T],
    timeout: float = 30.0,
    message: str = "condition",
    poll: float = 0.02,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(poll)


def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes],
    *,
    partitions: int | None = None,
    keys: Sequence[bytes] | None = None,
) -> int:
    """Send ``values`` (round-robin over ``partitions`` when given) and wait for delivery."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 3})
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    n = 0
    for n, value in enumerate(values, start=1):
        partition = (n - 1) % partitions if partitions else -1  # -1: the partitioner decides
        key = keys[n - 1] if keys is not None else None
        while True:
            try:
                producer.produce(topic, value, key, partition, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"{remaining} messages undelivered; errors: {failures[:3]}")
    return n
