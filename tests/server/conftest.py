from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from sluice.broker import free_port
from sluice.testing import wait_for

PASSWORD = "s3cret-pw"


@dataclass
class Server:
    port: int
    db_path: str
    process: subprocess.Popen[str]

    def connect(self, **kwargs: object) -> pymysql.connections.Connection:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password=PASSWORD, autocommit=True,
            **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip


@contextmanager
def serving(database: str) -> Iterator[Server]:
    """A real `sluice serve` process on ``database`` (a file or a PostgreSQL URL)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", "serve", "--store", database, "--mysql-port",
         str(port), "--password", PASSWORD],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    wait_for(lambda: "MySQL protocol on" in process.stdout.readline(), timeout=30)  # type: ignore[union-attr]
    yield Server(port, database, process)
    process.terminate()  # SIGTERM: pipelines finish their batch, the database closes cleanly
    assert process.wait(30) == 0
    assert "the database is closed" in process.stdout.read()
    process.stdout.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A real `sluice serve` process on its own database file and port."""
    with serving(str(tmp_path / "served.duckdb")) as running:
        yield running
