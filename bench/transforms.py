"""The transforms the bench's transform scenarios run (named by file path, so the scenario's
process needs no package on its path)."""

from __future__ import annotations

import struct
import sys

import pyarrow as pa
import pyarrow.compute as pc


def fahrenheit(table: pa.Table) -> pa.Table:
    """A Python transform: one computed column in place (vectorised, as a transform should be)."""
    i = table.column_names.index("temp")
    return table.set_column(i, "temp", pc.add(pc.multiply(table.column(i), 1.8), 32))


def main() -> None:
    """A program transform: Kafka's framed records in (8-byte little-endian length + payload),
    one JSON document per line out, unchanged. The plainest program a user would write."""
    data = sys.stdin.buffer.read()
    out = []
    at, end = 0, len(data)
    unpack = struct.Struct("<Q").unpack_from
    while at < end:
        (n,) = unpack(data, at)
        out.append(data[at + 8 : at + 8 + n])
        at += 8 + n
    sys.stdout.buffer.write(b"\n".join(out) + b"\n")


if __name__ == "__main__":
    main()
