"""FORMAT CSV (the default): delimited text, parsed for the whole batch at once by pyarrow.

Options follow MySQL ``LOAD DATA``: fields end with ``FIELDS TERMINATED BY`` (default tab),
may be ``[OPTIONALLY] ENCLOSED BY`` a quote character, and ``ESCAPED BY`` a character that makes
the next one literal (so ``\\,`` is a comma inside a field). Unlike MySQL, escape sequences such
as ``\\t`` are not translated and ``\\N`` is not NULL: use ``NULL DEFINED BY``.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sluice.errors import FormatError
from sluice.formats.base import Format, ParsedBatch, RecordError, empty_table
from sluice.sql import ast
from sluice.vocab import ArrowRecords, empty_for_null, row_numbers, value_span


class CsvFormat(Format):
    def __init__(
        self,
        spec: ast.CsvSpec,
        targets: Sequence[str],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
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
        return self._parse_lines(b"\n".join(records), records)

    def parse_array(self, values: pa.Array | pa.ChunkedArray) -> ParsedBatch:
        if not len(values):
            return ParsedBatch(empty_table(self.targets))
        if isinstance(values, pa.ChunkedArray):  # the lines are joined into one buffer anyway
            values = values.combine_chunks()
        # each record and a line end, joined by Arrow: the buffer is the batch's lines
        lines = pc.binary_join_element_wise(empty_for_null(values), b"", b"\n")
        start, end = value_span(lines)
        return self._parse_lines(lines.buffers()[2][start:end].to_pybytes(), ArrowRecords(values))

    def _parse_lines(self, data: bytes, records: Sequence[bytes]) -> ParsedBatch:
        try:
            batch = self._parse(data, skip_rows=0)
        except _InvalidUtf8:
            return self._without_invalid_utf8(list(records))
        if not batch.errors:
            if batch.table.num_rows == len(records):
                batch.record_index = row_numbers(len(records))
            return batch
        return _locate_errors(list(records), batch)

    def _without_invalid_utf8(self, records: Sequence[bytes]) -> ParsedBatch:
        """Rare path: leave out the records that are not UTF-8 and parse the others."""
        good: list[int] = []
        errors = []
        for i, raw in enumerate(records):
            try:
                raw.decode("utf-8")
                good.append(i)
            except UnicodeDecodeError as exc:
                errors.append(RecordError(i, f"record is not valid UTF-8 (byte {exc.start})", raw))
        parsed = self.parse_records([records[i] for i in good])
        remap = pa.array(good, pa.int64())
        index = remap.take(parsed.record_index) if parsed.record_index is not None else None
        moved = [RecordError(good[e.index] if e.index is not None else None, e.reason, e.raw)
                 for e in parsed.errors]  # fmt: skip
        return ParsedBatch(parsed.table, index, sorted(errors + moved, key=_position))

    def _parse(self, data: bytes, skip_rows: int) -> ParsedBatch:
        spec = self.spec
        if spec.lines_terminated_by not in ("\n", "\r\n"):
            data = data.replace(spec.lines_terminated_by.encode(), b"\n")
        if spec.lines_starting_by:
            data = _strip_line_prefix(data, spec.lines_starting_by.encode())
        errors: list[RecordError] = []
        short: list[tuple[int, str, int]] = []  # TRAILING NULLCOLS: (position, text, fields)
        dropped: list[int] = []  # positions of the rows left out of the table

        def invalid(row: pacsv.InvalidRow) -> str:
            got, want = row.actual_columns, row.expected_columns
            if row.number is not None:  # known when reading serially (TRAILING NULLCOLS)
                dropped.append(row.number - skip_rows - 1)
                if got < want and spec.trailing_nullcols:
                    short.append((dropped[-1], row.text, got))
                    return "skip"
            reason = f"record has {got} fields, expected {want} ({', '.join(self.targets)})"
            errors.append(RecordError(None, reason, row.text.encode()))
            return "skip"

        null_values = [spec.null_defined_by] if spec.null_defined_by is not None else []
        table = self._read(data, skip_rows, invalid, null_values)
        if short:
            table = self._with_trailing_nulls(table, short, dropped, null_values, errors)
        return ParsedBatch(table.rename_columns(list(self.targets)), errors=errors)

    def _read(
        self,
        data: bytes,
        skip_rows: int,
        invalid: Callable[[pacsv.InvalidRow], str],
        null_values: list[str],
    ) -> pa.Table:
        spec = self.spec
        try:
            return pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(
                    column_names=self._fields,
                    skip_rows=skip_rows,
                    # read serially, pyarrow numbers the rows it leaves out: where a short
                    # record goes back in
                    use_threads=not spec.trailing_nullcols,
                ),
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
            if "UTF8" in str(exc).upper():
                raise _InvalidUtf8(str(exc)) from exc
            if "Empty CSV file" in str(exc):
                return empty_table(self._fields)
            raise FormatError(f"CSV data could not be parsed: {exc}") from exc

    def _with_trailing_nulls(
        self,
        table: pa.Table,
        short: list[tuple[int, str, int]],
        dropped: list[int],
        null_values: list[str],
        errors: list[RecordError],
    ) -> pa.Table:
        """``table`` with the ``short`` records back in their places, their missing trailing
        fields NULL: they are parsed again (in one call) with a field that reads as NULL added
        for each one missing."""
        pad = self.spec.fields_terminated_by + _NULL
        want = len(self._fields)
        padded = "\n".join(text + pad * (want - got) for _, text, got in short).encode()
        kept = np.array([position for position, _, _ in short])
        left_out: list[int] = []

        def invalid(row: pacsv.InvalidRow) -> str:
            left_out.append((row.number or 0) - 1)
            reason = f"record has {row.actual_columns} fields, expected {want}"
            errors.append(RecordError(None, reason, row.text.encode()))
            return "skip"

        again = self._read(padded, 0, invalid, [*null_values, _NULL])
        if left_out:
            kept = np.delete(kept, left_out)
        total = table.num_rows + len(dropped)
        placed = np.setdiff1d(np.arange(total), np.array(dropped))
        positions = np.concatenate([placed, kept])
        both = pa.concat_tables([table, again])
        return both.take(pa.array(np.argsort(positions, kind="stable")))

    def parse_file(self, data: bytes, *, continues: bool = False) -> ParsedBatch:
        skip = 0 if continues else self.spec.ignore_lines
        try:
            return self._parse(data, skip_rows=skip)
        except _InvalidUtf8:
            lines = data.split(b"\n")[skip:]
            parsed = self._without_invalid_utf8([line for line in lines if line])
            parsed.record_index = None
            return parsed

    def record_end(self, data: bytes) -> int:
        """After the last line terminator outside an enclosed field: the enclosing characters
        before it are even in number, not counting escaped ones (a doubled one counts twice)."""
        end = self.spec.lines_terminated_by.encode()
        if not self.spec.enclosed_by:
            found = data.rfind(end)
            return found + len(end) if found >= 0 else 0
        quote = self.spec.enclosed_by.encode()
        escaped = self.spec.escaped_by.encode() + quote if self.spec.escaped_by else None

        def quotes(piece: bytes) -> int:
            return piece.count(quote) - (piece.count(escaped) if escaped else 0)

        open_quotes, counted_to = quotes(data), len(data)
        found = data.rfind(end)
        while found >= 0:
            cut = found + len(end)
            open_quotes -= quotes(data[cut:counted_to])
            counted_to = cut
            if open_quotes % 2 == 0:
                return cut
            found = data.rfind(end, 0, found)
        return 0


#: What the fields TRAILING NULLCOLS adds to a short record read as: NULL.
_NULL = "\x00sluice-null\x00"


class _InvalidUtf8(Exception):
    pass


def _position(e: RecordError) -> int:
    return -1 if e.index is None else e.index


def _locate_errors(records: Sequence[bytes], batch: ParsedBatch) -> ParsedBatch:
    """pyarrow reports a bad row's text, not its position: find each in the records (rare
    path), so every error names its record and every good row maps to one."""
    pending = Counter(e.raw for e in batch.errors)
    reasons = {e.raw: e.reason for e in batch.errors}
    index: list[int] = []
    errors: list[RecordError] = []
    for i, raw in enumerate(records):
        if pending[raw] > 0:
            pending[raw] -= 1
            errors.append(RecordError(i, reasons[raw], raw))
        else:
            index.append(i)
    if len(index) != batch.table.num_rows:
        return ParsedBatch(batch.table, None, batch.errors)  # records spanning several lines
    return ParsedBatch(batch.table, pa.array(index, pa.int64()), errors)


def _strip_line_prefix(data: bytes, prefix: bytes) -> bytes:
    # MySQL: skip each line up to and including the prefix; lines without it are skipped.
    lines = (line.split(prefix, 1) for line in data.split(b"\n"))
    return b"\n".join(parts[1] for parts in lines if len(parts) == 2)
