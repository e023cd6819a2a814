"""The native Kafka drain against the development broker: what a fill hands out, column by
column, and what it says when something is wrong."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer

from sluice.native import kafkadrain
from sluice.native.kafkadrain import WANT_HEADERS, WANT_KEYS, WANT_TIMESTAMPS, Drain, DrainError
from sluice.sources.kafka import _headers_json
from sluice.testing import LocalBroker

pytestmark = pytest.mark.skipif(
    kafkadrain.load() is not None, reason=f"native drain: {kafkadrain.load()}"
)


@pytest.fixture
def drain(broker: LocalBroker) -> Iterator[Drain]:
    d = Drain(
        {"bootstrap.servers": broker.bootstrap, "group.id": "drain-test",
         "enable.partition.eof": True, "enable.auto.commit": False}
    )  # fmt: skip
    yield d
    d.close()


def drain_all(d: Drain, partitions: int, **kw: int) -> list[kafkadrain.Drained]:
    fills, ends = [], set()
    for _ in range(200):
        fill = d.fill(5.0, kw.get("max_rows", 1000), cap=kw.get("cap", 1 << 20), want=7)
        assert fill.error is None, fill.error
        fills.append(fill)
        ends |= set(fill.eof)
        if len(ends) == partitions:
            return fills
    raise AssertionError("the partitions never reached their end")


def test_a_fill_hands_out_every_column_in_order(
    broker: LocalBroker, topic: Callable[..., str], drain: Drain
) -> None:
    name = topic(2)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(3000):
        producer.produce(
            name,
            None if i % 100 == 7 else f"v{i}".encode(),
            key=None if i % 3 == 0 else f"k{i}".encode(),
            partition=i % 2,
            headers=[("h", f"x{i}".encode()), ("none", None)] if i % 250 == 0 else None,
            timestamp=1_700_000_000_000 + i,
        )
    assert producer.flush(30) == 0
    drain.assign(name, {0: -2, 1: 100})  # partition 1 from its offset 100 on
    fills = drain_all(drain, 2, max_rows=700)
    rows = [
        (p, o, v, k, h, t)
        for f in fills
        for p, o, v, k, h, t in zip(
            f.partitions.to_pylist(), f.offsets.to_pylist(), f.values.to_pylist(),
            f.keys.to_pylist(), f.headers.to_pylist(), f.timestamps.to_pylist(), strict=True,
        )
    ]  # fmt: skip
    assert len(rows) == 3000 - 100
    assert max(f.rows for f in fills) <= 700
    for p, o, v, k, h, t in rows:
        i = 2 * o + p  # the message's number, from where it went
        assert v == (None if i % 100 == 7 else f"v{i}".encode())
        assert k == (None if i % 3 == 0 else f"k{i}".encode())
        assert h == (f'{{"h": "x{i}", "none": null}}' if i % 250 == 0 else None)
        assert t == 1_700_000_000_000 + i
    for part in (0, 1):
        offsets = [o for p, o, *_ in rows if p == part]
        assert offsets == list(range(100 if part else 0, 1500))


def test_a_message_larger_than_the_buffer_gets_one_of_its_own(
    broker: LocalBroker, topic: Callable[..., str], drain: Drain
) -> None:
    name = topic(1)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 4 << 20})
    sizes = [10, 3 << 20, 20, 30]
    for size in sizes:
        producer.produce(name, b"x" * size)
    assert producer.flush(30) == 0
    drain.assign(name, {0: -2})
    fills = drain_all(drain, 1, cap=1 << 16)
    assert [len(v) for f in fills for v in f.values.to_pylist()] == sizes


def test_headers_are_the_json_text_the_python_path_writes(
    broker: LocalBroker, topic: Callable[..., str], drain: Drain
) -> None:
    """Quotes, backslashes, control characters, non-ASCII text, bytes that are not UTF-8, a
    NULL value, a name given twice (its last value counts) and an empty value."""
    name = topic(1)
    cases: list[list[tuple[str, bytes | None]]] = [
        [("q", b'say "hi"\\ now'), ("ctl", b"a\tb\nc\x01\x1f\r\x08\x0c\x0b")],
        [("t\u00e9", "caf\u00e9 \u2028 \U0001f600".encode()), ("bad", b"x\xffy\xc3")],
        [("n", None), ("e", b""), ("n", b"last")],
        [("only", b"1")],
    ]
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for headers in cases:
        producer.produce(name, b"v", headers=headers)
    assert producer.flush(30) == 0
    drain.assign(name, {0: -2})
    got = [h for f in drain_all(drain, 1) for h in f.headers.to_pylist()]
    assert got == [_headers_json(headers) for headers in cases]


def test_bad_settings_and_logs_are_librdkafkas_own(
    broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(DrainError, match="No such configuration property"):
        Drain({"bootstrap.servers": broker.bootstrap, "no.such.key": "1"})
    d = Drain({"bootstrap.servers": "127.0.0.1:9", "group.id": "g", "debug": "broker",
               "socket.connection.setup.timeout.ms": 1000})  # fmt: skip
    try:
        d.assign("nothing", {0: -2})
        with caplog.at_level(logging.DEBUG, logger="sluice.kafka.librdkafka"):
            for _ in range(20):
                d.fill(0.2, 10, want=WANT_KEYS | WANT_HEADERS | WANT_TIMESTAMPS)
                if any("127.0.0.1:9" in r.getMessage() for r in caplog.records):
                    break
        assert any("127.0.0.1:9" in r.getMessage() for r in caplog.records)
    finally:
        d.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_topics_are_read_in_order(
    broker: LocalBroker, topic: Callable[..., str], drain: Drain, codec: str
) -> None:
    name = topic(1)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 50}
    )
    for i in range(2000):
        producer.produce(name, f"reading {i} ".encode() * 4)
    assert producer.flush(30) == 0
    drain.assign(name, {0: 0})
    fills = drain_all(drain, 1, max_rows=700)
    assert [v for f in fills for v in f.values.to_pylist()] == [
        f"reading {i} ".encode() * 4 for i in range(2000)
    ]
    assert [o for f in fills for o in f.offsets.to_pylist()] == list(range(2000))


def test_security_settings_reach_librdkafka(broker: LocalBroker) -> None:
    """SASL over TLS is built into the librdkafka the drain runs (confluent-kafka's): its
    settings are taken, and a bad one is refused in librdkafka's words."""
    secure = {
        "bootstrap.servers": broker.bootstrap, "group.id": "g",
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u", "sasl.password": "p",
        "ssl.endpoint.identification.algorithm": "https",
    }  # fmt: skip
    Drain(secure).close()
    with pytest.raises(DrainError, match="Unsupported SASL mechanism: NO-SUCH-MECHANISM"):
        Drain({**secure, "sasl.mechanism": "NO-SUCH-MECHANISM"})
