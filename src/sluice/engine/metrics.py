"""The pipelines' metrics, for Prometheus: what this process loaded, and what the store says.

Counters and the batch-time histogram count what this process's batches did (so each
process of a shared store reports its own, as Prometheus expects). States, lag and stored
errors are read from the monitoring views when scraped, so they match them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sluice.engine.runtime import STAGES, BatchReport
from sluice.stores.base import Store

STATES = ("Running", "Stopped", "Error")
# Batch stage times run from a millisecond (a small parse) to the tens of seconds a slow
# transform or a large load into a server may take.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class PipelineMetrics:
    """One database's metrics, in a registry of its own."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["pipeline"]
        self._rows = Counter(
            "sluice_rows_loaded", "Rows written to tables by batches.", labels,
            registry=self.registry,
        )  # fmt: skip
        self._bytes = Counter(
            "sluice_bytes_loaded", "Bytes of source records in batches that loaded.", labels,
            registry=self.registry,
        )  # fmt: skip
        self._rejected = Counter(
            "sluice_rows_rejected",
            "Records left out of batches into PIPELINES_ERRORS, by the stage that refused them.",
            ["pipeline", "kind"],
            registry=self.registry,
        )
        self._batches = Counter(
            "sluice_batches", "Batches, by how they ended (Succeeded or Failed).",
            ["pipeline", "state"], registry=self.registry,
        )  # fmt: skip
        self._seconds = Histogram(
            "sluice_batch_duration_seconds",
            "Seconds a batch spent in each stage: extract, transform (programs, Python "
            "transforms and model scoring), parse, load.",
            ["pipeline", "stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))

    def batch(self, pipeline: str, report: BatchReport) -> None:
        """Count a batch that loaded."""
        self._rows.labels(pipeline).inc(report.rows_loaded)
        self._bytes.labels(pipeline).inc(report.nbytes)
        self._batches.labels(pipeline, "Succeeded").inc()
        for kind, n in report.rejected.items():
            self._rejected.labels(pipeline, kind).inc(n)
        for stage in STAGES:
            if stage in report.stages:
                self._seconds.labels(pipeline, stage).observe(report.stages[stage])

    def failed(self, pipeline: str) -> None:
        """Count a batch that failed (it loaded nothing)."""
        self._batches.labels(pipeline, "Failed").inc()

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format."""
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    """The gauges read from the monitoring views at each scrape."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # read from the store only when scraped

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "sluice_pipeline_state",
            "1 for the state each pipeline is in (Running, Stopped or Error), 0 for the others.",
            labels=["pipeline", "state"],
        )
        errors = GaugeMetricFamily(
            "sluice_pipeline_errors",
            "Errors and rejected records stored in PIPELINES_ERRORS.",
            labels=["pipeline"],
        )
        messages = GaugeMetricFamily(
            "sluice_lag_messages",
            "Messages in a source partition after the pipeline's cursor (PIPELINES_OFFSETS).",
            labels=["pipeline", "partition"],
        )
        seconds = GaugeMetricFamily(
            "sluice_lag_seconds",
            "Seconds between the newest message of a partition and the next one to load.",
            labels=["pipeline", "partition"],
        )
        store = self._store()
        try:
            pipelines = store.execute(
                "SELECT PIPELINE_NAME, STATE FROM information_schema.PIPELINES"
            ).fetchall()
            counts: dict[str, int] = dict(
                store.execute(
                    "SELECT PIPELINE_NAME, count(*) FROM information_schema.PIPELINES_ERRORS "
                    "GROUP BY PIPELINE_NAME"
                ).fetchall()
            )
            offsets = store.execute(
                "SELECT PIPELINE_NAME, SOURCE_PARTITION_ID, LAG_MESSAGES, LAG_SECONDS "
                "FROM information_schema.PIPELINES_OFFSETS"
            ).fetchall()
        finally:
            store.close()
        for name, current in pipelines:
            for s in STATES:
                state.add_metric([name, s], 1.0 if current == s else 0.0)
            errors.add_metric([name], float(counts.get(name, 0)))
        for name, partition, lag, lag_seconds in offsets:
            messages.add_metric([name, partition], float(lag))
            if lag_seconds is not None:
                seconds.add_metric([name, partition], float(lag_seconds))
        yield from (state, errors, messages, seconds)
