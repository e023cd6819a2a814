"""LOAD DATA S3 against a local S3-compatible server (moto's server mode)."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

import sluice
from sluice.sources.s3 import S3Source
from sluice.testing import LocalS3, unique_name, wait_for
from tests.e2e.loaders import kill_at_a_commit, start_loader


@pytest.fixture
def s3() -> Iterator[LocalS3]:
    with LocalS3() as server:
        yield server


@pytest.fixture
def bucket(s3: LocalS3) -> Iterator[tuple[Any, str]]:
    client = s3.client()
    name = unique_name("b").replace("_", "-")
    client.create_bucket(Bucket=name)
    yield client, name
    client.close()


def source(s3: LocalS3, path: str, **config: Any) -> str:
    return (
        f"LOAD DATA S3 '{path}' CONFIG '{json.dumps({**s3.config, **config})}' "
        f"CREDENTIALS '{json.dumps(s3.credentials)}'"
    )


def csv(rows: range) -> bytes:
    return "".join(f"{i},n{i}\n" for i in rows).encode()


def files(db: sluice.Connection) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT FILE_NAME, FILE_STATE FROM information_schema.PIPELINES_FILES ORDER BY 1"
    ).fetchall()


def test_a_prefix_of_more_objects_than_a_listing_page(
    db: sluice.Connection, s3: LocalS3, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    for i in range(1_050):
        client.put_object(Bucket=name, Key=f"p/{i:05d}.json", Body=json.dumps({"id": i}).encode())
    db.execute("CREATE TABLE t (id BIGINT)")
    db.execute(
        f"CREATE PIPELINE p AS {source(s3, f'{name}/p/', files_per_batch=500)} INTO TABLE t "
        "FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone() == (1050, 1050)


def test_s3_problems_are_named(db: sluice.Connection, s3: LocalS3, bucket: tuple[Any, str]) -> None:
    _, name = bucket
    db.execute("CREATE TABLE t (id BIGINT)")
    with pytest.raises(sluice.SluiceError, match="S3 bucket 'nope-nope' does not exist"):
        db.execute(f"CREATE PIPELINE p AS {source(s3, 'nope-nope/x*')} INTO TABLE t")
    with pytest.raises(sluice.SluiceError, match=r"unknown S3 CREDENTIALS key\(s\) \['password'\]"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA S3 '{name}/x' CREDENTIALS '{{\"password\": 1}}' "
            "INTO TABLE t"
        )
    with pytest.raises(sluice.SluiceError, match="unknown S3 CONFIG key"):
        db.execute(f"CREATE PIPELINE p AS {source(s3, f'{name}/x', regoin='x')} INTO TABLE t")
    db.execute(f"CREATE PIPELINE p AS {source(s3, f'{name}/x')} INTO TABLE t")
    shown = db.execute("SHOW CREATE PIPELINE p").fetchone()
    assert shown is not None and "testing" not in str(shown)  # the secret key is not shown


@pytest.mark.parametrize("store", ["duckdb", "postgresql"])
def test_sigkill_torture_on_s3_is_exactly_once(
    store: str,
    db_path: str,
    request: pytest.FixtureRequest,
    s3: LocalS3,
    bucket: tuple[Any, str],
) -> None:
    """Loaders killed again and again (at random and inside commits) while objects arrive:
    at the end every row of every object is in the table once and every object is Loaded."""
    client, name = bucket
    database = str(request.getfixturevalue("pg_url")) if store == "postgresql" else db_path
    objects, per = 60, 200
    for k in range(objects // 2):
        client.put_object(Bucket=name, Key=f"{k:03d}.csv", Body=csv(range(k * per, k * per + per)))
    with sluice.connect(database) as db:
        db.execute("CREATE TABLE t (id BIGINT, name VARCHAR)")
        db.execute(
            f"CREATE PIPELINE p AS {source(s3, f'{name}/*.csv', files_per_batch=2)} "
            "INTO TABLE t FIELDS TERMINATED BY ','"
        )
        db.execute("START PIPELINE p")
    rnd = random.Random(store)
    progress = []
    for k in range(8):
        if k == 3:  # more objects arrive while the loaders come and go
            for j in range(objects // 2, objects):
                body = csv(range(j * per, j * per + per))
                client.put_object(Bucket=name, Key=f"{j:03d}.csv", Body=body)
        with start_loader(database, mark=k % 2 == 1) as proc:
            if k % 2:
                kill_at_a_commit(proc, commits=rnd.randint(1, 3))
            else:
                time.sleep(rnd.uniform(0.2, 0.8))  # a random kill point, not a wait
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        rows, distinct = _counts(database)
        assert rows == distinct, "a row was loaded twice"
        progress.append(rows)
    assert len([r for r in progress if 0 < r < objects * per]) >= 3, progress
    with sluice.connect(database) as db:
        loaded = (
            "SELECT count(*) FROM information_schema.PIPELINES_FILES WHERE FILE_STATE = 'Loaded'"
        )
        wait_for(lambda: db.execute(loaded).fetchone() == (objects,), 120, "every object loaded")
        db.execute("STOP PIPELINE p")
    assert _counts(database) == (objects * per, objects * per)


def _counts(database: str) -> tuple[int, int]:
    sql = "SELECT count(*), count(DISTINCT id) FROM t"
    if database.startswith("postgresql://"):
        with psycopg.connect(database) as con:
            found = con.execute(sql).fetchone()
    else:
        with duckdb.connect(database, read_only=True) as con:
            found = con.execute(sql).fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


def test_listing_is_paged_and_only_new_keys_are_asked_for_between_full_listings(
    s3: LocalS3, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    for i in range(5):
        client.put_object(Bucket=name, Key=f"k{i}.csv", Body=b"1\n")
    source = S3Source(f"{name}/*.csv", {**s3.config, "relist_seconds": 3600}, s3.credentials)
    asked: list[dict[str, Any]] = []
    source._client.meta.events.register(
        "before-call.s3.ListObjectsV2",
        lambda params, **_: asked.append(dict(params["query_string"])),
    )
    try:
        assert len(source.latest()) == 5
        client.put_object(Bucket=name, Key="k9.csv", Body=b"2\n")
        assert len(source.latest()) == 6
        assert [a["start-after"] for a in asked] == ["", "k4.csv"]  # the second: new keys only
        assert all(a["max-keys"] == 1000 for a in asked)
    finally:
        source.close()
