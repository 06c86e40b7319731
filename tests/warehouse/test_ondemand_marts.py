"""The demo's のりあい号: bookings meet the on-demand service declared in its spec, and the transit gap counts its zone."""

from __future__ import annotations

import duckdb
import pytest

#: The demo service (specs/feeds/minato-noriai-ondemand.yml): its districts and hours, written here again by hand.
AREA = ("D01", "D02", "D03", "D05", "D06")
HOURS = {"weekday": (8, 18), "weekend": (9, 17)}
HOLIDAYS = ("2026-04-29",)  # 昭和の日: closed


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from noriba.trips_pipeline import run_all
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("od") / "home").ensure()
    specs = {s.id: s for s in load_specs()}
    run_feed(specs["minato-city-bus"], ws, export=False, contracts=False)
    run_all(ws, tags=("demo",))
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    before = {
        "unserved": con.sql("SELECT reason, sum(bookings) FROM marts.ondemand_bookings_unserved GROUP BY ALL").fetchall(),
        "gaps": dict(con.sql("SELECT source_id, sum(gap_trips) FROM marts.transit_gap_by_municipality GROUP BY ALL").fetchall()),
    }
    con.close()
    out = run_feed(specs["minato-noriai-ondemand"], ws, export=True, contracts=False)
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    yield ws, con, before, out
    con.close()


def independent_served(con) -> str:
    """SQL for the demo bookings the service must carry by the leaflet: both ends in its districts, in its hours."""
    d = "CAST(pickup_time_local AS DATE)"
    h = "(hour(pickup_time_local) + minute(pickup_time_local) / 60.0)"
    return (f"SELECT source_file, source_row FROM trips.fct_trips WHERE source_id = 'minato-ondemand' "
            f"AND pickup_zone IN {AREA} AND dropoff_zone IN {AREA} AND {d}::VARCHAR NOT IN {HOLIDAYS + ('',)} AND ("
            f"(dayofweek(pickup_time_local) BETWEEN 1 AND 5 AND {h} BETWEEN {HOURS['weekday'][0]} AND {HOURS['weekday'][1]}) OR "
            f"(dayofweek(pickup_time_local) IN (0, 6) AND {h} BETWEEN {HOURS['weekend'][0]} AND {HOURS['weekend'][1]}))")


def test_demo_ondemand_feed_is_published_with_its_zone(demo):
    _, con, _, out = demo
    assert out["status"] == "new" and out["exports"]["gtfs_zip"].endswith(".zip")
    assert con.sql("SELECT kind, count(*) FROM ondemand.zones WHERE feed_id = 'minato-noriai-ondemand' GROUP BY ALL ORDER BY 1").fetchall() == [
        ("stop", 2), ("zone", 1)]
    assert con.sql("SELECT count(*) FROM ondemand.windows WHERE service_date = DATE '2026-04-29'").fetchall() == [(0,)]


def test_demo_gtfs_zip_has_no_gtfs_guru_error(demo):
    gtfs_guru = pytest.importorskip("gtfs_guru")
    _, _, _, out = demo
    result = gtfs_guru.validate(out["exports"]["gtfs_zip"], country_code="JP", date="2026-06-01")
    assert [f"{n.code} {n.file}: {n.context()}" for n in result.notices if n.severity == "ERROR"] == []


def test_before_the_service_is_published_every_booking_is_unserved_with_that_reason(demo):
    _, _, before, _ = demo
    assert before["unserved"] == [("no_ondemand_service", 396)]


def test_every_booking_is_counted_once_served_or_unserved(demo):
    _, con, _, _ = demo
    total = con.sql("SELECT sum(trip_count) FROM trips.fct_trips WHERE source_id = 'minato-ondemand'").fetchall()[0][0]
    served = con.sql("SELECT sum(bookings_in_window) FROM marts.ondemand_bookings_zone_hour WHERE source_id = 'minato-ondemand'").fetchall()[0][0]
    unserved = con.sql("SELECT sum(bookings) FROM marts.ondemand_bookings_unserved WHERE source_id = 'minato-ondemand'").fetchall()[0][0]
    assert served + unserved == total == 396


def test_bookings_the_leaflet_covers_are_served(demo):
    _, con, _, _ = demo
    must = con.sql(f"SELECT count(*) FROM ({independent_served(con)})").fetchall()[0][0]
    served = con.sql("SELECT sum(bookings_in_window) FROM marts.ondemand_bookings_zone_hour WHERE source_id = 'minato-ondemand'").fetchall()[0][0]
    # served = both ends in the area + the trips to and from the connecting stops (みなと駅, 市役所前)
    assert 0 < must <= served, f"{must} bookings inside the area and hours, but only {served} matched to the service"


def test_unserved_bookings_have_each_reason(demo):
    _, con, _, _ = demo
    reasons = dict(con.sql("SELECT reason, bookings FROM marts.ondemand_bookings_unserved WHERE source_id = 'minato-ondemand'").fetchall())
    assert set(reasons) == {"pickup_outside_zone", "dropoff_outside_zone", "outside_hours", "no_service_that_day"}
    holiday = con.sql("SELECT count(*) FROM trips.fct_trips WHERE source_id = 'minato-ondemand' AND "
                      f"CAST(pickup_time_local AS DATE) = DATE '{HOLIDAYS[0]}' AND pickup_zone IN {AREA} AND dropoff_zone IN {AREA}").fetchall()[0][0]
    assert reasons["no_service_that_day"] >= holiday > 0


def test_zone_hour_mart_says_when_the_window_is_open(demo):
    _, con, _, _ = demo
    rows = {(d, h): n for d, h, n in con.sql("SELECT day_type, hour, service_days_open FROM marts.ondemand_bookings_zone_hour "
                                             "WHERE zone_id = 'area' AND month = '2026-04'").fetchall()}
    # April 2026: 21 weekdays open (22 less 昭和の日), 4 Saturdays, 4 Sundays; 08:00 and 17:00 are weekday-only hours
    assert rows[("weekday", 8)] == 21 and rows[("weekday", 12)] == 21 and rows[("weekday", 17)] == 21
    assert rows[("saturday", 12)] == 4 and rows[("saturday", 8)] == 0
    assert rows[("sunday_holiday", 12)] == 4  # the 4 Sundays; 昭和の日 is closed


def test_transit_gap_no_longer_counts_trips_the_ondemand_zone_carries(demo):
    _, con, before, _ = demo
    after = dict(con.sql("SELECT source_id, sum(gap_trips) FROM marts.transit_gap_by_municipality GROUP BY ALL").fetchall())
    assert after["minato-ondemand"] < before["gaps"]["minato-ondemand"]
    assert after["minato-taxi"] <= before["gaps"]["minato-taxi"]
    inside = con.sql(f"SELECT count(*) FROM marts.transit_gap_trips g JOIN ({independent_served(con)}) s USING (source_file, source_row) "
                     "WHERE g.source_id = 'minato-ondemand'").fetchall()[0][0]
    assert inside == 0, f"{inside} bookings inside the on-demand zone and hours are still counted as transit gaps"
