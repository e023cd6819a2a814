"""Errors raised by Sluice, and the one classification that decides what a failure does.

::

    SluiceError                 every error carries pipeline, batch_id, partition, offset
    ├── ParseError              bad SQL; carries line, column and a caret under the token
    ├── DatabaseLockedError     the database file is held by another process
    ├── RetriedError            marker: may succeed when tried again, a few times
    │   └── TransformError      a transform program failed, timed out; a Python transform raised
    ├── TransientError          marker: may clear by itself
    │   ├── SourceUnavailableError   (also a SourceError) broker unreachable, topic missing
    │   ├── TransientStoreError      (also a StoreError) database unreachable, disk full
    │   └── CursorConflictError      (also a StoreError) another writer moved the cursor
    └── TerminalError           marker: retrying cannot help
        ├── NotSupportedError   syntax Sluice accepts but does not run yet
        ├── CatalogError        unknown or duplicate pipeline, wrong state for the statement
        ├── AccessDeniedError   a user's privileges do not allow the statement
        ├── SourceError         Kafka / file problems: bad address, bad CONFIG
        ├── FormatError         a batch that cannot be parsed at all (bad format options)
        ├── StoreError          the store refused: missing table, permission denied
        └── RejectedRecordError a record the pipeline may not skip (+ where it is)

What a failure of a running pipeline does is decided by :func:`classify`, here and nowhere
else (``sluice.engine.runner`` acts on it):

- ``TRANSIENT`` (a ``TransientError``): retried with capped, jittered backoff for as long as it
  lasts; the pipeline stays Running, with a Warning in ``PIPELINES_ERRORS``.
- ``RECORD`` (a ``RejectedRecordError``): particular records fail; the skip policy decides.
  Under ``STOP_ON_ERROR OFF`` they are left out (into ``PIPELINES_ERRORS``) and the batch loads;
  else the pipeline stops in state Error at once (the same records would fail again).
- ``TERMINAL`` (any other ``TerminalError``): state Error at once, with the message.
- ``RETRIED`` (a ``RetriedError``: a transform that failed): retried
  ``MAX_RETRIES_PER_BATCH_PARTITION`` times, then state Error with the message.
- ``BUG`` (anything else): retried ``MAX_RETRIES_PER_BATCH_PARTITION`` times, then state Error
  with the traceback in ``PIPELINES_ERRORS``.

A bad *record* is never raised by a format: it is data (``sluice.formats.ParsedBatch.errors``),
and becomes a ``RejectedRecordError`` only when the pipeline may not skip it.
"""

from __future__ import annotations

import enum


class SluiceError(Exception):
    """Root of every error Sluice raises on purpose. Where it happened, as far as known:
    ``pipeline``, ``batch_id``, ``partition`` (a Kafka partition or a file) and ``offset``."""

    def __init__(
        self,
        message: str = "",
        *,
        pipeline: str | None = None,
        batch_id: int | None = None,
        partition: str | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.pipeline = pipeline
        self.batch_id = batch_id
        self.partition = partition
        self.offset = offset


class RetriedError(SluiceError):
    """Marker: the batch may load when tried again (a program that crashed, timed out):
    retried ``MAX_RETRIES_PER_BATCH_PARTITION`` times, then the pipeline stops in Error."""


class TransformError(RetriedError):
    """A transform failed the batch; ``stderr``: what its program wrote to standard error."""

    def __init__(self, message: str, *, stderr: str | None = None, **where: object) -> None:
        super().__init__(message, **where)  # type: ignore[arg-type]
        self.stderr = stderr


class TransientError(SluiceError):
    """Marker: the condition may clear by itself; retry with backoff."""


class TerminalError(SluiceError):
    """Marker: retrying cannot help; the pipeline stops in state Error."""


class ParseError(SluiceError):
    """A statement that does not parse. ``str()`` shows the line with a caret under the token."""

    def __init__(self, message: str, sql: str = "", position: int = 0) -> None:
        self.message = message
        self.sql = sql
        self.position = position
        before = sql[:position]
        self.line = before.count("\n") + 1
        self.column = position - (before.rfind("\n") + 1) + 1
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.message} (line {self.line}, column {self.column})"
        if not self.sql:
            return head
        text = self.sql.split("\n")[self.line - 1].rstrip("\r")
        return f"{head}\n  {text}\n  {' ' * (self.column - 1)}^"


class NotSupportedError(TerminalError):
    """Valid pipeline syntax that this version of Sluice does not run yet."""


class CatalogError(TerminalError):
    """A pipeline that does not exist, already exists, or is in the wrong state."""


class AccessDeniedError(TerminalError):
    """A user's privileges do not allow the statement (or a wrong password)."""


class DatabaseLockedError(SluiceError):
    """The database file is held by another process."""


class SourceError(TerminalError):
    """The source cannot be read as configured (a bad address, a bad CONFIG)."""


class SourceUnavailableError(SourceError, TransientError):
    """The source cannot be reached right now (broker down, network)."""


class FormatError(TerminalError):
    """A whole batch could not be parsed (bad format options, not a bad record)."""


class StoreError(TerminalError):
    """The store refused a statement for a reason retrying cannot fix (a missing table or
    column, a permission denied)."""


class InvalidStatementError(StoreError):
    """The store could not read a statement: bad syntax, or a function, table or column it
    does not know."""


class TransientStoreError(StoreError, TransientError):
    """The store cannot take the batch now (unreachable, restarting, a write conflict): the
    batch is retried."""


class CursorConflictError(StoreError, TransientError):
    """The stored cursor moved under the batch: another writer owns the partition."""


class RejectedRecordError(TerminalError):
    """A record failed to parse or load and the pipeline does not skip such records.
    ``rejected`` says where it is (partition, offset), why, and holds its raw bytes."""

    def __init__(self, message: str, *, pipeline: str, rejected: object) -> None:
        partition, offset = getattr(rejected, "partition", None), getattr(rejected, "offset", None)
        super().__init__(message, pipeline=pipeline, partition=partition, offset=offset)
        self.rejected = rejected


class Failure(enum.Enum):
    """What a failed batch is, for what the pipeline does next (see the module docstring)."""

    TRANSIENT = "transient"
    RECORD = "record"
    TERMINAL = "terminal"
    RETRIED = "retried"
    BUG = "bug"


def classify(exc: BaseException) -> Failure:
    """The one place that says what kind of failure ``exc`` is."""
    if isinstance(exc, TransientError):
        return Failure.TRANSIENT
    if isinstance(exc, RejectedRecordError):
        return Failure.RECORD
    if isinstance(exc, TerminalError):
        return Failure.TERMINAL
    if isinstance(exc, RetriedError):
        return Failure.RETRIED
    return Failure.BUG
