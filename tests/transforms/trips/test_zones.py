"""Zone layers: any CRS to WGS84, duplicate ids and zones without geometry reported, vectorised point-in-zone."""

from __future__ import annotations

import json

import numpy as np
from pyproj import Transformer

from transforms.trips.spec import check_zones
from transforms.trips.zones import load_layer

TO_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def _square(lon, lat, d=0.01, *, crs="EPSG:4326"):
    ring = [(lon, lat), (lon + d, lat), (lon + d, lat + d), (lon, lat + d), (lon, lat)]
    if crs == "EPSG:3857":
        ring = [TO_3857.transform(x, y) for x, y in ring]
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


def _layer(tmp_path, features, *, crs="EPSG:4326", **opts):
    doc = {"type": "FeatureCollection", "features": features}
    if crs != "EPSG:4326":
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    o, problems = check_zones({"id_field": "code", "name_field": "name", **opts}, where="z.yml")
    assert not problems
    return load_layer("z", path, o)


def test_projected_layer_is_reprojected_and_points_are_assigned(tmp_path):
    feats = [{"type": "Feature", "properties": {"code": "A", "name": "港"}, "geometry": _square(141.39, 43.29, crs="EPSG:3857")},
             {"type": "Feature", "properties": {"code": "B", "name": "山手"}, "geometry": _square(141.40, 43.30, crs="EPSG:3857")}]
    layer = _layer(tmp_path, feats, crs="EPSG:3857")
    xmin, ymin, xmax, ymax = layer.geoms[0].bounds
    assert abs(xmin - 141.39) < 1e-9 and abs(ymax - 43.30) < 1e-9
    got = layer.assign(np.array([141.395, 141.405, 141.5, np.nan]), np.array([43.295, 43.305, 43.5, np.nan]))
    assert got.tolist() == ["A", "B", None, None]


def test_duplicate_ids_and_missing_geometry_are_reported_not_merged_silently(tmp_path):
    feats = [{"type": "Feature", "properties": {"code": "A", "name": "a"}, "geometry": _square(0, 0)},
             {"type": "Feature", "properties": {"code": "A", "name": "a"}, "geometry": _square(1, 1)},
             {"type": "Feature", "properties": {"code": "C", "name": "c"}, "geometry": None}]
    layer = _layer(tmp_path, feats)
    codes = sorted((n.code, n.value) for n in layer.notices)
    assert codes == [("duplicate_zone_id", "A"), ("zone_without_geometry", "C")]
    rows = {r["zone_id"]: r for r in layer.rows()}
    assert rows["A"]["polygons"] == 2 and "C" not in rows  # both parts kept under one id; C has nothing to draw
    assert layer.assign(np.array([0.005, 1.005]), np.array([0.005, 1.005])).tolist() == ["A", "A"]


def test_wkt_csv_layer(tmp_path):
    path = tmp_path / "z.csv"
    path.write_text('zone_id,zone_name,zone_geom\n1,one,"POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))"\n2,two,\n', encoding="utf-8")
    o, _ = check_zones({"id_field": "zone_id", "geometry_field": "zone_geom"}, where="z.yml")
    layer = load_layer("w", path, o)
    assert [n.code for n in layer.notices] == ["zone_without_geometry"]
    assert layer.assign(np.array([0.5]), np.array([0.5])).tolist() == ["1"]


def test_zone_spec_mistakes_are_all_reported():
    _, problems = check_zones({"format": "kml", "crs": "EPSG:999999", "role": "x"}, where="specs/trips/z.yml")
    text = "\n".join(problems)
    for field in ("zones.format", "zones.id_field", "zones.crs", "zones.role"):
        assert f"specs/trips/z.yml: {field}:" in text
