from __future__ import annotations

import re

import pytest

from sluice.errors import ParseError
from sluice.sql import ast, parse, render, split_statements
from sluice.sql.lexer import replace_relation

ROUND_TRIPS = [
    # sources, options, duplicate handling
    "CREATE PIPELINE p AS LOAD DATA KAFKA 'h:9092/t' INTO TABLE t",
    "create or replace pipeline if not exists `my pipe` as load data kafka 'a,b:1/t' "
    'config \'{"fetch.min.bytes": 1}\' credentials \'{"sasl.password": "x"}\' '
    "batch_interval 50 max_partitions_per_batch 2 max_offsets_per_batch_partition 10 "
    "replace into table db.t",
    "CREATE PIPELINE p AS LOAD DATA FS '/data/*.csv' IGNORE INTO TABLE t",
    "CREATE AGGREGATOR PIPELINE p AS LOAD DATA FS '/x' RESOURCE POOL rp "
    "ENABLE OUT_OF_ORDER OPTIMIZATION INTO TABLE t",
    "CREATE PIPELINE p AS LOAD DATA S3 'b/p*' CONFIG '{}' CREDENTIALS '{}' "
    "SKIP DUPLICATE KEY ERRORS STOP_ON_ERROR OFF MAX_RETRIES_PER_BATCH_PARTITION 3 "
    "WITH TRANSFORM ('file:///t.py', 'python3', '-u') INTO PROCEDURE proc",
    "CREATE PIPELINE p AS LOAD DATA FS '/x' SKIP PARSER ERRORS INTO TABLE t",
    "CREATE PIPELINE p AS LOAD DATA FS '/x' WITH TRANSFORM PYTHON 'm.n:f' INTO TABLE t",
    "CREATE PIPELINE p AS LOAD DATA FS '/x' WITH TRANSFORM PYTHON '/t/m.py:f' '{\"k\": 1}' "
    "INTO TABLE t",
    # CSV options
    "CREATE PIPELINE p AS LOAD DATA FS '/x' INTO TABLE t FORMAT CSV "
    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' "
    "LINES STARTING BY '>' TERMINATED BY '\\r\\n' IGNORE 2 LINES NULL DEFINED BY 'NULL' "
    "(a, @b, `c d`) SET e = upper(@b), f = 'x,y' WHERE a > 0 AND @b <> ''",
    "CREATE PIPELINE p AS LOAD DATA FS '/x' INTO TABLE t COLUMNS TERMINATED BY '\\t' "
    "ENCLOSED BY ''",
    # JSON mapping
    "CREATE PIPELINE p AS LOAD DATA KAFKA 'h/t' INTO TABLE t FORMAT JSON "
    "(id <- id, temp <- reading::temp DEFAULT NULL, name <- a::`b c`::d DEFAULT 'n''a', "
    "n <- x DEFAULT -1.5, doc <- %, @v <- v DEFAULT TRUE) "
    "SET total = id + (SELECT 1), w = coalesce(@v, 0) WHERE (temp > 0) "
    "ON DUPLICATE KEY UPDATE temp = VALUES(temp), n = n + 1",
    "CREATE PIPELINE p AS LOAD DATA KAFKA 'h/t' INTO TABLE t FORMAT AVRO "
    "SCHEMA REGISTRY 'http://r:8081' (a <- a) SCHEMA '{\"type\": \"record\"}'",
    "CREATE PIPELINE p AS LOAD DATA FS '/x.parquet' INTO TABLE t FORMAT PARQUET (a <- a)",
    # lifecycle
    "START PIPELINE p",
    "START PIPELINE IF NOT RUNNING p FOREGROUND",
    "START PIPELINE p FOREGROUND LIMIT 3 BATCHES",
    "START ALL PIPELINES",
    "STOP PIPELINE p",
    "STOP PIPELINE IF RUNNING p",
    "STOP ALL PIPELINES",
    "DROP PIPELINE p",
    "DROP PIPELINE IF EXISTS p",
    "SHOW PIPELINES",
    "SHOW CREATE PIPELINE p",
    "SHOW CREATE PIPELINE p EXTENDED",
    "TEST PIPELINE p",
    "TEST PIPELINE p LIMIT 5",
    "ALTER PIPELINE p SET OFFSETS EARLIEST",
    "ALTER PIPELINE p SET OFFSETS LATEST",
    'ALTER PIPELINE p SET OFFSETS \'{"0": 42, "1": 7}\'',
    "ALTER PIPELINE p SET BATCH_INTERVAL 10 SET MAX_OFFSETS_PER_BATCH_PARTITION 5",
    "ALTER PIPELINE p SET MAX_RETRIES_PER_BATCH_PARTITION 2 STOP_ON_ERROR ON",
    "ALTER PIPELINE p SET TRANSFORM ('u', 'e', 'a') DROP FILE '/x/a.csv'",
    "REPLAY ERRORS FOR PIPELINE p",
    "REPLAY ERRORS FOR PIPELINE p WHERE ERROR_KIND = 'Parse' AND `OFFSET` > 10",
    "CLEAR PIPELINE ERRORS",
    "CLEAR PIPELINE ERRORS p",
    "TEST PIPELINE p LIMIT 3 STAGES",
    # users and grants (MySQL's 'name'@'%' is the same user)
    "CREATE USER bob IDENTIFIED BY 'pw'",
    "CREATE USER IF NOT EXISTS 'al'@'%' IDENTIFIED BY 'it''s'",
    "ALTER USER bob IDENTIFIED BY 'new'",
    "DROP USER IF EXISTS bob",
    "GRANT SELECT ON *.* TO bob",
    "GRANT ALL PRIVILEGES ON db.* TO bob",
    "REVOKE ALL ON * FROM bob",
    "SHOW USERS",
    "SHOW GRANTS FOR bob",
    # MySQL's double-quoted strings, SingleStore's clauses with no effect here
    'CREATE PIPELINE p AS LOAD DATA KAFKA "h:9092/t" CONFIG "{}" DISABLE OFFSETS METADATA GC '
    "INTO TABLE t",
    "SHOW PIPELINES LIKE 'sens%'",
    "CREATE PIPELINE db.p AS LOAD DATA FS '/x' INTO TABLE db.t",
    "START PIPELINE db.p FOREGROUND",
    # every source SingleStore's grammar names; the link form names its link
    "CREATE PIPELINE p AS LOAD DATA AZURE 'c/p*' CONFIG '{}' CREDENTIALS '{}' INTO TABLE t",
    "CREATE PIPELINE p AS LOAD DATA GCS 'b/p*' INTO TABLE t",
    "CREATE PIPELINE p AS LOAD DATA HDFS 'hdfs://h:8020/p*' INTO TABLE t",
    "CREATE PIPELINE p AS LOAD DATA RABBITMQ 'h:5552/s' INTO TABLE t",
    "CREATE PIPELINE p AS LOAD DATA FS '/x' INTO TABLE t LINES TERMINATED BY ';' "
    "FIELDS TERMINATED BY ',' TRAILING NULLCOLS IGNORE 1 LINES (a, b)",
    "CREATE PIPELINE p AS LOAD DATA LINK db.l 'topic' INTO TABLE t FORMAT JSON (a <- a)",
    # procedures
    "CREATE OR REPLACE PROCEDURE db.p (b QUERY(a VARCHAR(20), n DECIMAL(10, 2))) AS BEGIN "
    "INSERT INTO t SELECT a, CASE WHEN n > 1 THEN 'x;y' END FROM b; DELETE FROM u; END",
    "DROP PROCEDURE IF EXISTS p",
    "SHOW CREATE PROCEDURE p",
]


@pytest.mark.parametrize("sql", ROUND_TRIPS)
def test_round_trip(sql: str) -> None:
    stmt = parse(sql)
    assert not isinstance(stmt, ast.Passthrough)
    assert parse(render(stmt)) == stmt
    assert render(parse(render(stmt))) == render(stmt)


def test_fields_are_parsed_as_written() -> None:
    stmt = parse(next(s for s in ROUND_TRIPS if "FORMAT JSON" in s))
    assert isinstance(stmt, ast.CreatePipeline)
    assert isinstance(stmt.format, ast.MappedSpec)
    m = stmt.format.mappings
    assert m[1] == ast.FieldMapping("temp", ("reading", "temp"), "NULL")
    assert m[2] == ast.FieldMapping("name", ("a", "b c", "d"), "'n''a'")
    assert m[3].default == "-1.5"
    assert m[4].path == ()
    assert m[5].target == "@v"
    assert stmt.set == (
        ast.Assignment("total", "id + (SELECT 1)"),
        ast.Assignment("w", "coalesce(@v, 0)"),
    )
    assert stmt.where == "(temp > 0)"
    assert stmt.on_duplicate_key_update[0] == ast.Assignment("temp", "VALUES(temp)")


def test_csv_options_and_escapes() -> None:
    stmt = parse(next(s for s in ROUND_TRIPS if "FORMAT CSV" in s))
    assert isinstance(stmt, ast.CreatePipeline)
    fmt = stmt.format
    assert isinstance(fmt, ast.CsvSpec)
    assert (fmt.fields_terminated_by, fmt.enclosed_by, fmt.escaped_by) == (",", '"', "\\")
    assert fmt.optionally_enclosed and fmt.explicit
    assert (fmt.lines_starting_by, fmt.lines_terminated_by) == (">", "\r\n")
    assert (fmt.ignore_lines, fmt.null_defined_by) == (2, "NULL")
    assert stmt.columns == ("a", "@b", "c d")


def test_secrets_are_hidden_when_asked() -> None:
    stmt = parse(ROUND_TRIPS[1])
    assert "sasl.password" in render(stmt)
    assert "sasl.password" not in render(stmt, hide_secrets=True)


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1", "create table pipeline (a int)", "START TRANSACTION", "SHOW TABLES",
     "  -- c\n insert into t values ('START PIPELINE p')"],
)  # fmt: skip
def test_other_sql_passes_through(sql: str) -> None:
    assert parse(sql) == ast.Passthrough(sql.strip())


@pytest.mark.parametrize(
    ("sql", "line", "column", "fragment"),
    [
        ("CREATE PIPELINE p AS LOAD DATA KAFKA INTO TABLE t", 1, 38, "KAFKA address"),
        ("CREATE PIPELINE p AS\nLOAD DATA KAFKA 'h/t'\n  INTO TABEL t", 3, 8, "expected TABLE"),
        ("CREATE PIPELINE p AS LOAD DATA FTP 'x' INTO TABLE t", 1, 32, "KAFKA, FS, S3, AZURE"),
        ("START PIPELINE", 1, 15, "pipeline name"),
        ("CREATE PIPELINE p AS LOAD DATA FS 'x' INTO TABLE t FORMAT JSON (a <- )", 1, 70, "key"),
        ("CREATE PIPELINE p AS LOAD DATA FS 'x' BATCH_INTERVAL 1 BATCH_INTERVAL 2 INTO TABLE t",
         1, 56, "given twice"),
        ("CREATE PIPELINE p AS LOAD DATA FS 'x' INTO TABLE t SET a = (1", 1, 62, "parenthes"),
        ("CREATE PIPELINE p AS LOAD DATA FS 'unterminated INTO TABLE t", 1, 35, "unterminated"),
        ("STOP PIPELINE p extra", 1, 17, "unexpected text"),
    ],
)  # fmt: skip
def test_errors_point_at_the_token(sql: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(sql)
    err = info.value
    assert (err.line, err.column) == (line, column), str(err)
    assert fragment in err.message
    caret_line = str(err).splitlines()[-1]
    assert caret_line.index("^") - 2 == column - 1


def test_split_statements_respects_strings_and_comments() -> None:
    script = (
        "SELECT 'a;b'; -- comment; here\n"
        "CREATE PIPELINE p AS LOAD DATA FS 'x\\';y' INTO TABLE t;;\n"
        "/* ; */ SELECT 2"
    )
    assert split_statements(script) == [
        "SELECT 'a;b'",
        "-- comment; here\nCREATE PIPELINE p AS LOAD DATA FS 'x\\';y' INTO TABLE t",
        "/* ; */ SELECT 2",
    ]


def test_double_quoted_strings_are_strings_where_a_string_is_expected() -> None:
    stmt = parse('CREATE PIPELINE "p" AS LOAD DATA KAFKA "h:9092/t" INTO TABLE "t"')
    assert isinstance(stmt, ast.CreatePipeline)
    assert (stmt.name, stmt.source.uri, stmt.table) == ("p", "h:9092/t", "t")
    with pytest.raises(ParseError, match="expected the KAFKA address as a quoted string"):
        parse("CREATE PIPELINE p AS LOAD DATA KAFKA `h:9092/t` INTO TABLE t")


def test_a_procedure_is_one_statement_and_its_body_reads_the_batch_by_name() -> None:
    script = (
        "CREATE PROCEDURE p (batch QUERY(\n  a INT)) AS BEGIN\n"
        "  INSERT INTO t SELECT CASE WHEN a > 0 THEN 1 END FROM batch;\n"
        "  INSERT INTO u SELECT 'batch' FROM Batch AS \"batch\";\n"
        "END; SELECT 1"
    )
    first, second = split_statements(script)
    assert second == "SELECT 1"
    stmt = parse(first)
    assert isinstance(stmt, ast.CreateProcedure)
    assert stmt.columns == (("a", "INT"),)
    assert stmt.body == (
        "INSERT INTO t SELECT CASE WHEN a > 0 THEN 1 END FROM batch",
        "INSERT INTO u SELECT 'batch' FROM Batch AS \"batch\"",
    )
    assert (
        replace_relation(stmt.body[1], "batch", "x")
        == "INSERT INTO u SELECT 'batch' FROM x AS \"batch\""
    )
    # a CREATE PROCEDURE without a QUERY parameter is the store's own
    assert isinstance(parse("CREATE PROCEDURE q() LANGUAGE SQL AS $$ SELECT 1 $$"), ast.Passthrough)


def test_an_error_at_the_very_end_still_shows_its_line() -> None:
    with pytest.raises(ParseError) as info:
        parse("CREATE PIPELINE \n")
    assert (info.value.line, info.value.column) == (2, 1)
    assert str(info.value).endswith("\n  \n  ^")


def test_a_mapping_may_come_before_format_as_singlestore_writes_it() -> None:
    before = parse(
        "CREATE PIPELINE p AS LOAD DATA S3 'b/x' INTO TABLE t (`a` <- %, b <- x::y DEFAULT NULL) "
        "FORMAT AVRO SET c = 1"
    )
    after = parse(
        "CREATE PIPELINE p AS LOAD DATA S3 'b/x' INTO TABLE t FORMAT AVRO "
        "(a <- %, b <- x::y DEFAULT NULL) SET c = 1"
    )
    assert before == after
    with pytest.raises(ParseError, match=r"mapping \(col <- path\) is for FORMAT JSON"):
        parse("CREATE PIPELINE p AS LOAD DATA FS '/x' INTO TABLE t (a <- a) FORMAT CSV")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("GRANT INSERT ON *.* TO bob", "expected SELECT (read-only) or ALL"),
        ("GRANT SELECT ON t TO bob", "privileges apply to the whole database"),
        ("CREATE USER 'a'@'localhost' IDENTIFIED BY 'x'", "give '%' or no host"),
        ("CREATE USER bob", "expected IDENTIFIED"),
    ],
)
def test_users_and_grants_refuse_what_they_do_not_mean(sql: str, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        parse(sql)


def test_a_password_is_hidden_when_shown() -> None:
    shown = render(parse("CREATE USER bob IDENTIFIED BY 'secret'"), hide_secrets=True)
    assert shown == "CREATE USER bob IDENTIFIED BY '<hidden>'"
