"""Readers: every trip file format becomes a DuckDB table of text columns plus its file and record number.

CSV in any encoding (UTF-8 read by DuckDB directly; anything else decoded by
transforms.encoding.decode() into a UTF-8 staging copy first), Parquet, JSON (an array of
records, or JSON lines), Avro (fastavro), XLSX and ODS (streamed by transforms.xlsx and transforms.ods, first sheet or the spec's sheet) and
MDS provider ``trips`` payloads (validated with jsonschema; invalid trips are rejected with the
schema's message). Values stay text here: typing is the mapping engine's job, so a bad value is
reported with its row instead of failing the whole file.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from transforms.adapters import InputError
from transforms.encoding import _PRIVATE_USE, _looks_japanese, decode
from transforms.notices import ERROR, Notice
from transforms.notices import INFO, WARNING
from transforms.trips.spec import HEADER_SCAN_ROWS, TripOptions, file_label

_EXT_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "jsonl",
                ".ndjson": "jsonl", ".avro": "avro", ".xlsx": "xlsx", ".ods": "xlsx"}  # xlsx: a spreadsheet, .xlsx or .ods


@dataclass
class SourceFile:
    path: Path  # as received
    label: str  # relative to the source root
    format: str
    read_path: Path | None = None  # UTF-8 copy for CSV that needed decoding
    encoding: str = "utf-8"
    header: tuple[str, ...] = ()
    notices: list[Notice] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (row, reason, raw json) found while reading
    header_line: int = 1  # 1-based line (record) of the header in the file as received
    header_hint: int | None = None  # a later line that holds the spec's column names, when the header line does not
    read_notices: list[Notice] = field(default_factory=list)  # what reading the rows found (after inspect)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def list_files(root: Path, patterns: tuple[str, ...]) -> list[Path]:
    """Return the files under ``root`` matching the spec's patterns, sorted, each once. If none match, raise InputError."""
    if root.is_file():
        return [root]
    if not root.exists():
        raise InputError(f"{root}: the source folder does not exist; check source.path in the spec",
                         ja=f"{root}: 読み込むフォルダがありません。spec の source.path を確認してください")
    seen: dict[Path, None] = {}
    for pat in patterns:
        for p in sorted(glob.glob(str(root / pat), recursive=True)):
            if Path(p).is_file():
                seen.setdefault(Path(p), None)
    if not seen:
        raise InputError(f"{root}: no file matches {', '.join(patterns)}; check trips.files in the spec",
                         ja=f"{root}: {'、'.join(patterns)} に当てはまるファイルがありません。spec の trips.files を確認してください")
    return list(seen)


def file_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    fmt = _EXT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path.name}: cannot tell the format from the extension; set trips.format in the spec",
                         ja=f"{path.name}: 拡張子からファイル形式がわかりません。spec の trips.format で形式を指定してください")
    return fmt


def inspect(path: Path, *, root: Path, opts: TripOptions, encoding: str | None, staging: Path) -> SourceFile:
    """Return the file ready to read: its format, header, and a UTF-8 copy when the bytes needed decoding."""
    sf = SourceFile(path=path, label=file_label(path, root), format=file_format(path, opts.format))
    if sf.format != "csv":
        return sf
    raw = path.read_bytes()
    nul = b"\x00" in raw
    if encoding is None and not nul and (raw.isascii() or _is_utf8(raw)) and not raw.startswith(b"\xef\xbb\xbf"):
        sf.read_path = path
    else:
        dec = decode(raw, file=sf.label, override=encoding)
        sf.encoding, sf.notices = dec.encoding, list(dec.notices)
        staging.mkdir(parents=True, exist_ok=True)
        sf.read_path = staging / f"utf8-{abs(hash(sf.label)):x}.csv"
        enc = _ROW_ENCODINGS.get(dec.encoding, dec.encoding)
        suspect = False
        if dec.encoding == "utf-16":
            pass  # decoded whole: its bytes are not ASCII-compatible, so rows cannot be split on them
        elif dec.encoding in ("utf-8", "utf-8-sig"):
            suspect = nul  # the whole file is valid UTF-8: only a NUL can make a row untrustworthy
        elif encoding is None and enc in ("utf-8", "cp932"):
            utf8, sjis, other = _line_census(raw)
            enc = "cp932" if sjis > utf8 else "utf-8"
            suspect = bool(nul or other or (utf8 and sjis))
        else:
            suspect = nul or _suspect_lines(raw, enc)
        if suspect:
            if enc != dec.encoding:
                sf.encoding, sf.notices = enc, []
            _write_trusted_rows(raw, enc, sf)
        else:
            sf.read_path.write_bytes(dec.data)
    with open(sf.read_path, encoding="utf-8", newline="") as fh:
        first = fh.readline()
    if not first.strip():
        raise InputError(f"{sf.label}: the file is empty (no header line)",
                         ja=f"{sf.label}: ファイルが空です（見出しの行がありません）。中身のあるファイルを送り直してください")
    scan = max(HEADER_SCAN_ROWS, opts.header_row if isinstance(opts.header_row, int) else 0)
    head = _head_records(sf.read_path, scan) or [next(csv.reader(io.StringIO(first)))]
    idx = header_index(head, opts, label=sf.label)
    names, renamed = unique_names(head[idx], label=sf.label, line=idx + 1)
    sf.notices.extend(renamed)
    sf.header_line = idx + 1
    hint = find_header(head, names=spec_names(opts))
    sf.header_hint = hint + 1 if hint is not None and hint != idx else None
    if idx or opts.footer_rows:
        _write_records(sf, skip=idx, footer=opts.footer_rows, staging=staging)
        sf.rejected = [(row - idx, why, raw) for row, why, raw in sf.rejected if row > idx]
    sf.header = tuple(names)
    return sf


def _head_records(path: Path, n: int) -> list[list[str]]:
    """Return the first ``n`` records of a UTF-8 CSV, or those before the first one the csv module cannot read
    (a later reader, more lenient, reports or reads it)."""
    out: list[list[str]] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        try:
            for rec in reader:
                out.append(rec)
                if len(out) >= n:
                    break
        except csv.Error:
            pass
    return out


def spec_names(opts: TripOptions) -> list[str]:
    """Return every source column name the spec's ``columns`` mention (candidates included)."""
    return [c for cands in opts.columns.values() for c in cands]


def header_index(rows: list[list[str]], opts: TripOptions, *, label: str) -> int:
    """Return the 0-based index of the header among a file's first ``rows``, as trips.header_row says.

    None: the first row; a number: that line; auto: the row holding most of the spec's column names
    (else the first row that looks like a header: see find_header). If there is none, raise InputError.
    """
    if opts.header_row is None:
        return 0
    if isinstance(opts.header_row, int):
        if opts.header_row > len(rows):
            raise InputError(f"{label}: trips.header_row is {opts.header_row} but the file has only {len(rows)} lines; "
                             f"give the line of the header (1 = the first line) or auto",
                             ja=f"{label}: trips.header_row は {opts.header_row} ですが、ファイルは {len(rows)} 行しかありません。"
                                f"見出しの行番号（1 = 1行目）か auto を指定してください")
        return opts.header_row - 1
    found = find_header(rows, names=spec_names(opts))
    if found is None:
        found = find_header(rows)
    if found is None:
        raise InputError(f"{label}: no header found in the first {len(rows)} lines (trips.header_row: auto); "
                         f"set trips.header_row to the line number of the header",
                         ja=f"{label}: 先頭 {len(rows)} 行に見出しの行が見つかりません（trips.header_row: auto）。"
                            f"trips.header_row に見出しの行番号を指定してください")
    return found


def _norm(v: object) -> str:
    return str(v).strip().lower()


def _is_number(v: str) -> bool:
    t = v.strip().replace(",", "").replace(" ", "")
    try:
        float(t)
        return True
    except ValueError:
        return False


def find_header(rows: list[list[str]], *, names=()) -> int | None:
    """Return the 0-based index of the header among ``rows`` (the first lines of a file or sheet), or None.

    With ``names`` (the column names a spec maps): the earliest row holding the most of them.
    Without: the first row whose non-empty cells are at least half as many as the widest row's, of
    which none is a number, followed by a row at least as wide (title rows above a table hold one
    or two cells; a header row holds a name over each column).
    """
    if names:
        want = {_norm(n) for n in names}
        scores = [len({_norm(v) for v in r} & want) for r in rows]
        best = max(scores, default=0)
        return scores.index(best) if best else None
    filled = [[v for v in r if str(v).strip()] for r in rows]
    widest = max((len(f) for f in filled), default=0)
    for i, f in enumerate(filled):
        if len(f) < max(2, (widest + 1) // 2) or any(_is_number(str(v)) for v in f):
            continue
        if i + 1 < len(filled) and len(filled[i + 1]) < len(f) // 2:
            continue
        return i
    return None


def unique_names(names, *, label: str, line: int, field_offset: int = 0) -> tuple[list[str], list[Notice]]:
    """Return the header's names made distinct, and a notice for each one renamed.

    A repeated name gets the number of its occurrence (``address``, ``address_2``); an empty one
    the column's number (``column_7``).
    """
    out: list[str] = []
    notices: list[Notice] = []
    taken = {n for n in names if str(n).strip()}
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        n = str(raw) if raw is not None else ""
        col = i + 1 + field_offset
        if not n.strip():
            new = f"column_{col}"
            while new in taken:
                new += "_"
            notices.append(Notice("empty_column_name", INFO, f"column {col} of the header has no name; it is read as {new!r} "
                                                             f"(map that name in trips.columns if you need the column)",
                                  file=label, line=line, field=new))
        elif n in seen:
            k = seen[n] + 1
            while f"{n}_{k}" in taken:
                k += 1
            new = f"{n}_{k}"
            notices.append(Notice("duplicate_column_name", WARNING, f"column {col} of the header repeats the name {n!r}; "
                                                                    f"it is read as {new!r} (map {new!r} in trips.columns if that "
                                                                    f"is the column you need)", file=label, line=line, field=new))
        else:
            new = n
        seen[n] = seen.get(n, 0) + 1
        taken.add(new)
        out.append(new)
    return out, notices


def _write_records(sf: SourceFile, *, skip: int, footer: int, staging: Path) -> None:
    """Rewrite ``sf.read_path`` without its first ``skip`` records (title rows) and last ``footer`` non-empty records."""
    from collections import deque

    staging.mkdir(parents=True, exist_ok=True)
    out_path = staging / f"body-{abs(hash(sf.label)):x}.csv"
    n_records = 0
    with open(sf.read_path, encoding="utf-8", newline="") as fh, open(out_path, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        held: deque = deque()
        for i, fields in enumerate(_records_of(csv.reader(fh), sf.label)):
            if i < skip or not fields:
                continue
            n_records += 1
            held.append(fields)
            if len(held) > footer:
                w.writerow(held.popleft())
    if footer and n_records - 1 < footer:
        raise InputError(f"{sf.label}: trips.footer_rows is {footer} but the file has only {max(n_records - 1, 0)} lines "
                         f"under its header; lower trips.footer_rows",
                         ja=f"{sf.label}: trips.footer_rows は {footer} ですが、見出しの下は {max(n_records - 1, 0)} 行しかありません。"
                            f"trips.footer_rows を小さくしてください")
    sf.read_path = out_path


#: The encoding each row is checked against, by what transforms.encoding.decode found for the whole file.
_ROW_ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "utf-8+latin-1": "utf-8", "cp932": "cp932"}
#: Rows that cannot be trusted are each named in a notice, up to this many per file; the rest are counted (all are quarantined).
MAX_ROW_NOTICES = 1000


def _line_census(raw: bytes) -> tuple[int, int, int]:
    """Return how many non-ASCII lines of ``raw`` are UTF-8, Shift_JIS (CP932) Japanese text, and neither."""
    utf8 = sjis = other = 0
    for line in raw.split(b"\n"):
        if line.isascii():
            continue
        if _is_utf8(line):
            utf8 += 1
        elif _is_sjis(line):
            sjis += 1
        else:
            other += 1
    return utf8, sjis, other


def _suspect_lines(raw: bytes, enc: str) -> bool:
    """Return True if a line of ``raw`` is not valid ``enc``, or is UTF-8 text inside a file read as Shift_JIS (CP932)."""
    try:
        codecs.lookup(enc)
    except LookupError:
        return False  # decode() already reported the unknown encoding; the file is read as UTF-8 with replacements
    for line in raw.split(b"\n"):
        if line.isascii():
            continue
        try:
            text = line.decode(enc)
        except UnicodeDecodeError:
            return True
        if enc == "cp932" and (_is_utf8(line) or _PRIVATE_USE.search(text)):
            return True
    return False


def _row_problem(fields: list[str], enc: str) -> tuple[str, str, str] | None:
    """Return (notice code, why, encoding to show the raw row in) if a CSV record's bytes cannot be trusted, else None.

    ``fields`` are the record's values read as Latin-1 (one character per byte).
    """
    for i, v in enumerate(fields):
        if "\x00" in v:
            return "nul_in_value", f"field {i + 1} holds a NUL byte (0x00), which no text value contains", enc
    b = ",".join(fields).encode("latin-1")
    if b.isascii():
        return None
    if enc == "cp932" and _is_utf8(b):
        return "mixed_encoding_row", "the row is UTF-8 while the file is Shift_JIS (CP932)", "utf-8"
    try:
        text = b.decode(enc)
    except UnicodeDecodeError as exc:
        if enc == "utf-8" and _is_sjis(b):
            return "mixed_encoding_row", "the row is Shift_JIS (CP932) while the file is UTF-8", "cp932"
        return "undecodable_row", f"bytes {b[exc.start:exc.end + 3].hex(' ')} are not valid {enc}", enc
    if enc == "cp932" and _PRIVATE_USE.search(text):
        return "undecodable_row", "bytes decode to private-use characters, which Shift_JIS text does not hold", enc
    return None


def _is_sjis(b: bytes) -> bool:
    """Return True if ``b`` reads as Shift_JIS (CP932) Japanese text (valid, some kana or kanji, no private-use characters)."""
    try:
        return _looks_japanese(b.decode("cp932"))
    except UnicodeDecodeError:
        return False


def _write_trusted_rows(raw: bytes, enc: str, sf: SourceFile) -> None:
    """Write ``sf.read_path`` record by record: trusted rows decoded, rows that cannot be trusted kept in ``sf.rejected``.

    The CSV is split into records on the raw bytes (read as Latin-1, one character per byte: the
    separators of UTF-8 and Shift_JIS text are plain ASCII), so a row holding undecodable bytes, UTF-8
    inside a Shift_JIS file, or a NUL byte is found where it is. Such a row keeps its place (its
    values replaced), is quarantined with its raw text (bytes that are not text shown as \\xNN), and
    gets a notice of its own; empty lines are dropped as every CSV reader does.
    """
    text = raw.decode("latin-1")
    if text.startswith("\xef\xbb\xbf"):
        text = text[3:]
    records = _records_of(csv.reader(io.StringIO(text, newline="")), sf.label)
    header = next(records, [])
    try:
        names = [h.encode("latin-1").decode(enc) for h in header]
    except UnicodeDecodeError:
        raise InputError(f"{sf.label}: the header line is not valid {enc}; save the file in one encoding (UTF-8)",
                         ja=f"{sf.label}: 見出しの行が {enc} として読めません。ファイルを一つの文字コード（UTF-8）で保存し直してください") from None
    if any("\x00" in h for h in names):
        raise InputError(f"{sf.label}: the header line holds a NUL byte (0x00); the file is damaged",
                         ja=f"{sf.label}: 見出しの行に NUL（0x00）が含まれています。ファイルが壊れています。出力し直してください")
    notices = [n for n in sf.notices if n.code not in ("non_utf8_bytes", "invalid_character")]  # replaced by one notice per row
    n_bad = 0
    with open(sf.read_path, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(names)
        row = 0
        for fields in records:
            if not fields:
                continue
            row += 1
            problem = _row_problem(fields, enc)
            if problem is None:
                w.writerow([v.encode("latin-1").decode(enc) for v in fields])
                continue
            code, why, shown = problem
            values = [v.encode("latin-1").decode(shown, errors="backslashreplace") for v in fields]
            keys = names + [f"column_{i + 1}" for i in range(len(names), len(values))]
            raw_text = json.dumps(dict(zip(keys, values)), ensure_ascii=False)
            reason = f"{code}: {why}; the row was quarantined with its raw text"
            sf.rejected.append((row, reason, raw_text))
            w.writerow([v.encode("latin-1").decode(enc, errors="replace").replace("\x00", "\ufffd") for v in fields])
            n_bad += 1
            if n_bad <= MAX_ROW_NOTICES:
                notices.append(Notice(code, ERROR, f"row {row}: {why}; the row was quarantined with its raw text. "
                                                   f"Correct the row, or save the whole file in one encoding (UTF-8)",
                                      file=sf.label, line=row, value=raw_text[:200]))
    if n_bad > MAX_ROW_NOTICES:
        notices.append(Notice("undecodable_row", ERROR, f"{n_bad - MAX_ROW_NOTICES:,} more rows that cannot be trusted were quarantined",
                              file=sf.label))
    sf.notices = notices


def _records_of(reader, label: str):
    """Yield the reader's records; a record the csv module cannot read becomes one InputError naming the file and record."""
    n = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{label}: record {n + 1}: {exc}; the CSV cannot be read",
                             ja=f"{label}: {n + 1} 件目のレコードが読めません（{exc}）。CSV として保存し直してください") from None
        n += 1
        yield fields


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


#: A batch of CSV files is processed in one set-based pass; its size bounds memory (Arrow text + DuckDB table).
BATCH_BYTES = 96 << 20


def batches(files: list[SourceFile], *, max_bytes: int = BATCH_BYTES) -> list[list[SourceFile]]:
    """Return the files grouped for set-based passes: CSVs with the same header together, up to ``max_bytes`` a group."""
    groups: dict[tuple, list[list[SourceFile]]] = {}
    sizes: dict[tuple, int] = {}
    out: list[list[SourceFile]] = []
    for f in files:
        if f.format != "csv":
            out.append([f])
            continue
        size = (f.read_path or f.path).stat().st_size
        chunks = groups.setdefault(f.header, [[]])
        if chunks[-1] and sizes.get(f.header, 0) + size > max_bytes:
            chunks.append([])
            sizes[f.header] = 0
        chunks[-1].append(f)
        sizes[f.header] = sizes.get(f.header, 0) + size
    return [c for chunks in groups.values() for c in chunks] + out


def load_batch(con: duckdb.DuckDBPyConnection, batch: list[SourceFile], *, opts: TripOptions) -> tuple[pa.Table, list[str]]:
    """Return the batch's rows as one Arrow table (every source column as text, plus ``_file``, ``_row``) and its source columns.

    UTF-8 CSV is read by Arrow's multi-threaded CSV reader (all columns as strings, empty = null);
    a file Arrow cannot read (e.g. rows with missing trailing fields) falls back to DuckDB's
    lenient reader, which pads short rows with nulls.
    """
    fmt = batch[0].format
    if fmt == "csv":
        from concurrent.futures import ThreadPoolExecutor

        # small files: Arrow's reader cannot spread one 1 MB file over cores, so files are read side by side
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            tables = list(pool.map(lambda f: _csv_table(con.cursor(), f), batch))
        cols = list(batch[0].header)
        if any(f.rejected for f in batch):  # rows that cannot be trusted: quarantined as invalid_record with their raw text
            tables = [_with_rejected(t, f) for t, f in zip(tables, batch)]
            cols += ["__rejected__", "__raw__"]
        return pa.concat_tables([t.select(cols + ["_file", "_row"]) for t in tables]), cols
    (f,) = batch
    if fmt == "xlsx":
        t = _xlsx_table(f, opts)
        return _with_position(t, f.label), t.column_names
    if fmt == "parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(f.path)
        cols = t.column_names
        arrays = [t.column(c).cast(pa.string()) for c in cols]
        return _with_position(pa.table(dict(zip(cols, arrays))), f.label), cols
    records = _records(f, opts)
    cols: dict[str, None] = {}
    for r in records:
        for k in r:
            cols.setdefault(k, None)
    data = {c: pa.array([_text(r.get(c)) for r in records], pa.string()) for c in cols}
    return _with_position(pa.table(data) if data else pa.table({"_empty": pa.nulls(len(records), pa.string())}), f.label), [
        c for c in cols]


def _with_rejected(t: pa.Table, f: SourceFile) -> pa.Table:
    """Return ``t`` with ``__rejected__`` (why) and ``__raw__`` (raw text) set on the records listed in ``f.rejected``."""
    why: list[str | None] = [None] * t.num_rows
    raw: list[str | None] = [None] * t.num_rows
    for row, reason, text in f.rejected:
        if not 0 < row <= t.num_rows:  # cannot happen: the rows were counted on the file this table was read from
            raise AssertionError(f"{f.label}: row {row} set aside while reading is not among its {t.num_rows} rows")
        why[row - 1], raw[row - 1] = reason, text
    return t.append_column("__rejected__", pa.array(why, pa.string())).append_column("__raw__", pa.array(raw, pa.string()))


def _with_position(t: pa.Table, label: str) -> pa.Table:
    """Return ``t`` with its file (``_file``) and 1-based record number (``_row``) appended."""
    import numpy as np

    n = t.num_rows
    # built in Arrow / numpy, not from Python lists (1.4 s for 576 files of 10,000 rows, holding the GIL)
    return t.append_column("_file", pa.repeat(pa.scalar(label, pa.string()), n)).append_column(
        "_row", pa.array(np.arange(1, n + 1, dtype=np.int64)))


def _csv_table(con: duckdb.DuckDBPyConnection, f: SourceFile) -> pa.Table:
    import pyarrow.csv as pacsv

    names = list(f.header)
    if len(set(names)) == len(names) and all(names):
        try:
            t = pacsv.read_csv(f.read_path, read_options=pacsv.ReadOptions(block_size=8 << 20, column_names=names, skip_rows=1),
                               convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                                    strings_can_be_null=True, quoted_strings_can_be_null=True))
            if t.column_names == names:
                return _with_position(t, f.label)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    try:
        t = con.sql(f"SELECT * FROM read_csv({lit(str(f.read_path))}, header=true, all_varchar=true, strict_mode=false, "
                    f"null_padding=true, sample_size=-1)").to_arrow_table()
    except duckdb.Error as exc:
        raise InputError(f"{f.label}: the CSV cannot be read: {str(exc).splitlines()[0]}",
                         ja=f"{f.label}: CSV として読めません（{str(exc).splitlines()[0]}）。CSV として保存し直してください") from None
    t = t.rename_columns(names[:t.num_columns] + [f"column_{i + 1}" for i in range(len(names), t.num_columns)])
    return _with_position(t, f.label)


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float) and v.is_integer():
        return repr(v)
    return str(v)


#: Rows of an .xlsx gathered as Python values before they become Arrow text (bounds the Python objects alive at once).
XLSX_CHUNK_ROWS = 65_536


def _xlsx_table(f: SourceFile, opts: TripOptions) -> pa.Table:
    """Return the sheet (the spec's ``trips.sheet``, else the first) as a table of text columns, one row per non-empty row.

    The header is the first row holding a value, or the sheet row trips.header_row names (``auto``:
    found below title rows); rows above it are not read. Repeated and empty header names are made
    distinct (notices in ``f.read_notices``); a value under no header goes to ``column_<n>``; the
    last trips.footer_rows non-empty rows are left out. The sheet XML is streamed (transforms.xlsx)
    and the rows become Arrow text every XLSX_CHUNK_ROWS rows. If the table would hold more cells
    than the limit (rows x columns), or the workbook breaks another limit, raise InputError naming
    the file, sheet and limit.
    """
    from transforms.ods import OdsBook, looks_like_ods
    from transforms.xlsx import Workbook

    with open(f.path, "rb") as fh:
        head = fh.read(200)
    book = OdsBook if looks_like_ods(head) or f.label.lower().endswith(".ods") else Workbook  # LibreOffice's .ods, or Excel's .xlsx
    with book(f.path, f.label) as wb:
        if not wb.sheets:
            raise InputError(f"{f.label}: the workbook has no sheet", ja=f"{f.label}: ブックにシートがありません。表のあるブックを送り直してください")
        st = wb.stream(opts.sheet) if opts.sheet else wb.stream(wb.sheets[0][0])
        lim = wb.limits
        names: dict[int, str] = {}  # column index -> name
        done: dict[int, list[pa.Array]] = {}  # column index -> finished chunks
        cur: dict[int, list[str | None]] = {}
        taken: set[str] = set()
        n_done = n_cur = 0

        def name_column(c: int, name: str) -> None:
            """Name column ``c`` (a value under no header); a name already taken gets the column number."""
            if name in taken:
                name = f"{name}_{c + 1}"
            taken.add(name)
            names[c] = name

        def finish() -> None:
            nonlocal n_done, n_cur
            for c, vals in cur.items():
                done.setdefault(c, [pa.nulls(n_done, pa.string())] if n_done else []).append(pa.array(vals, pa.string()))
            for c in done.keys() - cur.keys():
                done[c].append(pa.nulls(n_cur, pa.string()))
            n_done, n_cur = n_done + n_cur, 0
            cur.clear()

        def too_many(row: int) -> InputError:
            n = n_done + n_cur
            return lim.refuse(f"{f.label} sheet {st.name}", f"{n:,} rows x {len(names):,} columns make {n * len(names):,} cells "
                                                             f"(at row {row + 1:,})", "cells")

        rows = wb.rows(st)
        scan = max(HEADER_SCAN_ROWS, opts.header_row if isinstance(opts.header_row, int) else 0)
        head: list[tuple[int, list]] = []
        for item in rows:
            head.append(item)
            if len(head) >= scan:
                break
        if not head:
            raise InputError(f"{f.label} sheet {st.name}: the sheet is empty (no header row)",
                             ja=f"{f.label} シート「{st.name}」: シートが空です（見出しの行がありません）")
        dense = [[""] * (max((c for c, _ in cells), default=-1) + 1) for _, cells in head]
        for d, (_, cells) in zip(dense, head):
            for c, v in cells:
                d[c] = "" if v is None else str(v)
        if opts.header_row is None:
            hi = 0
        elif isinstance(opts.header_row, int):
            hi = next((i for i, (r, _) in enumerate(head) if r == opts.header_row - 1), None)
            if hi is None:
                raise InputError(f"{f.label} sheet {st.name}: trips.header_row is {opts.header_row} but that row is empty; "
                                 f"give the sheet row of the header (1 = the first row) or auto",
                                 ja=f"{f.label} シート「{st.name}」: trips.header_row は {opts.header_row} ですが、その行は空です。"
                                    f"見出しの行番号（1 = 1行目）か auto を指定してください")
        else:
            hi = find_header(dense, names=spec_names(opts))
            hi = find_header(dense) if hi is None else hi
            if hi is None:
                raise InputError(f"{f.label} sheet {st.name}: no header found in the first {len(head)} rows "
                                 f"(trips.header_row: auto); set trips.header_row to the sheet row of the header",
                                 ja=f"{f.label} シート「{st.name}」: 先頭 {len(head)} 行に見出しの行が見つかりません（trips.header_row: auto）。"
                                    f"trips.header_row に見出しの行番号を指定してください")
        f.header_line = head[hi][0] + 1
        hint = find_header(dense, names=spec_names(opts))
        f.header_hint = head[hint][0] + 1 if hint is not None and hint != hi else None
        header_cells = dict(head[hi][1])
        width = max(header_cells, default=-1) + 1
        unique, renamed = unique_names([header_cells.get(c) for c in range(width)], label=f.label, line=f.header_line)
        f.read_notices.extend(n for n in renamed if n.code != "empty_column_name")  # a cell left empty is usual in sheets
        for c, name in enumerate(unique):
            if c in header_cells:
                taken.add(name)
                names[c] = name

        import itertools

        for r, cells in itertools.chain(head[hi + 1:], rows):
            n_cur += 1
            if (n_done + n_cur) * len(names) > lim.cells:
                raise too_many(r)
            for c, v in cells:
                col = cur.get(c)
                if col is None:
                    if c not in names:
                        name_column(c, f"column_{c + 1}")
                        if (n_done + n_cur) * len(names) > lim.cells:
                            raise too_many(r)
                    col = cur[c] = [None] * (n_cur - 1)
                col.append(_text(v))
            for col in cur.values():
                if len(col) < n_cur:
                    col.append(None)
            if n_cur >= XLSX_CHUNK_ROWS:
                finish()
        finish()
    order = sorted(names)
    cols = {names[c]: pa.chunked_array(done.get(c) or [pa.nulls(n_done, pa.string())], pa.string()) for c in order}
    if not cols:
        return pa.table({"_empty": pa.nulls(n_done, pa.string())})
    t = pa.table(cols)
    if opts.footer_rows:
        if t.num_rows < opts.footer_rows:
            raise InputError(f"{f.label} sheet {st.name}: trips.footer_rows is {opts.footer_rows} but the sheet has only "
                             f"{t.num_rows} rows under its header; lower trips.footer_rows",
                             ja=f"{f.label} シート「{st.name}」: trips.footer_rows は {opts.footer_rows} ですが、見出しの下は "
                                f"{t.num_rows} 行しかありません。trips.footer_rows を小さくしてください")
        t = t.slice(0, t.num_rows - opts.footer_rows)
    return t


def _records(f: SourceFile, opts: TripOptions) -> list[dict]:
    """Return the file's records as dicts (MDS trips flattened; invalid ones kept aside in ``f.rejected``)."""
    try:
        if f.format == "avro":
            import fastavro

            with open(f.path, "rb") as fh:
                return list(fastavro.reader(fh))
        text = decode(f.path.read_bytes(), file=f.label).data.decode("utf-8")
        if f.format == "jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        doc = json.loads(text)
        if f.format == "mds":
            return _mds_trips(doc, f, opts)
        if isinstance(doc, dict):
            doc = doc.get("data", doc)
            if isinstance(doc, dict):
                doc = next((v for v in doc.values() if isinstance(v, list)), [doc])
        if not isinstance(doc, list):
            raise InputError(f"{f.label}: expected a JSON array of trip records",
                             ja=f"{f.label}: 乗車記録の JSON 配列ではありません。記録の配列として出力し直してください")
        return doc
    except InputError:
        raise
    except Exception as exc:  # a broken file must say which file and why, never a traceback
        raise InputError(f"{f.label}: cannot be read as {f.format}: {exc}",
                         ja=f"{f.label}: {f.format} として読めません（{exc}）。ファイル形式を確認し、出力し直してください") from None


def _mds_trips(doc: dict, f: SourceFile, opts: TripOptions) -> list[dict]:
    """Return the MDS ``trips`` of a provider payload, flattened. Trips the JSON schema rejects go to ``f.rejected``."""
    import jsonschema

    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict) or not isinstance(doc["data"].get("trips"), list):
        raise InputError(f"{f.label}: not an MDS provider trips payload (expected data.trips)",
                         ja=f"{f.label}: MDS の trips の形式ではありません（data.trips がありません）")
    schema = None
    if opts.mds_schema:
        spath = Path(opts.mds_schema)
        if not spath.is_absolute():
            from transforms.schema import default_specs_dir

            spath = default_specs_dir().resolve().parent / spath
        if not spath.exists():
            raise InputError(f"{f.label}: the MDS schema {spath} (trips.mds_schema) does not exist",
                             ja=f"{f.label}: MDS のスキーマ {spath}（trips.mds_schema）がありません。spec を確認してください")
        schema = json.loads(spath.read_text(encoding="utf-8"))
        errors = [e for e in jsonschema.Draft6Validator(schema).iter_errors(doc) if "trips" not in list(e.absolute_path)[:2]]
        if errors:
            raise InputError(f"{f.label}: the payload does not follow the MDS trips schema: {errors[0].message}",
                             ja=f"{f.label}: MDS の trips のスキーマに合いません（{errors[0].message}）")
        item = _trip_item_schema(schema)
        validator = jsonschema.Draft6Validator(item) if item else None
    out = []
    for i, t in enumerate(doc["data"]["trips"], start=1):
        if schema is not None and validator is not None:
            err = next(iter(validator.iter_errors(t)), None)
            if err is not None:
                where = "/".join(str(p) for p in err.absolute_path) or "trip"
                msg = f"MDS schema: {where}: {err.message}"[:500]
                f.rejected.append((i, msg, json.dumps(t, ensure_ascii=False)))
                out.append({"__rejected__": msg, "__raw__": json.dumps(t, ensure_ascii=False)})
                continue
        flat = {k: v for k, v in t.items() if k != "route"}
        feats = (t.get("route") or {}).get("features") or []
        if feats:
            start, end = feats[0]["geometry"]["coordinates"], feats[-1]["geometry"]["coordinates"]
            flat.update(start_lon=start[0], start_lat=start[1], end_lon=end[0], end_lat=end[1])
        out.append(flat)
    return out


def _trip_item_schema(schema: dict) -> dict | None:
    """Return the schema of one trip inside an MDS trips schema (with its definitions), or None."""
    try:
        item = schema["properties"]["data"]["properties"]["trips"]["items"]
    except (KeyError, TypeError):
        return None
    return {**item, "definitions": schema.get("definitions", {}), "$schema": schema.get("$schema")}
