"""Recursive-descent parser for SingleStore-style pipeline statements.

``parse(sql)`` returns a pipeline statement from ``sluice.sql.ast`` or, for any other SQL,
``Passthrough(sql)``. Statement dispatch is by table; each clause has one small method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluice.errors import ParseError
from sluice.sql import ast
from sluice.sql.lexer import Kind, Token, is_pipeline_statement, split_body, tokenize

SOURCE_KINDS = (
    "KAFKA", "FS", "S3", "AZURE", "GCS", "HDFS", "STAGE", "RABBITMQ", "LINK", "MONGODB", "MYSQL",
)  # fmt: skip
LINK_KINDS = ("KAFKA", "S3", "AZURE", "GCS", "HDFS", "HTTP", "MONGODB", "MYSQL", "RABBITMQ")
_SKIP_KINDS = ("ALL", "CONSTRAINT", "DUPLICATE KEY", "PARSER")


def parse(sql: str) -> ast.Statement:
    """Parse one statement (a trailing semicolon is allowed)."""
    if not is_pipeline_statement(sql):
        return ast.Passthrough(sql.strip().rstrip(";").strip())
    return _Parser(sql).statement()


class _Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = tokenize(sql, backslash_escapes=True)
        self.i = 0

    # -- token helpers ------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tok
        if tok.kind is not Kind.END:
            self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> ParseError:
        tok = tok or self.tok
        found = "end of statement" if tok.kind is Kind.END else repr(self.sql[tok.start : tok.end])
        return ParseError(f"{message}, found {found}", self.sql, tok.start)

    def at(self, *words: str) -> bool:
        """True if the next tokens are exactly ``words`` (keywords, case-insensitive)."""
        return all(self.peek(k).is_word(w) for k, w in enumerate(words))

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.i += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        for word in words:
            if not self.tok.is_word(word):
                raise self.error(f"expected {word}")
            self.advance()

    def accept_punct(self, p: str) -> bool:
        if self.tok.kind is Kind.PUNCT and self.tok.value == p:
            self.advance()
            return True
        return False

    def expect_punct(self, p: str) -> None:
        if not self.accept_punct(p):
            raise self.error(f"expected '{p}'")

    def ident(self, what: str = "a name") -> str:
        if self.tok.kind in (Kind.WORD, Kind.QUOTED):
            return self.advance().value
        raise self.error(f"expected {what}")

    def qualified_ident(self, what: str) -> str:
        parts = [self.ident(what)]
        while self.accept_punct("."):
            parts.append(self.ident(what))
        return ".".join(parts)

    def string(self, what: str = "a quoted string") -> str:
        """A string literal: '…', or "…" as MySQL (and SingleStore) read it where a string
        is expected."""
        double = self.tok.kind is Kind.QUOTED and self.sql[self.tok.start] == '"'
        if self.tok.kind is not Kind.STRING and not double:
            raise self.error(f"expected {what}")
        return self.advance().value

    def integer(self, what: str) -> int:
        if self.tok.kind is not Kind.NUMBER or not self.tok.value.isdigit():
            raise self.error(f"expected {what} (a whole number)")
        return int(self.advance().value)

    def on_off(self) -> bool:
        if self.accept("ON"):
            return True
        if self.accept("OFF"):
            return False
        raise self.error("expected ON or OFF")

    # -- statements ---------------------------------------------------------------------------

    def statement(self) -> ast.Statement:
        head = self.advance()
        handler = STATEMENT_PARSERS[head.value.upper()]
        stmt = handler(self)
        self.accept_punct(";")
        if self.tok.kind is not Kind.END:
            raise self.error("unexpected text after the statement")
        return stmt

    def create(
        self,
    ) -> ast.CreatePipeline | ast.CreateProcedure | ast.CreateLink | ast.CreateUser:
        if self.accept("USER"):
            if_not_exists = self.accept("IF", "NOT", "EXISTS")
            return self.user_password(if_not_exists=if_not_exists)
        or_replace = self.accept("OR", "REPLACE")
        if self.accept("PROCEDURE"):
            return self.procedure(or_replace)
        if self.accept("LINK"):
            return self.link(or_replace)
        aggregator = self.accept("AGGREGATOR")
        self.expect("PIPELINE")
        if_not_exists = self.accept("IF", "NOT", "EXISTS")
        name = self.qualified_ident("a pipeline name")
        self.expect("AS", "LOAD", "DATA")
        opts: dict[str, Any] = {
            "name": name,
            "or_replace": or_replace,
            "if_not_exists": if_not_exists,
            "aggregator": aggregator,
            "source": self.source(),
        }
        while not self.tok.is_word("INTO"):
            self.load_option(opts)
        self.expect("INTO")
        if self.accept("PROCEDURE"):
            opts["into_procedure"] = True
        else:
            self.expect("TABLE")
        opts["table"] = self.qualified_ident("a table name")
        self.load_tail(opts)
        return ast.CreatePipeline(**opts)

    def procedure(self, or_replace: bool) -> ast.CreateProcedure:
        name = self.qualified_ident("a procedure name")
        self.expect_punct("(")
        param = self.ident("the batch parameter's name")
        self.expect("QUERY")
        self.expect_punct("(")
        columns = [self.column_definition()]
        while self.accept_punct(","):
            columns.append(self.column_definition())
        self.expect_punct(")")
        self.expect_punct(")")
        self.expect("AS")
        begin = self.tok
        self.expect("BEGIN")
        depth = 1
        while depth:
            tok = self.advance()
            if tok.kind is Kind.END:
                raise self.error("expected END to close the procedure's BEGIN", begin)
            if tok.is_word("BEGIN", "CASE"):
                depth += 1
            elif tok.is_word("END"):
                depth -= 1
        body = self.sql[begin.end : self.tokens[self.i - 1].start]
        statements = split_body(body)
        if not statements:
            raise self.error("the procedure's body has no statement", begin)
        return ast.CreateProcedure(name, param, tuple(columns), statements, or_replace)

    def link(self, or_replace: bool) -> ast.CreateLink:
        if_not_exists = self.accept("IF", "NOT", "EXISTS")
        if or_replace and if_not_exists:
            raise self.error("OR REPLACE and IF NOT EXISTS cannot both be given")
        name = self.qualified_ident("a link name")
        self.expect("AS")
        kind_tok = self.tok
        kind = self.ident("a link type (" + ", ".join(LINK_KINDS) + ")").upper()
        if kind not in LINK_KINDS:
            raise self.error("expected a link type: " + ", ".join(LINK_KINDS), kind_tok)
        opts: dict[str, Any] = {}
        while self.tok.is_word("CONFIG", "CREDENTIALS", "DESCRIPTION"):
            tok = self.advance()
            word = tok.value.lower()
            self.set_once(opts, word, self.string(f"{word.upper()} as a quoted string"), tok)
        return ast.CreateLink(
            name, kind, or_replace=or_replace, if_not_exists=if_not_exists, **opts
        )

    def column_definition(self) -> tuple[str, str]:
        """``name TYPE`` in a QUERY(...) list: the type as written, up to the next top-level
        comma or the closing parenthesis."""
        name = self.ident("a column name")
        first, depth = self.tok, 0
        while not (self.tok.kind is Kind.PUNCT and self.tok.value in ",)" and depth == 0):
            if self.tok.kind is Kind.END:
                raise self.error("expected the column's type and ')'")
            if self.tok.kind is Kind.PUNCT and self.tok.value == "(":
                depth += 1
            elif self.tok.kind is Kind.PUNCT and self.tok.value == ")":
                depth -= 1
            self.advance()
        if self.tok is first:
            raise self.error(f"expected the type of column {name}")
        return name, self.sql[first.start : self.tokens[self.i - 1].end]

    def source(self) -> ast.SourceSpec:
        kind_tok = self.tok
        kind = self.ident("a source (" + ", ".join(SOURCE_KINDS) + ")").upper()
        if kind not in SOURCE_KINDS:
            raise self.error("expected a source: " + ", ".join(SOURCE_KINDS), kind_tok)
        link = self.qualified_ident("the link's name") if kind == "LINK" else None
        what = "the topic or path" if link else f"the {kind} address"
        uri = self.string(f"{what} as a quoted string")
        config = credentials = None
        while self.tok.is_word("CONFIG", "CREDENTIALS"):
            word = self.advance().value.upper()
            if word == "CONFIG":
                config = self.string("CONFIG as a quoted JSON string")
            else:
                credentials = self.string("CREDENTIALS as a quoted JSON string")
        return ast.SourceSpec(kind, uri, config, credentials, link)

    def set_once(self, opts: dict[str, Any], key: str, value: Any, tok: Token) -> None:
        if opts.get(key) is not None:
            raise ParseError(f"{key.upper()} is given twice", self.sql, tok.start)
        opts[key] = value

    def load_option(self, opts: dict[str, Any]) -> None:
        tok = self.tok
        if self.accept("BATCH_INTERVAL"):
            self.set_once(opts, "batch_interval", self.integer("milliseconds"), tok)
        elif self.accept("MAX_PARTITIONS_PER_BATCH"):
            self.set_once(opts, "max_partitions_per_batch", self.integer("a count"), tok)
        elif self.accept("MAX_OFFSETS_PER_BATCH_PARTITION"):
            self.set_once(opts, "max_offsets_per_batch_partition", self.integer("a count"), tok)
        elif self.accept("MAX_RETRIES_PER_BATCH_PARTITION"):
            self.set_once(opts, "max_retries_per_batch_partition", self.integer("a count"), tok)
        elif self.accept("WITH", "TRANSFORM"):
            self.set_once(opts, "transform", self.transform(), tok)
        elif self.accept("REPLACE"):
            self.set_once(opts, "duplicates", "REPLACE", tok)
        elif self.accept("IGNORE"):
            self.set_once(opts, "duplicates", "IGNORE", tok)
        elif self.accept("SKIP"):
            kind = next((k for k in _SKIP_KINDS if self.accept(*k.split())), None)
            if kind is None:
                raise self.error("expected ALL, CONSTRAINT, DUPLICATE KEY or PARSER after SKIP")
            self.expect("ERRORS")
            self.set_once(opts, "skip_errors", kind, tok)
        elif self.accept("STOP_ON_ERROR"):
            self.set_once(opts, "stop_on_error", self.on_off(), tok)
        elif self.accept("RESOURCE", "POOL"):
            self.set_once(opts, "resource_pool", self.ident("a resource pool name"), tok)
        elif self.accept("RETRY_OPTIONS"):
            self.set_once(opts, "retry_options", self.string("RETRY_OPTIONS as a JSON string"), tok)
        elif self.at("ENABLE") or self.at("DISABLE"):
            self.enable_disable(opts, tok)
        else:
            raise self.error("expected a pipeline option or INTO TABLE")

    def enable_disable(self, opts: dict[str, Any], tok: Token) -> None:
        """``ENABLE|DISABLE OFFSETS METADATA GC`` or ``… OUT_OF_ORDER OPTIMIZATION``."""
        enable = self.advance().is_word("ENABLE")
        if self.accept("OFFSETS", "METADATA", "GC"):
            self.set_once(opts, "offsets_metadata_gc", enable, tok)
        else:
            self.expect("OUT_OF_ORDER", "OPTIMIZATION")
            self.set_once(opts, "out_of_order", enable, tok)

    def transform(self) -> ast.Transform:
        if self.accept("PYTHON"):
            target = self.string("'module:function'")
            args = self.string("JSON arguments") if self.tok.kind is Kind.STRING else ""
            return ast.Transform(target, args=args, python=True)
        self.expect_punct("(")
        uri = self.string("the transform URI")
        executable = args = ""
        if self.accept_punct(","):
            executable = self.string("the transform executable")
            if self.accept_punct(","):
                args = self.string("the transform arguments")
        self.expect_punct(")")
        return ast.Transform(uri, executable, args)

    def load_tail(self, opts: dict[str, Any]) -> None:
        if self.at_mapping():  # SingleStore also takes the mapping before FORMAT
            mappings = self.mappings()
            tok = self.tok
            self.expect("FORMAT")
            mapped = self.format_clause({}, mappings)
            if mapped is None:
                raise ParseError(
                    "a mapping (col <- path) is for FORMAT JSON, AVRO or PARQUET",
                    self.sql,
                    tok.start,
                )
            opts["format"] = mapped
            self.load_rest(opts)
            return
        csv: dict[str, Any] = {}
        fmt: ast.MappedSpec | None = None
        while True:
            tok = self.tok
            if self.accept("FORMAT"):
                if fmt is not None or csv.get("explicit"):
                    raise ParseError("FORMAT is given twice", self.sql, tok.start)
                fmt = self.format_clause(csv)
            elif self.tok.is_word("FIELDS", "COLUMNS"):
                self.advance()
                self.fields_clause(csv)
            elif self.accept("LINES"):
                self.lines_clause(csv)
            elif self.at("IGNORE") and self.peek().kind is Kind.NUMBER:
                self.advance()
                self.set_once(csv, "ignore_lines", self.integer("a line count"), tok)
                self.expect("LINES")
            elif self.accept("NULL", "DEFINED", "BY"):
                self.set_once(csv, "null_defined_by", self.string(), tok)
            elif self.accept("TRAILING", "NULLCOLS"):
                self.set_once(csv, "trailing_nullcols", True, tok)
            else:
                break
        if fmt is not None and len(csv) > 0:
            raise ParseError(
                f"FIELDS/LINES/IGNORE/NULL options apply to FORMAT CSV, not FORMAT {fmt.kind}",
                self.sql,
                tok.start,
            )
        opts["format"] = fmt or ast.CsvSpec(**csv)
        if self.tok.kind is Kind.PUNCT and self.tok.value == "(":
            if fmt is not None:
                raise self.error(f"FORMAT {fmt.kind} takes its field mapping right after FORMAT")
            opts["columns"] = self.column_list()
        self.load_rest(opts)

    def load_rest(self, opts: dict[str, Any]) -> None:
        """SET, WHERE and ON DUPLICATE KEY UPDATE, after the format."""
        if self.accept("SET"):
            opts["set"] = self.assignments()
        if self.accept("WHERE"):
            opts["where"] = self.expression("a WHERE condition")
        if self.accept("ON", "DUPLICATE", "KEY", "UPDATE"):
            opts["on_duplicate_key_update"] = self.assignments()

    def at_mapping(self) -> bool:
        """At ``(target <- …``: a field mapping, not a CSV column list."""
        if not (self.tok.kind is Kind.PUNCT and self.tok.value == "("):
            return False
        after = self.tokens[self.i + 2] if self.i + 2 < len(self.tokens) else None
        return after is not None and after.kind is Kind.PUNCT and after.value == "<-"

    def format_clause(
        self, csv: dict[str, Any], mappings: tuple[ast.FieldMapping, ...] = ()
    ) -> ast.MappedSpec | None:
        kind_tok = self.tok
        kind = self.ident("a format: CSV, JSON, AVRO or PARQUET").upper()
        if kind == "CSV":
            csv["explicit"] = True
            return None
        if kind not in ("JSON", "AVRO", "PARQUET"):
            raise self.error("expected a format: CSV, JSON, AVRO or PARQUET", kind_tok)
        registry = schema = None
        if kind == "AVRO" and self.accept("SCHEMA", "REGISTRY"):
            registry = self.string("the schema registry URL")
        if not mappings:
            mappings = self.mappings() if self.tok.value == "(" else ()
        if kind == "AVRO" and self.accept("SCHEMA"):
            schema = self.string("the Avro schema as a quoted JSON string")
        return ast.MappedSpec(kind, mappings, registry, schema)

    def fields_clause(self, csv: dict[str, Any]) -> None:
        progressed = False
        while True:
            tok = self.tok
            if self.accept("TERMINATED", "BY"):
                self.set_once(csv, "fields_terminated_by", self.string(), tok)
            elif self.accept("OPTIONALLY", "ENCLOSED", "BY"):
                self.set_once(csv, "enclosed_by", self.string(), tok)
                csv["optionally_enclosed"] = True
            elif self.accept("ENCLOSED", "BY"):
                self.set_once(csv, "enclosed_by", self.string(), tok)
            elif self.accept("ESCAPED", "BY"):
                self.set_once(csv, "escaped_by", self.string(), tok)
            elif progressed:
                return
            else:
                raise self.error("expected TERMINATED BY, ENCLOSED BY or ESCAPED BY")
            progressed = True

    def lines_clause(self, csv: dict[str, Any]) -> None:
        progressed = False
        while True:
            tok = self.tok
            if self.accept("STARTING", "BY"):
                self.set_once(csv, "lines_starting_by", self.string(), tok)
            elif self.accept("TERMINATED", "BY"):
                self.set_once(csv, "lines_terminated_by", self.string(), tok)
            elif progressed:
                return
            else:
                raise self.error("expected STARTING BY or TERMINATED BY")
            progressed = True

    def mappings(self) -> tuple[ast.FieldMapping, ...]:
        self.expect_punct("(")
        out = [self.mapping()]
        while self.accept_punct(","):
            out.append(self.mapping())
        self.expect_punct(")")
        return tuple(out)

    def mapping(self) -> ast.FieldMapping:
        target = self.target()
        self.expect_punct("<-")
        path: tuple[str, ...] = ()
        # ``%`` is the whole record; ``%::a::b`` (SingleStore's Avro form) is ``a::b``
        whole = self.accept_punct("%")
        if not whole or self.accept_punct("::"):
            keys = [self.path_key()]
            while self.accept_punct("::"):
                keys.append(self.path_key())
            path = tuple(keys)
        default = self.literal() if self.accept("DEFAULT") else None
        return ast.FieldMapping(target, path, default)

    def path_key(self) -> str:
        if self.tok.kind in (Kind.WORD, Kind.QUOTED, Kind.NUMBER):
            return self.advance().value
        raise self.error("expected a key of the path (back-quote keys with odd characters)")

    def target(self) -> str:
        if self.tok.kind is Kind.VARIABLE:
            return "@" + self.advance().value
        return self.ident("a column name or @variable")

    def literal(self) -> str:
        tok = self.tok
        if tok.kind is Kind.STRING:
            self.advance()
            return "'" + tok.value.replace("'", "''") + "'"
        sign = "-" if self.accept_punct("-") else ""
        if self.tok.kind is Kind.NUMBER:
            return sign + self.advance().value
        if not sign and self.tok.is_word("NULL", "TRUE", "FALSE"):
            return self.advance().value.upper()
        raise self.error("expected a literal (string, number, NULL, TRUE or FALSE)")

    def column_list(self) -> tuple[str, ...]:
        self.expect_punct("(")
        cols = [self.target()]
        while self.accept_punct(","):
            cols.append(self.target())
        self.expect_punct(")")
        return tuple(cols)

    def assignments(self) -> tuple[ast.Assignment, ...]:
        out = [self.assignment()]
        while self.accept_punct(","):
            out.append(self.assignment())
        return tuple(out)

    def assignment(self) -> ast.Assignment:
        column = self.ident("a column name")
        self.expect_punct("=")
        return ast.Assignment(column, self.expression("an expression"))

    def expression(self, what: str) -> str:
        """SQL text up to a top-level comma, WHERE, ON DUPLICATE KEY UPDATE or the end."""
        first = self.tok
        depth = 0
        last: Token | None = None
        while self.tok.kind is not Kind.END:
            tok = self.tok
            if tok.kind is Kind.PUNCT:
                if tok.value == "(":
                    depth += 1
                elif tok.value == ")":
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and tok.value in (",", ";"):
                    break
            elif depth == 0 and (tok.is_word("WHERE") or self.at("ON", "DUPLICATE")):
                break
            last = self.advance()
        if last is None:
            raise self.error(f"expected {what}", first)
        if depth:
            raise self.error("unbalanced parentheses in the expression")
        return self.sql[first.start : last.end]

    def lifecycle_name(self, *, if_word: str) -> dict[str, Any]:
        """``PIPELINE [IF <if_word>] name`` or ``ALL PIPELINES`` for START/STOP."""
        if self.accept("ALL", "PIPELINES"):
            return {"name": None}
        self.expect("PIPELINE")
        flag = self.accept("IF", *if_word.split())
        return {"name": self.qualified_ident("a pipeline name"), "flag": flag}

    def start(self) -> ast.StartPipeline:
        head = self.lifecycle_name(if_word="NOT RUNNING")
        if head["name"] is None:
            return ast.StartPipeline(None)
        foreground = self.accept("FOREGROUND")
        limit = None
        if foreground and self.accept("LIMIT"):
            limit = self.integer("a batch count")
            self.expect("BATCHES")
        return ast.StartPipeline(head["name"], head["flag"], foreground, limit)

    def stop(self) -> ast.StopPipeline:
        head = self.lifecycle_name(if_word="RUNNING")
        return ast.StopPipeline(head["name"], head.get("flag", False))

    def drop(self) -> ast.DropPipeline | ast.DropProcedure | ast.DropLink | ast.DropUser:
        if self.accept("USER"):
            if_exists = self.accept("IF", "EXISTS")
            return ast.DropUser(self.user_name(), if_exists)
        if self.accept("LINK"):
            if_exists = self.accept("IF", "EXISTS")
            return ast.DropLink(self.qualified_ident("a link name"), if_exists)
        if self.accept("PROCEDURE"):
            if_exists = self.accept("IF", "EXISTS")
            return ast.DropProcedure(self.qualified_ident("a procedure name"), if_exists)
        self.expect("PIPELINE")
        if_exists = self.accept("IF", "EXISTS")
        return ast.DropPipeline(self.qualified_ident("a pipeline name"), if_exists)

    def show(
        self,
    ) -> (
        ast.ShowPipelines
        | ast.ShowCreatePipeline
        | ast.ShowCreateProcedure
        | ast.ShowLinks
        | ast.ShowUsers
    ):
        if self.accept("USERS"):
            return ast.ShowUsers()
        if self.accept("GRANTS"):
            return ast.ShowUsers(True, self.user_name() if self.accept("FOR") else None)
        if self.accept("LINKS"):
            return ast.ShowLinks(self.ident("a database name") if self.accept("ON") else None)
        if self.accept("PIPELINES"):
            return ast.ShowPipelines(self.string("a LIKE pattern") if self.accept("LIKE") else None)
        if self.accept("CREATE", "PROCEDURE"):
            return ast.ShowCreateProcedure(self.qualified_ident("a procedure name"))
        self.expect("CREATE", "PIPELINE")
        name = self.qualified_ident("a pipeline name")
        return ast.ShowCreatePipeline(name, self.accept("EXTENDED"))

    def test(self) -> ast.TestPipeline:
        self.expect("PIPELINE")
        name = self.qualified_ident("a pipeline name")
        limit = self.integer("a row count") if self.accept("LIMIT") else None
        return ast.TestPipeline(name, limit, self.accept("STAGES"))

    def extract(self) -> ast.ExtractPipeline:
        self.expect("PIPELINE")
        name = self.qualified_ident("a pipeline name")
        partition = start = end = None
        if self.accept("FROM"):
            partition = self.string("the source partition as a quoted string")
            if self.accept("OFFSETS"):
                start = self.integer("the first offset")
                self.expect("TO")
                end = self.integer("the offset to stop before")
        self.expect("INTO", "OUTFILE")
        return ast.ExtractPipeline(name, self.string("the file name"), partition, start, end)

    def profile(self) -> ast.ProfilePipeline:
        self.expect("PIPELINE")
        return ast.ProfilePipeline(self.qualified_ident("a pipeline name"))

    def alter(self) -> ast.AlterPipeline | ast.CreateUser:
        if self.accept("USER"):
            return self.user_password(alter=True)
        self.expect("PIPELINE")
        opts: dict[str, Any] = {"name": self.qualified_ident("a pipeline name")}
        start, in_set = self.i, False
        while self.tok.kind is not Kind.END and self.tok.value != ";":
            if self.accept("SET"):
                in_set = True
            if not ((in_set and self.alter_setting(opts)) or self.alter_clause(opts)):
                raise self.error(
                    "expected SET <setting>, ENABLE/DISABLE …, STOP_ON_ERROR, RELOAD TRANSFORM, "
                    "DROP FILE/PARTITION/ORPHAN FILES, FIELDS or LINES"
                )
            self.accept_punct(",")
        if self.i == start:
            raise self.error("expected what to change")
        return ast.AlterPipeline(**opts)

    def alter_setting(self, opts: dict[str, Any]) -> bool:
        """One setting after SET (SingleStore: ``SET a …, b …`` or ``SET a … SET b …``)."""
        tok = self.tok
        if self.accept("OFFSETS"):
            if self.tok.is_word("EARLIEST", "LATEST"):
                value = self.advance().value.upper()
            else:
                value = self.string("EARLIEST, LATEST or a JSON object of offsets")
            self.set_once(opts, "offsets", value, tok)
        elif self.tok.is_word("CONFIG", "CREDENTIALS"):
            word = self.advance().value.lower()
            if self.tok.kind is Kind.PUNCT and self.tok.value == "::":
                self.set_once(opts, f"{word}_keys", self.key_values(), tok)
            else:
                self.set_once(opts, word, self.string(f"{word.upper()} as a JSON string"), tok)
        elif self.tok.is_word(*_ALTER_COUNTS):
            key = self.advance().value.lower()
            self.set_once(opts, key, self.integer("a count" if "max" in key else "ms"), tok)
        elif self.accept("RESOURCE", "POOL"):
            self.set_once(opts, "resource_pool", self.ident("a resource pool name"), tok)
        elif self.accept("TRANSFORM"):
            self.set_once(opts, "transform", self.transform(), tok)
        elif self.accept("LINK"):
            self.set_once(opts, "link", self.qualified_ident("a link name"), tok)
        elif self.accept("OFFSET", "CURSOR"):
            self.ident("a cursor type")
            self.refuse(opts, tok, "SET ")
        elif self.accept("BATCH_MATCHES_SNAPSHOT"):
            self.ident("ON, OFF or NONE")
            self.refuse(opts, tok, "SET ")
        elif self.accept("RETRY_OPTIONS"):
            if self.tok.kind is Kind.PUNCT and self.tok.value == "::":
                self.key_values()
            else:
                self.string("RETRY_OPTIONS as a JSON string")
            self.refuse(opts, tok, "SET ")
        else:
            return False
        return True

    def alter_clause(self, opts: dict[str, Any]) -> bool:
        tok = self.tok
        if self.accept("STOP_ON_ERROR"):
            if self.accept("NONE"):
                self.refuse(opts, tok)
            else:
                self.set_once(opts, "stop_on_error", self.on_off(), tok)
        elif self.at("ENABLE") or self.at("DISABLE"):
            self.enable_disable(opts, tok)
        elif self.accept("RELOAD", "TRANSFORM"):
            opts["reload_transform"] = True
        elif self.accept("DROP", "FILE"):
            self.set_once(opts, "drop_file", self.string("a file name"), tok)
        elif self.accept("DROP", "PARTITION"):
            self.set_once(opts, "drop_partition", self.string("a partition id"), tok)
        elif self.accept("DROP", "ORPHAN", "FILES"):
            opts["drop_orphan_files"] = True
        elif self.accept("DROP", "ORPHAN", "PARTITIONS"):
            opts["drop_orphan_partitions"] = True
        elif self.tok.is_word("FIELDS", "COLUMNS", "LINES"):
            csv: dict[str, Any] = dict(opts.get("csv", ()))
            if self.advance().is_word("LINES"):
                self.lines_clause(csv)
            else:
                self.fields_clause(csv)
            opts["csv"] = tuple(csv.items())
        else:
            return False
        return True

    def key_values(self) -> tuple[tuple[str, str], ...]:
        """``::key = 'value'[, ::key = 'value' …]`` (SET CONFIG / CREDENTIALS of one key)."""
        out = []
        while True:
            self.expect_punct("::")
            key = self.path_key()
            self.expect_punct("=")
            out.append((key, self.string("the value as a quoted string")))
            more = self.peek().kind is Kind.PUNCT and self.peek().value == "::"
            if not (more and self.accept_punct(",")):
                return tuple(out)

    def refuse(self, opts: dict[str, Any], first: Token, prefix: str = "") -> None:
        """Keep the clause from ``first`` to here, as written, to refuse it when run."""
        clause = prefix + self.sql[first.start : self.tokens[self.i - 1].end]
        opts["refused"] = (*opts.get("refused", ()), clause)

    def replay(self) -> ast.ReplayErrors:
        self.expect("ERRORS", "FOR", "PIPELINE")
        name = self.qualified_ident("a pipeline name")
        where = self.expression("a WHERE condition") if self.accept("WHERE") else None
        return ast.ReplayErrors(name, where)

    def clear(self) -> ast.ClearErrors:
        self.expect("PIPELINE", "ERRORS")
        if self.tok.kind in (Kind.WORD, Kind.QUOTED):
            return ast.ClearErrors(self.qualified_ident("a pipeline name"))
        return ast.ClearErrors()

    # -- users --------------------------------------------------------------------------------

    def user_name(self) -> str:
        """``name``, ``'name'`` or MySQL's ``'name'@'host'``: a user is the same from any host
        (the host part must be ``%``, MySQL's any host, if given)."""
        name = (
            self.string("a user name")
            if self.tok.kind is Kind.STRING
            else self.ident("a user name")
        )
        if self.accept_punct("@"):
            host = self.tok
            if self.string("a host as a quoted string") != "%":
                raise self.error(
                    "a user is the same from every host here: give '%' or no host", host
                )
        return name

    def user_password(self, *, if_not_exists: bool = False, alter: bool = False) -> ast.CreateUser:
        name = self.user_name()
        self.expect("IDENTIFIED", "BY")
        password = self.string("the password as a quoted string")
        return ast.CreateUser(name, password, if_not_exists, alter)

    def grant(self, *, revoke: bool = False) -> ast.Grant:
        tok = self.tok
        if self.accept("ALL"):
            self.accept("PRIVILEGES")
            privilege = "ALL"
        elif self.accept("SELECT"):
            privilege = "SELECT"
        else:
            raise self.error("expected SELECT (read-only) or ALL [PRIVILEGES] (full access)", tok)
        self.expect("ON")
        on = self.tok
        whole = "privileges apply to the whole database: ON *.* (or ON db.*)"
        if self.tok.kind is Kind.WORD or self.tok.kind is Kind.QUOTED:
            self.ident()
            if not self.accept_punct("."):
                raise self.error(whole, on)
        if not self.accept_punct("*") or (self.accept_punct(".") and not self.accept_punct("*")):
            raise self.error(whole, on)
        self.expect("FROM" if revoke else "TO")
        return ast.Grant(privilege, self.user_name(), revoke)

    def revoke(self) -> ast.Grant:
        return self.grant(revoke=True)


STATEMENT_PARSERS: dict[str, Callable[[_Parser], ast.Statement]] = {
    "GRANT": _Parser.grant,
    "REVOKE": _Parser.revoke,
    "CREATE": _Parser.create,
    "START": _Parser.start,
    "STOP": _Parser.stop,
    "DROP": _Parser.drop,
    "SHOW": _Parser.show,
    "TEST": _Parser.test,
    "ALTER": _Parser.alter,
    "REPLAY": _Parser.replay,
    "CLEAR": _Parser.clear,
    "EXTRACT": _Parser.extract,
    "PROFILE": _Parser.profile,
}
_ALTER_COUNTS = (
    "BATCH_INTERVAL",
    "MAX_PARTITIONS_PER_BATCH",
    "MAX_OFFSETS_PER_BATCH_PARTITION",
    "MAX_RETRIES_PER_BATCH_PARTITION",
)
