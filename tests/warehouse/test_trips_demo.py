"""The demo region's trips: the authored inputs' known bad rows, municipalities, transit gaps and suppressed exports."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from noriba.trips_pipeline import run_all
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("demo") / "home").ensure()
    run_feed(next(s for s in load_specs() if s.id == "minato-city-bus"), ws, export=False)
    run_all(ws, tags=("demo",))
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    yield ws, con
    con.close()


def test_demo_inputs_regenerate_byte_identical(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "demo"
    spec = importlib.util.spec_from_file_location("make_trips_inputs", root / "make_trips_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "HERE", tmp_path)
    mod.main()
    for rel in ("minato-taxi/minato_taxi_2026-04.csv", "minato-ondemand/noriai_bookings_2026-04.jsonl",
                "minato-zones/municipalities.geojson", "minato-zones/districts.geojson"):
        assert (tmp_path / rel).read_bytes() == (root / "inputs" / rel).read_bytes(), rel


def test_taxi_log_known_bad_rows(demo):
    _, con = demo
    counts = dict(con.sql("SELECT code, rows FROM quality.trip_rule_counts WHERE source_id = 'minato-taxi'").fetchall())
    assert counts["dropoff_before_pickup"] == 2 and counts["pickup_outside_period"] == 1
    assert counts["negative_amount"] == 1 and counts["missing_passengers"] == 3
    assert con.sql("SELECT rows_in, accepted, quarantined, encoding FROM trips.source_files WHERE source_id = 'minato-taxi'").fetchall() == [
        (1200, 1197, 3, "cp932")]
    raw = json.loads(con.sql("SELECT raw FROM quality.quarantine WHERE feed_id = 'minato-taxi' AND code = 'pickup_outside_period'").fetchall()[0][0])
    assert raw["乗車日時"] == "2026/05/01 0:10" and raw["支払方法"] in ("現金", "クレジットカード", "交通系IC", "QRコード")


def test_ondemand_cancelled_bookings_are_quarantined_with_reason(demo):
    _, con = demo
    rows = con.sql("SELECT code, raw FROM quality.quarantine WHERE feed_id = 'minato-ondemand'").fetchall()
    assert len(rows) == 4 and {c for c, _ in rows} == {"missing_pickup_time"}
    assert all(json.loads(r)["status"] == "cancelled" for _, r in rows)
    assert con.sql("SELECT DISTINCT mode FROM trips.fct_trips WHERE source_id = 'minato-ondemand'").fetchall() == [("on_demand",)]


def test_every_demo_trip_gets_its_municipality_and_district(demo):
    _, con = demo
    rows = con.sql("SELECT pickup_municipality, count(*), count(pickup_zone) FROM trips.fct_trips WHERE source_id LIKE 'minato-%' "
                   "GROUP BY 1 ORDER BY 1").fetchall()
    assert {r[0] for r in rows} == {"みなと市", "北浜町"} and all(n == z for _, n, z in rows)
    # 北浜町 is exactly district D05
    assert con.sql("SELECT DISTINCT pickup_zone FROM trips.fct_trips WHERE pickup_municipality = '北浜町'").fetchall() == [("D05",)]


def test_transit_gap_mart_for_the_demo_municipality(demo):
    _, con = demo
    rows = con.sql("SELECT source_id, trips, gap_trips, far_from_stop, outside_service_hours FROM marts.transit_gap_by_municipality "
                   "WHERE municipality = 'みなと市' ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["minato-ondemand", "minato-taxi"]
    for _, trips, gaps, far, night in rows:
        assert 0 < gaps < trips and gaps <= far + night
    night = con.sql("SELECT min(hour), max(hour) FROM marts.transit_gap_trips WHERE source_id = 'minato-taxi' AND outside_service_hours").fetchall()[0]
    assert night[0] >= 0 and night[1] < 7  # buses run about 06:40 to 24:10


def test_demo_exports_are_suppressed(demo):
    ws, _ = demo
    path = ws.exports / "trips" / "minato-taxi" / "trips_by_zone_hour.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(int(r["trips"]) >= 10 for r in rows)
    about = json.loads((ws.exports / "trips" / "minato-taxi" / "about.json").read_text(encoding="utf-8"))
    assert about["suppressed_cells"]["trips_by_zone_hour"] > 0


def test_run_feed_dispatches_a_trips_spec(tmp_path):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace
    from noriba.specs import load_trip_specs

    spec = next(s for s in load_trip_specs() if s.id == "minato-ondemand")
    out = run_feed(spec, Workspace(tmp_path / "home").ensure(), export=False)
    assert out["status"] == "new" and out["rows_in"] == 400 and out["rows_quarantined"] == 4


def test_cli_names_an_unknown_trips_spec_in_one_line(tmp_path, capsys):
    from noriba.cli import main

    rc = main(["--home", str(tmp_path / "home"), "trips", "no-such-source", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no-such-source" in err[0] and "Traceback" not in err[0]
