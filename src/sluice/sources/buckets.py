"""What the sources of object stores (S3, Azure Blob, GCS) share: an address
``bucket/prefix*``, objects named by key *and* version, and the FS source for the rest.

An object is a partition named ``scheme://bucket/key#version`` (the version is the store's
ETag or generation), so an object uploaded again under the same key is a new partition and
loads again, as SingleStore does; ``PIPELINES_FILES`` shows both. Byte budgets, cutting between
records, compressed objects, Parquet's row groups and cursors are the FS source's. Objects are
whole once they are listed (a store never shows half an upload), so nothing waits to settle.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sluice.errors import SourceError
from sluice.options import Option, OptionSpec
from sluice.sources.fs import OPTIONS as FS_OPTIONS
from sluice.sources.fs import FileSource, PieceReader

_GLOB = "*?["


def options(kind: str, *more: Option, relist: float) -> OptionSpec:
    """The CONFIG keys of a bucket source: the FS source's, ``endpoint_url``,
    ``relist_seconds`` (default ``relist``) and ``more``."""
    return OptionSpec(
        f"{kind} CONFIG",
        (
            *FS_OPTIONS.options,
            *more,
            Option("endpoint_url", "", f"a {kind}-compatible endpoint (an emulator, say)"),
            Option("relist_seconds", relist, "how often the whole prefix is listed", minimum=0),
        ),
    )


class BucketSource(FileSource):
    """A bucket source: ``OPTIONS`` and ``CREDENTIAL_KEYS`` say what CONFIG and CREDENTIALS it
    takes; ``_connect`` makes its client from them, parsed and checked."""

    #: The CONFIG keys (see ``options``).
    OPTIONS: OptionSpec
    #: The CREDENTIALS keys.
    CREDENTIAL_KEYS: tuple[str, ...]
    #: The scheme of the partitions' names.
    scheme: str
    #: What the store calls a bucket.
    noun = "bucket"

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
        values = self.OPTIONS.parse(config, error=SourceError, pipeline=pipeline)
        fs_config = {o.key: values[o.key] for o in FS_OPTIONS.options}
        super().__init__(
            uri, fs_config, pipeline=pipeline, record_end=record_end, read_file=read_file,
            settle=0.0,
        )  # fmt: skip
        bucket, _, pattern = uri.removeprefix(f"{self.scheme}://").partition("/")
        if not bucket:
            raise SourceError(
                f"{self.kind} address {uri!r} has no {self.noun}: '{self.noun}/prefix*'",
                pipeline=pipeline,
            )
        self.bucket = bucket
        self.glob = pattern if any(c in pattern for c in _GLOB) else pattern + "*"
        self.prefix = pattern[
            : min((pattern.find(c) for c in _GLOB if c in pattern), default=len(pattern))
        ]
        self._relist = float(values["relist_seconds"])
        #: partition name → (key, size, version), as last listed
        self._objects: dict[str, tuple[str, int, str]] = {}
        unknown = sorted(set(credentials or {}) - set(self.CREDENTIAL_KEYS))
        if unknown:
            raise SourceError(
                f"unknown {self.kind} CREDENTIALS key(s) {unknown}; "
                f"valid keys: {list(self.CREDENTIAL_KEYS)}",
                pipeline=pipeline,
            )
        self._connect(values, dict(credentials or {}))

    def _connect(self, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        """Make the store's client from the parsed CONFIG and the checked CREDENTIALS."""
        raise NotImplementedError

    def _found(self, objects: Iterable[tuple[str, int, str]]) -> None:
        """Keep the listed ``(key, size, version)`` that match the address's glob."""
        for key, size, version in objects:
            if not key.endswith("/") and fnmatch.fnmatchcase(key, self.glob):
                name = f"{self.scheme}://{self.bucket}/{key}#{version}"
                self._objects[name] = (key, size, version)

    def _ready(self, cursors: Mapping[str, int]) -> tuple[list[str], float | None]:
        return [name for name in self._files() if cursors.get(name, 0) != 1], None

    def _filename(self, path: str) -> str:
        return path.rsplit("#", 1)[0]

    def _object(self, path: str) -> tuple[str, int, str]:
        found = self._objects.get(path)
        if found is None:
            raise FileNotFoundError(path)
        return found
