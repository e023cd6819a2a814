"""What the dashboard and the API read, on both stores."""

from __future__ import annotations

import json
from collections.abc import Callable

import sluice
from sluice.server.dashboard import Sampler
from sluice.testing import LocalBroker, produce, wait_for
from tests.e2e.helpers import kafka


def test_the_sampler_reads_every_view_on_each_store(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    produce(broker.bootstrap, name, [json.dumps({"id": i}).encode() for i in range(40)] + [b"x"])
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} SKIP PARSER ERRORS "
        "INTO TABLE t FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    sampler = Sampler(db)
    try:

        def pipeline() -> dict[str, object]:
            sampler.sample()
            return dict(json.loads(sampler.snapshot())["pipelines"][0])

        wait_for(lambda: pipeline()["partitions"] == 2, timeout=30, message="the lag monitor")
        seen = pipeline()
        assert (seen["name"], seen["state"], seen["errors"], seen["lag_messages"]) == (
            "p", "Stopped", 1, 0,
        )  # fmt: skip
        assert len(seen["top_partitions"]) == 2  # type: ignore[arg-type]
        batches = seen["batches"]
        assert isinstance(batches, list) and batches and all(b[4] is not None for b in batches)
        (error,) = seen["recent_errors"]  # type: ignore[misc]
        assert error["record"] == "x" and error["kind"] == "Parse"
        assert [p["name"] for p in sampler.pipelines()] == ["p"]
        assert "KAFKA" in sampler.pipelines()[0]["definition"]
        offsets = sampler.view("PIPELINES_OFFSETS", "p", "SOURCE_PARTITION_ID", 10)
        assert "LAG_SECONDS" in offsets["columns"] and len(offsets["rows"]) == 2
    finally:
        sampler.close()
