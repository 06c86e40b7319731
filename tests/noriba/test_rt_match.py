"""`noriba rt match`: realtime ids matched per hour to the static version in service; a stale static feed is reported."""

from __future__ import annotations

import duckdb

from noriba.cli import main
from noriba.rt_match import match_feed
from tests.conftest import shared


def test_king_county_2021_realtime_against_2016_static_is_reported_stale(ws, capsys):
    folder = shared("gtfs", "rt", "kcm-septa")
    home = str(ws.home)
    main(["--home", home, "ingest", str(folder / "kcm_gtfs.zip"), "--id", "kcm", "--quiet"])
    assert main(["--home", home, "rt", "ingest", str(folder / "king-county-metro-1.pbf"), str(folder / "king-county-metro-2.pbf"),
                 "--feed", "kcm-rt", "--static", "kcm"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "rt", "match", "kcm-rt"]) == 0
    assert "2021-09-02T15: stale_static" in capsys.readouterr().err
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    rows = con.execute("SELECT hour, trips, trips_unmatched, routes, routes_unmatched, status, version_in_service "
                       "FROM marts.rt_match_hourly ORDER BY hour").fetchall()
    assert [(h, t, tu, s, v) for h, t, tu, _, _, s, v in rows] == [(15, 627, 627, "stale_static", False), (16, 570, 570, "stale_static", False)]
    assert all(0.85 <= (r - ru) / r <= 0.95 for _, _, _, r, ru, _, _ in rows)  # route ids match ~90%
    codes = con.execute("SELECT code, sum(notices) FROM rt.notice_counts GROUP BY code ORDER BY code").fetchall()
    assert codes == [("rt_static_feed_stale", 2), ("rt_static_version_not_in_service", 2)]
    con.close()
    match_feed(ws, "kcm-rt")  # a rerun replaces the feed's rows
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM marts.rt_match_hourly").fetchall() == [(2,)]
    assert con.execute("SELECT count(*) FROM rt.notices").fetchall() == [(4,)]


def test_tampa_realtime_matches_its_static_routes_and_validate_keeps_the_match_notices(ws):
    folder = shared("gtfs", "rt", "bullrunner-tampa")
    home = str(ws.home)
    main(["--home", home, "ingest", str(folder / "bullrunner-gtfs.zip"), "--id", "bullrunner", "--quiet"])
    assert main(["--home", home, "rt", "ingest", str(folder / "bullrunner-vehicle-positions"), "--feed", "br-rt",
                 "--static", "bullrunner"]) == 0
    (hour,) = match_feed(ws, "br-rt")["hours"]
    assert (hour["routes"], hour["routes_unmatched"], hour["trips"], hour["status"]) == (6, 0, 0, "ok")
    assert main(["--home", home, "rt", "validate", "br-rt"]) == 0
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    codes = {c for (c,) in con.execute("SELECT DISTINCT code FROM rt.notice_counts").fetchall()}
    assert {"W001", "W006", "W009"} <= codes
    assert ("rt_static_version_not_in_service" in codes) == (not hour["version_in_service"])


def test_without_a_static_feed_every_hour_is_no_static(ws):
    folder = shared("gtfs", "rt", "kcm-septa")
    assert main(["--home", str(ws.home), "rt", "ingest", str(folder / "septa.pbf"), "--feed", "septa-rt"]) == 0
    (hour,) = match_feed(ws, "septa-rt")["hours"]
    assert hour["status"] == "no_static" and hour["trips"] == 35 and hour["notices"] == ["rt_static_feed_missing"]
