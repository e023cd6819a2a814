"""LOAD DATA RABBITMQ against a real RabbitMQ node (Debian's rabbitmq-server, its stream
plugin enabled by the test setup), written to with rstream's producer."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from rstream import AMQPMessage

import sluice
from sluice.sources.rabbitmq import RabbitMQSource, _amqp_body
from sluice.testing import LocalRabbitMQ, unique_name, wait_for
from tests.e2e.helpers import states
from tests.e2e.loaders import consistent, kill_at_a_commit, start_loader


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[LocalRabbitMQ]:
    with LocalRabbitMQ() as node:
        yield node


@pytest.fixture
def stream(rabbitmq: LocalRabbitMQ) -> Iterator[str]:
    name = unique_name("s")
    rabbitmq.create_stream(name)
    yield name
    rabbitmq.delete_stream(name)


def source(rabbitmq: LocalRabbitMQ, stream: str, **config: object) -> str:
    sql = f"LOAD DATA RABBITMQ '{rabbitmq.url}/{stream}'"
    if config:
        sql += f" CONFIG '{json.dumps(config)}'"
    return sql + f" CREDENTIALS '{json.dumps(LocalRabbitMQ.CREDENTIALS)}'"


def readings(ids: range) -> list[bytes]:
    return [json.dumps({"id": i, "v": i % 7}).encode() for i in ids]


def test_a_stream_loads_once_and_resumes_from_its_cursor(
    db: sluice.Connection, rabbitmq: LocalRabbitMQ, stream: str
) -> None:
    rabbitmq.publish(stream, readings(range(0, 1000)), chunk=100)
    db.execute("CREATE TABLE t (id BIGINT, v INTEGER, pos BIGINT, src VARCHAR, ms BIGINT)")
    db.execute(
        f"CREATE PIPELINE p AS {source(rabbitmq, stream)} MAX_OFFSETS_PER_BATCH_PARTITION 300 "
        "INTO TABLE t FORMAT JSON (id <- id, v <- v) "
        "SET pos = get_kafka_pipeline_prop('prop_offset'), "
        "src = get_kafka_pipeline_prop('prop_topicname'), "
        "ms = get_kafka_pipeline_prop('prop_timestamp')"
    )
    before = int(time.time() * 1000) - 60_000
    batches = db.execute("START PIPELINE p FOREGROUND").fetchall()
    assert len(batches) >= 4 and all(b[1] <= 300 for b in batches)  # 300 offsets a batch at most
    assert db.execute("SELECT count(*), sum(id), min(pos), max(pos) FROM t").fetchone() == (
        1000, sum(range(1000)), 0, 999,
    )  # fmt: skip
    assert db.execute("SELECT DISTINCT src FROM t").fetchall() == [(stream,)]
    assert db.execute(f"SELECT count(*) FROM t WHERE ms > {before}").fetchone() == (1000,)
    offsets = "SELECT SOURCE_PARTITION_ID, CURSOR_OFFSET FROM information_schema.PIPELINES_OFFSETS"
    assert db.execute(offsets).fetchall() == [("0", 1000)]
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []  # nothing loads twice
    # AMQP 1.0 messages, as RabbitMQ's other clients write them: the record is their body
    amqp = [
        bytes(AMQPMessage(body=m, application_properties={"site": "north"}))
        for m in readings(range(1000, 1500))
    ]
    rabbitmq.publish(stream, amqp)
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone() == (1500, 1500)
    # running in the background, it loads what comes as it comes
    db.execute("START PIPELINE p")
    try:
        rabbitmq.publish(stream, readings(range(1500, 1700)))
        wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (1700,), 60, "rows")
    finally:
        db.execute("STOP PIPELINE p")
    assert db.execute(offsets).fetchall() == [("0", 1700)]
    assert db.execute("SELECT count(DISTINCT id) FROM t").fetchone() == (1700,)


def test_set_offsets_and_raw_messages(
    db: sluice.Connection, rabbitmq: LocalRabbitMQ, stream: str
) -> None:
    rabbitmq.publish(stream, [b"a", b"b", b"c"])
    db.execute("CREATE TABLE t (line VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS {source(rabbitmq, stream, message_format='raw')} "
        "SKIP PARSER ERRORS INTO TABLE t"
    )
    db.execute("ALTER PIPELINE p SET OFFSETS LATEST")
    rabbitmq.publish(stream, [b"d", bytes(AMQPMessage(body=b"e"))])
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT line FROM t").fetchall() == [("d",)]
    # raw: the AMQP message is kept whole, which is not text
    errors = "SELECT ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS"
    assert "not valid UTF-8" in db.execute(errors).fetchall()[0][0]
    db.execute("ALTER PIPELINE p SET OFFSETS EARLIEST")
    db.execute("DELETE FROM t")
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (4,)  # a, b, c, d


def test_an_empty_stream_loads_nothing_and_then_what_comes(
    db: sluice.Connection, rabbitmq: LocalRabbitMQ, stream: str
) -> None:
    db.execute("CREATE TABLE t (id BIGINT, v INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS {source(rabbitmq, stream)} INTO TABLE t "
        "FORMAT JSON (id <- id, v <- v)"
    )
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []
    rabbitmq.publish(stream, readings(range(5)))
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (5,)


def test_problems_are_named(db: sluice.Connection, rabbitmq: LocalRabbitMQ) -> None:
    db.execute("CREATE TABLE t (a VARCHAR)")
    creds = json.dumps(LocalRabbitMQ.CREDENTIALS)
    for load, says in (
        (f"RABBITMQ '{rabbitmq.url}/nope' CREDENTIALS '{creds}'", "stream 'nope' does not exist"),
        (
            f"RABBITMQ '{rabbitmq.url}/nope' "
            """CREDENTIALS '{"username": "guest", "password": "x"}'""",
            "refused the credentials of user 'guest'",
        ),
        ("RABBITMQ '127.0.0.1:9/s'", "cannot reach RabbitMQ at 127.0.0.1:9"),
        ("RABBITMQ 'nowhere'", "must look like 'host[:port]/stream'"),
        (
            f"""RABBITMQ '{rabbitmq.url}/s' CREDENTIALS '{{"user": "x"}}'""",
            "unknown RABBITMQ CREDENTIALS",
        ),
        (
            f"""RABBITMQ '{rabbitmq.url}/s' CONFIG '{{"message_format": "xml"}}'""",
            "message_format must be 'amqp' or 'raw'",
        ),
    ):
        with pytest.raises(sluice.SluiceError, match=re.escape(says)):
            db.execute(f"CREATE PIPELINE p AS LOAD DATA {load} INTO TABLE t")


def test_amqp_bodies_are_read_and_anything_else_is_kept() -> None:
    body = b'{"id": 1}'
    assert _amqp_body(bytes(AMQPMessage(body=body))) == body
    with_all = AMQPMessage(
        body=body,
        application_properties={"k": "v", "n": 7},
        properties=None,
        message_annotations={"x-opt": "y"},
    )
    assert _amqp_body(bytes(with_all)) == body
    assert _amqp_body(bytes(AMQPMessage(value="text"))) == b"text"
    for raw in (body, b"", b"\x00\x53", b"\x00\x53\x75\xb0\x00\x00\x00\x09{"):  # last: cut short
        assert _amqp_body(raw) == raw


MESSAGES, CHUNK, KILLS = 12_000, 200, 8


class Publisher(threading.Thread):
    """Publishes every id once (and some twice) over a few seconds, confirmed by RabbitMQ."""

    def __init__(self, rabbitmq: LocalRabbitMQ, stream: str) -> None:
        super().__init__(daemon=True)
        self.rabbitmq, self.stream = rabbitmq, stream
        self.sent = 0
        self.errors: list[str] = []

    def run(self) -> None:
        rnd = random.Random(11)
        try:
            for start in range(0, MESSAGES, CHUNK):
                messages = [
                    json.dumps({"id": i, "copy": copy, "v": i % 1000}).encode()
                    for i in range(start, start + CHUNK)
                    for copy in ((0, 1) if i % 13 == 0 else (0,))
                ]
                self.rabbitmq.publish(self.stream, messages)
                self.sent += len(messages)
                time.sleep(rnd.uniform(0.05, 0.15))
        except Exception as exc:
            self.errors.append(repr(exc))


@pytest.mark.parametrize("store", ["duckdb", "postgresql"])
def test_sigkill_torture_on_rabbitmq_is_exactly_once(
    store: str,
    db_path: str,
    request: pytest.FixtureRequest,
    rabbitmq: LocalRabbitMQ,
    stream: str,
) -> None:
    """Loaders killed again and again (at random and inside commits) while messages arrive:
    every message is in the table once, and the cursor is the count of messages."""
    database = str(request.getfixturevalue("pg_url")) if store == "postgresql" else db_path
    with sluice.connect(database) as db:
        db.execute("CREATE TABLE t (id BIGINT, copy INTEGER, v INTEGER)")
        db.execute(
            f"CREATE PIPELINE p AS {source(rabbitmq, stream)} MAX_OFFSETS_PER_BATCH_PARTITION 400 "
            "INTO TABLE t FORMAT JSON (id <- id, copy <- copy, v <- v)"
        )
        db.execute("START PIPELINE p")  # left Running: every loader resumes it
    publisher = Publisher(rabbitmq, stream)
    publisher.start()
    rnd = random.Random(store)
    progress = []
    try:
        for k in range(KILLS):
            with start_loader(database, mark=k % 2 == 1) as proc:
                if k % 2:
                    kill_at_a_commit(proc, commits=rnd.randint(1, 4))
                else:
                    time.sleep(rnd.uniform(0.2, 1.0))  # a random kill point, not a wait
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            progress.append(consistent(database, replace=False)[0])
    finally:
        publisher.join(120)
    assert not publisher.errors
    assert len([r for r in progress if 0 < r < publisher.sent]) >= KILLS // 3, progress
    with sluice.connect(database) as db:  # the last restart runs to the end
        cursor = "SELECT sum(CURSOR_OFFSET) FROM information_schema.PIPELINES_OFFSETS"
        wait_for(lambda: db.execute(cursor).fetchone() == (publisher.sent,), 120, "all loaded")
        db.execute("STOP PIPELINE p")
    assert consistent(database, replace=False) == (publisher.sent, publisher.sent)


def test_a_node_outage_is_a_warning_and_loading_resumes_by_itself(database: str) -> None:
    """Its own node, stopped under a running pipeline and started again (streams are kept on
    disk): a Warning meanwhile, the pipeline Running, then every message once."""
    with LocalRabbitMQ() as node, sluice.connect(database) as db:
        node.create_stream("events")
        node.publish("events", readings(range(500)))
        db.execute("CREATE TABLE t (id BIGINT, v INTEGER)")
        db.execute(
            f"CREATE PIPELINE p AS {source(node, 'events')} INTO TABLE t "
            "FORMAT JSON (id <- id, v <- v)"
        )
        db.execute("START PIPELINE p")
        try:
            count = "SELECT count(*) FROM t"
            wait_for(lambda: db.execute(count).fetchone() == (500,), 60, "rows before")
            node.stop()
            warned = (
                "SELECT count(*) FROM information_schema.PIPELINES_ERRORS "
                "WHERE ERROR_TYPE = 'Warning' AND ERROR_KIND = 'Extract'"
            )
            wait_for(lambda: db.execute(warned).fetchone() != (0,), 60, "a warning")
            assert states(db) == [("p", "Running")]
            node.start()
            node.publish("events", readings(range(500, 800)))
            wait_for(lambda: db.execute(count).fetchone() == (800,), 90, "rows after")
            assert db.execute("SELECT count(DISTINCT id) FROM t").fetchone() == (800,)
            assert states(db) == [("p", "Running")]
        finally:
            db.execute("STOP PIPELINE p")


def test_batches_are_contiguous_across_seeks_and_end_probes(
    rabbitmq: LocalRabbitMQ, stream: str
) -> None:
    """Read directly from the source: every batch starts at its cursor and its offsets follow
    one another, while the end is probed every batch and after seeking back (a failed batch)
    with chunks of the earlier subscription still on their way."""
    rabbitmq.publish(stream, readings(range(3000)), chunk=50)
    src = RabbitMQSource(
        f"{rabbitmq.url}/{stream}", {"credit": 20}, LocalRabbitMQ.CREDENTIALS, pipeline="p"
    )
    try:
        cursor, rounds = 0, 0
        while cursor < 3000:
            rounds += 1
            assert rounds < 200, "no progress"
            batches = src.extract({"0": cursor}, 170, 10.0, stop_at_end=True)
            assert len(batches) == 1 and batches[0].start == cursor
            offsets = list(batches[0].offsets)
            assert offsets == list(range(cursor, cursor + len(offsets)))
            ids = [json.loads(r)["id"] for r in batches[0].records]
            assert ids == offsets  # the message at each offset is the one published there
            if rounds % 3 == 0:  # this batch "failed": read it again from the same cursor
                continue
            cursor = batches[0].end
        assert src.extract({"0": 3000}, 170, 10.0, stop_at_end=True) == []
        assert src.latest() == {"0": 3000} and src.earliest() == {"0": 0}
    finally:
        src.close()


def test_sub_entry_batches_give_each_record_its_offset(
    rabbitmq: LocalRabbitMQ, stream: str
) -> None:
    """A compressed sub-entry batch is one entry of a chunk, and each of its records has an
    offset of its own: a batch may end inside it and the next one start there."""
    rabbitmq.publish(stream, readings(range(50)), chunk=10, sub_entries=True)
    src = RabbitMQSource(f"{rabbitmq.url}/{stream}", {}, LocalRabbitMQ.CREDENTIALS)
    try:
        cursor, seen = 0, []
        while cursor < 50:
            (batch,) = src.extract({"0": cursor}, 15, 10.0, stop_at_end=True)
            assert batch.start == cursor and list(batch.offsets) == list(range(cursor, batch.end))
            seen += [json.loads(r)["id"] for r in batch.records]
            cursor = batch.end
        assert seen == list(range(50))
        assert src.latest() == {"0": 50}  # the end counts records, not entries
        (again,) = src.extract({"0": 13}, 5, 10.0, stop_at_end=True)  # from inside an entry
        assert [json.loads(r)["id"] for r in again.records] == [13, 14, 15, 16, 17]
    finally:
        src.close()
