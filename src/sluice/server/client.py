"""A remote session on a running `sluice serve`, with the interface of ``sluice.Connection``
(what ``sluice sql --host H --port P`` uses)."""

from __future__ import annotations

import pymysql

from sluice.errors import SluiceError
from sluice.result import Result


class RemoteConnection:
    def __init__(self, host: str, port: int, user: str, password: str) -> None:
        try:
            self._conn = pymysql.connect(
                host=host, port=port, user=user, password=password, autocommit=True
            )
        except pymysql.err.MySQLError as exc:
            raise SluiceError(f"cannot connect to {host}:{port}: {exc.args[-1]}") from exc
        self.database = f"{host}:{port}"

    def execute(self, sql: str) -> Result:
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql)
                if cur.description is None:
                    return Result(rowcount=cur.rowcount)
                return Result([d[0] for d in cur.description], list(cur.fetchall()))
        except pymysql.err.MySQLError as exc:
            raise SluiceError(str(exc.args[-1])) from exc

    def close(self) -> None:
        self._conn.close()
