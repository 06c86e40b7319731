"""Stop rules: each finds a tiny broken feed and stays quiet on its corrected twin."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.stops import RULES

H = "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
BASE = "S1,港前,43.30,141.40,0,\nS2,駅前,43.31,141.41,0,\n"
STATION = "ST,港駅,43.3001,141.4001,1,\n"

# (code, files of the bad feed, files of the good feed, ids the notice must name)
CASES = [
    ("stop_without_location", {"stops": H + "S1,港前,,,0,\nS2,駅前,43.31,141.41,0,\n"}, {}, ["S1"]),
    ("missing_stop_name", {"stops": H + "S1,,43.30,141.40,0,\nS2,駅前,43.31,141.41,0,\n"}, {}, ["S1"]),
    ("point_near_origin", {"stops": H + "S1,港前,0.1,0.2,0,\nS2,駅前,43.31,141.41,0,\n"}, {}, ["S1"]),
    ("point_near_pole", {"stops": H + "S1,港前,89.5,141.4,0,\nS2,駅前,43.31,141.41,0,\n"}, {}, ["S1"]),
    ("location_without_parent_station", {"stops": H + BASE + "E1,入口,43.30,141.40,2,\n"},
     {"stops": H + BASE + STATION + "E1,入口,43.30,141.40,2,ST\n"}, ["E1"]),
    ("station_with_parent_station", {"stops": H + BASE + "ST,港駅,43.30,141.40,1,ST2\nST2,港,43.30,141.40,1,\n"},
     {"stops": H + BASE + STATION}, ["ST"]),
    ("wrong_parent_location_type", {"stops": H + "S1,港前,43.30,141.40,0,S2\nS2,駅前,43.31,141.41,0,\n"},
     {"stops": H + "S1,港前,43.30,141.40,0,ST\nS2,駅前,43.31,141.41,0,\n" + STATION}, ["S1", "S2"]),
    ("platform_without_parent_station", {"stops": "stop_id,stop_name,stop_lat,stop_lon,platform_code\nS1,港前,43.30,141.40,1\nS2,駅前,43.31,141.41,\n"},
     {}, ["S1"]),
    ("stop_without_zone_id", {"stops": "stop_id,stop_name,stop_lat,stop_lon,zone_id\nS1,港前,43.30,141.40,Z1\nS2,駅前,43.31,141.41,\n",
                              "fare_attributes": "fare_id,price,currency_type,payment_method\nF,200,JPY,0\n",
                              "fare_rules": "fare_id,origin_id\nF,Z1\n"},
     {"stops": "stop_id,stop_name,stop_lat,stop_lon,zone_id\nS1,港前,43.30,141.40,Z1\nS2,駅前,43.31,141.41,Z2\n",
      "fare_attributes": "fare_id,price,currency_type,payment_method\nF,200,JPY,0\n", "fare_rules": "fare_id,origin_id\nF,Z1\n"}, ["S2"]),
    ("same_name_and_description_for_stop", {"stops": "stop_id,stop_name,stop_desc,stop_lat,stop_lon\nS1,港前,港前,43.30,141.40\nS2,駅前,,43.31,141.41\n"},
     {"stops": "stop_id,stop_name,stop_desc,stop_lat,stop_lon\nS1,港前,港の東側,43.30,141.40\nS2,駅前,,43.31,141.41\n"}, ["S1"]),
    ("same_stop_and_agency_url", {"stops": "stop_id,stop_name,stop_lat,stop_lon,stop_url\nS1,港前,43.30,141.40,https://example.jp\nS2,駅前,43.31,141.41,\n"},
     {"stops": "stop_id,stop_name,stop_lat,stop_lon,stop_url\nS1,港前,43.30,141.40,https://example.jp/s1\nS2,駅前,43.31,141.41,\n"}, ["S1"]),
    ("same_stop_and_route_url", {"stops": "stop_id,stop_name,stop_lat,stop_lon,stop_url\nS1,港前,43.30,141.40,https://example.jp/r1\nS2,駅前,43.31,141.41,\n",
                                 "routes": "route_id,agency_id,route_short_name,route_type,route_url\nR1,A,1,3,https://example.jp/r1\n"},
     {"routes": "route_id,agency_id,route_short_name,route_type,route_url\nR1,A,1,3,https://example.jp/r1\n"}, ["S1", "R1"]),
    ("stop_without_stop_time", {"stops": H + BASE + "S3,山手,43.32,141.42,0,\n"}, {}, ["S3"]),
    ("unused_parent_station", {"stops": H + BASE + STATION}, {"stops": H + "S1,港前,43.30,141.40,0,ST\nS2,駅前,43.31,141.41,0,\n" + STATION}, ["ST"]),
    ("unused_station", {"stops": H + BASE + STATION + "S3,港駅のりば,43.3001,141.4001,0,ST\n"},
     {"stops": H + "S1,港前,43.30,141.40,0,ST\nS2,駅前,43.31,141.41,0,\n" + STATION}, ["ST"]),
    ("stop_too_far_from_parent_station", {"stops": H + "S1,港前,43.305,141.40,0,ST\nS2,駅前,43.31,141.41,0,\n" + STATION},
     {"stops": H + "S1,港前,43.30,141.40,0,ST\nS2,駅前,43.31,141.41,0,\n" + STATION}, ["S1", "ST"]),
    ("stops_too_close", {"stops": H + BASE + "S3,港前２,43.300005,141.400005,0,\n"}, {"stops": H + BASE + "S3,港前２,43.3001,141.40,0,\n"}, ["S1", "S3"]),
]


@pytest.mark.parametrize("code,bad,good,named", CASES, ids=[c[0] for c in CASES])
def test_stop_rule_reports_the_broken_feed_and_not_the_corrected_one(tmp_path, code, bad, good, named):
    picked = rule(RULES, code)
    hits = found(run(tmp_path / "bad", feed(**bad), picked), code)
    assert hits, f"{code} found nothing"
    assert all(any(n in h["message"] for h in hits) for n in named), hits
    assert code not in codes(run(tmp_path / "good", feed(**good), picked))


def test_every_stop_rule_has_a_case():
    assert {r.code for r in RULES} == {c[0] for c in CASES}


@pytest.mark.parametrize("lon", ["141.4000000", "141.3999999"])
def test_stops_too_close_are_found_across_a_grid_cell_boundary(tmp_path, lon):
    # Two stops 1 m apart on either side of any cell edge are still compared (neighbouring cells are searched).
    stops = H + "S1,港前,43.30,141.40,0,\nS2,駅前,43.31,141.41,0,\n" + f"S3,港前２,43.300009,{lon},0,\nS4,遠く,35.0,135.0,0,\n"
    (hit,) = found(run(tmp_path, feed(stops=stops), rule(RULES, "stops_too_close")), "stops_too_close")
    assert "S1" in hit["message"] and "S3" in hit["message"] and " m apart" in hit["message"]


def test_a_stop_beside_its_own_parent_station_is_not_too_close(tmp_path):
    stops = H + "S1,港前,43.30,141.40,0,ST\nS2,駅前,43.31,141.41,0,\nST,港駅,43.30,141.40,1,\nSX,別の駅,43.30,141.40,1,\n"
    hits = found(run(tmp_path, feed(stops=stops), rule(RULES, "stops_too_close")), "stops_too_close")
    pairs = {tuple(sorted(x for x in ("S1", "ST", "SX") if f"stop_id {x} " in h["message"])) for h in hits}
    assert pairs == {("S1", "SX"), ("ST", "SX")}


def test_stops_too_close_distance_is_a_parameter(tmp_path):
    stops = H + BASE + "S3,港前２,43.3001,141.40,0,\n"  # about 11 m from S1
    picked = rule(RULES, "stops_too_close")
    assert not run(tmp_path / "a", feed(stops=stops), picked).counts
    assert run(tmp_path / "b", feed(stops=stops), picked, params={"stops_too_close_m": 20}).counts
