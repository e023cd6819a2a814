"""Tokens of a SQL statement, with their positions, and splitting a script into statements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from sluice.errors import ParseError


class Kind(Enum):
    WORD = "word"  # keyword or bare identifier
    QUOTED = "quoted"  # `back-quoted` or "double-quoted" identifier
    STRING = "string"  # 'literal'
    NUMBER = "number"
    VARIABLE = "variable"  # @name
    PUNCT = "punct"
    END = "end"


@dataclass(frozen=True)
class Token:
    kind: Kind
    value: str  # unquoted, unescaped text; upper-cased for nothing (callers compare with .upper())
    start: int
    end: int

    def is_word(self, *words: str) -> bool:
        return self.kind is Kind.WORD and self.value.upper() in words


_PUNCT = ("<-", "::", "<=", ">=", "<>", "!=", "||", "->>", "->")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_VARIABLE = re.compile(r"@[A-Za-z0-9_$.]+")
_MYSQL_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def tokenize(sql: str, *, backslash_escapes: bool = True) -> list[Token]:
    """Split ``sql`` into tokens, skipping whitespace and comments; the last token is END.

    ``backslash_escapes`` follows MySQL (and SingleStore): ``'\\t'`` is a tab. Plain SQL for
    the store is split with it off, as standard SQL has no backslash escapes.
    """
    return list(iter_tokens(sql, backslash_escapes))


def iter_tokens(sql: str, backslash_escapes: bool) -> Iterator[Token]:
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i) or c == "#":
            nl = sql.find("\n", i)
            i = n if nl < 0 else nl + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            if close < 0:
                raise ParseError("unterminated comment", sql, i)
            i = close + 2
        elif c in "'\"`":
            value, end = _read_quoted(sql, i, backslash_escapes and c != "`")
            kind = Kind.STRING if c == "'" else Kind.QUOTED
            yield Token(kind, value, i, end)
            i = end
        elif c == "@" and sql.startswith(("@'", '@"', "@`"), i):  # MySQL's 'user'@'host'
            yield Token(Kind.PUNCT, "@", i, i + 1)
            i += 1
        elif c == "@":
            m = _VARIABLE.match(sql, i)
            if not m:
                raise ParseError("expected a variable name after '@'", sql, i)
            yield (Token(Kind.VARIABLE, m.group()[1:], i, m.end()))
            i = m.end()
        elif m := _WORD.match(sql, i):
            yield (Token(Kind.WORD, m.group(), i, m.end()))
            i = m.end()
        elif (m := _NUMBER.match(sql, i)) and (c.isdigit() or c == "."):
            yield (Token(Kind.NUMBER, m.group(), i, m.end()))
            i = m.end()
        else:
            p = next((p for p in _PUNCT if sql.startswith(p, i)), c)
            yield (Token(Kind.PUNCT, p, i, i + len(p)))
            i += len(p)
    yield Token(Kind.END, "", n, n)


def _read_quoted(sql: str, start: int, backslash_escapes: bool) -> tuple[str, int]:
    quote = sql[start]
    out: list[str] = []
    i = start + 1
    while i < len(sql):
        c = sql[i]
        if c == "\\" and backslash_escapes and i + 1 < len(sql):
            nxt = sql[i + 1]
            out.append(_MYSQL_ESCAPES.get(nxt, nxt))
            i += 2
        elif c == quote:
            if sql.startswith(quote * 2, i):
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    what = "string" if quote == "'" else "quoted identifier"
    raise ParseError(f"unterminated {what}", sql, start)


_COMMENTS = r"\s*(?:(?:--|#)[^\n]*(?:\n|$)\s*|/\*.*?\*/\s*)*"
_PIPELINE_STATEMENT = re.compile(
    _COMMENTS + r"(?:(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:AGGREGATOR\s+)?PIPELINE"
    r"|(?:START|STOP)\s+(?:ALL\s+PIPELINES|PIPELINE)"
    r"|(?:DROP|TEST|ALTER|EXTRACT|PROFILE)\s+PIPELINE"
    r"|SHOW\s+(?:PIPELINES|CREATE\s+PIPELINE|LINKS)"
    r"|CREATE\s+(?:OR\s+REPLACE\s+)?LINK|DROP\s+LINK"
    r"|REPLAY\s+ERRORS|CLEAR\s+PIPELINE\s+ERRORS"
    r"|DROP\s+PROCEDURE|SHOW\s+CREATE\s+PROCEDURE"
    r"|(?:CREATE|ALTER|DROP)\s+USER|GRANT|REVOKE|SHOW\s+(?:USERS|GRANTS))\b"
    # a procedure of a pipeline (SingleStore's): its parameter is a QUERY(...)
    r"|CREATE\s+(?:OR\s+REPLACE\s+)?PROCEDURE\s+[^(]*\(\s*[A-Za-z_]\w*\s+QUERY\s*\()",
    re.IGNORECASE | re.DOTALL,
)
_PROCEDURE = re.compile(_COMMENTS + r"CREATE\s+(?:OR\s+REPLACE\s+)?PROCEDURE\b", re.I | re.S)


def is_pipeline_statement(sql: str, pos: int = 0) -> bool:
    """True when the statement at ``pos`` is one Sluice handles itself (not passed to the store)."""
    return _PIPELINE_STATEMENT.match(sql, pos) is not None


def split_statements(script: str) -> list[str]:
    """Split a script on top-level semicolons; empty statements are dropped.

    Pipeline definitions use MySQL string escapes; everything else is split as standard SQL.
    A ``CREATE PROCEDURE`` ends after the ``END`` of its body (whose statements end in ``;``).
    """
    statements: list[str] = []
    pos = 0
    while pos < len(script):
        escapes = is_pipeline_statement(script, pos)
        blocks = _PROCEDURE.match(script, pos) is not None
        end = _find_semicolon(script, pos, escapes, blocks=blocks)
        text = script[pos:end].strip()
        if text and tokenize(text, backslash_escapes=escapes)[0].kind is not Kind.END:
            statements.append(text)
        pos = end + 1
    return statements


def _find_semicolon(script: str, pos: int, escapes: bool, *, blocks: bool = False) -> int:
    """Where the statement at ``pos`` ends; with ``blocks``, semicolons within BEGIN … END (and
    CASE … END) do not end it."""
    depth = 0
    try:
        for tok in iter_tokens(script[pos:], escapes):
            if blocks and tok.is_word("BEGIN", "CASE"):
                depth += 1
            elif blocks and tok.is_word("END") and depth:
                depth -= 1
            elif tok.kind is Kind.END or (
                tok.kind is Kind.PUNCT and tok.value == ";" and not depth
            ):
                return pos + tok.start
    except ParseError as exc:
        raise ParseError(exc.message, script, pos + exc.position) from None
    raise AssertionError("the token stream always ends with END")


def split_body(body: str) -> tuple[str, ...]:
    """The statements of a procedure's body, split on the semicolons outside BEGIN/CASE … END."""
    out, pos = [], 0
    while pos < len(body):
        end = _find_semicolon(body, pos, False, blocks=True)
        text = body[pos:end].strip()
        if text and tokenize(text, backslash_escapes=False)[0].kind is not Kind.END:
            out.append(text)
        pos = end + 1
    return tuple(out)


def replace_relation(sql: str, name: str, replacement: str) -> str:
    """``sql`` with every bare identifier ``name`` (any case, not within strings or quotes)
    replaced by ``replacement``."""
    pieces, last = [], 0
    for tok in tokenize(sql, backslash_escapes=False):
        if tok.kind is Kind.WORD and tok.value.lower() == name.lower():
            pieces += [sql[last : tok.start], replacement]
            last = tok.end
    return "".join(pieces) + sql[last:]
