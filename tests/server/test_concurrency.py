"""Many clients query while a pipeline ingests: every query answers, no batch is ever seen
half-loaded, and the pipeline keeps more than half its speed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from sluice.testing import LocalBroker, produce, wait_for
from tests.server.conftest import Server

MESSAGES = 60_000
BATCH = 1_000  # one partition, a backlog: every batch but none is exactly this size
CLIENTS = 20


def load(server: Server, broker: LocalBroker, topic: str, table: str) -> float:
    """Start a pipeline over ``topic`` into ``table``; its rows/s once done, from its batches."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} (id BIGINT)")
        cur.execute(
            f"CREATE PIPELINE {table} AS LOAD DATA KAFKA '{broker.bootstrap}/{topic}' "
            f"MAX_OFFSETS_PER_BATCH_PARTITION {BATCH} INTO TABLE {table} FORMAT JSON (id <- id)"
        )
        cur.execute(f"START PIPELINE {table}")

        def done() -> bool:
            cur.execute(f"SELECT count(*) FROM {table}")
            return cur.fetchone() == (MESSAGES,)

        wait_for(done, timeout=120, message=f"{table} to load")
        cur.execute(f"STOP PIPELINE {table}")
        cur.execute(
            "SELECT sum(ROWS_STREAMED), "
            "epoch(max(START_TIME)) + max(BATCH_TIME) - epoch(min(START_TIME)) "
            f"FROM information_schema.PIPELINES_BATCHES_SUMMARY WHERE PIPELINE_NAME = '{table}'"
        )
        rows, seconds = cur.fetchone()  # type: ignore[misc]
        return float(rows) / float(seconds)


def test_twenty_clients_query_consistent_snapshots_while_a_pipeline_ingests(
    server: Server, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    values = [json.dumps({"id": i}).encode() for i in range(MESSAGES)]
    alone_topic, busy_topic = topic(1), topic(1)
    produce(broker.bootstrap, alone_topic, values)
    produce(broker.bootstrap, busy_topic, values)
    alone = load(server, broker, alone_topic, "alone")

    stop = threading.Event()
    answers: list[int] = []
    problems: list[str] = []

    def client() -> None:
        try:
            with server.connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                while not stop.is_set():
                    cur.execute("SELECT count(*), coalesce(sum(id), 0) FROM busy")
                    count, total = cur.fetchone()  # type: ignore[misc]
                    if count % BATCH or int(total) != count * (count - 1) // 2:
                        problems.append(f"torn read: {count} rows, sum {total}")
                    answers.append(count)
                    time.sleep(0.05)
        except Exception as exc:  # a query that does not answer fails the test
            problems.append(repr(exc))

    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE busy (id BIGINT)")  # so that clients can query at once
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        busy = load(server, broker, busy_topic, "busy")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not problems, problems[:5]
    assert len(answers) > CLIENTS * 5 and any(0 < a < MESSAGES for a in answers)
    assert busy > alone / 2, f"{busy:,.0f} rows/s with {CLIENTS} clients, {alone:,.0f} alone"
