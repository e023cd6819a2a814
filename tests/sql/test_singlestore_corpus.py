"""Every statement of ``singlestore_corpus.sql`` (SingleStore's documented pipeline grammar, in
the shapes its documentation shows) parses, renders back to SQL that parses the same, and, where
Sluice does not do what it asks, is refused at run time by a message naming what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.engine.runtime import check_supported
from sluice.errors import NotSupportedError
from sluice.sources import SOURCES, build_source
from sluice.sql import ast, parse, render, split_statements

CORPUS = [
    "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    for sql in split_statements((Path(__file__).parent / "singlestore_corpus.sql").read_text())
]


def test_the_corpus_is_the_whole_grammar() -> None:
    kinds = {type(parse(sql)).__name__ for sql in CORPUS}
    assert len(CORPUS) >= 120
    assert "Passthrough" not in kinds  # every statement is one Sluice handles itself
    assert kinds >= {
        "CreatePipeline", "AlterPipeline", "StartPipeline", "StopPipeline", "DropPipeline",
        "TestPipeline", "ShowPipelines", "ShowCreatePipeline", "ExtractPipeline",
        "ProfilePipeline", "CreateLink", "DropLink", "ShowLinks", "ReplayErrors", "ClearErrors",
    }  # fmt: skip


@pytest.mark.parametrize("sql", CORPUS, ids=[f"{i:03}" for i in range(len(CORPUS))])
def test_each_statement_parses_and_renders_back(sql: str) -> None:
    stmt = parse(sql)
    assert parse(render(stmt)) == stmt


# What a corpus pipeline may be refused for, by the message: a source Sluice cannot read, or a
# clause it keeps but does not do. Anything else raised here is a defect.
REFUSALS = {
    "HDFS": "needs Hadoop's Java client",
    "STAGE": "SingleStore Helios' Stage",
    "MONGODB": "MongoDB",
    "MYSQL": "binary log",
}


@pytest.mark.parametrize(
    "sql",
    [s for s in CORPUS if isinstance(parse(s), ast.CreatePipeline)],
    ids=lambda s: " ".join(s.split()[4:7])[:40],
)
def test_each_pipeline_runs_or_is_refused_by_name(sql: str) -> None:
    stmt = parse(sql)
    assert isinstance(stmt, ast.CreatePipeline)
    try:
        warnings = check_supported(stmt)
        if stmt.source.kind not in SOURCES and stmt.source.kind != "LINK":
            build_source(stmt.source, pipeline="p")
    except NotSupportedError as exc:
        assert any(text in str(exc) for text in REFUSALS.values()), exc
        return
    assert all("accepted for compatibility" in w for w in warnings)
    assert stmt.source.kind in SOURCES or stmt.source.kind == "LINK"
