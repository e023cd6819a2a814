"""What only a server store has: roles and permissions."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg

import sluice
from sluice.testing import LocalBroker, produce, unique_name, wait_for
from tests.e2e.helpers import kafka, states


def test_a_denied_permission_stops_the_pipeline_with_postgresqls_message(
    pg_url: str, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, [b'{"id": 1}'])
    with sluice.connect(pg_url) as owner:  # creates the catalog
        owner.execute("CREATE TABLE t (id INTEGER)")
    role = unique_name("reader")
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN".encode())
        admin.execute(f"GRANT USAGE ON SCHEMA sluice TO {role}".encode())
        admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA sluice TO {role}".encode())
        admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA sluice TO {role}".encode())
        admin.execute(f"GRANT SELECT ON t TO {role}".encode())  # may read t, not write it
    as_reader = urlsplit(pg_url)._replace(netloc=f"{role}@{urlsplit(pg_url).hostname}:"
                                          f"{urlsplit(pg_url).port}").geturl()  # fmt: skip
    try:
        check_denied(as_reader, broker, name)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}".encode())
            admin.execute(f"DROP ROLE {role}".encode())


def check_denied(as_reader: str, broker: LocalBroker, name: str) -> None:
    with sluice.connect(as_reader) as db:  # no DDL rights: the current catalog is used as is
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
            "MAX_RETRIES_PER_BATCH_PARTITION 1 INTO TABLE t FORMAT JSON (id <- id)"
        )
        db.execute("START PIPELINE p")
        wait_for(lambda: states(db) == [("p", "Error")], message="the pipeline to stop")
        error = db.execute("SELECT ERROR_MESSAGE FROM information_schema.PIPELINES").fetchone()
        assert error is not None and "permission denied for table t" in error[0]
        assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
        assert db.execute(
            "SELECT count(*) FROM information_schema.PIPELINES_OFFSETS"
        ).fetchone() == (0,)
