"""The HTTP API and /metrics of a real `sluice serve`, through a real HTTP client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sluice.testing import LocalBroker, produce, wait_for
from tests.server.conftest import PASSWORD, Server

ROOT = ("root", PASSWORD)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=ROOT, timeout=30) as client:
        yield client


def sql(http: httpx.Client, statement: str) -> dict[str, object]:
    response = http.post("/api/query", json={"sql": statement})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def rows(http: httpx.Client, statement: str) -> list[list[object]]:
    return sql(http, statement)["rows"]  # type: ignore[return-value]


# The topic fixtures come before the server's: the server stops before its topics are deleted.
# (librdkafka 2.16 can crash in its metadata cache when the development broker deletes a topic
# that a consumer still knows.)


def test_pipelines_offsets_batches_and_actions_over_http(
    broker: LocalBroker, topic: Callable[..., str], http: httpx.Client
) -> None:
    name = topic(2)
    produce(broker.bootstrap, name, [json.dumps({"id": i}).encode() for i in range(500)])
    sql(http, "CREATE TABLE t (id INTEGER)")
    sql(
        http,
        f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
        'CONFIG \'{"client.id": "api"}\' CREDENTIALS \'{"sasl.password": "hush"}\' '
        "INTO TABLE t FORMAT JSON (id <- id)",
    )
    listed = http.get("/api/pipelines").json()
    assert [(p["name"], p["state"]) for p in listed] == [("p", "Stopped")]
    assert "hush" not in listed[0]["definition"] and "<hidden>" in listed[0]["definition"]
    assert listed[0]["config"]["source_type"] == "KAFKA"

    assert http.post("/api/pipelines/p/start").status_code == 200
    wait_for(lambda: rows(http, "SELECT count(*) FROM t") == [[500]], message="500 rows")
    detail = http.get("/api/pipelines/p").json()
    assert detail["state"] == "Running" and detail["process"]

    offsets = http.get("/api/pipelines/p/offsets").json()
    at = {c: i for i, c in enumerate(offsets["columns"])}
    assert sorted(r[at["SOURCE_PARTITION_ID"]] for r in offsets["rows"]) == ["0", "1"]
    assert sum(r[at["CURSOR_OFFSET"]] for r in offsets["rows"]) == 500

    batches = http.get("/api/pipelines/p/batches", params={"limit": 5}).json()
    at = {c: i for i, c in enumerate(batches["columns"])}
    assert 1 <= len(batches["rows"]) <= 5
    for stage in ("EXTRACTOR_WAIT_TIME", "PARSE_TIME", "LOAD_TIME"):
        assert all(r[at[stage]] >= 0 for r in batches["rows"]), stage

    assert http.post("/api/pipelines/p/stop").status_code == 200
    assert http.get("/api/pipelines/p").json()["state"] == "Stopped"
    stopping_again = http.post("/api/pipelines/p/stop")
    assert stopping_again.status_code == 409
    assert "not running" in stopping_again.json()["error"]


def test_errors_come_as_json_with_a_message(http: httpx.Client) -> None:
    missing = http.get("/api/pipelines/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert http.post("/api/pipelines/nope/start").status_code == 404
    bad = http.post("/api/query", json={"sql": "SELEC 1"})
    assert bad.status_code == 400 and "syntax" in bad.json()["error"].lower()
    assert http.post("/api/query", json={"statement": "SELECT 1"}).status_code == 400
    assert http.post("/api/query", content=b"not json").status_code == 400
    route = http.get("/api/nothing")
    assert route.status_code == 404 and "/openapi.json" in route.json()["error"]
    assert http.get("/api/query").status_code == 405
    spec = http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/pipelines", "/api/query", "/metrics"} <= set(spec["paths"])


def test_a_query_returns_typed_values_and_says_when_it_cut_rows(http: httpx.Client) -> None:
    result = sql(
        http,
        "SELECT 1 AS i, 2.5::DECIMAL(4,2) AS d, TIMESTAMP '2026-01-02 03:04:05' AS ts, "
        "'é' AS s, NULL AS n, 'a'::BLOB AS b",
    )
    assert result["columns"] == ["i", "d", "ts", "s", "n", "b"]
    assert result["rows"] == [[1, "2.50", "2026-01-02T03:04:05", "é", None, "a"]]
    many = http.post("/api/query", json={"sql": "SELECT * FROM range(50)", "limit": 10}).json()
    assert len(many["rows"]) == 10 and many["truncated"] is True


def test_metrics_parse_and_match_the_views(
    broker: LocalBroker, topic: Callable[..., str], http: httpx.Client
) -> None:
    name = topic(2)
    values = [json.dumps({"id": i}).encode() for i in range(300)] + [b"not json"]
    produce(broker.bootstrap, name, values, partitions=2)
    sql(http, "CREATE TABLE m (id INTEGER)")
    sql(
        http,
        f"CREATE PIPELINE m AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
        "SKIP PARSER ERRORS INTO TABLE m FORMAT JSON (id <- id)",
    )
    sql(http, "START PIPELINE m FOREGROUND")
    batches = rows(http, "SELECT count(*), sum(ROWS_LOADED) FROM information_schema."
                   "PIPELINES_BATCHES_SUMMARY WHERE PIPELINE_NAME = 'm'")  # fmt: skip
    assert batches[0][1] == 300
    # The lag monitor reads the source's end every few seconds; wait until it has.
    wait_for(
        lambda: rows(http, "SELECT count(*) FROM information_schema.PIPELINES_OFFSETS "
                     "WHERE PIPELINE_NAME = 'm' AND EARLIEST_OFFSET IS NOT NULL") == [[2]],
        timeout=30, message="the lag monitor to read the topic",
    )  # fmt: skip
    scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("sluice_rows_loaded_total", pipeline="m") == 300
    assert value("sluice_batches_total", pipeline="m", state="Succeeded") == batches[0][0]
    assert value("sluice_rows_rejected_total", pipeline="m", kind="Parse") == 1
    for stage in ("extract", "parse", "load"):
        count = value("sluice_batch_duration_seconds_count", pipeline="m", stage=stage)
        assert count == batches[0][0], stage
    assert value("sluice_pipeline_state", pipeline="m", state="Stopped") == 1
    assert value("sluice_pipeline_state", pipeline="m", state="Running") == 0
    assert value("sluice_pipeline_errors", pipeline="m") == 1
    view = rows(http, "SELECT SOURCE_PARTITION_ID, LAG_MESSAGES, LAG_SECONDS FROM "
                "information_schema.PIPELINES_OFFSETS WHERE PIPELINE_NAME = 'm'")  # fmt: skip
    for partition, lag, seconds in view:
        assert value("sluice_lag_messages", pipeline="m", partition=partition) == lag
        assert value("sluice_lag_seconds", pipeline="m", partition=partition) == seconds


def test_the_dashboard_data_and_page(http: httpx.Client) -> None:
    sql(http, "CREATE TABLE d (id INTEGER)")
    page = http.get("/")
    assert page.status_code == 200 and "<title>Sluice</title>" in page.text
    assert http.get("/static/app.js").status_code == 200
    data = http.get("/api/dashboard").json()
    assert data["pipelines"] == [] and data["drills"] is None


def test_a_pipeline_of_many_partitions_is_summarised(
    broker: LocalBroker, topic: Callable[..., str], http: httpx.Client
) -> None:
    name = topic(120)
    produce(broker.bootstrap, name, [json.dumps({"id": i}).encode() for i in range(1200)],
            partitions=120)  # fmt: skip
    sql(http, "CREATE TABLE wide (id INTEGER)")
    sql(http, f"CREATE PIPELINE wide AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
              "INTO TABLE wide FORMAT JSON (id <- id)")  # fmt: skip

    def summary() -> dict[str, object]:
        found = [p for p in http.get("/api/dashboard").json()["pipelines"] if p["name"] == "wide"]
        return found[0] if found else {}

    # Stopped and never started: every partition lags by its 10 messages.
    wait_for(lambda: summary().get("lag_messages") == 1200, timeout=60,
             message="the lag of 120 partitions")  # fmt: skip
    wide = summary()
    assert wide["partitions"] == 120
    top = wide["top_partitions"]
    assert isinstance(top, list) and len(top) == 10 and all(p[1] == 10 for p in top)
    assert len(wide["history"]) >= 1  # type: ignore[arg-type]
