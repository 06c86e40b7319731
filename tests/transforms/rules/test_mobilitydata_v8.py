"""MobilityData v8.0.1 rules added in issue 18 (names, service window, stop_times order, ferries, in-seat transfers,
networks, pathways, timeframes, Fares v2): each finds a tiny broken feed and stays quiet on its corrected twin."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules import fares_v2, mobilitydata_v8, pathways, shape_matching, timeframes

RULES = [*mobilitydata_v8.RULES, *shape_matching.RULES, *pathways.RULES, *timeframes.RULES, *fares_v2.RULES]

CAL = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
ROUTES = "route_id,agency_id,route_short_name,route_long_name,route_type\n"
ST = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
PW_STOPS = ("stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
            "ST,駅,43.30,141.40,1,\nE1,入口,43.30,141.40,2,ST\nP1,1番のりば,43.30,141.40,0,ST\n"
            "P2,2番のりば,43.30,141.40,0,ST\nB1,乗車位置,43.30,141.40,4,P2\nN1,結節点,43.30,141.40,3,ST\n"
            "S1,港前,43.30,141.40,,\nS2,駅前,43.31,141.41,,\n")
PW = "pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional\n"
TF = "timeframe_group_id,start_time,end_time,service_id\n"
FTR = "from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type\n"
RC = "rider_category_id,rider_category_name,is_default_fare_category\nADULT,大人,1\nCHILD,小児,1\nSENIOR,高齢者,0\n"
FP = "fare_product_id,fare_product_name,rider_category_id,amount,currency\n"
FM = "fare_media_id,fare_media_name,fare_media_type\n"
TRANSFERS = "from_stop_id,to_stop_id,from_trip_id,to_trip_id,transfer_type\n"


SH = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
SHAPED = {"trips": "route_id,service_id,trip_id,shape_id\nR1,WD,T1,SH\n"}


def shaped(points: str, stop_times: str | None = None, **more) -> dict:
    """Return a feed whose trip T1 (S1 then S2) follows shape SH of the given points (lat,lon,seq,dist lines)."""
    out = {**SHAPED, "shapes": SH + "".join(f"SH,{p}\n" for p in points.split(";")), **more}
    if stop_times:
        out["stop_times"] = stop_times
    return out


UD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n"


def pw(*rows: str) -> dict:
    return {"stops": PW_STOPS, "pathways": PW + "".join(r + "\n" for r in rows)}


def access(row: str, *, pathway: str | None = None) -> dict:
    """Return the pathway feed with a stop_access column and one more stops.txt row (``row`` ends with its stop_access)."""
    lines = PW_STOPS.splitlines()
    stops = "\n".join([lines[0] + ",stop_access", *(l + "," for l in lines[1:]), row]) + "\n"
    return {"stops": stops, "pathways": PW + "W1,E1,P1,1,1\n" + (pathway + "\n" if pathway else "")}


def two_modes(route_type: int) -> dict:
    return {"routes": ROUTES + f"R1,A,1,港線,3\nR2,A,2,港航路,{route_type}\n",
            "trips": "route_id,service_id,trip_id\nR1,WD,T1\nR2,WD,T2\n",
            "stop_times": ST + "T1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\n"
                               "T2,08:10:00,08:10:00,S2,1\nT2,08:20:00,08:20:00,S1,2\n",
            "transfers": TRANSFERS + "S2,S2,T1,T2,4\n"}


CASES = [
    ("stop_has_too_many_matches_for_shape", shaped("43.30,141.40,1,;43.31,141.41,2,;43.30,141.40,3,"),
     shaped("43.30,141.40,1,;43.31,141.41,2,"), ["S1", "2 separate places"]),
    ("stops_match_shape_out_of_order", shaped("43.31,141.41,1,;43.30,141.40,2,"), shaped("43.30,141.40,1,;43.31,141.41,2,"), ["S2", "S1"]),
    ("stop_too_far_from_shape_using_user_distance",
     shaped("43.30,141.40,1,0;43.31,141.41,2,1360", UD + "T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,700\n"),
     shaped("43.30,141.40,1,0;43.31,141.41,2,1360", UD + "T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,1360\n"), ["S2"]),
    ("mixed_case_recommended_field", {"stops": "stop_id,stop_name,stop_lat,stop_lon\nS1,MAIN STREET,43.30,141.40\nS2,駅前,43.31,141.41\n"},
     {"stops": "stop_id,stop_name,stop_lat,stop_lon\nS1,Main Street 港前,43.30,141.40\nS2,駅前 ONE,43.31,141.41\n"}, ["MAIN STREET"]),
    ("leading_or_trailing_whitespaces", {"routes": ROUTES + "R1,A,1,港線 ,3\n"}, {"routes": ROUTES + "R1,A,1,港線,3\n"}, ["route_long_name"]),
    ("future_calendar", {"calendar": CAL + "WD,1,1,1,1,1,0,0,20260701,20270331\n"},
     {"calendar": CAL + "WD,1,1,1,1,1,0,0,20260401,20270331\n"}, ["2026-07-01"]),
    ("service_extends_far_in_the_future", {"calendar": CAL + "WD,1,1,1,1,1,0,0,20260401,20290331\n"},
     {"calendar": CAL + "WD,1,1,1,1,1,0,0,20260401,20280331\n"}, ["WD", "2029-03-31"]),
    ("unsorted_stop_times", {"stop_times": ST + "T1,24:10:00,24:10:00,S2,2\nT1,08:00:00,08:00:00,S1,1\n"},
     {"stop_times": ST + "T1,08:00:00,08:00:00,S1,1\nT1,24:10:00,24:10:00,S2,2\n"}, ["T1"]),
    ("missing_bike_allowance", {"routes": ROUTES + "R1,A,1,港航路,4\n"},
     {"routes": ROUTES + "R1,A,1,港航路,4\n", "trips": "route_id,service_id,trip_id,bikes_allowed\nR1,WD,T1,2\n"}, ["T1"]),
    ("inconsistent_route_type_for_in_seat_transfer", two_modes(4), two_modes(3), ["T1", "T2"]),
    ("route_networks_specified_in_more_than_one_file",
     {"routes": "route_id,agency_id,route_short_name,route_type,network_id\nR1,A,1,3,N\n", "networks": "network_id\nN\n",
      "route_networks": "network_id,route_id\nN,R1\n"},
     {"networks": "network_id\nN\n", "route_networks": "network_id,route_id\nN,R1\n"}, ["network_id"]),
    ("pathway_to_platform_with_boarding_areas", pw("W1,E1,P2,1,1"), pw("W1,E1,B1,1,1"), ["W1", "P2"]),
    ("pathway_unreachable_location", pw("W1,E1,P1,1,0", "W2,E1,B1,1,1", "W3,E1,N1,1,1"),
     pw("W1,E1,P1,1,1", "W2,E1,B1,1,1", "W3,E1,N1,1,1"), ["P1", "exit"]),
    ("stop_access_specified_for_stop_with_no_parent_station", access("S3,港北,43.30,141.40,,,1"),
     access("S3,港北,43.30,141.40,,,"), ["S3", "no parent_station"]),
    ("stop_access_specified_for_incorrect_location", access("E2,北口,43.30,141.40,2,ST,1"),
     access("P3,3番のりば,43.30,141.40,0,ST,1"), ["E2", "location_type 2"]),
    ("pathway_to_stop_with_access_outside_of_station_pathways", access("P3,3番のりば,43.30,141.40,0,ST,1", pathway="W2,P3,P1,1,1"),
     access("P3,3番のりば,43.30,141.40,0,ST,1"), ["W2", "P3"]),
    ("pathway_dangling_generic_node", pw("W1,E1,P1,1,1", "W2,E1,N1,1,1"), pw("W1,E1,N1,1,1", "W2,N1,P1,1,1"), ["N1"]),
    ("timeframe_only_start_or_end_time_specified", {"timeframes": TF + "PEAK,07:00:00,,WD\n"},
     {"timeframes": TF + "PEAK,07:00:00,09:00:00,WD\n"}, ["PEAK"]),
    ("timeframe_start_or_end_time_greater_than_twenty_four_hours", {"timeframes": TF + "NIGHT,22:00:00,25:00:00,WD\n"},
     {"timeframes": TF + "NIGHT,22:00:00,24:00:00,WD\n"}, ["25:00:00"]),
    ("timeframe_overlap", {"timeframes": TF + "PEAK,07:00:00,09:00:00,WD\nPEAK,08:30:00,10:00:00,WD\n"},
     {"timeframes": TF + "PEAK,07:00:00,09:00:00,WD\nPEAK,09:00:00,10:00:00,WD\n"}, ["PEAK", "08:30:00"]),
    ("fare_transfer_rule_duration_limit_type_without_duration_limit", {"fare_transfer_rules": FTR + "G1,G2,,,1,0\n"},
     {"fare_transfer_rules": FTR + "G1,G2,,5400,1,0\n"}, ["duration_limit_type"]),
    ("fare_transfer_rule_duration_limit_without_type", {"fare_transfer_rules": FTR + "G1,G2,,5400,,0\n"},
     {"fare_transfer_rules": FTR + "G1,G2,,5400,1,0\n"}, ["5400"]),
    ("fare_transfer_rule_invalid_transfer_count", {"fare_transfer_rules": FTR + "G1,G1,0,,,0\n"},
     {"fare_transfer_rules": FTR + "G1,G1,-1,,,0\n"}, ["transfer_count 0"]),
    ("fare_transfer_rule_with_forbidden_transfer_count", {"fare_transfer_rules": FTR + "G1,G2,2,,,0\n,,1,,,0\n"},
     {"fare_transfer_rules": FTR + "G1,G2,,,,0\n"}, ["G1", "G2"]),
    ("fare_transfer_rule_without_transfer_count", {"fare_transfer_rules": FTR + "G1,G1,,,,0\n"},
     {"fare_transfer_rules": FTR + "G1,G1,1,,,0\n"}, ["G1"]),
    ("fare_product_with_multiple_default_rider_categories",
     {"rider_categories": RC, "fare_products": FP + "F1,普通運賃,ADULT,210,JPY\nF1,普通運賃,CHILD,110,JPY\n"},
     {"rider_categories": RC, "fare_products": FP + "F1,普通運賃,ADULT,210,JPY\nF1,普通運賃,SENIOR,110,JPY\n"}, ["F1", "ADULT", "CHILD"]),
    ("duplicate_fare_media", {"fare_media": FM + "M1,ICカード,2\nM2,ICカード,2\n"},
     {"fare_media": FM + "M1,ICカード,2\nM2,紙の乗車券,1\n"}, ["M1", "M2"]),
]


@pytest.mark.parametrize("code,bad,good,named", CASES, ids=[c[0] for c in CASES])
def test_v8_rule_reports_the_broken_feed_and_not_the_corrected_one(tmp_path, code, bad, good, named):
    picked = rule(RULES, code)
    params = {"stop_shape_matches_limit": 1}  # two passes of the shape near S1 are "too many" in a two-point world
    hits = found(run(tmp_path / "bad", feed(**bad), picked, params=params), code)
    assert hits, f"{code} found nothing"
    assert all(any(n in h["message"] for h in hits) for n in named), hits
    assert code not in codes(run(tmp_path / "good", feed(**good), picked, params=params))


def test_every_v8_rule_has_a_case():
    assert {r.code for r in RULES} - {"missing_recommended_file"} == {c[0] for c in CASES}


def test_every_v8_rule_explains_itself_in_japanese():
    for r in RULES:
        assert r.why_ja and r.fix_ja, r.code


@pytest.mark.parametrize("name,flagged", [
    ("Main Street", False), ("MAIN STREET", True), ("main street", True), ("ZA12", False), ("A14 C", False),
    ("tripper", True), ("HB - SF", True), ("Route 1", False), ("港前", False), ("佐野プレミアム・アウトレット", False),
    ("東京駅 JR", False), ("東京駅 TOKYO STATION", True),
])
def test_mixed_case_follows_mobilitydata_and_ignores_scripts_without_case(tmp_path, name, flagged):
    stops = f"stop_id,stop_name,stop_lat,stop_lon\nS1,{name},43.30,141.40\nS2,Harbour,43.31,141.41\n"
    got = codes(run(tmp_path, feed(stops=stops), rule(RULES, "mixed_case_recommended_field")))
    assert ("mixed_case_recommended_field" in got) is flagged


def test_missing_feed_info_is_recommended_in_gtfs_and_left_to_the_gtfs_jp_rule_in_gtfs_jp(tmp_path):
    picked = [r for r in RULES if r.code == "missing_recommended_file"]
    assert "missing_recommended_file" in codes(run(tmp_path / "gtfs", feed(), picked))
    assert "missing_recommended_file" not in codes(run(tmp_path / "jp", feed(), picked, profile="gtfs-jp"))
    info = "feed_publisher_name,feed_publisher_url,feed_lang\nみなと交通,https://example.jp,ja\n"
    assert "missing_recommended_file" not in codes(run(tmp_path / "with", feed(feed_info=info), picked))


def test_a_stop_far_from_the_whole_shape_is_left_to_stop_too_far_from_shape(tmp_path):
    # S2 is 1.1 km from every point of SH, so stop_too_far_from_shape reports it; the distance rule does not repeat it.
    bad = shaped("43.30,141.40,1,0;43.30,141.41,2,800", UD + "T1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,700\n")
    picked = rule(RULES, "stop_too_far_from_shape_using_user_distance")
    assert not codes(run(tmp_path, feed(**bad), picked))


@pytest.mark.parametrize("rows,expected", [
    ("T1,08:00:00,08:00:00,S1,1\nT2,09:00:00,09:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\nT2,09:10:00,09:10:00,S2,2\n",
     {"the stop_times of trip_id T1 (lines 2-4) are not on consecutive lines",
      "the stop_times of trip_id T2 (lines 3-5) are not on consecutive lines"}),
    ("T1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\nT2,09:10:00,09:10:00,S2,2\nT2,09:00:00,09:00:00,S1,1\n",
     {"the stop_times of trip_id T2 (lines 4-5) are not in stop_sequence order"}),
    ("T1,08:00:00,08:00:00,S1,1\nT2,09:00:00,09:00:00,S1,1\nT1,08:10:00,08:10:00,S2,3\nT1,08:05:00,08:05:00,S2,2\n",
     {"the stop_times of trip_id T1 (lines 2-5) are not in stop_sequence order"}),
    ("T1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\nT2,09:00:00,09:00:00,S1,1\n", set()),
])
def test_unsorted_stop_times_names_each_trip_out_of_order_or_apart_and_only_those(tmp_path, rows, expected):
    hits = found(run(tmp_path, feed(stop_times=ST + rows), rule(RULES, "unsorted_stop_times")), "unsorted_stop_times")
    assert {h["message"] for h in hits} == expected


def test_edge_space_finds_what_the_regular_expression_finds():
    import duckdb

    values = ["ab ", "a", "", " a", "a\u0301", " \u0301", "x\t", "x\r\n", "\u00e9", "ab\u3000", "z\x00", "\x1f", "e\u0301 ",
              "\U0001F1EF\U0001F1F5", "a \U0001F1EF", "!", " ", "\u3000a", "a!", "\x7f", None]
    con = duckdb.connect()
    con.execute('CREATE TABLE t ("v" VARCHAR)')
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    got = con.sql(f"SELECT v, {mobilitydata_v8._edge_space('v')} FROM t").fetchall()
    want = con.sql("SELECT v, regexp_matches(v, '^[\\x00-\\x20]|[\\x00-\\x20]$') FROM t").fetchall()
    assert got == want
