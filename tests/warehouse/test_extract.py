"""Extract: trips leaving the area are cut consistently and every cut is listed; unused entities go."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import zipfile
from pathlib import Path

import duckdb
import pytest
import shapely
from shapely.geometry import Polygon

from tests.conftest import ROOT, make_spec, write_feed

# A line along the coast: stops 1..6 west to east; the area holds stops 2, 3 and 5 (4 lies in a bay outside it).
LINE = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,みなと交通,https://a.example.jp,Asia/Tokyo\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n"
                 "P1,一,43.00,141.00\nP2,二,43.00,141.10\nP3,三,43.00,141.20\nP4,四,43.20,141.30\nP5,五,43.00,141.40\nP6,六,43.00,141.50\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\nR2,A,2,3\n",
    "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,WD,through,SH\nR1,WD,untimed,SH\nR2,WD,outside,\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                      "through,08:00:00,08:00:00,P1,1\nthrough,08:10:00,08:10:00,P2,2\nthrough,08:20:00,08:20:00,P3,3\n"
                      "through,08:30:00,08:30:00,P4,4\nthrough,08:40:00,08:40:00,P5,5\nthrough,08:50:00,08:50:00,P6,6\n"
                      "untimed,09:00:00,09:00:00,P1,1\nuntimed,,,P2,2\nuntimed,09:20:00,09:20:00,P3,3\nuntimed,09:30:00,09:30:00,P4,4\n"
                      "outside,10:00:00,10:00:00,P1,1\noutside,10:30:00,10:30:00,P6,2\n",
    "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
                  + "".join(f"SH,43.00,{141 + i / 20:.2f},{i}\n" for i in range(11)),
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WD,1,1,1,1,1,0,0,20260401,20270331\nSA,0,0,0,0,0,1,0,20260401,20270331\n",
}
AREA = [[141.05, 42.95], [141.45, 42.95], [141.45, 43.05], [141.05, 43.05]]


def _zip_table(zip_path, name):
    with zipfile.ZipFile(zip_path) as zf:
        if name not in zf.namelist():
            return []
        return list(csv.DictReader(io.StringIO(zf.read(name).decode("utf-8"))))


def _build(ws, doc):
    from noriba.exports import build_export, parse_export_spec

    spec = parse_export_spec({"license": {"id": "CC0-1.0"}, "formats": ["gtfs"], **doc}, where="test", root=ROOT)
    out = build_export(spec, ws)
    return out, json.loads(open(out["manifest"], encoding="utf-8").read())


def test_trip_leaving_and_reentering_the_area_is_cut_and_listed(ws, tmp_path):
    from noriba.pipeline import run_feed

    run_feed(make_spec("line", write_feed(tmp_path / "line", LINE)), ws)
    out, manifest = _build(ws, {"id": "line-cut", "feeds": {"ids": ["line"]}, "area": {"polygon": AREA}})
    times = _zip_table(out["gtfs_zip"], "stop_times.txt")
    by_trip = {}
    for r in times:
        by_trip.setdefault(r["trip_id"], []).append(r["stop_id"])
    assert by_trip == {"through": ["P2", "P3", "P5"]}
    cut = {c["trip_id"]: c for c in manifest["extract"]["area"]["trips_cut"]}
    assert cut["through"]["cut_at"] == ["start", "end", "middle"]
    assert cut["through"]["stop_times_before"] == 6 and cut["through"]["stop_times_kept"] == 3
    # 'untimed' keeps only P3 once the untimed P2 cannot start it: fewer than two stops, so it goes, and says so
    assert "untimed" in manifest["extract"]["area"]["trips_removed_leaving_fewer_than_2_stops"]
    assert "outside" in manifest["extract"]["area"]["trips_removed_leaving_fewer_than_2_stops"]
    assert {s["stop_id"] for s in _zip_table(out["gtfs_zip"], "stops.txt")} == {"P2", "P3", "P5"}
    assert [r["route_id"] for r in _zip_table(out["gtfs_zip"], "routes.txt")] == ["R1"]
    assert [r["service_id"] for r in _zip_table(out["gtfs_zip"], "calendar.txt")] == ["WD"]
    lons = [p["shape_pt_lon"] for p in _zip_table(out["gtfs_zip"], "shapes.txt")]
    # the points inside (141.10 .. 141.40) and one on each side, so the line reaches the edge
    assert lons == ["141.05", "141.1", "141.15", "141.2", "141.25", "141.3", "141.35", "141.4", "141.45"]
    assert manifest["validation"]["new_errors"] == {}


def test_date_window_clips_calendars_and_drops_services_without_days(ws, tmp_path):
    from noriba.pipeline import run_feed

    run_feed(make_spec("line", write_feed(tmp_path / "line", LINE)), ws)
    out, manifest = _build(ws, {"id": "line-week", "feeds": {"ids": ["line"]}, "dates": {"start": "2026-05-04", "end": "2026-05-08"}})
    cal = _zip_table(out["gtfs_zip"], "calendar.txt")
    assert [(c["service_id"], c["start_date"], c["end_date"]) for c in cal] == [("WD", "20260504", "20260508")]
    info = _zip_table(out["gtfs_zip"], "feed_info.txt")[0]
    assert (info["feed_start_date"], info["feed_end_date"]) == ("20260504", "20260508")


def test_extract_by_route_keeps_only_its_trips(ws, tmp_path):
    from noriba.pipeline import run_feed

    run_feed(make_spec("line", write_feed(tmp_path / "line", LINE)), ws)
    out, manifest = _build(ws, {"id": "line-r2", "feeds": {"ids": ["line"]}, "routes": ["R2"]})
    assert [t["trip_id"] for t in _zip_table(out["gtfs_zip"], "trips.txt")] == ["outside"]
    assert {s["stop_id"] for s in _zip_table(out["gtfs_zip"], "stops.txt")} == {"P1", "P6"}
    assert _zip_table(out["gtfs_zip"], "shapes.txt") == []


# San Francisco and the East Bay shore: many regional trips run through it and out of it.
BAY_AREA_POLYGON = [[-122.52, 37.70], [-122.36, 37.70], [-122.20, 37.76], [-122.22, 37.88], [-122.52, 37.83]]


def test_polygon_extract_of_the_merged_bay_area_keeps_every_trip_consistent(sfbay_export):
    ws, merged = sfbay_export
    lock = Path(ws.home).parent / ".lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        out, manifest = _build(ws, {"id": "sfbay-core", "feeds": {"lake": ["sfbay-*"]}, "area": {"polygon": BAY_AREA_POLYGON}})
    assert manifest["validation"]["new_errors"] == {}
    con = duckdb.connect()
    con.execute(f"CREATE TABLE orig AS SELECT trip_id, stop_sequence, stop_id, arrival_time, departure_time "
                f"FROM read_parquet('{merged['dir']}/tables/stop_times.parquet')")
    con.execute(f"CREATE TABLE cut AS SELECT trip_id, stop_sequence, stop_id, arrival_time, departure_time "
                f"FROM read_parquet('{out['dir']}/tables/stop_times.parquet')")
    con.execute(f"CREATE TABLE stops AS SELECT stop_id, stop_lat, stop_lon FROM read_parquet('{out['dir']}/tables/stops.parquet')")
    # no trip references a removed stop
    assert con.sql("SELECT count(*) FROM cut WHERE stop_id NOT IN (SELECT stop_id FROM stops)").fetchall()[0][0] == 0
    # every stop kept is inside the polygon
    poly = Polygon(BAY_AREA_POLYGON)
    coords = con.sql("SELECT stop_lon, stop_lat FROM stops WHERE stop_id IN (SELECT stop_id FROM cut)").fetchall()
    assert coords and all(shapely.contains_xy(poly, x, y) for x, y in coords)
    # every kept stop_time is the original one, unchanged
    assert con.sql(
        "SELECT count(*) FROM cut c ANTI JOIN orig o ON c.trip_id = o.trip_id AND c.stop_sequence = o.stop_sequence "
        "AND c.stop_id = o.stop_id AND c.arrival_time IS NOT DISTINCT FROM o.arrival_time "
        "AND c.departure_time IS NOT DISTINCT FROM o.departure_time").fetchall()[0][0] == 0
    # every trip that lost stop_times is listed, and a gap in the middle is said
    cut_listed = {c["trip_id"]: c for c in manifest["extract"]["area"]["trips_cut"]}
    lost = con.sql(
        "SELECT c.trip_id, count(*) AS kept, (SELECT count(*) FROM orig o WHERE o.trip_id = c.trip_id) AS before, "
        "(SELECT count(*) FROM orig o WHERE o.trip_id = c.trip_id AND o.stop_sequence BETWEEN min(c.stop_sequence) AND max(c.stop_sequence)) AS span "
        "FROM cut c GROUP BY c.trip_id").fetchall()
    assert lost
    n_cut = 0
    for trip_id, kept, before, span in lost:
        if kept < before:
            n_cut += 1
            assert trip_id in cut_listed, trip_id
            assert cut_listed[trip_id]["stop_times_kept"] == kept
            if span > kept:  # stops skipped between the first and last kept: cut in the middle
                assert "middle" in cut_listed[trip_id]["cut_at"], trip_id
        else:
            assert trip_id not in cut_listed
    assert n_cut == len(cut_listed) and n_cut > 100
    # every trip starts and ends on a stop with a time
    assert con.sql("SELECT count(*) FROM (SELECT trip_id, arg_min(departure_time, stop_sequence) AS d, arg_max(arrival_time, stop_sequence) AS a "
                   "FROM cut GROUP BY trip_id) WHERE d IS NULL OR a IS NULL").fetchall()[0][0] == 0
    # trips removed are listed, and trips that kept nothing are gone from trips.txt
    removed = set(manifest["extract"]["area"]["trips_removed_leaving_fewer_than_2_stops"])
    kept_trips = {r[0] for r in con.sql("SELECT DISTINCT trip_id FROM cut").fetchall()}
    assert removed and not (removed & kept_trips)
    assert manifest["rows_out"]["stops"] < manifest["extract"]["rows_before"]["stops"]


def _work(calendar: list[tuple], removed: list[tuple], added: list[tuple]):
    """Return a stand-in of an extract's work (its connection and tables) holding these calendars, dates and one trip each."""
    from types import SimpleNamespace

    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE w_calendar (service_id VARCHAR, monday INTEGER, tuesday INTEGER, wednesday INTEGER, thursday INTEGER, "
                "friday INTEGER, saturday INTEGER, sunday INTEGER, start_date DATE, end_date DATE)")
    con.executemany("INSERT INTO w_calendar VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", calendar)
    con.execute("CREATE TABLE w_calendar_dates (service_id VARCHAR, date DATE, exception_type INTEGER)")
    for rows, kind in ((removed, 2), (added, 1)):
        if rows:
            con.executemany(f"INSERT INTO w_calendar_dates VALUES (?, ?, {kind})", rows)
    con.execute("CREATE TABLE w_trips AS SELECT DISTINCT service_id, 'T_' || service_id AS trip_id FROM "
                "(SELECT service_id FROM w_calendar UNION ALL SELECT service_id FROM w_calendar_dates)")
    return SimpleNamespace(con=con, tables={"calendar", "calendar_dates", "trips"})


def test_services_of_a_date_window_are_those_a_day_by_day_count_finds():
    """The window's services are counted per calendar row (weekdays in the window, less the dates removed), never listed
    day by day: the same services as listing every day, on random calendars, removals, additions and windows."""
    import random
    from datetime import date, timedelta

    from warehouse.extract import _restrict_dates

    rng = random.Random(13)
    for _ in range(40):
        base = date(2026, 1, 1)
        calendar, removed, added = [], [], []
        for k in range(12):
            a = base + timedelta(days=rng.randint(0, 200))
            calendar.append((f"S{k}", *[rng.random() < 0.4 for _ in range(7)], a, a + timedelta(days=rng.randint(-3, 60))))
            for _ in range(rng.randint(0, 6)):
                removed.append((f"S{k}", a + timedelta(days=rng.randint(-2, 62))))
        for k in range(12, 15):
            added.append((f"S{k}", base + timedelta(days=rng.randint(0, 260))))
        start = base + timedelta(days=rng.randint(0, 200)) if rng.random() < 0.8 else None
        end = (start or base) + timedelta(days=rng.randint(0, 40)) if rng.random() < 0.8 else None
        days = lambda a, b: [a + timedelta(days=i) for i in range((b - a).days + 1)]  # noqa: E731
        lo, hi = start or date.min, end or date.max
        gone = {(s, d) for s, d in removed}
        runs = {s for s, *f, a, b in calendar for d in days(max(a, lo), min(b, hi)) if a <= b and f[d.weekday()] and (s, d) not in gone}
        runs |= {s for s, d in added if lo <= d <= hi}
        kept_rows = {s for s, *f, a, b in calendar if any(f[d.weekday()] for d in days(max(a, lo), min(b, hi))[:7])}
        work = _work([(s, *map(int, f), a, b) for s, *f, a, b in calendar], removed, added)
        info = _restrict_dates(work, start, end)
        every = {f"S{k}" for k in range(15)}
        assert set(info["services_without_service_in_window"]) == every - runs, (start, end)
        assert {r[0] for r in work.con.sql("SELECT service_id FROM w_calendar").fetchall()} == kept_rows, (start, end)


def test_a_calendar_of_centuries_is_clipped_to_a_window_without_listing_its_days():
    from datetime import date

    from warehouse.extract import _restrict_dates

    rows = [(f"S{k}", 1, 1, 1, 1, 1, 1, 1, date(1, 1, 1), date(9999, 12, 31)) for k in range(2000)]  # 7.3e9 days listed
    work = _work(rows + [("WD", 1, 1, 1, 1, 1, 0, 0, date(2026, 4, 1), date(2027, 3, 31))], [("WD", date(2026, 5, 4))], [])
    info = _restrict_dates(work, date(2026, 5, 4), None)
    assert info["services_without_service_in_window"] == [] and info["trips_removed"] == 0
    assert work.con.sql("SELECT min(start_date), max(end_date), count(*) FROM w_calendar").fetchall() == [
        (date(2026, 5, 4), date(9999, 12, 31), 2001)]
