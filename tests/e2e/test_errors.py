"""Bad records never stop ingestion silently and never lose data."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

import sluice
from sluice.testing import LocalBroker, produce, wait_for
from tests.e2e.helpers import kafka, states


def errors(db: sluice.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        'SELECT BATCH_SOURCE_PARTITION_ID, "OFFSET", ERROR_KIND, ERROR_MESSAGE, LOAD_DATA_LINE, '
        'BATCH_ID FROM information_schema.PIPELINES_ERRORS ORDER BY "OFFSET"'
    ).fetchall()


POISON = [
    (b'{"id": 0, "n": 10, "s": "ok"}', None),
    (b'{"id": 1, "n": 11', "not valid JSON"),
    (b'{"id": 2, "n": 12, "s": "caf\xc3', "not valid UTF-8"),
    (b'{"id": 3, "n": "twelve", "s": "x"}', "column n: 'twelve' is not a valid INTEGER"),
    (b'{"id": 4, "s": "no n"}', "JSON path n is missing and has no DEFAULT"),
    (b'{"id": 5, "n": 15, "s": "' + b"x" * 1_000_000 + b'"}', None),  # 1 MB, valid
    (b"", "not valid JSON"),
    (b'{"id": 7, "n": 17, "s": null}', None),
    (b'{"id": 8, "n": [1, 2], "s": "list"}', "column n: '[1,2]' is not a valid INTEGER"),
    (b'["not", "an", "object"]', "expected an object"),
    (b'{"id": 10, "n": 20, "s": "last"}', None),
]


def test_skip_parser_errors_loads_the_good_and_records_the_bad(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, [value for value, _ in POISON])
    db.execute("CREATE TABLE t (id INTEGER, n INTEGER, s VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} SKIP PARSER ERRORS "
        "INTO TABLE t FORMAT JSON (id <- id, n <- n, s <- s)"
    )
    batches = db.execute("START PIPELINE p FOREGROUND").fetchall()
    bad = [i for i, (_, reason) in enumerate(POISON) if reason]
    assert sum(b[3] for b in batches) == len(bad)  # the ERRORS column of FOREGROUND
    good = [i for i, (_, reason) in enumerate(POISON) if reason is None]
    assert [r[0] for r in db.execute("SELECT id FROM t ORDER BY id").fetchall()] == good
    assert db.execute("SELECT length(s) FROM t WHERE id = 5").fetchone() == (1_000_000,)
    assert db.execute("SELECT n FROM t WHERE id = 7").fetchone() == (17,)
    found = errors(db)
    assert [(r[0], r[1], r[2]) for r in found] == [("0", i, "Parse") for i in bad]
    for row, i in zip(found, bad, strict=True):
        reason = POISON[i][1]
        assert reason is not None and reason.lower() in str(row[3]).lower(), (row, reason)
        assert str(row[4]) == POISON[i][0].decode("utf-8", errors="replace")
    # Errors and good rows were written by the same transaction: the batch that loaded rows.
    loaded_batches = {b[0] for b in batches if b[2] > 0}
    assert {r[5] for r in found} <= loaded_batches
    assert db.execute(
        "SELECT CURSOR_OFFSET FROM information_schema.PIPELINES_OFFSETS"
    ).fetchall() == [(len(POISON),)]


def test_skip_constraint_errors_records_rows_the_table_rejects(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    values = [
        {"id": 1, "v": 5},
        {"id": 2, "v": None},  # NOT NULL
        {"id": 1, "v": 6},  # primary key: id 1 is already in this batch
        {"id": 3, "v": -1},  # CHECK (v > 0)
        {"id": 4, "v": 8},
    ]
    produce(broker.bootstrap, name, [json.dumps(v).encode() for v in values])
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL CHECK (v > 0))")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} SKIP CONSTRAINT ERRORS "
        "INTO TABLE t FORMAT JSON (id <- id, v <- v)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, 5), (4, 8)]
    found = errors(db)
    assert [(r[1], r[2]) for r in found] == [(1, "Load"), (2, "Load"), (3, "Load")]
    assert re.search("not.null", str(found[0][3]), re.IGNORECASE)  # each store says it its way
    assert "duplicate key" in str(found[1][3]).lower()
    assert "check" in str(found[2][3]).lower()


def test_skip_duplicate_key_errors_skips_only_duplicates(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    first = [b'{"id": 1, "v": 1}', b'{"id": 1, "v": 2}', b'{"id": 2, "v": 3}']
    produce(broker.bootstrap, name, first)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} SKIP DUPLICATE KEY ERRORS "
        "INTO TABLE t FORMAT JSON (id <- id, v <- v)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, 1), (2, 3)]
    assert [(r[1], r[2]) for r in errors(db)] == [(1, "Load")]
    produce(broker.bootstrap, name, [b'{"id": 3, "v": null}'])
    with pytest.raises(sluice.SluiceError, match=r"(?i)offset 3: .*not.null"):
        db.execute("START PIPELINE p FOREGROUND")


def test_without_skip_a_bad_record_stops_the_pipeline_with_its_cursor_unchanged(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "MAX_RETRIES_PER_BATCH_PARTITION 2 INTO TABLE t FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p")
    produce(broker.bootstrap, name, [b'{"id": 1}'])
    wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (1,), message="row 1")
    produce(broker.bootstrap, name, [b'{"id": 2}', b'{"id": "two"}'])
    wait_for(lambda: states(db) == [("p", "Error")], message="Error")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert db.execute(
        "SELECT CURSOR_OFFSET FROM information_schema.PIPELINES_OFFSETS"
    ).fetchall() == [(1,)]
    found = errors(db)
    assert len(found) == 1 and found[0][:3] == ("0", 2, "Parse")
    assert "column id: 'two' is not a valid integer" in str(found[0][3]).lower()
    assert found[0][4] == '{"id": "two"}'


def test_stop_on_error_off_skips_the_failing_records_and_goes_on(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "MAX_RETRIES_PER_BATCH_PARTITION 1 STOP_ON_ERROR OFF INTO TABLE t FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p")
    produce(broker.bootstrap, name, [b'{"id": 1}', b"{broken", b'{"id": 3}'])
    wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (2,), message="skip")
    produce(broker.bootstrap, name, [b'{"id": 4}'])
    wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (3,), message="goes on")
    assert states(db) == [("p", "Running")]
    assert [(r[1], r[2]) for r in errors(db)] == [(1, "Parse")]


def test_replay_errors_loads_records_a_fixed_pipeline_accepts(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    good = [json.dumps({"id": i, "temp": i * 1.5}).encode() for i in range(20)]
    odd = [json.dumps({"id": 100 + i, "reading": {"temp": i}}).encode() for i in range(6)]
    produce(broker.bootstrap, name, good + odd, partitions=2)
    db.execute("CREATE TABLE t (id INTEGER, temp DOUBLE PRECISION)")
    create = (
        f"CREATE OR REPLACE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} SKIP PARSER ERRORS "
        "INTO TABLE t FORMAT JSON (id <- id, temp <- temp)"
    )
    db.execute(create)
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (20,)
    assert len(errors(db)) == 6
    # The fix: these records keep the temperature elsewhere.
    fixed = "temp <- temp DEFAULT NULL, @r <- reading DEFAULT NULL"
    db.execute(
        create.replace("temp <- temp", fixed)
        + " SET temp = coalesce(temp, CAST(CAST(@r AS JSON) ->> 'temp' AS DOUBLE PRECISION))"
    )
    result = db.execute('REPLAY ERRORS FOR PIPELINE p WHERE "OFFSET" < 12')
    assert result.columns == ["ROWS_LOADED", "ERRORS_REPLAYED", "ERRORS_REMAINING"]
    replayed = result.fetchall()[0]
    assert replayed[1] > 0 and replayed[2] == 0
    remaining = 6 - replayed[1]
    assert len(errors(db)) == remaining
    db.execute("REPLAY ERRORS FOR PIPELINE p")
    assert errors(db) == []
    assert db.execute("SELECT count(*), sum(temp) FROM t WHERE id >= 100").fetchone() == (6, 15.0)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (26,)
    assert db.execute("REPLAY ERRORS FOR PIPELINE p").fetchall() == [(0, 0, 0)]


def test_replay_keeps_what_still_fails_and_clear_empties(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, [b'{"id": 1}', b"nope", b'{"id": "x"}'])
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} SKIP ALL ERRORS "
        "INTO TABLE t FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("REPLAY ERRORS FOR PIPELINE p").fetchall() == [(0, 0, 2)]
    assert len(errors(db)) == 2
    assert db.execute("CLEAR PIPELINE ERRORS p").rowcount == 2
    assert errors(db) == []
