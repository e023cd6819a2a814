"""Who may do what over the network: the users of the database and the check of a statement
against a user's privileges, shared by the MySQL endpoint and the HTTP API.

The administrator is the user ``sluice serve`` was started with: it may do anything,
including what reads or writes the server's files and programs. Any other user is a row of
the catalog (``CREATE USER``), with one of the database-wide privileges of
``sluice.engine.users``: USAGE (log in), SELECT (read and watch), ALL (also write, and create,
start and stop pipelines). For them every statement is checked before it runs:

- SQL for the store is parsed (sqlglot, in the store's dialect) and allowed only if it is a
  query, a description or a transaction statement (SELECT), or a change of tables and views
  (ALL), and if nothing in it reads or writes outside the database: no ``COPY``, ``ATTACH``,
  ``INSTALL``/``LOAD``, ``PRAGMA``, ``SET``; no table functions but a few that make rows
  (``range``, ``unnest``, …); no table named like a file (DuckDB reads ``FROM 'x.csv'``); no
  function that touches files (``read_text``, ``pg_read_file``, ``lo_import``, …). SQL that
  cannot be parsed cannot be checked, and is refused.
- Pipeline statements: reading ones (SHOW …) need SELECT; changing ones need ALL; and what
  reads the server's files or runs its programs — ``LOAD DATA FS``, ``WITH TRANSFORM``,
  ``EXTRACT … INTO OUTFILE`` — is the administrator's, as are users and grants.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from sluice.connection import Connection
from sluice.engine.users import ALL, RANK, SELECT, USAGE, auth_string, find, password_matches
from sluice.errors import AccessDeniedError, ParseError
from sluice.sql import ast, parse, split_statements
from sluice.stores.base import UserRecord

USERS_TTL_SECONDS = 1.0  # how long a looked-up user is trusted (GRANTs from other processes)

_DIALECTS = {"duckdb": "duckdb", "postgresql": "postgres"}


@dataclass(frozen=True)
class Grantee:
    """A logged-in user: its name, its privilege, and whether it is the administrator."""

    name: str
    privilege: str
    admin: bool = False


# -- the check ---------------------------------------------------------------------------------

# Table functions that only make rows out of their arguments.
_ROW_MAKERS = {
    "range", "generate_series", "unnest", "generate_subscripts", "json_each", "json_tree",
    "jsonb_each", "json_array_elements", "jsonb_array_elements", "regexp_split_to_table",
}  # fmt: skip
# Functions that read or write outside the database (by name; prefixes end in _).
_OUTSIDE = (
    "read_", "glob", "sniff_csv", "parquet_", "getenv", "query", "query_table", "pg_read_",
    "pg_ls_", "pg_stat_file", "pg_file_", "lo_", "dblink", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "set_config", "current_setting",
    "duckdb_secrets", "duckdb_settings", "which_secret", "load_extension", "install_extension",
)  # fmt: skip
_READS = (exp.Query, exp.Describe, exp.Show, exp.Summarize, exp.Transaction, exp.Commit,
          exp.Rollback, exp.Use)  # fmt: skip
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
           exp.TruncateTable)  # fmt: skip
_CREATED = {"TABLE", "VIEW", "INDEX", "SCHEMA", "SEQUENCE", "TYPE", "MACRO"}
_FILE_LIKE = set("./\\:~")

_READ_PIPELINE = (ast.ShowPipelines, ast.ShowCreatePipeline, ast.ShowLinks, ast.ShowCreateProcedure)
_ADMIN_PIPELINE = (ast.CreateUser, ast.DropUser, ast.Grant, ast.ShowUsers, ast.ExtractPipeline)


def check(sql: str, who: Grantee, store: str) -> None:
    """Raise ``AccessDeniedError`` if ``who`` may not run ``sql`` (one or more statements) on
    a store of kind ``store`` (``duckdb`` or ``postgresql``)."""
    if who.admin:
        return
    for statement in split_statements(sql):
        needed = _needs(statement, _DIALECTS[store], who.name)
        if needed == "ADMIN":
            raise AccessDeniedError(
                f"user {who.name} may not run {_what(statement)}: it reads or changes the "
                "server (its files, programs, settings or users), or cannot be checked; that "
                "is for the administrator (the user sluice serve was started with) alone"
            )
        if RANK[who.privilege] < RANK[needed]:
            doing = "read tables" if needed == SELECT else "change the database or its pipelines"
            grant = "SELECT" if needed == SELECT else "ALL"
            raise AccessDeniedError(
                f"user {who.name} may not {doing}: it has {who.privilege}; the administrator "
                f"can GRANT {grant} ON *.* TO {who.name}"
            )


@lru_cache(maxsize=4096)
def _needs(statement: str, dialect: str, user: str) -> str:
    """The privilege a statement needs: USAGE, SELECT, ALL, or ADMIN."""
    try:
        stmt = parse(statement)
    except ParseError:
        return "ADMIN"  # not even a statement: the store's error is the administrator's to see
    if not isinstance(stmt, ast.Passthrough):
        return _pipeline_needs(stmt, dialect, user)
    return _sql_needs(stmt.sql, dialect)


def _pipeline_needs(stmt: ast.Statement, dialect: str, user: str) -> str:
    if isinstance(stmt, ast.ShowUsers) and stmt.grants and stmt.user == user:
        return USAGE  # one's own grants
    if isinstance(stmt, _ADMIN_PIPELINE):
        return "ADMIN"
    if isinstance(stmt, _READ_PIPELINE):
        return SELECT
    if isinstance(stmt, ast.CreatePipeline):
        if stmt.source.kind == "FS" or stmt.transform is not None:
            return "ADMIN"
        expressions = [a.expr for a in stmt.set] + ([stmt.where] if stmt.where else [])
        for e in expressions:
            if _sql_needs(f"SELECT {e}", dialect) == "ADMIN":
                return "ADMIN"
    if isinstance(stmt, ast.AlterPipeline) and stmt.transform is not None:
        return "ADMIN"
    if isinstance(stmt, ast.CreateProcedure):
        for body in stmt.body:
            if _sql_needs(body, dialect) == "ADMIN":
                return "ADMIN"
    return ALL


def _sql_needs(sql: str, dialect: str) -> str:
    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
    except SqlglotError:
        return "ADMIN"  # what cannot be parsed cannot be checked
    needed = USAGE
    for tree in trees:
        if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() not in _CREATED:
            return "ADMIN"  # functions, extensions, secrets
        if isinstance(tree, _WRITES):
            needed = ALL
        elif not isinstance(tree, _READS):
            return "ADMIN"  # COPY, ATTACH, PRAGMA, SET, INSTALL, LOAD, CALL, EXPORT, …
        for node in tree.walk():
            if isinstance(node, _WRITES):
                needed = ALL
            elif isinstance(node, exp.Table):
                if _outside_table(node):
                    return "ADMIN"
                if needed == USAGE:
                    needed = SELECT
            elif isinstance(node, exp.Func) and _outside(_function_name(node)):
                return "ADMIN"
    return needed


def _outside_table(table: exp.Table) -> bool:
    """A table function other than a row maker, or a name DuckDB may read as a file."""
    this = table.this
    if isinstance(this, exp.Identifier):
        return bool(_FILE_LIKE & set(this.name))
    if isinstance(this, exp.Func):
        return _function_name(this) not in _ROW_MAKERS
    return True


def _function_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return str(func.this).lower()
    return func.sql_name().lower()


def _outside(name: str) -> bool:
    return any(name.startswith(p) if p.endswith("_") else name == p for p in _OUTSIDE)


_CHANGES_USERS = re.compile(r"\s*(?:(?:CREATE|ALTER|DROP)\s+USER|GRANT|REVOKE)\b", re.I)


def changes_users(sql: str) -> bool:
    """Whether ``sql`` creates, changes or drops a user (cached users are then forgotten)."""
    return any(_CHANGES_USERS.match(s) for s in split_statements(sql))


def _what(statement: str) -> str:
    words = statement.split()
    return "'" + " ".join(words[:4]) + (" …'" if len(words) > 4 else "'")


# -- the users ---------------------------------------------------------------------------------


class UserDirectory:
    """The administrator, and the users of the database's catalog (looked up through a
    session of its own, each trusted for ``USERS_TTL_SECONDS`` so that a GRANT or REVOKE
    takes effect at once in this process and within a second elsewhere)."""

    def __init__(self, database: Connection, admin: str, admin_password: str) -> None:
        self.admin = admin
        self._admin_auth = auth_string(admin_password) if admin_password else None
        self._store = database.engine.store.fork()
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, UserRecord | None]] = {}

    @property
    def open(self) -> bool:
        """Whether the administrator logs in without a password."""
        return self._admin_auth is None

    def lookup(self, name: str) -> UserRecord | None:
        """The user ``name`` (its password as kept), or None if there is none."""
        if name == self.admin:
            return UserRecord(name, self._admin_auth or "", ALL)
        now = time.monotonic()
        with self._lock:
            known = self._cache.get(name)
            if known is not None and now - known[0] < USERS_TTL_SECONDS:
                return known[1]
            user = find(self._store, name)
            self._cache[name] = (now, user)
            return user

    def grantee(self, name: str) -> Grantee | None:
        """The user ``name`` as logged in now (its privilege may have changed), or None if it
        was dropped."""
        user = self.lookup(name)
        if user is None:
            return None
        return Grantee(name, user.privilege, admin=name == self.admin)

    def login(self, name: str, password: str) -> Grantee:
        """Check a password (the HTTP API's logins); ``AccessDeniedError`` if wrong."""
        user = self.lookup(name)
        if name == self.admin and self.open:
            return Grantee(name, ALL, admin=True)
        if user is None or not user.auth_string or not password_matches(user, password):
            raise AccessDeniedError(f"access denied for user {name}: wrong user or password")
        return Grantee(name, user.privilege, admin=name == self.admin)

    def forget(self) -> None:
        """Drop what is cached (after a statement that changed users here)."""
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        self._store.close()
