from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from sluice.broker import free_port
from sluice.testing import Spawned

PASSWORD = "s3cret-pw"


@dataclass
class Server:
    port: int
    db_path: str
    process: Spawned
    http_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def connect(self, **kwargs: object) -> pymysql.connections.Connection:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password=PASSWORD, autocommit=True,
            **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip


@contextmanager
def serving(database: str) -> Iterator[Server]:
    """A real `sluice serve` process on ``database`` (a file or a PostgreSQL URL). Leaving the
    block sends SIGTERM and checks the clean exit; the process never outlives the block."""
    port, http_port = free_port(), free_port()
    with Spawned(
        [sys.executable, "-m", "sluice.cli", "serve", "--store", database, "--mysql-port",
         str(port), "--http-port", str(http_port), "--password", PASSWORD],
    ) as process:  # fmt: skip
        process.wait_for_line("Ctrl-C to stop", timeout=60)
        yield Server(port, database, process, http_port)
        # SIGTERM: pipelines finish their batch, the database closes cleanly.
        assert process.stop() == 0, process.output[-3000:]
        assert "the database is closed" in process.output


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A real `sluice serve` process on its own database file and port."""
    with serving(str(tmp_path / "served.duckdb")) as running:
        yield running
