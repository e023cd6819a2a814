"""The README's tour works as written (with this test's broker, topic and paths)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import sluice
from sluice.sql import split_statements
from sluice.testing import LocalBroker, produce, wait_for

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_blocks() -> list[str]:
    text = README.read_text()
    tour = text[text.index("## A 5-minute tour") : text.index("### From Python")]
    return re.findall(r"```sql\n(.*?)```", tour, re.DOTALL)


def test_the_tour_runs_as_written(
    db_path: str, broker: LocalBroker, topic: Callable[..., str], tmp_path: Path
) -> None:
    name = topic(4)
    # The tour's `seq 1 1000 | awk ...` line, in Python.
    readings = [
        json.dumps({"id": i, "device": f"d{i % 5}", "reading": {"temp": 20 + (i % 13) / 2}})
        for i in range(1, 1001)
    ]
    produce(broker.bootstrap, name, [r.encode() for r in readings], partitions=4)
    trips = tmp_path / "trips"
    trips.mkdir()
    (trips / "a.csv").write_text('id,city,fare\n1,"Oslo",12.50\n2,"Lima",7.25\n')

    blocks = tour_blocks()
    assert len(blocks) == 4
    with sluice.connect(db_path) as db:

        def count() -> int:
            return int((db.execute("SELECT count(*) FROM readings").fetchone() or (0,))[0])

        for i, block in enumerate(blocks):
            block = block.replace("127.0.0.1:9092/sensors", f"{broker.bootstrap}/{name}")
            block = block.replace("/data/trips", str(trips))
            for statement in split_statements(block):
                result = db.execute(statement)
                result.fetchall()
                if "START PIPELINE readings" in statement:
                    wait_for(lambda: count() == 1000, message="the tour's 1,000 readings")
                if "SET OFFSETS EARLIEST" in statement:
                    wait_for(
                        lambda: (
                            db.execute(
                                "SELECT sum(ROWS_STREAMED) FROM information_schema."
                                "PIPELINES_BATCHES_SUMMARY WHERE PIPELINE_NAME = 'readings'"
                            ).fetchone()
                            == (2000,)
                        ),
                        message="the re-read",
                    )
            if i == 1:
                rows = db.execute("SELECT device, count(*) FROM readings GROUP BY 1").fetchall()
                assert sorted(rows) == [(f"d{k}", 200) for k in range(5)]
        assert count() == 1000
        assert db.execute("SHOW PIPELINES").fetchall() == [
            ("readings", "Stopped", None),
            ("trips", "Stopped", None),
        ]
        assert db.execute("SELECT city, fare FROM trips ORDER BY id").fetchall() == [
            ("Oslo", 12.5),
            ("Lima", 7.25),
        ]


def test_the_users_and_grants_example_runs_as_written() -> None:
    text = README.read_text()
    part = text[text.index("### Who may do what") :]
    block = re.findall(r"```sql\n(.*?)```", part, re.DOTALL)[0]
    with sluice.connect() as db:
        shown = []
        for statement in split_statements(block):
            result = db.execute(statement)
            if result.columns:
                shown.append(result.fetchall())
    assert shown == [
        [("analyst", "SELECT"), ("ops", "ALL")],
        [("GRANT SELECT ON *.* TO `analyst`@`%`",)],
    ]


def network_block(language: str, mentioning: str) -> str:
    text = README.read_text()
    section = text[text.index("## Over the network") : text.index("## The dashboard")]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)
    (block,) = [b for b in blocks if mentioning in b]
    return str(block)


def test_the_sqlalchemy_and_jdbc_examples_run_as_written(tmp_path: Path) -> None:
    from tests.server.conftest import PASSWORD, serving
    from tests.server.test_drivers import JAR

    with serving(str(tmp_path / "net.duckdb")) as server:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE readings (id INTEGER, device VARCHAR)")
            cur.execute("INSERT INTO readings SELECT i, 'd' || (i % 3) FROM range(30) t(i)")

        def as_here(code: str) -> str:
            return code.replace("3307", str(server.port)).replace("secret", PASSWORD)

        python = network_block("python", "sqlalchemy")
        out = subprocess.run(
            [sys.executable, "-c", as_here(python)], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert "['id', 'device']" in out.stdout and "d0" in out.stdout

        (tmp_path / "Example.java").write_text(as_here(network_block("java", "jdbc")))
        out = subprocess.run(
            ["java", "-cp", str(JAR), str(tmp_path / "Example.java")],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        # ids 11..29 by device: 6, 6, 7 (d0: 12..27, d1: 13..28, d2: 11..29)
        assert out.stdout.split("\n")[:3] == ["d0 6", "d1 6", "d2 7"]
