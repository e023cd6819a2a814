"""Pipeline statements as frozen dataclasses. Expressions (SET, WHERE, …) are kept as SQL text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # KAFKA | FS | S3 | AZURE | GCS | HDFS | STAGE | RABBITMQ | LINK
    uri: str
    config: str | None = None  # JSON text
    credentials: str | None = None  # JSON text; never rendered for display
    link: str | None = None  # LOAD DATA LINK name '…': the link's name


@dataclass(frozen=True)
class CsvSpec:
    """``FORMAT CSV`` with MySQL ``LOAD DATA`` defaults (tab-separated, no enclosure)."""

    fields_terminated_by: str = "\t"
    enclosed_by: str = ""
    optionally_enclosed: bool = False
    escaped_by: str = "\\"
    lines_starting_by: str = ""
    lines_terminated_by: str = "\n"
    ignore_lines: int = 0
    null_defined_by: str | None = None
    trailing_nullcols: bool = False  # TRAILING NULLCOLS: short records fill with NULL
    explicit: bool = False  # FORMAT CSV was written (it is the default)
    kind: ClassVar[str] = "CSV"


@dataclass(frozen=True)
class FieldMapping:
    """``target <- path [DEFAULT literal]``; ``path == ()`` is ``%``, the whole record."""

    target: str  # column name, or "@var"
    path: tuple[str, ...]
    default: str | None = None  # SQL literal text


@dataclass(frozen=True)
class MappedSpec:
    """``FORMAT JSON | AVRO | PARQUET (target <- path, ...)``."""

    kind: str  # JSON | AVRO | PARQUET
    mappings: tuple[FieldMapping, ...] = ()
    schema_registry: str | None = None
    schema: str | None = None


FormatSpec = CsvSpec | MappedSpec


@dataclass(frozen=True)
class Assignment:
    column: str
    expr: str


@dataclass(frozen=True)
class Transform:
    uri: str
    executable: str = ""
    args: str = ""
    python: bool = False  # WITH TRANSFORM PYTHON 'module:function'


@dataclass(frozen=True)
class CreatePipeline:
    name: str
    source: SourceSpec
    table: str
    format: FormatSpec = field(default_factory=CsvSpec)
    or_replace: bool = False
    if_not_exists: bool = False
    aggregator: bool = False
    batch_interval: int | None = None
    max_partitions_per_batch: int | None = None
    max_offsets_per_batch_partition: int | None = None
    max_retries_per_batch_partition: int | None = None
    transform: Transform | None = None
    duplicates: str | None = None  # REPLACE | IGNORE
    skip_errors: str | None = None  # ALL | CONSTRAINT | DUPLICATE KEY | PARSER
    stop_on_error: bool | None = None
    resource_pool: str | None = None
    retry_options: str | None = None  # RETRY_OPTIONS '<json>'
    out_of_order: bool | None = None
    offsets_metadata_gc: bool | None = None  # ENABLE/DISABLE OFFSETS METADATA GC
    into_procedure: bool = False
    columns: tuple[str, ...] | None = None  # CSV column list: names and "@vars"
    set: tuple[Assignment, ...] = ()
    where: str | None = None
    on_duplicate_key_update: tuple[Assignment, ...] = ()


@dataclass(frozen=True)
class StartPipeline:
    name: str | None  # None: START ALL PIPELINES
    if_not_running: bool = False
    foreground: bool = False
    limit_batches: int | None = None


@dataclass(frozen=True)
class StopPipeline:
    name: str | None  # None: STOP ALL PIPELINES
    if_running: bool = False


@dataclass(frozen=True)
class DropPipeline:
    name: str
    if_exists: bool = False


@dataclass(frozen=True)
class ShowPipelines:
    like: str | None = None  # SHOW PIPELINES LIKE 'pattern'


@dataclass(frozen=True)
class ShowCreatePipeline:
    name: str
    extended: bool = False


@dataclass(frozen=True)
class TestPipeline:
    name: str
    limit: int | None = None
    stages: bool = False  # STAGES: the rows after every stage, not only those loaded


@dataclass(frozen=True)
class AlterPipeline:
    name: str
    offsets: str | None = None  # EARLIEST | LATEST | JSON text
    batch_interval: int | None = None
    max_partitions_per_batch: int | None = None
    max_offsets_per_batch_partition: int | None = None
    max_retries_per_batch_partition: int | None = None
    resource_pool: str | None = None
    transform: Transform | None = None
    stop_on_error: bool | None = None
    out_of_order: bool | None = None
    offsets_metadata_gc: bool | None = None
    config: str | None = None  # SET CONFIG '<json>': the whole CONFIG
    credentials: str | None = None  # SET CREDENTIALS '<json>'; never rendered for display
    config_keys: tuple[tuple[str, str], ...] = ()  # SET CONFIG ::key = 'value', ...
    credentials_keys: tuple[tuple[str, str], ...] = ()
    link: str | None = None  # SET LINK name
    csv: tuple[tuple[str, str | bool], ...] = ()  # FIELDS / LINES: CsvSpec field → value
    reload_transform: bool = False
    drop_file: str | None = None
    drop_partition: str | None = None
    drop_orphan_files: bool = False
    drop_orphan_partitions: bool = False
    refused: tuple[str, ...] = ()  # clauses parsed and kept, refused when run (as written)


@dataclass(frozen=True)
class ReplayErrors:
    """``REPLAY ERRORS FOR PIPELINE p [WHERE cond]``: load stored rejected records again."""

    name: str
    where: str | None = None  # over the columns of information_schema.PIPELINES_ERRORS


@dataclass(frozen=True)
class ClearErrors:
    """``CLEAR PIPELINE ERRORS [p]``."""

    name: str | None = None


@dataclass(frozen=True)
class CreateProcedure:
    """``CREATE [OR REPLACE] PROCEDURE name (batch QUERY(col TYPE, ...)) AS BEGIN ... END``: the
    body of a pipeline ``INTO PROCEDURE``; its statements read the batch as ``param``."""

    name: str
    param: str
    columns: tuple[tuple[str, str], ...]  # (column, SQL type) of the batch relation
    body: tuple[str, ...]  # the statements, as written (SQL of the store)
    or_replace: bool = False


@dataclass(frozen=True)
class DropProcedure:
    name: str
    if_exists: bool = False


@dataclass(frozen=True)
class ShowCreateProcedure:
    name: str


@dataclass(frozen=True)
class CreateLink:
    """``CREATE [OR REPLACE] LINK [IF NOT EXISTS] name AS kind CONFIG … CREDENTIALS …``: where
    and how to connect, named once and used by ``LOAD DATA LINK name '…'``."""

    name: str
    kind: str  # KAFKA | S3 | AZURE | GCS | HDFS | HTTP | MONGODB | MYSQL | RABBITMQ
    config: str | None = None  # JSON text, shown by SHOW LINKS
    credentials: str | None = None  # JSON text, never shown
    description: str | None = None
    or_replace: bool = False
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropLink:
    name: str
    if_exists: bool = False


@dataclass(frozen=True)
class ShowLinks:
    database: str | None = None  # SHOW LINKS ON db


@dataclass(frozen=True)
class ExtractPipeline:
    """``EXTRACT PIPELINE p [FROM 'partition' [OFFSETS a TO b]] INTO OUTFILE 'file'``: the raw
    records of the next batch (or of a range) written to a file; nothing loaded, no cursor moved."""

    name: str
    outfile: str
    partition: str | None = None
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class ProfilePipeline:
    """``PROFILE PIPELINE p``: run the next batch as TEST PIPELINE does (nothing written) and
    show the time and rows of every stage."""

    name: str


@dataclass(frozen=True)
class CreateUser:
    """``CREATE USER [IF NOT EXISTS] name IDENTIFIED BY 'password'``; ``ALTER USER`` (``alter``)
    changes the password of one that exists."""

    name: str
    password: str
    if_not_exists: bool = False
    alter: bool = False


@dataclass(frozen=True)
class DropUser:
    name: str
    if_exists: bool = False


@dataclass(frozen=True)
class Grant:
    """``GRANT {SELECT | ALL [PRIVILEGES]} ON *.* TO user`` (``revoke``: ``REVOKE … FROM``).
    Privileges apply to the whole database."""

    privilege: str  # SELECT | ALL
    user: str
    revoke: bool = False


@dataclass(frozen=True)
class ShowUsers:
    """``SHOW USERS``, or ``SHOW GRANTS [FOR user]`` (``grants``)."""

    grants: bool = False
    user: str | None = None


@dataclass(frozen=True)
class Passthrough:
    """Any statement that is not a pipeline statement: it goes to the store unchanged."""

    sql: str


Statement = (
    CreatePipeline
    | StartPipeline
    | StopPipeline
    | DropPipeline
    | ShowPipelines
    | ShowCreatePipeline
    | TestPipeline
    | AlterPipeline
    | ReplayErrors
    | ClearErrors
    | CreateProcedure
    | DropProcedure
    | ShowCreateProcedure
    | CreateLink
    | DropLink
    | ShowLinks
    | ExtractPipeline
    | ProfilePipeline
    | CreateUser
    | DropUser
    | Grant
    | ShowUsers
    | Passthrough
)
