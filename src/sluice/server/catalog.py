"""MySQL's information_schema, for the store's tables, as drivers and BI tools browse it.

JDBC's ``DatabaseMetaData``, SQLAlchemy's ``inspect()`` and BI tools read MySQL's catalog with
queries of their own (CASE over ``DATA_TYPE``, ``IF``, joins of COLUMNS with STATISTICS). The
store's catalog is read into MySQL's tables (TABLES, COLUMNS, STATISTICS, KEY_COLUMN_USAGE,
SCHEMATA, ...) — its types named as MySQL names them — in an in-memory DuckDB, where those
queries run, translated from MySQL's dialect like any other statement. ``SHOW COLUMNS``,
``SHOW INDEX``, ``SHOW FULL TABLES``, ``SHOW COLLATION`` and the like read the same tables,
and ``SHOW CREATE TABLE`` writes MySQL's DDL from them.

Foreign keys are not described (the stores' pipelines never need them): REFERENTIAL_CONSTRAINTS
is empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlglot import exp

from sluice.result import Result
from sluice.sql import mysql
from sluice.stores.base import VIEW_NAMES

SCHEMA = "information_schema"
HIDDEN = ("sluice", "pg_catalog", "information_schema", "pg_toast")
CHARSET, COLLATION = "utf8mb4", "utf8mb4_general_ci"

# The store's catalog, read with the standard information_schema both stores have.
READ_TABLES = (
    "SELECT table_schema, table_name, table_type FROM information_schema.tables "
    "WHERE table_catalog = current_database() AND table_schema NOT IN {hidden} ORDER BY 1, 2"
)
READ_COLUMNS = (
    "SELECT table_schema, table_name, column_name, ordinal_position, column_default, "
    "is_nullable, data_type, character_maximum_length, numeric_precision, numeric_scale "
    "FROM information_schema.columns "
    "WHERE table_catalog = current_database() AND table_schema NOT IN {hidden} "
    "ORDER BY 1, 2, 4"
)
READ_KEYS = (
    "SELECT k.table_schema, k.table_name, k.constraint_name, c.constraint_type, "
    "k.column_name, k.ordinal_position "
    "FROM information_schema.key_column_usage k JOIN information_schema.table_constraints c "
    "ON c.constraint_schema = k.constraint_schema AND c.constraint_name = k.constraint_name "
    "AND c.table_name = k.table_name "
    "WHERE c.constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND k.table_schema NOT IN {hidden} "
    "ORDER BY 1, 2, 3, 6"
)
READ_VIEWS = (
    "SELECT table_schema, table_name, view_definition FROM information_schema.views "
    "WHERE table_catalog = current_database() AND table_schema NOT IN {hidden}"
)


@dataclass(frozen=True)
class MySQLType:
    """A column's type as MySQL's catalog describes it."""

    data_type: str  # int, varchar, decimal, datetime, ...
    column_type: str  # int, varchar(20), decimal(10,2), tinyint(1), ...
    char_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    datetime_precision: int | None = None

    @property
    def is_text(self) -> bool:
        return self.data_type in ("varchar", "char", "longtext", "json", "enum")


LONGTEXT = MySQLType("longtext", "longtext", 4294967295)
_SIMPLE = {
    "boolean": MySQLType("tinyint", "tinyint(1)", precision=3, scale=0),
    "tinyint": MySQLType("tinyint", "tinyint", precision=3, scale=0),
    "smallint": MySQLType("smallint", "smallint", precision=5, scale=0),
    "integer": MySQLType("int", "int", precision=10, scale=0),
    "bigint": MySQLType("bigint", "bigint", precision=19, scale=0),
    "hugeint": MySQLType("decimal", "decimal(38,0)", precision=38, scale=0),
    "utinyint": MySQLType("tinyint", "tinyint unsigned", precision=3, scale=0),
    "usmallint": MySQLType("smallint", "smallint unsigned", precision=5, scale=0),
    "uinteger": MySQLType("int", "int unsigned", precision=10, scale=0),
    "ubigint": MySQLType("bigint", "bigint unsigned", precision=20, scale=0),
    "real": MySQLType("float", "float", precision=12),
    "float": MySQLType("float", "float", precision=12),
    "double": MySQLType("double", "double", precision=22),
    "double precision": MySQLType("double", "double", precision=22),
    "date": MySQLType("date", "date"),
    "time": MySQLType("time", "time(6)", datetime_precision=6),
    "time without time zone": MySQLType("time", "time(6)", datetime_precision=6),
    "timestamp": MySQLType("datetime", "datetime(6)", datetime_precision=6),
    "timestamp without time zone": MySQLType("datetime", "datetime(6)", datetime_precision=6),
    "timestamp with time zone": MySQLType("timestamp", "timestamp(6)", datetime_precision=6),
    "blob": MySQLType("longblob", "longblob", 4294967295),
    "bytea": MySQLType("longblob", "longblob", 4294967295),
    "json": MySQLType("json", "json"),
    "jsonb": MySQLType("json", "json"),
    "uuid": MySQLType("char", "char(36)", 36),
}
_SIMPLE.update(
    {
        "int": _SIMPLE["integer"],
        "int4": _SIMPLE["integer"],
        "int8": _SIMPLE["bigint"],
        "int2": _SIMPLE["smallint"],
        "float4": _SIMPLE["real"],
        "float8": _SIMPLE["double"],
        "bool": _SIMPLE["boolean"],
        "timestamptz": _SIMPLE["timestamp with time zone"],
    }
)


def mysql_type(
    store_type: str,
    length: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
) -> MySQLType:
    """The MySQL type of a store column, from its catalog's DATA_TYPE (DuckDB's ``DECIMAL(10,2)``
    or PostgreSQL's ``numeric`` with its precision and scale)."""
    name = store_type.strip().lower()
    if name.endswith("]") or name.startswith(("struct", "map", "union", "array", "list")):
        return _SIMPLE["json"]  # nested values travel as JSON text
    decimal = re.fullmatch(r"(?:decimal|numeric)\s*(?:\((\d+)\s*,\s*(\d+)\))?", name)
    if decimal:
        p = int(decimal.group(1) or precision or 38)
        s = int(decimal.group(2) or scale or 0)
        return MySQLType("decimal", f"decimal({p},{s})", precision=p, scale=s)
    if name in ("character varying", "varchar", "text", "character", "char", "bpchar"):
        if length is None:
            return LONGTEXT
        kind = "char" if name in ("character", "char", "bpchar") else "varchar"
        return MySQLType(kind, f"{kind}({length})", length)
    return _SIMPLE.get(name, LONGTEXT)


@dataclass
class StoreCatalog:
    """What the store holds, as read from its catalog."""

    tables: list[tuple[Any, ...]] = field(default_factory=list)  # schema, name, type
    columns: list[tuple[Any, ...]] = field(default_factory=list)  # see READ_COLUMNS
    keys: list[tuple[Any, ...]] = field(default_factory=list)  # see READ_KEYS
    views: list[tuple[Any, ...]] = field(default_factory=list)  # schema, name, definition

    @classmethod
    def read(cls, execute: Callable[[str], Result]) -> StoreCatalog:
        hidden = "(" + ", ".join(f"'{s}'" for s in HIDDEN) + ")"
        return cls(
            *(
                execute(sql.format(hidden=hidden)).fetchall()
                for sql in (READ_TABLES, READ_COLUMNS, READ_KEYS, READ_VIEWS)
            )
        )


# MySQL's information_schema tables: name → columns (name, DuckDB type).
TABLES: dict[str, list[tuple[str, str]]] = {
    "SCHEMATA": [
        ("CATALOG_NAME", "VARCHAR"), ("SCHEMA_NAME", "VARCHAR"),
        ("DEFAULT_CHARACTER_SET_NAME", "VARCHAR"), ("DEFAULT_COLLATION_NAME", "VARCHAR"),
        ("SQL_PATH", "VARCHAR"), ("DEFAULT_ENCRYPTION", "VARCHAR"),
    ],
    "TABLES": [
        ("TABLE_CATALOG", "VARCHAR"), ("TABLE_SCHEMA", "VARCHAR"), ("TABLE_NAME", "VARCHAR"),
        ("TABLE_TYPE", "VARCHAR"), ("ENGINE", "VARCHAR"), ("VERSION", "BIGINT"),
        ("ROW_FORMAT", "VARCHAR"), ("TABLE_ROWS", "BIGINT"), ("AVG_ROW_LENGTH", "BIGINT"),
        ("DATA_LENGTH", "BIGINT"), ("MAX_DATA_LENGTH", "BIGINT"), ("INDEX_LENGTH", "BIGINT"),
        ("DATA_FREE", "BIGINT"), ("AUTO_INCREMENT", "BIGINT"), ("CREATE_TIME", "TIMESTAMP"),
        ("UPDATE_TIME", "TIMESTAMP"), ("CHECK_TIME", "TIMESTAMP"), ("TABLE_COLLATION", "VARCHAR"),
        ("CHECKSUM", "BIGINT"), ("CREATE_OPTIONS", "VARCHAR"), ("TABLE_COMMENT", "VARCHAR"),
    ],
    "COLUMNS": [
        ("TABLE_CATALOG", "VARCHAR"), ("TABLE_SCHEMA", "VARCHAR"), ("TABLE_NAME", "VARCHAR"),
        ("COLUMN_NAME", "VARCHAR"), ("ORDINAL_POSITION", "BIGINT"), ("COLUMN_DEFAULT", "VARCHAR"),
        ("IS_NULLABLE", "VARCHAR"), ("DATA_TYPE", "VARCHAR"),
        ("CHARACTER_MAXIMUM_LENGTH", "BIGINT"), ("CHARACTER_OCTET_LENGTH", "BIGINT"),
        ("NUMERIC_PRECISION", "BIGINT"), ("NUMERIC_SCALE", "BIGINT"),
        ("DATETIME_PRECISION", "BIGINT"), ("CHARACTER_SET_NAME", "VARCHAR"),
        ("COLLATION_NAME", "VARCHAR"), ("COLUMN_TYPE", "VARCHAR"), ("COLUMN_KEY", "VARCHAR"),
        ("EXTRA", "VARCHAR"), ("PRIVILEGES", "VARCHAR"), ("COLUMN_COMMENT", "VARCHAR"),
        ("GENERATION_EXPRESSION", "VARCHAR"), ("SRS_ID", "BIGINT"),
    ],
    "STATISTICS": [
        ("TABLE_CATALOG", "VARCHAR"), ("TABLE_SCHEMA", "VARCHAR"), ("TABLE_NAME", "VARCHAR"),
        ("NON_UNIQUE", "INTEGER"), ("INDEX_SCHEMA", "VARCHAR"), ("INDEX_NAME", "VARCHAR"),
        ("SEQ_IN_INDEX", "BIGINT"), ("COLUMN_NAME", "VARCHAR"), ("COLLATION", "VARCHAR"),
        ("CARDINALITY", "BIGINT"), ("SUB_PART", "BIGINT"), ("PACKED", "VARCHAR"),
        ("NULLABLE", "VARCHAR"), ("INDEX_TYPE", "VARCHAR"), ("COMMENT", "VARCHAR"),
        ("INDEX_COMMENT", "VARCHAR"), ("IS_VISIBLE", "VARCHAR"), ("EXPRESSION", "VARCHAR"),
    ],
    "KEY_COLUMN_USAGE": [
        ("CONSTRAINT_CATALOG", "VARCHAR"), ("CONSTRAINT_SCHEMA", "VARCHAR"),
        ("CONSTRAINT_NAME", "VARCHAR"), ("TABLE_CATALOG", "VARCHAR"), ("TABLE_SCHEMA", "VARCHAR"),
        ("TABLE_NAME", "VARCHAR"), ("COLUMN_NAME", "VARCHAR"), ("ORDINAL_POSITION", "BIGINT"),
        ("POSITION_IN_UNIQUE_CONSTRAINT", "BIGINT"), ("REFERENCED_TABLE_SCHEMA", "VARCHAR"),
        ("REFERENCED_TABLE_NAME", "VARCHAR"), ("REFERENCED_COLUMN_NAME", "VARCHAR"),
    ],
    "TABLE_CONSTRAINTS": [
        ("CONSTRAINT_CATALOG", "VARCHAR"), ("CONSTRAINT_SCHEMA", "VARCHAR"),
        ("CONSTRAINT_NAME", "VARCHAR"), ("TABLE_SCHEMA", "VARCHAR"), ("TABLE_NAME", "VARCHAR"),
        ("CONSTRAINT_TYPE", "VARCHAR"), ("ENFORCED", "VARCHAR"),
    ],
    "REFERENTIAL_CONSTRAINTS": [
        ("CONSTRAINT_CATALOG", "VARCHAR"), ("CONSTRAINT_SCHEMA", "VARCHAR"),
        ("CONSTRAINT_NAME", "VARCHAR"), ("UNIQUE_CONSTRAINT_CATALOG", "VARCHAR"),
        ("UNIQUE_CONSTRAINT_SCHEMA", "VARCHAR"), ("UNIQUE_CONSTRAINT_NAME", "VARCHAR"),
        ("MATCH_OPTION", "VARCHAR"), ("UPDATE_RULE", "VARCHAR"), ("DELETE_RULE", "VARCHAR"),
        ("TABLE_NAME", "VARCHAR"), ("REFERENCED_TABLE_NAME", "VARCHAR"),
    ],
    "VIEWS": [
        ("TABLE_CATALOG", "VARCHAR"), ("TABLE_SCHEMA", "VARCHAR"), ("TABLE_NAME", "VARCHAR"),
        ("VIEW_DEFINITION", "VARCHAR"), ("CHECK_OPTION", "VARCHAR"), ("IS_UPDATABLE", "VARCHAR"),
        ("DEFINER", "VARCHAR"), ("SECURITY_TYPE", "VARCHAR"), ("CHARACTER_SET_CLIENT", "VARCHAR"),
        ("COLLATION_CONNECTION", "VARCHAR"),
    ],
    "ROUTINES": [
        ("SPECIFIC_NAME", "VARCHAR"), ("ROUTINE_CATALOG", "VARCHAR"), ("ROUTINE_SCHEMA", "VARCHAR"),
        ("ROUTINE_NAME", "VARCHAR"), ("ROUTINE_TYPE", "VARCHAR"), ("DATA_TYPE", "VARCHAR"),
        ("DTD_IDENTIFIER", "VARCHAR"), ("ROUTINE_BODY", "VARCHAR"),
        ("ROUTINE_DEFINITION", "VARCHAR"), ("IS_DETERMINISTIC", "VARCHAR"),
        ("SQL_DATA_ACCESS", "VARCHAR"), ("SECURITY_TYPE", "VARCHAR"),
        ("ROUTINE_COMMENT", "VARCHAR"), ("DEFINER", "VARCHAR"),
    ],
    "PARAMETERS": [
        ("SPECIFIC_CATALOG", "VARCHAR"), ("SPECIFIC_SCHEMA", "VARCHAR"),
        ("SPECIFIC_NAME", "VARCHAR"), ("ORDINAL_POSITION", "BIGINT"),
        ("PARAMETER_MODE", "VARCHAR"), ("PARAMETER_NAME", "VARCHAR"), ("DATA_TYPE", "VARCHAR"),
        ("CHARACTER_MAXIMUM_LENGTH", "BIGINT"), ("NUMERIC_PRECISION", "BIGINT"),
        ("NUMERIC_SCALE", "BIGINT"), ("DTD_IDENTIFIER", "VARCHAR"), ("ROUTINE_TYPE", "VARCHAR"),
    ],
    "CHARACTER_SETS": [
        ("CHARACTER_SET_NAME", "VARCHAR"), ("DEFAULT_COLLATE_NAME", "VARCHAR"),
        ("DESCRIPTION", "VARCHAR"), ("MAXLEN", "BIGINT"),
    ],
    "COLLATIONS": [
        ("COLLATION_NAME", "VARCHAR"), ("CHARACTER_SET_NAME", "VARCHAR"), ("ID", "BIGINT"),
        ("IS_DEFAULT", "VARCHAR"), ("IS_COMPILED", "VARCHAR"), ("SORTLEN", "BIGINT"),
        ("PAD_ATTRIBUTE", "VARCHAR"),
    ],
    "ENGINES": [
        ("ENGINE", "VARCHAR"), ("SUPPORT", "VARCHAR"), ("COMMENT", "VARCHAR"),
        ("TRANSACTIONS", "VARCHAR"), ("XA", "VARCHAR"), ("SAVEPOINTS", "VARCHAR"),
    ],
}  # fmt: skip

STATIC: dict[str, list[tuple[Any, ...]]] = {
    "CHARACTER_SETS": [
        ("utf8mb4", "utf8mb4_general_ci", "UTF-8 Unicode", 4),
        ("utf8mb3", "utf8mb3_general_ci", "UTF-8 Unicode", 3),
        ("binary", "binary", "Binary pseudo charset", 1),
    ],
    "COLLATIONS": [
        ("utf8mb4_general_ci", "utf8mb4", 45, "Yes", "Yes", 1, "PAD SPACE"),
        ("utf8mb4_bin", "utf8mb4", 46, "", "Yes", 1, "PAD SPACE"),
        ("utf8mb4_0900_ai_ci", "utf8mb4", 255, "", "Yes", 0, "NO PAD"),
        ("utf8mb3_general_ci", "utf8mb3", 33, "Yes", "Yes", 1, "PAD SPACE"),
        ("binary", "binary", 63, "Yes", "Yes", 1, "NO PAD"),
    ],
    "ENGINES": [
        ("Sluice", "DEFAULT", "Sluice's store: DuckDB or PostgreSQL", "YES", "NO", "NO"),
    ],
}

# SHOW statements that sqlglot cannot read, as queries of these tables: kind → SELECT list.
SHOW_QUERIES = {
    "COLLATION": (
        "SELECT COLLATION_NAME AS `Collation`, CHARACTER_SET_NAME AS `Charset`, ID AS `Id`, "
        "IS_DEFAULT AS `Default`, IS_COMPILED AS `Compiled`, SORTLEN AS `Sortlen`, "
        "PAD_ATTRIBUTE AS `Pad_attribute` FROM information_schema.COLLATIONS",
        "Collation",
    ),
    "CHARACTER SET": (
        "SELECT CHARACTER_SET_NAME AS `Charset`, DESCRIPTION AS `Description`, "
        "DEFAULT_COLLATE_NAME AS `Default collation`, MAXLEN AS `Maxlen` "
        "FROM information_schema.CHARACTER_SETS",
        "Charset",
    ),
    "TABLE STATUS": (
        "SELECT TABLE_NAME AS `Name`, ENGINE AS `Engine`, VERSION AS `Version`, "
        "ROW_FORMAT AS `Row_format`, TABLE_ROWS AS `Rows`, AVG_ROW_LENGTH AS `Avg_row_length`, "
        "DATA_LENGTH AS `Data_length`, MAX_DATA_LENGTH AS `Max_data_length`, "
        "INDEX_LENGTH AS `Index_length`, DATA_FREE AS `Data_free`, "
        "AUTO_INCREMENT AS `Auto_increment`, CREATE_TIME AS `Create_time`, "
        "UPDATE_TIME AS `Update_time`, CHECK_TIME AS `Check_time`, "
        "TABLE_COLLATION AS `Collation`, CHECKSUM AS `Checksum`, "
        "CREATE_OPTIONS AS `Create_options`, TABLE_COMMENT AS `Comment` "
        "FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}'",
        "Name",
    ),
    "ENGINES": (
        "SELECT ENGINE AS `Engine`, SUPPORT AS `Support`, COMMENT AS `Comment`, "
        "TRANSACTIONS AS `Transactions`, XA AS `XA`, SAVEPOINTS AS `Savepoints` "
        "FROM information_schema.ENGINES",
        "Engine",
    ),
}
_SHOW = re.compile(
    r"\s*SHOW\s+(COLLATION|CHARACTER\s+SET|CHARSET|(?:STORAGE\s+)?ENGINES|TABLE\s+STATUS)"
    r"(?:\s+(?:FROM|IN)\s+`?(\w+)`?)?"
    r"(?:\s+(LIKE)\s+(.+?)|\s+(WHERE)\s+(.+?))?\s*;?\s*$",
    re.I | re.S,
)


def show_query(sql: str, database: str) -> str | None:
    """``SHOW COLLATION``/``CHARACTER SET``/``ENGINES``/``TABLE STATUS [FROM db]`` [``LIKE …``
    | ``WHERE …``] as a query of information_schema, in MySQL's dialect; None for any other
    statement."""
    m = _SHOW.match(sql)
    if m is None:
        return None
    kind = re.sub(r"\s+", " ", m.group(1).upper())
    kind = {"CHARSET": "CHARACTER SET", "STORAGE ENGINES": "ENGINES"}.get(kind, kind)
    select, name = SHOW_QUERIES[kind]
    select = select.replace("{database}", (m.group(2) or database).replace("'", "''"))
    if m.group(3):
        return f"SELECT * FROM ({select}) AS s WHERE `{name}` LIKE {m.group(4)}"
    if m.group(5):
        return f"SELECT * FROM ({select}) AS s WHERE {_quote_names(m.group(6), select)}"
    return select


def _quote_names(condition: str, select: str) -> str:
    """The output columns a SHOW … WHERE condition names, back-quoted: some are MySQL's
    keywords (``Charset``, ``Default``), which MySQL accepts there bare."""
    names = re.findall(r"AS `([^`]+)`", select)
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.I)
    parts = re.split(r"('(?:[^'\\]|\\.|'')*')", condition)  # literals at odd places
    return "".join(
        part if i % 2 else pattern.sub(lambda m: f"`{m.group(1)}`", part)
        for i, part in enumerate(parts)
    )


class Catalog:
    """MySQL's information_schema over one reading of the store's catalog."""

    def __init__(self, store: StoreCatalog, database: str | None = None) -> None:
        self.store = store
        self.database = database  # the session's default schema (USE)
        self._db: duckdb.DuckDBPyConnection | None = None

    def run(self, expression: exp.Expr) -> Result:
        """A query of information_schema (read as MySQL's), answered from this catalog."""

        def to_local(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Table) and node.name.upper() in TABLES:
                db = node.text("db").lower()
                if db == SCHEMA or (not db and (self.database or "").lower() == SCHEMA):
                    return exp.table_(node.name.upper(), db="mysql_is", alias=node.alias or None)
            return node

        sql = mysql.to_store(expression.transform(to_local), "duckdb")
        cur = self._connection().execute(sql)
        columns = [d[0] for d in cur.description or []]
        types = [str(d[1]) for d in cur.description or []]
        return Result(columns, cur.fetchall(), types=types)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            db = duckdb.connect()
            db.execute("CREATE SCHEMA mysql_is")
            for name, columns in TABLES.items():
                defs = ", ".join(f'"{c}" {t}' for c, t in columns)
                db.execute(f"CREATE TABLE mysql_is.{name} ({defs})")
                rows = self.rows(name)
                if rows:
                    marks = ", ".join("?" * len(columns))
                    db.executemany(f"INSERT INTO mysql_is.{name} VALUES ({marks})", rows)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- MySQL's rows -----------------------------------------------------------------------

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        if table in STATIC:
            return STATIC[table]
        make = getattr(self, "_" + table.lower(), None)
        return make() if make is not None else []

    def key_of(self) -> dict[tuple[str, str, str], str]:
        """(schema, table, column) → COLUMN_KEY: PRI or UNI."""
        out: dict[tuple[str, str, str], str] = {}
        for schema, table, _, kind, column, _ in self.store.keys:
            if kind == "PRIMARY KEY" or (schema, table, column) not in out:
                out[(schema, table, column)] = "PRI" if kind == "PRIMARY KEY" else "UNI"
        return out

    def _schemata(self) -> list[tuple[Any, ...]]:
        names = sorted({t[0] for t in self.store.tables} | {self.database or "main", SCHEMA})
        return [("def", n, CHARSET, COLLATION, None, "NO") for n in names]

    def _tables(self) -> list[tuple[Any, ...]]:
        out = []
        for schema, name, kind in self.store.tables:
            view = kind.upper() == "VIEW"
            out.append(
                ("def", schema, name, "VIEW" if view else "BASE TABLE",
                 None if view else "Sluice", None if view else 10, None if view else "Dynamic",
                 None, None, None, None, None, None, None, None, None, None,
                 None if view else COLLATION, None, "", "VIEW" if view else "")
            )  # fmt: skip
        for name in sorted({*TABLES, *VIEW_NAMES}):
            out.append(
                ("def", SCHEMA, name, "SYSTEM VIEW", None, 10, None, None, None, None, None,
                 None, None, None, None, None, None, COLLATION, None, "", "")
            )  # fmt: skip
        return out

    def _columns(self) -> list[tuple[Any, ...]]:
        keys = self.key_of()
        out = []
        for (
            schema,
            table,
            column,
            position,
            default,
            nullable,
            kind,
            length,
            prec,
            scale,
        ) in self.store.columns:
            t = mysql_type(kind, length, prec, scale)
            out.append(
                ("def", schema, table, column, position, default, nullable, t.data_type,
                 t.char_length, t.char_length * 4 if t.char_length and t.is_text else t.char_length,
                 t.precision, t.scale, t.datetime_precision,
                 CHARSET if t.is_text else None, COLLATION if t.is_text else None, t.column_type,
                 keys.get((schema, table, column), ""), "", "select,insert,update,references",
                 "", "", None)
            )  # fmt: skip
        return out

    def _statistics(self) -> list[tuple[Any, ...]]:
        nullable = {(c[0], c[1], c[2]): c[5] for c in self.store.columns}
        out = []
        for schema, table, name, kind, column, position in self.store.keys:
            index = "PRIMARY" if kind == "PRIMARY KEY" else name
            null = "YES" if nullable.get((schema, table, column)) == "YES" else ""
            out.append(
                ("def", schema, table, 0, schema, index, position, column, "A", None, None,
                 None, null, "BTREE", "", "", "YES", None)
            )  # fmt: skip
        return out

    def _key_column_usage(self) -> list[tuple[Any, ...]]:
        return [
            ("def", schema, "PRIMARY" if kind == "PRIMARY KEY" else name, "def", schema, table,
             column, position, None, None, None, None)
            for schema, table, name, kind, column, position in self.store.keys
        ]  # fmt: skip

    def _table_constraints(self) -> list[tuple[Any, ...]]:
        seen = {
            (schema, table, "PRIMARY" if kind == "PRIMARY KEY" else name, kind)
            for schema, table, name, kind, *_ in self.store.keys
        }
        return [("def", s, n, s, t, k, "YES") for s, t, n, k in sorted(seen)]

    def _views(self) -> list[tuple[Any, ...]]:
        return [
            ("def", schema, name, definition, "NONE", "NO", "root@%", "DEFINER", CHARSET,
             COLLATION)
            for schema, name, definition in self.store.views
        ]  # fmt: skip

    # -- SHOW CREATE TABLE ----------------------------------------------------------------------

    def create_table(self, table: str, schema: str | None = None) -> tuple[str, str] | None:
        """MySQL's DDL of a table (its name, its CREATE TABLE), or None if there is none."""
        schema = schema or self.database
        found = [
            t for t in self.store.tables
            if t[1].lower() == table.lower() and (schema is None or t[0] == schema)
        ]  # fmt: skip
        if not found:
            return None
        schema, name, _ = found[0]
        keys = self.key_of()
        lines = []
        for s, t, column, _, default, nullable, kind, length, prec, scale in self.store.columns:
            if (s, t) != (schema, name):
                continue
            line = f"  {_quote(column)} {mysql_type(kind, length, prec, scale).column_type}"
            if nullable == "NO":
                line += " NOT NULL"
            elif default is None:
                line += " DEFAULT NULL"
            if default is not None:
                line += f" DEFAULT {default}"
            lines.append(line)
        primary = [c for (s, t, c), k in keys.items() if (s, t) == (schema, name) and k == "PRI"]
        if primary:
            lines.append(f"  PRIMARY KEY ({', '.join(_quote(c) for c in primary)})")
        unique: dict[str, list[str]] = {}
        for s, t, constraint, kind, column, _ in self.store.keys:
            if (s, t) == (schema, name) and kind == "UNIQUE":
                unique.setdefault(constraint, []).append(column)
        for constraint, columns in unique.items():
            cols = ", ".join(_quote(c) for c in columns)
            lines.append(f"  UNIQUE KEY {_quote(constraint)} ({cols})")
        body = ",\n".join(lines)
        ddl = (
            f"CREATE TABLE {_quote(name)} (\n{body}\n) "
            f"ENGINE=Sluice DEFAULT CHARSET={CHARSET} COLLATE={COLLATION}"
        )
        return name, ddl


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
