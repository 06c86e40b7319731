"""Exports of a published feed version: a GTFS zip rebuilt from the canonical tables, and Parquet."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path

import duckdb

from warehouse.workspace import Workspace
from warehouse.runstate import fault_point, feed_lock, replace_dir, sweep, sweep_legacy_export_tmp
from transforms.canonical import lit, q
from transforms.paths import UnsafePath, safe_join
from transforms.schema import Field, Table, load_schema


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


def zip_dir(src: Path, target: Path) -> None:
    """Write every file under ``src`` into the zip ``target`` (deterministic: sorted, fixed timestamps), atomically."""
    _zip_dir(src, target)


def _fast_deflate():
    """Return a raw deflate compressor (what zipfile's ZIP_DEFLATED writes) from ISA-L, level 1: ~5× zlib's default level.

    Any unzip reads it; the members are the same bytes, the zip a little larger.
    """
    from isal import isal_zlib

    return isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)


def _zip_dir(src: Path, target: Path) -> None:
    # a name of its own (hidden, unique), so two writers never share a temporary file; removed if writing fails
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(x for x in src.rglob("*") if x.is_file()):
                info = zipfile.ZipInfo(p.relative_to(src).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with p.open("rb") as fh, zf.open(info, "w", force_zip64=True) as out:
                    out._compressor = _fast_deflate()  # before the first byte: same deflate stream format, ISA-L speed
                    shutil.copyfileobj(fh, out, 1 << 20)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


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

    names = pq.read_schema(meta_part).names
    if "policy_status" not in names:
        return None
    row = pq.read_table(meta_part, columns=["policy_status", "blocked_by"]).to_pylist()[0]
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


def export_version(ws: Workspace, feed_id: str, feed_version: str) -> dict:
    """Return the paths of the GTFS zip and Parquet folder written for one feed version.

    The zip holds every file of the input: canonical tables in the standard column order
    (columns the input had, then its unknown columns), unknown files as received, all UTF-8.
    A file whose name would lead out of the folder (a lake written before names were checked)
    is left out and listed in ``left_out``.
    If the version's severity policy blocked it, then raise ExportRefused and write nothing.

    Everything is written in a hidden temporary folder beside the zip (``.<zip stem>.tmp-*``),
    under the feed's lock; the Parquet folder is then swapped in and the zip renamed last. The
    temporary files a killed export left (and ``exports/tmpXXXXXXXX`` of older versions) are
    removed first.
    """
    schema = load_schema()
    meta_part = ws.lake_partition("meta_feed_versions", feed_id, feed_version) / "part-0.parquet"
    why = refusal(feed_id, feed_version, meta_part)
    if why:
        raise ExportRefused(why)
    with feed_lock(ws, feed_id):
        return _export_locked(ws, schema, feed_id, feed_version, meta_part)


def _export_locked(ws: Workspace, schema, feed_id: str, feed_version: str, meta_part: Path) -> dict:
    zip_path, pq_dir = export_paths(ws, feed_id, feed_version)
    out_dir = zip_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    pq_dir.parent.mkdir(parents=True, exist_ok=True)
    # ours (.<feed>_<version>.tmp-*, .<feed>_<version>.zip.tmp-*) and older versions' <feed>_<version>.zip.tmp; not the catalog's
    sweep(out_dir, f".{feed_id}_*.tmp-*", f"{feed_id}_*.zip.tmp")
    sweep(pq_dir.parent, ".*.tmp-*", ".*.old-*")
    sweep_legacy_export_tmp(ws)
    con = duckdb.connect()
    meta = con.sql(f"SELECT files, tables FROM read_parquet({lit(str(meta_part))}, hive_partitioning=false)").fetchall()[0]
    files = json.loads(meta[0])
    left_out: list[str] = []

    def target_of(name: str) -> Path | None:
        try:
            return safe_join(tmp, name)
        except UnsafePath:
            left_out.append(name)
            return None

    work = Path(tempfile.mkdtemp(prefix=f".{zip_path.stem}.tmp-", dir=out_dir))
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
            header = [h.strip().lstrip("\ufeff") for h in files[table.file_name]["header"]]
            src = f"read_parquet({lit(str(part))}, hive_partitioning=false)"
            write_gtfs_text(con, table, src, header, tmp / table.file_name)
            con.execute(
                f"COPY (SELECT {lit(feed_id)} AS feed_id, {lit(feed_version)} AS feed_version, * FROM {src}) "
                f"TO {lit(str(pq_tmp / (tname + '.parquet')))} (FORMAT parquet, COMPRESSION zstd)"
            )
        other = ws.lake_partition("gtfs_other_files", feed_id, feed_version) / "part-0.parquet"
        if other.exists():
            rows = con.sql(f"SELECT file_name, header, record FROM read_parquet({lit(str(other))}, hive_partitioning=false) ORDER BY file_name, _line").fetchall()
            by_file: dict[str, list] = {}
            for name, header, record in rows:
                by_file.setdefault(name, [json.loads(header)]).append(list(json.loads(record).values()))
            for name, data in by_file.items():
                if (target := target_of(name)) is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("w", encoding="utf-8", newline="") as fh:
                    csv.writer(fh, lineterminator="\n").writerows(data)
        blobs = ws.lake_partition("gtfs_other_blobs", feed_id, feed_version) / "part-0.parquet"
        if blobs.exists():
            for name, content in con.sql(f"SELECT file_name, content FROM read_parquet({lit(str(blobs))}, hive_partitioning=false)").fetchall():
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
        _zip_dir(tmp, zip_path)
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    return {"gtfs_zip": str(zip_path), "gtfs_sha256": sha256_of(zip_path), "parquet_dir": str(pq_dir),
            "left_out": sorted(set(left_out))}
