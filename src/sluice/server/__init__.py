"""Network endpoints of a Sluice database: the MySQL wire protocol, and the HTTP API with
``/metrics`` and the dashboard, both on one event loop of one process, over one database and
one directory of users."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import uvicorn

from sluice.connection import Connection
from sluice.errors import SluiceError
from sluice.server.access import UserDirectory
from sluice.server.http import make_app
from sluice.server.mysql import make_server

log = logging.getLogger("sluice.server")

# Statements run on worker threads; each running statement holds one, so there are enough
# for many clients with long queries (asyncio's default is the number of CPUs + 4).
WORKERS = 64


@dataclass(frozen=True)
class Endpoints:
    """Where and how ``sluice serve`` listens. ``http_port`` None: no HTTP endpoint."""

    host: str = "127.0.0.1"
    mysql_port: int = 3307
    http_port: int | None = 8080
    user: str = "root"
    password: str = ""
    tls_cert: str | None = None
    tls_key: str | None = None

    def check(self) -> None:
        """Refuse what would expose the database: no password beyond this machine; half a
        TLS setting."""
        if not self.password and not _loopback(self.host):
            raise SluiceError(
                f"refusing to listen on {self.host} without a password: anyone who can reach "
                "it could read and change everything. Give --password (or SLUICE_PASSWORD), "
                "or listen on 127.0.0.1"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SluiceError("TLS needs both --tls-cert and --tls-key")

    def tls(self) -> ssl.SSLContext | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise SluiceError(
                f"cannot use the TLS certificate {self.tls_cert} with key {self.tls_key}: {exc}"
            ) from exc
        return context


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(database: Connection, endpoints: Endpoints) -> None:
    """Serve ``database`` until SIGINT or SIGTERM."""
    endpoints.check()
    asyncio.run(_serve(database, endpoints))


async def _serve(database: Connection, endpoints: Endpoints) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(WORKERS, thread_name_prefix="sql"))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with _Running(database, endpoints) as running:
        for line in running.banner():
            print(line, flush=True)
        await stop.wait()
        log.info("stopping: pipelines finish their current batch")


class _HttpServer(uvicorn.Server):
    """uvicorn's server, leaving signals to ``serve``, which stops both endpoints."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Running:
    """Both endpoints listening, until the ``async with`` ends."""

    def __init__(self, database: Connection, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.users = UserDirectory(database, endpoints.user, endpoints.password)
        tls = endpoints.tls()
        self.scheme = "https" if tls is not None else "http"
        self.mysql = make_server(database, self.users, tls=tls)
        self.http: uvicorn.Server | None = None
        if endpoints.http_port is not None:
            config = uvicorn.Config(
                make_app(database, self.users, secure=tls is not None),
                host=endpoints.host,
                port=endpoints.http_port,
                log_level="warning",
                ssl_certfile=endpoints.tls_cert,
                ssl_keyfile=endpoints.tls_key,
                lifespan="on",
            )
            self.http = _HttpServer(config)
        self._http_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Running:
        try:
            await self.mysql.start_server(host=self.endpoints.host, port=self.endpoints.mysql_port)
        except OSError as exc:
            self.users.close()
            raise SluiceError(
                f"cannot listen on {self.endpoints.host}:{self.endpoints.mysql_port} (MySQL): {exc}"
            ) from exc
        if self.http is not None:
            self._http_task = asyncio.create_task(self.http.serve())
            while not self.http.started:
                if self._http_task.done():
                    await self._close_mysql()
                    self.users.close()
                    raise SluiceError(
                        f"cannot listen on {self.endpoints.host}:{self.endpoints.http_port} "
                        "(HTTP): the port is in use or not allowed"
                    )
                await asyncio.sleep(0.01)
        return self

    def banner(self) -> list[str]:
        e = self.endpoints
        tls = " (TLS)" if self.scheme == "https" else ""
        lines = [f"MySQL protocol on {e.host}:{e.mysql_port}{tls} (administrator {e.user})"]
        if self.http is not None:
            lines.append(f"Dashboard and HTTP API on {self.scheme}://{e.host}:{e.http_port}/")
        lines.append("Ctrl-C to stop")
        return lines

    async def _close_mysql(self) -> None:
        self.mysql.close()
        await self.mysql.wait_closed()

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None and self._http_task is not None:
            self.http.should_exit = True
            await self._http_task
        await self._close_mysql()
        self.users.close()


class BackgroundServer:
    """Both endpoints on a thread of their own (for embedding: the demo, the benchmarks)."""

    def __init__(self, database: Connection, endpoints: Endpoints) -> None:
        endpoints.check()
        self.endpoints = endpoints
        self._database = database
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sluice-server", daemon=True)

    @property
    def url(self) -> str | None:
        e = self.endpoints
        if e.http_port is None:
            return None
        scheme = "https" if e.tls_cert else "http"
        return f"{scheme}://{e.host}:{e.http_port}/"

    def start(self) -> BackgroundServer:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            self._thread.join()
            self._loop.close()
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.set_default_executor(ThreadPoolExecutor(WORKERS, thread_name_prefix="sql"))
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        try:
            async with _Running(self._database, self.endpoints):
                self._ready.set()
                await self._stopping.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        await self._loop.shutdown_default_executor()

    def stop(self) -> None:
        if self._thread.is_alive() and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(60)
        if not self._loop.is_closed():
            self._loop.close()


__all__ = ["BackgroundServer", "Endpoints", "serve"]
