"""Shape matching's trip patterns: the keys computed once per class of trips are every trip's own key."""

import pytest

from tests.transforms.rules._feed_b import feed, tables
from transforms.rules import shape_matching
from transforms.rules.engine import open_tables

#: Each trip's key as its definition computes it: the ordered aggregate of every trip.
DEFINED = ("pk AS (SELECT tp.trip_id, tp.shape_id, any_value(tp.route_type) AS route_type, "
           f"{shape_matching._KEY} AS key FROM tp JOIN stop_times st USING (trip_id) GROUP BY tp.trip_id, tp.shape_id)")
ST = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled,location_group_id\n"
SH = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\nA,43.30,141.40,1\nA,43.31,141.41,2\nB,43.30,141.40,1\nB,43.31,141.41,2\n"


def _keys(tmp_path, stop_times: str, trips: str, *, pk: str):
    out, _ = tables(tmp_path, feed(stop_times=ST + stop_times, trips="route_id,service_id,trip_id,shape_id\n" + trips,
                                   shapes=SH, location_groups="location_group_id,location_id,location_group_name\nG,,区域\n"))
    con, _ = open_tables(out)
    s = shape_matching._pairs_sql()
    return con.sql(f"WITH {s[:s.index('fp AS')]}{pk} SELECT trip_id, shape_id, route_type, key FROM pk ORDER BY trip_id").fetchall()


@pytest.mark.parametrize("stop_times,patterns", [
    # T1 and T2 one pattern, T3 too with a flexible stop time (no stop_id) between, T4 other distances, T5 other stops,
    # T6 only a flexible stop time, T7 on shape B.
    ("T1,08:00:00,08:00:00,S1,1,0,\nT1,08:10:00,08:10:00,S2,2,1365,\nT2,09:00:00,09:00:00,S1,1,0,\nT2,09:10:00,09:10:00,S2,2,1365,\n"
    "T3,10:00:00,10:00:00,S1,1,0,\nT3,,,,2,,G\nT3,10:10:00,10:10:00,S2,3,1365,\nT4,11:00:00,11:00:00,S1,1,0,\n"
    "T4,11:10:00,11:10:00,S2,2,1366,\nT5,12:00:00,12:00:00,S2,1,0,\nT5,12:10:00,12:10:00,S1,2,1365,\nT6,,,,1,,G\n"
    "T7,13:00:00,13:00:00,S1,1,0,\nT7,13:10:00,13:10:00,S2,2,1365,\n", 5),
    # the same distance written 0 and -0 (equal numbers, different text in the key)
    ("T1,08:00:00,08:00:00,S1,1,0,\nT1,08:10:00,08:10:00,S2,2,1365,\nT2,09:00:00,09:00:00,S1,1,-0,\nT2,09:10:00,09:10:00,S2,2,1365,\n", 2),
])
def test_pattern_keys_are_each_trips_own_key(tmp_path, stop_times, patterns):
    trips = "R1,WD,T1,A\nR1,WD,T2,A\nR1,WD,T3,A\nR1,WD,T4,A\nR1,WD,T5,A\nR1,WD,T6,A\nR1,WD,T7,B\n"
    got = _keys(tmp_path / "new", stop_times, trips, pk=shape_matching._pattern_keys())
    assert got == _keys(tmp_path / "defined", stop_times, trips, pk=DEFINED)
    assert len({k for *_, k in got}) == patterns
