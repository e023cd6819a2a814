"""RABBITMQ source: one RabbitMQ stream, read from the stored cursor with the stream protocol
(``rstream``'s client). Sluice's own extension to SingleStore's grammar:
``LOAD DATA RABBITMQ 'host[:port]/stream' [CONFIG '{"vhost": …}'] [CREDENTIALS '{"username": …,
"password": …}']``.

A stream is an append-only log whose messages have consecutive offsets, like a Kafka
partition: the stream is the pipeline's one partition, ``"0"``, and its cursor is the offset of
the next message to load, committed with the batch's rows. Subscribing at that offset replays
exactly what the last committed batch did not load, so the exactly-once protocol is Kafka's.

RabbitMQ delivers a stream in *chunks* (the messages a publisher's batch wrote together) as far
as the subscriber has given credit; Sluice gives one chunk of credit for each it takes, so at
most ``credit`` chunks are read ahead. RabbitMQ 3.10's stream protocol has no "end of stream"
query, so the end is found by asking for the stream's last chunk (a second subscription at
``LAST``), which is what ``START … FOREGROUND`` and ``SET OFFSETS LATEST`` stop at.

Messages written by RabbitMQ's clients (and by AMQP 0.9.1 publishers, through the broker) are
AMQP 1.0 messages: by default the record is their body (``message_format`` ``amqp``); a message
that is not AMQP-encoded is taken as it is. With ``raw`` every message is taken as it is.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from sluice.errors import SourceError, SourceUnavailableError
from sluice.options import Option, OptionSpec
from sluice.sources.base import Source
from sluice.vocab import PartitionBatch

log = logging.getLogger("sluice.rabbitmq")
T = TypeVar("T")

DEFAULT_PORT = 5552
PARTITION = "0"
CREDENTIAL_KEYS = ("username", "password")
OPTIONS = OptionSpec(
    "RABBITMQ CONFIG",
    (
        Option("vhost", "/", "the virtual host of the stream"),
        Option(
            "message_format",
            "amqp",
            "amqp: the record is an AMQP 1.0 message's body (any other message as it is); "
            "raw: every message as it is",
        ),
        Option("tls", False, "connect with TLS (the system's trusted certificates)"),
        Option("credit", 10, "chunks read ahead of the batch being loaded", minimum=1),
        Option("connect_timeout_seconds", 10.0, "how long connecting may take", minimum=0.1),
    ),
)
# Subscription ids, a new one for each subscription, so that a chunk still on its way for an
# earlier one (after a seek) is told apart and dropped: reads take 1-8, probes 9-16 in turn.
_READS, _PROBES = tuple(range(1, 9)), tuple(range(9, 17))
_IDLE = 0.05  # a running batch is complete once no chunk has come for this long
_PROBE_WAIT = 2.0  # an empty stream sends no last chunk: how long to wait for one


def parse_uri(uri: str) -> tuple[str, int, str]:
    """``'host[:port]/stream'`` → (host, port, stream)."""
    address, sep, stream = uri.partition("/")
    host, _, port = address.partition(":")
    if not sep or not stream or not host or "/" in stream or (port and not port.isdigit()):
        raise SourceError(f"RABBITMQ address {uri!r} must look like 'host[:port]/stream'")
    return host, int(port or DEFAULT_PORT), stream


class RabbitMQSource(Source):
    kind = "RABBITMQ"

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
        self.pipeline = pipeline
        self.values = OPTIONS.parse(config, error=SourceError, pipeline=pipeline)
        if self.values["message_format"] not in ("amqp", "raw"):
            raise SourceError(
                f"RABBITMQ CONFIG message_format must be 'amqp' or 'raw', got "
                f"{self.values['message_format']!r}",
                pipeline=pipeline,
            )
        unknown = sorted(set(credentials or {}) - set(CREDENTIAL_KEYS))
        if unknown:
            raise SourceError(
                f"unknown RABBITMQ CREDENTIALS key(s) {unknown}; valid keys: "
                f"{list(CREDENTIAL_KEYS)}",
                pipeline=pipeline,
            )
        self.host, self.port, self.topic = parse_uri(uri)
        self.address = f"{self.host}:{self.port}"
        self.username = str((credentials or {}).get("username", "guest"))
        self._password = str((credentials or {}).get("password", "guest"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._chunks: queue.Queue[Any] = queue.Queue()  # delivered, not yet taken
        self._probes: queue.Queue[Any] = queue.Queue()
        self._position: int | None = None  # the offset the subscription delivers next
        self._read_id = _READS[-1]  # the read subscription's id (once subscribed)
        self._probe_id = _PROBES[-1]
        self._subscribed = False  # the next chunk is the subscription's first
        self._held: list[tuple[int, bytes, int]] = []  # taken past a full batch: (offset, …)
        self._end = 0  # the stream's end, as last found

    # -- the connection ----------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coroutine`` on the source's event loop thread; its result or exception."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name=f"sluice-rabbitmq-{self.pipeline}", daemon=True
            )
            self._thread.start()
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise SourceUnavailableError(
                f"RabbitMQ at {self.address} did not answer within {timeout:g} s",
                pipeline=self.pipeline,
            ) from None

    def _connected(self) -> Any:
        if self._client is not None and not self._client.is_connection_alive():
            self._drop()
            raise SourceUnavailableError(
                f"lost the connection to RabbitMQ at {self.address}", pipeline=self.pipeline
            )
        if self._client is None:
            self._client = self._run(self._connect(), self.values["connect_timeout_seconds"] + 5)
        return self._client

    async def _connect(self) -> Any:
        from rstream import exceptions, schema
        from rstream.client import Client

        context = ssl.create_default_context() if self.values["tls"] else None
        client = Client(
            self.host, self.port, ssl_context=context, frame_max=8 << 20, heartbeat=60,
            connection_name=f"sluice-{self.pipeline or 'pipeline'}",
        )  # fmt: skip
        try:
            await asyncio.wait_for(client.start(), self.values["connect_timeout_seconds"])
            await client.authenticate(self.values["vhost"], self.username, self._password)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            await _close(client)
            raise SourceUnavailableError(
                f"cannot reach RabbitMQ at {self.address}: {exc or type(exc).__name__}",
                pipeline=self.pipeline,
            ) from exc
        except (exceptions.AuthenticationFailure, exceptions.SASLError) as exc:
            await _close(client)
            raise SourceError(
                f"RabbitMQ at {self.address} refused the credentials of user "
                f"{self.username!r}: {exc}",
                pipeline=self.pipeline,
            ) from exc
        except exceptions.VirtualHostAccessFailure as exc:
            await _close(client)
            raise SourceError(
                f"RabbitMQ at {self.address} refused user {self.username!r} the virtual host "
                f"{self.values['vhost']!r}: {exc}",
                pipeline=self.pipeline,
            ) from exc
        # rstream queues every chunk for each name a Deliver handler is added under: one name,
        # and the chunks are sorted here by their subscription's id.
        client.add_handler(schema.Deliver, _ignore, name="1")
        await client.run_queue_listener_task(1, self._route)
        return client

    def _route(self, chunk: Any) -> None:
        (self._chunks if chunk.subscription_id in _READS else self._probes).put_nowait(chunk)

    def check(self) -> None:
        client = self._connected()
        if not self._run(client.stream_exists(self.topic)):
            raise SourceError(
                f"RabbitMQ stream {self.topic!r} does not exist on {self.address} "
                f"(virtual host {self.values['vhost']!r})",
                pipeline=self.pipeline,
            )

    async def _subscribe(self, subscription: int, offset: int | None, credit: int) -> None:
        from rstream import exceptions, schema
        from rstream.constants import OffsetType

        if offset is None:
            spec = schema.OffsetSpec.from_params(OffsetType.FIRST, None)
        elif offset < 0:
            spec = schema.OffsetSpec.from_params(OffsetType.LAST, None)
        else:
            spec = schema.OffsetSpec.from_params(OffsetType.OFFSET, offset)
        try:
            await self._client.subscribe(self.topic, subscription, spec, initial_credit=credit)
        except exceptions.StreamDoesNotExist as exc:
            raise SourceUnavailableError(
                f"RabbitMQ stream {self.topic!r} does not exist on {self.address}",
                pipeline=self.pipeline,
            ) from exc
        except (exceptions.StreamNotAvailable, exceptions.LeaderNotAvailable) as exc:
            raise SourceUnavailableError(  # a node restarting, a leader being elected
                f"RabbitMQ stream {self.topic!r} is not available on {self.address} yet",
                pipeline=self.pipeline,
            ) from exc
        except exceptions.ServerError as exc:
            raise SourceError(
                f"RabbitMQ refused to read stream {self.topic!r}: {exc}", pipeline=self.pipeline
            ) from exc

    def _seek(self, cursor: int | None) -> None:
        client = self._connected()
        if self._position is not None:
            self._run(client.unsubscribe(self._read_id))
        _drain(self._chunks)
        self._held.clear()
        self._read_id = _next(_READS, self._read_id)
        self._run(self._subscribe(self._read_id, cursor, self.values["credit"]))
        self._position = cursor
        self._subscribed = True

    # -- extraction --------------------------------------------------------------------------

    def extract(
        self,
        cursors: Mapping[str, int],
        max_per_partition: int,
        wait: float,
        *,
        stop_at_end: bool = False,
        max_partitions: int | None = None,
        needed: threading.Event | None = None,  # returns once it has something anyway
    ) -> list[PartitionBatch]:
        cursor = cursors.get(PARTITION)
        try:
            if self._position is None or self._position != cursor:
                self._seek(cursor)
            end = self._find_end() if stop_at_end else None
            taken = self._take(cursor, max_per_partition, wait, end)
        except SourceUnavailableError:
            self._drop()
            raise
        except BaseException:
            self._position = None  # chunks were taken and dropped: subscribe again next time
            raise
        if not taken:
            return []
        offsets = [o for o, _, _ in taken]
        self._position = offsets[-1] + 1
        self._end = max(self._end, self._position)
        batch = PartitionBatch(
            PARTITION,
            cursor,
            self._position,
            records=[r for _, r, _ in taken],
            latest=self._end,
            offsets=offsets,
        )
        if "timestamp" in self.metadata:
            batch.timestamps = [t for _, _, t in taken]
        if "key" in self.metadata:
            batch.keys = [None] * len(taken)
        if "headers" in self.metadata:
            batch.headers = [None] * len(taken)
        return [batch]

    def _take(
        self, cursor: int | None, cap: int, wait: float, end: int | None
    ) -> list[tuple[int, bytes, int]]:
        """Up to ``cap`` messages from ``cursor`` on: until ``end`` if it is given (the stream's
        end when the batch began), else until no chunk has come for a moment."""
        taken, self._held = self._held[:cap], self._held[cap:]
        expected = taken[-1][0] + 1 if taken else self._position
        deadline = time.monotonic() + wait
        while len(taken) < cap:
            if end is not None and (expected or 0) >= end:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            idle = left if end is not None or not taken else min(left, _IDLE)
            try:
                chunk = self._chunks.get(timeout=min(idle, 0.2))
            except queue.Empty:
                self._connected()  # a lost connection is an error, not an idle stream
                if end is None and taken and idle <= 0.2:
                    break
                continue
            if chunk.subscription_id != self._read_id:
                continue  # sent for an earlier subscription
            assert self._loop is not None
            credit = self._client.credit(self._read_id, 1)
            asyncio.run_coroutine_threadsafe(credit, self._loop)
            messages = self._messages(chunk, expected)
            if messages:
                expected = messages[-1][0] + 1
            room = cap - len(taken)
            taken.extend(messages[:room])
            self._held.extend(messages[room:])
        return taken

    def _messages(self, chunk: Any, expected: int | None) -> list[tuple[int, bytes, int]]:
        """The (offset, record, timestamp) of a chunk's messages from ``expected`` on. A chunk
        after the first must start where the last one ended: a gap is an error."""
        first = chunk.chunk_first_offset
        fresh, self._subscribed = self._subscribed, False
        if expected is not None and first > expected:
            if fresh:
                # The first chunk of a subscription: RabbitMQ starts at the stream's first
                # offset when the cursor's messages were removed by retention.
                log.warning(
                    "pipeline %s: stream %s: offsets %d to %d are gone (retention); loading "
                    "from %d",
                    self.pipeline, self.topic, expected, first - 1, first,
                )  # fmt: skip
            else:
                raise SourceError(
                    f"RabbitMQ stream {self.topic!r} skipped from offset {expected} to {first}",
                    pipeline=self.pipeline,
                )
        decode = _amqp_body if self.values["message_format"] == "amqp" else bytes
        start = 0 if expected is None else max(expected - first, 0)
        records = _records(chunk)
        return [
            (first + i, decode(records[i]), chunk.timestamp) for i in range(start, len(records))
        ]

    def _probe(self, offset: int | None) -> Any:
        """The first chunk a subscription of its own gets at ``offset`` (None: the stream's
        first, -1: its last); None for an empty stream, which sends none."""
        self._connected()
        _drain(self._probes)
        self._probe_id = _next(_PROBES, self._probe_id)
        self._run(self._subscribe(self._probe_id, offset, 1))
        deadline = time.monotonic() + _PROBE_WAIT
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    chunk = self._probes.get(timeout=left)
                except queue.Empty:
                    break
                if chunk.subscription_id == self._probe_id:
                    return chunk
            return None
        finally:
            self._run(self._client.unsubscribe(self._probe_id))

    def _find_end(self) -> int:
        """The offset after the stream's last message: that of its last chunk."""
        chunk = self._probe(-1)
        end = 0 if chunk is None else int(chunk.chunk_first_offset + chunk.num_records)
        self._end = max(self._end, end)
        return end

    # -- SET OFFSETS ---------------------------------------------------------------------------

    def earliest(self) -> dict[str, int]:
        """The first offset the stream still holds (0 unless retention removed some)."""
        chunk = self._probe(None)
        return {PARTITION: 0 if chunk is None else int(chunk.chunk_first_offset)}

    def latest(self) -> dict[str, int]:
        return {PARTITION: self._find_end()}

    def _drop(self) -> None:
        """Forget the connection (it is made again by the next call)."""
        client, self._client = self._client, None
        if client is not None:
            try:
                self._run(_close(client), 10)
            except Exception as exc:  # already broken: nothing more to release
                log.debug("closing the RabbitMQ connection: %s", exc)
        self._position = None
        self._held.clear()
        _drain(self._chunks)

    def close(self) -> None:
        self._drop()
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self._loop, self._thread = None, None


async def _close(client: Any) -> None:
    """Close ``client``. rstream's ``close`` leaves the socket of a connection the server
    broke (after refusing the credentials, say) open: that one is closed here."""
    conn = client._conn
    await client.close()
    if conn is not None and client._conn is not None:
        conn._writer.close()
        client._conn = None


def _next(ids: tuple[int, ...], current: int) -> int:
    return ids[(ids.index(current) + 1) % len(ids)]


def _ignore(frame: Any) -> None:
    """rstream routes a subscription's chunks to its queue listener only if it has a handler."""


def _drain(q: queue.Queue[Any]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _records(chunk: Any) -> list[bytes]:
    """A chunk's records, one offset each: its entries, a sub-entry batch giving several."""
    from rstream.schema import SubEntryChunk

    data: bytes = chunk.data
    out: list[bytes] = []
    pos = 0
    for _ in range(chunk.num_entries):
        kind = data[pos]
        if kind & 0x80 == 0:
            size = int.from_bytes(data[pos : pos + 4], "big")
            out.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        else:
            records, read = SubEntryChunk.read(data, kind, pos + 1)
            out.extend(records)
            pos += 1 + read
    return out


# AMQP 1.0 encoding: the size of a value after its constructor byte, by constructor (fixed
# widths), and the constructors whose size is given in 1 or 4 bytes after them.
_FIXED = {
    **dict.fromkeys((0x40, 0x41, 0x42, 0x43, 0x44, 0x45), 0),
    **dict.fromkeys((0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56), 1),
    **dict.fromkeys((0x60, 0x61), 2),
    **dict.fromkeys((0x70, 0x71, 0x72, 0x73, 0x74), 4),
    **dict.fromkeys((0x80, 0x81, 0x82, 0x83, 0x84), 8),
    **dict.fromkeys((0x94, 0x98), 16),
}
_SIZED1 = {0xA0, 0xA1, 0xA3, 0xC0, 0xC1, 0xE0}
_SIZED4 = {0xB0, 0xB1, 0xB3, 0xD0, 0xD1, 0xF0}
_DATA, _VALUE = 0x75, 0x77  # the body sections Sluice reads


def _amqp_body(message: bytes) -> bytes:
    """The body of an AMQP 1.0 message: its data sections, or an ``amqp-value`` that is a
    string or binary; any other message as it is (not AMQP-encoded, or a body of another
    type)."""
    if message[:2] != b"\x00\x53":
        return message
    body: list[bytes] = []
    pos, n = 0, len(message)
    try:
        while pos < n:
            if message[pos] != 0x00 or message[pos + 1] != 0x53:
                return message
            section = message[pos + 2]
            if not 0x70 <= section <= 0x78:
                return message
            pos += 3
            code = message[pos]
            if code in _FIXED:
                start, end = pos + 1, pos + 1 + _FIXED[code]
            elif code in _SIZED1:
                start = pos + 2
                end = start + message[pos + 1]
            elif code in _SIZED4:
                start = pos + 5
                end = start + int.from_bytes(message[pos + 1 : pos + 5], "big")
            else:
                return message
            if end > n:
                return message
            if section == _DATA or (section == _VALUE and code in (0xA0, 0xA1, 0xB0, 0xB1)):
                body.append(message[start:end])
            pos = end
    except IndexError:
        return message
    return b"".join(body) if body else message
