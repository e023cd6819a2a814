"""Errors raised by Sluice.

::

    SluiceError
    ├── ParseError            bad SQL; carries line, column and a caret under the token
    ├── NotSupportedError     syntax Sluice accepts but does not run yet
    ├── CatalogError          unknown or duplicate pipeline, wrong state for the statement
    ├── DatabaseLockedError   the database file is held by another process
    ├── SourceError           Kafka / file problems        (pipeline, partition)
    │   └── SourceUnavailableError   + TransientError: broker unreachable, file vanished
    ├── FormatError           a batch that cannot be parsed at all
    ├── StoreError            the store refused the batch  (pipeline, batch_id)
    │   └── CursorConflictError      + TransientError: another writer moved the cursor
    └── BatchError            a batch failed; wraps the cause (pipeline, batch_id)
        └── RejectedRecordError  a record the pipeline may not skip (+ where it is)

``TransientError`` and ``TerminalError`` are markers: the engine retries a transient error with
backoff and stops the pipeline in state ``Error`` on a terminal one. A bad *record* is never an
exception; it is data (see ``sluice.formats.base.ParsedBatch.errors``).
"""

from __future__ import annotations


class SluiceError(Exception):
    """Root of every error Sluice raises on purpose."""


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


class DatabaseLockedError(SluiceError):
    """The database file is held by another process."""


class SourceError(TerminalError):
    def __init__(self, message: str, *, pipeline: str = "", partition: str | None = None) -> None:
        super().__init__(message)
        self.pipeline = pipeline
        self.partition = partition


class SourceUnavailableError(SourceError, TransientError):
    """The source cannot be reached right now (broker down, network)."""


class FormatError(TerminalError):
    """A whole batch could not be parsed (bad format options, not a bad record)."""


class StoreError(TerminalError):
    def __init__(self, message: str, *, pipeline: str = "", batch_id: int | None = None) -> None:
        super().__init__(message)
        self.pipeline = pipeline
        self.batch_id = batch_id


class TransientStoreError(StoreError, TransientError):
    """The store cannot take the batch now (unreachable, restarting, a write conflict): the
    batch is retried."""


class CursorConflictError(StoreError, TransientError):
    """The stored cursor moved under the batch: another writer owns the partition."""


class BatchError(SluiceError):
    """A batch failed; ``__cause__`` holds why. Transient if the cause is."""

    def __init__(self, message: str, *, pipeline: str, batch_id: int | None = None) -> None:
        super().__init__(message)
        self.pipeline = pipeline
        self.batch_id = batch_id


class RejectedRecordError(BatchError, TerminalError):
    """A record failed to parse or load and the pipeline does not skip such records.
    ``rejected`` says where it is (partition, offset), why, and holds its raw bytes."""

    def __init__(self, message: str, *, pipeline: str, rejected: object) -> None:
        super().__init__(message, pipeline=pipeline)
        self.rejected = rejected
