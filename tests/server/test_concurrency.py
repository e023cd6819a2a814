"""Many clients query while a pipeline ingests: every query answers, and no batch is ever seen
half-loaded. (How much of its speed the pipeline keeps meanwhile is measured by `make bench`,
scenario `clients`.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from sluice.testing import LocalBroker, produce, wait_for
from tests.server.conftest import Server

HALF = 30_000
BATCH = 1_000
CLIENTS = 20
# One snapshot: the rows in the table, the rows the committed batches say they loaded, and
# the sum of the ids (each id once, in order, from one partition: a prefix of 0, 1, 2, ...).
SNAPSHOT = (
    "SELECT (SELECT count(*) FROM busy), (SELECT coalesce(sum(id), 0) FROM busy), "
    "(SELECT coalesce(sum(ROWS_LOADED), 0) FROM information_schema.PIPELINES_BATCHES_SUMMARY "
    "WHERE PIPELINE_NAME = 'busy')"
)


def test_twenty_clients_query_consistent_snapshots_while_a_pipeline_ingests(
    server: Server, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    values = [json.dumps({"id": i}).encode() for i in range(2 * HALF)]
    produce(broker.bootstrap, name, values[:HALF])
    stop = threading.Event()
    seen: list[set[int]] = [set() for _ in range(CLIENTS)]
    problems: list[str] = []

    def client(k: int) -> None:
        try:
            with server.connect() as conn, conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute(SNAPSHOT)
                    count, total, loaded = (int(v) for v in cur.fetchone())  # type: ignore[union-attr]
                    if count != loaded or total != count * (count - 1) // 2:
                        problems.append(f"torn read: {count} rows, sum {total}, {loaded} loaded")
                    seen[k].add(count)
        except Exception as exc:  # a query that does not answer fails the test
            problems.append(repr(exc))

    def everyone_saw(count: int) -> bool:
        return bool(problems) or all(count in s for s in seen)

    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE busy (id BIGINT)")  # so that clients can query at once
        cur.execute(
            f"CREATE PIPELINE busy AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            f"MAX_OFFSETS_PER_BATCH_PARTITION {BATCH} INTO TABLE busy FORMAT JSON (id <- id)"
        )
        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: everyone_saw(0), timeout=60, message="every client to answer")
            cur.execute("START PIPELINE busy")
            # The pipeline holds at HALF until more is produced: every client sees it there.
            wait_for(lambda: everyone_saw(HALF), timeout=120, message="the first half")
            produce(broker.bootstrap, name, values[HALF:])
            wait_for(lambda: everyone_saw(2 * HALF), timeout=120, message="the second half")
            cur.execute("STOP PIPELINE busy")
        finally:
            stop.set()
            for t in threads:
                t.join(60)
    assert not problems, problems[:5]
    assert not any(t.is_alive() for t in threads)
    assert all(len(s) >= 3 for s in seen)  # 0, HALF and the end at least
