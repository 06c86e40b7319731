"""Analytical exports: GeoParquet stops and shapes, a standalone DuckDB file, BOM CSV for Excel, the data dictionary."""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
import pytest
import shapely


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("analytics") / "home").ensure()
    for spec in load_specs():
        if "demo" in spec.tags:
            run_feed(spec, ws)
    out = build_export("demo-region", ws)
    return out, json.loads(open(out["manifest"], encoding="utf-8").read())


def test_stops_and_shapes_are_geoparquet_with_wkb_geometry(demo_export):
    out, manifest = demo_export
    stops = pq.read_table(f"{out['dir']}/parquet/stops.parquet")
    geo = json.loads(stops.schema.metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["geometry_types"] == ["Point"]
    rows = stops.to_pylist()
    assert len(rows) == manifest["rows_out"]["stops"]
    for r in rows:
        p = shapely.from_wkb(r["geometry"])
        assert (p.x, p.y) == (r["stop_lon"], r["stop_lat"])
    west, south, east, north = geo["columns"]["geometry"]["bbox"]
    assert west == min(r["stop_lon"] for r in rows) and north == max(r["stop_lat"] for r in rows)
    lines = pq.read_table(f"{out['dir']}/parquet/shape_lines.parquet")
    assert json.loads(lines.schema.metadata[b"geo"])["columns"]["geometry"]["geometry_types"] == ["LineString"]
    n_points = duckdb.sql(f"SELECT count(*) FROM '{out['dir']}/parquet/shapes.parquet'").fetchall()[0][0]
    assert sum(lines.column("points").to_pylist()) == n_points
    assert all(length > 100 for length in lines.column("length_m").to_pylist())


def test_duckdb_file_stands_alone_with_every_table_and_the_dictionary(demo_export):
    out, manifest = demo_export
    con = duckdb.connect(f"{out['dir']}/demo-region.duckdb", read_only=True)
    tables = {r[0] for r in con.sql("SHOW TABLES").fetchall()}
    assert set(manifest["rows_out"]) | {"data_dictionary", "shape_lines"} == tables
    for t, n in manifest["rows_out"].items():
        assert con.sql(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] == n, t
    # times are seconds after midnight, past 24:00 kept
    assert con.sql("SELECT max(departure_time) FROM stop_times").fetchall()[0][0] >= 24 * 3600
    assert con.sql("SELECT count(*) FROM data_dictionary WHERE table_name = 'stops' AND column_name = 'stop_lat'").fetchall()[0][0] == 1


def test_csv_has_a_bom_and_japanese_text_round_trips(demo_export):
    out, _ = demo_export
    raw = open(f"{out['dir']}/csv/stops.csv", "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert "髙﨑病院前" in text and '"港前, 北口"' in text and "山手第Ⅱ団地" in text
    times = open(f"{out['dir']}/csv/stop_times.csv", encoding="utf-8-sig").read()
    assert ",24:" in times  # times as people write them


def test_data_dictionary_follows_the_canonical_schema(demo_export):
    from transforms.schema import load_schema

    out, manifest = demo_export
    d = json.loads(open(f"{out['dir']}/data_dictionary.json", encoding="utf-8").read())
    schema = load_schema()
    for t in manifest["rows_out"]:
        cols = {c["name"]: c for c in d["tables"][t]["columns"]}
        for f in schema.tables[t].fields:
            assert cols[f.column]["type"] == f.type and cols[f.column].get("required", False) == f.required
    assert d["tables"]["stop_times"]["columns"][0]["name"] == "source_feed_id"
    assert "時刻" in {c["name"]: c for c in d["tables"]["stop_times"]["columns"]}["arrival_time"]["meaning_ja"]
    md = open(f"{out['dir']}/data_dictionary.md", encoding="utf-8").read()
    assert "## stops (stops.txt)" in md and "→ stops.stop_id" in md
