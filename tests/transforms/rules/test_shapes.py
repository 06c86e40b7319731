"""Shape rules: each finds a tiny broken feed and stays quiet on its corrected twin."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.shapes import RULES

SH = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
#: The shape of T1, from S1 (43.30, 141.40) to S2 (43.31, 141.41), about 1365 m.
LINE = SH + "SH,43.30,141.40,1,0\nSH,43.305,141.405,2,682\nSH,43.31,141.41,3,1365\n"
TRIPS = "route_id,service_id,trip_id,shape_id\nR1,WD,T1,SH\n"
ST = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n"


def with_shape(shapes: str = LINE, stop_times: str | None = None, stops: str | None = None) -> dict:
    files = {"shapes": shapes, "trips": TRIPS}
    if stop_times:
        files["stop_times"] = ST + stop_times
    if stops:
        files["stops"] = stops
    return files


CASES = [
    ("decreasing_shape_distance", with_shape(SH + "SH,43.30,141.40,1,0\nSH,43.305,141.405,2,682\nSH,43.31,141.41,3,600\n"), with_shape(), ["SH"]),
    ("equal_shape_distance_same_coordinates", with_shape(SH + "SH,43.30,141.40,1,0\nSH,43.30,141.40,2,0\nSH,43.31,141.41,3,1365\n"), with_shape(), ["SH"]),
    ("equal_shape_distance_diff_coordinates", with_shape(SH + "SH,43.30,141.40,1,0\nSH,43.305,141.405,2,0\nSH,43.31,141.41,3,1365\n"), with_shape(), ["SH"]),
    ("equal_shape_distance_diff_coordinates_distance_below_threshold",
     with_shape(SH + "SH,43.30,141.40,1,0\nSH,43.300005,141.40,2,0\nSH,43.31,141.41,3,1365\n"), with_shape(), ["SH"]),
    ("unused_shape", with_shape(LINE + "OLD,43.30,141.40,1,0\nOLD,43.31,141.41,2,1365\n"), with_shape(), ["OLD"]),
    ("single_shape_point", with_shape(LINE + "DOT,43.30,141.40,1,0\n"), with_shape(), ["DOT"]),
    ("trip_distance_exceeds_shape_distance",
     with_shape(stop_times="T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,1500\n",
                stops="stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.32,141.42\n"),
     with_shape(stop_times="T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,1365\n"), ["T1", "SH"]),
    ("trip_distance_exceeds_shape_distance_below_threshold",
     with_shape(stop_times="T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,1366\n"),
     with_shape(stop_times="T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,1365\n"), ["T1", "SH"]),
    ("trip_with_shape_dist_traveled_but_no_shape_distances",
     with_shape(SH + "SH,43.30,141.40,1,\nSH,43.31,141.41,2,\n", stop_times="T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,1365\n"),
     with_shape(stop_times="T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,1365\n"), ["T1", "SH"]),
    ("stop_too_far_from_shape", with_shape(stops="stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.43\n"),
     with_shape(stops="stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.3051,141.4050\n"), ["S2", "SH"]),
]


@pytest.mark.parametrize("code,bad,good,named", CASES, ids=[c[0] for c in CASES])
def test_shape_rule_reports_the_broken_feed_and_not_the_corrected_one(tmp_path, code, bad, good, named):
    picked = rule(RULES, code)
    hits = found(run(tmp_path / "bad", feed(**bad), picked), code)
    assert hits, f"{code} found nothing"
    assert all(any(n in h["message"] for h in hits) for n in named), hits
    assert code not in codes(run(tmp_path / "good", feed(**good), picked))


def test_every_shape_rule_has_a_case():
    assert {r.code for r in RULES} == {c[0] for c in CASES}


def test_stop_distance_to_shape_is_measured_to_the_segment_not_the_points(tmp_path):
    # A stop in the middle of a 2 km straight segment is on the shape, although 1 km from both of its points.
    shapes = SH + "SH,43.30,141.40,1,\nSH,43.318,141.40,2,\n"
    stops = "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.309,141.4001\n"
    assert not run(tmp_path, feed(**with_shape(shapes, stops=stops)), rule(RULES, "stop_too_far_from_shape")).counts


def test_stop_too_far_from_shape_counts_a_trip_calling_twice_once(tmp_path):
    # T1 calls at the misplaced S2 twice (a loop), T2 once and its lines come first in the file: two trips, the first line 2.
    stops = "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.43\n"
    files = with_shape(stops=stops, stop_times="T2,09:00:00,09:00:00,S2,1,\nT1,08:00:00,08:00:00,S1,1,\n"
                       "T1,08:10:00,08:10:00,S2,2,\nT1,08:20:00,08:20:00,S2,3,\nT1,08:30:00,08:30:00,S1,4,\n")
    files["trips"] = TRIPS + "R1,WD,T2,SH\n"
    hits = found(run(tmp_path, feed(**files), rule(RULES, "stop_too_far_from_shape")), "stop_too_far_from_shape")
    assert [(h["line"], h["value"]) for h in hits] == [(2, "S2")]
    assert "of the 2 trip(s) calling there (e.g. trip_id T1)" in hits[0]["message"], hits


def test_stop_too_far_from_shape_groups_stop_times_by_shape_without_joining_each_to_trips(tmp_path):
    """The stop-time pass carries each trip's shape by number, so the rule groups the stop times on it and names only the
    groups' shapes: no join puts out a row per stop time (at ×16 all 7.1M stop times went through a join with trips, most of
    the rule). A trip whose route is missing still counts (its shape is its trip's, not its route's), and two shapes stay
    apart."""
    import json

    from tests.transforms.rules._feed_b import rule_statement

    stops = "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.43\n"
    rows = "".join(f"T{t},08:00:00,08:00:00,S1,1,\nT{t},08:10:00,08:10:00,S2,2,\n" for t in range(40))
    files = with_shape(LINE + "SH2,43.30,141.40,1,0\nSH2,43.31,141.41,2,1365\n", stops=stops, stop_times=rows)
    files["trips"] = "route_id,service_id,trip_id,shape_id\n" + "".join(
        f"{'R1' if t else 'NOROUTE'},WD,T{t},{'SH' if t % 2 else 'SH2'}\n" for t in range(40))
    hits = found(run(tmp_path / "run", feed(**files), rule(RULES, "stop_too_far_from_shape")), "stop_too_far_from_shape")
    assert sorted((h["value"], h["message"].split(" trip(s)")[0].split("of the ")[-1], h["message"].split("e.g. trip_id ")[1][:3])
                  for h in hits) == [("S2", "20", "T0)"), ("S2", "20", "T1)")]

    con, sql = rule_statement(tmp_path, feed(**files), RULES, "stop_too_far_from_shape")
    profile = tmp_path / "profile.json"
    con.execute("PRAGMA enable_profiling='json'")
    con.execute(f"PRAGMA profiling_output='{profile}'")
    con.execute(sql).fetchall()
    con.execute("PRAGMA disable_profiling")

    def joins(node):
        if isinstance(node, list):
            return [j for c in node for j in joins(c)]
        mine = [node] if "JOIN" in str(node.get("type", node.get("name"))) else []
        return mine + joins(node.get("children") or [])

    out_rows = [int(j.get("intermediate_rows") or j.get("operator_cardinality") or 0) for j in joins(json.loads(profile.read_text())["operator"])]
    assert max(out_rows) < 80, out_rows  # 80 stop times
