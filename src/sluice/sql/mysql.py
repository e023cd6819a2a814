"""MySQL's dialect, as clients of the MySQL endpoint and pipelines' SET clauses write it, in
the store's own: sqlglot reads MySQL and writes DuckDB's or PostgreSQL's SQL.

``LIMIT 5, 10`` → ``LIMIT 10 OFFSET 5``, back-quoted names → double-quoted, ``'it\\'s'`` →
``'it''s'``, ``DATE_FORMAT`` → ``STRFTIME``/``TO_CHAR``, ``IFNULL``/``IF`` → ``COALESCE``/``CASE``,
``CAST(… AS SIGNED)`` → ``BIGINT``, ``GROUP_CONCAT`` → ``LISTAGG``/``STRING_AGG``, and so on. A
statement is translated once for each distinct text (``translate`` keeps the last few thousand).
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.parsers.mysql import MySQLParser

from sluice.errors import ParseError
from sluice.sql.expr import MYSQL_ONLY

__all__ = ["MYSQL_ONLY", "expression", "to_store", "translate"]

STORE_DIALECTS = {"duckdb": "duckdb", "postgresql": "postgres"}  # sqlglot's names


class ClientMySQL(MySQL):
    """MySQL as a client writes it for Sluice: ``TIMESTAMP`` is the store's TIMESTAMP (sqlglot
    reads MySQL's as one with a time zone, which would change what CREATE TABLE makes)."""

    class Tokenizer(MySQL.Tokenizer):
        KEYWORDS = {**MySQL.Tokenizer.KEYWORDS, "TIMESTAMP": TokenType.TIMESTAMP}


def _for_store(node: exp.Expression, store: str) -> exp.Expression:
    """The functions and types sqlglot carries over from MySQL unchanged, though the store
    has them under another name or not at all."""
    if isinstance(node, exp.Anonymous) and node.name.upper() == "UNIX_TIMESTAMP":
        if not node.expressions:  # now, in whole seconds
            return exp.cast(exp.TimeToUnix(this=exp.CurrentTimestamp()), exp.DataType.Type.BIGINT)
        when = node.expressions[0]
        if isinstance(when, exp.Literal) and when.is_string:  # '2024-01-01 00:00:00'
            when = exp.cast(when, exp.DataType.Type.TIMESTAMP)
        return exp.TimeToUnix(this=when)
    if isinstance(node, exp.DataType) and isinstance(node.parent, exp.Cast):
        if node.this == exp.DataType.Type.CHAR and not node.expressions:
            return exp.DataType.build("TEXT")  # CAST(x AS CHAR): a string of any length
        if node.this == exp.DataType.Type.UBIGINT and store == "postgresql":
            return exp.DataType.build("NUMERIC")  # PostgreSQL has no unsigned types
    return node


@lru_cache(maxsize=4096)
def translate(sql: str, store: str) -> str:
    """``sql``, written in MySQL's dialect, in the store's (``duckdb`` or ``postgresql``).
    Raises ParseError naming the construct that cannot be read or has no translation."""
    try:
        trees = [t for t in sqlglot.parse(sql, dialect=ClientMySQL) if t is not None]
        return ";\n".join(to_store(t, store) for t in trees)
    except SqlglotError as exc:
        raise ParseError(f"cannot translate from MySQL's SQL: {_first_line(exc)}") from exc


def to_store(tree: exp.Expr, store: str) -> str:
    """A statement read as MySQL's, written in the store's dialect."""
    tree = tree.transform(_for_store, store, copy=True)
    return tree.sql(dialect=STORE_DIALECTS[store], unsupported_level=ErrorLevel.RAISE)


def _first_line(exc: SqlglotError) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class RewrittenMySQL(ClientMySQL):
    """A pipeline's SET/WHERE expression as ``sluice.sql.expr.rewrite`` leaves it: MySQL's
    functions, but double quotes name columns (``"@var"``), strings are standard SQL, and
    ``||`` concatenates (as both stores read it)."""

    DPIPE_IS_STRING_CONCAT = True

    class Tokenizer(ClientMySQL.Tokenizer):
        QUOTES = ["'"]
        IDENTIFIERS = ["`", '"']
        STRING_ESCAPES = ["'"]

    class Parser(MySQLParser):
        DISJUNCTION = {k: v for k, v in MySQLParser.DISJUNCTION.items() if k != TokenType.DPIPE}


@lru_cache(maxsize=1024)
def expression(sql: str, store: str) -> str:
    """A pipeline's SET or WHERE expression (rewritten), MySQL's functions in it translated for
    the store: ``IF(@t > 30, 'hot', 'ok')`` → ``CASE WHEN …``. As written when sqlglot cannot
    read it: the store then says what is wrong."""
    try:
        return to_store(sqlglot.parse_one(sql, dialect=RewrittenMySQL), store)
    except SqlglotError:
        return sql
