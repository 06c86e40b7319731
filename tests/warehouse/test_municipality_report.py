"""Municipality report: plots and figures of a municipality's service, and what changed since the previous version."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_spec, shared


@pytest.fixture(scope="module")
def muroran(tmp_path_factory):
    """Donan Bus (Muroran) 2017, then 2020, ingested as two versions of one feed."""
    from noriba.pipeline import run_feed
    from noriba.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("muroran") / "home").ensure()
    muni = {"name": "室蘭市", "code": "01205", "prefecture": "北海道"}
    for year in ("2017", "2020"):
        spec = make_spec("muroran-donan", shared("gtfs", "jp", f"muroran-donan-{year}"), timezone="Asia/Tokyo",
                         profile="gtfs-jp", municipality=muni, name="道南バス 室蘭市内線")
        assert run_feed(spec, ws, export=False)["status"] == "new"
    return ws


def test_change_report_lists_stops_and_trips_added_and_removed(muroran):
    from warehouse.municipality_report import change_report

    ch = change_report(muroran, "muroran-donan", country="JP")
    assert ch["before_valid"][0] == "2017-04-01" and ch["after_valid"][0] == "2020-04-01"
    added = {s["stop_id"]: s["stop_name"] for s in ch["stops_added"]}
    removed = {s["stop_id"]: s["stop_name"] for s in ch["stops_removed"]}
    # checked by hand in stops.txt of both vintages
    assert added == {"0751": "八丁平1丁目", "0751_A": "八丁平1丁目"}
    assert removed["0091_A"] == "海岸町3丁目" and removed["0002_C"] == "絵鞆2丁目" and len(removed) == 13
    renamed = {s["stop_id"]: (s["before"], s["after"]) for s in ch["stops_renamed"]}
    assert renamed["0178_A"] == ("新日鉄住金前", "日本製鉄前")
    assert "高砂小学校前" in ch["stop_names_removed"] and "室蘭フェリーターミナル" in ch["stop_names_added"]
    trips_added = {t["trip_id"]: t for t in ch["trips_added"]}
    trips_removed = {t["trip_id"]: t for t in ch["trips_removed"]}
    assert len(trips_added) == 21 and len(trips_removed) == 186
    assert trips_added["102400_weekday_1"]["route_id"] == "102400"
    assert trips_removed["100110_weekday_1"]["route_id"] == "100110"
    assert "102400" in ch["routes_added"] and "100110" in ch["routes_removed"]
    # fewer trips in 2020 on an ordinary weekday, and fewer vehicle hours
    wd = ch["days"]["weekday"]
    assert wd["trips_after"] < wd["trips_before"] and wd["vehicle_hours_after"] < wd["vehicle_hours_before"]


def test_report_page_shows_map_plots_coverage_and_changes_in_japanese(muroran, tmp_path):
    from warehouse.municipality_report import build_report

    # a population layer: one square of 1,000 people around the central stops, one far away at sea
    pop = tmp_path / "pop.geojson"
    pop.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"population": 1000},
         "geometry": {"type": "Polygon", "coordinates": [[[140.96, 42.31], [140.99, 42.31], [140.99, 42.33], [140.96, 42.33], [140.96, 42.31]]]}},
        {"type": "Feature", "properties": {"population": 500}, "geometry": {"type": "Point", "coordinates": [141.5, 42.0]}}]}), encoding="utf-8")
    r = build_report(muroran, municipality="01205", population=pop)
    page = open(r["html"], encoding="utf-8").read()
    assert r["lang"] == "ja" and "室蘭市 公共交通レポート" in page
    assert page.count("<svg") >= 3 and "<script" not in page
    assert "停留所・路線図" in page and "時間帯別の便数" in page and "前回バージョンからの変化" in page
    assert "八丁平1丁目" in page and "日本製鉄前" in page
    assert set(r["days"]) == {"weekday", "saturday", "sunday"}
    assert r["days"]["weekday"]["trips"] > r["days"]["sunday"]["trips"] > 0
    assert sum(r["days"]["weekday"]["by_hour"]) == r["days"]["weekday"]["trips"]
    c = r["coverage"]
    assert 5 < c["area_km2"] < 200
    assert c["population_total"] == 1500 and 0 < c["population_covered"] <= 1000
    saved = json.loads(open(r["json"], encoding="utf-8").read())
    assert saved["changes"][0]["stops_added"] == r["changes"][0]["stops_added"]


def test_demand_by_zone_and_transit_gaps_appear_when_trip_marts_exist(tmp_path):
    """The trips pipeline publishes marts.trips_by_zone_hour and marts.transit_gap_by_municipality; the report reads them."""
    import duckdb

    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from noriba.workspace import Workspace
    from warehouse.municipality_report import build_report

    ws = Workspace(tmp_path / "home").ensure()
    for spec in load_specs():
        if spec.id == "minato-city-bus":
            run_feed(spec, ws, export=False)
    without = build_report(ws, municipality="99001")
    assert without["trip_data"] is None and "まだ取り込まれていません" in open(without["html"], encoding="utf-8").read()
    con = duckdb.connect(str(ws.warehouse))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.trips_by_zone_hour (source_id VARCHAR, mode VARCHAR, zone_layer VARCHAR, zone_id VARCHAR, municipality VARCHAR, "
                "month VARCHAR, day_type VARCHAR, hour INTEGER, trips BIGINT, passengers BIGINT, avg_distance_km DOUBLE, avg_duration_s DOUBLE, "
                "total_amount DOUBLE, currency VARCHAR)")
    con.execute("INSERT INTO marts.trips_by_zone_hour VALUES ('taxi', 'taxi', 'district', '港地区', 'みなと市', '2026-05', 'weekday', 8, 12, 14, 2.1, 600, 9000, 'JPY'),"
                "('taxi', 'taxi', 'district', '山手地区', 'みなと市', '2026-05', 'weekday', 22, 30, 31, 3.0, 700, 20000, 'JPY'),"
                "('taxi', 'taxi', 'district', '北浜', '北浜町', '2026-05', 'weekday', 9, 99, 99, 1.0, 300, 1, 'JPY')")
    con.execute("CREATE TABLE marts.transit_gap_by_municipality (source_id VARCHAR, gtfs_feed_id VARCHAR, municipality VARCHAR, month VARCHAR, "
                "trips BIGINT, gap_trips BIGINT, far_from_stop BIGINT, outside_service_hours BIGINT, gap_share DOUBLE)")
    con.execute("INSERT INTO marts.transit_gap_by_municipality VALUES ('taxi', 'minato-city-bus', 'みなと市', '2026-05', 42, 30, 10, 25, 0.714)")
    con.close()
    r = build_report(ws, municipality="99001")
    td = r["trip_data"]
    assert [(z["zone_id"], z["trips"]) for z in td["zones"]] == [("山手地区", 30), ("港地区", 12)]  # 北浜町 is another municipality
    assert td["by_hour"][8] == 12 and td["by_hour"][22] == 30 and sum(td["by_hour"]) == 42
    assert td["transit_gaps"] == [{"month": "2026-05", "trips": 42, "gap_trips": 30, "far_from_stop": 10, "outside_service_hours": 25,
                                   "gap_share": 0.7143}]
    page = open(r["html"], encoding="utf-8").read()
    assert "山手地区" in page and "交通空白の移動" in page and "71.4%" in page


def _walk_numbers(doc, path=""):
    """Yield (path, number) of every int in a JSON document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _walk_numbers(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _walk_numbers(v, f"{path}[{i}]")
    elif isinstance(doc, int) and not isinstance(doc, bool):
        yield path, doc


def test_trip_counts_below_k_leave_the_warehouse_in_no_file(tmp_path):
    """The demo's みなと市 has an hour with fewer than k = 10 trips: no report, page or export may carry it."""
    import re

    import duckdb

    from noriba.exports import update_catalog
    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from noriba.trips_pipeline import run_all
    from noriba.workspace import Workspace
    from warehouse.municipality_report import build_report

    ws = Workspace(tmp_path / "home").ensure()
    run_feed(next(s for s in load_specs() if s.id == "minato-city-bus"), ws)
    run_all(ws, tags=("demo",))
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    small = con.sql("SELECT hour, sum(trips)::INT FROM marts.trips_by_zone_hour WHERE municipality = 'みなと市' "
                    "GROUP BY hour HAVING sum(trips) < 10").fetchall()
    con.close()
    assert small, "the demo should have an hour with fewer than 10 trips (the case this test is about)"
    r = build_report(ws, municipality="99001")
    update_catalog(ws)
    td = json.loads(open(r["json"], encoding="utf-8").read())["trip_data"]
    for h, _ in small:
        assert td["by_hour"][h] is None  # suppressed, not zero: a reader must not take it for "no trips"
    assert td["k"] == 10
    counts = [(p, n) for p, n in _walk_numbers(td) if p != ".k" and not p.startswith(".suppressed_cells")]
    assert counts and all(n >= 10 or n == 0 for p, n in counts), [x for x in counts if 0 < x[1] < 10]
    written = [p for root in (ws.exports, ws.reports) for p in root.rglob("*") if p.suffix in (".json", ".html", ".csv")]
    assert any(p.name == "index.html" and "reports" in p.parts for p in written)
    for p in written:
        text = p.read_text(encoding="utf-8-sig")
        for h, n in small:
            assert not re.search(rf"\b{h}:00 [^<]*? {n}</title>", text), p  # a bar of the pickups-per-hour chart
        if p.suffix == ".csv" and "trips" in p.parts:
            import csv

            rows = list(csv.DictReader(text.splitlines()))
            assert all(int(x["trips"]) >= 10 for x in rows if x.get("trips")), p


def test_report_warns_before_a_feeds_end_date_passes_without_a_revision(tmp_path):
    """A timetable revision (改正) is due when a feed's end date (feed_info.feed_end_date, else its last service day) is near."""
    from datetime import date

    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from noriba.workspace import Workspace
    from warehouse.municipality_report import build_report

    ws = Workspace(tmp_path / "home").ensure()
    run_feed(next(s for s in load_specs() if s.id == "minato-city-bus"), ws, export=False)  # feed_end_date 2027-03-31
    calm = build_report(ws, municipality="99001", today=date(2027, 2, 28))
    assert calm["expiry_warnings"] == [] and "改正" not in open(calm["html"], encoding="utf-8").read()
    soon = build_report(ws, municipality="99001", today=date(2027, 3, 10))
    assert soon["expiry_warnings"] == [{"feed_id": "minato-city-bus", "end_date": "2027-03-31", "days_left": 21, "validity": "expiring"}]
    page = open(soon["html"], encoding="utf-8").read()
    assert "2027-03-31" in page and "残り 21 日" in page and "改正" in page
    assert json.loads(open(soon["json"], encoding="utf-8").read())["expiry_warnings"] == soon["expiry_warnings"]
    late = build_report(ws, municipality="99001", today=date(2027, 4, 2))
    assert late["expiry_warnings"][0]["validity"] == "expired" and "期限切れ" in open(late["html"], encoding="utf-8").read()
