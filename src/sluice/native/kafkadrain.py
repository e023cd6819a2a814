"""The native Kafka drain: librdkafka's consumer filling Arrow buffers in C (``kafkadrain.c``),
one call per fill, the GIL released while it waits (ctypes releases it for every call).

The C part is built by the package's install (``setup.py``, an optional extension) and is not
linked to a librdkafka of its own: the librdkafka inside confluent-kafka's wheel is loaded first
with ``RTLD_GLOBAL`` and the drain's symbols resolve against it, so both paths run one copy of
one version, which is checked. ``load()`` says why when the drain cannot be used.
"""

from __future__ import annotations

import ctypes as C
import glob
import importlib.machinery
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

log = logging.getLogger("sluice.kafka.librdkafka")

WANT_KEYS, WANT_HEADERS, WANT_TIMESTAMPS = 1, 2, 4
_SYSLOG = {0: 50, 1: 50, 2: 50, 3: 40, 4: 30, 5: 20, 6: 20, 7: 10}  # level → logging level


class _Fill(C.Structure):
    _fields_ = [
        ("max_rows", C.c_int32),
        ("want", C.c_int32),
        ("cap", C.c_int64),
        ("key_cap", C.c_int64),
        ("header_cap", C.c_int64),
        ("value_offsets", C.c_void_p),
        ("values", C.c_void_p),
        ("value_valid", C.c_void_p),
        ("key_offsets", C.c_void_p),
        ("keys", C.c_void_p),
        ("key_valid", C.c_void_p),
        ("header_offsets", C.c_void_p),
        ("headers", C.c_void_p),
        ("header_valid", C.c_void_p),
        ("partitions", C.c_void_p),
        ("offsets", C.c_void_p),
        ("timestamps", C.c_void_p),
        ("eof", C.c_void_p),
        ("eof_at", C.c_void_p),
        ("rows", C.c_int32),
        ("neof", C.c_int32),
        ("skipped", C.c_int64),
        ("need", C.c_int64),
        ("error", C.c_int32),
        ("fatal", C.c_int32),
        ("error_partition", C.c_int32),
        ("dry", C.c_int32),
        ("message", C.c_char * 512),
    ]


@dataclass
class Drained:
    """One fill: a column per field (``values``/``keys`` binary with nulls, ``headers`` as the
    text of a JSON object of each message's headers, null if it has none: names and values as
    UTF-8 text, a byte that is not valid UTF-8 as U+FFFD, a NULL value as null, a name given
    twice with its last value), the partitions that reached their end, and
    the first error other than an end (librdkafka's code and text), which stopped the fill."""

    values: pa.Array
    partitions: pa.Array
    offsets: pa.Array
    timestamps: pa.Array | None
    keys: pa.Array | None
    headers: pa.Array | None
    eof: list[int]
    eof_at: list[int]  # for each end: how many of this fill's rows came before it
    skipped: int
    error: tuple[int, str, bool, int] | None  # (code, text, fatal, partition)
    dry: bool  # the consumer's queue ran empty: nothing more is fetched yet

    @property
    def rows(self) -> int:
        return len(self.values)


class DrainError(Exception):
    """librdkafka refused a setting or an assignment: its text."""


_lib: Any = None
_why_not: str | None = None


def load() -> str | None:
    """Load the drain once; None if it can be used, else why not."""
    global _lib, _why_not
    if _lib is not None or _why_not is not None:
        return _why_not
    try:
        _lib = _open()
    except (OSError, RuntimeError) as exc:
        _why_not = str(exc)
    return _why_not


def _open() -> Any:
    import confluent_kafka

    here = os.path.dirname(os.path.abspath(__file__))
    built = [
        os.path.join(here, "_kafkadrain" + suffix)
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if os.path.exists(os.path.join(here, "_kafkadrain" + suffix))
    ]
    if not built:
        raise RuntimeError("the native Kafka drain is not built (pip install rebuilds it)")
    wheel_libs = os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)),
                              "confluent_kafka.libs")  # fmt: skip
    bundled = sorted(glob.glob(os.path.join(wheel_libs, "librdkafka*.so*")))
    if not bundled:
        raise RuntimeError(f"confluent-kafka's own librdkafka is not in {wheel_libs}")
    C.CDLL(bundled[0], mode=os.RTLD_NOW | os.RTLD_GLOBAL)
    lib = C.CDLL(built[0])
    version, want = lib.kd_version(), confluent_kafka.libversion()[1]
    if version != want:
        raise RuntimeError(f"librdkafka {version:#x} is loaded, confluent-kafka uses {want:#x}")
    lib.kd_open.restype = C.c_void_p
    lib.kd_open.argtypes = [C.POINTER(C.c_char_p), C.POINTER(C.c_char_p), C.c_int, C.c_char_p,
                            C.c_int]  # fmt: skip
    lib.kd_assign.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p, C.c_void_p, C.c_int,
                              C.c_char_p, C.c_int]  # fmt: skip
    lib.kd_fill.argtypes = [C.c_void_p, C.c_int, C.POINTER(_Fill)]
    lib.kd_logs.argtypes = [C.c_void_p, C.c_char_p, C.c_int, C.POINTER(C.c_int)]
    lib.kd_high_watermark.restype = C.c_int64
    lib.kd_high_watermark.argtypes = [C.c_void_p, C.c_char_p, C.c_int32]
    lib.kd_count.restype = C.c_int64
    lib.kd_count.argtypes = [C.c_void_p, C.c_int, C.c_int, C.POINTER(C.c_int64)]
    lib.kd_close.argtypes = [C.c_void_p]
    return lib


class Drain:
    """A librdkafka consumer of one topic's partitions, assigned at explicit offsets, read a
    fill at a time. Used by one thread at a time; ``close()`` it."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        why = load()
        if why is not None:
            raise RuntimeError(why)
        keys = [str(k).encode() for k in conf]
        values = [_conf_value(v).encode() for v in conf.values()]
        err = C.create_string_buffer(512)
        handle = _lib.kd_open(
            (C.c_char_p * len(keys))(*keys), (C.c_char_p * len(values))(*values), len(keys),
            err, 512,
        )  # fmt: skip
        if not handle:
            raise DrainError(err.value.decode(errors="replace"))
        self._handle: int | None = handle

    def assign(self, topic: str, offsets: Mapping[int, int]) -> None:
        """Read ``topic``'s partitions from these offsets (-2: the beginning)."""
        parts = (C.c_int32 * len(offsets))(*offsets.keys())
        starts = (C.c_int64 * len(offsets))(*offsets.values())
        err = C.create_string_buffer(512)
        if _lib.kd_assign(self._handle, topic.encode(), parts, starts, len(offsets), err, 512):
            raise DrainError(err.value.decode(errors="replace"))

    def fill(self, timeout: float, max_rows: int, cap: int = 16 << 20, want: int = 0) -> Drained:
        """Up to ``max_rows`` messages (waiting up to ``timeout`` s for the first ones only) in
        ``cap`` bytes of values; a message larger than the buffer gets a buffer of its own."""
        while True:
            f, buffers = _buffers(max_rows, cap, want)
            _lib.kd_fill(self._handle, int(timeout * 1000), C.byref(f))
            self._logs()
            if f.need > 0 and f.rows == 0:  # one message larger than a buffer: make room
                cap = max(cap, int(f.need))
                continue
            return _drained(f, buffers, want)

    def high_watermark(self, topic: str, partition: int) -> int:
        """The partition's end as librdkafka last saw it (-1: not known yet)."""
        return int(_lib.kd_high_watermark(self._handle, topic.encode(), partition))

    def count(self, partitions: int, timeout: float = 10.0) -> tuple[int, int]:
        """For benchmarks: read until ``partitions`` partitions reached their end, in C, only
        touching the payloads: (messages, bytes)."""
        nbytes = C.c_int64()
        rows = _lib.kd_count(self._handle, partitions, int(timeout * 1000), C.byref(nbytes))
        self._logs()
        return int(rows), nbytes.value

    def _logs(self) -> None:
        buf = C.create_string_buffer(64 * 600)
        dropped = C.c_int()
        if _lib.kd_logs(self._handle, buf, len(buf), C.byref(dropped)):
            for line in buf.value.decode(errors="replace").splitlines():
                level, _, text = line.partition("\t")
                log.log(_SYSLOG.get(int(level or 6), 20), "%s", text)
        if dropped.value:
            log.warning("%d librdkafka log lines were dropped", dropped.value)

    def close(self) -> None:
        if self._handle is not None:
            self._logs()
            _lib.kd_close(self._handle)
            self._handle = None


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _buffers(rows: int, cap: int, want: int) -> tuple[_Fill, dict[str, pa.Buffer]]:
    bitmap = (rows + 7) // 8
    sizes = {"value_offsets": 4 * (rows + 1), "values": cap, "value_valid": bitmap,
             "partitions": 4 * rows, "offsets": 8 * rows, "eof": 4 * rows,
             "eof_at": 4 * rows}  # fmt: skip
    if want & WANT_KEYS:
        sizes |= {"key_offsets": 4 * (rows + 1), "keys": cap, "key_valid": bitmap}
    if want & WANT_HEADERS:
        sizes |= {"header_offsets": 4 * (rows + 1), "headers": cap, "header_valid": bitmap}
    if want & WANT_TIMESTAMPS:
        sizes["timestamps"] = 8 * rows
    buffers = {name: pa.allocate_buffer(size) for name, size in sizes.items()}
    f = _Fill(max_rows=rows, want=want, cap=cap, key_cap=cap, header_cap=cap)
    for name, buffer in buffers.items():
        setattr(f, name, buffer.address)
    return f, buffers


def _drained(f: _Fill, b: dict[str, pa.Buffer], want: int) -> Drained:
    n = f.rows

    def binary(prefix: str, kind: pa.DataType | None = None) -> pa.Array:
        return pa.Array.from_buffers(
            kind or pa.binary(), n, [b[f"{prefix}_valid"], b[f"{prefix}_offsets"], b[f"{prefix}s"]]
        )

    eof = pa.Array.from_buffers(pa.int32(), f.neof, [None, b["eof"]]).to_pylist()
    eof_at = pa.Array.from_buffers(pa.int32(), f.neof, [None, b["eof_at"]]).to_pylist()
    error = None
    if f.error:
        error = (int(f.error), f.message.decode(errors="replace"), bool(f.fatal),
                 int(f.error_partition))  # fmt: skip
    return Drained(
        values=binary("value"),
        partitions=pa.Array.from_buffers(pa.int32(), n, [None, b["partitions"]]),
        offsets=pa.Array.from_buffers(pa.int64(), n, [None, b["offsets"]]),
        timestamps=pa.Array.from_buffers(pa.int64(), n, [None, b["timestamps"]])
        if want & WANT_TIMESTAMPS
        else None,
        keys=binary("key") if want & WANT_KEYS else None,
        headers=binary("header", pa.string()) if want & WANT_HEADERS else None,
        eof=[int(p) for p in eof],
        eof_at=[int(n) for n in eof_at],
        skipped=int(f.skipped),
        error=error,
        dry=bool(f.dry),
    )
