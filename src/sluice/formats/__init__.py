"""Formats: raw records → Arrow, keyed by the SQL keyword after FORMAT."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sluice.errors import NotSupportedError
from sluice.formats.avro import REGISTRY_PREFIX, AvroFormat
from sluice.formats.base import Format, ParsedBatch, RecordError
from sluice.formats.csv import CsvFormat
from sluice.formats.json import JsonFormat
from sluice.formats.parquet import ParquetFormat
from sluice.sql import ast

FORMATS: dict[str, type[Format]] = {
    "CSV": CsvFormat,
    "JSON": JsonFormat,
    "AVRO": AvroFormat,
    "PARQUET": ParquetFormat,
}


def build_format(
    spec: ast.FormatSpec, targets: Sequence[str], *, settings: Mapping[str, Any] | None = None
) -> Format:
    """The format of ``spec``, by its keyword; ``targets`` are the names a CSV record's fields
    load into; ``settings`` the pipeline's CONFIG and CREDENTIALS keys that are the format's
    (``schema.registry.*``, without the prefix)."""
    cls = FORMATS.get(spec.kind)
    if cls is None:
        supported = ", ".join(FORMATS)
        raise NotSupportedError(f"FORMAT {spec.kind} is not supported yet (supported: {supported})")
    return cls(spec, targets, settings=settings)


__all__ = ["FORMATS", "REGISTRY_PREFIX", "Format", "ParsedBatch", "RecordError", "build_format"]
