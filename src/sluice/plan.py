"""The load plan: the SQL that moves one parsed batch into the target table.

A batch arrives as a relation of text columns, one per target (column or ``@variable``). The
plan casts each to its column's type, applies ``SET`` and ``WHERE``, and resolves duplicate
keys by the pipeline's mode. The SQL is standard (CAST, window functions, ON CONFLICT), so
DuckDB and PostgreSQL run the same plan.

Duplicates inside one batch: an upsert statement sees every row of the batch at once, and
DuckDB keeps the *first* of two rows with the same key. MySQL semantics apply rows in order,
so the plan keeps the last row for REPLACE, the first for IGNORE, and for ON DUPLICATE KEY
UPDATE applies the k-th occurrence of every key in round k.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.errors import TerminalError
from sluice.sql import ast, mysql
from sluice.sql.expr import MYSQL_ONLY, quote, rewrite
from sluice.sql.lexer import replace_relation
from sluice.vocab import BATCH_RELATION, META_COLUMNS, ROW_COLUMN, TableInfo, is_text_type

_STAGE = "__sluice_rows"
PROCEDURE_BATCH = "__sluice_procedure_batch"


Execute = Callable[[str], list[tuple[object, ...]]]


@dataclass(frozen=True)
class LoadPlan:
    table: str
    columns: tuple[str, ...]  # loaded columns, table order
    select: str  # rows to load: the columns above plus ROW_COLUMN
    mode: str | None  # None | REPLACE | IGNORE | UPDATE
    key: tuple[str, ...]
    conflict: str  # the ON CONFLICT clause, or ""
    typed: tuple[tuple[str, str], ...] = ()  # (target, SQL type) of targets cast from text
    meta: tuple[str, ...] = ()  # the lineage columns (META_COLUMNS) the batch must carry
    #: When the plan does nothing but cast the batch's text columns into the same-named
    #: columns (no SET, WHERE, @variables, lineage or duplicate handling), the batch column
    #: each of ``columns`` comes from: a store may then copy the batch straight into the table,
    #: its own conversion of text input being the casts (an empty field still loads NULL into
    #: the ``typed`` columns).
    direct: tuple[str, ...] = ()

    def type_check(self, try_cast: Callable[[str, str], str]) -> str:
        """Rows holding a value that does not convert: ``(ROW_COLUMN, reason)``.
        ``try_cast(expr, type)`` is the store's conversion that gives NULL instead of failing."""
        checks = []
        for target, sql_type in self.typed:
            value = f"b.{quote(target)}"
            fails = f"{value} <> '' AND {try_cast(value, sql_type)} IS NULL"
            shown = (
                f"CASE WHEN length({value}) > 60 THEN left({value}, 57) || '...' ELSE {value} END"
            )
            prefix = _sql_string(f"column {target}: '")
            suffix = _sql_string(f"' is not a valid {sql_type}")
            checks.append(f"CASE WHEN {fails} THEN {prefix} || {shown} || {suffix} END")
        if not checks:
            return f"SELECT {ROW_COLUMN}, '' AS reason FROM {BATCH_RELATION} WHERE false"
        reason = f"concat_ws('; ', {', '.join(checks)})"
        return (
            f"SELECT {ROW_COLUMN}, reason FROM (SELECT b.{ROW_COLUMN}, {reason} AS reason "
            f"FROM {BATCH_RELATION} AS b) AS c WHERE reason <> ''"
        )

    def run(self, execute: Execute) -> int:
        """Run the plan inside the caller's transaction; ``execute`` runs one statement and
        returns its rows (an INSERT's: one row holding the count). Returns rows written."""
        cols = ", ".join(quote(c) for c in self.columns)
        insert = f"INSERT INTO {self.table} ({cols})"
        if not self.conflict:
            return _count(execute(f"{insert} SELECT {cols} FROM ({self.select}) AS r"))
        key = ", ".join(quote(k) for k in self.key)
        if self.mode != "UPDATE":
            direction = "DESC" if self.mode == "REPLACE" else "ASC"
            ranked = (
                f"SELECT *, row_number() OVER (PARTITION BY {key} "
                f"ORDER BY {ROW_COLUMN} {direction}) AS __rank FROM ({self.select}) AS r"
            )
            return _count(
                execute(
                    f"{insert} SELECT {cols} FROM ({ranked}) AS d WHERE __rank = 1 {self.conflict}"
                )
            )
        execute(
            f"CREATE TEMP TABLE {_STAGE} AS SELECT *, row_number() OVER (PARTITION BY {key} "
            f"ORDER BY {ROW_COLUMN}) AS __round FROM ({self.select}) AS r"
        )
        # No try/finally: a failure aborts the caller's transaction, whose rollback drops it.
        rounds = _count(execute(f"SELECT coalesce(max(__round), 0) FROM {_STAGE}"))
        written = sum(
            _count(
                execute(f"{insert} SELECT {cols} FROM {_STAGE} WHERE __round = {k} {self.conflict}")
            )
            for k in range(1, rounds + 1)
        )
        execute(f"DROP TABLE {_STAGE}")
        return written


@dataclass(frozen=True)
class ProcedurePlan(LoadPlan):
    """A pipeline ``INTO PROCEDURE``: the batch's rows, typed as the procedure's ``QUERY(...)``
    says, become a temporary table that the body's statements read in place of their batch
    parameter; they run in the batch's transaction, so what they write is exactly-once."""

    body: tuple[str, ...] = ()  # the statements, the parameter renamed to PROCEDURE_BATCH

    def run(self, execute: Execute) -> int:
        execute(f"CREATE TEMP TABLE {PROCEDURE_BATCH} AS {self.select}")
        rows = _count(execute(f"SELECT count(*) FROM {PROCEDURE_BATCH}"))
        for statement in self.body:
            execute(statement)
        execute(f"DROP TABLE {PROCEDURE_BATCH}")  # a failure rolls back, which drops it too
        return rows


def procedure_plan(plan: LoadPlan, proc: ast.CreateProcedure) -> ProcedurePlan:
    body = tuple(replace_relation(s, proc.param, PROCEDURE_BATCH) for s in proc.body)
    return ProcedurePlan(
        plan.table, plan.columns, plan.select, None, (), "", plan.typed, plan.meta, body=body
    )


def _sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _count(rows: list[tuple[object, ...]]) -> int:
    return int(str(rows[0][0])) if rows else 0


def build_plan(
    defn: ast.CreatePipeline,
    table: TableInfo,
    targets: Sequence[str],
    *,
    table_sql: str,
    typed: Collection[str] = (),
    store: str = "duckdb",
) -> LoadPlan:
    """Compile the pipeline's mapping, SET, WHERE and duplicate handling against ``table``.
    The batch's columns are text, but for the ``typed`` targets: those hold values (a Python
    transform's), cast only if their type differs. MySQL's functions in the expressions
    (``IF``, ``IFNULL``, ``DATE_FORMAT``, ``FROM_UNIXTIME``, ...) are translated for the store
    (``sluice.sql.mysql``): on PostgreSQL always, on DuckDB, which has some of them, when one
    it lacks is there (DuckDB's own functions are then read as written)."""

    def expr(text: str, **how: Any) -> str:
        rewritten = rewrite(text, **how)
        return (
            mysql.expression(rewritten, store)
            if store == "postgresql" or MYSQL_ONLY.search(rewritten)
            else rewritten
        )

    for name in [t for t in targets if not t.startswith("@")] + [a.column for a in defn.set]:
        if table.column_type(name) is None:
            have = ", ".join(n for n, _ in table.columns)
            raise TerminalError(
                f"column {name!r} does not exist in table {table.name} (columns: {have})"
            )
    # Level 1: each target cast to its column's type; @variables stay text.
    level1 = []
    for t in targets:
        src = f"b.{quote(t)}"
        if t.startswith("@"):
            level1.append(f"{src} AS {quote(t)}")
        else:
            level1.append(_cast(src, table, t, from_text=t not in typed))
    target = table_sql.rpartition(".")[2]
    mode, conflict = _conflict(defn, table, _loaded_columns(defn, table, targets), target, expr)
    order = [ROW_COLUMN] if conflict else []
    level1 += [f"b.{c}" for c in order]
    types = {t: table.column_type(t) or "VARCHAR" for t in targets if not t.startswith("@")}
    cast = tuple((t, ty) for t, ty in types.items() if not is_text_type(ty) and t not in typed)
    # Level 2: SET expressions see the typed columns, the variables and the lineage columns
    # (pipeline_source_file(), ...), which level 1 types; WHERE sees level 2.
    used: set[str] = set()
    set_cols = {table.canonical(a.column).lower(): a for a in defn.set}
    level2 = [quote(t) for t in targets if t.lower() not in set_cols]
    level2 += [
        _cast(f"({expr(a.expr, meta=used)})", table, a.column, from_text=False) for a in defn.set
    ]
    where = f" WHERE {expr(defn.where, meta=used)}" if defn.where is not None else ""
    meta = tuple(sorted(used))
    level1 += [f"CAST(b.{quote(m)} AS {META_COLUMNS[m]}) AS {quote(m)}" for m in meta]
    level2 += order + [quote(m) for m in meta]
    columns = _loaded_columns(defn, table, targets)
    select = (
        f"SELECT {', '.join([quote(c) for c in columns] + order)} FROM ("
        f"SELECT {', '.join(level2)} FROM ("
        f"SELECT {', '.join(level1)} FROM {BATCH_RELATION} AS b) AS l1) AS l2{where}"
    )
    plain = not (defn.set or defn.where is not None or conflict or typed or meta)
    by_name = {t.lower(): t for t in targets}
    direct = (
        tuple(by_name[c.lower()] for c in columns) if plain and len(by_name) == len(columns) else ()
    )
    return LoadPlan(table_sql, columns, select, mode, table.key, conflict, cast, meta, direct)


def _loaded_columns(
    defn: ast.CreatePipeline, table: TableInfo, targets: Sequence[str]
) -> tuple[str, ...]:
    loaded = {t.lower() for t in targets if not t.startswith("@")}
    loaded |= {a.column.lower() for a in defn.set}
    return tuple(n for n, _ in table.columns if n.lower() in loaded)


def _cast(expr: str, table: TableInfo, column: str, *, from_text: bool = True) -> str:
    sql_type = table.column_type(column) or "VARCHAR"
    if from_text and not is_text_type(sql_type):
        expr = f"NULLIF({expr}, '')"  # an empty field loads NULL, not a conversion error
    return f"CAST({expr} AS {sql_type}) AS {quote(column)}"


def _conflict(
    defn: ast.CreatePipeline,
    table: TableInfo,
    columns: Sequence[str],
    target: str,
    expr: Callable[..., str],
) -> tuple[str | None, str]:
    """The mode and the ON CONFLICT clause. In ``ON DUPLICATE KEY UPDATE col = expr`` a bare
    column name is the stored row's value, as in MySQL: it is qualified with ``target``."""
    if defn.on_duplicate_key_update:
        mode = "UPDATE"
        names = [n for n, _ in table.columns]
        sets = [
            f"{quote(table.canonical(a.column))} = "
            f"{expr(a.expr, excluded=True, target=target, columns=names)}"
            for a in defn.on_duplicate_key_update
        ]
    elif defn.duplicates == "REPLACE":
        mode = "REPLACE"
        sets = [f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns if c not in table.key]
    elif defn.duplicates == "IGNORE":
        mode, sets = "IGNORE", []
    else:
        return None, ""
    if not table.key:
        if mode == "UPDATE":
            raise TerminalError(
                f"ON DUPLICATE KEY UPDATE needs a primary or unique key on table {table.name}"
            )
        return None, ""  # as in MySQL: without a key nothing is a duplicate
    target = ", ".join(quote(k) for k in table.key)
    action = f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
    return mode, f"ON CONFLICT ({target}) {action}"
