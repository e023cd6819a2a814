"""FORMAT AVRO end to end: messages framed by confluent-kafka's own AvroSerializer against the
Confluent-compatible registry of sluice.testing, bare bodies with SCHEMA, and container files."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import sluice
from sluice.testing import LocalBroker, SchemaRegistry, produce, wait_for
from tests.e2e.helpers import kafka

READING = {
    "type": "record",
    "name": "Reading",
    "namespace": "drill",
    "fields": [
        {"name": "drill", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {
            "name": "cost",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2},
        },
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "depth", "type": "double"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {
            "name": "pos",
            "type": {
                "type": "record",
                "name": "Pos",
                "fields": [{"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}],
            },
        },
        {"name": "tags", "type": {"type": "map", "values": "long"}},
        {"name": "ok", "type": "boolean"},
    ],
}
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def reading(i: int) -> dict[str, Any]:
    return {
        "drill": f"d{i % 5}",
        "at": T0 + dt.timedelta(seconds=i),
        "day": dt.date(2026, 3, 1) + dt.timedelta(days=i % 3),
        "cost": decimal.Decimal(i) / 4,
        "id": str(uuid.UUID(int=i)),
        "depth": i * 1.5,
        "note": None if i % 2 else f"n{i}",
        "pos": {"lat": 60.0 + i / 1000, "lon": 5.0},
        "tags": {"k": i},
        "ok": i % 3 == 0,
    }


@pytest.fixture
def registry() -> Iterator[SchemaRegistry]:
    with SchemaRegistry() as r:
        yield r


def serializer(registry: SchemaRegistry, schema: dict[str, Any], **conf: Any) -> Callable:
    client = SchemaRegistryClient({"url": registry.url, **conf})
    serialize = AvroSerializer(client, json.dumps(schema))

    def encode(value: dict[str, Any], topic: str) -> bytes:
        out = serialize(value, SerializationContext(topic, MessageField.VALUE))
        assert out is not None
        return out

    return encode


TABLE = (
    "CREATE TABLE t (drill VARCHAR, ts TIMESTAMPTZ, day DATE, cost DECIMAL(9, 2), id VARCHAR, "
    "depth DOUBLE PRECISION, note VARCHAR, lat DOUBLE PRECISION, tags VARCHAR, ok INT)"
)
MAPPING = (
    "(drill <- drill, ts <- at, day <- day, cost <- cost, id <- id, depth <- depth, "
    "note <- note::string, lat <- pos::lat, tags <- tags, ok <- ok)"
)


def test_registry_framed_messages_load_with_their_types(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], registry: SchemaRegistry
) -> None:
    name = topic(2)
    encode = serializer(registry, READING)
    produce(broker.bootstrap, name, [encode(reading(i), name) for i in range(1000)], partitions=2)
    db.execute(TABLE)
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        f"FORMAT AVRO SCHEMA REGISTRY '{registry.url}' {MAPPING}"
    )
    assert sum(b[1] for b in db.execute("START PIPELINE p FOREGROUND").fetchall()) == 1000
    assert db.execute("SELECT count(*), count(DISTINCT id), sum(ok) FROM t").fetchone() == (
        1000,
        1000,
        334,
    )
    row = db.execute(
        "SELECT drill, ts, day, cost, id, depth, note, lat, tags, ok FROM t "
        "WHERE id = '00000000-0000-0000-0000-00000000002a'"
    ).fetchone()
    assert row is not None
    assert row[:1] == ("d2",)
    assert row[1] == T0 + dt.timedelta(seconds=42)
    assert row[2:8] == (
        dt.date(2026, 3, 1),
        decimal.Decimal("10.50"),
        str(uuid.UUID(int=42)),
        63.0,
        "n42",
        60.042,
    )
    assert json.loads(row[8]) == {"k": 42} and row[9] == 1
    assert db.execute("SELECT count(*) FROM t WHERE note IS NULL").fetchone() == (500,)
    # the schema was fetched once, however many messages carried its id
    assert registry.requests.count("GET /schemas/ids/1") == 1


def test_a_schema_that_evolves_mid_stream_loads_without_a_restart(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], registry: SchemaRegistry
) -> None:
    name = topic(1)
    v1 = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "id", "type": "long"}, {"name": "old", "type": "string"}],
    }
    # v2 drops `old` and adds `extra` with a default, as a compatible evolution does
    v2 = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "extra", "type": "int", "default": 7},
        ],
    }
    first, second = serializer(registry, v1), serializer(registry, v2)
    db.execute("CREATE TABLE t (id BIGINT, old VARCHAR, extra INT)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        f"FORMAT AVRO SCHEMA REGISTRY '{registry.url}' "
        "(id <- id, old <- old DEFAULT 'gone', extra <- extra DEFAULT -1)"
    )
    db.execute("START PIPELINE p")
    try:
        produce(broker.bootstrap, name, [first({"id": i, "old": f"o{i}"}, name) for i in range(3)])
        wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (3,), 30, "v1 rows")
        produce(broker.bootstrap, name, [second({"id": i, "extra": i}, name) for i in range(3, 6)])
        mixed = [first({"id": 6, "old": "o6"}, name), second({"id": 7, "extra": 70}, name)]
        produce(broker.bootstrap, name, mixed)
        wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (8,), 30, "v2 rows")
    finally:
        db.execute("STOP PIPELINE p")
    rows = db.execute("SELECT id, old, extra FROM t ORDER BY id").fetchall()
    assert rows == [
        (0, "o0", -1),
        (1, "o1", -1),
        (2, "o2", -1),
        (3, "gone", 3),
        (4, "gone", 4),
        (5, "gone", 5),
        (6, "o6", -1),
        (7, "gone", 70),
    ]
    state = db.execute("SELECT STATE FROM information_schema.PIPELINES").fetchone()
    assert state == ("Stopped",)


def test_bad_messages_are_record_errors_and_the_rest_loads(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], registry: SchemaRegistry
) -> None:
    name = topic(1)
    schema = {"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"}]}
    encode = serializer(registry, schema)
    good = [encode({"id": i}, name) for i in range(4)]
    messages = [
        good[0],
        b"\x01\x00\x00\x00\x01\x02",  # a framing Sluice does not speak
        good[1],
        b"\x00\x00\x00\x00\x63\x02",  # schema id 99: not in the registry
        good[2][:-1],  # cut short
        good[2] + b"\x00\x00",  # two bytes too many
        good[3],
    ]
    produce(broker.bootstrap, name, messages)
    db.execute("CREATE TABLE t (id BIGINT)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} SKIP PARSER ERRORS "
        f"INTO TABLE t FORMAT AVRO SCHEMA REGISTRY '{registry.url}' (id <- id)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT id FROM t ORDER BY id").fetchall() == [(0,), (1,), (3,)]
    errors = db.execute(
        "SELECT BATCH_SOURCE_PARTITION_ID, ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS "
        "ORDER BY ERROR_MESSAGE"
    ).fetchall()
    reasons = sorted(e[1] for e in errors)
    assert len(reasons) == 4, reasons
    assert any("starts with byte 1, not 0" in r for r in reasons)
    assert any("schema id 99 is not in the schema registry" in r and "40403" in r for r in reasons)
    assert any("followed by 2 more byte(s)" in r for r in reasons)
    assert any("not an Avro record of schema id 1" in r for r in reasons)


def test_an_unreachable_registry_keeps_the_pipeline_running_until_it_answers(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], registry: SchemaRegistry
) -> None:
    name = topic(1)
    schema = {"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"}]}
    encode = serializer(registry, schema)
    produce(broker.bootstrap, name, [encode({"id": i}, name) for i in range(5)])
    registry.fail = 503
    db.execute("CREATE TABLE t (id BIGINT)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        f"FORMAT AVRO SCHEMA REGISTRY '{registry.url}' (id <- id)"
    )
    db.execute("START PIPELINE p")
    try:
        warning = "SELECT ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS"
        found = wait_for(lambda: db.execute(warning).fetchall(), 30, "a warning")
        assert "schema registry failed" in found[0][0] and "503" in found[0][0]
        assert db.execute("SELECT STATE FROM information_schema.PIPELINES").fetchone() == (
            "Running",
        )
        registry.fail = None
        wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (5,), 30, "rows")
    finally:
        db.execute("STOP PIPELINE p")


def test_registry_credentials_go_in_credentials(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    schema = {"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"}]}
    with SchemaRegistry(user="sluice", password="s3cret") as registry:
        encode = serializer(registry, schema, **{"basic.auth.user.info": "sluice:s3cret"})
        produce(broker.bootstrap, name, [encode({"id": i}, name) for i in range(3)])
        db.execute("CREATE TABLE t (id BIGINT)")
        db.execute(
            f"CREATE PIPELINE nopass AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
            f"FORMAT AVRO SCHEMA REGISTRY '{registry.url}' (id <- id)"
        )
        with pytest.raises(sluice.SluiceError, match=r"registry refused Sluice .*401"):
            db.execute("START PIPELINE nopass FOREGROUND")
        creds = json.dumps({"schema.registry.basic.auth.user.info": "sluice:s3cret"})
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} CREDENTIALS '{creds}' "
            f"INTO TABLE t FORMAT AVRO SCHEMA REGISTRY '{registry.url}' (id <- id)"
        )
        db.execute("START PIPELINE p FOREGROUND")
        assert db.execute("SELECT sum(id) FROM t").fetchone() == (3,)
        shown = db.execute("SHOW CREATE PIPELINE p").fetchone()
        assert shown is not None and "s3cret" not in str(shown)


def test_bare_bodies_with_an_inline_schema(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "id", "type": "long"},
            # several non-null branches: Polars cannot read it, fastavro does
            {"name": "v", "type": ["null", "long", "string"]},
        ],
    }
    parsed = fastavro.parse_schema(schema)

    def body(value: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, value)
        return out.getvalue()

    values = [{"id": 1, "v": 10}, {"id": 2, "v": "ten"}, {"id": 3, "v": None}]
    produce(broker.bootstrap, name, [body(v) for v in values])
    db.execute("CREATE TABLE t (id BIGINT, n BIGINT, s VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        f"FORMAT AVRO (id <- id, n <- v::long, s <- v::string) SCHEMA '{json.dumps(schema)}'"
    )
    db.execute("START PIPELINE p FOREGROUND")
    rows = db.execute("SELECT id, n, s FROM t ORDER BY id").fetchall()
    assert rows == [(1, 10, None), (2, None, "ten"), (3, None, None)]


def test_a_path_the_schema_does_not_have_is_an_error_that_names_it(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], registry: SchemaRegistry
) -> None:
    name = topic(1)
    encode = serializer(registry, READING)
    produce(broker.bootstrap, name, [encode(reading(1), name)])
    db.execute("CREATE TABLE t (x VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        f"FORMAT AVRO SCHEMA REGISTRY '{registry.url}' (x <- pos::alt)"
    )
    with pytest.raises(sluice.SluiceError, match=r"Avro path pos::alt: record drill\.Pos has no"):
        db.execute("START PIPELINE p FOREGROUND")


def test_kafka_avro_without_a_schema_is_refused_at_create(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    db.execute("CREATE TABLE t (id BIGINT)")
    with pytest.raises(sluice.SluiceError, match="needs SCHEMA REGISTRY 'url'"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, topic(1))} INTO TABLE t "
            "FORMAT AVRO (id <- id)"
        )


def test_container_files_and_bare_body_files(db: sluice.Connection, tmp_path: Path) -> None:
    schema = fastavro.parse_schema(READING)
    for k, codec in enumerate(("null", "deflate")):
        with open(tmp_path / f"r{k}.avro", "wb") as fh:
            fastavro.writer(fh, schema, [reading(i) for i in range(k * 100, k * 100 + 100)], codec)
    simple = {"type": "record", "name": "S", "fields": [{"name": "drill", "type": "string"}]}
    with open(tmp_path / "bare.raw", "wb") as fh:
        for i in range(3):
            fastavro.schemaless_writer(fh, fastavro.parse_schema(simple), {"drill": f"b{i}"})
    db.execute(TABLE)
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.avro' INTO TABLE t FORMAT AVRO {MAPPING}"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*), sum(depth) FROM t").fetchone() == (
        200,
        sum(i * 1.5 for i in range(200)),
    )
    db.execute(
        f"CREATE PIPELINE raw AS LOAD DATA FS '{tmp_path}/*.raw' INTO TABLE t "
        f"FORMAT AVRO (drill <- drill) SCHEMA '{json.dumps(simple)}'"
    )
    db.execute("START PIPELINE raw FOREGROUND")
    assert db.execute("SELECT drill FROM t WHERE drill LIKE 'b%' ORDER BY 1").fetchall() == [
        ("b0",),
        ("b1",),
        ("b2",),
    ]
