"""Network endpoints of a Sluice database: the MySQL wire protocol."""

from __future__ import annotations

import asyncio
import logging
import signal

from sluice.connection import Connection
from sluice.server.mysql import make_server

log = logging.getLogger("sluice.server")


def serve(
    database: Connection, *, host: str = "127.0.0.1", port: int = 3307, user: str = "root",
    password: str = "",
) -> None:  # fmt: skip
    """Serve ``database`` over the MySQL protocol until SIGINT or SIGTERM."""
    asyncio.run(_serve(database, host, port, user, password))


async def _serve(database: Connection, host: str, port: int, user: str, password: str) -> None:
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


__all__ = ["serve"]
