"""SingleStore's pipeline functions in SET and WHERE: where each row came from, in SQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

import sluice
from sluice.testing import LocalBroker
from tests.e2e.helpers import kafka


def test_kafka_rows_know_their_batch_partition_offset_timestamp_key_and_headers(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    before = int(time.time() * 1000) - 1000
    producer = Producer({"bootstrap.servers": broker.bootstrap, "log_level": 3})
    for i in range(40):
        producer.produce(
            name,
            json.dumps({"id": i}).encode(),
            key=f"k{i}".encode(),
            partition=i % 2,
            headers=[("rig", f"r{i % 3}".encode())],
        )
    assert producer.flush(30) == 0
    db.execute(
        "CREATE TABLE t (id INTEGER, batch BIGINT, part VARCHAR, off BIGINT, topic VARCHAR, "
        "ts BIGINT, k VARCHAR, h VARCHAR)"
    )
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "MAX_OFFSETS_PER_BATCH_PARTITION 5 INTO TABLE t FORMAT JSON (id <- id) "
        "SET batch = pipeline_batch_id(), part = get_kafka_pipeline_prop('prop_partition'), "
        "off = get_kafka_pipeline_prop('prop_offset'), "
        "topic = get_kafka_pipeline_prop('prop_topicname'), "
        "ts = get_kafka_pipeline_prop('prop_timestamp'), "
        "k = get_kafka_pipeline_prop('prop_key'), h = get_kafka_pipeline_prop('prop_headers') "
        "WHERE get_kafka_pipeline_prop('prop_offset') % 2 = 0"
    )
    batches = db.execute("START PIPELINE p FOREGROUND").fetchall()
    rows = db.execute("SELECT id, batch, part, off, topic, ts, k, h FROM t ORDER BY id").fetchall()
    # partition i % 2 holds ids i, at offset i // 2; even offsets pass the WHERE
    assert [r[0] for r in rows] == [i for i in range(40) if (i // 2) % 2 == 0]
    for i, _batch, part, off, tpc, ts, k, h in rows:
        assert (part, off, tpc, k) == (str(i % 2), i // 2, name, f"k{i}")
        assert json.loads(h) == {"rig": f"r{i % 3}"}
        assert before <= ts <= int(time.time() * 1000)
    # each row names the batch that loaded it, as PIPELINES_BATCHES does
    loaded = dict(
        db.execute(
            "SELECT BATCH_SOURCE_PARTITION_ID || ':' || BATCH_LATEST_OFFSET, BATCH_ID "
            "FROM information_schema.PIPELINES_BATCHES"
        ).fetchall()
    )
    assert {b[0] for b in batches} == {batch for _, batch, *_ in rows} | set(loaded.values())
    for _i, batch, part, off, *_ in rows:
        end = min((off // 5 + 1) * 5, 20)
        assert loaded[f"{part}:{end}"] == batch


def test_file_rows_know_their_file(db: sluice.Connection, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_text("1\n2\n3\n")
    db.execute("CREATE TABLE t (v INTEGER, file VARCHAR, line BIGINT)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.csv' INTO TABLE t (v) "
        "SET file = pipeline_source_file(), line = get_kafka_pipeline_prop('prop_offset')"
    )
    assert db.execute("TEST PIPELINE p LIMIT 1").fetchall()[0][1] == str(tmp_path / "a.csv")
    db.execute("START PIPELINE p FOREGROUND")
    rows = db.execute("SELECT file, line, v FROM t ORDER BY 1, 2").fetchall()
    assert rows == [(str(tmp_path / f), n, n + 1) for f in ("a.csv", "b.csv") for n in range(3)]


def test_an_unknown_property_is_named(db: sluice.Connection, tmp_path: Path) -> None:
    db.execute("CREATE TABLE t (v INTEGER, x VARCHAR)")
    with pytest.raises(sluice.ParseError, match="unknown property 'prop_color'"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.csv' INTO TABLE t (v) "
            "SET x = get_kafka_pipeline_prop('prop_color')"
        )
