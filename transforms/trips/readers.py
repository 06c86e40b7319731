"""Readers: every trip file format becomes a DuckDB table of text columns plus its file and record number.

CSV in any encoding (UTF-8 read by DuckDB directly; anything else decoded by
transforms.encoding.decode() into a UTF-8 staging copy first), Parquet, JSON (an array of
records, or JSON lines), Avro (fastavro), XLSX (openpyxl, first sheet or the spec's sheet) and
MDS provider ``trips`` payloads (validated with jsonschema; invalid trips are rejected with the
schema's message). Values stay text here: typing is the mapping engine's job, so a bad value is
reported with its row instead of failing the whole file.
"""

from __future__ import annotations

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
from transforms.encoding import decode
from transforms.notices import Notice
from transforms.trips.spec import TripOptions, file_label

_EXT_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "jsonl",
                ".ndjson": "jsonl", ".avro": "avro", ".xlsx": "xlsx"}


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


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def list_files(root: Path, patterns: tuple[str, ...]) -> list[Path]:
    """Return the files under ``root`` matching the spec's patterns, sorted, each once. If none match, raise InputError."""
    if root.is_file():
        return [root]
    if not root.exists():
        raise InputError(f"{root}: the source folder does not exist; check source.path in the spec")
    seen: dict[Path, None] = {}
    for pat in patterns:
        for p in sorted(glob.glob(str(root / pat), recursive=True)):
            if Path(p).is_file():
                seen.setdefault(Path(p), None)
    if not seen:
        raise InputError(f"{root}: no file matches {', '.join(patterns)}; check trips.files in the spec")
    return list(seen)


def file_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    fmt = _EXT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path.name}: cannot tell the format from the extension; set trips.format in the spec")
    return fmt


def inspect(path: Path, *, root: Path, opts: TripOptions, encoding: str | None, staging: Path) -> SourceFile:
    """Return the file ready to read: its format, header, and a UTF-8 copy when the bytes needed decoding."""
    sf = SourceFile(path=path, label=file_label(path, root), format=file_format(path, opts.format))
    if sf.format != "csv":
        return sf
    raw = path.read_bytes()
    if encoding is None and (raw.isascii() or _is_utf8(raw)) and not raw.startswith(b"\xef\xbb\xbf"):
        sf.read_path = path
    else:
        dec = decode(raw, file=sf.label, override=encoding)
        sf.encoding, sf.notices = dec.encoding, list(dec.notices)
        staging.mkdir(parents=True, exist_ok=True)
        sf.read_path = staging / f"utf8-{abs(hash(sf.label)):x}.csv"
        sf.read_path.write_bytes(dec.data)
    with open(sf.read_path, encoding="utf-8", newline="") as fh:
        first = fh.readline()
    if not first.strip():
        raise InputError(f"{sf.label}: the file is empty (no header line)")
    sf.header = tuple(next(csv.reader(io.StringIO(first))))
    return sf


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
        return pa.concat_tables([t.select(cols + ["_file", "_row"]) for t in tables]), cols
    (f,) = batch
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
            t = pacsv.read_csv(f.read_path, read_options=pacsv.ReadOptions(block_size=8 << 20),
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
        raise InputError(f"{f.label}: the CSV cannot be read: {str(exc).splitlines()[0]}") from None
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


def _records(f: SourceFile, opts: TripOptions) -> list[dict]:
    """Return the file's records as dicts (MDS trips flattened; invalid ones kept aside in ``f.rejected``)."""
    try:
        if f.format == "avro":
            import fastavro

            with open(f.path, "rb") as fh:
                return list(fastavro.reader(fh))
        if f.format == "xlsx":
            import openpyxl

            wb = openpyxl.load_workbook(f.path, read_only=True, data_only=True)
            ws = wb[opts.sheet] if opts.sheet else wb.worksheets[0]
            rows = ws.iter_rows(values_only=True)
            header = [str(h) if h is not None else f"column_{i + 1}" for i, h in enumerate(next(rows))]
            out = [dict(zip(header, r)) for r in rows if any(v is not None for v in r)]
            wb.close()
            return out
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
            raise InputError(f"{f.label}: expected a JSON array of trip records")
        return doc
    except InputError:
        raise
    except Exception as exc:  # a broken file must say which file and why, never a traceback
        raise InputError(f"{f.label}: cannot be read as {f.format}: {exc}") from None


def _mds_trips(doc: dict, f: SourceFile, opts: TripOptions) -> list[dict]:
    """Return the MDS ``trips`` of a provider payload, flattened. Trips the JSON schema rejects go to ``f.rejected``."""
    import jsonschema

    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict) or not isinstance(doc["data"].get("trips"), list):
        raise InputError(f"{f.label}: not an MDS provider trips payload (expected data.trips)")
    schema = None
    if opts.mds_schema:
        spath = Path(opts.mds_schema)
        if not spath.is_absolute():
            from transforms.schema import default_specs_dir

            spath = default_specs_dir().resolve().parent / spath
        if not spath.exists():
            raise InputError(f"{f.label}: the MDS schema {spath} (trips.mds_schema) does not exist")
        schema = json.loads(spath.read_text(encoding="utf-8"))
        errors = [e for e in jsonschema.Draft6Validator(schema).iter_errors(doc) if "trips" not in list(e.absolute_path)[:2]]
        if errors:
            raise InputError(f"{f.label}: the payload does not follow the MDS trips schema: {errors[0].message}")
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
