"""The catalog tables and monitoring views Sluice keeps in schema ``sluice`` of its store.

The SQL is common to DuckDB and PostgreSQL, so both stores create the same catalog. In
PostgreSQL the views' unquoted column names fold to lower case; SQL that names them without
quotes (``SELECT PIPELINE_NAME FROM information_schema.PIPELINES``) works on both.
"""

from sluice.vocab import MESSAGE_SOURCES as _MESSAGES

# Changed with any change to CATALOG or VIEWS: a store whose catalog is at this version skips
# its DDL on open (so a role without DDL rights can use it).
VERSION = "sluice catalog 6"
BATCHES_KEPT = 10_000  # per pipeline: the newest batch records kept
TRIM_EVERY = 100  # a pipeline's older batch records are deleted once per this many batches

CATALOG = """
CREATE SCHEMA IF NOT EXISTS sluice;
CREATE TABLE IF NOT EXISTS sluice.definitions (
    name VARCHAR PRIMARY KEY, definition VARCHAR NOT NULL, config_json VARCHAR NOT NULL,
    state VARCHAR NOT NULL, created TIMESTAMP NOT NULL, altered TIMESTAMP NOT NULL,
    error VARCHAR);
CREATE TABLE IF NOT EXISTS sluice.cursors (
    pipeline VARCHAR NOT NULL, source_type VARCHAR NOT NULL, partition VARCHAR NOT NULL,
    "offset" BIGINT NOT NULL, latest_offset BIGINT, file_size BIGINT,
    updated TIMESTAMP NOT NULL, PRIMARY KEY (pipeline, partition));
CREATE TABLE IF NOT EXISTS sluice.positions (
    pipeline VARCHAR NOT NULL, source_type VARCHAR NOT NULL, partition VARCHAR NOT NULL,
    earliest_offset BIGINT, latest_offset BIGINT, lag_seconds DOUBLE PRECISION,
    updated TIMESTAMP NOT NULL, PRIMARY KEY (pipeline, partition));
CREATE SEQUENCE IF NOT EXISTS sluice.batch_ids;
CREATE TABLE IF NOT EXISTS sluice.batches (
    pipeline VARCHAR NOT NULL, batch_id BIGINT NOT NULL, state VARCHAR NOT NULL,
    start_time TIMESTAMP NOT NULL, batch_time DOUBLE PRECISION NOT NULL,
    rows_streamed BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, bytes_streamed BIGINT NOT NULL,
    num_partitions INTEGER NOT NULL);
ALTER TABLE sluice.batches ADD COLUMN IF NOT EXISTS extract_time DOUBLE PRECISION;
ALTER TABLE sluice.batches ADD COLUMN IF NOT EXISTS transform_time DOUBLE PRECISION;
ALTER TABLE sluice.batches ADD COLUMN IF NOT EXISTS parse_time DOUBLE PRECISION;
ALTER TABLE sluice.batches ADD COLUMN IF NOT EXISTS load_time DOUBLE PRECISION;
CREATE TABLE IF NOT EXISTS sluice.batch_partitions (
    pipeline VARCHAR NOT NULL, batch_id BIGINT NOT NULL, partition VARCHAR NOT NULL,
    earliest BIGINT, latest BIGINT NOT NULL, parsed_rows BIGINT NOT NULL, state VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS sluice.procedures (
    name VARCHAR PRIMARY KEY, definition VARCHAR NOT NULL, created TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS sluice.connection_links (
    name VARCHAR PRIMARY KEY, type VARCHAR NOT NULL, config VARCHAR, credentials VARCHAR,
    description VARCHAR, created TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS sluice.users (
    name VARCHAR PRIMARY KEY, auth_string VARCHAR NOT NULL, privilege VARCHAR NOT NULL,
    created TIMESTAMP NOT NULL);
CREATE SEQUENCE IF NOT EXISTS sluice.error_ids;
CREATE TABLE IF NOT EXISTS sluice.errors (
    error_id BIGINT NOT NULL, pipeline VARCHAR NOT NULL, batch_id BIGINT,
    error_type VARCHAR NOT NULL, error_kind VARCHAR NOT NULL, message VARCHAR NOT NULL,
    partition VARCHAR, "offset" BIGINT, raw BYTEA, line VARCHAR, std_error VARCHAR,
    time TIMESTAMP NOT NULL);
"""

VIEWS = {
    "PIPELINES": """
        SELECT current_database() AS DATABASE_NAME, name AS PIPELINE_NAME, state AS STATE,
               config_json AS CONFIG_JSON, created AS CREATED, altered AS ALTERED,
               error AS ERROR_MESSAGE
        FROM sluice.definitions""",
    "PIPELINES_BATCHES_SUMMARY": """
        SELECT current_database() AS DATABASE_NAME, pipeline AS PIPELINE_NAME,
               batch_id AS BATCH_ID, state AS BATCH_STATE, start_time AS START_TIME,
               batch_time AS BATCH_TIME, rows_streamed AS ROWS_STREAMED,
               rows_loaded AS ROWS_LOADED,
               CASE WHEN batch_time > 0 THEN rows_streamed / batch_time END AS ROWS_PER_SEC,
               bytes_streamed / 1e6 AS MB_STREAMED, num_partitions AS NUM_PARTITIONS,
               extract_time AS EXTRACTOR_WAIT_TIME, transform_time AS TRANSFORM_WAIT_TIME,
               parse_time AS PARSE_TIME, load_time AS LOAD_TIME
        FROM sluice.batches""",
    "PIPELINES_BATCHES": """
        SELECT current_database() AS DATABASE_NAME, pipeline AS PIPELINE_NAME,
               batch_id AS BATCH_ID, partition AS BATCH_SOURCE_PARTITION_ID,
               earliest AS BATCH_EARLIEST_OFFSET, latest AS BATCH_LATEST_OFFSET,
               parsed_rows AS BATCH_PARTITION_PARSED_ROWS, state AS BATCH_PARTITION_STATE
        FROM sluice.batch_partitions""",
    # A partition's cursor (what a batch moved last) beside its position in the source (what
    # the lag monitor read last, running or not): the newer end of the two; the lag in
    # seconds as measured, or 0 once the cursor has reached the end.
    "PIPELINES_OFFSETS": """
        SELECT current_database() AS DATABASE_NAME,
               coalesce(c.pipeline, p.pipeline) AS PIPELINE_NAME,
               coalesce(c.source_type, p.source_type) AS SOURCE_TYPE,
               coalesce(c.partition, p.partition) AS SOURCE_PARTITION_ID,
               p.earliest_offset AS EARLIEST_OFFSET,
               greatest(c.latest_offset, p.latest_offset) AS LATEST_OFFSET,
               c."offset" AS CURSOR_OFFSET,
               greatest(coalesce(greatest(c.latest_offset, p.latest_offset), c."offset")
                        - coalesce(c."offset", p.earliest_offset), 0) AS LAG_MESSAGES,
               CASE WHEN coalesce(c."offset", p.earliest_offset)
                         >= greatest(c.latest_offset, p.latest_offset) THEN 0
                    ELSE p.lag_seconds END AS LAG_SECONDS,
               extract(epoch FROM coalesce(c.updated, p.updated)) AS UPDATED_UNIX_TIMESTAMP
        FROM sluice.cursors c
        FULL JOIN sluice.positions p ON c.pipeline = p.pipeline AND c.partition = p.partition
        WHERE coalesce(c.source_type, p.source_type) IN (MESSAGE_SOURCES)
          AND coalesce(c.pipeline, p.pipeline) IN (SELECT name FROM sluice.definitions)""",
    "LINKS": """
        SELECT current_database() AS DATABASE_NAME, name AS LINK, type AS TYPE,
               description AS DESCRIPTION, config AS CONFIG
        FROM sluice.connection_links""",
    "PIPELINES_CURSORS": 'SELECT * FROM sluice."PIPELINES_OFFSETS"',
    "PIPELINES_ERRORS": """
        SELECT current_database() AS DATABASE_NAME, pipeline AS PIPELINE_NAME,
               error_id AS ERROR_ID, batch_id AS BATCH_ID, error_type AS ERROR_TYPE,
               error_kind AS ERROR_KIND, message AS ERROR_MESSAGE,
               partition AS BATCH_SOURCE_PARTITION_ID, "offset" AS "OFFSET",
               line AS LOAD_DATA_LINE, std_error AS STD_ERROR,
               time AS ERROR_TIME
        FROM sluice.errors""",
    "PIPELINES_FILES": """
        SELECT current_database() AS DATABASE_NAME, pipeline AS PIPELINE_NAME,
               source_type AS SOURCE_TYPE, partition AS FILE_NAME, file_size AS FILE_SIZE,
               CASE WHEN "offset" = 1 THEN 'Loaded' WHEN "offset" < 0 THEN 'Loading'
                    ELSE 'Unloaded' END AS FILE_STATE
        FROM sluice.cursors WHERE source_type NOT IN (MESSAGE_SOURCES)""",
}
_IN = ", ".join(f"'{kind}'" for kind in _MESSAGES)
VIEWS = {name: sql.replace("(MESSAGE_SOURCES)", f"({_IN})") for name, sql in VIEWS.items()}
