"""Read a UTF-8 CSV into an all-text Arrow table with the source line of every row.

The fast path hands the bytes to pyarrow's multi-threaded reader; when a file has rows
with the wrong number of cells, quoted line breaks, or anything pyarrow refuses, the
exact path reads it with Python's csv module so every row keeps its physical line number.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


_NON_NEWLINE = re.compile(rb"[^\r\n]")


@dataclass
class BadRow:
    line: int
    cells: int
    text: str


@dataclass
class CsvText:
    """A CSV file's header, its rows as text columns, and what could not be read as a row."""

    header: list[str]
    table: pa.Table  # columns c0..cN (strings, '' for empty) plus _line (int32)
    bad_rows: list[BadRow] = field(default_factory=list)
    blank_lines: int = 0
    header_line: int = 1
    #: rows kept although their cell count differs from the header: (line, cells); missing cells read as empty,
    #: surplus cells were all empty
    ragged_rows: list[tuple[int, int]] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        return self.table.num_rows + len(self.bad_rows)


def _int32_array(values: np.ndarray) -> pa.Array:
    """Return a numpy int32 array as Arrow without copying (``pa.array`` on numpy imports pandas: 0.3 s on a cold start)."""
    values = np.ascontiguousarray(values, dtype=np.int32)
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def string_offsets(arr: pa.Array) -> np.ndarray:
    """Return the n + 1 value offsets of a string array as a zero-copy numpy view (slices included)."""
    return np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]


def _col_names(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def _split_header(data: bytes) -> tuple[list[str], int, int]:
    """Return (header cells, header line number, byte offset where data rows start)."""
    pos = 0
    line = 1
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        if data[pos:end].strip(b"\r\n"):
            break
        pos, line = end, line + 1
    if pos >= len(data):
        return [], line, len(data)
    # the header never holds quoted line breaks in practice; read one physical line
    end = data.find(b"\n", pos)
    end = len(data) if end < 0 else end + 1
    text = data[pos:end].decode("utf-8").rstrip("\r\n")
    cells = next(csv.reader([text]), [])
    return cells, line, end


def read_csv_text(data: bytes) -> CsvText:
    """Return the rows of UTF-8 CSV ``data`` as text columns with their line numbers."""
    header, header_line, body_start = _split_header(data)
    if not header:
        return CsvText([], pa.table({"_line": pa.array([], pa.int32())}), header_line=header_line)
    fast = _read_fast(data, body_start, len(header), header_line)
    if fast is not None:
        table, blank = fast
        return CsvText(header, table, [], blank, header_line)
    table, bad, blank, ragged = _read_exact(data[body_start:], len(header), header_line)
    return CsvText(header, table, bad, blank, header_line, ragged)


def _one_row_per_line(data: bytes, start: int, table: pa.Table) -> bool:
    """Return True when every line of ``data[start:]`` is exactly one row of ``table``.

    Without quotes or CRs, a line is its cells, a comma between each and a line end, so the
    body's length tells whether a blank line was skipped: two memchr scans and the column byte
    totals, instead of counting every line end.
    """
    if data.find(b'"', start) >= 0 or data.find(b"\r", start) >= 0:
        return False
    cells = 0
    for column in table.columns:
        for c in column.chunks:
            if len(c):
                offsets = string_offsets(c)
                cells += int(offsets[-1]) - int(offsets[0])
    ends_with_nl = data.endswith(b"\n")
    return cells + table.num_rows * table.num_columns - (0 if ends_with_nl else 1) == len(data) - start


def _read_fast(data: bytes, start: int, ncols: int, header_line: int):
    """Return (table, blank line count) for ``data[start:]`` from pyarrow, or None when the exact path is needed.

    The body is never copied: pyarrow and numpy read it through zero-copy views.
    """
    names = _col_names(ncols)
    body = memoryview(data)[start:]
    if _NON_NEWLINE.search(body) is None:
        empty = pa.table({**{n: pa.array([], pa.string()) for n in names}, "_line": pa.array([], pa.int32())})
        return empty, data.count(b"\n", start)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data).slice(start),
            read_options=pacsv.ReadOptions(column_names=names, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):  # wrong cell counts, quoting pyarrow refuses: exact path
        return None
    # Map rows to physical lines. When every line is a row, row i is line i; otherwise (blank
    # lines) find the non-blank lines; if a quoted value held a line break the counts disagree
    # and the exact path is taken.
    ends_with_nl = data.endswith(b"\n")
    if _one_row_per_line(data, start, table):
        nlines = table.num_rows
    else:
        nlines = data.count(b"\n", start) + (0 if ends_with_nl else 1)
    if table.num_rows == nlines:
        lines = np.arange(header_line + 1, header_line + 1 + nlines, dtype=np.int32)
        blank = 0
    else:
        arr = np.frombuffer(body, dtype=np.uint8)
        ends = np.flatnonzero(arr == 10)
        if not ends_with_nl:
            ends = np.append(ends, len(body))
        starts = np.concatenate(([0], ends[:-1] + 1))
        length = ends - starts
        cr_only = (length == 1) & (arr[np.minimum(starts, len(arr) - 1)] == 13)
        nonblank = (length > 0) & ~cr_only
        if int(nonblank.sum()) != table.num_rows:
            return None
        lines = (np.flatnonzero(nonblank) + header_line + 1).astype(np.int32)
        blank = int((~nonblank).sum())
    return table.append_column("_line", _int32_array(lines)), blank


def _read_exact(body: bytes, ncols: int, header_line: int):
    """Return (table, bad rows, blank lines, ragged rows) read record by record with exact line numbers.

    A row with fewer cells than the header is kept with the missing cells empty; one with more
    cells is kept only when the surplus cells are all empty, else it is a bad row.
    """
    text = body.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    cols: list[list[str]] = [[] for _ in range(ncols)]
    lines: list[int] = []
    bad: list[BadRow] = []
    physical: list[str] | None = None
    ragged: list[tuple[int, int]] = []
    blank = 0
    prev_end = 0
    for cells in reader:
        start = prev_end + 1
        prev_end = reader.line_num
        line = header_line + start
        if not cells:
            blank += 1
            continue
        if len(cells) != ncols:
            if len(cells) < ncols:
                ragged.append((line, len(cells)))
                cells = cells + [""] * (ncols - len(cells))
            elif not any(c.strip() for c in cells[ncols:]):
                ragged.append((line, len(cells)))
                cells = cells[:ncols]
        if len(cells) != ncols:
            if physical is None:
                physical = text.split("\n")
            raw = "\n".join(physical[start - 1:prev_end]).rstrip("\r\n")
            bad.append(BadRow(line, len(cells), raw))
            continue
        for col, value in zip(cols, cells):
            col.append(value)
        lines.append(line)
    names = _col_names(ncols)
    table = pa.table(
        {**{n: pa.array(c, pa.string()) for n, c in zip(names, cols)}, "_line": pa.array(lines, pa.int32())}
    )
    return table, bad, blank, ragged

