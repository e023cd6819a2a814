"""S3 source: every object under a prefix (matching a glob) is one partition, loaded once.

``LOAD DATA S3 'bucket/prefix*' CONFIG '{"region": …, "endpoint_url": …}' CREDENTIALS
'{"aws_access_key_id": …, "aws_secret_access_key": …, "aws_session_token": …}'`` (boto3).

An object is named by its key *and* its ETag (``s3://bucket/key#etag``), so an object uploaded
again under the same key is a new partition and loads again, as SingleStore does;
``PIPELINES_FILES`` shows both. Reads are ranged GETs of at most a batch's byte budget (a
compressed object is read as a stream), and pinned to the ETag listed (``If-Match``): an object
replaced while it loads is not read half old, half new. Everything else — byte budgets, cutting
between records, Parquet's row groups, cursors — is the FS source's.

Listing is paged (1,000 keys a request) and cached: between full listings, every
``relist_seconds`` (default 60), only keys after the last one seen are asked for
(``StartAfter``), so a bucket of 100,000 objects is not listed whole every batch. Keys that
sort before the last one, and re-uploads, are seen at the next full listing.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from sluice.errors import SourceError, SourceUnavailableError
from sluice.options import Option
from sluice.sources.buckets import BucketSource, options

OPTIONS = options(
    "S3", Option("region", "", "the bucket's region (boto3's default when empty)"), relist=60.0
)
CREDENTIAL_KEYS: tuple[str, ...] = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
)


class S3Source(BucketSource):
    OPTIONS = OPTIONS
    CREDENTIAL_KEYS = CREDENTIAL_KEYS
    kind = "S3"
    scheme = "s3"

    def _connect(self, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        self._client = _client(config, credentials)
        self._listed_at: float | None = None
        self._last_key = ""

    def check(self) -> None:
        self._call(lambda: self._client.head_bucket(Bucket=self.bucket))

    def _files(self) -> list[str]:
        now = time.monotonic()
        if self._listed_at is None or now - self._listed_at >= self._relist:
            self._objects, self._last_key = {}, ""
            self._list(start_after="")
            self._listed_at = now
        else:
            self._list(start_after=self._last_key)
        return sorted(self._objects)

    def _list(self, start_after: str) -> None:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, StartAfter=start_after,
            PaginationConfig={"PageSize": 1000},
        )  # fmt: skip
        for page in self._call(lambda: list(pages)):
            contents = page.get("Contents", ())
            if contents:
                self._last_key = max(self._last_key, contents[-1]["Key"])
            self._found(
                (obj["Key"], int(obj["Size"]), str(obj["ETag"]).strip('"')) for obj in contents
            )

    def _open(self, path: str) -> tuple[BinaryIO, int]:
        key, size, etag = self._object(path)
        raw = _Object(self, key, size, etag)
        return io.BufferedReader(raw, buffer_size=8 << 20), size

    def _call(self, action: Callable[[], Any]) -> Any:
        """``action`` with boto3's errors said as Sluice's: an endpoint that cannot be reached
        is transient; a missing bucket or a refused key is not."""
        import botocore.exceptions as bx

        kind = self.kind
        try:
            return action()
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
            raise SourceUnavailableError(
                f"cannot reach {kind} for bucket {self.bucket!r}: {exc}", pipeline=self.pipeline
            ) from exc
        except bx.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "404"):
                raise SourceError(
                    f"{kind} bucket {self.bucket!r} does not exist", pipeline=self.pipeline
                ) from exc
            if code in ("PreconditionFailed", "412", "NoSuchKey"):
                raise FileNotFoundError(str(exc)) from exc  # replaced or removed since listed
            if code.startswith("5") or code in ("SlowDown", "InternalError", "ServiceUnavailable"):
                raise SourceUnavailableError(
                    f"{kind} failed for bucket {self.bucket!r}: {exc}", pipeline=self.pipeline
                ) from exc
            raise SourceError(f"{kind} refused: {exc}", pipeline=self.pipeline) from exc
        except bx.BotoCoreError as exc:
            raise SourceError(f"{kind}: {exc}", pipeline=self.pipeline) from exc

    def close(self) -> None:
        self._client.close()


class _Object(io.RawIOBase):
    """One version of an object as a seekable file: each read a ranged GET pinned to its ETag."""

    def __init__(self, source: S3Source, key: str, size: int, etag: str) -> None:
        super().__init__()
        self._source, self._key, self._size, self._etag = source, key, size, etag
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._at)
        if n <= 0:
            return 0
        source = self._source
        reply = source._call(
            lambda: source._client.get_object(
                Bucket=source.bucket, Key=self._key, IfMatch=self._etag,
                Range=f"bytes={self._at}-{self._at + n - 1}",
            )
        )  # fmt: skip
        data = reply["Body"].read()
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


def _client(config: Mapping[str, Any], credentials: Mapping[str, Any]) -> Any:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - the s3 extra is not installed
        raise SourceError("LOAD DATA S3 needs the s3 extra: pip install 'sluice[s3]'") from exc
    return boto3.session.Session().client(
        "s3",
        region_name=config["region"] or None,
        endpoint_url=config["endpoint_url"] or None,
        **{k: v for k, v in credentials.items() if v},
    )
