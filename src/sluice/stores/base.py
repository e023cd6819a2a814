"""Stores: the operational database that holds the tables, the catalog and the cursors.

A store keeps, in tables of its own (schema ``sluice``), every pipeline's definition and state,
its cursors (the next offset to load, per source partition), its batches and its errors. Its
one essential promise is ``load_batch``: the rows of a batch, the advance of its cursors and the
batch record commit together or not at all.
"""

from __future__ import annotations

import os
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from sluice.plan import LoadPlan
from sluice.result import Result
from sluice.vocab import PartitionProgress, Rejected, SourcePosition, TableInfo


def process_label() -> str:
    """This process, as ``SHOW PIPELINES`` names the holder of a pipeline."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class PipelineRecord:
    name: str
    definition: str  # canonical CREATE PIPELINE text, secrets included
    config_json: str  # shown in information_schema.PIPELINES; no secrets
    state: str  # Running | Stopped | Error
    created: datetime | None = None
    altered: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class LinkRecord:
    name: str
    type: str  # KAFKA | S3 | …
    config: str | None  # JSON text, shown by SHOW LINKS
    credentials: str | None  # JSON text, never shown
    description: str | None = None


@dataclass(frozen=True)
class UserRecord:
    name: str
    auth_string: str  # the password as mysql_native_password keeps it: SHA1(SHA1(password))
    privilege: str  # USAGE (log in only) | SELECT (read) | ALL (read, write, run pipelines)


@dataclass(frozen=True)
class BatchOutcome:
    batch_id: int
    rows_loaded: int


# The SingleStore names of the monitoring views, reachable as information_schema.<NAME>.
VIEW_NAMES = (
    "PIPELINES",
    "PIPELINES_BATCHES_SUMMARY",
    "PIPELINES_BATCHES",
    "PIPELINES_OFFSETS",
    "PIPELINES_CURSORS",
    "PIPELINES_ERRORS",
    "PIPELINES_FILES",
    "LINKS",
)
_VIEW_REF = re.compile(
    r"\binformation_schema\s*\.\s*([`\"]?)(PIPELINES(?:_[A-Za-z_]+)?|LINKS)\1(?![A-Za-z0-9_])",
    re.IGNORECASE,
)


def mentions_views(sql: str) -> bool:
    """Whether ``sql`` reads one of the monitoring views."""
    return any(m.group(2).upper() in VIEW_NAMES for m in _VIEW_REF.finditer(sql))


def route_views(sql: str, schema: str) -> str:
    """Point ``information_schema.PIPELINES*`` at the store's views in ``schema``."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(2).upper()
        return f'{schema}."{name}"' if name in VIEW_NAMES else m.group(0)

    return _VIEW_REF.sub(sub, sql)


class Store(ABC):
    """One connection to the operational database. Not thread-safe: ``fork()`` per thread."""

    #: The store's name in ``sluice.connect`` URLs and the docs.
    name: str
    #: Whether several Sluice processes may use the database at once (then ``claim`` decides
    #: which of them loads a pipeline).
    shared: bool = False
    #: Whether the database runs in another process (a server), so that a load mostly waits.
    remote: bool = False
    #: Whether the database has procedures of its own (``DROP PROCEDURE`` of one that is not
    #: Sluice's then goes to it).
    has_procedures: bool = False

    @abstractmethod
    def fork(self) -> Store:
        """Another connection to the same database, for another thread."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def execute(self, sql: str) -> Result:
        """Run one statement of the user's SQL."""

    @abstractmethod
    def database(self) -> str:
        """The name of the database this connection uses (``db`` of ``db.pipeline``)."""

    # -- catalog ------------------------------------------------------------------------------

    @abstractmethod
    def pipelines(self) -> list[PipelineRecord]: ...

    @abstractmethod
    def record(self, name: str) -> PipelineRecord | None:
        """One pipeline, by its exact name (read by its runner before every batch)."""

    @abstractmethod
    def save_pipeline(self, record: PipelineRecord, *, replace: bool) -> None:
        """Insert the pipeline (``replace``: or overwrite its definition, keeping cursors)."""

    @abstractmethod
    def set_state(self, name: str, state: str, error: str | None = None) -> None: ...

    @abstractmethod
    def drop_pipeline(self, name: str) -> None:
        """Remove the pipeline with its cursors, batches and errors."""

    @abstractmethod
    def procedure(self, name: str) -> str | None:
        """The ``CREATE PROCEDURE`` text of a procedure pipelines load into (any case)."""

    @abstractmethod
    def save_procedure(self, name: str, definition: str, *, replace: bool) -> None: ...

    @abstractmethod
    def drop_procedure(self, name: str) -> None: ...

    @abstractmethod
    def links(self) -> list[LinkRecord]: ...

    @abstractmethod
    def save_link(self, link: LinkRecord, *, replace: bool) -> None: ...

    @abstractmethod
    def drop_link(self, name: str) -> None: ...

    @abstractmethod
    def users(self) -> list[UserRecord]: ...

    @abstractmethod
    def save_user(self, user: UserRecord, *, replace: bool) -> None: ...

    @abstractmethod
    def drop_user(self, name: str) -> None: ...

    @abstractmethod
    def cursors(self, name: str) -> dict[str, int]: ...

    @abstractmethod
    def drop_cursors(self, name: str, partitions: Sequence[str]) -> None:
        """Forget these partitions' cursors (ALTER PIPELINE … DROP PARTITION / ORPHAN …)."""

    @abstractmethod
    def set_cursors(self, name: str, source_type: str, offsets: Mapping[str, int]) -> None:
        """Set these partitions' cursors (SET OFFSETS); other partitions keep theirs."""

    @abstractmethod
    def save_positions(
        self, name: str, source_type: str, positions: Mapping[str, SourcePosition]
    ) -> None:
        """Replace the pipeline's source positions (its partitions' ends and lag), which
        PIPELINES_OFFSETS shows beside the cursors."""

    @abstractmethod
    def table_info(self, table: str) -> TableInfo:
        """Columns, types and key of ``table``; a ``TerminalError`` if it does not exist."""

    @abstractmethod
    def table_sql(self, table: str) -> str:
        """``table`` as a quoted SQL reference."""

    def claim(self, pipeline: str) -> bool:
        """Whether this connection may load ``pipeline`` now. A shared store grants each
        pipeline to one connection at a time, until it closes or is lost."""
        return True

    def holders(self) -> dict[str, str]:
        """Pipeline → the process (``host:pid``) whose connection holds it, as far as the
        database knows (a store used by one process knows nothing of this)."""
        return {}

    # -- the batch ----------------------------------------------------------------------------

    @abstractmethod
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
        """In ONE transaction: insert ``rows`` by ``plan``, move every cursor from its
        ``start`` to its ``end`` with a compare-and-set, and record the batch with its
        ``rejected`` records and the seconds of its ``stages`` before the load (the load's
        own, up to the batch record, the store adds). Raises ``CursorConflictError`` (nothing
        written) if a cursor is not at its ``start``."""

    @abstractmethod
    def trial_load(self, plan: LoadPlan, rows: pa.Table) -> str | None:
        """Insert ``rows`` by ``plan`` and roll back: None if the table accepts them all,
        else the store's reason for refusing them."""

    @abstractmethod
    def type_errors(self, plan: LoadPlan, rows: pa.Table) -> list[tuple[int, str]]:
        """``(row id, reason naming the column)`` for each row holding a value that does not
        convert to its column's type."""

    @abstractmethod
    def is_duplicate_key(self, reason: str) -> bool:
        """Whether a reason from ``trial_load`` is a primary or unique key violation."""

    @abstractmethod
    def rejected_records(self, pipeline: str, where: str | None) -> list[tuple[int, Rejected]]:
        """The stored records of ``PIPELINES_ERRORS`` that can be replayed, with their error
        ids; ``where`` filters on the view's columns."""

    @abstractmethod
    def replay(
        self,
        pipeline: str,
        plan: LoadPlan,
        rows: pa.Table,
        replayed: Sequence[int],
        still_failing: Sequence[tuple[int, str]],
    ) -> int:
        """In ONE transaction: insert ``rows``, delete the ``replayed`` error ids, and store
        the new reason of each error ``still_failing``. Returns rows written."""

    @abstractmethod
    def clear_errors(self, pipeline: str | None) -> int:
        """Delete the errors of one pipeline, or of all; how many were deleted."""

    @abstractmethod
    def preview(self, plan: LoadPlan, rows: pa.Table, limit: int | None) -> Result:
        """The rows ``plan`` would insert from ``rows`` (TEST PIPELINE); writes nothing."""

    @abstractmethod
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
        """Note a batch failure in ``information_schema.PIPELINES_ERRORS``."""
