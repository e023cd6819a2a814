"""Network endpoints of a Sluice database: the MySQL wire protocol."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from sluice.connection import Connection
from sluice.server.mysql import make_server

log = logging.getLogger("sluice.server")


def serve(
    database: Connection, *, host: str = "127.0.0.1", port: int = 3307, user: str = "root",
    password: str = "",
) -> None:  # fmt: skip
    """Serve ``database`` over the MySQL protocol until SIGINT or SIGTERM."""
    asyncio.run(_serve(database, host, port, user, password))


# Statements run on worker threads; each running statement holds one, so there are enough
# for many clients with long queries (asyncio's default is the number of CPUs + 4).
WORKERS = 64


async def _serve(database: Connection, host: str, port: int, user: str, password: str) -> None:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(WORKERS, thread_name_prefix="sql")
    )
    server = make_server(database, user=user, password=password)
    await server.start_server(host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"MySQL protocol on {host}:{port} (user {user}); Ctrl-C to stop", flush=True)
    await stop.wait()
    log.info("stopping: pipelines finish their current batch")
    server.close()
    await server.wait_closed()


class BackgroundServer:
    """The MySQL endpoint on a thread of its own (for embedding, e.g. the demo)."""

    def __init__(self, database: Connection, *, host: str = "127.0.0.1", port: int = 3307) -> None:
        self.host, self.port = host, port
        self._server = make_server(database)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mysql-server", daemon=True)

    def start(self) -> BackgroundServer:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.set_default_executor(ThreadPoolExecutor(WORKERS, thread_name_prefix="sql"))
        try:
            self._loop.run_until_complete(self._server.start_server(host=self.host, port=self.port))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()
            self._loop.stop()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop)
            self._thread.join(30)
        self._loop.close()


__all__ = ["BackgroundServer", "serve"]
