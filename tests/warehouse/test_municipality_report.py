"""Municipality report: plots and figures of a municipality's service, and what changed since the previous version."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import make_spec, shared


@pytest.fixture(scope="module")
def muroran(tmp_path_factory):
    """Donan Bus (Muroran) 2017, then 2020, ingested as two versions of one feed."""
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

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
    assert page.count("<svg") >= 3
    # the page's only scripts are its map data and the two files copied beside it: nothing from elsewhere
    assert re.findall(r'<script src="([^"]+)"', page) == ["leaflet/leaflet.js", "report-map.js"]
    assert all((Path(r["html"]).parent / f).is_file() for f in ("leaflet/leaflet.js", "leaflet/leaflet.css", "report-map.js"))
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
    from warehouse.workspace import Workspace
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
    from warehouse.workspace import Workspace
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
    from warehouse.workspace import Workspace
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


# ---------------------------------------------------------------------------------------------
# The map, the hourly axis, zone names and counts (issue 19, point 17)

HOSTILE_STOP = '</script><script>document.title="pwned"</script><b>停'


def many_routes_feed(folder, *, routes: int = 12, last_departure: str = "20:15:00", last_arrival: str = "20:45:00"):
    """Return an authored GTFS folder: ``routes`` routes with long names, two stops each, weekday trips 07:00 to ``last_arrival``.

    Route 1's last trip leaves at ``last_departure`` and arrives at ``last_arrival``; one stop has a hostile name.
    """
    from tests.conftest import write_feed

    stops, route_rows, trips, times = [], [], [], []
    for n in range(1, routes + 1):
        rid = f"R{n:02d}"
        route_rows.append(f"{rid},A,,港湾地区循環線 第{n}系統（市民病院・市役所・みなと中央駅前経由）,3,")
        for k in (1, 2):
            name = HOSTILE_STOP if (n, k) == (1, 2) else f"停留所{n}-{k}"
            stops.append(f"S{n:02d}{k},{name},{43.30 + n * 0.004:.4f},{141.40 + k * 0.01 + n * 0.002:.4f}")
        for h in (7, 12, 17):
            trips.append(f"{rid},WD,{rid}_{h}")
            times.append(f"{rid}_{h},{h:02d}:00:00,{h:02d}:00:00,S{n:02d}1,1\n{rid}_{h},{h:02d}:20:00,{h:02d}:20:00,S{n:02d}2,2")
    trips.append("R01,WD,R01_last")
    times.append(f"R01_last,{last_departure},{last_departure},S011,1\nR01_last,{last_arrival},{last_arrival},S012,2")
    return write_feed(folder, {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,みなと交通,https://example.jp,Asia/Tokyo\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n" + "\n".join(stops) + "\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type,route_color\n" + "\n".join(route_rows) + "\n",
        "trips.txt": "route_id,service_id,trip_id\n" + "\n".join(trips) + "\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "\n".join(times) + "\n",
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                        "WD,1,1,1,1,1,0,0,20260401,20270331\n",
    })


def _report_of(tmp_path, **feed):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace
    from warehouse.municipality_report import build_report

    ws = Workspace(tmp_path / "home").ensure()
    spec = make_spec("port-loop", many_routes_feed(tmp_path / "feed", **feed), timezone="Asia/Tokyo", profile="gtfs-jp",
                     municipality={"name": "みなと市", "code": "99001", "prefecture": "北海道"}, name="みなと交通")
    run_feed(spec, ws, export=False)
    r = build_report(ws, municipality="99001", today=date(2026, 6, 1))
    return r, open(r["html"], encoding="utf-8").read()


def _hour_labels(svg: str) -> list[int]:
    return [int(x) for x in re.findall(r'<text class="hour"[^>]*>(\d+)</text>', svg)]


def test_hourly_axis_ends_at_the_last_service_hour_not_at_26(tmp_path):
    r, page = _report_of(tmp_path)  # service ends 20:45, the last trip leaves 20:15
    wd = r["days"]["weekday"]
    assert wd["last"] == "20:45" and len(wd["by_hour"]) == 24 and wd["by_hour"][20] == 1
    chart = page.split("時間帯別の便数（出発時刻）</h2>")[1].split("</svg>")[0]
    labels = _hour_labels(chart)
    assert labels[0] == 7 and labels[-1] == 20, labels
    assert not re.search(r">2[1-7]</text>", chart)


def test_hourly_axis_keeps_after_midnight_service(tmp_path):
    r, page = _report_of(tmp_path, last_departure="25:10:00", last_arrival="25:40:00")
    wd = r["days"]["weekday"]
    assert wd["last"] == "25:40" and len(wd["by_hour"]) == 26 and wd["by_hour"][25] == 1
    assert _hour_labels(page.split("時間帯別の便数（出発時刻）</h2>")[1].split("</svg>")[0])[-1] == 25


def test_hour_axis_spans_first_to_last_hour_with_trips_or_a_suppressed_count():
    from warehouse.municipality_report import hour_axis

    assert hour_axis([[0] * 6 + [3] * 15 + [0] * 7]) == range(6, 21)
    assert hour_axis([[0] * 24, [0] * 7 + [1] + [0] * 17 + [2]]) == range(7, 26)
    assert hour_axis([[0, 0, None, 4] + [0] * 20]) == range(2, 4)  # a suppressed hour is not "no trips"
    assert hour_axis([[0] * 24]) == range(24)


def test_legend_lists_every_route_once_with_its_whole_name(tmp_path):
    r, page = _report_of(tmp_path, routes=13)
    legend = page.split('<ul class="legend"')[1].split("</ul>")[0]
    names = re.findall(r'<span class="rn">([^<]*)</span>', legend)
    assert names == [f"港湾地区循環線 第{n}系統（市民病院・市役所・みなと中央駅前経由）" for n in range(1, 14)]
    assert len(set(re.findall(r'data-route="(\d+)"', legend))) == 13
    # the SVG map (no script, print) draws each route once per line and no legend of its own that could clip names
    svg = page.split('<div id="svgmap">')[1].split("</svg>")[0]
    assert sorted({int(i) for i in re.findall(r'<polyline data-route="(\d+)"', svg)}) == list(range(13))
    assert "港湾地区循環線 第13系統（市民病院・市役所・みなと中央駅前経由）" in svg  # its tooltip, whole


def test_map_data_carries_stop_names_safely_and_the_page_references_no_other_site(tmp_path):
    from warehouse.municipality_report import OSM_TILES

    r, page = _report_of(tmp_path)
    assert page.count("</script>") == 3  # map data, leaflet.js, report-map.js: the hostile stop name closes none
    data = json.loads(page.split('<script type="application/json" id="map-data">')[1].split("</script>")[0])
    assert HOSTILE_STOP in [s[2] for s in data["stops"]] and len(data["stops"]) == 24
    assert len(data["routes"]) == 12 and all(len(ln) >= 2 for rt in data["routes"] for ln in rt["lines"])
    (s, w), (n, e) = data["bounds"]
    assert 43.30 < s < n < 43.36 and 141.40 < w < e < 141.45
    folder = Path(r["html"]).parent
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "index.html", "leaflet/LICENSE", "leaflet/VENDORED.md", "leaflet/images/layers-2x.png", "leaflet/images/layers.png",
        "leaflet/images/marker-icon-2x.png", "leaflet/images/marker-icon.png", "leaflet/images/marker-shadow.png",
        "leaflet/leaflet.css", "leaflet/leaflet.js", "report-map.js", "report.json"]
    # every link and source is relative; the only http(s) addresses are the tile template (loaded when served and online),
    # the OpenStreetMap copyright page its attribution must link to, and the SVG namespace name (never fetched)
    for text in (page, (folder / "report-map.js").read_text(encoding="utf-8")):
        urls = set(re.findall(r"https?://[^\s\"'<>)\\]+", text)) - {"http://www.w3.org/2000/svg"}
        assert urls <= {OSM_TILES, "https://www.openstreetmap.org/copyright"}, urls
    assert OSM_TILES in page
    assert all(not re.match(r"(https?:)?//", u) for u in re.findall(r'(?:src|href)="([^"]+)"', page))


def test_demand_zones_are_named_from_the_layer_and_pickups_are_whole_numbers_in_japanese(tmp_path):
    """The demo's district layer names its zones (D01 is 温泉・漁港); pickups are counted in 件 without ".0"; modes in Japanese."""
    import duckdb

    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from noriba.trips_pipeline import run_all
    from warehouse.workspace import Workspace
    from warehouse.municipality_report import build_report

    ws = Workspace(tmp_path / "home").ensure()
    run_feed(next(s for s in load_specs() if s.id == "minato-city-bus"), ws, export=False)
    run_all(ws, tags=("demo",), export=False)
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    layer = dict(con.sql("SELECT zone_id, zone_name FROM trips.zones WHERE zone_layer = 'minato-districts'").fetchall())
    con.close()
    assert layer["D01"] == "温泉・漁港"
    r = build_report(ws, municipality="99001")
    zones = r["trip_data"]["zones"]
    assert zones and all(z["zone_name"] == layer[z["zone_id"]] for z in zones if z["zone_id"] in layer)
    page = open(r["html"], encoding="utf-8").read()
    bars = page.split("乗車の多いゾーン</h3>")[1].split("</svg>")[0]
    shown = re.findall(r'<text x="150"[^>]*>([^<]*)</text>', bars)
    assert shown and not [x for x in shown if re.fullmatch(r"D\d+", x)], shown
    assert {z["zone_name"] for z in zones if z.get("zone_name")} <= set(shown)
    counts = re.findall(r'<text x="[\d.]+" y="[\d.]+" font-size="12">([\d,.]+) ([^<]*)</text>', bars)
    assert counts and all("." not in n and unit == "件" for n, unit in counts), counts
    assert f"{zones[0]['trips']:,} 件" in bars
    hours = page.split("時間帯別の乗車数</h3>")[1].split("</svg>")[0]
    assert "タクシー" in hours and "デマンド交通" in hours and "全日" in hours
    assert not re.search(r"\b(taxi|on_demand)\b", hours) and "平日" not in hours


# ---------------------------------------------------------------------------------------------
# Punctuality (issue 15): the demo's simulated realtime morning, as `noriba demo` builds it


@pytest.fixture(scope="module")
def demo_rt(tmp_path_factory):
    from tests.warehouse.test_tides import demo_realtime_workspace

    return demo_realtime_workspace(tmp_path_factory.mktemp("punctuality") / "home")


def _otp(ws, group: str):
    import duckdb

    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        return con.execute(f"SELECT {group}, sum(observed)::BIGINT, sum(on_time)::BIGINT, sum(early)::BIGINT, sum(late)::BIGINT "
                           f"FROM marts.rt_on_time_performance WHERE feed_id = 'minato-bus-rt' AND observed > 0 GROUP BY ALL ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_punctuality_section_shows_the_marts_on_time_share_by_route_and_hour(demo_rt):
    from warehouse.municipality_report import build_report

    r = build_report(demo_rt, municipality="99001")
    p = r["punctuality"]
    (observed, on_time, early, late), = [x[1:] for x in _otp(demo_rt, "'all'")]
    assert (p["observed"], p["on_time"], p["early"], p["late"]) == (observed, on_time, early, late) and observed > 20
    assert p["on_time_share"] == round(on_time / observed, 4)
    assert [(h["hour"], h["observed"], h["on_time"], h["early"], h["late"]) for h in p["by_hour"]] == _otp(demo_rt, "hour")
    assert [(x["route_id"], x["observed"], x["on_time"], x["early"], x["late"]) for x in p["by_route"]] == _otp(demo_rt, "route_id")
    assert [(x["route_id"], x["hour"], x["observed"], x["on_time"]) for x in p["by_route_hour"]] == [
        x[:4] for x in _otp(demo_rt, "route_id, hour")]
    assert (p["early_s"], p["late_s"]) == (60, 300) and p["dates"]["first"] == "2026-06-01"
    assert p["by_route"][0]["route_name"] == "１ 市街地線（みなと駅～山手第Ⅱ団地）"  # the timetable's name, not R1
    page = open(r["html"], encoding="utf-8").read()
    assert "<h2>定時運行率（リアルタイムデータ）</h2>" in page
    assert "定時：予定時刻の1分前から5分後までに停留所に到着した便の割合です" in page
    assert f"<b id='on-time-share'>{on_time / observed * 100:.1f}%</b>" in page
    assert 'id="punctuality-hours"' in page and "路線・時間帯別の定時運行率" in page
    assert json.loads(open(r["json"], encoding="utf-8").read())["punctuality"]["on_time"] == on_time


def test_punctuality_section_is_in_english_for_an_english_report_and_follows_the_marts_window(demo_rt):
    from warehouse.municipality_report import build_report
    from warehouse.rt_marts import build_feed_marts

    page = open(build_report(demo_rt, municipality="99001", lang="en")["html"], encoding="utf-8").read()
    assert "<h2>On-time performance (realtime data)</h2>" in page
    assert "On time: arriving at a stop from 1 min early to 5 min late" in page
    build_feed_marts(demo_rt, "minato-bus-rt", early_s=120, late_s=90)  # a spec's own window
    try:
        r = build_report(demo_rt, municipality="99001")
        assert (r["punctuality"]["early_s"], r["punctuality"]["late_s"]) == (120, 90)
        assert "予定時刻の2分前から90秒後まで" in open(r["html"], encoding="utf-8").read()
    finally:
        build_feed_marts(demo_rt, "minato-bus-rt")


def test_a_report_without_realtime_data_has_no_punctuality_section(muroran):
    from warehouse.municipality_report import build_report

    r = build_report(muroran, municipality="01205")
    assert r["punctuality"] is None and "定時運行率" not in open(r["html"], encoding="utf-8").read()


def _timetable(freq_rows: list[tuple], plain: list[tuple], *, day: date):
    """Return a Version whose tables hold one all-week service on ``day``: trips of frequencies.txt (trip_id, span of its
    stop times in seconds from its first stop, start, end, headway) and plain trips (trip_id, first departure, last arrival)."""
    import duckdb

    from warehouse.municipality_report import Version

    con = duckdb.connect()
    con.execute("CREATE TABLE calendar AS SELECT 's' AS service_id, 1 AS monday, 1 AS tuesday, 1 AS wednesday, 1 AS thursday, "
                f"1 AS friday, 1 AS saturday, 1 AS sunday, DATE '{day}' AS start_date, DATE '{day}' AS end_date")
    con.execute("CREATE TABLE calendar_dates (service_id VARCHAR, date DATE, exception_type INTEGER)")
    con.execute("CREATE TABLE trips (trip_id VARCHAR, service_id VARCHAR)")
    con.execute("CREATE TABLE stop_times (trip_id VARCHAR, arrival_time INTEGER, departure_time INTEGER)")
    con.execute("CREATE TABLE frequencies (trip_id VARCHAR, start_time INTEGER, end_time INTEGER, headway_secs INTEGER)")
    for trip, span, *_ in freq_rows:
        con.execute("INSERT INTO trips VALUES (?, 's')", [trip])
        con.execute("INSERT INTO stop_times VALUES (?, 0, 0), (?, ?, ?)", [trip, trip, span, span])
    if freq_rows:
        con.executemany("INSERT INTO frequencies VALUES (?, ?, ?, ?)", [[t, s, e, h] for t, _, s, e, h in freq_rows])
    for trip, dep, arr in plain:
        con.execute("INSERT INTO trips VALUES (?, 's')", [trip])
        con.execute("INSERT INTO stop_times VALUES (?, ?, ?), (?, ?, ?)", [trip, dep, dep, trip, arr, arr])
    return Version("f", "v", {}, con)


def test_day_stats_count_each_departure_of_a_frequency_trip_as_listing_them_would():
    """Trips, vehicle hours, first/last and trips per hour equal those of every departure listed one by one (the old way),
    on random frequencies.txt rows and plain trips."""
    import random
    from collections import Counter

    from warehouse.municipality_report import _hms, day_stats

    rnd = random.Random(7)
    day = date(2024, 5, 1)
    for case in range(25):
        freq, plain, runs = [], [], []
        for k in range(rnd.randint(0, 6)):
            start = rnd.randint(0, 30 * 3600)
            end, hw, span = start + rnd.randint(1, 8 * 3600), rnd.choice([1, 7, 59, 600, 3599, 3600, 5400]), rnd.randint(0, 7200)
            freq.append((f"q{k}", span, start, end, hw))
            runs += [(g, g + span) for g in range(start, end, hw)]
        for k in range(rnd.randint(0, 6)):
            dep = rnd.randint(0, 27 * 3600)
            plain.append((f"p{k}", dep, dep + rnd.randint(0, 5000)))
            runs.append(plain[-1][1:])
        got = day_stats(_timetable(freq, plain, day=day), day)
        hours = Counter(d // 3600 for d, _ in runs)
        want = {"date": day.isoformat(), "trips": len(runs), "vehicle_hours": round(sum(a - d for d, a in runs) / 3600, 1),
                "first": _hms(min(d for d, _ in runs)) if runs else None, "last": _hms(max(a for _, a in runs)) if runs else None,
                "by_hour": [hours.get(h, 0) for h in range(max([23, *hours]) + 1)]}
        assert got == want, case


def test_day_stats_of_one_second_headways_over_two_days_are_counted_not_listed():
    """A hostile frequencies.txt (100 rows of a 1-second headway over 48 hours: 17.3M departures) gives its totals at
    once: they are counted, not listed (listing them took 2.6 s and ~0.5 GB for 20 such rows, linear in the rows)."""
    import time

    from warehouse.municipality_report import day_stats

    day = date(2024, 5, 1)
    v = _timetable([(f"q{k}", 60, 0, 48 * 3600, 1) for k in range(100)], [], day=day)
    t0 = time.perf_counter()
    got = day_stats(v, day)
    assert time.perf_counter() - t0 < 5
    assert got["trips"] == 100 * 48 * 3600 and sum(got["by_hour"]) == got["trips"]
    assert got["by_hour"] == [100 * 3600] * 48 and got["first"] == "00:00" and got["last"] == "48:00"
