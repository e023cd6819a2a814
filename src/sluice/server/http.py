"""The HTTP API, ``/metrics`` and the live dashboard (Starlette), served by ``sluice serve``
from the same process and database as the MySQL endpoint.

Every route but the dashboard's page and its files needs a user: HTTP Basic credentials, or
the cookie ``/api/login`` sets (the dashboard logs in that way). A server whose administrator
has no password (only on 127.0.0.1) takes a request without credentials as the
administrator's. Statements run as the user, checked by ``sluice.server.access``. Errors are
JSON: ``{"error": "<message>"}`` with a 4xx or 5xx status.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sluice.connection import Connection
from sluice.engine.users import RANK, SELECT
from sluice.errors import AccessDeniedError, CatalogError, ParseError, SluiceError
from sluice.result import Result
from sluice.server import access
from sluice.server.access import Grantee, UserDirectory
from sluice.server.dashboard import Sampler, encode
from sluice.sql import ast, render

log = logging.getLogger("sluice.server")

STATIC = Path(__file__).parent / "static"
COOKIE = "sluice_session"
SESSION_SECONDS = 12 * 3600  # a dashboard login lasts this long
MAX_ROWS = 10_000  # the most rows /api/query returns (it says when it cut a result short)
DEFAULT_ROWS = 1_000

Handler = Callable[[Request, Grantee], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(body: Any, status: int = 200) -> Response:
    text = json.dumps(body, default=encode, allow_nan=False, separators=(",", ":"))
    return Response(text, status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


class Api:
    """The routes, over one database and its users."""

    def __init__(self, database: Connection, users: UserDirectory, *, secure: bool) -> None:
        self.database = database
        self.users = users
        self.secure = secure  # served over TLS: cookies are Secure
        self.sampler = Sampler(database)
        self._sessions: dict[str, tuple[str, float]] = {}  # token → (user, expires)

    # -- who is asking ------------------------------------------------------------------------

    async def who(self, request: Request) -> Grantee:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise ApiError(400, "Authorization: Basic needs base64 of user:password") from exc
            try:
                return await run_in_threadpool(self.users.login, name, password)
            except AccessDeniedError as exc:
                raise ApiError(401, str(exc)) from exc
        token = request.cookies.get(COOKIE)
        if token is not None:
            name, expires = self._sessions.get(token, ("", 0.0))
            who = await run_in_threadpool(self.users.grantee, name) if name else None
            if who is not None and expires > time.time():
                return who
            self._sessions.pop(token, None)
            raise ApiError(401, "the login has expired or its user is gone: log in again")
        if self.users.open:
            return Grantee(self.users.admin, "ALL", admin=True)
        raise ApiError(401, "log in: HTTP Basic credentials, or POST /api/login")

    def route(self, handler: Handler, *, privilege: str = SELECT) -> Callable[..., Any]:
        """``handler`` with its user found and its errors as JSON."""

        async def endpoint(request: Request) -> Response:
            try:
                who = await self.who(request)
                if RANK[who.privilege] < RANK[privilege]:
                    raise ApiError(
                        403,
                        f"user {who.name} has {who.privilege}; this needs {privilege} "
                        f"(GRANT {privilege} ON *.* TO {who.name})",
                    )
                return await handler(request, who)
            except ApiError as exc:
                return _error(exc.status, str(exc))
            except AccessDeniedError as exc:
                return _error(403, str(exc))
            except CatalogError as exc:
                status = 404 if "does not exist" in str(exc) else 409
                return _error(status, str(exc))
            except (ParseError, SluiceError) as exc:
                return _error(400, str(exc))

        return endpoint

    # -- running statements -------------------------------------------------------------------

    def run(self, sql: str, who: Grantee, *, limit: int = MAX_ROWS) -> tuple[Result, list[Any]]:
        """Run ``sql`` as ``who`` in a session of its own; the result and up to ``limit`` + 1
        of its rows."""
        access.check(sql, who, self.database.store)
        session = self.database.cursor()
        try:
            result = session.execute(sql)
            rows = result.fetchmany(limit + 1) if result.columns else []
        finally:
            session.close()
        if access.changes_users(sql):
            self.users.forget()
        return result, rows

    async def statement(self, stmt: ast.Statement, who: Grantee) -> Response:
        result, rows = await run_in_threadpool(self.run, render(stmt), who)
        return _json(_table(result, rows, MAX_ROWS))

    # -- routes -------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        try:
            body = await request.json()
            name, password = str(body["user"]), str(body.get("password", ""))
        except (ValueError, KeyError, TypeError):
            return _error(400, 'POST /api/login takes JSON: {"user": "…", "password": "…"}')
        try:
            who = await run_in_threadpool(self.users.login, name, password)
        except AccessDeniedError as exc:
            return _error(401, str(exc))
        token = secrets.token_urlsafe(32)
        self._sessions[token] = (who.name, time.time() + SESSION_SECONDS)
        response = _json(_me(who))
        response.set_cookie(
            COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
            secure=self.secure,
        )  # fmt: skip
        return response

    async def logout(self, request: Request) -> Response:
        self._sessions.pop(request.cookies.get(COOKIE, ""), None)
        response = _json({})
        response.delete_cookie(COOKIE)
        return response

    async def me(self, request: Request, who: Grantee) -> Response:
        return _json(_me(who))

    async def pipelines(self, request: Request, who: Grantee) -> Response:
        return _json(await run_in_threadpool(self.sampler.pipelines))

    async def pipeline(self, request: Request, who: Grantee) -> Response:
        name = request.path_params["name"]
        found = await run_in_threadpool(self.sampler.pipeline, name)
        if found is None:
            raise ApiError(404, f"pipeline {name} does not exist")
        return _json(found)

    async def offsets(self, request: Request, who: Grantee) -> Response:
        return _json(await self._view(request, "PIPELINES_OFFSETS", "SOURCE_PARTITION_ID"))

    async def batches(self, request: Request, who: Grantee) -> Response:
        return _json(await self._view(request, "PIPELINES_BATCHES_SUMMARY", "BATCH_ID DESC"))

    async def errors(self, request: Request, who: Grantee) -> Response:
        return _json(await self._view(request, "PIPELINES_ERRORS", "ERROR_ID DESC"))

    async def _view(self, request: Request, view: str, order: str) -> dict[str, Any]:
        name = request.path_params["name"]
        limit = _limit(request, 100)
        return await run_in_threadpool(self.sampler.view, view, name, order, limit)

    async def start(self, request: Request, who: Grantee) -> Response:
        return await self.statement(ast.StartPipeline(request.path_params["name"]), who)

    async def stop(self, request: Request, who: Grantee) -> Response:
        return await self.statement(ast.StopPipeline(request.path_params["name"]), who)

    async def replay(self, request: Request, who: Grantee) -> Response:
        return await self.statement(ast.ReplayErrors(request.path_params["name"]), who)

    async def clear(self, request: Request, who: Grantee) -> Response:
        return await self.statement(ast.ClearErrors(request.path_params["name"]), who)

    async def query(self, request: Request, who: Grantee) -> Response:
        try:
            body = await request.json()
            sql = str(body["sql"])
            limit = min(int(body.get("limit", DEFAULT_ROWS)), MAX_ROWS)
            read_only = bool(body.get("read_only", False))
        except (ValueError, KeyError, TypeError):
            return _error(400, 'POST /api/query takes JSON: {"sql": "…", "limit": 1000}')
        if read_only and RANK[who.privilege] > RANK[SELECT]:
            who = Grantee(who.name, SELECT)  # the dashboard's SQL box: queries only
        t0 = time.perf_counter()
        result, rows = await run_in_threadpool(self.run, sql, who, limit=limit)
        body = _table(result, rows, limit)
        body["seconds"] = round(time.perf_counter() - t0, 6)
        return _json(body)

    async def dashboard_data(self, request: Request, who: Grantee) -> Response:
        return Response(self.sampler.snapshot(), media_type="application/json")

    async def metrics(self, request: Request, who: Grantee) -> Response:
        text = await run_in_threadpool(self.database.engine.metrics.exposition)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        return _json(OPENAPI)

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html")


def _me(who: Grantee) -> dict[str, Any]:
    return {"user": who.name, "privilege": who.privilege, "admin": who.admin}


def _limit(request: Request, default: int) -> int:
    try:
        return max(1, min(int(request.query_params.get("limit", default)), MAX_ROWS))
    except ValueError as exc:
        raise ApiError(400, "limit must be a whole number") from exc


def _table(result: Result, rows: list[Any], limit: int) -> dict[str, Any]:
    return {
        "columns": result.columns,
        "rows": [list(r) for r in rows[:limit]],
        "truncated": len(rows) > limit,
        "rowcount": result.rowcount,
        "warnings": result.warnings,
    }


def make_app(database: Connection, users: UserDirectory, *, secure: bool = False) -> Starlette:
    api = Api(database, users, secure=secure)
    full = "ALL"
    routes = [
        Route("/", api.index),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/openapi.json", api.openapi),
        Route("/metrics", api.route(api.metrics)),
        Route("/api/login", api.login, methods=["POST"]),
        Route("/api/logout", api.logout, methods=["POST"]),
        Route("/api/me", api.route(api.me, privilege="USAGE")),
        Route("/api/dashboard", api.route(api.dashboard_data)),
        Route("/api/pipelines", api.route(api.pipelines)),
        Route("/api/pipelines/{name}", api.route(api.pipeline)),
        Route("/api/pipelines/{name}/offsets", api.route(api.offsets)),
        Route("/api/pipelines/{name}/batches", api.route(api.batches)),
        Route("/api/pipelines/{name}/errors", api.route(api.errors)),
        Route(
            "/api/pipelines/{name}/start", api.route(api.start, privilege=full), methods=["POST"]
        ),
        Route("/api/pipelines/{name}/stop", api.route(api.stop, privilege=full), methods=["POST"]),
        Route(
            "/api/pipelines/{name}/replay", api.route(api.replay, privilege=full), methods=["POST"]
        ),
        Route(
            "/api/pipelines/{name}/errors/clear",
            api.route(api.clear, privilege=full),
            methods=["POST"],
        ),
        Route("/api/query", api.route(api.query, privilege="USAGE"), methods=["POST"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        task = asyncio.create_task(api.sampler.run())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await run_in_threadpool(api.sampler.close)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(
            404, f"no such route: {request.method} {request.url.path} (see /openapi.json)"
        )

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("HTTP %s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error (a bug in Sluice; please report it): {exc!r}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed, 500: failed},
    )


def _op(summary: str, *, body: str | None = None, name: bool = False, limit: bool = False) -> Any:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK (JSON)"},
            "401": {"description": 'not logged in: {"error": "…"}'},
            "403": {"description": "the user's privileges do not allow it"},
        },
    }
    params = []
    if name:
        params.append(
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if limit:
        params.append({"name": "limit", "in": "query", "schema": {"type": "integer"}})
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": json.loads(body)}},
        }
    return operation


_QUERY_BODY = (
    '{"type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"}, '
    '"limit": {"type": "integer", "default": 1000, "maximum": 10000}, '
    '"read_only": {"type": "boolean", "default": false}}}'
)
_LOGIN_BODY = (
    '{"type": "object", "required": ["user"], "properties": {"user": {"type": "string"}, '
    '"password": {"type": "string"}}}'
)
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Sluice",
        "version": "0.1.0",
        "description": "Pipelines, their lag, batches and errors; actions; SQL. Log in with "
        'HTTP Basic or POST /api/login. Errors are {"error": "<message>"}.',
    },
    "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    "security": [{"basic": []}],
    "paths": {
        "/api/login": {"post": _op("Log in (sets a session cookie)", body=_LOGIN_BODY)},
        "/api/logout": {"post": _op("Log out")},
        "/api/me": {"get": _op("The logged-in user and its privilege")},
        "/api/pipelines": {
            "get": _op("Every pipeline: state, definition (no secrets), process, lag, rows/s")
        },
        "/api/pipelines/{name}": {"get": _op("One pipeline", name=True)},
        "/api/pipelines/{name}/offsets": {
            "get": _op("Offsets and lag per partition (PIPELINES_OFFSETS)", name=True, limit=True)
        },
        "/api/pipelines/{name}/batches": {
            "get": _op(
                "Recent batches with stage times (PIPELINES_BATCHES_SUMMARY)", name=True, limit=True
            )
        },
        "/api/pipelines/{name}/errors": {
            "get": _op("Errors with their raw records (PIPELINES_ERRORS)", name=True, limit=True)
        },
        "/api/pipelines/{name}/start": {"post": _op("START PIPELINE (needs ALL)", name=True)},
        "/api/pipelines/{name}/stop": {"post": _op("STOP PIPELINE (needs ALL)", name=True)},
        "/api/pipelines/{name}/replay": {
            "post": _op("REPLAY ERRORS FOR PIPELINE (needs ALL)", name=True)
        },
        "/api/pipelines/{name}/errors/clear": {
            "post": _op("CLEAR PIPELINE ERRORS (needs ALL)", name=True)
        },
        "/api/query": {"post": _op("Run SQL as the user; rows as JSON", body=_QUERY_BODY)},
        "/api/dashboard": {"get": _op("What the dashboard shows, refreshed every second")},
        "/metrics": {"get": _op("Prometheus metrics (text format)")},
    },
}
