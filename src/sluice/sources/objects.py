"""Azure Blob and Google Cloud Storage sources, on fsspec (``adlfs``, ``gcsfs``) and the bucket
source the S3 source shares (see ``sluice.sources.buckets``).

``LOAD DATA AZURE 'container/prefix*' CREDENTIALS '{"account_name": …, "account_key": …}'``
(or ``"sas_token"`` instead of the key). ``LOAD DATA GCS 'bucket/prefix*' CREDENTIALS
'{"access_id": …, "secret_key": …}'``: SingleStore's GCS credentials are HMAC keys, which only
GCS's S3-compatible XML API takes, so they are read by the S3 source at
``https://storage.googleapis.com``; a service account's key (``"service_account_key"``) or none
(the machine's default credentials) reads through ``gcsfs`` instead.

Each listing is of the whole prefix (paged by the SDK), at most every ``relist_seconds``
(default 1); an object is named by its ETag (Azure) or generation (GCS). A GCS read is pinned
to the generation listed; an Azure blob's ETag is checked when it is opened, so one replaced
since it was listed loads as the new version after the next listing, not as the old one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from sluice.errors import SourceError, SourceUnavailableError
from sluice.options import Option
from sluice.sources.base import Source
from sluice.sources.buckets import BucketSource, options
from sluice.sources.s3 import S3Source

AZURE_OPTIONS = options("AZURE", relist=1.0)
GCS_OPTIONS = options(
    "GCS", Option("project", "", "the Google Cloud project (gcsfs only)"), relist=1.0
)
AZURE_CREDENTIAL_KEYS = ("account_name", "account_key", "sas_token")
GCS_HMAC_KEYS = ("access_id", "secret_key")
GCS_CREDENTIAL_KEYS = (*GCS_HMAC_KEYS, "service_account_key")
GCS_XML_API = "https://storage.googleapis.com"
_BLOCK = 8 << 20  # bytes a read asks for


class _FsspecSource(BucketSource):
    """A bucket read through an fsspec filesystem (``self._fs``)."""

    _fs: Any
    _listed_at: float | None = None

    def check(self) -> None:
        if not self._call(lambda: self._fs.exists(self.bucket)):
            raise SourceError(
                f"{self.kind} {self.noun} {self.bucket!r} does not exist", pipeline=self.pipeline
            )

    def _files(self) -> list[str]:
        now = time.monotonic()
        if self._listed_at is None or now - self._listed_at >= self._relist:
            self._fs.invalidate_cache()
            folder, _, rest = self.prefix.rpartition("/")
            found = self._call(
                lambda: self._fs.find(f"{self.bucket}/{folder}", prefix=rest, detail=True)
            )
            self._objects = {}
            self._found(
                (info["name"].partition("/")[2], int(info["size"]), self._version(info))
                for info in found.values()
                if info.get("type") == "file"
            )
            self._listed_at = now
        return sorted(self._objects)

    def _version(self, info: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def _call(self, action: Callable[[], Any], *, opening: bool = False) -> Any:
        """``action`` with the SDK's errors said as Sluice's: a store that cannot be reached
        is transient; a missing bucket or refused credentials are not. ``opening`` an object,
        its absence (``FileNotFoundError``) means it was removed or replaced since listed."""
        try:
            return action()
        except FileNotFoundError as exc:
            if opening:
                raise
            raise SourceError(
                f"{self.kind} {self.noun} {self.bucket!r} does not exist", pipeline=self.pipeline
            ) from exc
        except PermissionError as exc:
            raise SourceError(f"{self.kind} refused: {exc}", pipeline=self.pipeline) from exc
        except Exception as exc:
            if self._transient(exc):
                raise SourceUnavailableError(
                    f"cannot reach {self.kind} for {self.noun} {self.bucket!r}: {exc}",
                    pipeline=self.pipeline,
                ) from exc
            raise SourceError(f"{self.kind}: {exc}", pipeline=self.pipeline) from exc

    def _transient(self, exc: Exception) -> bool:
        return isinstance(exc, OSError | TimeoutError)


class AzureSource(_FsspecSource):
    OPTIONS = AZURE_OPTIONS
    CREDENTIAL_KEYS = AZURE_CREDENTIAL_KEYS
    kind = "AZURE"
    scheme = "azure"
    noun = "container"

    def _connect(self, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        if not credentials.get("account_name"):
            raise SourceError(
                'AZURE CREDENTIALS need "account_name", and "account_key" or "sas_token"',
                pipeline=self.pipeline,
            )
        self._fs = _azure(config, credentials)

    def check(self) -> None:
        client = self._fs.service_client.get_container_client(self.bucket)
        if not self._call(lambda: _sync(self._fs, client.exists)):
            raise SourceError(
                f"AZURE container {self.bucket!r} does not exist", pipeline=self.pipeline
            )

    def _version(self, info: Mapping[str, Any]) -> str:
        return str(info["etag"]).strip('"')

    def _open(self, path: str) -> tuple[BinaryIO, int]:
        key, size, etag = self._object(path)
        fh = self._call(
            lambda: self._fs.open(f"{self.bucket}/{key}", "rb", block_size=_BLOCK), opening=True
        )
        if str(fh.details.get("etag", "")).strip('"') != etag:
            fh.close()
            raise FileNotFoundError(path)  # replaced since it was listed
        return fh, size

    def _call(self, action: Callable[[], Any], *, opening: bool = False) -> Any:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

        try:
            return super()._call(action, opening=opening)
        except SourceError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientAuthenticationError) or (
                isinstance(cause, HttpResponseError) and cause.status_code in (401, 403)
            ):
                reason = getattr(cause, "reason", None) or "authorization failed"
                raise SourceError(
                    f"AZURE refused the credentials for account "
                    f"{self._fs.account_name!r}: {reason}",
                    pipeline=self.pipeline,
                ) from cause
            raise

    def _transient(self, exc: Exception) -> bool:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError

        return isinstance(exc, ServiceRequestError | ServiceResponseError) or super()._transient(
            exc
        )

    def close(self) -> None:
        _sync(self._fs, self._fs.service_client.close)


class GCSSource(_FsspecSource):
    """GCS through its JSON API (gcsfs): a service account's key, or the machine's default
    credentials (anonymous against an ``endpoint_url``, an emulator)."""

    OPTIONS = GCS_OPTIONS
    CREDENTIAL_KEYS = GCS_CREDENTIAL_KEYS
    kind = "GCS"
    scheme = "gs"

    def _connect(self, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        self._fs = _gcs(config, credentials.get("service_account_key"), self.pipeline)

    def _version(self, info: Mapping[str, Any]) -> str:
        return str(info["generation"])

    def _open(self, path: str) -> tuple[BinaryIO, int]:
        key, size, generation = self._object(path)
        opened = self._call(
            lambda: self._fs.open(
                f"{self.bucket}/{key}", "rb", block_size=_BLOCK, generation=generation
            ),
            opening=True,
        )
        return opened, size

    def _call(self, action: Callable[[], Any], *, opening: bool = False) -> Any:
        try:
            return super()._call(action, opening=opening)
        except SourceError as exc:
            code = getattr(exc.__cause__, "code", None)
            if code in (401, 403):
                raise SourceError(
                    f"GCS refused the credentials: {exc.__cause__}", pipeline=self.pipeline
                ) from exc.__cause__
            raise

    def _transient(self, exc: Exception) -> bool:
        import aiohttp

        return isinstance(exc, aiohttp.ClientConnectionError) or super()._transient(exc)

    def close(self) -> None:
        from gcsfs.core import GCSFileSystem

        if self._fs._session is not None:
            GCSFileSystem.close_session(self._fs.loop, self._fs._session)


class GCSInteropSource(S3Source):
    """GCS through its S3-compatible XML API, with HMAC keys (SingleStore's GCS credentials)."""

    OPTIONS = GCS_OPTIONS
    CREDENTIAL_KEYS = GCS_HMAC_KEYS
    kind = "GCS"
    scheme = "gs"

    def _connect(self, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        super()._connect(
            {"region": "auto", "endpoint_url": config["endpoint_url"] or GCS_XML_API},
            {
                "aws_access_key_id": credentials.get("access_id", ""),
                "aws_secret_access_key": credentials.get("secret_key", ""),
            },
        )


def gcs_source(
    uri: str, config: Mapping[str, Any], credentials: Mapping[str, Any] | None = None, **kw: Any
) -> Source:
    """The GCS source for ``credentials``: HMAC keys go to GCS's XML API, the rest to gcsfs."""
    if credentials and any(k in credentials for k in GCS_HMAC_KEYS):
        return GCSInteropSource(uri, config, credentials, **kw)
    return GCSSource(uri, config, credentials, **kw)


def _sync(fs: Any, coroutine: Callable[[], Any]) -> Any:
    """Run an SDK coroutine on the loop fsspec runs ``fs`` on."""
    import fsspec.asyn

    return fsspec.asyn.sync(fs.loop, coroutine)


def _azure(config: Mapping[str, Any], credentials: Mapping[str, Any]) -> Any:
    try:
        from adlfs import AzureBlobFileSystem
        from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry
    except ImportError as exc:  # pragma: no cover - the azure extra is not installed
        raise SourceError(
            "LOAD DATA AZURE needs the azure extra: pip install 'sluice[azure]'"
        ) from exc
    account = credentials["account_name"]
    endpoint = config["endpoint_url"] or f"https://{account}.blob.core.windows.net"
    secret = (
        f"AccountKey={credentials['account_key']}"
        if credentials.get("account_key")
        else f"SharedAccessSignature={str(credentials.get('sas_token', '')).lstrip('?')}"
    )
    protocol = "http" if endpoint.startswith("http://") else "https"
    connection = (
        f"DefaultEndpointsProtocol={protocol};AccountName={account};{secret};"
        f"BlobEndpoint={endpoint};"
    )
    fs = AzureBlobFileSystem(connection_string=connection, skip_instance_cache=True)
    _sync(fs, fs.service_client.close)
    # The SDK's default retries an endpoint that cannot be reached for about 90 s (backoff
    # from 15 s, three times); a pipeline says so within seconds and retries its own way.
    quick = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=2)
    fs.service_client = BlobServiceClient.from_connection_string(connection, retry_policy=quick)
    return fs


def _gcs(config: Mapping[str, Any], key: Any, pipeline: str) -> Any:
    try:
        from gcsfs.core import GCSFileSystem  # not gcsfs's default, which probes over gRPC
    except ImportError as exc:  # pragma: no cover - the gcs extra is not installed
        raise SourceError("LOAD DATA GCS needs the gcs extra: pip install 'sluice[gcs]'") from exc
    token: Any = None  # the machine's default credentials
    if isinstance(key, str):
        try:
            key = json.loads(key)
        except ValueError as exc:
            raise SourceError(
                "GCS CREDENTIALS service_account_key must be the key file's JSON object",
                pipeline=pipeline,
            ) from exc
    if isinstance(key, dict):
        token = key
    elif key is not None:
        raise SourceError(
            "GCS CREDENTIALS service_account_key must be the key file's JSON object",
            pipeline=pipeline,
        )
    elif config["endpoint_url"]:
        token = "anon"  # an emulator
    return GCSFileSystem(
        endpoint_url=config["endpoint_url"] or None,
        token=token,
        project=config["project"],
        skip_instance_cache=True,
    )
