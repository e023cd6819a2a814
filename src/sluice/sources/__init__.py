"""Sources: where a pipeline reads from, keyed by the SQL keyword after LOAD DATA."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sluice.errors import NotSupportedError, SourceError
from sluice.options import json_object
from sluice.sources.base import Source
from sluice.sources.fs import FileSource
from sluice.sources.kafka import KafkaSource
from sluice.sources.objects import AzureSource, gcs_source
from sluice.sources.rabbitmq import RabbitMQSource
from sluice.sources.s3 import S3Source
from sluice.sql import ast
from sluice.vocab import PartitionBatch

#: Each source's class (or a function that picks one from its credentials), by keyword.
SOURCES: dict[str, Callable[..., Source]] = {
    "KAFKA": KafkaSource,
    "FS": FileSource,
    "S3": S3Source,
    "AZURE": AzureSource,
    "GCS": gcs_source,
    "RABBITMQ": RabbitMQSource,
}
#: Sources SingleStore's grammar names that Sluice parses and keeps but does not read yet: why.
NOT_YET = {
    "HDFS": (
        "LOAD DATA HDFS is not supported yet: it needs Hadoop's Java client (libhdfs) or a "
        "WebHDFS endpoint, and an HDFS server to test against"
    ),
    "STAGE": (
        "LOAD DATA STAGE reads SingleStore Helios' Stage (a workspace's file store), which "
        "Sluice does not have: load the files from a path (LOAD DATA FS) or a bucket "
        "(LOAD DATA S3)"
    ),
    "HTTP": "HTTP links are for SingleStore's SELECT … INTO and BACKUP; pipelines cannot read them",
    "MONGODB": "MONGODB sources are not supported: Sluice does not read MongoDB's change streams",
    "MYSQL": "MYSQL sources are not supported: Sluice does not read MySQL's binary log",
    "LINK": "LOAD DATA LINK names a link the engine resolves first (CREATE LINK)",
}


def build_source(
    spec: ast.SourceSpec,
    *,
    config: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
    pipeline: str,
    record_end: Callable[[bytes], int] | None = None,
    read_file: Callable[..., Any] | None = None,
) -> Source:
    """The source of ``spec``, by its keyword. ``record_end(data)`` says where the records of a
    file's bytes end (see ``Format.record_end``), so that a file larger than a batch can be cut
    there. ``config`` and ``credentials`` replace the spec's CONFIG and CREDENTIALS (the engine
    takes out the keys that are not the source's)."""
    cls = SOURCES.get(spec.kind)
    if cls is None:
        supported = ", ".join(SOURCES)
        reason = NOT_YET.get(spec.kind, f"LOAD DATA {spec.kind} is not supported yet")
        raise NotSupportedError(f"{reason} (supported: {supported})")
    return cls(
        spec.uri,
        json_object(spec.config, "CONFIG", SourceError) if config is None else config,
        json_object(spec.credentials, "CREDENTIALS", SourceError)
        if credentials is None
        else credentials,
        pipeline=pipeline,
        record_end=record_end,
        read_file=read_file,
    )


__all__ = ["NOT_YET", "SOURCES", "PartitionBatch", "Source", "build_source"]
