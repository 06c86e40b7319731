"""Read a UTF-8 CSV into an all-text Arrow table with the source line of every row.

The fast path hands the bytes to pyarrow's multi-threaded reader; when a file has rows
with the wrong number of cells, quoted line breaks, or anything pyarrow refuses, the
exact path reads it with Python's csv module so every row keeps its physical line number.

Every input is bounded (see :func:`limits`): a header wider than the column limit refuses
the file, a value over the field limit (or a line over the line limit) sets its row aside,
and a set-aside row keeps only the start of its text.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from transforms.notices import ERROR, QUARANTINE_SCHEMA, WARNING, Findings, Notice


_NON_NEWLINE = re.compile(rb"[^\r\n]")

#: Most header cells a file may have; a wider file is refused. Real GTFS files have a few dozen.
MAX_COLUMNS = 1000
#: Most bytes one value may hold; a row with a longer value is quarantined. Real values are under 1 KiB.
MAX_FIELD_BYTES = 128 << 10
#: A physical line longer than this many field limits is quarantined without being split into cells
#: (a megabyte line of empty cells would be millions of Python strings).
LINE_FIELDS = 8
#: Bytes of a quarantined row's text that are kept; the rest is replaced by a marker saying how long it was.
RAW_KEEP_BYTES = 4096
#: Most notices of one code kept per file; the rest are counted (the count is always exact).
NOTICE_SAMPLE_LIMIT = 10_000
#: Environment variables that raise (or lower) the limits.
COLUMNS_ENV, FIELD_ENV = "NORIBA_CSV_MAX_COLUMNS", "NORIBA_CSV_MAX_FIELD_BYTES"


@dataclass(frozen=True)
class Limits:
    columns: int = MAX_COLUMNS
    field_bytes: int = MAX_FIELD_BYTES

    @property
    def line_bytes(self) -> int:
        return self.field_bytes * LINE_FIELDS


def limits() -> Limits:
    """Return the reader's limits, from NORIBA_CSV_MAX_COLUMNS and NORIBA_CSV_MAX_FIELD_BYTES when set.

    If a variable is not a whole number of at least 1, then raise ValueError naming it.
    """
    out = {}
    for env, key, default in ((COLUMNS_ENV, "columns", MAX_COLUMNS), (FIELD_ENV, "field_bytes", MAX_FIELD_BYTES)):
        text = os.environ.get(env, "").strip().replace("_", "")
        try:
            out[key] = int(text) if text else default
        except ValueError:
            out[key] = 0
        if out[key] < 1:
            raise ValueError(f"{env}={os.environ.get(env)!r} is not a whole number of at least 1 (default {default})")
    return Limits(**out)


@dataclass(slots=True)
class BadRow:
    """A row that is not read into the table: its line, cell count, text (clipped) and why."""

    line: int
    cells: int
    text: str
    code: str = "invalid_row_length"
    reason: str = ""
    field: str | None = None  # the column whose value is over the field limit


def clip(raw: bytes | str, keep: int = RAW_KEEP_BYTES) -> str:
    """Return ``raw`` as text; if it is longer than ``keep`` bytes, then its first bytes and a marker with its length."""
    if isinstance(raw, str):
        if len(raw) <= keep // 4:
            return raw
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) <= keep:
        return raw.decode("utf-8", "replace")
    return raw[:keep].decode("utf-8", "ignore") + f"… [{len(raw):,} bytes; only the first {keep:,} are kept]"


@dataclass
class CsvText:
    """A CSV file's header, its rows as text columns, and what could not be read as a row."""

    header: list[str]
    table: pa.Table  # columns c0..cN (strings, '' for empty) plus _line (int32)
    bad_rows: list[BadRow] = field(default_factory=list)
    blank_lines: int = 0
    header_line: int = 1
    #: rows kept although their cell count differs from the header: (line, cells) of the first
    #: NOTICE_SAMPLE_LIMIT; missing cells read as empty, surplus cells were all empty
    ragged_rows: list[tuple[int, int]] = field(default_factory=list)
    ragged_count: int = 0  # all of them
    #: (code, message) when the file was not read as a table (its header is then empty and every line a bad row)
    refused: tuple[str, str] | None = None
    #: notices about the file as a whole (line ends)
    notices: list[Notice] = field(default_factory=list)

    #: rows of ``table`` once it is released (see ``release``); None while it is held
    released_rows: int | None = None
    #: True if the read proved the body (after the header line) to hold no quote nor CR and every line to be one row
    #: (none blank): the fast path's _one_row_per_line; False if not proven
    one_per_line: bool = False

    @property
    def rows_in(self) -> int:
        return (self.table.num_rows if self.released_rows is None else self.released_rows) + len(self.bad_rows)

    def release(self) -> None:
        """Drop the text rows (``table`` becomes empty, same columns) once they are typed and written; ``rows_in`` stays."""
        if self.released_rows is None:
            self.released_rows = self.table.num_rows
            self.table = pa.Table.from_batches([], schema=self.table.schema)  # (Schema.empty_table imports pandas)

    def report(self, findings: Findings, file: str) -> None:
        """Add what reading found to ``findings``: notices (samples, exact counts) and one quarantine table."""
        for n in self.notices:
            findings.add(n.code, n.severity, n.message, file=file, line=n.line, field=n.field)
        if self.refused:
            code, message = self.refused
            findings.add(code, ERROR, message, file=file, line=self.header_line)
        if self.ragged_count:
            line, cells = self.ragged_rows[0]
            findings.add(
                "invalid_row_length", ERROR,
                f"{self.ragged_count} row(s) have a different number of cells than the header's {len(self.header)} "
                f"(first: line {line}, {cells} cells); missing cells were read as empty, surplus empty cells dropped",
                file=file, line=line,
            )
        if not self.bad_rows:
            return
        shown: dict[str, int] = {}
        for bad in self.bad_rows if not self.refused else ():
            shown[bad.code] = shown.get(bad.code, 0) + 1
            if shown[bad.code] <= NOTICE_SAMPLE_LIMIT:
                findings.add(bad.code, ERROR, bad.reason + "; row quarantined", file=file, line=bad.line, field=bad.field,
                             value=bad.text[:200])
            else:
                findings.counts[(bad.code, ERROR)] += 1
        findings.quarantine_tables.append(pa.table({
            "file": pa.repeat(pa.scalar(file, pa.string()), len(self.bad_rows)),
            "line": pa.array([b.line for b in self.bad_rows], pa.int64()),
            "code": pa.array([b.code for b in self.bad_rows], pa.string()),
            "reason": pa.array([b.reason for b in self.bad_rows], pa.string()),
            "raw": pa.array([b.text for b in self.bad_rows], pa.string()),
        }, schema=QUARANTINE_SCHEMA))


def _int32_array(values: np.ndarray) -> pa.Array:
    """Return a numpy int32 array as Arrow without copying (``pa.array`` on numpy imports pandas: 0.3 s on a cold start)."""
    values = np.ascontiguousarray(values, dtype=np.int32)
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def string_offsets(arr: pa.Array) -> np.ndarray:
    """Return the n + 1 value offsets of a string array as a zero-copy numpy view (slices included)."""
    return np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]


def _col_names(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def _split_header(data: bytes, lim: Limits) -> tuple[list[str], int, int, tuple[str, str] | None, bool]:
    """Return (header cells, header line number, byte offset where data rows start, refusal or None, CR line ends).

    The header is one physical line; a carriage return alone also ends it (old Mac line ends).
    A header line over the line limit is not split (its cells are estimated from its commas), and
    a header wider than the column limit refuses the file.
    """
    pos = 0
    line = 1
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        if data[pos:end].strip(b"\r\n"):
            break
        pos, line = end, line + 1
    if pos >= len(data):
        return [], line, len(data), None, False
    # the header never holds quoted line breaks in practice; read one physical line
    end = data.find(b"\n", pos)
    end = len(data) if end < 0 else end + 1
    cr = data.find(b"\r", pos, end)
    cr_only = cr >= 0 and data[cr + 1:cr + 2] != b"\n"
    if cr_only:
        end = cr + 1
    size = end - pos
    if size > lim.line_bytes:
        cells = data.count(b",", pos, end) + 1
        if cells > lim.columns:
            return [], line, end, _too_many_columns(f"about {cells:,}", lim), cr_only
        return [], line, end, ("field_too_long", f"the header line is {size:,} bytes long, over the limit of {lim.line_bytes:,}; "
                               f"the file was not read (is it a CSV file? raise {FIELD_ENV} if it truly is one)"), cr_only
    text = data[pos:end].decode("utf-8").rstrip("\r\n")
    cells = next(csv.reader([text]), [])
    if len(cells) > lim.columns:
        return [], line, end, _too_many_columns(f"{len(cells):,}", lim), cr_only
    return cells, line, end, None, cr_only


def _too_many_columns(cells: str, lim: Limits) -> tuple[str, str]:
    return ("too_many_columns",
            f"the header has {cells} columns, more than the limit of {lim.columns:,} (GTFS files have a few dozen); "
            f"the file was not read and its rows are quarantined. Check the separator is a comma, "
            f"or raise {COLUMNS_ENV} if the file truly has that many columns")


def read_csv_text(data: bytes) -> CsvText:
    """Return the rows of UTF-8 CSV ``data`` as text columns with their line numbers.

    If the header is wider than the column limit, then the file is refused: no header, every
    line a bad row. A row with a value over the field limit is a bad row (code field_too_long).
    """
    lim = limits()
    header, header_line, body_start, refused, cr_only = _split_header(data, lim)
    notices = []
    if cr_only:
        notices.append(Notice("invalid_line_ends", WARNING, "lines end with a carriage return (CR) alone, as old Mac programs "
                              "wrote; each CR was read as a line end", line=header_line))
    if refused:
        empty = pa.table({"_line": pa.array([], pa.int32())})
        bad = _refused_rows(data[body_start:], header_line, *refused)
        return CsvText([], empty, bad, header_line=header_line, refused=refused, notices=notices)
    if not header:
        return CsvText([], pa.table({"_line": pa.array([], pa.int32())}), header_line=header_line, notices=notices)
    fast = None if cr_only else _read_fast(data, body_start, len(header), header_line, lim)
    if fast is not None:
        table, blank, proven = fast
        return CsvText(header, table, [], blank, header_line, notices=notices, one_per_line=proven)
    table, bad, blank, ragged, nragged = _read_exact(data[body_start:], header, header_line, lim)
    return CsvText(header, table, bad, blank, header_line, ragged, nragged, notices=notices)


def _refused_rows(body: bytes, header_line: int, code: str, message: str) -> list[BadRow]:
    """Return every non-blank line of a refused file's body as a bad row with its text clipped."""
    why = "the file was not read: " + message.split(";")[0]
    bad = []
    for i, raw in enumerate(body.split(b"\n")):
        if raw.strip(b"\r"):
            bad.append(BadRow(header_line + 1 + i, 0, clip(raw.rstrip(b"\r")), code, why))
    return bad


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


def _within_limits(table: pa.Table, lim: Limits) -> bool:
    """Return True when no value of ``table`` is over the field limit and no row over the line limit.

    Cheap for honest files: the span of every 64th offset bounds the values inside it, so only a
    column with a span over the limit has its values measured one by one.
    """
    row_bound = 0
    for column in table.columns:
        longest = 0
        for c in column.chunks:
            if not len(c):
                continue
            offsets = string_offsets(c)
            spans = np.diff(np.append(offsets[::64], offsets[-1]))
            bound = int(spans.max())
            if bound > lim.field_bytes:
                bound = int(np.diff(offsets).max())
                if bound > lim.field_bytes:
                    return False
            longest = max(longest, bound)
        row_bound += longest + 1
    if row_bound <= lim.line_bytes:
        return True
    sizes = pc.binary_length(table.column(0)).cast(pa.int64())  # rare: rows of many long values
    for column in table.columns[1:]:
        sizes = pc.add(sizes, pc.binary_length(column).cast(pa.int64()))
    return pc.max(sizes).as_py() <= lim.line_bytes - table.num_columns


def _read_fast(data: bytes, start: int, ncols: int, header_line: int, lim: Limits):
    """Return (table, blank line count, one row per line proven) for ``data[start:]`` from pyarrow, or None when the exact
    path is needed.

    The body is never copied: pyarrow and numpy read it through zero-copy views. A value over
    the field limit (or a row over the line limit) takes the exact path, which sets the row aside.
    """
    names = _col_names(ncols)
    body = memoryview(data)[start:]
    if _NON_NEWLINE.search(body) is None:
        empty = pa.table({**{n: pa.array([], pa.string()) for n in names}, "_line": pa.array([], pa.int32())})
        return empty, data.count(b"\n", start), False
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
    if not _within_limits(table, lim):
        return None
    # Map rows to physical lines. When every line is a row, row i is line i; otherwise (blank
    # lines) find the non-blank lines; if a quoted value held a line break the counts disagree
    # and the exact path is taken.
    ends_with_nl = data.endswith(b"\n")
    proven = _one_row_per_line(data, start, table)
    if proven:
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
    return table.append_column("_line", _int32_array(lines)), blank, proven


def _read_exact(body: bytes, header: list[str], header_line: int, lim: Limits):
    """Return (table, bad rows, blank lines, ragged rows, ragged count) read record by record with exact line numbers.

    A row with fewer cells than the header is kept with the missing cells empty; one with more
    cells is kept only when the surplus cells are all empty, else it is a bad row. A line over
    the line limit is set aside before it is split into cells; a row with a value over the field
    limit is set aside after.
    """
    ncols = len(header)
    bad: list[BadRow] = []
    set_aside: set[int] = set()  # lines of the body (from 1) set aside unsplit; they read as blank records
    check_all = False  # some line is longer than the field limit: measure every row's values
    if len(body) > lim.field_bytes:
        starts, stops = _line_spans(body)
        lengths = stops - starts
        check_all = bool(lengths.max() > lim.field_bytes)
        over = np.flatnonzero(lengths > lim.line_bytes)
        if over.size:
            pieces, prev = [], 0
            for i in over.tolist():
                s, e = int(starts[i]), int(stops[i])
                bad.append(BadRow(header_line + 1 + i, 0, clip(body[s:e].rstrip(b"\r")), "field_too_long",
                                  f"line is {e - s:,} bytes long, over the limit of {lim.line_bytes:,}; "
                                  f"it was not split into cells"))
                pieces.append(body[prev:s])
                prev = e
                set_aside.add(i + 1)
            pieces.append(body[prev:])
            body = b"".join(pieces)  # the line ends stay: line numbers hold
    if csv.field_size_limit() < lim.line_bytes:  # only ever raised: other readers may need more
        csv.field_size_limit(lim.line_bytes)
    text = body.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    cols: list[list[str]] = [[] for _ in range(ncols)]
    lines: list[int] = []
    spans = None
    ragged: list[tuple[int, int]] = []
    nragged = 0
    blank = 0
    prev_end = 0

    def raw(first: int, last: int) -> str:
        nonlocal spans
        if spans is None:
            spans = tuple(a.tolist() for a in _line_spans(body))
        first, last = min(first, len(spans[0])), min(last, len(spans[0]))
        text = body[spans[0][first - 1]:spans[1][last - 1]].rstrip(b"\r")
        return text.decode("utf-8") if len(text) <= RAW_KEEP_BYTES else clip(text)

    surplus: dict[int, str] = {}  # cell count -> reason (one string for all rows alike)

    while True:
        try:
            for cells in reader:
                start = prev_end + 1
                prev_end = reader.line_num
                line = header_line + start
                if not cells:
                    if start not in set_aside:
                        blank += 1
                    continue
                if check_all or prev_end > start:
                    longest = max(range(len(cells)), key=lambda k: len(cells[k]))
                    size = len(cells[longest])
                    if size * 4 > lim.field_bytes and (size := len(cells[longest].encode("utf-8", "surrogatepass"))) > lim.field_bytes:
                        name = header[longest] if longest < ncols else f"column {longest + 1}"
                        bad.append(BadRow(line, len(cells), raw(start, prev_end), "field_too_long",
                                          f"{name} value is {size:,} bytes long, over the limit of {lim.field_bytes:,}", name))
                        continue
                if len(cells) != ncols:
                    n = len(cells)
                    if n < ncols:
                        cells = cells + [""] * (ncols - n)
                    elif not "".join(cells[ncols:]).strip():
                        cells = cells[:ncols]
                    else:
                        why = surplus.get(n) or surplus.setdefault(
                            n, f"row has {n} cells but the header has {ncols}, and the surplus cells are not empty")
                        bad.append(BadRow(line, n, raw(start, prev_end), "invalid_row_length", why))
                        continue
                    nragged += 1
                    if len(ragged) < NOTICE_SAMPLE_LIMIT:
                        ragged.append((line, n))
                for col, value in zip(cols, cells):
                    col.append(value)
                lines.append(line)
            break
        except csv.Error as e:  # a quoted value over the csv module's limit: the record is set aside
            start, prev_end = prev_end + 1, reader.line_num
            bad.append(BadRow(header_line + start, 0, raw(start, prev_end), "field_too_long", f"the row cannot be read ({e})"))
    names = _col_names(ncols)
    table = pa.table(
        {**{n: pa.array(c, pa.string()) for n, c in zip(names, cols)}, "_line": pa.array(lines, pa.int32())}
    )
    bad.sort(key=lambda b: b.line)
    return table, bad, blank, ragged, nragged


def _line_spans(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Return the start and end offsets of every physical line of ``body`` (line ends excluded)."""
    ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10)
    return np.concatenate(([0], ends + 1)), np.append(ends, len(body))
