"""Stop time rules: each finds a tiny broken feed and stays quiet on its corrected twin; speeds and same-time runs as the peers count them."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.stop_times import RULES

H = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled,timepoint\n"
OK = H + "T1,08:00:00,08:00:00,S1,1,0,1\nT1,08:10:00,08:10:00,S2,2,1500,1\n"
#: A line of stops 1 km apart going north, S1..S30.
STOPS = "stop_id,stop_name,stop_lat,stop_lon,location_type\n" + "".join(
    f"S{i},停留所{i},{43.30 + (i - 1) * 0.009:.4f},141.40,\n" for i in range(1, 31)) + "ST,駅,43.30,141.40,1\n"


def times(*rows: str) -> dict:
    return {"stop_times": H + "".join(r + "\n" for r in rows), "stops": STOPS}


CASES = [
    ("stop_time_with_arrival_before_previous_departure_time",
     times("T1,08:00:00,08:10:00,S1,1,,", "T1,08:05:00,08:05:00,S2,2,,"), times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:05:00,08:05:00,S2,2,,"), ["T1"]),
    ("stop_time_with_departure_before_arrival_time",
     times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:05:00,08:04:00,S2,2,,", "T1,08:10:00,08:10:00,S3,3,,"), {}, ["T1"]),
    ("stop_time_with_only_arrival_or_departure_time",
     times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:05:00,,S2,2,,", "T1,08:10:00,08:10:00,S3,3,,"),
     times("T1,08:00:00,08:00:00,S1,1,,", "T1,,,S2,2,,", "T1,08:10:00,08:10:00,S3,3,,"), ["T1"]),
    ("missing_trip_edge", times("T1,08:00:00,08:00:00,S1,1,,", "T1,,,S2,2,,"), times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:05:00,08:05:00,S2,2,,"), ["T1", "last"]),
    ("stop_time_timepoint_without_times",
     times("T1,08:00:00,08:00:00,S1,1,,1", "T1,,,S2,2,,1", "T1,08:10:00,08:10:00,S3,3,,1"),
     times("T1,08:00:00,08:00:00,S1,1,,1", "T1,,,S2,2,,0", "T1,08:10:00,08:10:00,S3,3,,1"), ["T1"]),
    ("missing_timepoint_value", times("T1,08:00:00,08:00:00,S1,1,,1", "T1,08:05:00,08:05:00,S2,2,,"), {"stop_times": OK}, ["T1"]),
    ("decreasing_or_equal_stop_time_distance", times("T1,08:00:00,08:00:00,S1,1,100,", "T1,08:05:00,08:05:00,S2,2,100,"),
     times("T1,08:00:00,08:00:00,S1,1,100,", "T1,08:05:00,08:05:00,S2,2,,", "T1,08:10:00,08:10:00,S3,3,900,"), ["T1", "S2"]),
    ("location_with_unexpected_stop_time", times("T1,08:00:00,08:00:00,ST,1,,", "T1,08:05:00,08:05:00,S2,2,,"),
     times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:05:00,08:05:00,S2,2,,"), ["T1", "ST"]),
    # 5 km in 1 minute: 150 km/h with MobilityData's minute of rounding allowance; 5 km in 3 minutes is fine.
    ("fast_travel_between_consecutive_stops", times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:01:00,08:01:00,S6,2,,"),
     times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:03:00,08:03:00,S6,2,,"), ["T1", "S1", "S6"]),
    # 20 km in 7 minutes (160 km/h over 8 minutes) through untimed stops; 20 km in 15 minutes is fine.
    ("fast_travel_between_far_stops", times("T1,08:00:00,08:00:00,S1,1,,", "T1,,,S11,2,,", "T1,08:07:00,08:07:00,S21,3,,"),
     times("T1,08:00:00,08:00:00,S1,1,,", "T1,,,S11,2,,", "T1,08:15:00,08:15:00,S21,3,,"), ["T1", "S1", "S21"]),
    # 2 km in one minute: 120 km/h > FeedValidator's 100 for a bus, below MobilityData's limit.
    ("too_fast_travel", times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:01:00,08:01:00,S3,2,,"),
     times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:02:00,08:02:00,S3,2,,"), ["T1", "停留所1", "停留所3"]),
    ("too_many_consecutive_stop_times_with_same_time", times(*[f"T1,08:00:00,08:00:00,S{i},{i},," for i in range(1, 7)]),
     times(*[f"T1,08:00:00,08:00:00,S{i},{i},," for i in range(1, 6)]), ["T1"]),
]


@pytest.mark.parametrize("code,bad,good,named", CASES, ids=[c[0] for c in CASES])
def test_stop_time_rule_reports_the_broken_feed_and_not_the_corrected_one(tmp_path, code, bad, good, named):
    picked = rule(RULES, code)
    hits = found(run(tmp_path / "bad", feed(**bad), picked), code)
    assert hits, f"{code} found nothing"
    assert all(any(n in h["message"] for h in hits) for n in named), hits
    assert code not in codes(run(tmp_path / "good", feed(**good), picked))


def test_every_stop_time_rule_has_a_case():
    assert {r.code for r in RULES} == {c[0] for c in CASES}


def test_arrival_is_compared_with_the_last_timed_departure_across_untimed_stops(tmp_path):
    bad = times("T1,08:00:00,08:10:00,S1,1,,", "T1,,,S2,2,,", "T1,08:05:00,08:05:00,S3,3,,")
    (hit,) = found(run(tmp_path, feed(**bad), rule(RULES, "stop_time_with_arrival_before_previous_departure_time")),
                   "stop_time_with_arrival_before_previous_departure_time")
    assert "stop_sequence 3" in hit["message"] and "stop_sequence 1" in hit["message"] and "08:10:00" in hit["message"]


def test_fast_travel_is_reported_once_not_by_both_speed_rules(tmp_path):
    # 10 km in one minute breaks both limits: MobilityData's rule reports it, FeedValidator's rule stays quiet.
    bad = times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:01:00,08:01:00,S11,2,,")
    result = run(tmp_path, feed(**bad), rule(RULES, "fast_travel_between_consecutive_stops") + rule(RULES, "too_fast_travel"))
    assert codes(result) == {"fast_travel_between_consecutive_stops"}


def test_zero_second_hop_is_too_fast_only_beyond_a_minute_at_top_speed(tmp_path):
    picked = rule(RULES, "too_fast_travel")
    far = times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:00:00,08:00:00,S3,2,,")  # 2 km in 0 s: more than 100 km/h for a minute
    near = times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:00:00,08:00:00,S2,2,,")  # 1 km in 0 s: times rounded to the minute
    assert codes(run(tmp_path / "far", feed(**far), picked)) == {"too_fast_travel"}
    assert not run(tmp_path / "near", feed(**near), picked).counts


def test_far_stops_are_reported_once_per_trip(tmp_path):
    rows = ["T1,08:00:00,08:00:00,S1,1,,", "T1,08:03:00,08:03:00,S12,2,,", "T1,08:06:00,08:06:00,S23,3,,", "T1,08:09:00,08:09:00,S30,4,,"]
    hits = found(run(tmp_path, feed(**times(*rows)), rule(RULES, "fast_travel_between_far_stops")), "fast_travel_between_far_stops")
    assert len(hits) == 1 and "stop_sequence 2" in hits[0]["message"]


def test_same_time_run_counts_untimed_stops_as_feedvalidator_does(tmp_path):
    # 3 timed stops at 08:00 with 3 untimed ones between: a run of 6, more than 5.
    rows = ["T1,08:00:00,08:00:00,S1,1,,", "T1,,,S2,2,,", "T1,08:00:00,08:00:00,S3,3,,", "T1,,,S4,4,,", "T1,,,S5,5,,",
            "T1,08:00:00,08:00:00,S6,6,,", "T1,08:30:00,08:30:00,S7,7,,"]
    (hit,) = found(run(tmp_path, feed(**times(*rows)), rule(RULES, "too_many_consecutive_stop_times_with_same_time")),
                   "too_many_consecutive_stop_times_with_same_time")
    assert "has 6 consecutive" in hit["message"] and "08:00:00" in hit["message"]


def test_speed_limits_are_parameters(tmp_path):
    slow = times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:03:00,08:03:00,S6,2,,")  # 5 km in 3 (+1) minutes: 75 km/h
    picked = rule(RULES, "fast_travel_between_consecutive_stops")
    assert not run(tmp_path / "a", feed(**slow), picked).counts
    assert run(tmp_path / "b", feed(**slow), picked, params={"max_speed_kmh": {3: 60}}).counts


def test_timepoint_column_in_the_header_is_what_makes_an_empty_timepoint_a_finding(tmp_path):
    # The header says the feed uses timepoint, even when no row fills it in (as MobilityData reads it).
    picked = rule(RULES, "missing_timepoint_value")
    all_empty = run(tmp_path / "empty", feed(**times("T1,08:00:00,08:00:00,S1,1,,", "T1,,,S2,2,,", "T1,08:10:00,08:10:00,S3,3,,")), picked)
    assert sorted(h["line"] for h in found(all_empty, "missing_timepoint_value")) == [2, 4]
    no_column = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\n"
    assert not run(tmp_path / "none", feed(stop_times=no_column, stops=STOPS), picked).counts


def test_an_extended_or_unknown_route_type_gets_mobilitydatas_200_kmh_not_a_bus_limit(tmp_path):
    # MobilityData's route_type enum has 0-7, 11 and 12 only; any other value (1501, a communal taxi, or 700, a bus
    # service) is UNRECOGNIZED and allowed 200 km/h, where a cable tram (5) is allowed 30 km/h.
    hop = times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:01:00,08:01:00,S4,2,,")  # 3 km in 1 (+1) minutes: 90 km/h
    dash = times("T1,08:00:00,08:00:00,S1,1,,", "T1,08:01:00,08:01:00,S8,2,,")  # 7 km in 2 minutes: 210 km/h
    picked = rule(RULES, "fast_travel_between_consecutive_stops")

    def routes(route_type: int) -> str:
        return f"route_id,agency_id,route_short_name,route_long_name,route_type\nR1,A,1,港線,{route_type}\n"

    assert not run(tmp_path / "taxi", feed(**hop, routes=routes(1501)), picked).counts
    assert not run(tmp_path / "bus700", feed(**hop, routes=routes(700)), picked).counts
    (hit,) = found(run(tmp_path / "fast", feed(**dash, routes=routes(1501)), picked), "fast_travel_between_consecutive_stops")
    assert "faster than 200 km/h for a route_type 1501" in hit["message"]
    assert run(tmp_path / "cable", feed(**hop, routes=routes(5)), picked).counts


def test_far_stops_look_past_a_first_stop_that_the_rounding_minute_saves(tmp_path):
    # S1 08:00 to S12 (11 km) 08:04: 165 km/h by the clock, but both times are whole minutes, so MobilityData divides by
    # 5 minutes (132 km/h, under a bus's 150): not reported, though the window's bound must keep S12 as a candidate.
    # S25 (24 km) 08:05 is the trip's first stop that truly ends such a leg; the leg reported starts at the latest stop
    # that makes it too fast: S12 (13 km in a minute, 390 km/h), not S1.
    rows = ["T1,08:00:00,08:00:00,S1,1,,", "T1,08:04:00,08:04:00,S12,2,,", "T1,08:05:00,08:05:00,S25,3,,"]
    (hit,) = found(run(tmp_path, feed(**times(*rows)), rule(RULES, "fast_travel_between_far_stops")), "fast_travel_between_far_stops")
    assert "from stop_id S12" in hit["message"] and "to stop_id S25" in hit["message"] and "(stop_sequence 3" in hit["message"]
    saved = ["T1,08:00:00,08:00:00,S1,1,,", "T1,08:04:00,08:04:00,S12,2,,", "T1,08:10:00,08:10:00,S25,3,,"]
    assert not run(tmp_path / "saved", feed(**times(*saved)), rule(RULES, "fast_travel_between_far_stops")).counts


def test_far_stops_of_a_trip_holding_every_stop_time_form_rows_in_proportion_to_it(tmp_path):
    """A hostile feed whose one trip holds all its stop times (times going back and forth) made the rule form every pair
    of far stops of the trip: n² rows, terabytes of spill for 3M stop times. Its query now forms at most a few rows per
    stop time, which DuckDB's profile of the query shows (largest operator output)."""
    from tests.transforms.rules._feed_b import DAY, largest_operator_rows, tables
    from transforms.rules import engine

    n = 3000
    rows = [f"T1,{8 + (k % 40) // 20:02d}:{(k * 7) % 60:02d}:00,{8 + (k % 40) // 20:02d}:{(k * 7) % 60:02d}:00,S{1 + (k * 13) % 30},{k},,"
            for k in range(n)]
    out, _ = tables(tmp_path, feed(**times(*rows)))
    result = run(tmp_path / "run", feed(**times(*rows)), rule(RULES, "fast_travel_between_far_stops"))
    assert sum(result.counts.values()) == 1  # the trip is reported, once
    con, present = engine.open_tables(out)
    ctx = engine.Context(validation_date=DAY, profile="gtfs", present=present)
    (picked,) = rule(RULES, "fast_travel_between_far_stops")
    rows_out = largest_operator_rows(con, picked.sql(ctx), tmp_path / "profile.json")
    assert n <= rows_out <= 10 * n, rows_out  # at least stop_times itself is read


def test_far_stops_of_long_trips_are_found_as_the_window_finds_them(tmp_path):
    """A trip longer than far_stops_long_trip_rows takes its candidates from a running minimum looked up as of the distance
    far_m back instead of DuckDB's RANGE window (superlinear in one huge partition): the same findings either way, on
    trips with repeated distances (a stop visited twice in a row), untimed stops and times going back and forth."""
    rows = []
    for t in range(3):
        for k in range(300):
            timed = k % 5 != 2
            clock = f"{8 + (k * 11 + t) % 3:02d}:{(k * 7 + t * 13) % 60:02d}:{(k % 2) * 30:02d}" if timed else ""
            stop = 1 + ((k // 2) * 13 + t) % 30  # each stop twice in a row: equal running distances
            rows.append(f"T{t},{clock},{clock},S{stop},{k},,")
    trips = "route_id,service_id,trip_id\n" + "".join(f"R1,WD,T{t}\n" for t in range(3))
    files = feed(**times(*rows), trips=trips)
    picked = rule(RULES, "fast_travel_between_far_stops")
    window = run(tmp_path / "window", files, picked, params={"far_stops_long_trip_rows": 10**9})
    running = run(tmp_path / "running", files, picked, params={"far_stops_long_trip_rows": 50})
    assert sum(window.counts.values()) == 3
    assert found(running, "fast_travel_between_far_stops") == found(window, "fast_travel_between_far_stops")


def _far_stops_statement(tmp_path, files: dict):
    """Return (a connection holding the feed ``files``' tables and the shared tables the rule asks for, the statement of
    fast_travel_between_far_stops over them)."""
    from tests.transforms.rules._feed_b import rule_statement

    return rule_statement(tmp_path, files, RULES, "fast_travel_between_far_stops")


def test_far_stops_pairs_are_formed_from_the_ends_not_from_the_whole_trip(tmp_path):
    """On a one-trip feed of 1.6M stop times DuckDB joined the trip to itself before cutting it to the trip's ends (n² rows:
    minutes at 1.6M, more than 10 at 3M). The ends are a materialised CTE, which the optimiser cannot reorder: in the plan
    (the stop-time pass a shared table, as run_rules builds it) the trip's self-join reads that CTE on one side, whatever
    the row estimates are."""
    import json

    rows = [f"T1,{8 + (k % 40) // 20:02d}:{(k * 7) % 60:02d}:00,{8 + (k % 40) // 20:02d}:{(k * 7) % 60:02d}:00,S{1 + (k * 13) % 30},{k},,"
            for k in range(300)]
    con, sql = _far_stops_statement(tmp_path, feed(**times(*rows)))
    plan = json.loads(con.execute("EXPLAIN (FORMAT json) " + sql).fetchall()[0][1])

    def below_projections(node):
        while node.get("name") == "PROJECTION" and len(node.get("children") or []) == 1:
            node = node["children"][0]
        return node.get("name")

    def self_joins(node):
        if isinstance(node, list):
            return [j for c in node for j in self_joins(c)]
        conds = node.get("extra_info", {}).get("Conditions")
        first = conds if isinstance(conds, str) else (conds or [""])[0]
        mine = [node] if node.get("name") == "HASH_JOIN" and first == "(r - i) = (r - i)" else []
        return mine + self_joins(node.get("children") or [])

    joins = self_joins(plan)
    assert joins  # the pairs of the trips' ends
    for j in joins:
        assert "CTE_SCAN" in [below_projections(c) for c in j["children"]], [below_projections(c) for c in j["children"]]


def test_far_stops_ends_are_looked_up_without_hashing_every_stop_time(tmp_path):
    """The rows of the trips' first far ends (``firsts``) are joined to the stop-time pass on its position r. When the ends
    came out of a join's GROUP BY, DuckDB estimated them above the pass and built its hash table on every stop time (all
    7.1M rows of Vilnius ×16, for no finding); as a filter of the ends they are the hash table, and with no end the pass
    is not read for them. DuckDB's profile: no join on r = r hashes as many rows as the feed has stop times. (DuckDB picks
    the side by its estimates, which only went wrong at ×16's size: this guards the plan, the ×16 profile showed the fault.)"""
    import json

    trips, stops = 200, 60  # back and forth along the line, 1 km a minute: long trips with far stops, none too fast
    clock = [f"{8 + k // 60:02d}:{k % 60:02d}:00" for k in range(stops)]
    rows = [f"T{t},{clock[k]},{clock[k]},S{1 + min(k % 58, 58 - k % 58)},{k},," for t in range(trips) for k in range(stops)]
    files = feed(**times(*rows), trips="route_id,service_id,trip_id\n" + "".join(f"R1,WD,T{t}\n" for t in range(trips)))
    con, sql = _far_stops_statement(tmp_path, files)
    profile = tmp_path / "profile.json"
    con.execute("PRAGMA enable_profiling='json'")
    con.execute(f"PRAGMA profiling_output='{profile}'")
    assert con.execute(sql).fetchall() == []  # 1 km a minute: nothing too fast
    con.execute("PRAGMA disable_profiling")

    def joins_on_r(node):
        if isinstance(node, list):
            return [j for c in node for j in joins_on_r(c)]
        conds = (node.get("extra_info") or {}).get("Conditions")
        mine = [node] if node.get("type", node.get("name")) == "HASH_JOIN" and conds == "r = r" else []
        return mine + joins_on_r(node.get("children") or [])

    def rows_out(node) -> int:
        return int(node.get("intermediate_rows") or node.get("operator_cardinality") or 0)

    joins = joins_on_r(json.loads(profile.read_text())["operator"])
    assert joins
    for j in joins:  # children: the probe side, then the side hashed
        assert rows_out(j["children"][1]) < len(rows), [rows_out(c) for c in j["children"]]
