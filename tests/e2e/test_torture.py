"""Exactly-once under fire: a loader process killed with SIGKILL again and again while a
producer writes, some messages sent twice with the same key. At the end every message is in
the table exactly once and the cursors equal the end of every partition. On DuckDB (a file)
and on PostgreSQL (a server, whose session dies with the killed loader)."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

import sluice
from sluice.testing import LocalBroker, SchemaRegistry, wait_for
from tests.e2e.loaders import (
    KILLS,
    MESSAGES,
    RESENT_EVERY,
    BackgroundProducer,
    consistent,
    kill_at_a_commit,
    start_loader,
)

# A transform program (Python, reading Kafka's framed records and writing them as lines) and a
# procedure writing every batch to two tables: kills land inside the program's runs (it runs
# for every batch partition) and, at a commit, inside the procedure's transaction.
ECHO = """\
import struct, sys
data = sys.stdin.buffer.read()
at, out = 0, []
while at < len(data):
    (n,) = struct.unpack_from("<Q", data, at)
    out.append(data[at + 8 : at + 8 + n])
    at += 8 + n
sys.stdout.buffer.write(b"".join(line + b"\\n" for line in out))
"""
PROCEDURE = """CREATE PROCEDURE both_tables (batch QUERY(id BIGINT, copy INTEGER, v INTEGER)) AS
BEGIN
  INSERT INTO t SELECT id, copy, v FROM batch;
  INSERT INTO t2 SELECT id, copy FROM batch;
END"""


def avro_encoder(registry: SchemaRegistry, topic: str) -> Callable[[dict[str, int]], bytes]:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    fields = [{"name": f, "type": "long"} for f in ("id", "copy", "v")]
    schema = {"type": "record", "name": "Message", "fields": fields}
    serialize = AvroSerializer(SchemaRegistryClient({"url": registry.url}), json.dumps(schema))
    ctx = SerializationContext(topic, MessageField.VALUE)
    return lambda value: bytes(serialize(value, ctx) or b"")


@pytest.mark.parametrize(
    ("store", "fmt", "replace"),
    [
        ("duckdb", "json", False),
        ("duckdb", "json", True),
        ("duckdb", "csv", False),
        ("duckdb", "csv", True),
        ("postgresql", "json", False),
        ("postgresql", "csv", True),
        ("duckdb", "json", "program+procedure"),
        ("postgresql", "json", "program+procedure"),
        ("duckdb", "avro", True),
        ("postgresql", "avro", False),
    ],
    ids=lambda v: {False: "insert", True: "replace"}.get(v, v) if isinstance(v, bool) else v,
)
def test_sigkill_torture_is_exactly_once(
    store: str,
    fmt: str,
    replace: bool | str,
    db_path: str,
    request: pytest.FixtureRequest,
    broker: LocalBroker,
    topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    name = topic(4)
    database = str(request.getfixturevalue("pg_url")) if store == "postgresql" else db_path
    through = replace == "program+procedure"
    replace = replace is True
    key = " PRIMARY KEY" if replace else ""
    mapping = {
        "json": "FORMAT JSON (id <- id, copy <- copy, v <- v)",
        "csv": "FIELDS TERMINATED BY ',' (id, copy, v)",
    }.get(fmt, "")
    encode = None
    if fmt == "avro":  # framed by confluent-kafka's AvroSerializer for the test's registry
        registry = SchemaRegistry()
        request.addfinalizer(registry.close)
        encode = avro_encoder(registry, name)
        mapping = f"FORMAT AVRO SCHEMA REGISTRY '{registry.url}' (id <- id, copy <- copy, v <- v)"
    into = "INTO TABLE t"
    with sluice.connect(database) as db:
        db.execute(f"CREATE TABLE t (id BIGINT{key}, copy INTEGER, v INTEGER)")
        if through:
            (tmp_path / "echo.py").write_text(ECHO)
            db.execute("CREATE TABLE t2 (id BIGINT, copy INTEGER)")
            db.execute(PROCEDURE)
            into = (
                f"WITH TRANSFORM ('file://{tmp_path}/echo.py', '', '') INTO PROCEDURE both_tables"
            )
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            f"MAX_OFFSETS_PER_BATCH_PARTITION 400 {'REPLACE' if replace else ''} "
            f"{into} {mapping}"
        )
        db.execute("START PIPELINE p")  # left Running: every loader resumes it

    producer = BackgroundProducer(broker.bootstrap, name, fmt, encode)
    producer.start()
    rnd = random.Random(f"{fmt}-{replace}")
    progress = []
    try:
        for k in range(KILLS):
            at_commit = k % 2 == 1
            with start_loader(database, mark=at_commit) as proc:
                if at_commit:
                    kill_at_a_commit(proc, commits=rnd.randint(1, 4))
                else:
                    time.sleep(rnd.uniform(0.2, 1.0))  # a random kill point, not a wait
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            progress.append(consistent(database, replace, also="t2" if through else None)[0])
    finally:
        producer.join(120)
    assert not producer.errors
    mid_stream = [rows for rows in progress if 0 < rows < len(producer.sent)]
    assert len(mid_stream) >= KILLS // 3, f"kills did not land mid-stream: {progress}"

    with sluice.connect(database) as db:  # the last restart runs to the end
        want = sum(producer.ends.values())
        wait_for(
            lambda: (
                db.execute(
                    "SELECT sum(CURSOR_OFFSET) FROM information_schema.PIPELINES_OFFSETS"
                ).fetchone()
                == (want,)
            ),
            timeout=120,
            message="the cursors to reach the end of every partition",
        )
        db.execute("STOP PIPELINE p")
        cursors = dict(
            db.execute(
                "SELECT CAST(SOURCE_PARTITION_ID AS INTEGER), CURSOR_OFFSET "
                "FROM information_schema.PIPELINES_OFFSETS"
            ).fetchall()
        )
        assert cursors == producer.ends
        rows = db.execute("SELECT id, copy FROM t").fetchall()
        if through:  # the procedure's second table holds exactly the same messages
            assert sorted(db.execute("SELECT id, copy FROM t2").fetchall()) == sorted(rows)
        if store == "duckdb":
            db.execute("CHECKPOINT")
    if replace:  # one row per id, holding the last copy sent
        want_rows = {(i, 1 if i % RESENT_EVERY == 0 else 0) for i in range(MESSAGES)}
    else:  # one row per message sent
        want_rows = set(producer.sent)
    assert len(rows) == len(want_rows)
    assert set(rows) == want_rows

    if store != "duckdb":
        return
    # The file is whole: it opens again, every column reads back, and the counts agree.
    con = duckdb.connect(database, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (len(want_rows),)
        assert con.execute("SELECT count(*) FROM pragma_storage_info('t')").fetchone() != (0,)
        scanned = con.execute("SELECT count(*), sum(hash(id, copy, v)) FROM t").fetchone()
        assert scanned is not None and scanned[0] == len(want_rows)
    finally:
        con.close()
