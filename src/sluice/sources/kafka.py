"""KAFKA source: every partition of one topic, read with ``assign()`` from the stored cursors.

Consumer-group subscription is never used: the pipeline's cursors in the store are the only
record of progress, so a batch that fails to commit is simply read again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from itertools import chain, compress, repeat
from operator import is_not, itemgetter
from typing import Any, cast

import numpy as np
import pyarrow as pa
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from sluice._logs import RepeatFilter
from sluice.errors import SourceError, SourceUnavailableError
from sluice.native import kafkadrain
from sluice.options import OptionSpec
from sluice.sources.base import Source
from sluice.vocab import (
    ArrowRecords,
    NumpyInts,
    PartitionBatch,
    SourcePosition,
    int64_array,
    numpy_ints,
)

log = logging.getLogger("sluice.kafka")
# librdkafka's own log, through Sluice's logging, each distinct line at most every 30 s.
librdkafka_log = logging.getLogger("sluice.kafka.librdkafka")
_repeats = RepeatFilter(interval=30.0)
librdkafka_log.addFilter(_repeats)

DEFAULT_PORT = 9092
#: The native drain (``sluice.native.kafkadrain``) reads the topic when it is built; set
#: SLUICE_NATIVE_KAFKA=0 to read through confluent-kafka's Python consumer instead.
NATIVE = os.environ.get("SLUICE_NATIVE_KAFKA", "1") != "0"
NATIVE_FILL = 100_000  # messages a fill of the native drain asks for
MAX_RUNS = 1_000  # runs of one partition in a fill handed on as slices; more are sorted
AHEAD_SLICE = 0.005  # a read ahead takes what arrives in waits this long, until it is needed
_said_why = False
CONSUME_CHUNK = 10_000  # measured: faster than both single polls and very large calls
METADATA_REFRESH_SECONDS = 5.0

# Tuned on a 2-core machine (make bench). librdkafka prefetches each partition until
# queued.min.messages or queued.max.messages.kbytes is reached, then waits
# fetch.queue.backoff.ms before fetching it again. Its default wait (1 s) is what made deep
# queues look necessary; with a short one, a shallow queue keeps the load as fast (10M
# messages at ~700k/s either way) and bounds memory: each queued message costs librdkafka
# a few hundred bytes besides its payload (peak RSS 1.1 GB with 1M messages a partition
# queued, 0.76 GB with 50k).
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
    "queued.min.messages": 50_000,
    "queued.max.messages.kbytes": 16_384,
    "fetch.queue.backoff.ms": 10,
    "fetch.max.bytes": 50 * 1024 * 1024,
    "max.partition.fetch.bytes": 10 * 1024 * 1024,
    "socket.connection.setup.timeout.ms": 5_000,
    # An idle partition's fetch returns after this long: it bounds how soon the end of a
    # partition is known. New data is returned at once whatever this is.
    "fetch.wait.max.ms": 100,
}

# The consumer that reads a message here and there for the lag (``KafkaSource.positions``):
# small fetches, and no wait after reaching the end of a partition (librdkafka's default
# backoff after an end-of-partition event is 500 ms, measured as 1 s per probe).
PROBE_SETTINGS: dict[str, Any] = {
    "queued.min.messages": 1,
    "queued.max.messages.kbytes": 1024,
    "fetch.max.bytes": 1024 * 1024,
    "max.partition.fetch.bytes": 64 * 1024,
    "fetch.wait.max.ms": 10,
    "fetch.error.backoff.ms": 5,
    "fetch.queue.backoff.ms": 5,
}

# Unbound methods, so that map() calls them from C over a whole chunk of messages.
# (Typed as Any: the stubs say every accessor may return None, which never holds on this path.)
_error: Callable[[Any], Any] = Message.error
_partition: Callable[[Any], Any] = Message.partition
_value: Callable[[Any], Any] = Message.value
_offset: Callable[[Any], Any] = Message.offset
_timestamp: Callable[[Any], Any] = Message.timestamp
_key: Callable[[Any], Any] = Message.key


def _headers_json(headers: list[tuple[str, bytes | None]] | None) -> str | None:
    """A message's headers as the JSON object SQL reads (as the native drain writes it)."""
    if headers is None:
        return None
    return json.dumps(
        {k: None if v is None else v.decode("utf-8", "replace") for k, v in headers},
        ensure_ascii=False,
    )


OPTIONS = OptionSpec(
    "KAFKA CONFIG", passthrough="librdkafka as consumer properties (it names a bad one)"
)

_UNAVAILABLE = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE}


def parse_uri(uri: str) -> tuple[str, str]:
    """``'host[:port][,host2[:port]]/topic'`` → (bootstrap servers, topic)."""
    hosts, sep, topic = uri.partition("/")
    if not sep or not topic or not hosts or "/" in topic:
        raise SourceError(f"KAFKA address {uri!r} must look like 'host[:port][,host:port]/topic'")
    servers = ",".join(h if ":" in h else f"{h}:{DEFAULT_PORT}" for h in hosts.split(","))
    return servers, topic


class KafkaSource(Source):
    kind = "KAFKA"
    topic: str

    def __init__(
        self,
        uri: str,
        config: Mapping[str, Any],
        credentials: Mapping[str, Any] | None = None,
        *,
        pipeline: str = "",
        record_end: Callable[[bytes], int] | None = None,  # records are messages: never cut
        read_file: Callable[..., Any] | None = None,  # nor files
    ) -> None:
        config = OPTIONS.parse(config, error=SourceError, pipeline=pipeline)
        self.servers, self.topic = parse_uri(uri)
        self.pipeline = pipeline
        self.conf: dict[str, Any] = {
            **CONSUMER_DEFAULTS,
            "bootstrap.servers": self.servers,
            "group.id": f"sluice-{pipeline or 'pipeline'}",
            **config,
            **(credentials or {}),
            "logger": librdkafka_log,
        }
        self._consumer: Consumer | None = None
        self._probe: Consumer | None = None  # reads the messages ``positions`` needs
        self._position: dict[int, int | None] = {}  # next offset the consumer delivers
        # per partition, what was read past its full bucket: the first of the next batch
        self._held: dict[int, list[Any]] = {}
        self._eof: set[int] = set()
        self._partitions: list[int] = []
        self._listed_at = 0.0
        self._drain: kafkadrain.Drain | None = None
        self.native = NATIVE and _native_available()
        self._last_turn = -1  # the last partition a batch limited by max_partitions took

    # -- metadata -----------------------------------------------------------------------------

    def _client(self) -> Consumer:
        if self._consumer is None:
            try:
                self._consumer = Consumer(self.conf)
            except KafkaException as exc:
                raise SourceError(f"bad Kafka CONFIG: {exc}", pipeline=self.pipeline) from exc
        return self._consumer

    def _list_partitions(self, timeout: float = 10.0) -> list[int]:
        try:
            md = self._client().list_topics(self.topic, timeout=timeout)
        except KafkaException as exc:
            raise SourceUnavailableError(
                f"cannot reach Kafka at {self.servers}: {exc.args[0]}", pipeline=self.pipeline
            ) from exc
        topic = md.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            reason = topic.error.str() if topic is not None and topic.error else "no partitions"
            raise SourceUnavailableError(
                f"topic {self.topic!r} is not available on {self.servers}: {reason}",
                pipeline=self.pipeline,
            )
        return sorted(topic.partitions)

    def partitions(self) -> list[int]:
        now = time.monotonic()
        if now - self._listed_at > METADATA_REFRESH_SECONDS:
            self._partitions = self._list_partitions()
            self._listed_at = now
        return self._partitions

    def check(self) -> None:
        self._list_partitions(timeout=5.0)

    # -- extraction ---------------------------------------------------------------------------

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
        try:
            wanted = {p: cursors.get(str(p)) for p in self.partitions()}
            if any(p not in self._position or self._position[p] != c for p, c in wanted.items()):
                self._assign(wanted)
            taken = self._gather(wanted, max_per_partition, wait, stop_at_end, needed)
        except SourceUnavailableError:
            # Start afresh once the broker is back: librdkafka 2.16 can crash when a topic
            # it has cached is recreated under it (a restarted broker), so the consumer and
            # its metadata cache go now.
            self.close()
            raise
        except kafkadrain.DrainError as exc:
            self.close()
            raise SourceError(f"bad Kafka CONFIG: {exc}", pipeline=self.pipeline) from exc
        except BaseException:
            self._position.clear()  # messages were consumed and dropped: re-seek next time
            self._held = {}
            raise
        make = self._native_batch if self.native else self._python_batch
        batches = []
        for p in self._take_turns(taken, max_partitions):
            batch = make(p, wanted[p], taken[p])
            if batch is not None:
                batches.append(batch)
        return batches

    def _assign(self, wanted: Mapping[int, int | None]) -> None:
        starts = {p: c for p, c in wanted.items() if c is not None}
        # A partition never loaded starts at its first offset, asked for here through the
        # metadata client, which is connected already: given OFFSET_BEGINNING, a new consumer
        # asks itself before it knows the partition's leader, and librdkafka retries that
        # after 500 ms (measured: the first message 0.53 s after assign(), 0.03 s with it).
        reachable = True
        for p in sorted(set(wanted) - set(starts)):
            starts[p] = self._low_watermark(p) if reachable else OFFSET_BEGINNING
            reachable = starts[p] != OFFSET_BEGINNING
        if self.native:
            self._native_drain().assign(self.topic, starts)
        else:
            self._client().assign([TopicPartition(self.topic, p, o) for p, o in starts.items()])
        self._position = dict(wanted)
        self._held = {}
        self._eof.clear()

    def _gather(
        self,
        wanted: Mapping[int, int | None],
        cap: int,
        wait: float,
        stop_at_end: bool,
        needed: threading.Event | None,
    ) -> dict[int, list[Any]]:
        """Each partition's pieces of this batch (lists of messages, or Arrow batches on the
        native path), at most ``cap`` records a partition: first what an earlier batch held,
        then what the consumer delivers. Returns once every partition is full or at its end;
        once the consumer ran dry after delivering something (at the live edge, waiting longer
        only delays what it delivered) — for a read ahead, once that and the batch is
        ``needed``: until then it takes what arrives, in slices of ``AHEAD_SLICE`` seconds;
        once a read leaves a partition with a whole batch held (the consumer delivers
        partitions in runs: reading on to fill the others would pile up its records);
        or after ``wait``. With ``stop_at_end``, not when it ran dry. What is read past a full
        partition is held for the next batch."""
        taken: dict[int, list[Any]] = {p: [] for p in wanted}
        counts = dict.fromkeys(wanted, 0)
        held, self._held = self._held, {}
        got = 0
        for p, pieces in held.items():
            for piece in pieces:
                got += self._take(taken, counts, p, piece, cap)
        read = self._read_native if self.native else self._read_python
        eof = self._eof
        deadline = time.monotonic() + wait
        while True:
            full = all(p in eof or counts[p] >= cap for p in wanted)
            if full and (got or stop_at_end):
                return taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return taken
            now = needed is None or needed.is_set()
            if got and not stop_at_end:
                timeout = 0.0 if now else min(remaining, AHEAD_SLICE)
            else:
                timeout = min(remaining, 0.5)
            pieces, dry = read(timeout)
            for p, piece in pieces:
                got += self._take(taken, counts, p, piece, cap)
            if dry and got and not stop_at_end and now:
                return taken
            if any(sum(map(len, self._held.get(p, ()))) >= cap for p in {p for p, _ in pieces}):
                return taken  # reading on would only pile up a full partition's records

    def _take(
        self, taken: dict[int, list[Any]], counts: dict[int, int], p: int, piece: Any, cap: int
    ) -> int:
        """Put a piece of partition ``p`` in its bucket, holding what does not fit."""
        room = max(cap - counts.get(p, 0), 0)
        if len(piece) > room:
            self._held.setdefault(p, []).append(piece[room:])
            piece = piece[:room]
        if len(piece):
            taken.setdefault(p, []).append(piece)
            counts[p] = counts.get(p, 0) + len(piece)
        return len(piece)

    def _take_turns(self, taken: dict[int, list[Any]], limit: int | None) -> list[int]:
        """The partitions this batch loads: every one with records, or with a ``limit``, that
        many, starting after the partition the last such batch ended with. The others' records
        are held for a later batch: they stay consumed, so the consumer keeps its position and
        its prefetch."""
        ready = sorted(p for p, pieces in taken.items() if pieces)
        if not limit or not ready:
            return ready
        ready.sort(key=lambda p: p <= self._last_turn)  # those after the last turn first
        for p in ready[limit:]:  # held before any held already
            self._held[p] = taken[p] + self._held.get(p, [])
        self._last_turn = ready[:limit][-1]
        return sorted(ready[:limit])

    def _on_error(self, code: int, text: str, fatal: bool) -> None:
        """A consumer error other than the end of a partition (librdkafka's code and text)."""
        if code in _UNAVAILABLE:
            raise SourceUnavailableError(
                f"Kafka at {self.servers} is unreachable: {text}", pipeline=self.pipeline
            )
        if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise SourceUnavailableError(
                f"topic {self.topic!r} is not available on {self.servers}: {text}",
                pipeline=self.pipeline,
            )
        raise SourceError(f"Kafka error{' (fatal)' if fatal else ''}: {text}",
                          pipeline=self.pipeline)  # fmt: skip

    # -- the native path: a fill is one Arrow batch, split by partition with numpy --------------

    def _native_drain(self) -> kafkadrain.Drain:
        if self._drain is None:
            conf = {k: v for k, v in self.conf.items() if k != "logger"}
            self._drain = kafkadrain.Drain(conf)
        return self._drain

    def _read_native(self, timeout: float) -> tuple[list[tuple[int, pa.RecordBatch]], bool]:
        """One fill of the native drain, as a piece per partition, and whether it ran dry.
        Notes which partitions reached their end after their last row in it."""
        want = (
            (kafkadrain.WANT_TIMESTAMPS if "timestamp" in self.metadata else 0)
            | (kafkadrain.WANT_KEYS if "key" in self.metadata else 0)
            | (kafkadrain.WANT_HEADERS if "headers" in self.metadata else 0)
        )
        fill = self._native_drain().fill(timeout, NATIVE_FILL, want=want)
        if fill.skipped:
            log.warning(
                "pipeline %s: %d messages before the cursors were read again (the consumer "
                "went back) and skipped", self.pipeline, fill.skipped,
            )  # fmt: skip
        pieces = []
        last_row: dict[int, int] = {}  # the last row of each partition in this fill
        if fill.rows:
            columns = {"value": fill.values, "offset": fill.offsets}
            for name, column in (
                ("timestamp", fill.timestamps), ("key", fill.keys), ("headers", fill.headers)
            ):  # fmt: skip
                if column is not None:
                    columns[name] = column
            rows = pa.RecordBatch.from_pydict(columns)
            parts = numpy_ints(fill.partitions)
            seen, last = np.unique(parts[::-1], return_index=True)
            last_row = dict(zip(seen.tolist(), (len(parts) - 1 - last).tolist(), strict=True))
            self._eof.difference_update(last_row)
            # librdkafka hands out each partition's fetched messages in runs: a piece per run,
            # a slice of the fill (no copy)
            cuts = np.flatnonzero(parts[1:] != parts[:-1]) + 1
            if len(cuts) > MAX_RUNS:  # many short runs: one sorted copy costs less
                order = np.argsort(parts, kind="stable")
                rows, parts = rows.take(int64_array(order)), parts[order]
                cuts = np.flatnonzero(parts[1:] != parts[:-1]) + 1
            starts, stops = [0, *cuts.tolist()], [*cuts.tolist(), len(parts)]
            for start, stop in zip(starts, stops, strict=True):
                pieces.append((int(parts[start]), rows.slice(start, stop - start)))
        for p, at in zip(fill.eof, fill.eof_at, strict=True):
            if at > last_row.get(p, -1):  # reached its end after its last row of this fill
                self._eof.add(p)
        if fill.error is not None:
            code, text, fatal, _ = fill.error
            self._on_error(code, text, fatal)  # the pieces before it are dropped: re-seek
        return pieces, fill.dry

    def _native_batch(
        self, p: int, start: int | None, pieces: list[pa.RecordBatch]
    ) -> PartitionBatch:
        rows = pa.Table.from_batches(pieces)  # the records stay in the fills' buffers
        offsets = numpy_ints(rows.column("offset"))
        end = int(offsets[-1]) + 1
        self._position[p] = end
        high = self._native_drain().high_watermark(self.topic, p)
        batch = PartitionBatch(
            str(p), start, end,
            records=ArrowRecords(rows.column("value")),
            latest=max(high, end), offsets=NumpyInts(offsets),
        )  # fmt: skip
        if "timestamp" in self.metadata:
            batch.timestamps = NumpyInts(numpy_ints(rows.column("timestamp")))
        if "key" in self.metadata:
            batch.keys = ArrowRecords(rows.column("key"))
        if "headers" in self.metadata:
            batch.headers = ArrowRecords(rows.column("headers"))
        return batch

    # -- confluent-kafka's consumer: lists of Message objects, split with C-level calls ---------

    def _read_python(self, timeout: float) -> tuple[list[tuple[int, list[Message]]], bool]:
        """What the consumer has queued, waiting up to ``timeout`` for the first message only
        (``consume`` returns a chunk once it is full or its timeout passed), as a piece per
        partition; and whether it ran dry."""
        consumer = self._client()
        msgs = []
        if timeout > 0:
            first = consumer.poll(timeout)
            if first is None:
                return [], True
            msgs.append(first)
        msgs += consumer.consume(CONSUME_CHUNK - len(msgs), timeout=0)
        return self._sort(msgs), len(msgs) < CONSUME_CHUNK

    def _sort(self, msgs: list[Message]) -> list[tuple[int, list[Message]]]:
        """A chunk of messages as a piece per partition, in order. Its events (end-of-partition,
        errors: a few per chunk) cut it into runs, split with C-level calls rather than a
        Python step per message."""
        if not msgs:
            return []
        errors = list(map(_error, msgs))
        if any(errors):
            pieces, start = [], 0
            for i in compress(range(len(msgs)), map(is_not, errors, repeat(None))):
                pieces += self._sort(msgs[start:i])
                err = errors[i]
                if err.code() == KafkaError._PARTITION_EOF:
                    self._eof.add(cast(int, msgs[i].partition()))
                else:
                    self._on_error(err.code(), err.str(), err.fatal())
                start = i + 1
            return pieces + self._sort(msgs[start:])
        partitions: list[int] = list(map(_partition, msgs))
        distinct = sorted(set(partitions))
        if len(distinct) > 1:  # a stable sort by partition keeps each partition's order
            order = sorted(range(len(msgs)), key=partitions.__getitem__)
            msgs = list(itemgetter(*order)(msgs))
            partitions = sorted(partitions)
        self._eof.difference_update(distinct)
        return [
            (p, msgs[bisect_left(partitions, p) : bisect_right(partitions, p)]) for p in distinct
        ]

    def _python_batch(
        self, p: int, start: int | None, pieces: list[list[Any]]
    ) -> PartitionBatch | None:
        msgs = list(chain.from_iterable(pieces))  # typed stubs say offset() may be None; never
        if start is not None and msgs[0].offset() < start:
            # The consumer went back (an out-of-range reset after the broker lost data):
            # what lies before the cursor is loaded already.
            log.warning(
                "pipeline %s: partition %d rewound; skipping to %d", self.pipeline, p, start
            )
            msgs = [m for m in msgs if m.offset() >= start]
            if not msgs:
                return None
        end = msgs[-1].offset() + 1
        self._position[p] = end
        topic_partition = TopicPartition(self.topic, p)
        _, high = self._client().get_watermark_offsets(topic_partition, cached=True)
        values = list(map(_value, msgs))
        if None in values:  # a message without a value: an empty record
            values = [v or b"" for v in values]
        batch = PartitionBatch(
            str(p), start, end, records=values, latest=max(high, end),
            offsets=list(map(_offset, msgs)),
        )  # fmt: skip
        if "timestamp" in self.metadata:
            batch.timestamps = list(map(itemgetter(1), map(_timestamp, msgs)))
        if "key" in self.metadata:
            batch.keys = list(map(_key, msgs))
        if "headers" in self.metadata:
            batch.headers = [_headers_json(m.headers()) for m in msgs]
        return batch

    # -- SET OFFSETS --------------------------------------------------------------------------

    def earliest(self) -> dict[str, int]:
        out = {}
        for p in self._list_partitions():
            low, _ = self._client().get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
            out[str(p)] = low
        return out

    def _low_watermark(self, p: int) -> int:
        """A partition's first offset; OFFSET_BEGINNING (librdkafka finds it) if not known."""
        try:
            low, _ = self._client().get_watermark_offsets(TopicPartition(self.topic, p), timeout=2)
        except KafkaException:
            return OFFSET_BEGINNING
        return int(low) if low >= 0 else OFFSET_BEGINNING

    def latest(self) -> dict[str, int]:
        """The end of every partition, found by reading up to the end-of-partition event.

        Workaround for the development broker (Tansu), whose ListOffsets reports the base offset
        of the last record batch + 1 rather than the log end. On a real Kafka cluster the
        reported watermark already is the end, so the read below returns at once.
        """
        consumer = self._client()
        parts = self._list_partitions()
        marks = {}
        for p in parts:
            _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
            marks[p] = high
        probe = Consumer({**self.conf, "group.id": f"{self.conf['group.id']}-probe"})
        try:
            probe.assign([TopicPartition(self.topic, p, marks[p]) for p in parts])
            ends: dict[int, int] = {}
            deadline = time.monotonic() + 30
            while len(ends) < len(parts) and time.monotonic() < deadline:
                for m in probe.consume(CONSUME_CHUNK, timeout=0.5):
                    err = m.error()
                    if err is not None and err.code() == KafkaError._PARTITION_EOF:
                        ends[cast(int, m.partition())] = cast(int, m.offset())
        finally:
            probe.close()
            _repeats.flush(librdkafka_log)
        if len(ends) < len(parts):
            raise SourceUnavailableError(
                f"could not find the end of topic {self.topic!r} within 30 s",
                pipeline=self.pipeline,
            )
        return {str(p): o for p, o in ends.items()}

    # -- lag ----------------------------------------------------------------------------------

    def positions(
        self, cursors: Mapping[str, int], timeout: float = 5.0
    ) -> dict[str, SourcePosition]:
        """Each partition's first offset and end, and the lag in seconds: the timestamp of its
        newest message less that of the message at its cursor (at its first offset when it has
        no cursor). Reads at most two messages a partition, with a consumer of its own.

        The end is the high watermark the broker sent with the message read at the cursor
        (the development broker's ListOffsets is wrong; its fetch responses are right)."""
        deadline = time.monotonic() + timeout
        parts = self._list_partitions(timeout)
        client = self._client()
        lows = {}
        try:
            for p in parts:
                tp = TopicPartition(self.topic, p)
                low, _ = client.get_watermark_offsets(tp, timeout=_left(deadline))
                lows[p] = max(int(low), 0)
        except KafkaException as exc:
            raise SourceUnavailableError(
                f"cannot reach Kafka at {self.servers}: {exc.args[0]}", pipeline=self.pipeline
            ) from exc
        starts = {p: max(cursors.get(str(p), lows[p]), lows[p]) for p in parts}
        probe = self._probe_client()
        at_cursor, ends = self._first_messages(probe, starts, deadline)
        for p in at_cursor:
            _, high = probe.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            ends[p] = max(int(high), at_cursor[p][0] + 1)
        newest, _ = self._first_messages(
            probe, {p: ends[p] - 1 for p in at_cursor if ends[p] - 1 > at_cursor[p][0]}, deadline
        )
        out = {}
        for p in parts:
            lag: float | None = None  # not read in time, or no timestamps
            if p in at_cursor:
                offset, first = at_cursor[p]
                only = ends[p] - 1 <= offset  # the message at the cursor is the newest
                last = newest[p][1] if p in newest else first if only else None
                if first is not None and last is not None:
                    lag = max(last - first, 0) / 1000
            elif p in ends:  # nothing after the cursor
                lag = 0.0
            out[str(p)] = SourcePosition(lows[p], ends.get(p), lag)
        return out

    def _probe_client(self) -> Consumer:
        if self._probe is None:
            settings = {**self.conf, **PROBE_SETTINGS, "group.id": f"{self.conf['group.id']}-lag"}
            try:
                self._probe = Consumer(settings)
            except KafkaException as exc:
                raise SourceError(f"bad Kafka CONFIG: {exc}", pipeline=self.pipeline) from exc
        return self._probe

    def _first_messages(
        self, probe: Consumer, starts: Mapping[int, int], deadline: float
    ) -> tuple[dict[int, tuple[int, int | None]], dict[int, int]]:
        """Partition → (offset, timestamp in ms or None) of the first message at or after its
        start; and partition → end, for those that had none. Whatever is not read by
        ``deadline`` is left out."""
        found: dict[int, tuple[int, int | None]] = {}
        ends: dict[int, int] = {}
        if not starts:
            return found, ends
        probe.assign([TopicPartition(self.topic, p, o) for p, o in starts.items()])
        try:
            while len(found) + len(ends) < len(starts) and time.monotonic() < deadline:
                for m in probe.consume(CONSUME_CHUNK, timeout=0.05):
                    p, err = cast(int, m.partition()), m.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF and p not in found:
                            ends[p] = cast(int, m.offset())
                        elif err.code() in _UNAVAILABLE:
                            raise SourceUnavailableError(
                                f"cannot reach Kafka at {self.servers}: {err.str()}",
                                pipeline=self.pipeline,
                            )
                        continue
                    if p not in found:
                        kind, ms = m.timestamp()
                        stamp = None if kind == TIMESTAMP_NOT_AVAILABLE else ms
                        found[p] = (cast(int, m.offset()), stamp)
        finally:
            probe.unassign()
        return found, ends

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        if self._drain is not None:
            self._drain.close()
            self._drain = None
        if self._consumer is not None:
            self._consumer.close()  # serves the log lines still queued
            self._consumer = None
            _repeats.flush(librdkafka_log)
        self._position.clear()
        self._held = {}
        self._eof.clear()
        self._listed_at = 0.0


def _left(deadline: float) -> float:
    """Seconds until ``deadline``, at least a little (librdkafka takes 0 as "no wait")."""
    return max(deadline - time.monotonic(), 0.01)


def _native_available() -> bool:
    """Whether the native drain can be used; says once why not."""
    global _said_why
    why = kafkadrain.load()
    if why is not None and not _said_why:
        _said_why = True
        log.info("reading Kafka through confluent-kafka's consumer: %s", why)
    return why is None
