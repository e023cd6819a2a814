"""Sources: where a pipeline reads from, keyed by the SQL keyword after LOAD DATA."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sluice.errors import NotSupportedError, SourceError
from sluice.sources.base import PartitionBatch, Source
from sluice.sources.fs import FileSource
from sluice.sources.kafka import KafkaSource
from sluice.sql import ast

SOURCES: dict[str, type[Source]] = {"KAFKA": KafkaSource, "FS": FileSource}


def build_source(
    spec: ast.SourceSpec,
    *,
    pipeline: str,
    record_end: Callable[[bytes], int] | None = None,
) -> Source:
    """The source of ``spec``. ``record_end(data)`` says where the records of a file's bytes
    end (see ``Format.record_end``), so that a file larger than a batch can be cut there."""
    config = _json_object(spec.config, "CONFIG")
    if spec.kind == "KAFKA":
        credentials = _json_object(spec.credentials, "CREDENTIALS")
        return KafkaSource(spec.uri, config, credentials, pipeline=pipeline)
    if spec.kind == "FS":
        return FileSource(spec.uri, config, pipeline=pipeline, record_end=record_end)
    raise NotSupportedError(f"LOAD DATA {spec.kind} is not supported yet (supported: KAFKA, FS)")


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SourceError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SourceError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


__all__ = ["SOURCES", "PartitionBatch", "Source", "build_source"]
