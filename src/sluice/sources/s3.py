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

import fnmatch
import io
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from sluice.errors import SourceError, SourceUnavailableError
from sluice.options import Option, OptionSpec
from sluice.sources.fs import OPTIONS as FS_OPTIONS
from sluice.sources.fs import FileSource, PieceReader

OPTIONS = OptionSpec(
    "S3 CONFIG",
    (
        *FS_OPTIONS.options,
        Option("region", "", "the bucket's region (boto3's default when empty)"),
        Option("endpoint_url", "", "an S3-compatible endpoint other than AWS's"),
        Option("relist_seconds", 60.0, "how often the whole prefix is listed again", minimum=0),
    ),
)
CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_GLOB = "*?["


class S3Source(FileSource):
    kind = "S3"

    def __init__(
        self,
        uri: str,
        config: Mapping[str, Any],
        credentials: Mapping[str, Any] | None = None,
        *,
        pipeline: str = "",
        record_end: Callable[[bytes], int] | None = None,
        read_file: PieceReader | None = None,
    ) -> None:
        values = OPTIONS.parse(config, error=SourceError, pipeline=pipeline)
        fs_config = {o.key: values[o.key] for o in FS_OPTIONS.options}
        super().__init__(
            uri, fs_config, pipeline=pipeline, record_end=record_end, read_file=read_file,
            settle=0.0,
        )  # fmt: skip
        bucket, _, pattern = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise SourceError(f"S3 address {uri!r} has no bucket: 'bucket/prefix*'")
        self.bucket = bucket
        self.glob = pattern if any(c in pattern for c in _GLOB) else pattern + "*"
        self.prefix = pattern[
            : min((pattern.find(c) for c in _GLOB if c in pattern), default=len(pattern))
        ]
        given = dict(credentials or {})
        unknown = sorted(set(given) - set(CREDENTIAL_KEYS))
        if unknown:
            raise SourceError(
                f"unknown S3 CREDENTIALS key(s) {unknown}; valid keys: {list(CREDENTIAL_KEYS)}",
                pipeline=pipeline,
            )
        self._client = _client(values, given)
        self._relist = float(values["relist_seconds"])
        self._objects: dict[str, tuple[str, int, str]] = {}  # name → (key, size, etag)
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
            for obj in page.get("Contents", ()):
                key = obj["Key"]
                self._last_key = max(self._last_key, key)
                if key.endswith("/") or not fnmatch.fnmatchcase(key, self.glob):
                    continue
                etag = str(obj["ETag"]).strip('"')
                self._objects[f"s3://{self.bucket}/{key}#{etag}"] = (key, int(obj["Size"]), etag)

    def _ready(self, cursors: Mapping[str, int]) -> tuple[list[str], float | None]:
        return [name for name in self._files() if cursors.get(name, 0) != 1], None

    def _filename(self, path: str) -> str:
        return path.rsplit("#", 1)[0]

    def _open(self, path: str) -> tuple[BinaryIO, int]:
        found = self._objects.get(path)
        if found is None:
            raise FileNotFoundError(path)
        key, size, etag = found
        raw = _Object(self, key, size, etag)
        return io.BufferedReader(raw, buffer_size=8 << 20), size

    def _call(self, action: Callable[[], Any]) -> Any:
        """``action`` with boto3's errors said as Sluice's: an endpoint that cannot be reached
        is transient; a missing bucket or a refused key is not."""
        import botocore.exceptions as bx

        try:
            return action()
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
            raise SourceUnavailableError(
                f"cannot reach S3 for bucket {self.bucket!r}: {exc}", pipeline=self.pipeline
            ) from exc
        except bx.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "404"):
                raise SourceError(
                    f"S3 bucket {self.bucket!r} does not exist", pipeline=self.pipeline
                ) from exc
            if code in ("PreconditionFailed", "412", "NoSuchKey"):
                raise FileNotFoundError(str(exc)) from exc  # replaced or removed since listed
            if code.startswith("5") or code in ("SlowDown", "InternalError", "ServiceUnavailable"):
                raise SourceUnavailableError(
                    f"S3 failed for bucket {self.bucket!r}: {exc}", pipeline=self.pipeline
                ) from exc
            raise SourceError(f"S3 refused: {exc}", pipeline=self.pipeline) from exc
        except bx.BotoCoreError as exc:
            raise SourceError(f"S3: {exc}", pipeline=self.pipeline) from exc

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
