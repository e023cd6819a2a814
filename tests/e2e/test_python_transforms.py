"""WITH TRANSFORM PYTHON: a function on the typed Arrow batch, in-process, on both stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import sluice
from sluice.testing import LocalBroker, produce, wait_for
from tests.e2e import pytransforms
from tests.e2e.helpers import kafka, states

MAPPING = "FORMAT JSON (id <- id, c <- c, off <- off)"


def readings(n: int) -> list[bytes]:
    return [json.dumps({"id": i, "c": i, "off": i % 10 == 9}).encode() for i in range(n)]


def create(db: sluice.Connection, source: str, transform: str, options: str = "") -> None:
    db.execute("CREATE TABLE t (id INTEGER, c DOUBLE PRECISION, off BOOLEAN, f DOUBLE PRECISION)")
    db.execute(
        f"CREATE OR REPLACE PIPELINE p AS LOAD DATA KAFKA {source} {options} "
        f"WITH TRANSFORM PYTHON {transform} INTO TABLE t {MAPPING}"
    )


def test_a_function_computes_filters_and_rejects_rows_with_their_records(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    produce(broker.bootstrap, name, readings(1000), partitions=2)
    create(
        db,
        kafka(broker, name),
        "'tests.e2e.pytransforms:fahrenheit' '{\"limit\": 1700}'",
        "SKIP PARSER ERRORS",
    )
    preview = db.execute("TEST PIPELINE p LIMIT 3").fetchall()
    assert len(preview) == 3 and all(f == c * 1.8 + 32 for _, c, _, f in preview)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)  # TEST writes nothing

    pytransforms.CALLS.clear()
    batches = db.execute("START PIPELINE p FOREGROUND").fetchall()
    assert len(pytransforms.CALLS) == len(batches)  # once per batch, not per row
    # 100 are off (filtered out); of the rest, c > 927.7 means f > 1700: rejected, named
    kept = [i for i in range(1000) if i % 10 != 9]
    loaded = [i for i in kept if i * 1.8 + 32 <= 1700]
    stats = db.execute("SELECT count(*), sum(id), bool_or(off) FROM t").fetchone()
    assert stats == (len(loaded), sum(loaded), False)
    refused = db.execute(
        "SELECT ERROR_KIND, ERROR_MESSAGE, LOAD_DATA_LINE FROM information_schema.PIPELINES_ERRORS"
    ).fetchall()
    assert len(refused) == len(kept) - len(loaded)
    kind, message, line = refused[0]
    assert kind == "Transform" and "hotter than 1700" in message
    assert json.loads(line)["id"] in set(kept) - set(loaded)

    # REPLAY ERRORS runs the same stages: with a higher limit, the rejected rows load
    db.execute(
        f"CREATE OR REPLACE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "SKIP PARSER ERRORS WITH TRANSFORM PYTHON 'tests.e2e.pytransforms:fahrenheit' "
        f"'{{\"limit\": 5000}}' INTO TABLE t {MAPPING}"
    )
    assert db.execute("REPLAY ERRORS FOR PIPELINE p").fetchall() == [
        (len(kept) - len(loaded), len(kept) - len(loaded), 0)
    ]
    assert db.execute("SELECT count(*), sum(id) FROM t").fetchone() == (len(kept), sum(kept))


def test_a_rejected_row_fails_the_batch_unless_skipped_and_bad_values_are_named(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(
        broker.bootstrap,
        name,
        [b'{"id": 1, "c": 1, "off": false}', b'{"id": 2, "c": 999, "off": false}'],
    )
    create(db, kafka(broker, name), "'tests.e2e.pytransforms:fahrenheit' '{\"limit\": 100}'")
    with pytest.raises(sluice.SluiceError, match=r"partition 0 offset 1: hotter than 100 F"):
        db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)

    # a value that does not convert to its column is rejected before the function sees it
    other = topic(1)
    produce(
        broker.bootstrap,
        other,
        [b'{"id": "x7", "c": 1, "off": false}', b'{"id": 3, "c": 2, "off": false}'],
    )
    db.execute("DROP PIPELINE p")
    db.execute("DROP TABLE t")
    create(db, kafka(broker, other), "'tests.e2e.pytransforms:fahrenheit'", "SKIP ALL ERRORS")
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT id, f FROM t").fetchall() == [(3, 35.6)]
    assert db.execute(
        "SELECT ERROR_KIND, lower(ERROR_MESSAGE) FROM information_schema.PIPELINES_ERRORS"
    ).fetchall() == [("Parse", "column id: 'x7' is not a valid integer")]


def test_an_exception_fails_the_batch_with_its_traceback(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, readings(10))
    create(
        db,
        kafka(broker, name),
        "'tests.e2e.pytransforms:fails'",
        "MAX_RETRIES_PER_BATCH_PARTITION 1",
    )
    db.execute("START PIPELINE p")
    wait_for(lambda: states(db) == [("p", "Error")], message="state Error")
    message, trace = db.execute(
        "SELECT ERROR_MESSAGE, STD_ERROR FROM information_schema.PIPELINES_ERRORS"
    ).fetchall()[-1]
    assert "raised: ValueError('the model file is corrupt')" in message
    assert "Traceback" in trace and 'raise ValueError("the model file is corrupt")' in trace
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_function_in_a_file_and_bad_functions_are_named(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], tmp_path: Path
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, readings(3))
    module = tmp_path / "double.py"
    module.write_text(
        "import pyarrow.compute as pc\n"
        "def double(table):\n"
        "    return table.set_column(1, 'c', pc.multiply(table.column('c'), 2.0))\n"
    )
    create(db, kafka(broker, name), f"'{module}:double'")
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT sum(c) FROM t").fetchone() == (6.0,)

    bad = {
        "'tests.e2e.nope:f'": "cannot import tests.e2e.nope",
        "'tests.e2e.pytransforms:missing'": "has no function missing",
        "'tests.e2e.pytransforms'": "name a function as 'package.module:function'",
        "'tests.e2e.pytransforms:fails' '[1]'": "arguments must be a JSON object",
    }
    for transform, reason in bad.items():
        with pytest.raises(sluice.SluiceError, match=reason):
            db.execute(
                f"CREATE OR REPLACE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
                f"WITH TRANSFORM PYTHON {transform} INTO TABLE t {MAPPING}"
            )
    db.execute(
        f"CREATE OR REPLACE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        f"WITH TRANSFORM PYTHON 'tests.e2e.pytransforms:not_a_table' INTO TABLE t {MAPPING}"
    )
    db.execute("ALTER PIPELINE p SET OFFSETS EARLIEST")
    with pytest.raises(sluice.SluiceError, match=r"returned list, not a pyarrow\.Table"):
        db.execute("START PIPELINE p FOREGROUND")


def test_test_pipeline_stages_shows_the_rows_after_every_stage(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, readings(5))
    create(db, kafka(broker, name), "'tests.e2e.pytransforms:fahrenheit'")
    shown = db.execute("TEST PIPELINE p LIMIT 2 STAGES").fetchall()
    assert [stage for stage, _, _ in shown] == ["extract"] * 2 + ["parse"] * 2 + ["python"] * 2 + [
        "load"
    ] * 2
    extract, parse, python, load = shown[0], shown[2], shown[4], shown[6]
    assert extract[1] == "0:0" and json.loads(extract[2]) == {"id": 0, "c": 0, "off": False}
    assert parse[1] == "0:0" and json.loads(parse[2]) == {"id": "0", "c": "0", "off": "0"}
    assert json.loads(python[2]) == {"id": 0, "c": 0.0, "off": False, "f": 32.0}
    assert json.loads(load[2]) == {"id": 0, "c": 0.0, "off": False, "f": 32.0}
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)  # nothing written
