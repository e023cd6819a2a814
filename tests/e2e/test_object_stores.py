"""What every bucket source does (S3 against moto's server, Azure against Azurite, GCS against
gcp-storage-emulator through gcsfs), and AZURE's and GCS's own rules: GCS with SingleStore's HMAC
credentials is read against an S3-compatible server (GCS's XML API speaks S3's protocol)."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sluice
from sluice.sources.objects import GCSInteropSource, GCSSource, gcs_source
from sluice.testing import Azurite, LocalGCS, LocalS3, unique_name
from tests.e2e.test_s3 import csv, files


@dataclass
class Bucket:
    kind: str  # the SQL keyword
    scheme: str
    name: str
    config: dict[str, Any]
    credentials: dict[str, Any]
    put: Callable[[str, bytes], None]  # writes an object

    def source(self, path: str, **config: Any) -> str:
        settings = json.dumps(self.config | config)
        sql = f"LOAD DATA {self.kind} '{self.name}/{path}' CONFIG '{settings}'"
        if self.credentials:
            sql += f" CREDENTIALS '{json.dumps(self.credentials)}'"
        return sql


@pytest.fixture
def azurite() -> Iterator[Azurite]:
    with Azurite() as server:
        yield server


@pytest.fixture
def gcs() -> Iterator[LocalGCS]:
    with LocalGCS() as server:
        yield server


@pytest.fixture(params=["s3", "azure", "gcs"])
def bucket(request: pytest.FixtureRequest) -> Iterator[Bucket]:
    name = unique_name("b").replace("_", "-")
    if request.param == "s3":
        with LocalS3() as s3:
            client = s3.client()
            client.create_bucket(Bucket=name)

            def put(key: str, body: bytes) -> None:
                client.put_object(Bucket=name, Key=key, Body=body)

            yield Bucket("S3", "s3", name, dict(s3.config), dict(s3.credentials), put)
            client.close()
        return
    if request.param == "azure":
        azure: Azurite = request.getfixturevalue("azurite")
        fs = azure.filesystem()
        config, credentials = dict(azure.config), dict(azure.credentials)
    else:
        server: LocalGCS = request.getfixturevalue("gcs")
        fs = server.filesystem()
        config, credentials = dict(server.config), {}
    fs.mkdir(name)

    def write(key: str, body: bytes) -> None:
        fs.pipe(f"{name}/{key}", body)

    yield Bucket(request.param.upper(), {"azure": "azure", "gcs": "gs"}[request.param], name,
                 config, credentials, write)  # fmt: skip
    fs.rm(name, recursive=True)


def test_objects_load_once_and_a_reupload_loads_again(
    db: sluice.Connection, bucket: Bucket
) -> None:
    bucket.put("in/a.csv", csv(range(0, 100)))
    bucket.put("in/b.csv", csv(range(100, 200)))
    bucket.put("in-not/x.csv", csv(range(800, 801)))
    bucket.put("other/c.csv", csv(range(900, 901)))
    db.execute("CREATE TABLE t (id BIGINT, name VARCHAR)")
    db.execute(
        f"CREATE PIPELINE p AS {bucket.source('in/*.csv', relist_seconds=0)} INTO TABLE t "
        "FIELDS TERMINATED BY ','"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*), sum(id) FROM t").fetchone() == (200, sum(range(200)))
    shown = files(db)
    assert [state for _, state in shown] == ["Loaded", "Loaded"]
    assert all(f.startswith(f"{bucket.scheme}://{bucket.name}/in/") and "#" in f for f, _ in shown)
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []  # nothing loads twice
    # the same key written again is another version of the object: it loads again
    bucket.put("in/a.csv", csv(range(1000, 1010)))
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t WHERE id >= 1000").fetchone() == (10,)
    assert len([f for f, _ in files(db) if "/in/a.csv#" in f]) == 2


def test_large_compressed_and_parquet_objects_load_in_pieces(
    db: sluice.Connection, bucket: Bucket
) -> None:
    bucket.put("big.csv", csv(range(0, 3000)))
    bucket.put("small.csv.gz", gzip.compress(csv(range(3000, 4000))))
    out = io.BytesIO()
    table = pa.table({"id": list(range(4000, 5000)), "name": [f"n{i}" for i in range(4000, 5000)]})
    pq.write_table(table, out, row_group_size=100)
    bucket.put("rows.parquet", out.getvalue())
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR)")
    db.execute(
        f"CREATE PIPELINE c AS {bucket.source('*.csv*', max_bytes_per_batch=4000)} "
        "INTO TABLE t FIELDS TERMINATED BY ','"
    )
    db.execute(
        f"CREATE PIPELINE q AS {bucket.source('*.parquet', max_bytes_per_batch=1)} "
        "INTO TABLE t FORMAT PARQUET (id <- id, name <- name)"
    )
    batches = db.execute("START PIPELINE c FOREGROUND").fetchall()
    assert len(batches) >= 10  # ~40 KB of CSV, at most ~4 KB a batch
    parquet = db.execute("START PIPELINE q FOREGROUND").fetchall()
    assert [b[1] for b in parquet] == [100] * 10  # one row group a batch
    assert db.execute("SELECT count(*), sum(id), count(DISTINCT name) FROM t").fetchone() == (
        5000,
        sum(range(5000)),
        5000,
    )


def test_problems_are_named(db: sluice.Connection, bucket: Bucket) -> None:
    noun = "container" if bucket.kind == "AZURE" else "bucket"
    db.execute("CREATE TABLE t (id BIGINT)")
    missing = f"LOAD DATA {bucket.kind} 'nope-nope/x*' CONFIG '{json.dumps(bucket.config)}'"
    if bucket.credentials:
        missing += f" CREDENTIALS '{json.dumps(bucket.credentials)}'"
    with pytest.raises(sluice.SluiceError, match=f"{bucket.kind} {noun} 'nope-nope' does not"):
        db.execute(f"CREATE PIPELINE p AS {missing} INTO TABLE t")
    with pytest.raises(sluice.SluiceError, match=rf"unknown {bucket.kind} CREDENTIALS key\(s\)"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA {bucket.kind} '{bucket.name}/x' "
            "CREDENTIALS '{\"password\": 1}' INTO TABLE t"
        )
    with pytest.raises(sluice.SluiceError, match=f"unknown {bucket.kind} CONFIG key"):
        db.execute(f"CREATE PIPELINE p AS {bucket.source('x', regoin='x')} INTO TABLE t")
    db.execute(f"CREATE PIPELINE p AS {bucket.source('x')} INTO TABLE t")
    shown = db.execute("SHOW CREATE PIPELINE p").fetchone()
    assert shown is not None
    secrets = [v for k, v in bucket.credentials.items() if k != "account_name"]
    assert not any(str(v) in str(shown) for v in secrets)  # secrets are never shown


def test_a_refused_azure_key_and_an_unreachable_account_are_named(
    db: sluice.Connection, azurite: Azurite
) -> None:
    db.execute("CREATE TABLE t (id BIGINT)")
    wrong = {"account_name": Azurite.ACCOUNT, "account_key": "d3Jvbmc="}
    with pytest.raises(sluice.SluiceError, match="AZURE refused the credentials for account"):
        db.execute(
            "CREATE PIPELINE p AS LOAD DATA AZURE 'readings/x' "
            f"CONFIG '{json.dumps(azurite.config)}' CREDENTIALS '{json.dumps(wrong)}' INTO TABLE t"
        )
    with pytest.raises(sluice.SluiceError, match='AZURE CREDENTIALS need "account_name"'):
        db.execute("CREATE PIPELINE p AS LOAD DATA AZURE 'readings/x' INTO TABLE t")
    closed = {"endpoint_url": "http://127.0.0.1:9/devstoreaccount1"}  # port 9: nothing listens
    with pytest.raises(sluice.SluiceError, match="cannot reach AZURE for container 'readings'"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA AZURE 'readings/x' CONFIG '{json.dumps(closed)}' "
            f"CREDENTIALS '{json.dumps(azurite.credentials)}' INTO TABLE t"
        )


def test_gcs_hmac_credentials_read_the_s3_compatible_api(db: sluice.Connection) -> None:
    """SingleStore's GCS credentials are HMAC keys, which GCS takes on its S3-compatible XML
    API: they are read with S3's protocol (here from an S3-compatible server)."""
    with LocalS3() as s3:
        client = s3.client()
        name = unique_name("b").replace("_", "-")
        try:
            client.create_bucket(Bucket=name)
            client.put_object(Bucket=name, Key="in/a.csv", Body=csv(range(50)))
            hmac = {"access_id": "testing", "secret_key": "testing"}
            db.execute("CREATE TABLE t (id BIGINT, name VARCHAR)")
            db.execute(
                f"CREATE LINK g AS GCS CONFIG '{json.dumps({'endpoint_url': s3.url})}' "
                f"CREDENTIALS '{json.dumps(hmac)}'"
            )
            db.execute(
                f"CREATE PIPELINE p AS LOAD DATA LINK g '{name}/in/' INTO TABLE t "
                "FIELDS TERMINATED BY ','"
            )
            db.execute("START PIPELINE p FOREGROUND")
            assert db.execute("SELECT count(*), sum(id) FROM t").fetchone() == (50, sum(range(50)))
            assert next(f for f, _ in files(db)).startswith(f"gs://{name}/in/a.csv#")
            db.execute("DROP PIPELINE p")
            db.execute("DROP LINK g")
            with pytest.raises(sluice.SluiceError, match=r"GCS bucket 'nope-nope' does not exist"):
                db.execute(
                    "CREATE PIPELINE p AS LOAD DATA GCS 'nope-nope/x' "
                    f"CONFIG '{json.dumps({'endpoint_url': s3.url})}' "
                    f"CREDENTIALS '{json.dumps(hmac)}' INTO TABLE t"
                )
        finally:
            for obj in client.list_objects_v2(Bucket=name).get("Contents", ()):
                client.delete_object(Bucket=name, Key=obj["Key"])
            client.delete_bucket(Bucket=name)
            client.close()


def test_gcs_credentials_pick_the_api() -> None:
    hmac = gcs_source("b/x", {}, {"access_id": "a", "secret_key": "s"})
    anonymous = gcs_source("b/x", {"endpoint_url": "http://127.0.0.1:9"}, {})
    try:
        assert isinstance(hmac, GCSInteropSource) and isinstance(anonymous, GCSSource)
    finally:
        hmac.close()
        anonymous.close()
    with pytest.raises(sluice.SluiceError, match="service_account_key must be the key file's"):
        gcs_source("b/x", {}, {"service_account_key": "not json"})
