"""locations.geojson (transforms/flex/geojson.py): zones read as WGS84 WKB, every bad file one notice, never a traceback."""

import json

import pytest
import shapely

from tests.conftest import shared
from transforms.flex import geojson
from transforms.flex.geojson import read_locations
from transforms.notices import Findings

SQUARE = {"type": "Polygon", "coordinates": [[[141.40, 43.30], [141.42, 43.30], [141.42, 43.32], [141.40, 43.32], [141.40, 43.30]]]}


def doc(*features, **root) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features), **root}).encode()


def feature(fid="Z1", geometry=SQUARE, **more) -> dict:
    return {"id": fid, "type": "Feature", "properties": {"stop_name": "港地区"}, "geometry": geometry, **more}


def read(data: bytes):
    f = Findings()
    t = read_locations(data, f)
    return t, {n.code for n in f.notices}, f


def test_valid_zone_becomes_one_row_with_wkb_geometry():
    t, found, _ = read(doc(feature()))
    assert found == set()
    row = t.to_pylist()[0]
    assert (row["location_id"], row["stop_name"], row["geometry_type"], row["_line"]) == ("Z1", "港地区", "Polygon", 1)
    assert shapely.from_wkb(row["geometry"]).equals(shapely.geometry.shape(SQUARE))


@pytest.mark.parametrize("data,code", [
    (b'{"type": "FeatureCollection", "features": [', "malformed_json"),
    (b"\xff\xfe{}", "malformed_json"),
    (b"[" * 100_000 + b"]" * 100_000, "malformed_json"),
    (json.dumps({"type": "Feature", "geometry": SQUARE}).encode(), "unsupported_geo_json_type"),
    (b'{"type": "FeatureCollection", "type": "FeatureCollection", "features": []}', "duplicate_geo_json_key"),
    (doc(feature(), feature()), "geo_json_duplicated_element"),
    (doc(feature(), extra=1), "geo_json_unknown_element"),
    (doc(feature(fid=None)), "missing_required_element"),
    (json.dumps({"type": "FeatureCollection"}).encode(), "missing_required_element"),
    (doc({**feature(), "type": "Point"}), "unsupported_feature_type"),
    (doc(feature(geometry={"type": "Point", "coordinates": [141.4, 43.3]})), "unsupported_geometry_type"),
    (doc(feature(geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]})), "invalid_geometry"),
    (doc(feature(geometry={"type": "Polygon", "coordinates": [[[200, 0], [201, 1], [201, 0], [200, 0]]]})), "invalid_geometry"),
    (doc(feature(geometry={"type": "Polygon", "coordinates": "x"})), "invalid_geometry"),
])
def test_each_bad_locations_file_gets_its_code(data, code):
    _, found, f = read(data)
    assert code in found, [n.message for n in f.notices]
    assert all(n.file == "locations.geojson" and n.message for n in f.notices)


def test_good_file_has_none_of_those_codes():
    _, found, _ = read(doc(feature("Z1"), feature("Z2", geometry={"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]})))
    assert found == set()


def test_self_crossing_zone_is_repaired_with_make_valid_and_kept():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    t, found, _ = read(doc(feature(geometry=bowtie)))
    assert found == {"invalid_geometry"}
    g = shapely.from_wkb(t.to_pylist()[0]["geometry"])
    assert g.is_valid and g.area == pytest.approx(0.5)


def test_file_over_the_size_limit_is_refused_with_one_notice(monkeypatch):
    monkeypatch.setattr(geojson, "MAX_BYTES", 100)
    t, found, f = read(doc(feature()))
    assert t.num_rows == 0 and found == {"malformed_json"} and len(f.notices) == 1


def test_too_many_coordinates_stop_the_read_with_one_notice(monkeypatch):
    monkeypatch.setattr(geojson, "MAX_POINTS", 7)
    t, found, f = read(doc(feature("Z1"), feature("Z2")))
    assert t.num_rows == 1 and [n.code for n in f.notices] == ["malformed_json"]


def test_write_back_gives_the_same_zones():
    t, _, _ = read(doc(feature("Z1", properties={"stop_name": "港", "zone_id": "A"})))
    again, found, _ = read(geojson.to_geojson(t.to_pylist()))
    assert found == set()
    assert again.drop(["geometry"]).to_pylist() == t.drop(["geometry"]).to_pylist()


@pytest.mark.parametrize("path,zones", [
    (("gtfs", "flex", "us-otp-fixtures", "aspen-flex-on-demand.gtfs"), 1),
    (("gtfs", "flex", "us-otp-fixtures", "cobblinc-scheduled-deviated-flex.gtfs"), 3),
    (("gtfs", "flex", "us-otp-fixtures", "lincoln-county-flex.gtfs"), 188),
])
def test_shared_flex_zones_are_read(path, zones):
    t, found, f = read((shared(*path) / "locations.geojson").read_bytes())
    assert t.num_rows == zones
    assert found <= {"invalid_geometry"}, [n.message for n in f.notices]
    assert all(shapely.from_wkb(g).is_valid for g in t.column("geometry").to_pylist())


def test_a_generator_can_write_zones_from_shapely_geometries():
    zone = shapely.geometry.shape(SQUARE)
    t, found, _ = read(geojson.to_geojson([{"location_id": "Z1", "stop_name": "港地区", "geometry": zone}]))
    assert found == set() and t.num_rows == 1 and shapely.from_wkb(t.to_pylist()[0]["geometry"]).equals(zone)
