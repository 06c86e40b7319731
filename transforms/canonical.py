"""Turn GTFS-shaped text tables into canonical typed tables, with structural checks.

All work is set-based, never a Python loop over rows. Times and numbers are typed by
vectorised Arrow code; DuckDB SQL types what that leaves (odd forms, bad values, dates) and
finds the rows that must be quarantined, duplicate keys and broken references. The typed
tables are written as Parquet, one file per table, the big ones on a background thread.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from transforms.adapters import TextFeed
from transforms.arrowrows import rows_table
from transforms.csvread import NOTICE_SAMPLE_LIMIT, RAW_KEEP_BYTES, string_offsets
from transforms.notices import ERROR, INFO, NOTICE_SCHEMA, QUARANTINE_SCHEMA, WARNING, Findings
from transforms.schema import Field, Schema, Table
from transforms.sql import lit, q  # noqa: F401  (re-exported: lit and q were defined here)

#: NOTICE_SAMPLE_LIMIT (from csvread): most notices of one code kept per file and field; the rest are only counted.
#: Lake Parquet settings: zstd level 1 writes ~25% faster than the default level for ~15% more bytes.
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"

#: Arrow type of each DuckDB column type of the canonical tables (the Arrow path writes the same Parquet types).
ARROW_TYPES = {"INTEGER": pa.int32(), "DOUBLE": pa.float64(), "DATE": pa.date32(), "VARCHAR": pa.string()}


def write_lake_table(table: pa.Table, path: Path) -> None:
    """Write a canonical Arrow table as the lake's Parquet file.

    zstd level 1 as the DuckDB path; integers delta-encoded (line numbers, times and sequences
    shrink ~3x and write faster than dictionary pages); strings dictionary-encoded, which
    pyarrow drops by itself for a column with too many distinct values.
    A table of no rows is a file of no row group, as DuckDB's COPY writes it (pyarrow would write one empty row group
    without statistics, whose columns warehouse.publish would count as filled).
    """
    ints = [f.name for f in table.schema if f.type == pa.int32()]
    strings = [f.name for f in table.schema if f.type == pa.string()]
    options = {"compression": "zstd", "compression_level": 1, "use_dictionary": strings,
               "column_encoding": {c: "DELTA_BINARY_PACKED" for c in ints}}
    if not table.num_rows:
        pq.ParquetWriter(path, table.schema, **options).close()
        return
    pq.write_table(table, path, **options)

def parquet_nulls(path: str | Path) -> tuple[int, dict[str, int | None]]:
    """Return the rows of the Parquet file ``path`` and each column's NULLs, from its footer: None where some row group's
    statistics lack a null count (unknown). A file of no row group has no NULL in any column. Raises what pyarrow raises
    for a file it cannot read."""
    md = pq.read_metadata(path)
    nulls: dict[str, int | None] = dict.fromkeys(md.schema.names, 0)
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for j in range(rg.num_columns):
            col = rg.column(j)
            name, st = col.path_in_schema, col.statistics
            known = nulls.get(name, 0) is not None and st is not None and st.has_null_count
            nulls[name] = nulls.get(name, 0) + st.null_count if known else None
    return md.num_rows, nulls


_TYPE_NOTICE = {
    "int": ("invalid_integer", "not a whole number"),
    "enum": ("invalid_integer", "not a whole number"),
    "float": ("invalid_float", "not a decimal number"),
    "time": ("invalid_time", "not a time in H:MM:SS form (25:10:00 allowed)"),
    "date": ("invalid_date", "not a date in YYYYMMDD form"),
}


def fast_times(text: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """Return seconds after midnight for each 'HH:MM:SS' or 'H:MM:SS' text value; null where the form differs.

    Vectorised over the Arrow buffers (no per-value Python): the SQL typing only has to look at
    the values left null here (empty, spaced, or malformed).
    """
    if isinstance(text, pa.ChunkedArray):  # chunk by chunk: small temporaries stay in cache and in the heap
        return pa.chunked_array([fast_times(c) for c in text.chunks], type=pa.int32())
    arr = text
    n = len(arr)
    if n == 0 or arr.type != pa.string() or arr.buffers()[2] is None:
        return _int32_with_nulls(np.full(n, -1, dtype=np.int32))
    offsets = string_offsets(arr)
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    if not arr.null_count and offsets[-1] - offsets[0] == 8 * n and (lengths == 8).all():
        # the usual column: every value 8 characters, read through a zero-copy 2-D view
        block = data[offsets[0]:offsets[-1]].reshape(n, 8)
        return _int32_with_nulls(_hms(lambda k: block[:, k], 8))
    if arr.null_count:
        lengths = np.where(np.asarray(arr.is_null()), 0, lengths)
    out = np.full(n, -1, dtype=np.int32)
    for width in (8, 7):
        rows = np.flatnonzero(lengths == width)
        if rows.size:
            start = offsets[:-1][rows]
            out[rows] = _hms(lambda k: data[start + k], width)
    return _int32_with_nulls(out)


def _filled(arr: pa.Array) -> np.ndarray:
    """Return one bool per value of a string array: True where it is neither null nor empty (from the offsets)."""
    filled = np.diff(string_offsets(arr)) > 0
    if arr.null_count:
        filled &= np.asarray(arr.is_valid())
    return filled


def _hms(at, width: int) -> np.ndarray:
    """Return seconds for fixed-width 'HH:MM:SS' (8) or 'H:MM:SS' (7) bytes, -1 where they are not that form.

    ``at(k)`` gives the k-th byte of every value. Digits are uint8 (a byte below '0' wraps above 9).
    """
    o = width - 8  # -1 when the hour has one digit
    zero = np.uint8(48)
    ok = (at(2 + o) == 58) & (at(5 + o) == 58)
    digits = [at(k + o) - zero for k in (0, 1, 3, 4, 6, 7) if k + o >= 0]
    for d in digits:
        ok &= d <= 9
    *hour, m1, m2, s1, s2 = digits
    ok &= (m1 <= 5) & (s1 <= 5)
    secs = hour[-1].astype(np.int32)
    if len(hour) == 2:
        secs += hour[0].astype(np.int32) * 10
    secs *= 3600
    secs += (m1 * np.uint8(10) + m2).astype(np.int32) * 60
    secs += s1 * np.uint8(10) + s2
    secs[~ok] = -1
    return secs


#: Bytes a value may hold for Arrow's cast to give what the SQL typing gives (Arrow also reads '0x10', 'nan', 'inf').
_NUMBER_BYTES = {"int": b"0123456789-", "float": b"0123456789-+.eE"}
_ALLOWED = {k: np.isin(np.arange(256), np.frombuffer(v, dtype=np.uint8)) for k, v in _NUMBER_BYTES.items()}


def fast_numbers(text: pa.ChunkedArray | pa.Array, kind: str) -> pa.Array | pa.ChunkedArray:
    """Return an int ('int') or float ('float') text column typed by Arrow's strict cast; null where it could not.

    Chunk by chunk: a chunk with a byte outside plain numbers, an int over 9 characters, or a
    value Arrow refuses is left all null, and the SQL typing decides its values. Empty text is
    null. Non-finite floats are null, as in SQL.
    """
    target = pa.float64() if kind == "float" else pa.int32()
    if isinstance(text, pa.ChunkedArray):
        return pa.chunked_array([fast_numbers(c, kind) for c in text.chunks], type=target)
    arr = text
    n = len(arr)
    if n == 0 or arr.type != pa.string() or arr.buffers()[2] is None:
        return pa.nulls(n, target)
    offsets = string_offsets(arr)
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    if not _ALLOWED[kind][data].all() or (kind == "int" and np.diff(offsets).max() > 9):
        return pa.nulls(n, target)
    valid = _filled(arr)
    if not valid.all():  # empty values become nulls, which the cast skips
        arr = _with_validity(arr, valid)
    try:
        out = pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(n, target)
    if kind == "float":
        out = pc.if_else(pc.is_finite(out), out, pa.nulls(n, target))
    return out


#: Days in each month of a common year (index 0 unused).
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
#: Values :func:`fast_dates` reads at a time (its temporaries: ~80 bytes a value).
DATE_BLOCK = 1 << 18


def fast_dates(text: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """Return the date of each text value of exactly 8 ASCII digits 'YYYYMMDD' that names a real day of year 1000 to
    9999; null where the form differs (empty, spaced, other digits, an impossible day): the SQL typing decides those.

    Vectorised over the Arrow buffers like :func:`fast_times`.
    """
    if isinstance(text, pa.ChunkedArray):
        return pa.chunked_array([fast_dates(c) for c in text.chunks], type=pa.date32())
    arr = text
    n = len(arr)
    days = np.zeros(n, dtype=np.int32)
    ok = np.zeros(n, dtype=bool)
    if n and arr.type == pa.string() and arr.buffers()[2] is not None:
        offsets = string_offsets(arr)
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
        lengths = np.diff(offsets)
        if arr.null_count:
            lengths = np.where(np.asarray(arr.is_null()), 0, lengths)
        candidates = np.flatnonzero(lengths == 8)
        for at in range(0, candidates.size, DATE_BLOCK):  # a block at a time: the temporaries stay bounded
            rows = candidates[at:at + DATE_BLOCK]
            start = offsets[:-1][rows]
            digits = [(data[start + k] - np.uint8(48)).astype(np.int32) for k in range(8)]  # a byte below '0' wraps above 9
            good = np.ones(rows.size, dtype=bool)
            for d in digits:
                good &= d <= 9
            y = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3]
            m = digits[4] * 10 + digits[5]
            d = digits[6] * 10 + digits[7]
            del digits
            leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
            last = _MONTH_DAYS[np.clip(m, 0, 12)] + (leap & (m == 2))
            good &= (y >= 1000) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= last)
            # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil; y >= 1000 here)
            yy = y - (m <= 2)
            era, yoe = yy // 400, yy % 400
            doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
            value = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
            days[rows] = np.where(good, value, 0).astype(np.int32)
            ok[rows] = good
    return pa.Array.from_buffers(pa.date32(), n, [pa.py_buffer(np.packbits(ok, bitorder="little")), pa.py_buffer(days)])


def fast_values(f: Field, text: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Return field ``f``'s values typed in Arrow (None when only SQL types this kind of field)."""
    if f.type == "time":
        return fast_times(text)
    if f.type == "date":
        return fast_dates(text)
    if f.type in ("int", "enum"):
        return fast_numbers(text, "int")
    if f.type == "float":
        return fast_numbers(text, "float")
    return None


def _empty_count(text: pa.ChunkedArray) -> int:
    """Return how many values of a text column are empty or null (from the offsets: no per-value work)."""
    return sum(len(c) - int(np.count_nonzero(_filled(c))) for c in text.chunks)


#: From this many rows a table's columns are typed in Arrow two at a time, and the table is typed
#: and handed to the background writer before the other files are checked.
PARALLEL_ROWS = 1 << 20

#: Field types with an Arrow fast path.
FAST_TYPES = ("time", "int", "enum", "float", "date")


def null_column(n: int, type_: pa.DataType) -> pa.Array:
    """Return ``n`` nulls of ``type_`` on zero buffers from calloc, which the OS maps lazily.

    ``pa.nulls`` writes zeros over every byte it allocates: for the absent columns of a big
    table that is hundreds of megabytes of fresh memory touched (and, on a VM, faulted in) for
    nothing. Nothing reads the values of a null, so these pages are never touched at all.
    """
    validity = pa.py_buffer(np.zeros((n + 7) // 8, dtype=np.uint8))
    if type_ == pa.string():
        buffers = [validity, pa.py_buffer(np.zeros(n + 1, dtype=np.int32)), pa.py_buffer(b"")]
    else:
        buffers = [validity, pa.py_buffer(np.zeros(n * type_.byte_width, dtype=np.uint8))]
    return pa.Array.from_buffers(type_, n, buffers, null_count=n)


def null_if_empty(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Return a text column with empty values as null, as SQL's NULLIF(v, ''); the character data is not copied."""
    out = []
    for c in text.chunks:
        filled = _filled(c)
        out.append(c if filled.all() and not c.null_count else _with_validity(c, filled))
    return pa.chunked_array(out, type=pa.string())


def _with_validity(arr: pa.Array, valid: np.ndarray) -> pa.Array:
    """Return string array ``arr`` with ``valid`` (one bool per value) as its validity; the data is shared, not copied."""
    if arr.offset:  # the bitmap is read from bit ``offset`` on, like the offsets buffer
        valid = np.concatenate([np.zeros(arr.offset, dtype=bool), valid])
    return pa.Array.from_buffers(pa.string(), len(arr), [pa.py_buffer(np.packbits(valid, bitorder="little")), *arr.buffers()[1:]],
                                 offset=arr.offset)


def _int32_with_nulls(values: np.ndarray) -> pa.Array:
    """Return ``values`` as an Arrow int32 array, null where negative (built from buffers: pa.array with a mask imports pandas)."""
    valid = np.packbits(values >= 0, bitorder="little")
    return pa.Array.from_buffers(pa.int32(), len(values), [pa.py_buffer(valid), pa.py_buffer(values)])


def typed_expr(f: Field, v: str, *, fast: str | None = None) -> str:
    """Return the SQL expression typing the text column ``v`` as field ``f`` (NULL when it cannot)."""
    # Fast casts first; the strict pattern is only evaluated for the rare value the fast path rejects.
    if f.type in ("int", "enum"):
        return (
            f"CASE WHEN TRY_CAST({v} AS INTEGER)::VARCHAR = {v} THEN TRY_CAST({v} AS INTEGER) "
            f"WHEN regexp_full_match({v}, '\\s*[+-]?\\d{{1,9}}\\s*') THEN CAST(trim({v}) AS INTEGER) END"
        )
    if f.type == "float":
        return f"(CASE WHEN isfinite(TRY_CAST({v} AS DOUBLE)) THEN TRY_CAST({v} AS DOUBLE) END)"
    if fast and f.type in FAST_TYPES:  # values already typed in Arrow (fast_values); SQL only for what it left
        return f"CASE WHEN {fast} IS NOT NULL THEN {fast} WHEN {v} = '' THEN NULL ELSE {typed_expr(f, v)} END"
    if f.type == "time":
        return (
            f"CASE WHEN {v} GLOB '[0-9][0-9]:[0-5][0-9]:[0-5][0-9]' OR {v} GLOB '[0-9]:[0-5][0-9]:[0-5][0-9]' "
            f"THEN epoch(CAST({v} AS INTERVAL))::INTEGER "
            f"WHEN regexp_full_match({v}, '\\s*\\d{{1,3}}:[0-5]\\d:[0-5]\\d\\s*') THEN epoch(CAST(trim({v}) AS INTERVAL))::INTEGER END"
        )
    if f.type == "date":
        return f"CASE WHEN regexp_full_match({v}, '\\s*\\d{{8}}\\s*') THEN CAST(try_strptime(trim({v}), '%Y%m%d') AS DATE) END"
    return f"NULLIF({v}, '')"


@dataclass
class FileCount:
    file: str
    rows_in: int
    accepted: int = 0
    quarantined: int = 0
    encoding: str = ""
    known: bool = True


@dataclass
class Canonical:
    counts: dict[str, FileCount] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)  # canonical tables written
    columns: list[dict] = field(default_factory=list)  # every header column of every file, as COLUMNS_SCHEMA
    #: table -> its key's columns, for the tables whose written rows were deduplicated on their key here (first row wins):
    #: no two rows without a NULL in the key share it, so the data contracts need not count duplicates again
    unique_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the rows of files the schema does not know are in the connection's table ``t_other_files`` (:func:`_keep_unknown`)
    other_files: bool = False


#: ``_columns.parquet``: one row per column of every file's header, also when the file has no rows.
#: ``known`` says the column is a field of the file's table; ``likely_field`` names the field an
#: unknown column is most likely a misspelling of (rule misspelled_column), else NULL.
COLUMNS_TABLE = "_columns"
COLUMNS_SCHEMA = pa.schema([
    ("file", pa.string()), ("table_name", pa.string()), ("column", pa.string()), ("position", pa.int32()),
    ("line", pa.int32()), ("known", pa.bool_()), ("likely_field", pa.string()),
])


def edit_distance(a: str, b: str) -> int:
    """Return the optimal-string-alignment distance of ``a`` and ``b`` (insert, delete, substitute, swap neighbours)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def likely_field(name: str, table: Table, header: set[str]) -> str | None:
    """Return the field of ``table`` that the unknown column ``name`` is most likely a misspelling of, or None.

    A field is close when the lower-cased name is within 1 edit of it (fields under 8 letters),
    2 (under 16) or 3 (longer). A field the header already has is not suggested: then the column
    is an extra column, not a typo.
    """
    low = name.lower()
    best: tuple[int, str] | None = None
    for f in table.field_names:
        if f in header:
            continue
        d = edit_distance(low, f)
        if d <= (1 if len(f) < 8 else 2 if len(f) < 16 else 3) and (best is None or (d, f) < best):
            best = (d, f)
    return best[1] if best else None


class _Sink:
    """Append notice and quarantine rows produced by SQL into the feed's findings."""

    def __init__(self, con: duckdb.DuckDBPyConnection, feed: TextFeed):
        self.con = con
        self.findings = feed.findings

    def notices(self, sql: str, *, limit: int = NOTICE_SAMPLE_LIMIT) -> int:
        """Add the notices selected by ``sql`` (columns as NOTICE_SCHEMA); return how many there were.

        One statement: the total by a window over every row, the first ``limit`` by line (each query's lines are
        distinct: one notice a line), not a temporary table, a count and a drop. Most such queries find nothing: their
        rows are fetched as Python rows (a third of an Arrow result's cost); only a query that finds some runs again
        for its Arrow table."""
        first = (f"SELECT count(*) OVER () AS _total, code, severity, file, line, field, {_clipped('value', NOTICE_TEXT_CHARS)} AS value, "
                 f"{_clipped('message', NOTICE_TEXT_CHARS)} AS message FROM ({sql}) ORDER BY line LIMIT {limit}")
        found = self.con.execute(first).fetchall()
        total = found[0][0] if found else 0
        if total:
            t = self.con.sql(first).to_arrow_table().select(NOTICE_SCHEMA.names).cast(NOTICE_SCHEMA)
            counts = Counter(zip(t.column("code").to_pylist(), t.column("severity").to_pylist()))
            if total > limit:  # one code per query; the count is the query's total
                (key,) = counts
                counts[key] = total
            self.findings.add_table(t, counts)
        return total

    def quarantine(self, sql: str) -> None:
        """Add the quarantined rows selected by ``sql`` (columns as QUARANTINE_SCHEMA), each row's text clipped."""
        t = self.con.sql(f"SELECT file, line, code, reason, {_clipped('raw', RAW_KEEP_BYTES)} AS raw FROM ({sql})").to_arrow_table()
        if t.num_rows:
            self.findings.quarantine_tables.append(t.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA))


#: Characters of a notice's value and message that are kept (the full value stays in the lake's ``_untyped``).
NOTICE_TEXT_CHARS = 1000


def _clipped(col: str, keep: int) -> str:
    """Return SQL for text column ``col``: as is, or its first ``keep`` characters and a marker with its length in bytes."""
    return (f"CASE WHEN strlen({col}) > {keep} THEN left({col}, {keep}) || '… [' || format('{{:,}}', strlen({col})) "
            f"|| ' bytes; only the first {keep:,} characters are kept]' ELSE {col} END")


def _raw_json(cols: list[tuple[str, str]]) -> str:
    """Return SQL building a JSON object {header name: text} from (name, column) pairs, in order."""
    if not cols:
        return "'{}'"
    parts = ", ".join(f"{lit(to_json_key(n))} || ':' || to_json({c})" for n, c in cols)
    return f"'{{' || concat_ws(',', {parts}) || '}}'"


def to_json_key(name: str | list[str]) -> str:
    """Return ``name`` (or a list of names) as JSON text, non-ASCII kept as is."""
    return json.dumps(name, ensure_ascii=False)


def canonicalize(
    feed: TextFeed,
    *,
    schema: Schema,
    out_dir: Path,
    profile: str = "gtfs",
    con: duckdb.DuckDBPyConnection | None = None,
    views_after: bool = True,
) -> Canonical:
    """Return row counts per file after writing ``out_dir/<table>.parquet`` for every canonical table.

    Rows whose key cannot be read, or that repeat a key, go to quarantine; every other
    problem is a notice and the row is kept, with untypable text kept in ``_untyped``. ``con`` has a view
    ``t_<table>`` of each table's file after; if not ``views_after``, then only of those its checks read in SQL (a
    caller that reads the files itself saves making them).
    """
    con = con or duckdb.connect()
    out_dir.mkdir(parents=True, exist_ok=True)
    with _BackgroundWriter() as writer:
        return _canonicalize(feed, schema, out_dir, profile, con, writer, views_after=views_after)


class _BackgroundWriter:
    """Write lake tables one at a time on a thread of their own, while the checks go on.

    pyarrow's Parquet writer releases the GIL, so the biggest table's file is written on one
    core while the other runs the next file's typing and the reference checks.
    """

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-writer")
        self._pending = []

    def write(self, table: pa.Table, path: Path) -> None:
        self._pending.append(self._pool.submit(write_lake_table, table, path))

    def wait(self) -> None:
        """Return when every file is written. If a write failed, then raise its error."""
        pending, self._pending = self._pending, []
        for f in pending:
            f.result()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._pool.shutdown(wait=True, cancel_futures=True)
        return False


@dataclass
class _Typed:
    """A file's text table after the Arrow typing, and its canonical table when that typed every value."""

    text: pa.Table  # the text columns plus one Arrow-typed column per typed field (named in ``fast``)
    fast: dict[str, str]  # field -> its Arrow-typed column
    clean: set[str]  # fields whose every value typed (or was empty): SQL neither types nor checks them
    arrays: dict[str, pa.ChunkedArray]  # field -> its Arrow-typed values
    out: pa.Table | None = None  # the canonical table, when no value is left for SQL and no column is unknown
    written: bool = False  # ``out`` is already handed to the writer


@dataclass
class _State:
    """What one canonicalize run shares between its files."""

    con: duckdb.DuckDBPyConnection
    sink: _Sink
    writer: _BackgroundWriter
    out_dir: Path
    #: canonical tables kept in memory (registered as t_<table>), for the reference checks
    arrow: dict[str, pa.Table] = field(default_factory=dict)
    #: (table, field) -> its distinct values, when known for free (the groups of a proven key)
    distinct: dict[tuple[str, str], pa.Array] = field(default_factory=dict)
    #: table -> key columns deduplicated (Canonical.unique_keys); None for a table typed from two files
    unique: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    #: table -> its fields absent from the header of the file it was typed from last (NULL in every row of t_<table>)
    absent: dict[str, set[str]] = field(default_factory=dict)
    #: table -> its canonical table in memory, registered as t_<table> only once a query reads it (:func:`_use`)
    lazy: dict[str, pa.Table] = field(default_factory=dict)
    #: tables whose t_<table> is registered from memory
    registered: set[str] = field(default_factory=set)


def _use(st: _State, name: str) -> None:
    """Register ``t_<name>`` from its table in memory if a query is about to read it and it is not registered yet.

    Registering a table costs ~0.5-1 ms (its schema is converted), most of a small table's checks; most tables are
    never read by a query (their checks are proven in Arrow).
    """
    t = st.lazy.pop(name, None)
    if t is not None:
        st.con.register("t_" + name, t)
        st.registered.add(name)


def _canonicalize(feed: TextFeed, schema: Schema, out_dir: Path, profile: str, con, writer: _BackgroundWriter, *,
                  views_after: bool = True) -> Canonical:
    st = _State(con, _Sink(con, feed), writer, out_dir)
    result = Canonical()
    present: set[str] = set()
    is_jp = profile == "gtfs-jp" or any(n.endswith("_jp.txt") for n in feed.files)

    # The biggest files are typed first and, when Arrow typed every value, start being written at
    # once: their Parquet is written on the other core while the remaining files are checked. If
    # their checks quarantine rows, the file is written again without them (the writer keeps order).
    early: dict[str, _Typed] = {}
    big = [(tf.csv.table.num_rows, name) for name, tf in feed.files.items()
           if tf.csv.header and schema.by_file(name) is not None and tf.csv.table.num_rows >= PARALLEL_ROWS]
    for _, name in sorted(big, reverse=True):
        table, tf = schema.by_file(name), feed.files[name]
        known, unknown = _header_map(Findings(), table, tf, name, [])
        typed = early[name] = _type_in_arrow(table, tf, known, unknown)
        if typed.out is not None:
            writer.write(typed.out, out_dir / f"{table.name}.parquet")
            typed.written = True

    for name, tf in sorted(feed.files.items()):
        table = schema.by_file(name)
        csvt = tf.csv
        count = FileCount(name, rows_in=csvt.rows_in, encoding=tf.encoding, known=table is not None)
        count.quarantined = len(csvt.bad_rows)
        result.counts[name] = count
        if not csvt.header:
            continue
        if table is None:
            result.columns += [{"file": name, "table_name": None, "column": h.strip().lstrip("\ufeff"), "position": i + 1,
                                "line": csvt.header_line, "known": False, "likely_field": None} for i, h in enumerate(csvt.header)]
            _keep_unknown(con, tf, out_dir, result, feed)
            continue
        present.add(table.name)
        _type_table(st, table, tf, count, result.columns, early.get(name))
    _read_flex_zones(feed, schema, out_dir, present)
    pq.write_table(rows_table(result.columns, COLUMNS_SCHEMA), out_dir / f"{COLUMNS_TABLE}.parquet")

    for table in schema.tables.values():
        # A file that is there but has no header already has its empty_file notice: one notice per problem.
        if table.required and table.name not in present and table.file_name not in feed.files:
            feed.findings.add("missing_required_file", ERROR, f"required file {table.file_name} is missing", file=table.file_name)
    if not ({"calendar", "calendar_dates"} & present):
        feed.findings.add("missing_calendar_and_calendar_date_files", ERROR,
                          "neither calendar.txt nor calendar_dates.txt is present: no trip has service days", file="calendar.txt")
    if is_jp:
        for jp in ("agency_jp",):  # feed_info is required in GTFS-JP: rule missing_gtfs_jp_required_file
            if jp not in present:
                feed.findings.add("missing_recommended_file", WARNING,
                                  f"{jp}.txt is expected in a GTFS-JP feed", file=f"{jp}.txt")

    _check_references(st, schema, present, empty={n for n, tf in feed.files.items() if not tf.csv.header},
                      unread={n for n, tf in feed.files.items() if tf.csv.refused})
    writer.wait()
    # the checks are done: t_<table> reads its Parquet from now on, so the in-memory tables can go (bounded memory
    # for the rules, publish and export that follow on the same connection)
    for name in st.arrow:
        if name in st.registered:
            con.unregister("t_" + name)
        if views_after:
            con.execute(f"CREATE OR REPLACE VIEW {q('t_' + name)} AS SELECT * FROM read_parquet({lit(str(out_dir / (name + '.parquet')))})")
    st.arrow.clear()
    st.lazy.clear()
    st.registered.clear()
    st.distinct.clear()

    result.tables.extend(t.name for t in schema.tables.values() if t.name in present)
    result.unique_keys = {t: key for t, key in st.unique.items() if key and t in present}
    return result


def _read_flex_zones(feed: TextFeed, schema: Schema, out_dir: Path, present: set[str]) -> None:
    """Write ``locations.parquet`` from the feed's GTFS-Flex locations.geojson, if it has one (transforms/flex/geojson.py)."""
    from transforms.flex.geojson import FILE, read_locations

    if FILE not in feed.other_files or "locations" not in schema.tables:
        return
    write_lake_table(read_locations(feed.other_files[FILE], feed.findings), out_dir / "locations.parquet")
    present.add("locations")


def _header_map(findings: Findings, table: Table, tf, file: str, columns: list[dict]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Return ({known field: column}, [(unknown header, column)]), with notices for header problems.

    Every header column is appended to ``columns`` (COLUMNS_SCHEMA). An unknown column that is
    likely a misspelled field gets no unknown_column notice here: rule misspelled_column reports
    it from ``_columns`` (one notice per typo, a WARNING since its values are not used).
    """
    known: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    seen: set[str] = set()
    names = [h.strip().lstrip("\ufeff") for h in tf.csv.header]
    for i, raw_name in enumerate(tf.csv.header):
        col = f"c{i}"
        name = names[i]
        row = {"file": file, "table_name": table.name, "column": name, "position": i + 1, "line": tf.csv.header_line,
               "known": False, "likely_field": None}
        columns.append(row)
        if name != raw_name:
            findings.add("leading_or_trailing_whitespaces", WARNING, f"column name '{raw_name}' has spaces around it", file=file, line=tf.csv.header_line, field=name)
        if not name:
            findings.add("empty_column_name", ERROR, f"column {i + 1} has no name; its values are kept but cannot be used", file=file, line=tf.csv.header_line)
            unknown.append((f"column_{i + 1}", col))
            continue
        if name in seen:
            findings.add("duplicated_column", ERROR, f"column '{name}' appears twice; the first one is used", file=file, line=tf.csv.header_line, field=name)
            unknown.append((name, col))
            continue
        seen.add(name)
        if table.field(name) is not None:
            known[name] = col
            row["known"] = True
            continue
        row["likely_field"] = likely_field(name, table, set(names))
        if row["likely_field"] is None:
            findings.add("unknown_column", INFO, f"column '{name}' is not part of {file}; its values are kept as received",
                              file=file, line=tf.csv.header_line, field=name)
        unknown.append((name, col))
    return known, unknown


def dup_free(con, t: str, table: Table) -> bool:
    """Return True when the key is proven unique cheaply; False means 'check exactly'.

    For a key (group id, sequence number), as in stop_times and shapes, a file whose groups are
    contiguous runs with strictly increasing sequence numbers has no duplicate: one streaming
    pass proves it, where a GROUP BY over millions of rows would take seconds.
    """
    key = table.key
    if len(key) != 2 or key[1].sql_type != "INTEGER":
        return False
    g, n = q(key[0].column), q(key[1].column)
    runs, groups, bad_steps = con.execute(
        f"SELECT count(*) FILTER (WHERE prev_g IS DISTINCT FROM {g}), count(DISTINCT {g}), "
        f"count(*) FILTER (WHERE prev_g = {g} AND {n} <= prev_n) "
        f"FROM (SELECT {g}, {n}, lag({g}) OVER w AS prev_g, lag({n}) OVER w AS prev_n FROM {t} WINDOW w AS (ORDER BY _line))"
    ).fetchall()[0]
    return runs == groups and bad_steps == 0


def _null_rows(t: pa.Table, columns: list[str]) -> int:
    """Return how many rows of ``t`` have a null in any of ``columns`` (0 for none)."""
    if not columns:
        return 0
    if len(columns) == 1:
        return t.column(columns[0]).null_count
    if not any(t.column(c).null_count for c in columns):
        return 0
    some = pc.is_null(t.column(columns[0]))
    for c in columns[1:]:
        some = pc.or_(some, pc.is_null(t.column(c)))
    return int(pc.sum(some).as_py() or 0)


#: Arrow types whose equality is DuckDB's (bytes, integers, days): a key of these is checked for repeats in Arrow.
_EXACT_KEY_TYPES = (pa.string(), pa.int32(), pa.date32())
#: Most rows of a table whose key is checked for repeats in Arrow (memory: its hash table or sort is not bounded as
#: DuckDB's are); a bigger table's key is checked in SQL as before.
ARROW_KEY_ROWS = 250_000
#: Most rows of a table whose unknown columns' JSON (``_extra``) is made in memory for the Arrow path; a bigger table's
#: is written by the SQL COPY as before (it streams).
ARROW_EXTRA_ROWS = 250_000


def _keys_distinct(t: pa.Table, columns: list[str]) -> bool:
    """Return True when no two rows of ``t`` without a null in ``columns`` share their values (proven in Arrow: a hash
    count of one column, a sort of several); False means 'check in SQL' (a repeat, a table over ARROW_KEY_ROWS, or a
    column of a type not compared here)."""
    if not columns or t.num_rows > ARROW_KEY_ROWS or any(t.schema.field(c).type not in _EXACT_KEY_TYPES for c in columns):
        return False
    if _null_rows(t, columns):
        mask = pc.is_valid(t.column(columns[0]))
        for c in columns[1:]:
            mask = pc.and_(mask, pc.is_valid(t.column(c)))
        t = t.filter(mask)
    if t.num_rows < 2:
        return True
    if len(columns) == 1:
        return pc.count_distinct(t.column(columns[0])).as_py() == t.num_rows
    # sorted on the key, no two neighbours equal in every column (not Table.group_by: Acero starts a thread pool, ~16 ms)
    order = pc.sort_indices(t, sort_keys=[(c, "ascending") for c in columns])
    same = None
    for c in columns:
        col = t.column(c).take(order)
        eq = pc.equal(col.slice(1), col.slice(0, t.num_rows - 1))
        same = eq if same is None else pc.and_(same, eq)
    return not pc.any(same).as_py()


def run_groups(raw: pa.Table, group: str, number: str, *, typed: pa.ChunkedArray | None = None) -> pa.Array | None:
    """Return the distinct group ids when the raw text columns prove a (group, sequence) key unique, else None.

    The same proof as :func:`dup_free`, on the Arrow text before typing (file order is line
    order): it costs a few vectorised passes instead of a window over the typed table. Only
    plain non-empty ids and plain integers are trusted; anything else falls back. ``typed``, when
    given, is the sequence already typed (from :func:`fast_numbers`), so it is not parsed again.
    """
    if raw.num_rows < 2:
        return None
    seq = typed if typed is not None else raw.column(number)
    groups, numbers = raw.column(group).chunks, seq.chunks
    if [len(c) for c in groups] != [len(c) for c in numbers]:
        groups, numbers = [raw.column(group).combine_chunks()], [seq.combine_chunks()]
    starts: list[pa.Array] = []
    prev_g = prev_n = None
    for g, n in zip(groups, numbers):  # chunk by chunk, with the boundary between chunks checked too
        if not len(g):
            continue
        try:
            n = n if n.type == pa.int32() else pc.cast(n, pa.int32())  # strict: '', ' 5', '5.0' raise
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if n.null_count or g.null_count or pc.min(pc.binary_length(g)).as_py() == 0:  # (no Python scalars: they import pandas)
            return None
        g0, n0 = g[0].as_py(), n[0].as_py()
        if g0 == prev_g and n0 <= prev_n:
            return None
        change = pc.not_equal(g[1:], g[:-1])
        if pc.any(pc.and_(pc.invert(change), pc.less_equal(n[1:], n[:-1]))).as_py():
            return None
        if g0 != prev_g:
            starts.append(g.slice(0, 1))
        starts.append(g.slice(1).take(pc.indices_nonzero(change)))
        prev_g, prev_n = g[-1].as_py(), n[-1].as_py()
    firsts = pa.concat_arrays(starts)
    return firsts if len(pc.unique(firsts)) == len(firsts) else None  # else a group id comes back after another group


def _assemble(table: Table, text: pa.Table, known: dict[str, str], typed: dict[str, pa.ChunkedArray],
              extra: pa.ChunkedArray | None = None) -> pa.Table:
    """Return the canonical table of ``table`` from its text columns and the fields typed in Arrow (``typed``).

    Text fields get NULL for empty values, absent fields typed NULLs; no value is copied. ``_extra`` is ``extra`` (the
    unknown columns' JSON, one value a row), else NULL.
    """
    n = text.num_rows
    cols = {"_line": text.column("_line")}
    for f in table.fields:
        col = known.get(f.name)
        if col is None:
            cols[f.column] = null_column(n, ARROW_TYPES[f.sql_type])
        elif f.name in typed:
            cols[f.column] = typed[f.name]
        else:
            cols[f.column] = null_if_empty(text.column(col))
    cols["_untyped"] = cols["_extra"] = null_column(n, pa.string())
    if extra is not None:
        cols["_extra"] = extra
    return pa.table(cols)


def _copy_typed(con, table: Table, known: dict[str, str], unknown: list[tuple[str, str]], fast: dict[str, str],
                clean: set[str], fails: list[Field], raw: str, path: Path) -> None:
    """Write the canonical table to ``path`` with one SQL pass over the registered text table ``raw``.

    Values the Arrow typing left are typed here (``fast`` names its typed columns, ``clean`` the
    fields it typed completely); the original text of any value that fails is kept as JSON in
    ``_untyped``, and the unknown columns as JSON in ``_extra``.
    """
    typed_cols, raw_refs = [], []
    for f in table.fields:
        col = known.get(f.name)
        if col is None:
            typed_cols.append(f"CAST(NULL AS {f.sql_type}) AS {q(f.column)}")
        elif f.name in clean:
            typed_cols.append(f"{fast[f.name]} AS {q(f.column)}")
        else:
            typed_cols.append(f"{typed_expr(f, col, fast=fast.get(f.name))} AS {q(f.column)}")
            if f in fails:
                raw_refs.append(f"{col} AS {q('r__' + f.name)}")
    untyped = "CAST(NULL AS VARCHAR)"
    if fails:
        parts = ", ".join(
            f"CASE WHEN {q(f.column)} IS NULL AND trim({q('r__' + f.name)}) <> '' THEN {lit(to_json_key(f.name))} || ':' || to_json({q('r__' + f.name)}) END"
            for f in fails
        )
        # the JSON is only built for a row where some value failed (rare): building it for every row costs 20% of the pass
        failed = " OR ".join(f"({q(f.column)} IS NULL AND {q('r__' + f.name)} <> '' AND trim({q('r__' + f.name)}) <> '')" for f in fails)
        untyped = f"CASE WHEN {failed} THEN NULLIF('{{' || concat_ws(',', {parts}) || '}}', '{{}}') END"
    extra = _raw_json(unknown) if unknown else "CAST(NULL AS VARCHAR)"
    field_cols = ", ".join(q(f.column) for f in table.fields)
    con.execute(
        f"COPY (SELECT _line, {field_cols}, {untyped} AS _untyped, {extra} AS _extra "
        f"FROM (SELECT _line, {', '.join(typed_cols + raw_refs + [c for _, c in unknown])} FROM {raw})) "
        f"TO {lit(str(path))} ({PARQUET_OPTIONS})"
    )


def _type_in_arrow(table: Table, tf, known: dict[str, str], unknown: list[tuple[str, str]]) -> _Typed:
    """Return the file's times and numbers typed in Arrow, and its canonical table when nothing is left for SQL."""
    text = tf.csv.table
    fast, clean, arrays = {}, set(), {}
    to_type = [f for f in table.fields if f.type in FAST_TYPES and f.name in known]  # a file of no rows: all clean

    def type_one(f: Field):
        return fast_values(f, tf.csv.table.column(known[f.name]))

    if text.num_rows >= PARALLEL_ROWS and len(to_type) > 1:  # numpy and Arrow release the GIL: columns side by side
        with ThreadPoolExecutor(max_workers=2) as pool:
            typed = list(pool.map(type_one, to_type))
    else:
        typed = [type_one(f) for f in to_type]
    for f, values in zip(to_type, typed):
        fast[f.name], arrays[f.name] = f"s_{known[f.name]}", values
        text = text.append_column(fast[f.name], values)
        # every value typed or empty: the field cannot fail, so SQL neither types nor checks it
        if values.null_count == _empty_count(tf.csv.table.column(known[f.name])):
            clean.add(f.name)
    out = None
    if not unknown and not _sql_fields(table, known, clean):
        out = _assemble(table, text, known, {k: arrays[k] for k in clean})
    return _Typed(text, fast, clean, arrays, out)


def _sql_fields(table: Table, known: dict[str, str], clean: set[str]) -> list[Field]:
    """Return the fields SQL must type and check: those with values the Arrow typing left."""
    return [f for f in table.fields if f.name in known and f.name not in clean and f.type in _TYPE_NOTICE]


def _type_table(st: _State, table: Table, tf, count: FileCount, columns: list[dict], typed: _Typed | None) -> None:
    """Type one file into ``<out_dir>/<table>.parquet``; report and quarantine as the schema says.

    Times and numbers are typed in Arrow first (``typed``, when done already). When that types
    every value (the usual case), the canonical table is assembled in memory without copying,
    checked there, and handed to the background writer without its quarantined rows. Otherwise
    one SQL pass types what is left and writes the file; the original text of any value that
    does not type is kept in ``_untyped``, and the file is rewritten only when rows must be
    quarantined. Either way one aggregate pass counts every kind of problem and a detailed query
    runs only for the kinds that occur. ``t_<table>`` shows the accepted rows to the later checks.
    """
    con, sink = st.con, st.sink
    file = tf.name
    known, unknown = _header_map(sink.findings, table, tf, file, columns)
    for f in table.fields:
        if f.required and f.name not in known and table.name != "translations":
            sink.findings.add("missing_required_column", ERROR, f"required column '{f.name}' is missing", file=file, line=tf.csv.header_line, field=f.name)
    st.absent[table.name] = {f.name for f in table.fields if f.name not in known}
    raw = q("raw_" + table.name)
    typed = typed or _type_in_arrow(table, tf, known, unknown)
    fast, clean, fast_arrays = typed.fast, typed.clean, typed.arrays
    raw_registered = False

    def use_raw() -> str:  # the text table is registered only for a query that reads it
        nonlocal raw_registered
        if not raw_registered:
            con.register("raw_" + table.name, typed.text)
            raw_registered = True
        return raw
    fails = _sql_fields(table, known, clean)
    path = st.out_dir / f"{table.name}.parquet"
    t = q("t_" + table.name)
    arrow_out = typed.out
    if arrow_out is None and unknown and not fails and typed.text.num_rows <= ARROW_EXTRA_ROWS:
        # Arrow typed every value: only the unknown columns' JSON is SQL's (held in memory: a small table only)
        extra = con.sql(f"SELECT {_raw_json(unknown)} AS _extra FROM {use_raw()}").to_arrow_table().column(0)
        arrow_out = _assemble(table, typed.text, known, {k: fast_arrays[k] for k in clean}, extra=extra.cast(pa.string()))
    if arrow_out is not None:
        st.lazy[table.name] = arrow_out
    else:
        st.lazy.pop(table.name, None)
        _copy_typed(con, table, known, unknown, fast, clean, fails, use_raw(), path)
        con.execute(f"CREATE OR REPLACE VIEW {t} AS SELECT * FROM read_parquet({lit(str(path))})")
    raw_json = _raw_json(sorted([*known.items(), *unknown], key=lambda hc: int(hc[1][1:])))

    def raw_of(lines_sql: str) -> str:
        return f"(SELECT _line, {raw_json} AS raw FROM {use_raw()} WHERE _line IN ({lines_sql}))"

    def untyped_of(f: Field) -> str:
        return f"json_extract_string(_untyped, {lit('$.' + to_json_key(f.name))})"

    hard_keys = [f for f in table.key if f.required]
    soft_required = [f for f in table.fields if f.required and not f.key and f.name in known]
    key_null = " OR ".join(f"{q(f.column)} IS NULL" for f in hard_keys) or "false"
    if arrow_out is not None:  # every value typed in Arrow (``_untyped`` is all null): the counts from the validity bitmaps
        total, n_untyped, n_key_null = arrow_out.num_rows, 0, _null_rows(arrow_out, [f.column for f in hard_keys])
        n_empty = [arrow_out.column(f.column).null_count for f in soft_required]
    else:
        aggs = [f"count(*) FILTER (WHERE _untyped IS NOT NULL)", f"count(*) FILTER (WHERE {key_null})"]
        aggs += [f"count(*) FILTER (WHERE {q(f.column)} IS NULL)" for f in soft_required]
        total, n_untyped, n_key_null, *n_empty = con.execute(f"SELECT count(*), {', '.join(aggs)} FROM {t}").fetchall()[0]

    # Typing failures: one notice per value.
    if n_untyped:
        for f in fails:
            code, what = _TYPE_NOTICE[f.type]
            tail = "; row quarantined" if f.key and f.required else "; the text is kept, the typed value is empty"
            head, rest = lit(f"{f.name} value '"), lit(f"' is {what}{tail}")
            sink.notices(
                f"SELECT {lit(code)} AS code, 'ERROR' AS severity, {lit(file)} AS file, _line AS line, {lit(f.name)} AS field, "
                f"v AS value, {head} || v || {rest} AS message FROM (SELECT _line, {untyped_of(f)} AS v FROM {t} WHERE _untyped IS NOT NULL) WHERE v IS NOT NULL"
            )
    dropping: list[str] = []  # the SELECTs of the quarantined lines (into the temp table _drop; none usually)

    def drop(lines_sql: str) -> None:
        if not dropping:
            con.execute("CREATE OR REPLACE TEMP TABLE _drop (_line INTEGER)")
        dropping.append(lines_sql)
        con.execute(f"INSERT INTO _drop {lines_sql}")
    # Quarantine: a key field that is required but empty or untypable.
    if n_key_null:
        _use(st, table.name)
        empty = " OR ".join(
            f"({q(f.column)} IS NULL AND {untyped_of(f)} IS NULL)" if f in fails else f"{q(f.column)} IS NULL" for f in hard_keys
        )
        names = " / ".join(f.name for f in hard_keys)
        sink.notices(
            f"SELECT 'missing_required_field' AS code, 'ERROR' AS severity, {lit(file)} AS file, _line AS line, "
            f"{lit(', '.join(f.name for f in hard_keys))} AS field, NULL AS value, "
            f"{lit('key field ' + names + ' must be filled in; row quarantined')} AS message FROM {t} WHERE {empty}"
        )
        reasons = ", ".join(f"CASE WHEN {q(f.column)} IS NULL THEN {lit(f.name + ' is empty or unreadable')} END" for f in hard_keys)
        bad = f"SELECT _line FROM {t} WHERE {key_null}"
        sink.quarantine(
            f"SELECT {lit(file)} AS file, s._line AS line, 'missing_required_field' AS code, concat_ws('; ', {reasons}) AS reason, r.raw "
            f"FROM {t} s JOIN {raw_of(bad)} r USING (_line)"
        )
        drop(bad)
    # Duplicate keys: the first row wins, later ones are quarantined.
    if table.key:
        keys = ", ".join(q(f.column) for f in table.key)
        not_null = " AND ".join(f"{q(f.column)} IS NOT NULL" for f in table.key)
        g_col, n_col = (known.get(f.name) for f in table.key) if len(table.key) == 2 else (None, None)
        groups = None
        if g_col and n_col and table.key[1].sql_type == "INTEGER" and table.key[0].sql_type == "VARCHAR":
            groups = run_groups(tf.csv.table, g_col, n_col, typed=fast_arrays.get(table.key[1].name) if table.key[1].name in clean else None)
        if groups is not None:  # every group id once: what the reference check of that field needs
            st.distinct[(table.name, table.key[0].name)] = groups
        dup = 0
        if groups is None and not (arrow_out is not None and _keys_distinct(arrow_out, [f.column for f in table.key])):
            _use(st, table.name)  # the SQL checks below read t_<table>
            if not dup_free(con, t, table):
                dup = con.execute(f"SELECT count(*) FROM (SELECT {keys} FROM {t} WHERE {not_null} GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
        if dup:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE dups AS SELECT _line, first_line, {keys} FROM ("
                f"SELECT _line, {keys}, min(_line) OVER (PARTITION BY {keys}) AS first_line FROM {t} WHERE {not_null}"
                f") WHERE _line > first_line"
            )
            keydesc = " || ', ' || ".join(f"{lit(f.name + '=')} || CAST({q(f.column)} AS VARCHAR)" for f in table.key)
            sink.notices(
                f"SELECT 'duplicate_key' AS code, 'ERROR' AS severity, {lit(file)} AS file, _line AS line, {lit(table.key[0].name)} AS field, "
                f"{keydesc} AS value, 'key ' || {keydesc} || ' was already used on line ' || first_line || '; row quarantined' AS message FROM dups"
            )
            sink.quarantine(
                f"SELECT {lit(file)} AS file, d._line AS line, 'duplicate_key' AS code, 'same key as line ' || first_line AS reason, r.raw "
                f"FROM dups d JOIN {raw_of('SELECT _line FROM dups')} r USING (_line)"
            )
            drop("SELECT _line FROM dups")
        st.unique[table.name] = None if table.name in st.unique else tuple(f.column for f in table.key)
    # Required non-key fields left empty: reported, row kept.
    for f, n in zip(soft_required, n_empty):
        if not n:
            continue
        _use(st, table.name)
        empty = f"{q(f.column)} IS NULL" + (f" AND {untyped_of(f)} IS NULL" if f in fails else "")
        kept = " AND _line NOT IN (SELECT _line FROM _drop)" if dropping else ""
        sink.notices(
            f"SELECT 'missing_required_field' AS code, 'ERROR' AS severity, {lit(file)} AS file, _line AS line, {lit(f.name)} AS field, "
            f"NULL AS value, {lit('required field ' + f.name + ' is empty')} AS message FROM {t} WHERE {empty}{kept}"
        )
    if raw_registered:
        con.unregister("raw_" + table.name)
    dropped = con.execute("SELECT count(DISTINCT _line) FROM _drop").fetchall()[0][0] if dropping else 0
    if arrow_out is not None:
        if dropped:
            lines = con.sql("SELECT DISTINCT _line FROM _drop").to_arrow_table().column(0)
            arrow_out = arrow_out.filter(pc.invert(pc.is_in(arrow_out.column("_line"), value_set=lines.combine_chunks())))
            st.lazy.pop(table.name, None)
            con.register("t_" + table.name, arrow_out)
            st.registered.add(table.name)
        if dropped or not typed.written:
            st.writer.write(arrow_out, path)
        st.arrow[table.name] = arrow_out
    elif dropped:  # rare: rewrite the file without the quarantined rows
        tmp = path.with_suffix(".tmp.parquet")
        con.execute(f"COPY (SELECT * FROM {t} WHERE _line NOT IN (SELECT _line FROM _drop)) TO {lit(str(tmp))} ({PARQUET_OPTIONS})")
        tmp.replace(path)
    count.accepted = total - dropped
    count.quarantined = count.rows_in - count.accepted


def _keep_unknown(con, tf, out_dir: Path, result: Canonical, feed: TextFeed) -> None:
    """Keep the rows of a file the schema does not know, as JSON records, so exports can return it."""
    feed.findings.add("unknown_file", INFO, f"file {tf.name} is not part of GTFS or GTFS-JP; its rows are kept as received", file=tf.name)
    cols = [(h, f"c{i}") for i, h in enumerate(tf.csv.header)]
    con.register("raw_other", tf.csv.table)
    con.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS t_other_files (file_name VARCHAR, _line INTEGER, header VARCHAR, record VARCHAR)"
    )
    header = to_json_key(tf.csv.header)
    con.execute(
        f"INSERT INTO t_other_files SELECT {lit(tf.name)}, _line, {lit(header)}, {_raw_json(cols)} FROM raw_other"
    )
    con.unregister("raw_other")
    result.other_files = True
    result.counts[tf.name].accepted = tf.csv.table.num_rows
    result.counts[tf.name].quarantined = len(tf.csv.bad_rows)


def _all_found(st: _State, table: Table, f: Field, parents: list[tuple[str, str]]) -> bool:
    """Return True when every value of ``f`` is among the parents' keys, proven in Arrow; False means 'check in SQL'.

    Only for tables held in memory: a hash lookup per value (of each distinct value, when the
    key proof gave them) instead of the anti-join's scan and string conversion.
    """
    child = st.arrow.get(table.name)
    if child is None or not parents or any(p not in st.arrow for p, _ in parents):
        return False
    values = st.distinct.get((table.name, f.name))
    if values is None:
        values = child.column(f.column)
    keys = [pc.drop_null(st.arrow[p].column(k)).combine_chunks() for p, k in parents]
    if values.type != pa.string() or any(k.type != pa.string() for k in keys):
        return False
    found = pc.sum(pc.is_in(values, value_set=pa.concat_arrays(keys))).as_py() or 0
    return found == len(values) - values.null_count


def _check_references(st: _State, schema: Schema, present: set[str], *, empty: set[str] = frozenset(),
                      unread: set[str] = frozenset()) -> None:
    """Report every value that points at a row that does not exist (foreign_key_violation).

    The referenced file is named '(missing)' when it is absent, '(empty)' when it is in ``empty``,
    '(not read)' when it is in ``unread`` (refused by the reader's limits).
    """
    for table in schema.tables.values():
        if table.name not in present:
            continue
        for f in table.fields:
            if not f.ref:
                continue
            ptable, pfield = f.ref.split(".")
            if ptable == "service":
                parents = [(p, "service_id") for p in ("calendar", "calendar_dates") if p in present]
                target = "calendar.txt or calendar_dates.txt"
            elif ptable in present:
                parents, target = [(ptable, pfield)], f"{ptable}.txt"
            else:
                name = f"{ptable}.txt"
                parents, target = [], f"{name} ({'not read' if name in unread else 'empty' if name in empty else 'missing'})"
            if f.name in st.absent.get(table.name, ()) or _all_found(st, table, f, parents):
                continue  # a field absent from the header is NULL in every row: no value to look for
            for name in (table.name, *(p for p, _ in parents)):
                _use(st, name)
            child = q("t_" + table.name)
            parent_sql = " UNION ALL ".join(f"SELECT {q(k)} AS k FROM {q('t_' + p)}" for p, k in parents) or "SELECT NULL::VARCHAR AS k WHERE false"
            head, rest = lit(f"{f.name} '"), lit(f"' is not defined in {target} ({pfield})")
            st.sink.notices(
                f"SELECT 'foreign_key_violation' AS code, 'ERROR' AS severity, {lit(table.file_name)} AS file, _line AS line, {lit(f.name)} AS field, "
                f"CAST({q(f.column)} AS VARCHAR) AS value, {head} || CAST({q(f.column)} AS VARCHAR) || {rest} AS message "
                f"FROM {child} c WHERE {q(f.column)} IS NOT NULL AND {q(f.column)} NOT IN (SELECT k FROM ({parent_sql}) WHERE k IS NOT NULL)"
            )
