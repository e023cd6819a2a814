"""The ``sluice`` command, run as a user runs it."""

from __future__ import annotations

import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.broker import free_port
from sluice.testing import Spawned, wait_for

SLUICE = [sys.executable, "-m", "sluice.cli"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SLUICE, *args], capture_output=True, text=True, timeout=timeout)


def test_sql_prints_aligned_tables(database: str) -> None:
    out = run("sql", "--store", database, "-e", "CREATE TABLE t (id INT, name VARCHAR); "
              "INSERT INTO t VALUES (1, 'a'), (22, NULL); SELECT * FROM t ORDER BY id")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "OK",
        "OK, 2 rows affected",
        "+----+------+",
        "| id | name |",
        "+----+------+",
        "| 1  | a    |",
        "| 22 | NULL |",
        "+----+------+",
        "2 rows",
    ]


def test_sql_file_and_one_line_errors(tmp_path: Path) -> None:
    script = tmp_path / "s.sql"
    script.write_text("SELECT 1 AS x;\nCREATE PIPELINE p AS LOAD DATA KAFKA INTO TABLE t;\n")
    out = run("sql", "-f", str(script))
    assert out.returncode == 1
    assert "| x |" in out.stdout
    assert out.stderr.splitlines() == [
        "Error: expected the KAFKA address as a quoted string, found 'INTO' (line 1, column 38)"
    ]
    out = run("sql", "-e", "SELECT * FROM missing_table")
    assert out.returncode == 1 and out.stderr.startswith("Error: Catalog Error")
    assert len(out.stderr.splitlines()) == 1


def test_an_unreachable_postgresql_is_named_with_the_reason() -> None:
    port = free_port()  # nothing listens there
    out = run("sql", "--store", f"postgresql://sluice:pw@127.0.0.1:{port}/plant", "-e", "SELECT 1")
    assert out.returncode == 1
    assert out.stderr.startswith(f"Error: cannot connect to PostgreSQL 127.0.0.1:{port}/plant: ")
    assert "Connection refused" in out.stderr and "pw" not in out.stderr


def test_a_locked_database_names_the_process_holding_it(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    holder = Spawned(
        [sys.executable, "-c", f"import sluice, sys; c = sluice.connect({db!r}); "
         "print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    with holder:
        holder.wait_for_line("open")
        out = run("sql", "--db", db, "-e", "SELECT 1")
        assert out.returncode == 1
        assert f"in use by process {holder.pid}" in out.stderr
        assert "run your statements in that process, or stop it first" in out.stderr
        assert holder.process.stdin is not None
        holder.process.stdin.close()  # the holder reads to the end of its input, then exits
        assert holder.wait() == 0


def refuses(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()  # ended and reaped


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_broker_stops_with_its_child_on_sigint_and_sigterm(sig: int) -> None:
    port = free_port()
    with Spawned([*SLUICE, "broker", "--port", str(port)]) as proc:
        proc.wait_for_line(f"listening on 127.0.0.1:{port}")
        from sluice.broker import admin

        wait_for(lambda: admin(f"127.0.0.1:{port}").list_topics(timeout=2) is not None)
        (tansu,) = children(proc.pid)
        proc.send(sig)
        assert proc.wait(30) == 0, proc.output
        assert "broker stopped" in proc.output
    assert refuses(port)  # nothing listens any more
    wait_for(lambda: gone(tansu), timeout=10, message="the broker's own process to be gone")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_closes_the_database_on_sigint_and_sigterm(sig: int, tmp_path: Path) -> None:
    port = free_port()
    command = [*SLUICE, "serve", "--db", str(tmp_path / "s.duckdb"), "--mysql-port", str(port),
               "--http-port", str(free_port())]  # fmt: skip
    with Spawned(command) as proc:
        proc.wait_for_line("MySQL protocol on")
        proc.send(sig)
        assert proc.wait(30) == 0, proc.output
        assert "the database is closed" in proc.output
    assert refuses(port)


def test_demo_runs_serves_and_loads_everything_exactly_once() -> None:
    with Spawned([*SLUICE, "demo", "--duration", "6", "--rate", "5000"]) as demo:
        line = demo.wait_for_line("mariadb -h 127.0.0.1", timeout=120)
        command = shlex.split(line)
        assert command[:5] == ["mariadb", "-h", "127.0.0.1", "-P", command[4]]
        if shutil.which("mariadb"):  # the printed line works while the demo runs
            queried = subprocess.run(command, capture_output=True, text=True, timeout=30)
            assert queried.returncode == 0, queried.stderr
            assert queried.stdout.splitlines()[0] == "count_star()"
        assert demo.wait(180) == 0, demo.output
    assert "exactly once" in demo.output
    assert "Riskiest drills by predicted health" in demo.output
    assert "loaded and scored" in demo.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_stops_cleanly_on_sigint_and_sigterm(sig: int) -> None:
    with Spawned([*SLUICE, "demo", "--rate", "2000"]) as demo:
        line = demo.wait_for_line("Broker (Tansu, in memory) on", timeout=60)
        broker_port = int(line.rsplit(":", 1)[1])
        demo.wait_for_line("loaded", timeout=120)  # running: rows are arriving
        demo.send(sig)
        assert demo.wait(120) == 0, demo.output
    assert "exactly once" in demo.output
    assert refuses(broker_port)


def test_interactive_shell_reads_statements_across_lines(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    session = (
        "CREATE TABLE t (a INT);\nINSERT INTO t\n  VALUES (41 + 1);\nSELECT a\nFROM t;\nexit\n"
    )
    out = subprocess.run(
        [*SLUICE, "sql", "--db", db], input=session, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "| 42 |" in out.stdout
    assert "OK, 1 rows affected" in out.stdout


def test_an_unreachable_broker_is_named_without_a_flood_of_librdkafka_lines() -> None:
    port = free_port()  # nothing listens there
    out = run("sql", "-e", "CREATE TABLE t (id INT); CREATE PIPELINE p AS LOAD DATA KAFKA "
              f"'127.0.0.1:{port}/t' INTO TABLE t FORMAT JSON (id <- id)")  # fmt: skip
    assert out.returncode == 1
    assert f"Error: cannot reach Kafka at 127.0.0.1:{port}" in out.stderr
    lines = out.stderr.splitlines()
    refused = [line for line in lines if "Connection refused" in line]
    assert 1 <= len(refused) <= 2, lines[:5]  # the line once, then how often it repeated
    assert len(lines) <= 4, lines
