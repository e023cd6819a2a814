"""The ``sluice`` command, run as a user runs it."""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sluice.broker import free_port
from sluice.testing import wait_for

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
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sluice, sys; c = sluice.connect({db!r}); "
         "print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        out = run("sql", "--db", db, "-e", "SELECT 1")
        assert out.returncode == 1
        assert f"in use by process {holder.pid}" in out.stderr
        assert "run your statements in that process, or stop it first" in out.stderr
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()


def test_broker_serves_and_stops_on_ctrl_c() -> None:
    port = free_port()
    proc = subprocess.Popen([*SLUICE, "broker", "--port", str(port)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert f"listening on 127.0.0.1:{port}" in proc.stdout.readline()
        from sluice.broker import admin

        wait_for(lambda: admin(f"127.0.0.1:{port}").list_topics(timeout=2) is not None)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert "broker stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    with pytest.raises(OSError):  # nothing listens any more
        import socket

        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_demo_runs_serves_and_loads_everything_exactly_once() -> None:
    start = time.monotonic()
    demo = subprocess.Popen(
        [*SLUICE, "demo", "--duration", "6", "--rate", "5000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert demo.stdout is not None
    lines = []
    for line in demo.stdout:  # up to the line it prints for the mariadb client
        lines.append(line)
        if line.strip().startswith("mariadb -h 127.0.0.1"):
            break
    command = shlex.split(lines[-1])
    assert command[:5] == ["mariadb", "-h", "127.0.0.1", "-P", command[4]]
    if shutil.which("mariadb"):  # the printed line works while the demo runs
        queried = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert queried.returncode == 0, queried.stderr
        assert queried.stdout.splitlines()[0] == "count_star()"
    out, err = demo.communicate(timeout=120)
    assert demo.returncode == 0, err
    assert "exactly once" in out
    assert "Hottest drills" in out
    assert time.monotonic() - start < 90


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
