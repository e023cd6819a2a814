"""SQL in, rows out: Kafka pipelines against the real broker and a real DuckDB file."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest

import sluice
from sluice.stores.base import process_label
from sluice.testing import LocalBroker, produce, wait_for
from tests.e2e.helpers import kafka, states


def readings(n: int, start: int = 0) -> list[bytes]:
    return [
        json.dumps(
            {"id": i, "device": f"d{i % 7}", "reading": {"temp": i / 4}, "ok": i % 2 == 0}
        ).encode()
        for i in range(start, start + n)
    ]


def count(db: sluice.Connection, table: str = "t") -> int:
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_json_pipeline_loads_exactly_what_was_produced(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(4)
    produce(broker.bootstrap, name, readings(10_000), partitions=4)
    db.execute(
        "CREATE TABLE t (id BIGINT, device VARCHAR, temp DOUBLE PRECISION, ok BOOLEAN, doc JSON)"
    )
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "MAX_OFFSETS_PER_BATCH_PARTITION 1000 INTO TABLE t "
        "FORMAT JSON (id <- id, device <- device, temp <- reading::temp, ok <- ok, doc <- %)"
    )
    result = db.execute("START PIPELINE p FOREGROUND")
    batches = result.fetchall()
    assert sum(b[1] for b in batches) == 10_000
    assert len(batches) >= 3  # 2,500 messages per partition, at most 1,000 per batch
    stats = db.execute(
        "SELECT count(*), count(DISTINCT id), sum(id), sum(temp), count(*) FILTER (WHERE ok) FROM t"
    ).fetchone()
    assert stats == (10_000, 10_000, sum(range(10_000)), sum(i / 4 for i in range(10_000)), 5_000)
    row = db.execute("SELECT device, temp, ok, doc->>'id' FROM t WHERE id = 4242").fetchone()
    assert row == ("d0", 1060.5, True, "4242")
    offsets = db.execute(
        "SELECT SOURCE_PARTITION_ID, CURSOR_OFFSET, LAG_MESSAGES "
        "FROM information_schema.PIPELINES_OFFSETS WHERE PIPELINE_NAME = 'p' ORDER BY 1"
    ).fetchall()
    assert offsets == [(str(p), 2_500, 0) for p in range(4)]
    summary = db.execute(
        "SELECT sum(ROWS_STREAMED), min(BATCH_STATE), max(NUM_PARTITIONS) "
        "FROM information_schema.PIPELINES_BATCHES_SUMMARY WHERE PIPELINE_NAME = 'p'"
    ).fetchone()
    assert summary == (10_000, "Succeeded", 4)


def test_csv_pipeline_with_variables_set_and_where(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(4)
    lines = [f'{i},"name {i}",{i * 1.5},{"x" if i % 3 else "skip"}'.encode() for i in range(4_000)]
    produce(broker.bootstrap, name, lines, partitions=4)
    db.execute(
        "CREATE TABLE t (id INTEGER, name VARCHAR, price DECIMAL(10,2), doubled DOUBLE PRECISION)"
    )
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        "FORMAT CSV FIELDS TERMINATED BY ',' ENCLOSED BY '\"' (id, name, @price, @flag) "
        "SET price = @price, doubled = CAST(@price AS DOUBLE PRECISION) * 2 WHERE @flag <> 'skip'"
    )
    db.execute("START PIPELINE p FOREGROUND")
    kept = [i for i in range(4_000) if i % 3]
    assert count(db) == len(kept)
    row = db.execute("SELECT name, price, doubled FROM t WHERE id = 7").fetchone()
    assert row is not None and row[0] == "name 7" and float(row[1]) == 10.5 and row[2] == 21.0
    assert db.execute("SELECT sum(id) FROM t").fetchone() == (sum(kept),)
    assert db.execute("SELECT count(*) FROM t WHERE id % 3 = 0").fetchone() == (0,)


@pytest.mark.parametrize("mode", ["REPLACE", "ODKU"])
def test_resent_messages_with_the_same_key_make_one_row(
    mode: str, db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(4)
    first = [json.dumps({"id": i % 500, "v": i}).encode() for i in range(2_000)]
    produce(broker.bootstrap, name, first, partitions=4)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, seen INTEGER DEFAULT 1)")
    clause = "ON DUPLICATE KEY UPDATE v = VALUES(v), seen = seen + 1" if mode == "ODKU" else ""
    replace = "REPLACE" if mode == "REPLACE" else ""
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} {replace} INTO TABLE t "
        f"FORMAT JSON (id <- id, v <- v) {clause}"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert count(db) == 500
    # Partition k holds the ids ≡ k (mod 4) in order, so every id's last message is i ≥ 1500.
    assert db.execute("SELECT min(v), max(v) FROM t").fetchone() == (1_500, 1_999)
    if mode == "ODKU":  # four messages per id: inserted once, updated three times
        assert db.execute("SELECT min(seen), max(seen) FROM t").fetchone() == (4, 4)
    produce(broker.bootstrap, name, first[:100], partitions=4)  # the same messages, re-sent
    db.execute("START PIPELINE p FOREGROUND")
    assert count(db) == 500


def test_ignore_keeps_the_first_row(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, [json.dumps({"id": 1, "v": v}).encode() for v in (1, 2, 3)])
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} IGNORE INTO TABLE t "
        "FORMAT JSON (id <- id, v <- v)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT * FROM t").fetchall() == [(1, 1)]


def test_set_offsets_earliest_rereads_and_create_or_replace_keeps_cursors(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    produce(broker.bootstrap, name, readings(100), partitions=2)
    db.execute("CREATE TABLE t (id BIGINT, temp DOUBLE PRECISION)")
    create = (
        f"CREATE OR REPLACE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        "FORMAT JSON (id <- id, temp <- reading::temp)"
    )
    db.execute(create)
    db.execute("START PIPELINE p FOREGROUND")
    assert count(db) == 100
    db.execute(create.replace("temp <- reading::temp", "temp <- reading::temp DEFAULT 0"))
    assert "DEFAULT 0" in db.execute("SHOW CREATE PIPELINE p").fetchall()[0][1]
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []  # cursors kept
    assert count(db) == 100
    db.execute("ALTER PIPELINE p SET OFFSETS EARLIEST")
    db.execute("START PIPELINE p FOREGROUND")
    assert count(db) == 200
    assert db.execute("SELECT count(DISTINCT id) FROM t").fetchone() == (100,)
    db.execute("ALTER PIPELINE p SET OFFSETS '{\"0\": 40}'")
    db.execute("START PIPELINE p FOREGROUND")
    assert count(db) == 210  # partition 0 holds 50 messages: offsets 40..49 again
    produce(broker.bootstrap, name, readings(10, start=100), partitions=2)
    db.execute("ALTER PIPELINE p SET OFFSETS LATEST")
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []
    extended = db.execute("SHOW CREATE PIPELINE p EXTENDED").fetchall()[0][1]
    assert extended.endswith("""ALTER PIPELINE p SET OFFSETS '{"0": 55, "1": 55}'""")


def test_test_pipeline_returns_rows_and_writes_nothing(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    produce(broker.bootstrap, name, readings(50), partitions=2)
    db.execute("CREATE TABLE t (id BIGINT, device VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        "FORMAT JSON (id <- id, device <- device)"
    )
    result = db.execute("TEST PIPELINE p LIMIT 5")
    assert result.columns == ["id", "device"]
    rows = result.fetchall()
    assert len(rows) == 5 and all(isinstance(r[0], int) and r[1].startswith("d") for r in rows)
    assert count(db) == 0
    assert db.execute("SELECT count(*) FROM information_schema.PIPELINES_OFFSETS").fetchone() == (
        0,
    )
    assert db.execute("START PIPELINE p FOREGROUND LIMIT 1 BATCHES").fetchall()[0][1] == 50


def test_background_pipeline_picks_up_new_data_and_resumes_after_reopen(
    database: str, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(4)
    db = sluice.connect(database)
    db.execute("CREATE TABLE t (id BIGINT)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        "FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p")
    loading = [("p", "Running", process_label())]  # this process loads it
    wait_for(lambda: db.execute("SHOW PIPELINES").fetchall() == loading, message="the claim")
    produce(broker.bootstrap, name, readings(1_000), partitions=4)
    wait_for(lambda: count(db) == 1_000, message="the first 1,000 rows")
    produce(broker.bootstrap, name, readings(1_000, start=1_000), partitions=4)
    wait_for(lambda: count(db) == 2_000, message="the next 1,000 rows")
    db.close()  # leaves the pipeline Running

    produce(broker.bootstrap, name, readings(500, start=2_000), partitions=4)
    db = sluice.connect(database)
    try:
        wait_for(lambda: count(db) == 2_500, message="rows after reopening")
        db.execute("STOP PIPELINE p")
        assert states(db) == [("p", "Stopped")]
        assert db.execute("SELECT count(DISTINCT id) FROM t").fetchone() == (2_500,)
    finally:
        db.close()


def test_a_record_with_a_missing_path_fails_the_batch_and_loads_nothing(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, [b'{"id": 1}', b'{"other": 2}', b'{"id": 3}'])
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        "FORMAT JSON (id <- id)"
    )
    with pytest.raises(sluice.SluiceError, match="partition 0 offset 1: JSON path id is missing"):
        db.execute("START PIPELINE p FOREGROUND")
    assert count(db) == 0


def test_pipeline_errors_are_clear(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    src = kafka(broker, name)
    with pytest.raises(sluice.TerminalError, match="table missing does not exist"):
        db.execute(f"CREATE PIPELINE p AS LOAD DATA KAFKA {src} INTO TABLE missing (a)")
    db.execute("CREATE TABLE t (id INTEGER)")
    with pytest.raises(sluice.TerminalError, match="column 'nope' does not exist in table t"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA {src} INTO TABLE t FORMAT JSON (nope <- x)"
        )
    with pytest.raises(sluice.SluiceError, match=r"transform program 't\.py' is not on PATH"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA {src} WITH TRANSFORM ('t.py', '', '') "
            "INTO TABLE t"
        )
    with pytest.raises(sluice.NotSupportedError, match="FORMAT PARQUET reads files"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA {src} INTO TABLE t FORMAT PARQUET (id <- id)"
        )
    with pytest.raises(sluice.SluiceError, match="topic 'nope' is not available"):
        db.execute(f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/nope' INTO TABLE t")
    result = db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {src} RESOURCE POOL fast INTO TABLE t"
    )
    assert result.warnings == [
        "RESOURCE POOL is accepted for compatibility and has no effect in Sluice"
    ]
    with pytest.raises(sluice.CatalogError, match="already exists"):
        db.execute(f"CREATE PIPELINE p AS LOAD DATA KAFKA {src} INTO TABLE t")
    assert db.execute(
        f"CREATE PIPELINE IF NOT EXISTS p AS LOAD DATA KAFKA {src} INTO TABLE t"
    ).warnings == ["pipeline p already exists"]
    with pytest.raises(sluice.CatalogError, match="pipeline q does not exist"):
        db.execute("START PIPELINE q")
    with pytest.raises(sluice.CatalogError, match="is not running"):
        db.execute("STOP PIPELINE p")
    db.execute("STOP PIPELINE IF RUNNING p")
    db.execute("DROP PIPELINE p")
    db.execute("DROP PIPELINE IF EXISTS p")
    assert states(db) == []


def test_a_background_failure_stops_the_pipeline_in_error_with_the_reason(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        "FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p")
    produce(broker.bootstrap, name, [b'{"id": 1}', b'{"id": 2}'])
    wait_for(lambda: count(db) == 2, message="the good rows")
    produce(broker.bootstrap, name, [b'{"id": 3}', b'{"id": 1}'])  # 1 again: duplicate key
    wait_for(lambda: states(db) == [("p", "Error")], message="Error")
    state = db.execute(
        "SELECT STATE, ERROR_MESSAGE FROM information_schema.PIPELINES WHERE PIPELINE_NAME = 'p'"
    ).fetchone()
    assert state is not None and state[0] == "Error" and "duplicate key" in state[1].lower()
    errors = db.execute(
        "SELECT ERROR_KIND, ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS"
    ).fetchall()
    assert len(errors) == 1 and errors[0][0] == "Load" and "duplicate key" in errors[0][1].lower()
    assert count(db) == 2  # the failed batch loaded nothing, its cursor did not move
    offsets = db.execute("SELECT CURSOR_OFFSET FROM information_schema.PIPELINES_OFFSETS")
    assert offsets.fetchall() == [(2,)]


def test_max_partitions_per_batch_takes_partitions_in_turn_keeping_the_consumer(
    db: sluice.Connection,
    broker: LocalBroker,
    topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One partition per batch, in turn (none waits until another is drained), and the
    consumer is assigned once: what it prefetched for the others is kept, not re-read. (The
    first batch takes whichever partition the consumer delivered first.)"""
    from sluice.sources.kafka import KafkaSource

    assigned: list[object] = []
    assign = KafkaSource._assign
    monkeypatch.setattr(
        KafkaSource, "_assign", lambda self, wanted: (assigned.append(wanted), assign(self, wanted))
    )
    name = topic(3)
    produce(broker.bootstrap, name, [json.dumps({"id": i}).encode() for i in range(90)],
            partitions=3)  # fmt: skip
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} MAX_PARTITIONS_PER_BATCH 1 "
        "MAX_OFFSETS_PER_BATCH_PARTITION 10 INTO TABLE t FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    order = db.execute(
        "SELECT BATCH_SOURCE_PARTITION_ID FROM information_schema.PIPELINES_BATCHES "
        "ORDER BY BATCH_ID"
    ).fetchall()
    turns = [int(p) for (p,) in order]
    assert len(turns) == 9 and all(b == (a + 1) % 3 for a, b in itertools.pairwise(turns))
    assert db.execute("SELECT count(DISTINCT id) FROM t").fetchone() == (90,)
    assert len(assigned) == 1


def test_the_native_drain_and_confluent_kafkas_consumer_load_the_same_rows(
    db: sluice.Connection,
    broker: LocalBroker,
    topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The two extraction paths, on one topic of keyed messages with headers, a bad record and
    messages without a value: the same rows, offsets, keys, headers and errors."""
    from confluent_kafka import Producer

    from sluice.native import kafkadrain
    from sluice.sources import kafka as kafka_source

    if kafkadrain.load() is not None:
        pytest.skip(f"native drain: {kafkadrain.load()}")
    name = topic(3)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(900):
        value = None if i % 97 == 5 else b"{bad" if i == 300 else json.dumps({"id": i}).encode()
        producer.produce(
            name, value, key=None if i % 4 == 0 else f"k{i}".encode(), partition=i % 3,
            headers=[("n", str(i).encode())] if i % 10 == 0 else None,
        )  # fmt: skip
    assert producer.flush(30) == 0
    found = {}
    for native in (True, False):
        monkeypatch.setattr(kafka_source, "NATIVE", native)
        table = f"t_{'native' if native else 'python'}"
        db.execute(
            f"CREATE TABLE {table} (id INTEGER, part VARCHAR, pos BIGINT, k VARCHAR, h VARCHAR)"
        )
        db.execute(
            f"CREATE PIPELINE p_{table} AS LOAD DATA KAFKA {kafka(broker, name)} "
            "MAX_OFFSETS_PER_BATCH_PARTITION 100 SKIP PARSER ERRORS "
            f"INTO TABLE {table} FORMAT JSON (id <- id DEFAULT NULL) "
            "SET part = get_kafka_pipeline_prop('prop_partition'), "
            "pos = get_kafka_pipeline_prop('prop_offset'), "
            "k = get_kafka_pipeline_prop('prop_key'), h = get_kafka_pipeline_prop('prop_headers')"
        )
        db.execute(f"START PIPELINE p_{table} FOREGROUND")
        rows = db.execute(f"SELECT * FROM {table} ORDER BY part, pos").fetchall()
        errors = db.execute(
            'SELECT BATCH_SOURCE_PARTITION_ID, "OFFSET", ERROR_MESSAGE '
            f"FROM information_schema.PIPELINES_ERRORS WHERE PIPELINE_NAME = 'p_{table}'"
        ).fetchall()
        found[native] = (rows, sorted(errors))
    assert found[True] == found[False]
    rows, errors = found[True]
    assert len(rows) + len(errors) == 900 and len(errors) >= 1
    assert rows[0][3] is None and rows[1][3] == "k3"  # partition 0: ids 0, 3, …
    assert json.loads(rows[0][4]) == {"n": "0"}


TEXTS = ['say "hi", then leave', "two\nlines\r\n", "back\\slash \\N \\.", "\\.", "", " ", "tab\t"]


def test_text_loads_as_it_is_and_an_empty_number_is_null(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    """The text a store's bulk path might read as syntax (quotes, delimiters, line ends,
    backslashes, COPY's NULL and end marker), an empty string and a NULL load as they are;
    an empty field of a number loads NULL."""
    name = topic(1)
    docs = [{"id": i, "s": s, "n": str(i)} for i, s in enumerate(TEXTS)]
    docs.append({"id": len(TEXTS), "s": None, "n": ""})
    produce(broker.bootstrap, name, [json.dumps(d).encode() for d in docs])
    db.execute("CREATE TABLE t (id INTEGER, s VARCHAR, n DOUBLE PRECISION)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "INTO TABLE t FORMAT JSON (id <- id, s <- s, n <- n)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    rows = db.execute("SELECT id, s, n FROM t ORDER BY id").fetchall()
    assert rows == [(i, s, float(i)) for i, s in enumerate(TEXTS)] + [(len(TEXTS), None, None)]
