"""FORMAT CSV (the default): delimited text, parsed for the whole batch at once by pyarrow.

Options follow MySQL ``LOAD DATA``: fields end with ``FIELDS TERMINATED BY`` (default tab),
may be ``[OPTIONALLY] ENCLOSED BY`` a quote character, and ``ESCAPED BY`` a character that makes
the next one literal (so ``\\,`` is a comma inside a field). Unlike MySQL, escape sequences such
as ``\\t`` are not translated and ``\\N`` is not NULL: use ``NULL DEFINED BY``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pacsv

from sluice.errors import FormatError
from sluice.formats.base import Format, ParsedBatch, RecordError, empty_table
from sluice.sql import ast


class CsvFormat(Format):
    def __init__(self, spec: ast.CsvSpec, targets: Sequence[str]) -> None:
        for option, value in (
            ("FIELDS TERMINATED BY", spec.fields_terminated_by),
            ("ENCLOSED BY", spec.enclosed_by),
            ("ESCAPED BY", spec.escaped_by),
        ):
            if len(value) > 1:
                raise FormatError(f"{option} must be one character, got {value!r}")
        if not targets:
            raise FormatError("FORMAT CSV needs at least one column to load")
        self.spec = spec
        self.targets = tuple(targets)
        self._fields = [f"f{i}" for i in range(len(self.targets))]

    def parse_records(self, records: Sequence[bytes]) -> ParsedBatch:
        if not records:
            return ParsedBatch(empty_table(self.targets))
        batch = self._parse(b"\n".join(records), skip_rows=0)
        if batch.table.num_rows + len(batch.errors) == len(records):
            batch.record_index = self._record_index(len(records), batch.errors)
        return batch

    def parse_file(self, data: bytes) -> ParsedBatch:
        return self._parse(data, skip_rows=self.spec.ignore_lines)

    def _parse(self, data: bytes, skip_rows: int) -> ParsedBatch:
        spec = self.spec
        if spec.lines_terminated_by not in ("\n", "\r\n"):
            data = data.replace(spec.lines_terminated_by.encode(), b"\n")
        if spec.lines_starting_by:
            data = _strip_line_prefix(data, spec.lines_starting_by.encode())
        errors: list[RecordError] = []

        def invalid(row: pacsv.InvalidRow) -> str:
            got, want = row.actual_columns, row.expected_columns
            reason = f"record has {got} fields, expected {want} ({', '.join(self.targets)})"
            errors.append(RecordError(None, reason, row.text.encode()))
            return "skip"

        null_values = [spec.null_defined_by] if spec.null_defined_by is not None else []
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(column_names=self._fields, skip_rows=skip_rows),
                parse_options=pacsv.ParseOptions(
                    delimiter=spec.fields_terminated_by,
                    quote_char=spec.enclosed_by or False,
                    escape_char=spec.escaped_by or False,
                    newlines_in_values=bool(spec.enclosed_by),
                    invalid_row_handler=invalid,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={f: pa.string() for f in self._fields},
                    null_values=null_values,
                    strings_can_be_null=bool(null_values),
                ),
            )
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                return ParsedBatch(empty_table(self.targets), errors=errors)
            raise FormatError(f"CSV data could not be parsed: {exc}") from exc
        return ParsedBatch(table.rename_columns(list(self.targets)), errors=errors)

    def _record_index(self, n: int, errors: list[RecordError]) -> pa.Array | None:
        if not errors:
            return pa.array(range(n), pa.int64())
        return None  # the handler does not tell which line failed; rows are not mapped


def _strip_line_prefix(data: bytes, prefix: bytes) -> bytes:
    # MySQL: skip each line up to and including the prefix; lines without it are skipped.
    lines = (line.split(prefix, 1) for line in data.split(b"\n"))
    return b"\n".join(parts[1] for parts in lines if len(parts) == 2)
