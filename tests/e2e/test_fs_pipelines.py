"""FS pipelines: each file loads once, new files are picked up, file states are visible."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import sluice
from sluice.sources.fs import FileSource
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


def test_a_file_still_being_written_is_left_until_it_settles(tmp_path: Path) -> None:
    """A file modified within the settling time is not read (a writer caught half way, as `cp`
    into the directory is, would load cut short); once it has not changed for that long, it is.
    The settling time is an hour here, so the test cannot race the clock."""
    source = FileSource(f"{tmp_path}/*.csv", {}, settle=3600)
    (tmp_path / "old.csv").write_text("1\n")
    os.utime(tmp_path / "old.csv", (time.time() - 7200,) * 2)
    with open(tmp_path / "w.csv", "w") as writer:
        writer.write("2\n3")
        writer.flush()
        parts = source.extract({}, 100, wait=0)
        assert [(Path(part.partition).name, part.data) for part in parts] == [("old.csv", b"1\n")]
        writer.write("\n4\n")
    os.utime(tmp_path / "w.csv", (time.time() - 7200,) * 2)
    parts = source.extract({str(tmp_path / "old.csv"): 1}, 100, wait=0)
    assert [(Path(part.partition).name, part.data) for part in parts] == [("w.csv", b"2\n3\n4\n")]


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


def test_a_file_larger_than_a_batch_loads_in_pieces_cut_between_records(
    db: sluice.Connection, tmp_path: Path
) -> None:
    """CSV with a header, quoted fields holding line breaks and a doubled quote: loaded over
    several batches, none holding more than max_bytes_per_batch (+ one record), exactly once."""
    rows = [(i, f'line {i}\nsecond "line"' if i % 3 == 0 else f"plain {i}") for i in range(300)]
    text = "id,note\n" + "".join('{},"{}"\n'.format(i, note.replace('"', '""')) for i, note in rows)
    (tmp_path / "big.csv").write_text(text)
    budget = 1_000
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, note VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.csv' "
        f"CONFIG '{{\"max_bytes_per_batch\": {budget}}}' INTO TABLE t "
        "FIELDS TERMINATED BY ',' ENCLOSED BY '\"' IGNORE 1 LINES"
    )
    first = db.execute("START PIPELINE p FOREGROUND LIMIT 1 BATCHES").fetchall()
    assert 0 < first[0][1] < len(rows)
    assert files(db) == [("big.csv", "Loading")]
    db.execute("START PIPELINE p FOREGROUND")
    assert files(db) == [("big.csv", "Loaded")]
    assert db.execute("SELECT id, note FROM t ORDER BY id").fetchall() == rows
    sizes = db.execute(
        "SELECT MB_STREAMED * 1e6 FROM information_schema.PIPELINES_BATCHES_SUMMARY"
    ).fetchall()
    assert len(sizes) >= len(text) // budget
    assert max(s for (s,) in sizes) <= budget
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []  # nothing loads twice


def test_many_files_share_the_byte_budget_of_a_batch(db: sluice.Connection, tmp_path: Path) -> None:
    for k in range(6):
        (tmp_path / f"f{k}.json").write_text(
            "".join(f'{{"id": {1000 + k * 100 + i}}}\n' for i in range(100))  # one size
        )
    size = (tmp_path / "f0.json").stat().st_size
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.json' "
        f"CONFIG '{{\"max_bytes_per_batch\": {2 * size}}}' INTO TABLE t FORMAT JSON (id <- id)"
    )
    batches = db.execute("START PIPELINE p FOREGROUND").fetchall()
    assert [b[1] for b in batches] == [200, 200, 200]
    assert db.execute("SELECT count(DISTINCT id) FROM t").fetchone() == (600,)


def test_unknown_and_bad_fs_config_are_named(db: sluice.Connection, tmp_path: Path) -> None:
    db.execute("CREATE TABLE t (id INTEGER)")
    create = f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.json' CONFIG '{{}}' " + (
        "INTO TABLE t FORMAT JSON (id <- id)"
    )
    with pytest.raises(sluice.SluiceError, match=r"valid keys: \['files_per_batch', 'max_b"):
        db.execute(create.replace("{}", '{"max_bytes": 5}'))
    with pytest.raises(sluice.SluiceError, match="max_bytes_per_batch must be an integer >= 1"):
        db.execute(create.replace("{}", '{"max_bytes_per_batch": 0}'))


def test_show_pipelines_like_and_clauses_with_no_effect(
    db: sluice.Connection, tmp_path: Path
) -> None:
    db.execute("CREATE TABLE t (v INTEGER)")
    for name in ("sensors_a", "sensors_b", "trips"):
        result = db.execute(
            f'CREATE PIPELINE {name} AS LOAD DATA FS "{tmp_path}/*.csv" '
            "DISABLE OFFSETS METADATA GC INTO TABLE t"
        )
        assert result.warnings == [
            "ENABLE/DISABLE OFFSETS METADATA GC is accepted for compatibility and has no effect "
            "in Sluice"
        ]
    shown = db.execute("SHOW PIPELINES LIKE 'SENSORS%'").fetchall()
    assert [name for name, _, _ in shown] == ["sensors_a", "sensors_b"]
    assert [n for n, _, _ in db.execute("SHOW PIPELINES LIKE 'trip_'").fetchall()] == ["trips"]
    assert (
        "DISABLE OFFSETS METADATA GC" in db.execute("SHOW CREATE PIPELINE trips").fetchall()[0][1]
    )


def test_a_pipeline_may_be_named_with_its_database(db: sluice.Connection, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1\n2\n")
    row = db.execute("SELECT current_database()").fetchone()
    assert row is not None
    here = row[0]
    db.execute("CREATE TABLE t (v INTEGER)")
    db.execute(f"CREATE PIPELINE {here}.p AS LOAD DATA FS '{tmp_path}/*.csv' INTO TABLE t")
    assert [name for name, _, _ in db.execute("SHOW PIPELINES").fetchall()] == ["p"]
    db.execute(f"START PIPELINE {here}.p FOREGROUND")
    assert db.execute("SELECT sum(v) FROM t").fetchone() == (3,)
    with pytest.raises(
        sluice.CatalogError, match=f"database elsewhere is not this one \\({here}\\)"
    ):
        db.execute("DROP PIPELINE elsewhere.p")
    db.execute(f"DROP PIPELINE {here}.p")
    assert db.execute("SHOW PIPELINES").fetchall() == []
