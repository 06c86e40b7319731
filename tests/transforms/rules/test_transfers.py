"""Transfer, frequency, pathway, level and attribution rules: each finds a tiny broken feed and stays quiet on its corrected twin."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.transfers import RULES

TF = "from_stop_id,to_stop_id,from_route_id,to_route_id,from_trip_id,to_trip_id,transfer_type\n"
STOPS = ("stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\nS1,港前,43.30,141.40,,ST\nS2,駅前,43.31,141.41,,\n"
         "ST,港駅,43.30,141.40,1,\nE1,港駅入口,43.30,141.40,2,ST\nFAR,遠い,43.50,141.40,,\nMID,やや遠い,43.33,141.40,,\n")
TRIPS = "route_id,service_id,trip_id\nR1,WD,T1\nR1,WD,T2\nR2,WD,T3\n"
ROUTES = "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\nR2,A,2,3\n"
ST = ("trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\n"
      "T2,08:20:00,08:20:00,S2,1\nT2,08:30:00,08:30:00,S1,2\nT3,09:00:00,09:00:00,FAR,1\nT3,09:10:00,09:10:00,MID,2\n")
BASE = {"stops": STOPS, "trips": TRIPS, "routes": ROUTES, "stop_times": ST}
FREQ = "trip_id,start_time,end_time,headway_secs\n"
PW = "pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional\n"
ATT = "attribution_id,organization_name,is_producer,is_operator,is_authority\n"


def transfers(*rows: str) -> dict:
    return {**BASE, "transfers": TF + "".join(r + "\n" for r in rows)}


CASES = [
    ("transfer_with_invalid_stop_location_type", transfers("E1,S2,,,,,2"), transfers("ST,S2,,,,,2"), ["E1"]),
    ("transfer_with_invalid_trip_and_route", transfers("S2,S2,R2,,T1,T2,1"), transfers("S2,S2,R1,,T1,T2,1"), ["T1", "R2"]),
    ("transfer_with_invalid_trip_and_stop", transfers("FAR,S2,,,T1,T2,1"), transfers("ST,S2,,,T1,T2,1"), ["T1", "FAR"]),
    ("transfer_with_suspicious_mid_trip_in_seat", transfers("S1,S2,,,T1,T2,4"), transfers("S2,S2,,,T1,T2,4"), ["T1", "S1"]),
    ("transfer_distance_too_large", transfers("S1,FAR,,,,,2"), transfers("S1,S2,,,,,2"), ["S1", "FAR"]),
    ("transfer_distance_above_2_km", transfers("S1,MID,,,,,2"), transfers("S1,S2,,,,,2"), ["S1", "MID"]),
    ("overlapping_frequency", {"frequencies": FREQ + "T1,06:00:00,08:00:00,600\nT1,07:30:00,09:00:00,600\n"},
     {"frequencies": FREQ + "T1,06:00:00,08:00:00,600\nT1,08:00:00,09:00:00,600\n"}, ["T1", "07:30:00"]),
    ("pathway_to_wrong_location_type", {**BASE, "pathways": PW + "P1,E1,ST,1,1\n"}, {**BASE, "pathways": PW + "P1,E1,S1,1,1\n"}, ["P1", "ST"]),
    ("pathway_loop", {**BASE, "pathways": PW + "P1,E1,E1,1,1\n"}, {**BASE, "pathways": PW + "P1,E1,S1,1,1\n"}, ["P1", "E1"]),
    ("bidirectional_exit_gate", {**BASE, "pathways": PW + "P1,S1,E1,7,1\n"}, {**BASE, "pathways": PW + "P1,S1,E1,7,0\n"}, ["P1"]),
    ("missing_level_id", {**BASE, "pathways": PW + "P1,S1,E1,1,1\n", "levels": "level_id,level_index\nL0,0\n"},
     {**BASE, "pathways": PW + "P1,S1,E1,1,1\n", "levels": "level_id,level_index\nL0,0\n",
      "stops": STOPS.replace("parent_station\n", "parent_station,level_id\n").replace(",ST\n", ",ST,L0\n").replace(",\n", ",,\n")}, ["S1", "E1"]),
    ("attribution_without_role", {"attributions": ATT + "A1,みなと市,0,,\n"}, {"attributions": ATT + "A1,みなと市,0,,1\n"}, ["A1"]),
]


@pytest.mark.parametrize("code,bad,good,named", CASES, ids=[c[0] for c in CASES])
def test_transfer_rule_reports_the_broken_feed_and_not_the_corrected_one(tmp_path, code, bad, good, named):
    picked = rule(RULES, code)
    hits = found(run(tmp_path / "bad", feed(**bad), picked), code)
    assert hits, f"{code} found nothing"
    assert all(any(n in h["message"] for h in hits) for n in named), hits
    assert code not in codes(run(tmp_path / "good", feed(**good), picked))


def test_every_transfer_rule_has_a_case():
    assert {r.code for r in RULES} == {c[0] for c in CASES}
