"""GTFS-Flex through the warehouse: the shared Flex feeds ingest, export (zip and GeoParquet) and ingest again to the
same tables; merged with a fixed-route feed they validate with no error their inputs did not have; extracts keep zones."""

import json
import zipfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import box

from tests.conftest import ROOT, make_spec, shared, write_feed
from tests.transforms.rules.test_flex import square, zones

FLEX = "gtfs", "flex"
FEEDS = {
    "aspen": (*FLEX, "us-otp-fixtures", "aspen-flex-on-demand.gtfs"),
    "cobblinc": (*FLEX, "us-otp-fixtures", "cobblinc-scheduled-deviated-flex.gtfs"),
    "lincoln": (*FLEX, "us-otp-fixtures", "lincoln-county-flex.gtfs"),
    "uckermark": (*FLEX, "de-uckermark-rufbus"),
}
REPORTING = {"block": []}  # the shared feeds carry draft-era errors; they are reported (docs/validation-parity.md), not blocked


def _tables(ws, feed_id: str) -> dict[str, list[tuple]]:
    """Return {table: rows without feed id, version and line} of the feed's only version in the lake."""
    from noriba.pipeline import lake_versions
    from transforms.schema import load_schema

    (_, version), = lake_versions(ws, feed_id)
    con = duckdb.connect()
    out = {}
    for t in load_schema().tables:
        part = ws.lake_partition(f"gtfs_{t}", feed_id, version) / "part-0.parquet"
        if part.exists():
            out[t] = sorted(con.sql(f"SELECT * EXCLUDE (_line) FROM read_parquet('{part}', hive_partitioning=false)").fetchall(), key=repr)
    return out


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_shared_flex_feed_round_trips_through_export(ws, tmp_path, name):
    from noriba.pipeline import run_feed

    src = shared(*FEEDS[name])
    first = run_feed(make_spec(f"{name}-in", src, policy=REPORTING), ws)
    zip_path = first["exports"]["gtfs_zip"]
    with zipfile.ZipFile(zip_path) as zf:
        if (src / "locations.geojson").exists():
            assert zf.read("locations.geojson") == (src / "locations.geojson").read_bytes()  # byte-faithful
    run_feed(make_spec(f"{name}-again", zip_path, policy=REPORTING), ws)
    before, after = _tables(ws, f"{name}-in"), _tables(ws, f"{name}-again")
    assert before.keys() == after.keys()
    for t in before:
        assert before[t] == after[t], t
    if (src / "locations.geojson").exists():
        geo = pq.read_table(f"{first['exports']['parquet_dir']}/locations.parquet")
        meta = json.loads(geo.schema.metadata[b"geo"])
        assert meta["columns"]["geometry"]["encoding"] == "WKB" and geo.num_rows == len(json.loads((src / "locations.geojson").read_text())["features"])
        assert all(shapely.from_wkb(g).is_valid for g in geo.column("geometry").to_pylist())


def _spec(ids, formats=("gtfs",)):
    from noriba.exports import parse_export_spec

    return parse_export_spec({"id": "flex-region", "feeds": {"ids": ids}, "license": {"id": "CC0-1.0"}, "formats": list(formats)},
                             where="test", root=ROOT)


def test_flex_feed_merged_with_a_fixed_route_feed_validates_without_new_errors(ws):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed

    run_feed(make_spec("cobb-flex", shared(*FEEDS["cobblinc"]), policy=REPORTING), ws)
    run_feed(make_spec("cobb-30", shared(*FLEX, "us-otp-fixtures", "cobblinc-bus-30-only.gtfs.zip"), policy=REPORTING), ws)
    out = build_export(_spec(["cobb-flex", "cobb-30"]), ws)
    manifest = json.loads(open(out["manifest"], encoding="utf-8").read())
    assert manifest["validation"]["new_errors"] == {}, manifest["validation"]
    with zipfile.ZipFile(out["gtfs_zip"]) as zf:
        ids = [f["id"] for f in json.loads(zf.read("locations.geojson"))["features"]]
        times = zf.read("stop_times.txt").decode()
    assert len(ids) == 3 and all(i in times for i in ids)  # zones written back, with the ids stop_times use
    assert manifest["rows_out"]["locations"] == manifest["rows_in"]["locations"] == 3


def test_colliding_zone_ids_are_namespaced_like_stops_and_never_unified(ws, tmp_path):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed
    from tests.transforms.rules.test_flex import GOOD_BR, ST, flex

    rows = ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\nT1,,,,,Z2,2,2,2,08:00:00,10:00:00,B1,B1\n"
    for fid in ("flex-a", "flex-b"):  # same zone ids and geometry in both feeds
        run_feed(make_spec(fid, write_feed(tmp_path / fid, flex(rows, booking_rules=GOOD_BR))), ws)
    from noriba.exports import FORMATS

    out = build_export(_spec(["flex-a", "flex-b"], formats=FORMATS), ws)
    manifest = json.loads(open(out["manifest"], encoding="utf-8").read())
    stop = {c["id"]: c["merged_ids"] for c in manifest["collisions"]["stop"]}
    assert stop["Z1"] == {"flex-a": "a:Z1", "flex-b": "b:Z1"}
    assert {c["id"] for c in manifest["collisions"]["booking_rule"]} == {"B1", "B2"}
    with zipfile.ZipFile(out["gtfs_zip"]) as zf:
        ids = sorted(f["id"] for f in json.loads(zf.read("locations.geojson"))["features"])
    assert ids == ["a:Z1", "a:Z2", "b:Z1", "b:Z2"]
    assert manifest["validation"]["new_errors"] == {}
    # the analytical Parquet has the zones as GeoParquet, and the data dictionary documents them
    geo = Path(out["dir"]) / "parquet" / "locations.parquet"
    assert json.loads(pq.read_schema(geo).metadata[b"geo"])["columns"]["geometry"]["encoding"] == "WKB"
    assert pq.read_table(geo).num_rows == 4


@pytest.mark.parametrize("mode", ["whole", "clip"])
def test_extract_keeps_a_zone_crossing_the_edge_whole_or_clipped_and_says_so(ws, tmp_path, mode):
    from noriba.pipeline import run_feed
    from tests.transforms.rules.test_flex import GOOD_BR, ST, flex
    from warehouse.extract import extract
    from warehouse.merge import MergeInput, load_inputs

    rows = ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\nT1,,,,,Z2,2,2,2,08:00:00,10:00:00,B1,B1\n"
    geo = zones(Z1=square(141.40, 43.30), Z2=square(141.45, 43.30), Z3=square(141.60, 43.30))
    r = run_feed(make_spec("flex", write_feed(tmp_path / "f", flex(rows, booking_rules=GOOD_BR, locations=geo))), ws, export=False)
    work, _ = load_inputs(ws, [MergeInput("flex", r["feed_version"], "f")])
    area = box(141.41, 43.29, 141.48, 43.33)  # holds half of Z1 and all of Z2; Z3 is outside and unused
    out = extract(work, area=area, zones=mode)
    assert out["area"]["zones"]["mode"] == mode and out["area"]["zones"]["crossing_edge"] == ["Z1"]
    kept = dict(work.con.sql("SELECT location_id, geometry FROM w_locations").fetchall())
    assert sorted(kept) == ["Z1", "Z2"]
    assert shapely.from_wkb(bytes(kept["Z1"])).area == pytest.approx(0.01 * 0.02 if mode == "clip" else 0.02 * 0.02)
    assert shapely.from_wkb(bytes(kept["Z2"])).area == pytest.approx(0.02 * 0.02)


@pytest.mark.parametrize("rule,ja,en", [
    ({"booking_type": 2, "prior_notice_last_day": 1, "prior_notice_last_time": 17 * 3600, "phone_number": "0120-000-000"},
     "前日17時までに電話予約（電話 0120-000-000）", "by 17:00 the day before: book by phone (phone 0120-000-000)"),
    ({"booking_type": 1, "prior_notice_duration_min": 30}, "30分前までに予約", "at least 30 minutes ahead: book"),
    ({"booking_type": 1, "prior_notice_duration_min": 60, "prior_notice_duration_max": 10080, "booking_url": "https://yoyaku.example.jp"},
     "1時間前までにウェブで予約（7日前から受付）（https://yoyaku.example.jp）", None),
    ({"booking_type": 2, "prior_notice_last_day": 2, "prior_notice_last_time": 17 * 3600 + 1800, "prior_notice_start_day": 7,
      "prior_notice_start_time": 9 * 3600, "phone_number": "0120"}, "2日前の17時30分までに電話予約（7日前の9時から受付）（電話 0120）", None),
    ({"booking_type": 0, "phone_number": "0120"}, "乗車直前まで随時電話予約（電話 0120）", None),
])
def test_booking_rule_is_said_in_plain_words(rule, ja, en):
    from warehouse.municipality_report import booking_words

    assert booking_words(rule, lang="ja") == ja
    if en:
        assert booking_words(rule, lang="en") == en


def test_municipality_report_maps_the_service_zones_and_says_how_to_book(ws, tmp_path):
    from noriba.pipeline import run_feed
    from tests.transforms.rules.test_flex import BR, ST, flex
    from warehouse.municipality_report import build_report

    rows = ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B2,B2\n"
    br = BR + "B2,2,,,1,17:00:00,,,,0120-000-000\n"
    run_feed(make_spec("town-flex", write_feed(tmp_path / "f", flex(rows, booking_rules=br))), ws, export=False)
    out = build_report(ws, feed_ids=["town-flex"], lang="ja")
    page = open(out["html"], encoding="utf-8").read()
    assert "前日17時までに電話予約（電話 0120-000-000）" in page
    data = json.loads(page.split('id="map-data">', 1)[1].split("</script>", 1)[0])
    z1 = next(z for z in data["zones"] if z["location_id"] == "Z1")
    assert z1["booking"] == ["前日17時までに電話予約（電話 0120-000-000）"] and z1["rings"][0][0][0] == [43.3, 141.4]
    assert {z["location_id"] for z in out["flex"]["zones"]} == {"Z1", "Z2"}
    # the officer reads which service and zone a rule is for, not its id
    rule = next(r for r in out["flex"]["booking_rules"] if r["booking_rule_id"] == "B2")
    assert rule["where"].endswith("）") and "（" in rule["where"], rule
    assert f"<td title=\"booking_rule_id B2\">{rule['where']}</td>" in page.replace("&#x27;", "'")


def test_catalog_lists_flex_content_of_a_feed(tmp_path):
    from noriba.cli import main
    from noriba.exports import update_catalog
    from warehouse.workspace import Workspace
    from tests.transforms.rules.test_flex import OK_ST, flex

    home = tmp_path / "home"
    feed = write_feed(tmp_path / "feed", flex(OK_ST))
    assert main(["--home", str(home), "ingest", str(feed), "--id", "town-flex", "--license", "CC-BY-4.0", "--quiet"]) == 0
    ws = Workspace(home)
    update_catalog(ws)
    site = ws.exports / "site"
    cat = {s["noriba"]["id"]: s for s in json.loads((site / "catalog.json").read_text(encoding="utf-8"))["sources"]}
    assert cat["town-flex"]["features"] == ["flex"]
    page = (site / "feeds" / "town-flex.html").read_text(encoding="utf-8")
    assert "デマンド交通 (GTFS-Flex)" in page and "運行区域 <span class=\"en\">zones</span> 2" in page


def test_export_spec_says_whether_edge_zones_are_clipped():
    from noriba.exports import parse_export_spec
    from transforms.specfile import SpecError

    doc = {"id": "x", "feeds": {"ids": ["a"]}, "license": {"id": "CC0-1.0"}, "area": {"bbox": [0, 0, 1, 1]}}
    assert parse_export_spec(doc, where="t", root=ROOT).flex_zones == "whole"
    assert parse_export_spec({**doc, "flex_zones": "clip"}, where="t", root=ROOT).flex_zones == "clip"
    with pytest.raises(SpecError, match="flex_zones"):
        parse_export_spec({**doc, "flex_zones": "half"}, where="t", root=ROOT)
