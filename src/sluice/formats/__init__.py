"""Formats: raw records → Arrow, keyed by the SQL keyword after FORMAT."""

from __future__ import annotations

from collections.abc import Sequence

from sluice.errors import NotSupportedError
from sluice.formats.base import Format, ParsedBatch, RecordError
from sluice.formats.csv import CsvFormat
from sluice.formats.json import JsonFormat
from sluice.sql import ast

FORMATS: dict[str, type[Format]] = {"CSV": CsvFormat, "JSON": JsonFormat}


def build_format(spec: ast.FormatSpec, targets: Sequence[str]) -> Format:
    """The format of ``spec``, by its keyword; ``targets`` are the names a CSV record's fields
    load into."""
    cls = FORMATS.get(spec.kind)
    if cls is None:
        supported = ", ".join(FORMATS)
        raise NotSupportedError(f"FORMAT {spec.kind} is not supported yet (supported: {supported})")
    return cls(spec, targets)


__all__ = ["FORMATS", "Format", "ParsedBatch", "RecordError", "build_format"]
