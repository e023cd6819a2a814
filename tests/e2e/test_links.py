"""Connection links (CREATE LINK … / LOAD DATA LINK), the rest of ALTER PIPELINE's grammar,
EXTRACT PIPELINE … INTO OUTFILE and PROFILE PIPELINE, on both stores."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice.errors import CatalogError, NotSupportedError, SluiceError
from sluice.testing import LocalBroker, LocalS3, produce, unique_name
from sluice.transforms.program import frame

SECRET = "s3cret-never-shown"


def readings(n: int) -> list[bytes]:
    return [json.dumps({"id": i, "v": f"r{i}"}).encode() for i in range(n)]


def shown(db: sluice.Connection) -> str:
    """Everything a user can read about pipelines and links, as one text."""
    parts = [
        db.execute("SHOW LINKS").fetchall(),
        db.execute("SELECT * FROM information_schema.LINKS").fetchall(),
        db.execute("SELECT * FROM information_schema.PIPELINES").fetchall(),
    ]
    for (name,) in db.execute("SELECT PIPELINE_NAME FROM information_schema.PIPELINES"):
        parts.append(db.execute(f"SHOW CREATE PIPELINE {name} EXTENDED").fetchall())
    return repr(parts)


def test_a_kafka_link_loads_and_its_credentials_are_never_shown(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    produce(broker.bootstrap, name, readings(300), partitions=2)
    db.execute(
        'CREATE LINK drills AS KAFKA CONFIG \'{"client.id": "sluice-link"}\' '
        f"CREDENTIALS '{{\"sasl.password\": \"{SECRET}\"}}' DESCRIPTION 'the drills'"
    )
    db.execute("CREATE TABLE t (id BIGINT, v VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA LINK drills '{broker.bootstrap}/{name}' "
        "INTO TABLE t FORMAT JSON (id <- id, v <- v)"
    )
    assert sum(b[1] for b in db.execute("START PIPELINE p FOREGROUND").fetchall()) == 300
    assert db.execute("SELECT count(DISTINCT id), max(id) FROM t").fetchone() == (300, 299)

    assert db.execute("SHOW LINKS").fetchall() == [
        ("drills", "KAFKA", "the drills", '{"client.id": "sluice-link"}')
    ]
    view = db.execute("SELECT LINK, TYPE, DESCRIPTION FROM information_schema.LINKS").fetchall()
    assert view == [("drills", "KAFKA", "the drills")]
    create = db.execute("SHOW CREATE PIPELINE p").fetchone()
    assert create is not None and "LOAD DATA LINK drills" in create[1]
    assert SECRET not in shown(db)

    with pytest.raises(CatalogError, match=r"used by pipeline.*p"):
        db.execute("DROP LINK drills")
    db.execute("DROP PIPELINE p")
    db.execute("DROP LINK drills")
    assert db.execute("SHOW LINKS").fetchall() == []


def test_an_s3_link_carries_the_endpoint_and_keys(db: sluice.Connection) -> None:
    with LocalS3() as s3:
        client = s3.client()
        bucket = unique_name("b").replace("_", "-")
        try:
            client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"1,a\n2,b\n")
            db.execute(
                f"CREATE LINK store AS S3 CONFIG '{json.dumps(s3.config)}' "
                f"CREDENTIALS '{json.dumps(s3.credentials)}'"
            )
            db.execute("CREATE TABLE t (id INTEGER, v VARCHAR)")
            db.execute(
                f"CREATE PIPELINE p AS LOAD DATA LINK store '{bucket}/in/*' INTO TABLE t "
                "FIELDS TERMINATED BY ','"
            )
            db.execute("START PIPELINE p FOREGROUND")
            assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
            assert s3.credentials["aws_secret_access_key"] not in repr(
                db.execute("SHOW LINKS").fetchall()
            )
        finally:
            for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
            client.delete_bucket(Bucket=bucket)
            client.close()


def test_link_problems_are_named(db: sluice.Connection) -> None:
    db.execute("CREATE TABLE t (id INTEGER)")
    with pytest.raises(CatalogError, match=r"link nope does not exist.*CREATE LINK"):
        db.execute("CREATE PIPELINE p AS LOAD DATA LINK nope '/x/*' INTO TABLE t")
    with pytest.raises(CatalogError, match="CONFIG is not valid JSON"):
        db.execute("CREATE LINK k AS KAFKA CONFIG '{oops'")
    db.execute("CREATE LINK k AS KAFKA CONFIG '{}'")
    with pytest.raises(CatalogError, match="already exists; use CREATE OR REPLACE LINK"):
        db.execute("CREATE LINK k AS KAFKA")
    assert db.execute("CREATE LINK IF NOT EXISTS k AS KAFKA").warnings
    with pytest.raises(CatalogError, match="is a KAFKA link; CREATE OR REPLACE cannot make it"):
        db.execute("CREATE OR REPLACE LINK k AS S3")
    db.execute("CREATE OR REPLACE LINK k AS KAFKA DESCRIPTION 'new'")
    assert db.execute("SHOW LINKS").fetchall() == [("k", "KAFKA", "new", None)]
    result = db.execute("CREATE LINK m AS MONGODB CREDENTIALS '{}'")
    assert "pipelines cannot use it" in result.warnings[0]
    with pytest.raises(NotSupportedError, match="link m: MONGODB sources are not supported"):
        db.execute("CREATE PIPELINE p AS LOAD DATA LINK m 'db.coll' INTO TABLE t")
    with pytest.raises(CatalogError, match="database other is not this one"):
        db.execute("CREATE LINK other.x AS KAFKA")
    with pytest.raises(CatalogError, match="link gone does not exist"):
        db.execute("DROP LINK gone")
    assert db.execute("DROP LINK IF EXISTS gone").warnings


@pytest.fixture
def csv_files(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "in"
    data.mkdir()
    for name, rows in (("a.csv", "1;x\n2;y\n"), ("b.csv", "3;z\n")):
        (data / name).write_text(rows)
    yield data


def test_alter_pipeline_changes_config_fields_and_forgets_partitions(
    db: sluice.Connection, csv_files: Path
) -> None:
    db.execute("CREATE TABLE t (id INTEGER, v VARCHAR)")
    db.execute(f"CREATE PIPELINE p AS LOAD DATA FS '{csv_files}/*.csv' INTO TABLE t")
    # the files are ;-separated: with the default tab separator, every line is one bad field
    with pytest.raises(SluiceError):
        db.execute("START PIPELINE p FOREGROUND")
    db.execute("ALTER PIPELINE p FIELDS TERMINATED BY ';' SET CONFIG ::files_per_batch = '1'")
    create = db.execute("SHOW CREATE PIPELINE p").fetchone()
    assert create is not None
    assert "FIELDS TERMINATED BY ';'" in create[1] and '{"files_per_batch": 1}' in create[1]
    db.execute("CLEAR PIPELINE ERRORS p")
    assert len(db.execute("START PIPELINE p FOREGROUND").fetchall()) == 2  # a file a batch
    assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "x"), (2, "y"), (3, "z")]

    (csv_files / "b.csv").unlink()
    files = "SELECT FILE_NAME FROM information_schema.PIPELINES_FILES ORDER BY 1"
    assert [Path(f).name for (f,) in db.execute(files).fetchall()] == ["a.csv", "b.csv"]
    db.execute("ALTER PIPELINE p DROP ORPHAN FILES")
    assert [Path(f).name for (f,) in db.execute(files).fetchall()] == ["a.csv"]
    db.execute(f"ALTER PIPELINE p DROP PARTITION '{csv_files / 'a.csv'}'")
    assert db.execute(files).fetchall() == []
    db.execute("START PIPELINE p FOREGROUND")  # a forgotten file is new again: it loads again
    assert db.execute("SELECT count(*) FROM t").fetchone() == (5,)

    with pytest.raises(NotSupportedError, match="SET OFFSET CURSOR x is not supported"):
        db.execute("ALTER PIPELINE p SET OFFSET CURSOR x, BATCH_INTERVAL 5")
    with pytest.raises(CatalogError, match="not a link: SET LINK applies"):
        db.execute("ALTER PIPELINE p SET LINK k")
    with pytest.raises(CatalogError, match="SET CONFIG is not valid JSON"):
        db.execute("ALTER PIPELINE p SET CONFIG '{bad'")
    db.execute("ALTER PIPELINE p SET BATCH_INTERVAL 5, MAX_PARTITIONS_PER_BATCH 2")
    create = db.execute("SHOW CREATE PIPELINE p").fetchone()
    assert create is not None
    assert "BATCH_INTERVAL 5" in create[1] and "MAX_PARTITIONS_PER_BATCH 2" in create[1]


def test_alter_pipeline_set_credentials_and_link(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, readings(10), partitions=1)
    db.execute('CREATE LINK bad AS KAFKA CONFIG \'{"no.such.property": "1"}\'')
    db.execute("CREATE LINK good AS KAFKA CONFIG '{}'")
    db.execute("CREATE TABLE t (id BIGINT, v VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA LINK good '{broker.bootstrap}/{name}' "
        "INTO TABLE t FORMAT JSON (id <- id, v <- v)"
    )
    with pytest.raises(SluiceError, match=r"no\.such\.property"):
        db.execute("ALTER PIPELINE p SET LINK bad")  # checked before it is kept
    db.execute(f"ALTER PIPELINE p SET CREDENTIALS ::`sasl.password` = '{SECRET}'")
    assert SECRET not in shown(db)
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (10,)


def test_extract_pipeline_writes_what_a_transform_reads(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], tmp_path: Path
) -> None:
    name = topic(1)
    values = readings(20)
    produce(broker.bootstrap, name, values, partitions=1)
    db.execute("CREATE TABLE t (id BIGINT, v VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
        "INTO TABLE t FORMAT JSON (id <- id, v <- v)"
    )
    whole, part = tmp_path / "all.bin", tmp_path / "range.bin"
    rows = db.execute(f"EXTRACT PIPELINE p INTO OUTFILE '{whole}'").fetchall()
    assert rows == [("0", 0, 20, 20, len(frame(values)))]
    assert whole.read_bytes() == frame(values)
    db.execute(f"EXTRACT PIPELINE p FROM '0' OFFSETS 5 TO 8 INTO OUTFILE '{part}'")
    assert part.read_bytes() == frame(values[5:8])
    # the file is what `cat file | program` feeds a transform: a program reads it back
    script = (
        "import struct, sys\n"
        "data = sys.stdin.buffer.read()\n"
        "while data:\n"
        "    (n,) = struct.unpack('<Q', data[:8])\n"
        "    sys.stdout.buffer.write(data[8 : 8 + n] + b'\\n')\n"
        "    data = data[8 + n :]\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], input=part.read_bytes(), capture_output=True, check=True
    ).stdout
    assert out.splitlines() == values[5:8]
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)  # nothing loaded
    with pytest.raises(SluiceError, match="exists; EXTRACT … INTO OUTFILE does not overwrite"):
        db.execute(f"EXTRACT PIPELINE p INTO OUTFILE '{whole}'")
    db.execute("START PIPELINE p")
    try:
        with pytest.raises(CatalogError, match="is running; stop it to EXTRACT"):
            db.execute(f"EXTRACT PIPELINE p INTO OUTFILE '{tmp_path / 'x'}'")
    finally:
        db.execute("STOP PIPELINE p")


def test_profile_pipeline_times_every_stage_and_writes_nothing(
    db: sluice.Connection, csv_files: Path
) -> None:
    db.execute("CREATE TABLE t (id INTEGER, v VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{csv_files}/*.csv' INTO TABLE t "
        "FIELDS TERMINATED BY ';'"
    )
    rows: list[Any] = db.execute("PROFILE PIPELINE p").fetchall()
    assert [(stage, n) for stage, n, _, _ in rows] == [
        ("extract", 2),  # files
        ("parse", 3),
        ("load (rolled back)", 3),
    ]
    assert all(seconds >= 0 and mb >= 0 for _, _, mb, seconds in rows)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM information_schema.PIPELINES_FILES").fetchone() == (0,)
