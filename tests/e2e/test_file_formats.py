"""Files of every format: Parquet by row groups, compressed files of each codec."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sluice
from sluice.testing import LocalBroker, produce
from tests.e2e.test_fs_pipelines import files


def parquet_rows(n: int, start: int = 0) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": [f"n{i}" for i in ids],
            "at": pa.array(
                [dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i) for i in ids],
                pa.timestamp("us", "UTC"),
            ),
            "cost": pa.array([decimal.Decimal(i) / 8 for i in ids], pa.decimal128(10, 3)),
            "ok": [i % 2 == 0 for i in ids],
            "pos": [{"lat": i / 10, "lon": 5.0} for i in ids],
            "tags": [[i, i + 1] for i in ids],
            "unused": ["x" * 50 for _ in ids],
        }
    )


def test_parquet_loads_by_row_groups_over_several_batches(
    db: sluice.Connection, tmp_path: Path
) -> None:
    table = parquet_rows(1_000)
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=100)
    meta = pq.ParquetFile(tmp_path / "big.parquet").metadata
    budget = sum(meta.row_group(i).total_byte_size for i in range(3))
    db.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR, ts TIMESTAMPTZ, cost DECIMAL(10, 3), "
        "ok INT, lat DOUBLE PRECISION, pos VARCHAR, tags VARCHAR, missing VARCHAR)"
    )
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.parquet' "
        f"CONFIG '{{\"max_bytes_per_batch\": {budget}}}' INTO TABLE t FORMAT PARQUET "
        "(id <- id, name <- name, ts <- at, cost <- cost, ok <- ok, lat <- pos::lat, "
        "pos <- pos, tags <- tags, missing <- nope DEFAULT 'none')"
    )
    first = db.execute("START PIPELINE p FOREGROUND LIMIT 1 BATCHES").fetchall()
    assert first[0][1] == 300  # three row groups of 100
    assert db.execute("SELECT count(*) FROM t").fetchone() == (300,)
    assert files(db) == [("big.parquet", "Loading")]
    db.execute("START PIPELINE p FOREGROUND")
    assert files(db) == [("big.parquet", "Loaded")]
    assert db.execute("SELECT count(*), sum(id), sum(ok) FROM t").fetchone() == (
        1_000,
        sum(range(1_000)),
        500,
    )
    row = db.execute(
        "SELECT name, ts, cost, lat, pos, tags, missing FROM t WHERE id = 42"
    ).fetchone()
    assert row is not None
    assert row[:4] == (
        "n42",
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=42),
        decimal.Decimal("5.250"),
        4.2,
    )
    assert json.loads(row[4]) == {"lat": 4.2, "lon": 5.0}
    assert json.loads(row[5]) == [42, 43]
    assert row[6] == "none"
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []  # nothing loads twice


def test_a_parquet_file_without_a_mapped_column_is_an_error_naming_it(
    db: sluice.Connection, tmp_path: Path
) -> None:
    pq.write_table(parquet_rows(10), tmp_path / "a.parquet")
    db.execute("CREATE TABLE t (id BIGINT, x VARCHAR)")
    create = (
        f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.parquet' {{}} INTO TABLE t "
        "FORMAT PARQUET (id <- id, x <- nope)"
    )
    db.execute(create.format(""))
    with pytest.raises(sluice.SluiceError, match="Parquet column nope is not in the file"):
        db.execute("START PIPELINE p FOREGROUND")
    db.execute("DROP PIPELINE p")
    db.execute(create.format("SKIP PARSER ERRORS"))
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    errors = db.execute(
        "SELECT BATCH_SOURCE_PARTITION_ID, ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS"
    ).fetchall()
    assert len(errors) == 1 and errors[0][0].endswith("a.parquet")


def test_parquet_is_refused_where_it_cannot_be_read(db: sluice.Connection, tmp_path: Path) -> None:
    db.execute("CREATE TABLE t (id BIGINT)")
    with pytest.raises(sluice.NotSupportedError, match="programs read bytes"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*' WITH TRANSFORM ('cat', '', '') "
            "INTO TABLE t FORMAT PARQUET (id <- id)"
        )


@pytest.mark.parametrize("suffix", [".gz", ".zst", ".bz2", ".lz4"])
def test_compressed_files_are_decompressed_as_streams(
    db: sluice.Connection, tmp_path: Path, suffix: str
) -> None:
    codec = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2", ".lz4": "lz4"}[suffix]
    csv = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(2_000))
    lines = "".join(json.dumps({"id": i, "name": f"j{i}"}) + "\n" for i in range(2_000, 2_500))
    for name, text in ((f"a.csv{suffix}", csv), (f"b.json{suffix}", lines)):
        with pa.CompressedOutputStream(str(tmp_path / name), codec) as out:
            out.write(text.encode())
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR)")
    db.execute(
        f"CREATE PIPELINE c AS LOAD DATA FS '{tmp_path}/*.csv{suffix}' "
        "CONFIG '{\"max_bytes_per_batch\": 5000}' INTO TABLE t "
        "FIELDS TERMINATED BY ',' IGNORE 1 LINES"
    )
    db.execute(
        f"CREATE PIPELINE j AS LOAD DATA FS '{tmp_path}/*.json{suffix}' INTO TABLE t "
        "FORMAT JSON (id <- id, name <- name)"
    )
    batches = db.execute("START PIPELINE c FOREGROUND").fetchall()
    assert len(batches) > 3  # the file is cut between records, in decompressed bytes
    db.execute("START PIPELINE j FOREGROUND")
    assert db.execute("SELECT count(*), sum(id), count(DISTINCT name) FROM t").fetchone() == (
        2_500,
        sum(range(2_500)),
        2_500,
    )
    assert db.execute("SELECT name FROM t WHERE id = 1999").fetchone() == ("n1999",)


def test_sources_not_read_yet_are_refused_by_name(db: sluice.Connection) -> None:
    db.execute("CREATE TABLE t (a VARCHAR)")
    for source, says in (
        ("HDFS 'hdfs://h:8020/x*'", "LOAD DATA HDFS is not supported yet: it needs Hadoop's"),
        ("STAGE 'x/*.csv'", "LOAD DATA STAGE reads SingleStore Helios' Stage"),
    ):
        with pytest.raises(sluice.NotSupportedError, match=re.escape(says)):
            db.execute(f"CREATE PIPELINE p AS LOAD DATA {source} INTO TABLE t")


def test_trailing_nullcols_fills_short_records_with_null_in_their_places(
    db: sluice.Connection, tmp_path: Path, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    lines = ["1,a,x", "2,b", "3", '"4",d,"w\nfour"', "5,e,y,extra", "6,,", "7", "8,h,z"]
    (tmp_path / "short.csv").write_text("\n".join(["id,name,note", *lines]) + "\n")
    db.execute("CREATE TABLE t (id BIGINT, name VARCHAR, note VARCHAR, line BIGINT)")
    db.execute(
        f"CREATE PIPELINE f AS LOAD DATA FS '{tmp_path}/short.csv' SKIP PARSER ERRORS "
        "INTO TABLE t FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' TRAILING NULLCOLS "
        "IGNORE 1 LINES (id, name, note) SET line = get_kafka_pipeline_prop('prop_offset')"
    )
    db.execute("START PIPELINE f FOREGROUND")
    got = db.execute("SELECT id, name, note FROM t ORDER BY line").fetchall()
    assert got == [
        (1, "a", "x"), (2, "b", None), (3, None, None), (4, "d", "w\nfour"), (6, "", ""),
        (7, None, None), (8, "h", "z"),
    ]  # fmt: skip
    errors = "SELECT ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS"
    assert [e for (e,) in db.execute(errors).fetchall()] == [
        "record has 4 fields, expected 3 (id, name, note)"
    ]
    # messages too, and their order is kept: a record's row is the record's own
    name = topic(1)
    produce(broker.bootstrap, name, [line.encode() for line in lines if "\n" not in line])
    db.execute("DELETE FROM t")
    db.execute(
        f"CREATE PIPELINE k AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' SKIP PARSER ERRORS "
        "INTO TABLE t FIELDS TERMINATED BY ',' TRAILING NULLCOLS (id, name, note) "
        "SET line = get_kafka_pipeline_prop('prop_offset')"
    )
    db.execute("START PIPELINE k FOREGROUND")
    got = db.execute("SELECT line, id, name, note FROM t ORDER BY line").fetchall()
    assert got == [
        (0, 1, "a", "x"), (1, 2, "b", None), (2, 3, None, None), (4, 6, "", ""),
        (5, 7, None, None), (6, 8, "h", "z"),
    ]  # fmt: skip
