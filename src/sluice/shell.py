"""``sluice sql``: run statements and print results as aligned tables; an interactive shell."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

from sluice.errors import ParseError, SluiceError
from sluice.result import Result
from sluice.sql import split_statements
from sluice.sql.lexer import Kind, tokenize

MAX_ROWS_SHOWN = 1000
HISTORY_FILE = os.path.expanduser("~/.sluice_history")


def render_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.4e}"
    if isinstance(value, (datetime, date, Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def format_result(result: Result, max_rows: int = MAX_ROWS_SHOWN) -> str:
    """An aligned table for a query; a one-line summary otherwise."""
    notes = [f"Warning: {w}" for w in result.warnings]
    if not result.columns:
        done = "OK" if result.rowcount < 0 else f"OK, {result.rowcount} rows affected"
        return "\n".join([*notes, done])
    rows = result.fetchmany(max_rows)
    more = result.fetchone() is not None
    cells = [[render_value(v) for v in row] for row in rows]
    widths = [len(c) for c in result.columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Iterable[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [rule, line(result.columns), rule, *(line(r) for r in cells), rule]
    count = f"{len(rows)} row" + ("" if len(rows) == 1 else "s")
    out.append(count + (f" shown (more not shown, limit {max_rows})" if more else ""))
    return "\n".join([*notes, *out])


def one_line(exc: BaseException) -> str:
    if isinstance(exc, ParseError):
        return f"{exc.message} (line {exc.line}, column {exc.column})"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def run_script(execute: Callable[[str], Result], script: str, out: TextIO = sys.stdout) -> int:
    """Run every statement of ``script``; stop at the first error. Returns an exit code."""
    try:
        statements = split_statements(script)
        for statement in statements:
            print(format_result(execute(statement)), file=out)
    except SluiceError as exc:
        print(f"Error: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def statement_complete(text: str) -> bool:
    """True when ``text`` ends with a semicolon outside strings and comments."""
    try:
        tokens = tokenize(text, backslash_escapes=False)
    except ParseError:
        return False  # an open string or comment: keep reading
    meaningful = [t for t in tokens if t.kind is not Kind.END]
    return bool(meaningful) and meaningful[-1].kind is Kind.PUNCT and meaningful[-1].value == ";"


def interactive(execute: Callable[[str], Result], banner: str) -> int:
    """A read-eval-print loop with history; statements end with ``;``."""
    read = _reader()
    print(banner)
    print('Statements end with ";". Type "exit" or press Ctrl-D to leave.')
    buffer = ""
    while True:
        try:
            line = read("sluice> " if not buffer else "   ...> ")
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            buffer = ""
            continue
        if not buffer and line.strip().lower() in ("exit", "quit", "\\q", ".quit"):
            return 0
        buffer += line + "\n"
        if not statement_complete(buffer):
            continue
        script, buffer = buffer, ""
        try:
            for statement in split_statements(script):
                print(format_result(execute(statement)))
        except SluiceError as exc:
            print(f"Error: {exc}")


def _reader() -> Callable[[str], str]:
    if sys.stdin.isatty():
        try:
            from prompt_toolkit import PromptSession
            from prompt_toolkit.history import FileHistory

            session: PromptSession[str] = PromptSession(history=FileHistory(HISTORY_FILE))
            return session.prompt
        except ImportError:
            pass
        try:
            import readline

            if os.path.exists(HISTORY_FILE):
                readline.read_history_file(HISTORY_FILE)
            import atexit

            atexit.register(readline.write_history_file, HISTORY_FILE)
        except (ImportError, OSError):
            pass
    return input
