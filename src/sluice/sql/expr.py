"""Rewrite the SQL text of SET / WHERE / ON DUPLICATE KEY UPDATE expressions for the store."""

from __future__ import annotations

from collections.abc import Collection

from sluice.sql.lexer import Kind, tokenize


def quote(name: str) -> str:
    """A double-quoted identifier, as both DuckDB and PostgreSQL read it."""
    return '"' + name.replace('"', '""') + '"'


def rewrite(
    expr: str,
    *,
    excluded: bool = False,
    target: str = "",
    columns: Collection[str] = (),
) -> str:
    """``@var`` → ``"@var"`` (the loaded variable); with ``excluded``, MySQL's ``VALUES(col)``
    (the value being inserted) → ``EXCLUDED."col"``, and a bare name of one of ``columns``
    (the row already stored) → ``target."col"``, as PostgreSQL needs it; string literals,
    written with MySQL escapes, → standard SQL (``'it\\'s'`` → ``'it''s'``). Everything else
    is kept as written."""
    tokens = tokenize(expr, backslash_escapes=True)
    stored = {c.lower() for c in columns}
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        replacement = None
        span_end = tok.end
        if tok.kind is Kind.VARIABLE:
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
