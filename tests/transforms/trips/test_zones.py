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


def _stored(tmp_path, features, lookup_csv=None, **opts):
    import transforms.trips.zones as zones

    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features,
                                "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}}), encoding="utf-8")
    if lookup_csv is not None:
        (tmp_path / "lookup.csv").write_text(lookup_csv, encoding="utf-8")
        opts["lookup"] = {"path": "lookup.csv", "id_field": "code", "name_field": "name", "group_field": "ward"}
    o, problems = check_zones({"id_field": "code", "name_field": "name", "group_field": "ward", **opts}, where="z.yml")
    assert not problems
    return zones.stored_layer("z", path, o, tmp_path / "store"), path, o


def test_stored_layer_is_read_back_without_reading_the_source_again(tmp_path, monkeypatch):
    import shapely

    import transforms.trips.zones as zones

    feats = [{"type": "Feature", "properties": {"code": "A", "name": "港", "ward": "北"}, "geometry": _square(141.39, 43.29, crs="EPSG:3857")},
             {"type": "Feature", "properties": {"code": "A", "name": "港", "ward": "北"}, "geometry": _square(141.41, 43.29, crs="EPSG:3857")},
             {"type": "Feature", "properties": {"code": "B", "name": "山手", "ward": None}, "geometry": _square(141.40, 43.30, crs="EPSG:3857")},
             {"type": "Feature", "properties": {"code": "C", "name": "空"}, "geometry": None}]
    first, path, o = _stored(tmp_path, feats, lookup_csv="code,name,ward\nA,港,北\nX,不明,\n")
    assert len(list((tmp_path / "store" / "layer_id=z").glob("*.parquet"))) == 1

    def no_source(*a, **k):
        raise AssertionError("the source was read again")

    monkeypatch.setattr(zones, "load_layer", no_source)
    again = zones.stored_layer("z", path, o, tmp_path / "store")
    assert (again.layer_id, again.role, again.ids, again.names, again.groups) == (first.layer_id, first.role, first.ids, first.names, first.groups)
    assert again.known_ids == first.known_ids == {"A", "B", "X"}  # C has no polygon and is not in the lookup
    assert again.lookup_names == first.lookup_names == {"X": ("不明", "")}
    assert again.notices == first.notices and {n.code for n in again.notices} == {"duplicate_zone_id", "zone_without_geometry"}
    assert all(shapely.equals_exact(a, b, tolerance=0) for a, b in zip(again.geoms, first.geoms))
    assert again.rows() == first.rows()
    pts = (np.array([141.395, 141.415, 141.405, 141.5]), np.array([43.295, 43.295, 43.305, 43.5]))
    assert again.assign(*pts).tolist() == first.assign(*pts).tolist() == ["A", "A", "B", None]


def test_changed_layer_file_is_loaded_again_and_replaces_the_stored_one(tmp_path):
    feats = [{"type": "Feature", "properties": {"code": "A", "name": "a"}, "geometry": _square(141.39, 43.29, crs="EPSG:3857")}]
    first, path, _ = _stored(tmp_path, feats)
    feats.append({"type": "Feature", "properties": {"code": "B", "name": "b"}, "geometry": _square(141.40, 43.30, crs="EPSG:3857")})
    second, _, _ = _stored(tmp_path, feats)
    assert first.ids == ["A"] and second.ids == ["A", "B"]
    assert len(list((tmp_path / "store" / "layer_id=z").glob("*.parquet"))) == 1
