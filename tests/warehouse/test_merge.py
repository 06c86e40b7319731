"""Merge: colliding ids namespaced and listed, same stops unified with a crosswalk that stays stable
across versions, and real regional feeds merged with no ERROR their inputs did not have."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile

import duckdb
import pytest

from tests.conftest import ROOT, make_spec, write_feed

FEED_A = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,みなと交通,https://a.example.jp,Asia/Tokyo\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.41\nS3,市役所,43.32,141.42\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\nR1,A,1,港線,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WD,T1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                      "T1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\nT1,08:20:00,08:20:00,S3,3\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WD,1,1,1,1,1,0,0,20260401,20270331\n",
}
FEED_B = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nB,山手バス,https://b.example.jp,Asia/Tokyo\n",
    # S1 collides with A's S1 but is another stop; H1 is A's 駅前 about 7 m away, written full-width
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,山手,43.40,141.50\nH1,駅前 ,43.31005,141.41005\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\nR1,B,2,山手線,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WD,T1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,09:00:00,09:00:00,S1,1\nT1,09:30:00,09:30:00,H1,2\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WD,1,1,1,1,1,0,0,20260401,20270331\n",
}


def _spec(ids, **extra):
    from noriba.exports import parse_export_spec

    doc = {"id": "mini-region", "feeds": {"ids": ids}, "license": {"id": "CC0-1.0"}, "formats": ["gtfs"], **extra}
    return parse_export_spec(doc, where="test", root=ROOT)


def _table(zip_path, name):
    with zipfile.ZipFile(zip_path) as zf:
        return list(csv.DictReader(io.StringIO(zf.read(name).decode("utf-8"))))


def _crosswalk(path):
    with open(path, encoding="utf-8") as fh:
        return {(r["space"], r["feed_id"], r["source_id"]): r for r in csv.DictReader(fh)}


@pytest.fixture
def two_feeds(ws, tmp_path):
    from noriba.pipeline import run_feed

    run_feed(make_spec("mini-a", write_feed(tmp_path / "a", FEED_A)), ws)
    run_feed(make_spec("mini-b", write_feed(tmp_path / "b", FEED_B)), ws)
    return ws


def test_colliding_ids_are_namespaced_and_listed_in_the_manifest(two_feeds):
    from noriba.exports import build_export

    out = build_export(_spec(["mini-a", "mini-b"]), two_feeds)
    manifest = json.loads(open(out["manifest"], encoding="utf-8").read())
    stop = {c["id"]: c for c in manifest["collisions"]["stop"]}
    assert stop["S1"]["merged_ids"] == {"mini-a": "a:S1", "mini-b": "b:S1"}
    for space, ident in (("route", "R1"), ("trip", "T1"), ("service", "WD")):
        assert {c["id"] for c in manifest["collisions"][space]} == {ident}
    times = _table(out["gtfs_zip"], "stop_times.txt")
    assert [(r["trip_id"], r["stop_id"]) for r in times] == [
        ("a:T1", "a:S1"), ("a:T1", "S2"), ("a:T1", "S3"), ("b:T1", "b:S1"), ("b:T1", "S2")]
    trips = _table(out["gtfs_zip"], "trips.txt")
    assert [(t["route_id"], t["service_id"]) for t in trips] == [("a:R1", "a:WD"), ("b:R1", "b:WD")]
    assert {a["agency_id"] for a in _table(out["gtfs_zip"], "agency.txt")} == {"A", "B"}
    assert manifest["validation"]["new_errors"] == {}


def test_same_stop_in_two_feeds_is_unified_and_recorded_in_the_crosswalk(two_feeds):
    from noriba.exports import build_export

    out = build_export(_spec(["mini-a", "mini-b"]), two_feeds)
    manifest = json.loads(open(out["manifest"], encoding="utf-8").read())
    (group,) = manifest["unified_stops"]
    assert group["kept"] == {"feed_id": "mini-a", "stop_id": "S2"}
    assert [(u["feed_id"], u["stop_id"]) for u in group["unified"]] == [("mini-b", "H1")]
    assert 5 < group["unified"][0]["distance_m"] < 10
    stops = {s["stop_id"] for s in _table(out["gtfs_zip"], "stops.txt")}
    assert stops == {"a:S1", "b:S1", "S2", "S3"}
    xw = _crosswalk(out["dir"] + "/crosswalk.csv")
    assert xw[("stop", "mini-b", "H1")]["merged_id"] == "S2"
    assert manifest["rows_out"]["stops"] == manifest["rows_in"]["stops"] - 1


def test_unification_is_off_beyond_the_distance(two_feeds):
    from noriba.exports import build_export

    out = build_export(_spec(["mini-a", "mini-b"], merge={"stop_distance_m": 3}), two_feeds)
    stops = {s["stop_id"] for s in _table(out["gtfs_zip"], "stops.txt")}
    assert {"S2", "H1"} <= stops


def test_merged_ids_stay_stable_when_a_collision_goes_away_in_a_new_version(two_feeds, tmp_path):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed

    first = build_export(_spec(["mini-a", "mini-b"]), two_feeds)
    before = _crosswalk(first["dir"] + "/crosswalk.csv")
    # feed A's next version no longer has stop S1 or route R1: nothing collides with B's S1 and R1 any more
    v2 = {**FEED_A,
          "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS2,駅前,43.31,141.41\nS3,市役所,43.32,141.42\n",
          "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\nR9,A,9,駅線,3\n",
          "trips.txt": "route_id,service_id,trip_id\nR9,WD,T1\n",
          "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                            "T1,08:10:00,08:10:00,S2,1\nT1,08:20:00,08:20:00,S3,2\n"}
    res = run_feed(make_spec("mini-a", write_feed(tmp_path / "a2", v2)), two_feeds)
    assert res["status"] == "new"
    second = build_export(_spec(["mini-a", "mini-b"]), two_feeds)
    assert second["export_version"] != first["export_version"]
    after = _crosswalk(second["dir"] + "/crosswalk.csv")
    for key in [("stop", "mini-b", "S1"), ("route", "mini-b", "R1"), ("stop", "mini-b", "H1"), ("stop", "mini-a", "S2"),
                ("trip", "mini-a", "T1"), ("trip", "mini-b", "T1")]:
        assert after[key]["merged_id"] == before[key]["merged_id"], key
    assert after[("stop", "mini-b", "S1")]["reason"].startswith("kept from previous build")
    assert ("route", "mini-a", "R9") in after and after[("route", "mini-a", "R9")]["merged_id"] == "R9"
    manifest = json.loads(open(second["manifest"], encoding="utf-8").read())
    assert "stop" not in manifest["collisions"] or "S1" not in {c["id"] for c in manifest["collisions"]["stop"]}


def test_rebuild_without_changes_does_nothing(two_feeds):
    from noriba.exports import build_export

    first = build_export(_spec(["mini-a", "mini-b"]), two_feeds)
    again = build_export(_spec(["mini-a", "mini-b"]), two_feeds)
    assert again["status"] == "unchanged" and again["export_version"] == first["export_version"]


def _feed_b_with_shape(stops: str, shapes: str, stop_times: str) -> dict:
    """Return feed B with trip T1 following shape SH1 (the stop 駅前 is H1, within 30 m of feed A's 駅前 S2)."""
    return {**FEED_B, "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n" + stops,
            "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n" + shapes,
            "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,WD,T1,SH1\n",
            "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n" + stop_times}


def _merge_a_and(ws, tmp_path, feed_b):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed

    run_feed(make_spec("mini-a", write_feed(tmp_path / "a", FEED_A)), ws)
    run_feed(make_spec("mini-b", write_feed(tmp_path / "b", feed_b)), ws)
    out = build_export(_spec(["mini-a", "mini-b"]), ws)
    return out, json.loads(open(out["manifest"], encoding="utf-8").read())


# T1 ends at H1, 5 m past the shape's end (835 > 830 along it); H1 is 4 m from that end, A's S2 is 20 m from it
ENDS_PAST_SHAPE = dict(stops="S1,山手,43.31,141.40\nH1,駅前,43.31,141.4102\n",
                       shapes="SH1,43.31,141.40,1,0\nSH1,43.31,141.41025,2,830\n",
                       stop_times="T1,09:00:00,09:00:00,S1,1,0\nT1,09:30:00,09:30:00,H1,2,835\n")


def test_stop_is_not_unified_when_moving_it_would_push_a_trip_end_past_the_shape_tolerance(ws, tmp_path):
    out, manifest = _merge_a_and(ws, tmp_path, _feed_b_with_shape(**ENDS_PAST_SHAPE))
    assert manifest["unified_stops"] == []
    (pair,) = manifest["stops_not_unified"]
    assert pair["check"] == "trip_distance_exceeds_shape_distance"
    assert pair["stops"] == [{"feed_id": "mini-a", "stop_id": "S2"}, {"feed_id": "mini-b", "stop_id": "H1"}]
    (h,) = pair["shapes"]
    assert (h["shape_id"], h["trips"], h["trip_id"]) == ("SH1", 1, "T1")
    assert 3 < h["m_as_received"] < 5 and 19 < h["m_if_unified"] < 22 and h["tolerance_m"] == 11.1
    assert "mini-b H1" in pair["reason"] and "would become an ERROR" in pair["reason"]
    stops = {s["stop_id"] for s in _table(out["gtfs_zip"], "stops.txt")}
    assert {"S2", "H1"} <= stops
    assert _crosswalk(out["dir"] + "/crosswalk.csv")[("stop", "mini-b", "H1")]["merged_id"] == "H1"
    assert manifest["validation"]["new_errors"] == {}
    assert "trip_distance_exceeds_shape_distance" not in manifest["validation"]["found"]


def test_stop_is_still_unified_when_the_trip_ends_within_its_shape(ws, tmp_path):
    within = {**ENDS_PAST_SHAPE, "stop_times": ENDS_PAST_SHAPE["stop_times"].replace(",835\n", ",830\n")}
    out, manifest = _merge_a_and(ws, tmp_path, _feed_b_with_shape(**within))
    (group,) = manifest["unified_stops"]
    assert [(u["feed_id"], u["stop_id"]) for u in group["unified"]] == [("mini-b", "H1")]
    assert manifest["stops_not_unified"] == []
    assert manifest["validation"]["new_errors"] == {}


def test_stop_is_not_unified_when_moving_it_would_put_it_too_far_from_a_shape(ws, tmp_path):
    # SH1 runs east along 43.3090: H1 is 88 m north of it, A's S2 (22 m further north) would be 111 m
    far = _feed_b_with_shape(stops="S1,山手,43.3090,141.40\nH1,駅前,43.3098,141.41\n",
                             shapes="SH1,43.3090,141.40,1,\nSH1,43.3090,141.42,2,\n",
                             stop_times="T1,09:00:00,09:00:00,S1,1,\nT1,09:30:00,09:30:00,H1,2,\n")
    out, manifest = _merge_a_and(ws, tmp_path, far)
    assert manifest["unified_stops"] == []
    (pair,) = manifest["stops_not_unified"]
    assert pair["check"] == "stop_too_far_from_shape"
    (h,) = pair["shapes"]
    assert h["shape_id"] == "SH1" and h["m_as_received"] <= 100 < h["m_if_unified"]
    assert "stop_too_far_from_shape" not in manifest["validation"]["found"]


def _check_merged(ws, result, *, feeds: int):
    manifest = json.loads(open(result["manifest"], encoding="utf-8").read())
    assert len(manifest["inputs"]) == feeds
    assert manifest["validation"]["new_errors"] == {}, manifest["validation"]
    assert manifest["collisions"], "the inputs share ids; the collisions must be listed"
    for space, listed in manifest["collisions"].items():
        for c in listed:
            assert len(c["feeds"]) >= 2 and len(set(c["merged_ids"].values())) == len(c["feeds"]), (space, c)
    zip_path = result["dir"] + "/" + manifest["files"]["gtfs"]["path"]
    con = duckdb.connect()
    with zipfile.ZipFile(zip_path) as zf, tempfile.TemporaryDirectory() as tmp:
        for name in ("stops", "stop_times", "trips", "routes"):
            p = f"{tmp}/{name}.txt"
            open(p, "wb").write(zf.read(f"{name}.txt"))
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{p}', all_varchar=true, header=true, quote='\"', "
                        f"escape='\"', delim=',')")
    assert con.sql("SELECT count(*) - count(DISTINCT stop_id) FROM stops").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) - count(DISTINCT trip_id) FROM trips").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM stop_times WHERE stop_id NOT IN (SELECT stop_id FROM stops)").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM trips WHERE route_id NOT IN (SELECT route_id FROM routes)").fetchall()[0][0] == 0
    unified = sum(len(g["unified"]) for g in manifest["unified_stops"])
    assert manifest["rows_out"]["stops"] == manifest["rows_in"]["stops"] - unified
    for t in ("stop_times", "trips", "routes", "calendar", "calendar_dates", "fare_attributes", "fare_rules", "shapes"):
        assert manifest["rows_out"].get(t) == manifest["rows_in"].get(t), t
    return manifest


def test_bay_area_29_feeds_merge_without_new_errors(sfbay_export):
    ws, result = sfbay_export
    manifest = _check_merged(ws, result, feeds=29)
    assert manifest["collision_counts"]["stop"] > 0
    # BART and Caltrain are separate agencies in the merged agency.txt, each with its id
    assert {"sfbay-ba", "sfbay-ct"} <= {i["feed_id"] for i in manifest["inputs"]}
    assert manifest["left_out"]["unknown_files"], "511's extra files are listed as left out, not dropped silently"
    # every same-name pair that unifying would have pushed past a shape check is listed, with both distances
    for pair in manifest["stops_not_unified"]:
        for h in pair.get("shapes", []):
            assert h["m_as_received"] <= h["tolerance_m"] < h["m_if_unified"], pair


def test_gunma_corpus_feeds_merge_into_one_gtfs_jp_without_new_errors(gunma_export):
    ws, result = gunma_export
    manifest = _check_merged(ws, result, feeds=27)
    assert all(i["feed_id"].startswith("gunma-10") for i in manifest["inputs"])
    names = {r["agency_name"] for r in _table(result["dir"] + "/" + manifest["files"]["gtfs"]["path"], "agency.txt")}
    assert "関越交通株式会社" in names or any("関越交通" in n for n in names)


def test_agency_time_zones_with_the_same_clock_become_one():
    from datetime import date

    from warehouse.merge import same_clock

    # SolTrans' America/Vancouver and the other 511 agencies' America/Los_Angeles
    assert same_clock(["America/Los_Angeles", "America/Vancouver"], date(2018, 1, 1), date(2019, 12, 31))
    assert not same_clock(["America/Los_Angeles", "America/Phoenix"], date(2018, 1, 1), date(2018, 12, 31))  # no DST in Arizona
    assert not same_clock(["Asia/Tokyo", "Asia/Seoul"], date(1987, 1, 1), date(1988, 12, 31))  # Korea had DST in 1987-88


def test_merge_rewrites_an_equivalent_agency_time_zone_and_says_so(ws, tmp_path):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed

    b = {**FEED_B, "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nB,山手バス,https://b.example.jp,Asia/Tokyo\n"}
    a = {**FEED_A, "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,みなと交通,https://a.example.jp,Japan\n"}
    run_feed(make_spec("mini-a", write_feed(tmp_path / "a", a)), ws)
    run_feed(make_spec("mini-b", write_feed(tmp_path / "b", b)), ws)
    out = build_export(_spec(["mini-a", "mini-b"]), ws)
    zones = {r["agency_id"]: r["agency_timezone"] for r in _table(out["gtfs_zip"], "agency.txt")}
    assert len(set(zones.values())) == 1
    manifest = json.loads(open(out["manifest"], encoding="utf-8").read())
    (change,) = [f for f in manifest["filled"] if f["field"] == "agency_timezone"]
    assert {change["was"], change["value"]} == {"Japan", "Asia/Tokyo"}
    assert manifest["problems"] == []


def _jp(feed: dict, *, routes_jp: str | None = None) -> dict:
    """Return ``feed`` as a GTFS-JP feed (agency_jp, and routes_jp if given)."""
    aid = feed["agency.txt"].splitlines()[1].split(",")[0]
    out = {**feed, "agency_jp.txt": f"agency_id,agency_official_name\n{aid},{aid} 交通株式会社\n"}
    if routes_jp:
        out["routes_jp.txt"] = routes_jp
    return out


def _build(ws, tmp_path, feeds: dict[str, dict], *, profile: str = "gtfs"):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed

    for fid, files in feeds.items():
        run_feed(make_spec(fid, write_feed(tmp_path / fid, files), profile=profile), ws)
    out = build_export(_spec(list(feeds)), ws)
    return out, json.loads(open(out["manifest"], encoding="utf-8").read())


def test_merge_fills_timepoint_of_a_feed_without_the_column_as_exact_and_adds_no_warning(ws, tmp_path):
    a = {**FEED_A, "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint\n"
                                     "T1,08:00:00,08:00:00,S1,1,1\nT1,,,S2,2,0\nT1,08:20:00,08:20:00,S3,3,1\n"}
    b = {**FEED_B, "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                                     "T1,09:00:00,09:00:00,S1,1\nT1,,,H1,2\nT1,09:40:00,09:40:00,S9,3\n",
         "stops.txt": FEED_B["stops.txt"] + "S9,終点,43.41,141.52\n"}
    out, manifest = _build(ws, tmp_path, {"mini-a": a, "mini-b": b})
    times = {(r["trip_id"], r["stop_sequence"]): r["timepoint"] for r in _table(out["gtfs_zip"], "stop_times.txt")}
    # GTFS: timepoint empty with times = exact (1); B gave no times at its middle stop, so that one is approximate (0)
    assert times == {("a:T1", "1"): "1", ("a:T1", "2"): "0", ("a:T1", "3"): "1",
                     ("b:T1", "1"): "1", ("b:T1", "2"): "0", ("b:T1", "3"): "1"}
    assert "missing_timepoint_value" not in manifest["validation"]["found"]
    filled = [f for f in manifest["filled"] if f["field"] == "timepoint"]
    assert filled == [{"feed_id": "mini-b", "file": "stop_times.txt", "field": "timepoint", "rows": 3,
                       "value": "1 where the stop time has times, else 0",
                       "why": "mini-b has no timepoint column; in GTFS an empty timepoint means exact times where times are given"}]


def test_merge_keeps_a_routes_jp_row_for_every_route_of_gtfs_jp_inputs(ws, tmp_path):
    a = _jp(FEED_A, routes_jp="route_id,route_update_date,origin_stop,destination_stop\nR1,20260401,港前,市役所\n")
    b = _jp(FEED_B)  # GTFS-JP without routes_jp.txt (the file is optional)
    out, manifest = _build(ws, tmp_path, {"mini-a": a, "mini-b": b}, profile="gtfs-jp")
    rows = {r["route_id"]: r for r in _table(out["gtfs_zip"], "routes_jp.txt")}
    assert set(rows) == {"a:R1", "b:R1"}
    assert rows["a:R1"]["origin_stop"] == "港前" and rows["b:R1"]["origin_stop"] == ""
    assert "route_missing_in_routes_jp" not in manifest["validation"]["found"]
    assert {"feed_id": "mini-b", "file": "routes_jp.txt", "field": "route_id", "rows": 1,
            "value": "one row per route, other fields empty",
            "why": "mini-b has no routes_jp.txt; GTFS-JP wants a routes_jp row for every route"} in manifest["filled"]


def test_merge_gives_a_plain_gtfs_input_the_gtfs_jp_rows_its_routes_and_agency_need(ws, tmp_path):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed

    a = _jp(FEED_A, routes_jp="route_id,route_update_date,origin_stop,destination_stop\nR1,20260401,港前,市役所\n")
    run_feed(make_spec("mini-a", write_feed(tmp_path / "a", a), profile="gtfs-jp"), ws)
    run_feed(make_spec("mini-b", write_feed(tmp_path / "b", FEED_B)), ws)  # plain GTFS: no agency_jp.txt, no routes_jp.txt
    out = build_export(_spec(["mini-a", "mini-b"]), ws)
    manifest = json.loads(open(out["manifest"], encoding="utf-8").read())
    assert {r["agency_id"] for r in _table(out["gtfs_zip"], "agency_jp.txt")} == {"A", "B"}
    assert {r["route_id"] for r in _table(out["gtfs_zip"], "routes_jp.txt")} == {"a:R1", "b:R1"}
    found = manifest["validation"]["found"]
    assert "agency_missing_in_agency_jp" not in found and "route_missing_in_routes_jp" not in found
    assert {(f["feed_id"], f["file"], f["rows"]) for f in manifest["filled"] if f["file"].endswith("_jp.txt")} == {
        ("mini-b", "agency_jp.txt", 1), ("mini-b", "routes_jp.txt", 1)}


def test_merge_of_feeds_whose_service_periods_do_not_overlap_warns_naming_feeds_and_periods(ws, tmp_path):
    later = FEED_B["calendar.txt"].replace("20260401,20270331", "20270401,20280331")
    out, manifest = _build(ws, tmp_path, {"mini-a": FEED_A, "mini-b": {**FEED_B, "calendar.txt": later}})
    p = [p for p in manifest["problems"] if p["code"] == "service_periods_do_not_overlap"]
    assert len(p) == 1
    assert p[0]["feeds"] == [{"feed_id": "mini-a", "start": "2026-04-01", "end": "2027-03-31"},
                             {"feed_id": "mini-b", "start": "2027-04-01", "end": "2028-03-31"}]
    assert "mini-a (2026-04-01 – 2027-03-31)" in p[0]["message"] and "mini-b (2027-04-01 – 2028-03-31)" in p[0]["message"]
    assert out["problems"] == manifest["problems"]
    page = open(f"{two_feeds_site(ws)}/exports/mini-region.html", encoding="utf-8").read()
    assert p[0]["message"] in page.replace("&amp;", "&")


def test_merge_of_feeds_with_overlapping_service_periods_gives_no_period_warning_and_no_new_warning(two_feeds):
    from noriba.exports import build_export

    spec = _spec(["mini-a", "mini-b"], publisher={"email": "data@example.jp"})  # the merged feed_info's contact
    manifest = json.loads(open(build_export(spec, two_feeds)["manifest"], encoding="utf-8").read())
    assert not [p for p in manifest["problems"] if p["code"] == "service_periods_do_not_overlap"]
    assert manifest["validation"]["new_warnings"] == {} and manifest["validation"]["status"] == "no new errors or warnings"


def test_a_merge_without_a_contact_lists_the_warning_it_creates_on_the_export_page(two_feeds):
    from noriba.exports import build_export

    out = build_export(_spec(["mini-a", "mini-b"]), two_feeds)
    manifest = json.loads(open(out["manifest"], encoding="utf-8").read())
    assert manifest["validation"]["new_warnings"] == {"missing_feed_contact_email_and_url": {"count": 1, "inputs": 0}}
    assert manifest["validation"]["status"] == "new warnings" and out["new_warnings"] == manifest["validation"]["new_warnings"]
    page = open(f"{two_feeds_site(two_feeds)}/exports/mini-region.html", encoding="utf-8").read()
    assert "新たな警告 <span class=\"en\">new warnings</span> missing_feed_contact_email_and_url 1 (入力 inputs 0)" in page
    assert '<span class="warn">+1</span>' in page  # the row of the code in the validation table says it is new


def two_feeds_site(ws) -> str:
    return str(ws.exports / "site")


def test_validating_a_merged_zip_keeps_its_tables_and_spill_in_its_own_folder(tmp_path, monkeypatch):
    """Two exports validating at once must not share (and delete) one spill folder, and nothing goes outside the
    folder given (the export's own folder in the workspace)."""
    from transforms.rules import engine
    from warehouse import merge as mg

    zp = tmp_path / "a.zip"
    with zipfile.ZipFile(zp, "w") as z:
        for name, text in FEED_A.items():
            z.writestr(name, text)
    work, system_tmp = tmp_path / "export-work", tmp_path / "system-tmp"
    work.mkdir()
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    spills: list = []
    bound = engine._bound_memory
    monkeypatch.setattr(engine, "_bound_memory", lambda con, spill: spills.append(spill) or bound(con, spill))
    found = mg.validate_zip(zp, work_dir=work)
    found_again = mg.validate_zip(zp)  # no folder given: a new one of the system's temporary folder
    assert found == found_again and "stop_time_with_arrival_before_previous_departure_time" not in found
    assert len(spills) == 2 and spills[0].parent.parent == work and spills[1].parent.parent == system_tmp
    assert spills[0].name == spills[1].name == "_rules_spill" and spills[0].parent != spills[1].parent
    assert list(work.iterdir()) == [] and list(system_tmp.iterdir()) == []  # each call's folder removed
