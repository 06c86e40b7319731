"""Read a UTF-8 CSV into an all-text Arrow table with the source line of every row.

The fast path hands the bytes to pyarrow's multi-threaded reader; when a file has rows
with the wrong number of cells, quoted line breaks, or anything pyarrow refuses, the
exact path reads it with Python's csv module so every row keeps its physical line number.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
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


class _Tee(io.RawIOBase):
    """A readable stream over ``source`` that keeps every chunk and what the checks need.

    It hashes the text with CRLF normalised (as ``normalised_sha256`` does), counts line ends,
    and notes NUL and non-ASCII bytes, while pyarrow's parser threads work on earlier blocks.
    """

    def __init__(self, source, first: bytes):
        self.source, self.pending = source, first
        self.chunks: list[bytes] = []
        self.sha = hashlib.sha256()
        self.newlines = 0
        self.nul = False
        self.ascii = True
        self._cr = b""  # a chunk's final CR, held back until the next chunk shows whether LF follows
        self.last = b""

    def readable(self) -> bool:
        return True

    def _take(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.newlines += chunk.count(b"\n")
        self.nul = self.nul or b"\x00" in chunk
        self.ascii = self.ascii and chunk.isascii()
        text = self._cr + chunk
        self._cr = b""
        if text.endswith(b"\r"):
            text, self._cr = text[:-1], b"\r"
        self.sha.update(text.replace(b"\r\n", b"\n") if b"\r" in text else text)
        self.last = chunk[-1:] or self.last

    def read(self, n: int = -1) -> bytes:
        if self.pending:
            chunk, self.pending = self.pending, b""
        else:
            chunk = self.source.read(n if n and n > 0 else 16 << 20)
        if chunk:
            self._take(chunk)
        return chunk

    def readinto(self, b) -> int:
        chunk = self.read(len(b))
        b[:len(chunk)] = chunk
        return len(chunk)

    def digest(self) -> str:
        self.sha.update(self._cr)
        self._cr = b""
        if self.last and self.last != b"\n":
            self.sha.update(b"\n")
        return self.sha.hexdigest()


@dataclass
class Streamed:
    """A big CSV read while it was decompressed: its table, normalised sha256 and whether it is pure ASCII."""

    csv: CsvText
    sha256: str
    ascii: bool


def read_csv_stream(stream, *, head: int = 1 << 20) -> Streamed | tuple[bytes, None]:
    """Return the CSV in ``stream`` read block by block as it is decompressed.

    The common case (UTF-8 without BOM, no NUL, one row per line) needs no second copy of the
    text: decompression, hashing and parsing overlap. Anything else returns ``(all bytes, None)``
    so the caller takes the exact path on the whole file, with the same result as before.
    """
    first = stream.read(head)

    def rest(tee: _Tee | None = None) -> tuple[bytes, None]:
        done = tee.chunks if tee is not None else [first]
        return b"".join([*done, stream.read()]), None

    if first.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return rest()
    try:
        header, header_line, body_start = _split_header(first) if b"\n" in first else ([], 0, 0)
    except UnicodeDecodeError:  # not UTF-8: the decoder decides what it is
        return rest()
    if not header or body_start >= len(first):
        return rest()
    names = _col_names(len(header))
    tee = _Tee(stream, first)
    tee.read()  # the first chunk: hashed and counted whole, header included
    body = _Skip(tee, first[body_start:])
    try:
        table = pacsv.read_csv(
            body,
            read_options=pacsv.ReadOptions(column_names=names, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):  # invalid UTF-8, wrong cell counts, odd quoting: exact path
        return rest(tee)
    if tee.nul:
        return rest(tee)
    nlines = tee.newlines - header_line + (0 if tee.last == b"\n" else 1)  # lines after the header
    if table.num_rows != nlines:  # blank lines or a quoted line break: the exact line numbers need the bytes
        return rest(tee)
    lines = np.arange(header_line + 1, header_line + 1 + nlines, dtype=np.int32)
    csvt = CsvText(header, table.append_column("_line", _int32_array(lines)), [], 0, header_line)
    return Streamed(csvt, tee.digest(), tee.ascii)


class _Skip(io.RawIOBase):
    """The tee's bytes with the header line left out: first the rest of the first chunk, then the stream."""

    def __init__(self, tee: _Tee, rest_of_first: bytes):
        self.tee, self.buf = tee, rest_of_first

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        """Return ``n`` bytes (fewer only at the end): pyarrow's reader takes a short read for a block."""
        parts, size = ([self.buf], len(self.buf)) if self.buf else ([], 0)
        self.buf = b""
        while n < 0 or size < n:
            chunk = self.tee.read(n - size if n > 0 else -1)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)
