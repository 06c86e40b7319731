"""The GTFS-Flex feed built from an ``ondemand:`` section: valid for MobilityData's rules (gtfs-guru), stable, complete."""

from __future__ import annotations

import copy
import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
import shapely

from transforms.ondemand.area import resolve_area
from transforms.ondemand.build import Area, build_feed, service_dates, write_zip
from transforms.ondemand.service import build_from_section
from transforms.errors import InputError

ROOT = Path(__file__).resolve().parents[3]
SQUARE = shapely.box(141.39, 43.28, 141.44, 43.32)

SECTION = {
    "agency": {"name": "みなと市", "url": "https://example.jp/noriai", "phone": "0123-00-0100"},
    "route": {"short_name": "のりあい号", "type": 715},
    "area": {"name": "運行区域", "geojson": "unused"},
    "connects_to": [{"id": "sta", "name": "みなと駅", "kana": "みなとえき", "lat": 43.3, "lon": 141.4},
                    {"id": "hosp", "name": "市立病院", "kana": "しりつびょういん", "lat": 43.295, "lon": 141.41}],
    "valid": {"from": date(2026, 4, 1), "to": date(2027, 3, 31)},
    "hours": [{"days": "weekdays", "from": "08:00", "to": "12:00"}, {"days": "weekdays", "from": "13:00", "to": "18:00"},
              {"days": "holidays", "from": "09:00", "to": "15:00"}],
    "holidays": "closed",
    "booking": {"by": ["phone"], "phone": "0123-00-0100", "day_before": {"until": "17:00", "days_ahead": 7}},
    "fare": {"price": 300, "currency": "JPY"},
    "office": {"id": "c", "name": "予約センター", "phone": "0123-00-0100"},
}


def table(feed, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(feed.files[name].decode("utf-8"))))


def flex(section=SECTION, area=None):
    return build_feed(section, area or Area(name="運行区域", geometry=SQUARE), feed_id="od", name="x", timezone="Asia/Tokyo",
                      country="JP", japanese=True)


def errors_of(zip_path: Path) -> list[str]:
    gtfs_guru = pytest.importorskip("gtfs_guru")
    result = gtfs_guru.validate(str(zip_path), country_code="JP", date="2026-06-01")
    return [f"{n.code} {n.file}: {n.context()}" for n in result.notices if n.severity == "ERROR"]


def test_zone_feed_has_no_gtfs_guru_error(tmp_path):
    assert errors_of(write_zip(flex(), tmp_path / "feed.zip")) == []


def test_stop_based_feed_has_no_gtfs_guru_error(tmp_path):
    sec = {**SECTION, "area": {"stops": [{"id": "a", "name": "甲", "lat": 43.29, "lon": 141.41},
                                         {"id": "b", "name": "乙", "lat": 43.31, "lon": 141.42}]},
           "booking": {"by": ["web"], "url": "https://example.jp/book", "same_day": {"minutes_before": 60}}}
    feed = flex(sec, Area(name="停留所", stops=sec["area"]["stops"]))
    assert "locations.geojson" not in feed.files
    assert {r["stop_id"] for r in table(feed, "location_group_stops.txt")} == {"a", "b", "sta", "hosp"}
    assert errors_of(write_zip(feed, tmp_path / "feed.zip")) == []


def test_day_before_booking_is_booking_type_2_with_last_time():
    rule = table(flex(), "booking_rules.txt")[0]
    assert (rule["booking_type"], rule["prior_notice_last_day"], rule["prior_notice_last_time"]) == ("2", "1", "17:00:00")
    assert rule["prior_notice_start_day"] == "7" and rule["phone_number"] == "0123-00-0100"
    assert rule["message"] == "乗車日の前日17:00までに電話で予約してください。"


def test_same_day_booking_is_booking_type_1_with_minutes():
    sec = {**SECTION, "booking": {"by": ["phone"], "phone": "1", "same_day": {"minutes_before": 30}}}
    rule = table(flex(sec), "booking_rules.txt")[0]
    assert (rule["booking_type"], rule["prior_notice_duration_min"], rule["prior_notice_last_day"]) == ("1", "30", "")


def test_windows_are_on_stop_times_with_booking_rules():
    rows = table(flex(), "stop_times.txt")
    zone = [r for r in rows if r["trip_id"] == "s_weekdays_0800_zone"]
    assert [(r["location_id"], r["start_pickup_drop_off_window"], r["end_pickup_drop_off_window"], r["pickup_type"],
             r["drop_off_type"], r["pickup_booking_rule_id"], r["drop_off_booking_rule_id"]) for r in zone] == [
        ("area", "08:00:00", "12:00:00", "2", "1", "booking", ""), ("area", "08:00:00", "12:00:00", "1", "2", "", "booking")]
    assert {r["location_group_id"] for r in rows if r["trip_id"].endswith("_to_stops")} == {"", "connects"}


def test_public_holidays_close_the_weekday_service_and_open_the_holiday_one():
    cal = table(flex(), "calendar_dates.txt")
    assert {"service_id": "s_weekdays", "date": "20260429", "exception_type": "2"} in cal  # 昭和の日, a Wednesday
    assert {"service_id": "s_holidays", "date": "20260429", "exception_type": "1"} in cal
    _, _, windows = service_dates(SECTION, country="JP")
    assert [(w["service_id"], w["start_s"]) for w in windows if w["service_date"] == date(2026, 4, 29)] == [("s_holidays", 32400)]


def test_locations_geojson_is_one_polygon_feature_in_wgs84():
    doc = json.loads(flex().files["locations.geojson"])
    (feat,) = doc["features"]
    assert feat["id"] == "area" and feat["geometry"]["type"] == "Polygon" and feat["properties"] == {"stop_name": "運行区域"}


def test_japanese_town_gets_gtfs_jp_agency_office_and_kana():
    feed = flex()
    assert table(feed, "agency_jp.txt")[0]["agency_official_name"] == "みなと市"
    assert table(feed, "office_jp.txt")[0]["office_name"] == "予約センター"
    assert {r["translation"] for r in table(feed, "translations.txt")} == {"みなとえき", "しりつびょういん"}


def test_every_trip_is_operated_by_the_booking_office_so_the_office_is_used():
    trips = table(flex(), "trips.txt")
    assert trips and {r["jp_office_id"] for r in trips} == {"c"}
    english = build_feed(SECTION, Area(name="zone", geometry=SQUARE), feed_id="od", name="x", timezone="America/Denver",
                         country="US", japanese=False)
    assert "office_jp.txt" not in english.files and "jp_office_id" not in table(english, "trips.txt")[0]


def test_same_section_gives_the_same_zip_and_a_changed_leaflet_a_new_one(tmp_path):
    a = write_zip(flex(), tmp_path / "a.zip").read_bytes()
    b = write_zip(flex(copy.deepcopy(SECTION)), tmp_path / "b.zip").read_bytes()
    assert a == b
    later = {**SECTION, "hours": [{"days": "weekdays", "from": "08:00", "to": "17:00"}]}
    assert write_zip(flex(later), tmp_path / "c.zip").read_bytes() != a


def test_districts_are_unioned_from_the_zone_layer():
    sec = {**SECTION, "area": {"districts": {"layer": "minato-districts", "names": ["北浜", "D06"]}}}
    area = resolve_area(sec, root=ROOT, default_name="x")
    assert area.geometry.geom_type == "Polygon" and 141 < area.geometry.centroid.x < 142


def test_area_file_that_is_not_a_polygon_says_what_to_do(tmp_path):
    (tmp_path / "a.geojson").write_text(json.dumps({"type": "Point", "coordinates": [141.4, 43.3]}))
    with pytest.raises(InputError, match=r"ondemand.area.geojson: feature 1 is a Point, not a Polygon or MultiPolygon; draw the area"):
        build_from_section({**SECTION, "area": {"geojson": "a.geojson"}}, feed_id="od", name="x", timezone="Asia/Tokyo",
                           profile="gtfs", root=tmp_path)


def test_area_file_in_metres_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "a.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1000, 0], [1000, 1000], [0, 0]]]}))
    with pytest.raises(InputError, match="reproject the file to EPSG:4326"):
        build_from_section({**SECTION, "area": {"geojson": "a.geojson"}}, feed_id="od", name="x", timezone="Asia/Tokyo",
                           profile="gtfs", root=tmp_path)


def test_unknown_district_found_only_when_building_says_did_you_mean():
    sec = {**SECTION, "area": {"districts": {"layer": "minato-districts", "names": ["北浜", "山の手"]}}}
    with pytest.raises(InputError, match=r"ondemand.area.districts.names\[1\]: '山の手' is not a district of layer minato-districts; "
                                         r"did you mean '山手'\?"):
        resolve_area(sec, root=ROOT, default_name="x")


def test_unknown_district_is_said_in_japanese_too_for_the_towns_officer():
    sec = {**SECTION, "area": {"districts": {"layer": "minato-districts", "names": ["北浜", "山の手"]}}}
    with pytest.raises(InputError) as err:
        resolve_area(sec, root=ROOT, default_name="x")
    assert err.value.ja == "ondemand.area.districts.names[1]: 「山の手」はレイヤー minato-districts の区域にありません。「山手」ではありませんか？"


def test_area_file_that_is_not_a_polygon_says_what_to_do_in_japanese_too(tmp_path):
    (tmp_path / "a.geojson").write_text(json.dumps({"type": "Point", "coordinates": [141.4, 43.3]}))
    with pytest.raises(InputError) as err:
        build_from_section({**SECTION, "area": {"geojson": "a.geojson"}}, feed_id="od", name="x", timezone="Asia/Tokyo",
                           profile="gtfs", root=tmp_path)
    assert err.value.ja == (f"{tmp_path / 'a.geojson'}: ondemand.area.geojson: 1 番目の地物が面（Polygon / MultiPolygon）ではありません"
                            "（Point です）。区域は面（ポリゴン）で描いてください")


def test_every_input_error_of_the_ondemand_builder_has_a_japanese_text():
    import ast

    for module in ("transforms/ondemand/area.py", "transforms/ondemand/build.py"):
        tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "InputError"]
        assert calls and [n.lineno for n in calls if not any(k.arg == "ja" for k in n.keywords)] == [], module


def test_night_window_past_midnight_has_no_gtfs_guru_error(tmp_path):
    sec = {**SECTION, "hours": [{"days": "everyday", "from": "20:00", "to": "25:30"}], "holidays": "usual"}
    feed = flex(sec)
    assert {(r["start_pickup_drop_off_window"], r["end_pickup_drop_off_window"]) for r in table(feed, "stop_times.txt")} == {
        ("20:00:00", "25:30:00")}
    assert "calendar_dates.txt" not in feed.files
    assert errors_of(write_zip(feed, tmp_path / "feed.zip")) == []
