"""FS pipelines: each file loads once, new files are picked up, file states are visible."""

from __future__ import annotations

from pathlib import Path

import sluice
from sluice.testing import wait_for


def write(path: Path, rows: range) -> None:
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in rows))


def files(db: sluice.Connection) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT FILE_NAME, FILE_STATE FROM information_schema.PIPELINES_FILES ORDER BY 1"
    ).fetchall()
    return [(Path(name).name, state) for name, state in rows]


def test_each_file_loads_once_and_new_files_are_picked_up(
    db: sluice.Connection, tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    write(data / "a.csv", range(0, 100))
    write(data / "b.csv", range(100, 250))
    (data / "ignored.txt").write_text("not matched by the glob")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{data}/*.csv' INTO TABLE t "
        "FIELDS TERMINATED BY ',' IGNORE 1 LINES"
    )
    batches = db.execute("START PIPELINE p FOREGROUND").fetchall()
    assert [b[1] for b in batches] == [250]
    assert files(db) == [("a.csv", "Loaded"), ("b.csv", "Loaded")]
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []  # nothing loads twice

    db.execute("START PIPELINE p")
    write(data / "c.csv", range(250, 300))
    wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (300,), message="c.csv")
    db.execute("STOP PIPELINE p")
    assert files(db)[-1] == ("c.csv", "Loaded")
    assert db.execute("SELECT sum(id), max(name) FROM t").fetchone() == (sum(range(300)), "n99")
    size = db.execute(
        "SELECT FILE_SIZE FROM information_schema.PIPELINES_FILES WHERE FILE_NAME LIKE '%c.csv'"
    ).fetchone()
    assert size == ((data / "c.csv").stat().st_size,)


def test_json_lines_files_and_drop_file_reloads(db: sluice.Connection, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"id": 1, "v": "a"}\n{"id": 2, "v": "b"}\n\n')
    db.execute("CREATE TABLE t (id INTEGER, v VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.json' INTO TABLE t "
        "FORMAT JSON (id <- id, v <- v)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
    db.execute(f"ALTER PIPELINE p DROP FILE '{tmp_path}/x.json'")
    assert files(db) == [("x.json", "Unloaded")]
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (4,)
