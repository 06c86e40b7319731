"""Exports of a published feed version: a GTFS zip rebuilt from the canonical tables, and Parquet."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import shutil
import tempfile
import uuid
import zipfile
from contextlib import nullcontext
from pathlib import Path

import duckdb

from warehouse.workspace import Workspace
from warehouse.runstate import fault_point, feed_lock, replace_dir, sweep, sweep_legacy_export_tmp
from transforms.canonical import lit, q
from transforms.paths import UnsafePath, safe_join
from transforms.schema import Field, Table, load_schema
from transforms.verbatim import PLAIN_NAME, VERBATIM, header_patterns, verbatim_pattern


def text_expr(f: Field) -> str:
    """Return SQL turning canonical column ``f`` back into GTFS text; untypable values come back as received."""
    c = q(f.column)
    if f.type == "time":
        typed = f"printf('%02d:%02d:%02d', {c} // 3600, ({c} % 3600) // 60, {c} % 60)"
    elif f.type == "date":
        typed = f"strftime({c}, '%Y%m%d')"
    elif f.sql_type != "VARCHAR":
        typed = f"CAST({c} AS VARCHAR)"
    else:
        return c
    return f"coalesce({typed}, json_extract_string(_untyped, {lit('$.' + json.dumps(f.name))}))"


def write_gtfs_text(con: duckdb.DuckDBPyConnection, table: Table, src: str, header: list[str], target: Path,
                    *, order_by: str = "_line") -> None:
    """Write ``target`` (a GTFS .txt) from canonical rows ``src`` (a SQL relation), columns as in ``header``.

    Known fields come back in the standard column order, unknown columns (kept in ``_extra``) after
    them, untypable values as received (``_untyped``); UTF-8, LF, quoted only where needed.
    """
    known = [f for f in table.fields if f.name in header]
    unknown = [h for h in header if h and table.field(h) is None]
    cols = [f"{text_expr(f)} AS {q(f.name)}" for f in known]
    cols += [f"NULLIF(json_extract_string(_extra, {lit('$.' + json.dumps(h))}), '') AS {q(h)}" for h in dict.fromkeys(unknown)]
    con.execute(
        f"COPY (SELECT {', '.join(cols)} FROM {src} ORDER BY {order_by}) TO {lit(str(target))} "
        f"(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', NEW_LINE '\\n')"
    )


_VERBATIM = VERBATIM  # the patterns and header checks live in transforms/verbatim.py (the parse makes them too)
_PLAIN_NAME = PLAIN_NAME
_verbatim_pattern = verbatim_pattern


def copy_if_verbatim(raw_zip: Path, name: str, table: Table, header: list[str], rows: int, target: Path) -> bool:
    """Return True after writing member ``name`` of ``raw_zip`` to ``target`` as received, when writing it from the
    canonical rows would give the same bytes; else False (``target`` is then left absent or partial: write it again).

    The same bytes: UTF-8 without BOM, LF line ends ending the last row, no blank line, no quote, CR, NUL or '#'
    (which DuckDB's writer quotes), valid UTF-8, the header exactly in the order ``write_gtfs_text`` writes it, ``rows``
    rows of exactly that many cells, and every typed cell in the one spelling its text expression gives back
    (``_VERBATIM``; a float or geometry column never qualifies). The caller makes sure no row of the file was
    quarantined and it was read as UTF-8.
    """
    import pyarrow as pa

    patterns = header_patterns(table, header)
    if patterns is None:
        return False
    try:
        ok = _copy_plain(raw_zip, name, header, target) and _count_plain(target, header, patterns) == rows
    except (OSError, EOFError, RuntimeError, NotImplementedError, UnicodeDecodeError, zipfile.BadZipFile, pa.ArrowInvalid):
        ok = False  # an unreadable member (a bad CRC, an unknown compression): written from the canonical rows
    if not ok:
        target.unlink(missing_ok=True)
    return ok


def known_verbatim(raw_zip: Path, name: str, table: Table, header: list[str], rows: int, fact: dict | None) -> bool:
    """Return True if the parse of this process found member ``name`` of ``raw_zip`` to pass copy_if_verbatim's checks
    (``fact``: transforms.verbatim.plain_facts) and it is still that member: the same size and CRC, ``rows`` rows, the
    same header patterns, deflated or stored and not encrypted (so its compressed bytes are copied into the export).
    Then nothing is inflated or parsed again. False: copy_if_verbatim decides."""
    patterns = header_patterns(table, header)
    if not fact or patterns is None or fact.get("rows") != rows or fact.get("patterns") != sorted(patterns.items()):
        return False
    try:
        with zipfile.ZipFile(raw_zip) as zf:
            info = zf.getinfo(name)
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return (info.file_size == fact.get("size") and info.CRC == fact.get("crc") and not info.flag_bits & 0x1
            and info.compress_type in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED))


def _copy_plain(raw_zip: Path, name: str, header: list[str], target: Path) -> bool:
    """Return True after copying member ``name`` to ``target`` if its bytes are plain (see copy_if_verbatim); False at the
    first chunk that is not."""
    with zipfile.ZipFile(raw_zip) as zf:
        try:
            info = zf.getinfo(name)
        except KeyError:
            return False
        head, last = (",".join(header) + "\n").encode(), b""
        utf8 = codecs.getincrementaldecoder("utf-8")()  # strict: a spec's `encoding: utf-8` may have replaced bad bytes
        with zf.open(info) as src, target.open("wb") as out:
            while chunk := src.read(1 << 20):
                if not last and not chunk.startswith(head):
                    return False
                if (b'"' in chunk or b"\r" in chunk or b"#" in chunk or b"\x00" in chunk or b"\n\n" in chunk
                        or (last.endswith(b"\n") and chunk.startswith(b"\n"))):
                    return False
                if not chunk.isascii() or utf8.getstate()[0]:
                    utf8.decode(chunk)  # raises UnicodeDecodeError on bytes that are not UTF-8
                out.write(chunk)
                last = chunk
        utf8.decode(b"", final=True)
    return last.endswith(b"\n")


def _count_plain(path: Path, header: list[str], patterns: dict[str, str]) -> int:
    """Return the rows of the plain CSV at ``path``, or -1 if a typed cell is not in its pattern's spelling.

    If a row has more or fewer cells than the header, then pyarrow raises ArrowInvalid."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    typed = {h: p for h, p in patterns.items() if p}
    n = 0
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(skip_rows=1, column_names=header, block_size=8 << 20),
        parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header}, include_columns=list(typed) or header[:1],
                                             strings_can_be_null=False, quoted_strings_can_be_null=False))
    for batch in reader:
        n += batch.num_rows
        for h, p in typed.items():
            if not pc.all(pc.match_substring_regex(pc.unique(batch.column(h)), p), min_count=0).as_py():  # few distinct times, numbers
                return -1
    return n


#: Arrow types of the canonical columns (transforms.canonical.ARROW_TYPES) that write_export_parquet writes itself.
_PLAIN_ARROW = ("int32", "double", "date32[day]", "string")


def write_export_parquet(part: Path, target: Path, *, feed_id: str, feed_version: str) -> bool:
    """Return True after writing ``target``: the lake partition ``part``'s rows in order, after a ``feed_id`` and a
    ``feed_version`` column (the rows and types DuckDB's ``COPY (SELECT feed_id, feed_version, *)`` writes); False,
    writing nothing, if a column is of a type the canonical tables do not have (the caller then lets DuckDB write it).

    pyarrow, a row group at a time (bounded memory), with the lake's encodings (integers delta-encoded, strings
    dictionary-encoded) and zstd at DuckDB's default level 3: ~3x less CPU than DuckDB's writer on Vilnius x16's
    stop_times, and a file ~3x smaller.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(part)
    lake = pf.schema_arrow
    if any(str(f.type) not in _PLAIN_ARROW for f in lake) or {"feed_id", "feed_version"} & set(lake.names):
        return False
    # a column without a null in the partition's statistics is written as required (not null), as DuckDB does
    md = pf.metadata
    nulls = [0 if md.num_row_groups else None] * len(lake)
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for i in range(len(lake)):
            st = rg.column(i).statistics
            nulls[i] = nulls[i] + st.null_count if nulls[i] is not None and st is not None and st.has_null_count else None
    # strings stay dictionary arrays from the lake's dictionary pages to the export's (no value decoded and hashed again,
    # the two constant columns one value each); the file keeps no Arrow schema, so readers see plain strings as before
    text = pa.dictionary(pa.int32(), pa.string())
    strings = [f.name for f in lake if f.type == pa.string()]
    schema = pa.schema([pa.field("feed_id", text, nullable=False), pa.field("feed_version", text, nullable=False)]
                       + [pa.field(f.name, text if f.type == pa.string() else f.type, nullable=nulls[i] != 0) for i, f in enumerate(lake)])
    ints = [f.name for f in schema if f.type == pa.int32()]
    # a column null in every row (statistics) is not read: its batches are made as nulls (decoding ~0.02 CPU-s per 7M)
    read = [f.name for i, f in enumerate(lake) if nulls[i] is None or nulls[i] < md.num_rows] or lake.names
    pf = pq.ParquetFile(part, read_dictionary=strings)
    # write_batch_size: values encoded 64Ki at a time, not 1,024 (~0.04 CPU-s less per all-null dictionary column of 7M
    # rows; the files of Vilnius x16's 8 tables are the same bytes)
    with pq.ParquetWriter(target, schema, compression="zstd", compression_level=3, use_dictionary=["feed_id", "feed_version", *strings],
                          column_encoding={c: "DELTA_BINARY_PACKED" for c in ints}, store_schema=False, write_batch_size=1 << 16) as out:
        for batch in pf.iter_batches(batch_size=1 << 20, use_threads=False, columns=read):
            n = batch.num_rows
            cols = [batch.column(f.name) if f.name in read else pa.nulls(n, schema.field(f.name).type) for f in lake]
            out.write_batch(pa.RecordBatch.from_arrays([_constant_text(feed_id, n, decode=False), _constant_text(feed_version, n, decode=False),
                                                        *cols], schema=schema))
    return True


def _constant_text(value: str, n: int, *, decode: bool = True):
    """Return a string array of ``n`` times ``value`` (``decode`` False: as a dictionary array of one value), built from
    buffers: pyarrow's conversion of a Python value (pa.scalar, pa.array of a list) imports pandas, seconds in a process
    that has not (the ingest never does)."""
    import pyarrow as pa

    data = value.encode("utf-8")
    one = pa.StringArray.from_buffers(1, pa.py_buffer(b"\0\0\0\0" + len(data).to_bytes(4, "little")), pa.py_buffer(data))
    zeros = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(bytes(4 * n))])
    out = pa.DictionaryArray.from_arrays(zeros, one)
    return out.dictionary_decode() if decode else out


#: DuckDB's memory for an export (NORIBA_EXPORT_MEMORY overrides): beyond it the sorts spill to the export's own folder
EXPORT_MEMORY = "600MB"


def bounded_connection(spill: Path) -> duckdb.DuckDBPyConnection:
    """Return a DuckDB connection whose memory is bounded (``EXPORT_MEMORY``), spilling to ``spill`` (created)."""
    spill.mkdir(parents=True, exist_ok=True)
    limit = os.environ.get("NORIBA_EXPORT_MEMORY", EXPORT_MEMORY).replace("'", "")
    return duckdb.connect(config={"memory_limit": limit, "temp_directory": str(spill)})


def _write_other_files(con: duckdb.DuckDBPyConnection, src: str, target_of, *, batch_rows: int = 65536) -> None:
    """Write every unknown file kept in ``src`` (rows of file_name, _line, header, record) back as CSV, a batch of rows
    at a time: one JSON array parsed per batch (not one json.loads per row: seconds on a big file; nor a whole file)."""
    reader = con.sql(f"SELECT file_name, header, record FROM {src} ORDER BY file_name, _line").fetch_record_batch(batch_rows)
    name = fh = out = None
    try:
        for batch in reader:
            cols = batch.to_pydict()
            start = 0
            while start < batch.num_rows:
                this = cols["file_name"][start]
                end = start
                while end < batch.num_rows and cols["file_name"][end] == this:
                    end += 1
                if this != name:
                    if fh is not None:
                        fh.close()
                    name, fh, out = this, None, None
                    if (target := target_of(this)) is not None:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        fh = target.open("w", encoding="utf-8", newline="")
                        out = csv.writer(fh, lineterminator="\n")
                        out.writerow(json.loads(cols["header"][start]))
                if out is not None:
                    # each record's values as they are (no list per row: a third of the CPU of a 300k-row file)
                    out.writerows(map(dict.values, json.loads("[" + ",".join(cols["record"][start:end]) + "]")))
                start = end
    finally:
        if fh is not None:
            fh.close()


def zip_dir(src: Path, target: Path) -> None:
    """Write every file under ``src`` into the zip ``target`` (deterministic: sorted, fixed timestamps), atomically."""
    _zip_dir(src, target)


def _fast_deflate():
    """Return a raw deflate compressor (what zipfile's ZIP_DEFLATED writes) from ISA-L, level 1: ~5× zlib's default level.

    Any unzip reads it; the members are the same bytes, the zip a little larger.
    """
    from isal import isal_zlib

    return isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)


def _zip_dir(src: Path, target: Path, *, raw_from: Path | None = None, raw_names: frozenset[str] = frozenset(),
             unread: frozenset[str] = frozenset()) -> None:
    """Write every file under ``src`` into the zip ``target``; the members named in ``raw_names`` (files of ``src`` that
    are byte for byte that member of the zip ``raw_from``) get that member's compressed bytes, not deflated again.
    ``unread`` (of ``raw_names``, top-level names): members that are not written under ``src`` but taken from ``raw_from``
    only, in the same order as if they were."""
    # a name of its own (hidden, unique), so two writers never share a temporary file; removed if writing fails
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf, \
                (zipfile.ZipFile(raw_from) if raw_names else nullcontext()) as rz:
            for p in sorted({*(x for x in src.rglob("*") if x.is_file()), *(src / n for n in unread)}):
                name = p.relative_to(src).as_posix()
                if name in raw_names and _copy_compressed(rz, name, zf):
                    continue
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with (rz.open(name) if name in unread else p.open("rb")) as fh, zf.open(info, "w", force_zip64=True) as out:
                    out._compressor = _fast_deflate()  # before the first byte: same deflate stream format, ISA-L speed
                    shutil.copyfileobj(fh, out, 1 << 20)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_compressed(src: zipfile.ZipFile, name: str, out: zipfile.ZipFile) -> bool:
    """Return True after appending member ``name`` of ``src`` to ``out`` as its compressed bytes (same CRC and sizes, our
    fixed timestamp); False if it is not a plain deflated or stored member (encrypted, another method), so it is written anew."""
    import struct

    info = src.getinfo(name)
    if info.compress_type not in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED) or info.flag_bits & 0x1:
        return False
    src.fp.seek(info.header_offset)
    head = src.fp.read(zipfile.sizeFileHeader)
    if len(head) != zipfile.sizeFileHeader or head[:4] != zipfile.stringFileHeader:
        return False
    fields = struct.unpack(zipfile.structFileHeader, head)
    src.fp.seek(fields[zipfile._FH_FILENAME_LENGTH] + fields[zipfile._FH_EXTRA_FIELD_LENGTH], os.SEEK_CUR)
    zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    zi.compress_type, zi.CRC, zi.compress_size, zi.file_size = info.compress_type, info.CRC, info.compress_size, info.file_size
    zi.external_attr = 0o600 << 16  # as zf.open(ZipInfo, "w") writes
    out.fp.seek(out.start_dir)
    zi.header_offset = out.fp.tell()
    zip64 = zi.file_size > zipfile.ZIP64_LIMIT or zi.compress_size > zipfile.ZIP64_LIMIT
    out.fp.write(zi.FileHeader(zip64))
    left = info.compress_size
    while left:
        chunk = src.fp.read(min(left, 1 << 20))
        if not chunk:
            raise zipfile.BadZipFile(f"{name}: the member ends early")
        out.fp.write(chunk)
        left -= len(chunk)
    out.filelist.append(zi)
    out.NameToInfo[name] = zi
    out.start_dir = out.fp.tell()
    out._didModify = True
    return True


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ExportRefused(Exception):
    """A feed version may not be exported: its severity policy blocked it. The message is one line naming the codes."""


def refusal(feed_id: str, feed_version: str, meta_part: Path) -> str | None:
    """Return why ``feed_version`` may not be exported (one line), or None if its policy let it pass."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(meta_part)  # not pq.read_table: its dataset layer imports pandas (seconds, in a process that has not)
    if "policy_status" not in pf.schema_arrow.names:
        return None
    row = pf.read(columns=["policy_status", "blocked_by"]).to_pylist()[0]
    if row["policy_status"] != "blocked":
        return None
    from warehouse.policy import blocking_reason

    return (f"{feed_id}: version {feed_version} is blocked by the feed's policy ({blocking_reason(json.loads(row['blocked_by'] or '{}'))}); "
            f"no export is built from a blocked version; fix the feed or change `policy` in its spec")


def export_paths(ws: Workspace, feed_id: str, feed_version: str) -> tuple[Path, Path]:
    """Return (GTFS zip, Parquet folder) of a version's export; the zip is written last, so it exists only when both are whole."""
    return ws.exports / "gtfs" / feed_id / f"{feed_id}_{feed_version}.zip", ws.exports / "parquet" / feed_id / feed_version


def is_exported(ws: Workspace, feed_id: str, feed_version: str) -> bool:
    """Return True if the version's export is complete, or its policy refuses one (nothing is left to do)."""
    zip_path, pq_dir = export_paths(ws, feed_id, feed_version)
    if zip_path.exists() and pq_dir.is_dir():
        return True
    meta_part = ws.lake_partition("meta_feed_versions", feed_id, feed_version) / "part-0.parquet"
    return meta_part.exists() and refusal(feed_id, feed_version, meta_part) is not None


def export_version(ws: Workspace, feed_id: str, feed_version: str, *, lock: bool = True, plain: dict | None = None) -> dict:
    """Return the paths of the GTFS zip and Parquet folder written for one feed version.

    The zip holds every file of the input: canonical tables in the standard column order
    (columns the input had, then its unknown columns), unknown files as received, all UTF-8.
    A file whose name would lead out of the folder (a lake written before names were checked)
    is left out and listed in ``left_out``.
    If the version's severity policy blocked it, then raise ExportRefused and write nothing.

    Everything is written in a hidden temporary folder beside the zip (``.<zip stem>.tmp-*``),
    under the feed's lock; the Parquet folder is then swapped in and the zip renamed last. The
    temporary files a killed export left (and ``exports/tmpXXXXXXXX`` of older versions) are
    removed first. ``lock=False``: the caller holds the feed's lock for this whole call in another thread (a feed run
    building its export while it publishes: noriba.pipeline.start_export). ``plain``: {member: transforms.verbatim
    facts} the parse of this process found (see known_verbatim).
    """
    schema = load_schema()
    meta_part = ws.lake_partition("meta_feed_versions", feed_id, feed_version) / "part-0.parquet"
    why = refusal(feed_id, feed_version, meta_part)
    if why:
        raise ExportRefused(why)
    with feed_lock(ws, feed_id) if lock else nullcontext():
        return _export_locked(ws, schema, feed_id, feed_version, meta_part, plain or {})


def _export_locked(ws: Workspace, schema, feed_id: str, feed_version: str, meta_part: Path, plain: dict) -> dict:
    zip_path, pq_dir = export_paths(ws, feed_id, feed_version)
    out_dir = zip_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    pq_dir.parent.mkdir(parents=True, exist_ok=True)
    # ours (.<feed>_<version>.tmp-*, .<feed>_<version>.zip.tmp-*) and older versions' <feed>_<version>.zip.tmp; not the catalog's
    sweep(out_dir, f".{feed_id}_*.tmp-*", f"{feed_id}_*.zip.tmp")
    sweep(pq_dir.parent, ".*.tmp-*", ".*.old-*")
    sweep_legacy_export_tmp(ws)
    work = Path(tempfile.mkdtemp(prefix=f".{zip_path.stem}.tmp-", dir=out_dir))
    con = bounded_connection(work / "spill")
    meta = con.execute(f"SELECT files, tables, raw_path FROM read_parquet({lit(str(meta_part))}, hive_partitioning=false)").fetchall()[0]
    files = json.loads(meta[0])
    raw_zip = Path(meta[2]) if meta[2] and Path(meta[2]).is_file() else None  # the input as archived (a local home)
    left_out: list[str] = []
    verbatim: list[str] = []  # members copied from the input as received (copy_if_verbatim)
    unread: set[str] = set()  # of those, the ones known plain from the parse: not in the folder, copied from the input only

    def target_of(name: str) -> Path | None:
        try:
            return safe_join(tmp, name)
        except UnsafePath:
            left_out.append(name)
            return None

    try:
        tmp, pq_tmp = work / "gtfs", work / "parquet"
        tmp.mkdir()
        pq_tmp.mkdir()
        for tname in json.loads(meta[1]):
            table = schema.tables[tname]
            part = ws.lake_partition(f"gtfs_{tname}", feed_id, feed_version) / "part-0.parquet"
            if table.profile == "geojson":  # GTFS-Flex zones: the zip gets locations.geojson as received (gtfs_other_blobs)
                from transforms.flex.geojson import write_geoparquet

                write_geoparquet(con, f"(SELECT * FROM read_parquet({lit(str(part))}, hive_partitioning=false) ORDER BY _line)", pq_tmp / (tname + ".parquet"),
                                 feed_id=feed_id, feed_version=feed_version)
                continue
            info = files[table.file_name]
            header = [h.strip().lstrip("\ufeff") for h in info["header"]]
            src = f"read_parquet({lit(str(part))}, hive_partitioning=false)"
            as_received = (raw_zip and info.get("encoding") == "utf-8" and not info.get("quarantined") and header == info["header"]
                           and info.get("accepted") == info.get("rows_in"))
            if as_received and known_verbatim(raw_zip, table.file_name, table, header, info["rows_in"], plain.get(table.file_name)):
                verbatim.append(table.file_name)
                unread.add(table.file_name)
            elif as_received and copy_if_verbatim(raw_zip, table.file_name, table, header, info["rows_in"], tmp / table.file_name):
                verbatim.append(table.file_name)
            else:
                write_gtfs_text(con, table, src, header, tmp / table.file_name)
            if not write_export_parquet(part, pq_tmp / (tname + ".parquet"), feed_id=feed_id, feed_version=feed_version):
                con.execute(
                    f"COPY (SELECT {lit(feed_id)} AS feed_id, {lit(feed_version)} AS feed_version, * FROM {src}) "
                    f"TO {lit(str(pq_tmp / (tname + '.parquet')))} (FORMAT parquet, COMPRESSION zstd)"
                )
        other = ws.lake_partition("gtfs_other_files", feed_id, feed_version) / "part-0.parquet"
        if other.exists():
            # one JSON array of a file's records, parsed in one call (not one json.loads per row: seconds on a big file)
            _write_other_files(con, f"read_parquet({lit(str(other))}, hive_partitioning=false)", target_of)
        blobs = ws.lake_partition("gtfs_other_blobs", feed_id, feed_version) / "part-0.parquet"
        if blobs.exists():
            for name, content in con.execute(f"SELECT file_name, content FROM read_parquet({lit(str(blobs))}, hive_partitioning=false)").fetchall():
                if (target := target_of(name)) is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        # an unknown file that had a header but no rows still comes back
        for name, info in files.items():
            if not info.get("known") and info.get("header") and (target := target_of(name)) and not target.exists():
                with target.open("w", encoding="utf-8", newline="") as fh:
                    csv.writer(fh, lineterminator="\n").writerow(info["header"])
        fault_point("export")  # test hook: a kill here leaves the temporary folder and no zip
        replace_dir(pq_tmp, pq_dir)
        _zip_dir(tmp, zip_path, raw_from=raw_zip, raw_names=frozenset(verbatim), unread=frozenset(unread))
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    return {"gtfs_zip": str(zip_path), "gtfs_sha256": sha256_of(zip_path), "parquet_dir": str(pq_dir),
            "left_out": sorted(set(left_out))}
