"""Rewrite the SQL text of SET / WHERE / ON DUPLICATE KEY UPDATE expressions for the store."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from sluice.errors import ParseError
from sluice.sql.lexer import Kind, tokenize

# What marks a statement as MySQL's rather than the store's: constructs a store refuses, and
# CONCAT, which DuckDB accepts but where a NULL argument does not make the result NULL. (Any
# other statement the store refuses is translated too, once it has failed; but in a
# transaction, that failure would end the transaction.)
MYSQL_ONLY = re.compile(
    r"`|\bLIMIT\s+\d+\s*,|\bAS\s+(SIGNED|UNSIGNED|CHAR\s*\))|"
    r"\b(DATE_FORMAT|STR_TO_DATE|UNIX_TIMESTAMP|FROM_UNIXTIME|CURDATE|CURTIME|GROUP_CONCAT|"
    r"IFNULL|IF|CONCAT)\s*\(",
    re.I,
)

# SingleStore's pipeline functions, and the batch column each reads (sluice.vocab.META_COLUMNS)
FUNCTIONS = {"pipeline_batch_id": "__batch_id", "pipeline_source_file": "__source"}
KAFKA_PROPS = {
    "prop_topicname": "__topic",
    "prop_partition": "__source",
    "prop_offset": "__offset",
    "prop_timestamp": "__timestamp",
    "prop_key": "__key",
    "prop_headers": "__headers",
}


def quote(name: str) -> str:
    """A double-quoted identifier, as both DuckDB and PostgreSQL read it."""
    return '"' + name.replace('"', '""') + '"'


def rewrite(
    expr: str,
    *,
    excluded: bool = False,
    target: str = "",
    columns: Collection[str] = (),
    meta: set[str] | None = None,
) -> str:
    """``@var`` → ``"@var"`` (the loaded variable); with ``excluded``, MySQL's ``VALUES(col)``
    (the value being inserted) → ``EXCLUDED."col"``, and a bare name of one of ``columns``
    (the row already stored) → ``target."col"``, as PostgreSQL needs it; string literals,
    written with MySQL escapes, → standard SQL (``'it\\'s'`` → ``'it''s'``). Everything else
    is kept as written. The pipeline functions (``pipeline_batch_id()``,
    ``pipeline_source_file()``, ``get_kafka_pipeline_prop('prop_offset')``, ...) become the
    batch columns they read, each added to ``meta``."""
    tokens = tokenize(expr, backslash_escapes=True)
    stored = {c.lower() for c in columns}
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        replacement = None
        span_end = tok.end
        call = _pipeline_function(expr, tokens, i)
        if call is not None:
            column, last = call
            replacement, span_end = quote(column), tokens[last].end
            i = last
            if meta is not None:
                meta.add(column)
        elif tok.kind is Kind.VARIABLE:
            replacement = quote("@" + tok.value)
        elif tok.kind is Kind.STRING:
            replacement = "'" + tok.value.replace("'", "''") + "'"
        elif (
            excluded
            and tok.is_word("VALUES")
            and i + 3 < len(tokens)
            and tokens[i + 1].value == "("
            and tokens[i + 2].kind in (Kind.WORD, Kind.QUOTED)
            and tokens[i + 3].value == ")"
        ):
            replacement = "EXCLUDED." + quote(tokens[i + 2].value)
            span_end = tokens[i + 3].end
            i += 3
        elif (
            target
            and tok.kind in (Kind.WORD, Kind.QUOTED)
            and tok.value.lower() in stored
            and (i == 0 or tokens[i - 1].value != ".")
            and (i + 1 == len(tokens) or tokens[i + 1].value not in (".", "("))
        ):
            replacement = f"{target}.{quote(tok.value)}"
        if replacement is not None:
            out.append(expr[pos : tok.start])
            out.append(replacement)
            pos = span_end
        i += 1
    out.append(expr[pos:])
    return "".join(out)


def _pipeline_function(expr: str, tokens: list[Any], i: int) -> tuple[str, int] | None:
    """(column, index of the closing parenthesis) if a pipeline function is called at ``i``."""
    tok = tokens[i]
    if tok.kind is not Kind.WORD or i + 2 >= len(tokens) or tokens[i + 1].value != "(":
        return None
    name = tok.value.lower()
    if name in FUNCTIONS and tokens[i + 2].value == ")":
        return FUNCTIONS[name], i + 2
    if name == "get_kafka_pipeline_prop":
        arg = tokens[i + 2]
        if arg.kind is not Kind.STRING or i + 3 >= len(tokens) or tokens[i + 3].value != ")":
            raise ParseError("get_kafka_pipeline_prop takes one quoted name", expr, tok.start)
        column = KAFKA_PROPS.get(arg.value.lower())
        if column is None:
            raise ParseError(
                f"get_kafka_pipeline_prop: unknown property {arg.value!r} "
                f"(valid: {', '.join(KAFKA_PROPS)})",
                expr,
                arg.start,
            )
        return column, i + 3
    return None
