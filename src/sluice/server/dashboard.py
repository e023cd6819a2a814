"""What the dashboard shows, read once a second for every viewer: the pipelines with their
rates and lag, the last minutes of both, per-partition lag as a summary (the most lagging
partitions, not one chart each), recent batches by stage, errors with their records, and, with
the demo's tables, the drills by predicted health."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import decimal
import functools
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from sluice.connection import Connection
from sluice.errors import CatalogError, SluiceError
from sluice.sql import parse, render

SAMPLE_SECONDS = 1.0
HISTORY = 300  # samples kept per pipeline: five minutes
RATE_WINDOW_SECONDS = 5.0  # rows/s is over the batches that started this recently
TOP_PARTITIONS = 10
RECENT_BATCHES = 30
RECENT_ERRORS = 20

_PIPELINES = "SELECT PIPELINE_NAME, STATE, ERROR_MESSAGE FROM information_schema.PIPELINES"
_LAG = """
SELECT PIPELINE_NAME, count(*), sum(LAG_MESSAGES), max(LAG_SECONDS)
FROM information_schema.PIPELINES_OFFSETS GROUP BY PIPELINE_NAME"""
_TOP_PARTITIONS = f"""
SELECT PIPELINE_NAME, SOURCE_PARTITION_ID, LAG_MESSAGES, LAG_SECONDS, CURSOR_OFFSET, LATEST_OFFSET
FROM (SELECT *, row_number() OVER (PARTITION BY PIPELINE_NAME
                                   ORDER BY LAG_MESSAGES DESC, SOURCE_PARTITION_ID) AS k
      FROM information_schema.PIPELINES_OFFSETS) AS o
WHERE k <= {TOP_PARTITIONS} ORDER BY PIPELINE_NAME, k"""
_RATES = """
SELECT PIPELINE_NAME, sum(ROWS_LOADED), sum(MB_STREAMED)
FROM information_schema.PIPELINES_BATCHES_SUMMARY WHERE START_TIME >= ? GROUP BY PIPELINE_NAME"""
_BATCHES = f"""
SELECT PIPELINE_NAME, BATCH_ID, START_TIME, BATCH_TIME, ROWS_LOADED, EXTRACTOR_WAIT_TIME,
       TRANSFORM_WAIT_TIME, PARSE_TIME, LOAD_TIME
FROM (SELECT *, row_number() OVER (PARTITION BY PIPELINE_NAME ORDER BY BATCH_ID DESC) AS k
      FROM information_schema.PIPELINES_BATCHES_SUMMARY) AS b
WHERE k <= {RECENT_BATCHES} ORDER BY PIPELINE_NAME, BATCH_ID"""
_ERRORS = f"""
SELECT PIPELINE_NAME, ERROR_ID, ERROR_TYPE, ERROR_KIND, ERROR_MESSAGE,
       BATCH_SOURCE_PARTITION_ID, "OFFSET", LOAD_DATA_LINE, ERROR_TIME, n
FROM (SELECT *, row_number() OVER (PARTITION BY PIPELINE_NAME ORDER BY ERROR_ID DESC) AS k,
             count(*) OVER (PARTITION BY PIPELINE_NAME) AS n
      FROM information_schema.PIPELINES_ERRORS) AS e
WHERE k <= {RECENT_ERRORS} ORDER BY PIPELINE_NAME, ERROR_ID DESC"""
# The demo's view: its drills by predicted health (sluice.demo writes these tables).
_DRILLS = """
SELECT rig, drill, round(100 * (1 - risk)) AS health_pct, round(temp_c, 1) AS temp_c,
       round(vib_mm_s, 2) AS vib_mm_s, ts,
       EXISTS (SELECT 1 FROM alerts a WHERE a.rig = s.rig AND a.drill = s.drill) AS alerted
FROM drill_status s ORDER BY risk DESC, rig, drill"""
_ALERTS = "SELECT rig, drill, ts, round(100 * risk, 1) AS risk_pct FROM alerts ORDER BY ts DESC"


class Sampler:
    """Reads the monitoring views every ``SAMPLE_SECONDS`` through a session of its own, and
    keeps the result as the JSON every dashboard gets (so a hundred viewers cost one read)."""

    def __init__(self, database: Connection) -> None:
        self._database = database
        self._session = database.cursor()
        self._lock = threading.Lock()  # the sampler's session: one thread at a time
        self._idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()  # for the API's reads
        self._history: dict[str, deque[list[Any]]] = {}
        self._snapshot = b'{"pipelines": []}'
        self._has_drills: bool | None = None

    async def run(self) -> None:
        while True:
            await run_in_threadpool(self.sample)
            await asyncio.sleep(SAMPLE_SECONDS)

    def snapshot(self) -> bytes:
        return self._snapshot

    def close(self) -> None:
        with self._lock:
            self._session.close()
        while not self._idle.empty():
            self._idle.get().close()

    @contextlib.contextmanager
    def _borrowed(self) -> Iterator[Connection]:
        """A session for one of the API's reads: an idle one, or a new one (kept after)."""
        try:
            session = self._idle.get_nowait()
        except queue.Empty:
            session = self._database.cursor()
        try:
            yield session
        finally:
            self._idle.put(session)

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self._session.execute(sql).fetchall()

    def sample(self) -> None:
        try:
            with self._lock:
                body = self._read()
        except SluiceError as exc:
            body = {"pipelines": [], "error": str(exc), "time": time.time()}
        self._snapshot = json.dumps(body, default=encode, separators=(",", ":")).encode()

    def _read(self) -> dict[str, Any]:
        now = time.time()
        since = dt.datetime.now() - dt.timedelta(seconds=RATE_WINDOW_SECONDS)
        rates = {
            n: (float(r or 0) / RATE_WINDOW_SECONDS, float(mb or 0) / RATE_WINDOW_SECONDS)
            for n, r, mb in self._session.execute(_RATES.replace("?", _timestamp(since)))
        }
        lags = {n: (int(c), int(m or 0), s) for n, c, m, s in self._rows(_LAG)}
        errors: dict[str, list[dict[str, Any]]] = {}
        counts: dict[str, int] = {}
        for n, *e, total in self._rows(_ERRORS):
            errors.setdefault(n, []).append(dict(zip(_ERROR_KEYS, e, strict=True)))
            counts[n] = int(total)
        top: dict[str, list[list[Any]]] = {}
        for n, *p in self._rows(_TOP_PARTITIONS):
            top.setdefault(n, []).append(p)
        batches: dict[str, list[list[Any]]] = {}
        for n, *b in self._rows(_BATCHES):
            batches.setdefault(n, []).append(b)
        pipelines = []
        names = set()
        for name, state, error in self._rows(_PIPELINES):
            names.add(name)
            rows_per_sec, mb_per_sec = rates.get(name, (0.0, 0.0))
            partitions, lag, lag_seconds = lags.get(name, (0, 0, None))
            history = self._history.setdefault(name, deque(maxlen=HISTORY))
            history.append([round(now, 3), round(rows_per_sec, 1), lag, lag_seconds])
            pipelines.append({
                "name": name, "state": state, "error": error, "rows_per_sec": rows_per_sec,
                "mb_per_sec": mb_per_sec, "partitions": partitions, "lag_messages": lag,
                "lag_seconds": lag_seconds, "errors": counts.get(name, 0),
                "top_partitions": top.get(name, []), "batches": batches.get(name, []),
                "recent_errors": errors.get(name, []), "history": list(history),
            })  # fmt: skip
        for gone in set(self._history) - names:
            del self._history[gone]
        return {"time": now, "pipelines": pipelines, "drills": self._drills()}

    def _drills(self) -> dict[str, Any] | None:
        if self._has_drills is None or not self._has_drills:
            tables = {t.lower() for (t,) in self._rows(_TABLES)}
            self._has_drills = {"drill_status", "alerts"} <= tables
        if not self._has_drills:
            return None
        drills = self._session.execute(_DRILLS)
        alerts = self._session.execute(_ALERTS)
        return {
            "columns": drills.columns,
            "rows": drills.fetchall(),
            "alerts": {"columns": alerts.columns, "rows": alerts.fetchmany(50)},
        }

    # -- the API's reads ----------------------------------------------------------------------

    def pipelines(self) -> list[dict[str, Any]]:
        """Every pipeline with its definition (secrets hidden) and the process loading it."""
        with self._borrowed() as session:
            records = session.execute(_DEFINITIONS).fetchall()
            process = {n: p for n, _, p in session.execute("SHOW PIPELINES").fetchall()}
        summary = {p["name"]: p for p in json.loads(self._snapshot).get("pipelines", [])}
        out = []
        for name, definition, config, state, created, altered, error in records:
            seen = summary.get(name, {})
            out.append({
                "name": name, "state": state, "error": error, "process": process.get(name),
                "definition": _shown(definition), "config": json.loads(config),
                "created": created, "altered": altered,
                **{k: seen.get(k) for k in ("rows_per_sec", "lag_messages", "lag_seconds",
                                            "partitions", "errors")},
            })  # fmt: skip
        return out

    def pipeline(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.pipelines() if p["name"] == name), None)

    def view(self, view: str, pipeline: str, order: str, limit: int) -> dict[str, Any]:
        """Rows of a monitoring view for one pipeline."""
        with self._borrowed() as session:
            literal = "'" + pipeline.replace("'", "''") + "'"
            exists = f"SELECT 1 FROM sluice.definitions WHERE name = {literal}"
            if not session.execute(exists).fetchall():
                raise CatalogError(f"pipeline {pipeline} does not exist")
            result = session.execute(
                f"SELECT * FROM information_schema.{view} WHERE PIPELINE_NAME = {literal} "
                f"ORDER BY {order} LIMIT {int(limit)}"
            )
            rows = result.fetchall()
        return {"columns": [c.upper() for c in result.columns], "rows": [list(r) for r in rows]}


def encode(value: Any) -> Any:
    """A value of a row as JSON carries it: times as ISO 8601, decimals as text (no precision
    lost), bytes as text when UTF-8 and else base64."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
    return str(value)


@functools.lru_cache(maxsize=1024)
def _shown(definition: str) -> str:
    """A pipeline's definition as shown: secrets hidden (parsed once per definition)."""
    return render(parse(definition), hide_secrets=True)


_ERROR_KEYS = ("id", "type", "kind", "message", "partition", "offset", "record", "time")
_TABLES = "SELECT table_name FROM information_schema.tables"
_DEFINITIONS = (
    "SELECT name, definition, config_json, state, created, altered, error "
    "FROM sluice.definitions ORDER BY name"
)


def _timestamp(value: dt.datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
