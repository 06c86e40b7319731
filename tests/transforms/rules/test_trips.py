"""Trip rules: each finds a tiny broken feed and stays quiet on its corrected twin."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.trips import RULES

ST = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
TWO = ST + "T1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\nT2,09:00:00,09:00:00,S2,1\nT2,09:10:00,09:10:00,S1,2\n"
TR = "route_id,service_id,trip_id,block_id,trip_headsign\n"
CAL = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
STOPS3 = "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.41\nS3,山手,43.32,141.42\n"

CASES = [
    ("unusable_trip", {"trips": TR + "R1,WD,T1,,\n", "stop_times": ST + "T1,08:00:00,08:00:00,S1,1\n"}, {}, ["T1"]),
    ("unused_trip", {"trips": TR + "R1,WD,T1,,\nR1,WD,T9,,\n"}, {}, ["T9"]),
    ("block_trips_with_overlapping_stop_times",
     {"trips": TR + "R1,WD,T1,B1,\nR1,WD,T2,B1,\n", "stop_times": TWO.replace("T2,09:00:00,09:00:00", "T2,08:05:00,08:05:00")},
     {"trips": TR + "R1,WD,T1,B1,\nR1,WD,T2,B1,\n", "stop_times": TWO}, ["T1", "T2", "B1"]),
    ("inconsistent_route_type_for_block_id",
     {"routes": "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\nR2,A,F,4\n", "trips": TR + "R1,WD,T1,B1,\nR2,WD,T2,B1,\n", "stop_times": TWO},
     {"routes": "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\nR2,A,F,4\n", "trips": TR + "R1,WD,T1,B1,\nR2,WD,T2,B2,\n", "stop_times": TWO},
     ["T2", "B1"]),
    ("trip_headsign_matches_intermediate_stop",
     {"stops": STOPS3, "trips": TR + "R1,WD,T1,,駅前\n", "stop_times": ST + "T1,08:00:00,08:00:00,S1,1\nT1,08:05:00,08:05:00,S2,2\nT1,08:10:00,08:10:00,S3,3\n"},
     {"stops": STOPS3, "trips": TR + "R1,WD,T1,,山手\n", "stop_times": ST + "T1,08:00:00,08:00:00,S1,1\nT1,08:05:00,08:05:00,S2,2\nT1,08:10:00,08:10:00,S3,3\n"},
     ["T1"]),
]


@pytest.mark.parametrize("code,bad,good,named", CASES, ids=[c[0] for c in CASES])
def test_trip_rule_reports_the_broken_feed_and_not_the_corrected_one(tmp_path, code, bad, good, named):
    picked = rule(RULES, code)
    hits = found(run(tmp_path / "bad", feed(**bad), picked), code)
    assert hits, f"{code} found nothing"
    assert all(any(n in h["message"] for h in hits) for n in named), hits
    assert code not in codes(run(tmp_path / "good", feed(**good), picked))


def test_every_trip_rule_has_a_case():
    assert {r.code for r in RULES} == {c[0] for c in CASES}


def test_overlapping_block_trips_on_services_without_a_common_day_are_fine(tmp_path):
    overlap = TWO.replace("T2,09:00:00,09:00:00", "T2,08:05:00,08:05:00")
    trips = TR + "R1,WD,T1,B1,\nR1,WE,T2,B1,\n"
    picked = rule(RULES, "block_trips_with_overlapping_stop_times")
    apart = CAL + "WD,1,1,1,1,1,0,0,20260401,20270331\nWE,0,0,0,0,0,1,1,20260401,20270331\n"
    assert not run(tmp_path / "a", feed(trips=trips, stop_times=overlap, calendar=apart), picked).counts
    shared = CAL + "WD,1,1,1,1,1,0,0,20260401,20270331\nWE,0,0,0,0,1,1,1,20260401,20270331\n"
    (hit,) = found(run(tmp_path / "b", feed(trips=trips, stop_times=overlap, calendar=shared), picked), "block_trips_with_overlapping_stop_times")
    assert "2026-04-03" in hit["message"]  # the first Friday both run


def test_headsign_named_stops_are_joined_in_proportion_to_the_feed(tmp_path):
    """Many trips with one headsign and many stops with that name: the rule joined every trip to every stop of its
    headsign's name before reading stop_times (trips × stops rows: 40,000 here, 10⁹ for 100k trips and 10k such stops).
    It now filters the stop times by the few stops named as a headsign and joins their trips on trip and name, so no
    operator puts out more rows than the feed has stop times; the finding is the same."""
    from tests.transforms.rules._feed_b import DAY, largest_operator_rows, tables
    from transforms.rules import engine

    n_trips, n_named = 400, 100
    stops = "stop_id,stop_name,stop_lat,stop_lon\n" + "".join(f"N{k},Central,43.3,141.{k:03d}\n" for k in range(n_named)) + "E,End,43.4,141.4\n"
    trips = "route_id,service_id,trip_id,trip_headsign\n" + "".join(f"R1,WD,T{t},Central\n" for t in range(n_trips))
    times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "".join(
        f"T{t},08:00:00,08:00:00,N{t % n_named},1\nT{t},08:10:00,08:10:00,E,2\n" for t in range(n_trips))
    files = feed(stops=stops, trips=trips, stop_times=times)
    result = run(tmp_path / "run", files, rule(RULES, "trip_headsign_matches_intermediate_stop"))
    assert result.counts[("trip_headsign_matches_intermediate_stop", "INFO")] == n_trips  # each trip passes Central first
    out, _ = tables(tmp_path, files)
    con, present = engine.open_tables(out)
    ctx = engine.Context(validation_date=DAY, profile="gtfs", present=present)
    (picked,) = rule(RULES, "trip_headsign_matches_intermediate_stop")
    rows_out = largest_operator_rows(con, picked.sql(ctx), tmp_path / "profile.json")
    assert rows_out <= 2 * n_trips + n_named + 1, rows_out
