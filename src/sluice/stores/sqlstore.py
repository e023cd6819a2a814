"""What the SQL stores share: the catalog, the cursors, the batch records and the errors, kept
with SQL that DuckDB and PostgreSQL both run, and the one-transaction batch load.

A store supplies its connection: running a statement, a transaction in which a batch's rows
are readable as ``BATCH_RELATION``, and the reading of its driver's errors.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from sluice.errors import CursorConflictError, StoreError
from sluice.plan import LoadPlan
from sluice.result import Result
from sluice.sql.expr import quote
from sluice.stores.base import (
    BatchOutcome,
    LinkRecord,
    PipelineRecord,
    Store,
    UserRecord,
    route_views,
)
from sluice.stores.catalog import BATCHES_KEPT, TRIM_EVERY
from sluice.vocab import BATCH_ID, PartitionProgress, Rejected, SourcePosition

Rows = list[tuple[Any, ...]]


class SQLStore(Store):
    #: The base class of the driver's errors.
    driver_error: ClassVar[type[Exception]]
    #: Whether a batch of a ``direct`` plan is copied into its table (``_copy_batch``) rather
    #: than inserted from BATCH_RELATION: for a server, which would otherwise write the batch
    #: twice (measured: half the time of COPY into a staging table + INSERT … SELECT).
    copies_batches: ClassVar[bool] = False

    # -- what a store supplies ----------------------------------------------------------------

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] | None = None) -> Rows:
        """Run one statement, with ``?`` placeholders when ``params`` are given. Returns its
        rows, or for a statement that returns none, one row holding its row count. Raises
        the driver's own errors (see ``_run``)."""

    @abstractmethod
    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def _begin(self, rows: pa.Table | None) -> None:
        """Begin a transaction in which ``rows`` are readable as BATCH_RELATION."""

    def _copy_batch(self, plan: LoadPlan, rows: pa.Table) -> int:
        """Copy ``rows`` straight into the plan's table (a ``direct`` plan), inside the
        transaction of ``_begin(None)``; the rows written. Stores that set
        ``copies_batches``."""
        raise NotImplementedError

    @abstractmethod
    def _end(self, *, commit: bool) -> None:
        """Commit or roll back the transaction of ``_begin``; release its rows."""

    @abstractmethod
    def _translate(self, exc: Exception, pipeline: str, batch_id: int | None) -> StoreError:
        """The driver's error as Sluice's: transient (retried) or terminal."""

    @abstractmethod
    def _row_level(self, exc: Exception) -> bool:
        """Whether ``exc`` is about a particular row's value (a conversion, a constraint), as
        opposed to the statement or the database (a missing table, a lost connection)."""

    @abstractmethod
    def _is_unique_violation(self, exc: Exception) -> bool: ...

    @abstractmethod
    def _try_cast(self, expr: str, sql_type: str) -> str | None:
        """SQL that is NULL when ``expr`` does not convert to ``sql_type``; None when this
        database has no such test (rows it refuses are then found by trial loads)."""

    def __init__(self) -> None:
        #: (pipeline, batch id) of the transaction in progress, named by its errors.
        self._context: tuple[str, int | None] = ("", None)
        #: pipeline → batches recorded through this connection since its records were trimmed
        self._untrimmed: dict[str, int] = {}

    def _run(self, sql: str, params: Sequence[Any] | None = None) -> Rows:
        """``_execute``, with the driver's errors translated into Sluice's."""
        try:
            return self._execute(sql, params)
        except self.driver_error as exc:
            raise self._translate(exc, *self._context) from exc

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._execute_many(sql, rows)
        except self.driver_error as exc:
            raise self._translate(exc, *self._context) from exc

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _transaction(
        self, rows: pa.Table | None = None, pipeline: str = "", batch_id: int | None = None
    ) -> Iterator[None]:
        """One transaction, with ``rows`` readable as BATCH_RELATION; rolled back on any
        error, which is translated into Sluice's errors."""
        self._context = (pipeline, batch_id)  # for the errors of the statements within
        try:
            try:
                self._begin(rows)
                yield
            except BaseException:
                with suppress(Exception):  # the connection may be what failed
                    self._end(commit=False)
                raise
            self._end(commit=True)
        except self.driver_error as exc:
            raise self._translate(exc, pipeline, batch_id) from exc
        finally:
            self._context = ("", None)

    @contextmanager
    def _rolled_back(self, rows: pa.Table) -> Iterator[None]:
        """``rows`` readable as BATCH_RELATION in a transaction that is always rolled back."""
        try:
            self._begin(rows)
        except self.driver_error as exc:
            raise self._translate(exc, "", None) from exc
        try:
            yield
        finally:
            with suppress(Exception):
                self._end(commit=False)

    # -- catalog ------------------------------------------------------------------------------

    def pipelines(self) -> list[PipelineRecord]:
        rows = self._run(
            "SELECT name, definition, config_json, state, created, altered, error "
            "FROM sluice.definitions ORDER BY name"
        )
        return [PipelineRecord(*row) for row in rows]

    def record(self, name: str) -> PipelineRecord | None:
        rows = self._run(
            "SELECT name, definition, config_json, state, created, altered, error "
            "FROM sluice.definitions WHERE name = ?",
            [name],
        )
        return PipelineRecord(*rows[0]) if rows else None

    def save_pipeline(self, record: PipelineRecord, *, replace: bool) -> None:
        conflict = (
            "ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, "
            "config_json = EXCLUDED.config_json, altered = EXCLUDED.altered"
            if replace
            else ""
        )
        self._run(
            "INSERT INTO sluice.definitions VALUES (?, ?, ?, ?, now(), now(), NULL) " + conflict,
            [record.name, record.definition, record.config_json, record.state],
        )

    def set_state(self, name: str, state: str, error: str | None = None) -> None:
        self._run(
            "UPDATE sluice.definitions SET state = ?, error = ? WHERE name = ?",
            [state, _text(error), name],
        )

    def drop_pipeline(self, name: str) -> None:
        with self._transaction(pipeline=name):
            tables = (
                "definitions",
                "cursors",
                "positions",
                "batches",
                "batch_partitions",
                "errors",
            )
            for table in tables:
                column = "name" if table == "definitions" else "pipeline"
                self._run(f"DELETE FROM sluice.{table} WHERE {column} = ?", [name])

    def database(self) -> str:
        return str(self._run("SELECT current_database()")[0][0])

    def procedure(self, name: str) -> str | None:
        rows = self._run(
            "SELECT definition FROM sluice.procedures WHERE lower(name) = lower(?)", [name]
        )
        return str(rows[0][0]) if rows else None

    def save_procedure(self, name: str, definition: str, *, replace: bool) -> None:
        with self._transaction():
            if replace:
                self._run("DELETE FROM sluice.procedures WHERE lower(name) = lower(?)", [name])
            self._run("INSERT INTO sluice.procedures VALUES (?, ?, now())", [name, definition])

    def drop_procedure(self, name: str) -> None:
        self._run("DELETE FROM sluice.procedures WHERE lower(name) = lower(?)", [name])

    def links(self) -> list[LinkRecord]:
        rows = self._run(
            "SELECT name, type, config, credentials, description "
            "FROM sluice.connection_links ORDER BY name"
        )
        return [LinkRecord(*row) for row in rows]

    def save_link(self, link: LinkRecord, *, replace: bool) -> None:
        with self._transaction():
            if replace:
                self._run(
                    "DELETE FROM sluice.connection_links WHERE lower(name) = lower(?)", [link.name]
                )
            self._run(
                "INSERT INTO sluice.connection_links VALUES (?, ?, ?, ?, ?, now())",
                [link.name, link.type, link.config, link.credentials, link.description],
            )

    def drop_link(self, name: str) -> None:
        self._run("DELETE FROM sluice.connection_links WHERE lower(name) = lower(?)", [name])

    def users(self) -> list[UserRecord]:
        rows = self._run("SELECT name, auth_string, privilege FROM sluice.users ORDER BY name")
        return [UserRecord(*row) for row in rows]

    def save_user(self, user: UserRecord, *, replace: bool) -> None:
        with self._transaction():
            if replace:
                self._run("DELETE FROM sluice.users WHERE name = ?", [user.name])
            self._run(
                "INSERT INTO sluice.users VALUES (?, ?, ?, now())",
                [user.name, user.auth_string, user.privilege],
            )

    def drop_user(self, name: str) -> None:
        self._run("DELETE FROM sluice.users WHERE name = ?", [name])

    def drop_cursors(self, name: str, partitions: Sequence[str]) -> None:
        with self._transaction(pipeline=name):
            for partition in partitions:
                self._run(
                    "DELETE FROM sluice.cursors WHERE pipeline = ? AND partition = ?",
                    [name, partition],
                )

    def cursors(self, name: str) -> dict[str, int]:
        rows = self._run(
            'SELECT partition, "offset" FROM sluice.cursors WHERE pipeline = ?', [name]
        )
        return {p: int(o) for p, o in rows}

    def set_cursors(self, name: str, source_type: str, offsets: Mapping[str, int]) -> None:
        with self._transaction(pipeline=name):
            for partition, offset in offsets.items():
                self._run(
                    'INSERT INTO sluice.cursors (pipeline, source_type, partition, "offset", '
                    "updated) VALUES (?, ?, ?, ?, now()) ON CONFLICT (pipeline, partition) "
                    'DO UPDATE SET "offset" = EXCLUDED."offset", updated = now()',
                    [name, source_type, partition, offset],
                )

    def save_positions(
        self, name: str, source_type: str, positions: Mapping[str, SourcePosition]
    ) -> None:
        # An upsert, not a delete and insert: processes sharing a store may write the same
        # rows at once.
        with self._transaction(pipeline=name):
            if positions:
                self._run_many(
                    "INSERT INTO sluice.positions VALUES (?, ?, ?, ?, ?, ?, now()) "
                    "ON CONFLICT (pipeline, partition) DO UPDATE SET "
                    "earliest_offset = EXCLUDED.earliest_offset, "
                    "latest_offset = EXCLUDED.latest_offset, "
                    "lag_seconds = EXCLUDED.lag_seconds, updated = EXCLUDED.updated",
                    [
                        [name, source_type, k, p.earliest, p.latest, p.lag_seconds]
                        for k, p in positions.items()
                    ],
                )
            known = self._run("SELECT partition FROM sluice.positions WHERE pipeline = ?", [name])
            for (gone,) in [row for row in known if row[0] not in positions]:
                self._run(
                    "DELETE FROM sluice.positions WHERE pipeline = ? AND partition = ?",
                    [name, gone],
                )

    def table_sql(self, table: str) -> str:
        return ".".join(quote(part) for part in table.split("."))

    # -- the batch ----------------------------------------------------------------------------

    def load_batch(
        self,
        pipeline: str,
        source_type: str,
        plan: LoadPlan,
        rows: pa.Table,
        progress: Sequence[PartitionProgress],
        *,
        started: datetime,
        nbytes: int,
        rejected: Sequence[Rejected] = (),
        stages: Mapping[str, float] | None = None,
    ) -> BatchOutcome:
        load_started = time.perf_counter()
        batch_id = int(self._run("SELECT nextval('sluice.batch_ids')")[0][0])
        if BATCH_ID in rows.column_names:  # the pipeline reads pipeline_batch_id()
            ids = pa.array(np.full(rows.num_rows, batch_id, dtype=np.int64))
            rows = rows.set_column(rows.column_names.index(BATCH_ID), BATCH_ID, ids)
        direct = self.copies_batches and bool(plan.direct) and rows.num_rows > 0
        with self._transaction(None if direct else rows, pipeline, batch_id):
            # The cursors first: their rows stay locked until COMMIT, so a second writer of
            # the same partitions waits there, then finds them moved, before loading anything.
            self._advance_cursors(pipeline, source_type, progress, batch_id)
            if direct:
                loaded = self._copy_batch(plan, rows)
            else:
                loaded = plan.run(self._run) if rows.num_rows else 0
            times = {**(stages or {}), "load": time.perf_counter() - load_started}
            self._record_batch(
                pipeline, batch_id, progress, rows.num_rows, loaded, started, nbytes, times
            )
            self._record_rejected(pipeline, batch_id, rejected)
        return BatchOutcome(batch_id, loaded)

    def _advance_cursors(
        self, pipeline: str, source_type: str, progress: Sequence[PartitionProgress], batch: int
    ) -> None:
        for p in progress:
            if p.start is None:
                try:
                    self._execute(
                        "INSERT INTO sluice.cursors VALUES (?, ?, ?, ?, ?, ?, now())",
                        [pipeline, source_type, p.partition, p.end, p.latest, p.size],
                    )
                except self.driver_error as exc:
                    if self._is_unique_violation(exc):
                        raise self._conflict(pipeline, batch, p) from exc
                    raise
                continue
            changed = self._run(
                'UPDATE sluice.cursors SET "offset" = ?, latest_offset = ?, '
                "file_size = coalesce(?, file_size), updated = now() "
                'WHERE pipeline = ? AND partition = ? AND "offset" = ?',
                [p.end, p.latest, p.size, pipeline, p.partition, p.start],
            )[0][0]
            if changed != 1:
                raise self._conflict(pipeline, batch, p)

    @staticmethod
    def _conflict(pipeline: str, batch: int, p: PartitionProgress) -> CursorConflictError:
        return CursorConflictError(
            f"pipeline {pipeline}: the cursor of partition {p.partition} is no longer at "
            f"{p.start}; another writer loaded it. The batch was rolled back.",
            pipeline=pipeline,
            batch_id=batch,
            partition=p.partition,
            offset=p.start,
        )

    def _record_batch(
        self,
        pipeline: str,
        batch_id: int,
        progress: Sequence[PartitionProgress],
        rows: int,
        loaded: int,
        started: datetime,
        nbytes: int,
        stages: Mapping[str, float],
    ) -> None:
        seconds = (datetime.now() - started).total_seconds()
        self._run(
            "INSERT INTO sluice.batches (pipeline, batch_id, state, start_time, batch_time, "
            "rows_streamed, rows_loaded, bytes_streamed, num_partitions, extract_time, "
            "transform_time, parse_time, load_time) "
            "VALUES (?, ?, 'Succeeded', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [pipeline, batch_id, started, seconds, rows, loaded, nbytes, len(progress),
             *(stages.get(s) for s in ("extract", "transform", "parse", "load"))],
        )  # fmt: skip
        self._run_many(
            "INSERT INTO sluice.batch_partitions VALUES (?, ?, ?, ?, ?, ?, 'Succeeded')",
            [[pipeline, batch_id, p.partition, p.start, p.end, p.rows] for p in progress],
        )
        self._trim_batches(pipeline)

    def _trim_batches(self, pipeline: str) -> None:
        """Keep the newest ``BATCHES_KEPT`` batch records of ``pipeline``: checked on its first
        batch through this connection, then once every ``TRIM_EVERY`` batches, so a pipeline
        holds at most ``BATCHES_KEPT + TRIM_EVERY`` of them whatever the others do."""
        since = self._untrimmed.get(pipeline, TRIM_EVERY)
        if since < TRIM_EVERY:
            self._untrimmed[pipeline] = since + 1
            return
        self._untrimmed[pipeline] = 1
        oldest_kept = self._run(
            "SELECT batch_id FROM sluice.batches WHERE pipeline = ? "
            "ORDER BY batch_id DESC LIMIT 1 OFFSET ?",
            [pipeline, BATCHES_KEPT - 1],
        )
        if oldest_kept:
            for table in ("batches", "batch_partitions"):
                self._run(
                    f"DELETE FROM sluice.{table} WHERE pipeline = ? AND batch_id < ?",
                    [pipeline, oldest_kept[0][0]],
                )

    def _record_rejected(
        self, pipeline: str, batch_id: int | None, rejected: Sequence[Rejected]
    ) -> None:
        if rejected:
            self._run_many(
                "INSERT INTO sluice.errors VALUES (nextval('sluice.error_ids'), ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?, now())",
                [
                    [pipeline, batch_id, r.error_type, r.kind, _text(r.reason), r.partition,
                     r.offset, r.raw, _printable(r.raw), _text(r.std_error)]
                    for r in rejected
                ],
            )  # fmt: skip

    def trial_load(self, plan: LoadPlan, rows: pa.Table) -> str | None:
        with self._rolled_back(rows):
            try:
                plan.run(self._execute)
                return None
            except self.driver_error as exc:
                if self._row_level(exc):
                    return str(exc).split("\n")[0]
                raise self._translate(exc, "", None) from exc

    def type_errors(self, plan: LoadPlan, rows: pa.Table) -> list[tuple[int, str]]:
        if not plan.typed or self._try_cast("x", "INTEGER") is None:
            return []
        with self._rolled_back(rows):
            found = self._run(plan.type_check(self._try_cast))  # type: ignore[arg-type]
        return [(int(row), str(reason)) for row, reason in found]

    def is_duplicate_key(self, reason: str) -> bool:
        return "duplicate key" in reason.lower()

    def rejected_records(self, pipeline: str, where: str | None) -> list[tuple[int, Rejected]]:
        condition = route_views(where, "sluice") if where else "true"
        # The user's condition is spliced in as SQL, so nothing here is a placeholder.
        try:
            rows = self._execute(
                'SELECT error_id, error_kind, message, partition, "offset", raw '
                f"FROM sluice.errors WHERE pipeline = {_literal(pipeline)} AND raw IS NOT NULL "
                f'AND error_id IN (SELECT ERROR_ID FROM sluice."PIPELINES_ERRORS" '
                f"WHERE {condition}) ORDER BY error_id"
            )
        except self.driver_error as exc:
            raise StoreError(f"bad REPLAY ERRORS condition: {exc}") from exc
        return [(int(i), Rejected(k, m, p, o, bytes(r))) for i, k, m, p, o, r in rows]

    def replay(
        self,
        pipeline: str,
        plan: LoadPlan,
        rows: pa.Table,
        replayed: Sequence[int],
        still_failing: Sequence[tuple[int, str]],
    ) -> int:
        with self._transaction(rows, pipeline, None):
            loaded = plan.run(self._run) if rows.num_rows else 0
            if replayed:
                self._run_many(
                    "DELETE FROM sluice.errors WHERE error_id = ?", [[i] for i in replayed]
                )
            if still_failing:
                self._run_many(
                    "UPDATE sluice.errors SET message = ?, time = now() WHERE error_id = ?",
                    [[_text(reason), i] for i, reason in still_failing],
                )
        return loaded

    def clear_errors(self, pipeline: str | None) -> int:
        if pipeline is None:
            return _count_of(self._run("DELETE FROM sluice.errors"))
        return _count_of(self._run("DELETE FROM sluice.errors WHERE pipeline = ?", [pipeline]))

    def preview(self, plan: LoadPlan, rows: pa.Table, limit: int | None) -> Result:
        cols = ", ".join(quote(c) for c in plan.columns)
        limit_sql = f" LIMIT {int(limit)}" if limit is not None else ""
        with self._rolled_back(rows):
            try:
                found = self._execute(f"SELECT {cols} FROM ({plan.select}) AS r{limit_sql}")
            except self.driver_error as exc:
                raise StoreError(str(exc)) from exc
        return Result(list(plan.columns), found)

    def record_error(
        self,
        pipeline: str,
        *,
        kind: str,
        message: str,
        batch_id: int | None = None,
        partition: str | None = None,
        offset: int | None = None,
        raw: bytes | None = None,
        error_type: str = "Error",
        std_error: str | None = None,
    ) -> None:
        self._run(
            "INSERT INTO sluice.errors VALUES (nextval('sluice.error_ids'), ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, now())",
            [pipeline, batch_id, error_type, kind, _text(message), partition, offset, raw,
             _printable(raw), _text(std_error)],
        )  # fmt: skip


def _text(value: str | None) -> str | None:
    """Text a store accepts: PostgreSQL refuses NUL characters in text."""
    return None if value is None else value.replace("\x00", "\ufffd")


def _printable(raw: bytes | None) -> str | None:
    return None if raw is None else _text(raw.decode("utf-8", errors="replace"))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _count_of(rows: Rows) -> int:
    return int(rows[0][0]) if rows else 0
