"""Analytical exports of working GTFS tables: Parquet (GeoParquet for stops and shapes), a standalone
DuckDB file, CSV for spreadsheets (UTF-8 with BOM, so Excel opens Japanese text correctly), and a
data dictionary generated from ``specs/schemas/gtfs.yml``.

Typed columns follow the canonical schema: times are seconds after midnight (over 24:00 allowed),
dates are DATE, coordinates DOUBLE. In the CSV files times and dates are written the GTFS way
(HH:MM:SS, YYYYMMDD) since that is what people type and read.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from transforms.canonical import lit, q
from transforms.schema import SQL_TYPES, load_schema
from warehouse.merge import Work

BOM = "\ufeff".encode()
GEOPARQUET_VERSION = "1.1.0"

TYPE_DOC = {
    "geometry": ("GTFS-Flex zone, WKB polygon (CRS84 lon/lat)", "デマンド交通の運行区域（WKB ポリゴン, 経緯度）"),
    "id": ("identifier (text)", "ID（文字列）"),
    "text": ("text", "文字列"),
    "int": ("whole number", "整数"),
    "enum": ("code (whole number from a fixed list)", "区分コード（整数）"),
    "float": ("decimal number", "小数"),
    "time": ("time: seconds after midnight in Parquet/DuckDB (may exceed 86400), HH:MM:SS in CSV",
             "時刻：Parquet/DuckDB では 0時からの秒数（24時超可）、CSV では HH:MM:SS"),
    "date": ("date: DATE in Parquet/DuckDB, YYYYMMDD in CSV", "日付：Parquet/DuckDB では DATE、CSV では YYYYMMDD"),
    "color": ("colour, 6 hex digits", "色（16進6桁）"),
    "url": ("URL", "URL"), "email": ("e-mail address", "メールアドレス"), "phone": ("phone number", "電話番号"),
    "timezone": ("IANA time zone", "タイムゾーン"), "lang": ("language code", "言語コード"), "currency": ("ISO 4217 currency", "通貨コード"),
}
SYSTEM_DOC = {
    "source_feed_id": ("feed the row comes from (Noriba feed id)", "元のフィード ID"),
    "_line": ("line of the row in its source file", "元ファイルの行番号"),
    "_untyped": ("JSON {field: text} of values that could not be typed (the typed column is empty)", "型変換できなかった値（JSON）"),
    "_extra": ("JSON {column: text} of columns GTFS does not define", "GTFS に無い列の値（JSON）"),
    "geometry": ("geometry, WKB (GeoParquet, CRS84 lon/lat)", "ジオメトリ（WKB, 経緯度）"),
}


def _columns(work: Work, t: str) -> list[str]:
    schema = load_schema().tables[t]
    return [c for c, _ in schema.columns_sql() if c not in ("feed_id", "feed_version")]


def _select(work: Work, t: str) -> str:
    cols = [f"_feed AS source_feed_id"] + [q(c) for c in _columns(work, t)]
    return f"SELECT {', '.join(cols)} FROM {q('w_' + t)} ORDER BY _ord, _line"


def _geo_metadata(geom_type: str, bbox: list[float] | None) -> bytes:
    col = {"encoding": "WKB", "geometry_types": [geom_type]}
    if bbox:
        col["bbox"] = bbox
    return json.dumps({"version": GEOPARQUET_VERSION, "primary_column": "geometry", "columns": {"geometry": col}}).encode()


def stops_geotable(work: Work) -> pa.Table:
    """Return stops with a WKB Point ``geometry`` column and GeoParquet metadata (stops without coordinates get null)."""
    t = work.con.sql(_select(work, "stops")).to_arrow_table()
    lon = t.column("stop_lon").to_numpy(zero_copy_only=False)
    lat = t.column("stop_lat").to_numpy(zero_copy_only=False)
    pts = shapely.points(lon, lat)
    wkb = shapely.to_wkb(pts, output_dimension=2)
    wkb = [None if (x is None or y is None or x != x or y != y) else w for w, x, y in zip(wkb, lon, lat)]
    t = t.append_column("geometry", pa.array(wkb, pa.binary()))
    valid = [(x, y) for x, y in zip(lon, lat) if x == x and y == y and x is not None]
    bbox = [min(v[0] for v in valid), min(v[1] for v in valid), max(v[0] for v in valid), max(v[1] for v in valid)] if valid else None
    return t.replace_schema_metadata({**(t.schema.metadata or {}), b"geo": _geo_metadata("Point", bbox)})


def shapes_geotable(work: Work) -> pa.Table:
    """Return one row per shape_id with a WKB LineString ``geometry``, its point count and length in metres."""
    rows = work.con.sql(
        "SELECT _feed, shape_id, list(shape_pt_lon ORDER BY shape_pt_sequence), list(shape_pt_lat ORDER BY shape_pt_sequence) "
        "FROM w_shapes GROUP BY _feed, _ord, shape_id ORDER BY _ord, shape_id").fetchall()
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    feeds, ids, geoms, npts, lengths = [], [], [], [], []
    for feed, sid, lons, lats in rows:
        if len(lons) < 2:
            continue
        line = shapely.linestrings(lons, lats)
        feeds.append(feed)
        ids.append(sid)
        geoms.append(shapely.to_wkb(line, output_dimension=2))
        npts.append(len(lons))
        lengths.append(round(geod.line_length(lons, lats), 1))
    t = pa.table({"source_feed_id": pa.array(feeds, pa.string()), "shape_id": pa.array(ids, pa.string()),
                  "points": pa.array(npts, pa.int32()), "length_m": pa.array(lengths, pa.float64()),
                  "geometry": pa.array(geoms, pa.binary())})
    bbox = None
    if rows:
        b = work.con.sql("SELECT min(shape_pt_lon), min(shape_pt_lat), max(shape_pt_lon), max(shape_pt_lat) FROM w_shapes").fetchall()[0]
        bbox = list(b) if b[0] is not None else None
    return t.replace_schema_metadata({b"geo": _geo_metadata("LineString", bbox)})


def data_dictionary(work: Work) -> dict:
    """Return the data dictionary of the exported tables: per table, each column's type, meaning and constraints."""
    schema = load_schema()
    out = {"tables": {}, "notes": {
        "en": "Generated from specs/schemas/gtfs.yml. One table per GTFS file; source_feed_id names the feed each row comes from.",
        "ja": "specs/schemas/gtfs.yml から生成。GTFS のファイルごとに 1 表。source_feed_id は元のフィード。"}}
    for t in work.tables:
        table = schema.tables[t]
        cols = [{"name": "source_feed_id", "type": "text", "sql_type": "VARCHAR", "meaning": SYSTEM_DOC["source_feed_id"][0],
                 "meaning_ja": SYSTEM_DOC["source_feed_id"][1]}]
        for c, sql_type in table.columns_sql():
            if c in ("feed_id", "feed_version"):
                continue
            f = next((f for f in table.fields if f.column == c), None)
            if f is None:
                cols.append({"name": c, "type": "system", "sql_type": sql_type, "meaning": SYSTEM_DOC[c][0], "meaning_ja": SYSTEM_DOC[c][1]})
                continue
            d = {"name": c, "gtfs_field": f.name, "type": f.type, "sql_type": SQL_TYPES.get(f.type, "VARCHAR"),
                 "meaning": TYPE_DOC[f.type][0], "meaning_ja": TYPE_DOC[f.type][1], "required": f.required, "key": f.key}
            if f.ref:
                d["references"] = f.ref
            if f.enum:
                d["allowed"] = list(f.enum)
            cols.append(d)
        out["tables"][t] = {"file": table.file_name, "profile": table.profile, "rows": work.count(t), "columns": cols}
    if "stops" in work.tables:
        out["tables"]["stops"]["columns"].append({"name": "geometry", "type": "geometry", "sql_type": "BLOB (WKB Point)",
                                                  "meaning": SYSTEM_DOC["geometry"][0], "meaning_ja": SYSTEM_DOC["geometry"][1]})
    if "shapes" in work.tables:
        out["tables"]["shape_lines"] = {"file": "(derived from shapes.txt)", "rows": None, "columns": [
            {"name": "source_feed_id", "type": "text", "sql_type": "VARCHAR", "meaning": SYSTEM_DOC["source_feed_id"][0]},
            {"name": "shape_id", "type": "id", "sql_type": "VARCHAR", "meaning": "the shape"},
            {"name": "points", "type": "int", "sql_type": "INTEGER", "meaning": "number of shape points"},
            {"name": "length_m", "type": "float", "sql_type": "DOUBLE", "meaning": "length along the ellipsoid, metres"},
            {"name": "geometry", "type": "geometry", "sql_type": "BLOB (WKB LineString)", "meaning": SYSTEM_DOC["geometry"][0]}]}
    return out


def dictionary_markdown(d: dict) -> str:
    lines = ["# Data dictionary / データ辞書", "", d["notes"]["en"], "", d["notes"]["ja"], ""]
    for t, info in d["tables"].items():
        lines += [f"## {t} ({info['file']})", "", "| column | type | SQL type | meaning / 意味 | constraints |", "|---|---|---|---|---|"]
        for c in info["columns"]:
            cons = ", ".join(x for x in ("required" if c.get("required") else "", "key" if c.get("key") else "",
                                         f"→ {c['references']}" if c.get("references") else "",
                                         f"one of {c['allowed']}" if c.get("allowed") else "") if x)
            meaning = c.get("meaning", "") + (f" / {c['meaning_ja']}" if c.get("meaning_ja") else "")
            lines.append(f"| {c['name']} | {c['type']} | {c['sql_type']} | {meaning} | {cons} |")
        lines.append("")
    return "\n".join(lines)


def _write_parquet(work: Work, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for t in work.tables:
        if t == "stops":
            pq.write_table(stops_geotable(work), out / "stops.parquet", compression="zstd")
        elif load_schema().tables[t].profile == "geojson":  # GTFS-Flex zones: GeoParquet
            from transforms.flex.geojson import write_geoparquet

            write_geoparquet(work.con, f"({_select(work, t)})", out / (t + ".parquet"))
        else:
            work.con.execute(f"COPY ({_select(work, t)}) TO {lit(str(out / (t + '.parquet')))} (FORMAT parquet, COMPRESSION zstd)")
    if "shapes" in work.tables:
        pq.write_table(shapes_geotable(work), out / "shape_lines.parquet", compression="zstd")


def _write_duckdb(work: Work, path: Path, dictionary: dict) -> None:
    if path.exists():
        path.unlink()
    con = duckdb.connect(str(path))
    try:
        for t in work.tables:
            arrow = stops_geotable(work) if t == "stops" else work.con.sql(_select(work, t)).to_arrow_table()
            con.register("_in", arrow)
            con.execute(f"CREATE TABLE {q(t)} AS SELECT * FROM _in")
            con.unregister("_in")
        if "shapes" in work.tables:
            con.register("_in", shapes_geotable(work))
            con.execute("CREATE TABLE shape_lines AS SELECT * FROM _in")
            con.unregister("_in")
        rows = [{"table_name": t, "column_name": c["name"], "type": c["type"], "sql_type": c["sql_type"], "meaning": c.get("meaning"),
                 "meaning_ja": c.get("meaning_ja"), "references": c.get("references")}
                for t, info in dictionary["tables"].items() for c in info["columns"]]
        con.register("_dd", pa.Table.from_pylist(rows))
        con.execute("CREATE TABLE data_dictionary AS SELECT * FROM _dd")
        con.unregister("_dd")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _write_csv(work: Work, out: Path) -> None:
    from warehouse.export import write_gtfs_text

    schema = load_schema()
    out.mkdir(parents=True, exist_ok=True)
    for t in work.tables:
        table = schema.tables[t]
        header = work.headers.get(t) or [f.name for f in table.fields]
        plain = out / f".{t}.csv.tmp"
        write_gtfs_text(work.con, table, f"(SELECT * FROM {q('w_' + t)})", header, plain, order_by="_ord, _line")
        target = out / f"{t}.csv"
        with target.open("wb") as dst, plain.open("rb") as src:
            dst.write(BOM)
            shutil.copyfileobj(src, dst, 1 << 20)
        os.remove(plain)


def write_analytics(work: Work, out_dir: Path, *, formats: list[str], name: str) -> dict[str, dict]:
    """Return {format: {path, sha256}} after writing the analytical exports of ``work`` under ``out_dir``.

    Every format comes with the data dictionary (``data_dictionary.md`` and ``.json``).
    """
    from warehouse.export import sha256_of, zip_dir

    d = data_dictionary(work)
    (out_dir / "data_dictionary.json").write_text(json.dumps(d, ensure_ascii=False, indent=1), encoding="utf-8")
    (out_dir / "data_dictionary.md").write_text(dictionary_markdown(d), encoding="utf-8")
    files: dict[str, dict] = {"data_dictionary": {"path": "data_dictionary.md", "sha256": sha256_of(out_dir / "data_dictionary.md")}}
    if "parquet" in formats:
        _write_parquet(work, out_dir / "parquet")
        z = out_dir / f"{name}_parquet.zip"
        shutil.copy(out_dir / "data_dictionary.md", out_dir / "parquet" / "data_dictionary.md")
        zip_dir(out_dir / "parquet", z)
        files["parquet"] = {"path": z.name, "sha256": sha256_of(z), "bytes": z.stat().st_size, "folder": "parquet"}
    if "duckdb" in formats:
        p = out_dir / f"{name}.duckdb"
        _write_duckdb(work, p, d)
        files["duckdb"] = {"path": p.name, "sha256": sha256_of(p), "bytes": p.stat().st_size}
    if "csv" in formats:
        _write_csv(work, out_dir / "csv")
        shutil.copy(out_dir / "data_dictionary.md", out_dir / "csv" / "data_dictionary.md")
        z = out_dir / f"{name}_csv.zip"
        zip_dir(out_dir / "csv", z)
        files["csv"] = {"path": z.name, "sha256": sha256_of(z), "bytes": z.stat().st_size, "folder": "csv"}
    return files
