"""Sources: list a pipeline's partitions and extract offset ranges of raw records.

A *partition* is a Kafka partition (named by its number) or a file (named by its path).
An *offset* is the position of a record in the partition; the pipeline's stored *cursor* for a
partition is the offset of the next record to load, so a batch covers ``[start, end)`` with
``start`` equal to the stored cursor and ``end`` the cursor after it commits. A file has two
offsets: 0 (not loaded) and 1 (loaded), so the same compare-and-set protects both kinds.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from sluice.vocab import PartitionBatch, SourcePosition


class Source(ABC):
    """One pipeline's reader of one source. Used by one thread at a time; ``close()`` it.

    The source keeps its read position between calls; ``extract`` compares it with the
    cursors it is given and seeks whenever they differ (after a failed batch, or after
    ``ALTER PIPELINE … SET OFFSETS``), so the stored cursors alone decide what is read.
    """

    #: The SOURCE_TYPE shown in the monitoring views.
    kind: str
    #: What to collect per record besides its value, because the pipeline reads it (any of
    #: "timestamp", "key", "headers"; a source without them ignores this). Set by the engine.
    metadata: frozenset[str] = frozenset()
    #: The topic, for ``get_kafka_pipeline_prop('prop_topicname')``; None where there is none.
    topic: str | None = None

    @abstractmethod
    def __init__(
        self,
        uri: str,
        config: Mapping[str, Any],
        credentials: Mapping[str, Any] | None = None,
        *,
        pipeline: str = "",
        record_end: Callable[[bytes], int] | None = None,
        read_file: Callable[..., Any] | None = None,
    ) -> None:
        """A reader of ``uri`` with the pipeline's ``CONFIG`` and ``CREDENTIALS`` (checked
        against the source's ``OPTIONS`` spec; a ``SourceError`` names a bad key). A source of
        files cuts a file too large for one batch where ``record_end`` says its records end, or
        has ``read_file`` read it in pieces (a format that reads its files itself)."""

    @abstractmethod
    def check(self) -> None:
        """Raise a ``SourceError`` naming the problem if the source cannot be read."""

    @abstractmethod
    def extract(
        self,
        cursors: Mapping[str, int],
        max_per_partition: int,
        wait: float,
        *,
        stop_at_end: bool = False,
        max_partitions: int | None = None,
        needed: threading.Event | None = None,
    ) -> list[PartitionBatch]:
        """Records after ``cursors``, at most ``max_per_partition`` offsets per partition and,
        with ``max_partitions``, from that many partitions at most, taken in turn so that none
        waits behind the others.

        Returns as soon as every partition is caught up (or full) and something was read;
        with ``stop_at_end``, as soon as every partition is caught up even if nothing was.
        Never blocks longer than ``wait`` seconds. An empty list means nothing new.

        ``needed``: this is a read ahead of the batch being loaded, and is needed once the event
        is set. Until then a source may go on taking what arrives (within the bounds above),
        so that the batch holds everything that arrived while the one before it loaded. A
        source that returns at once may ignore it.
        """

    @abstractmethod
    def earliest(self) -> dict[str, int]:
        """The first offset of every partition (SET OFFSETS EARLIEST)."""

    @abstractmethod
    def latest(self) -> dict[str, int]:
        """The end of every partition (SET OFFSETS LATEST)."""

    def positions(
        self, cursors: Mapping[str, int], timeout: float = 5.0
    ) -> dict[str, SourcePosition]:
        """Where each partition stands against ``cursors`` (the next offsets to load), for the
        lag the monitoring views and metrics show, read within about ``timeout`` seconds and
        without moving what ``extract`` reads. A source that cannot say returns ``{}``."""
        return {}

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release connections."""
