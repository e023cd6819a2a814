from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sluice
from sluice.testing import LocalBroker, create_topic, delete_topics, unique_name


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as b:
        yield b


@pytest.fixture
def topic(broker: LocalBroker) -> Iterator[Callable[..., str]]:
    """Factory: ``topic(partitions=4)`` creates a uniquely named topic, deleted afterwards."""
    made: list[str] = []

    def make(partitions: int = 4) -> str:
        name = unique_name("t")
        create_topic(broker.bootstrap, name, partitions)
        made.append(name)
        return name

    yield make
    delete_topics(broker.bootstrap, made)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "test.duckdb")


@pytest.fixture
def db(db_path: str, topic: Callable[..., str]) -> Iterator[sluice.Connection]:
    # Depends on `topic` so that it closes (stopping its consumers) before the test's topics
    # are deleted: librdkafka 2.16 can crash when a topic is deleted under an assigned consumer.
    conn = sluice.connect(db_path)
    yield conn
    conn.close()
