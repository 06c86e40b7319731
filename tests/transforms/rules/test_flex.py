"""GTFS-Flex rules (transforms/rules/flex.py): each code fails on a feed that breaks it and passes on its fix."""

import json

import pytest

from tests.transforms.rules._feed_b import DAY, codes, feed, found, rule, run
from transforms.rules.flex import RULES

ST = ("trip_id,arrival_time,departure_time,stop_id,location_group_id,location_id,stop_sequence,pickup_type,drop_off_type,"
      "start_pickup_drop_off_window,end_pickup_drop_off_window,pickup_booking_rule_id,drop_off_booking_rule_id\n")
BR = ("booking_rule_id,booking_type,prior_notice_duration_min,prior_notice_duration_max,prior_notice_last_day,"
      "prior_notice_last_time,prior_notice_start_day,prior_notice_start_time,prior_notice_service_id,phone_number\n")
GOOD_BR = BR + "B1,1,30,,,,,,,0120-000-000\nB2,2,,,1,17:00:00,,,,0120-000-000\n"


def square(x0: float, y0: float, size: float = 0.02) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]]}


def zones(**geoms) -> str:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"id": k, "type": "Feature", "properties": {"stop_name": k}, "geometry": g} for k, g in geoms.items()]})


def flex(stop_times: str, *, booking_rules: str = GOOD_BR, locations: str | None = None, **more) -> dict:
    files = feed(stop_times=stop_times, booking_rules=booking_rules, **more)
    files["locations.geojson"] = locations if locations is not None else zones(Z1=square(141.40, 43.30), Z2=square(141.45, 43.30))
    return files


#: code -> (stop_times rows or booking_rules rows that break it, rows that do not)
ZONE_ROWS = {
    "forbidden_geography_id": (ST + "T1,,,S1,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\n", ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\n"),
    "missing_required_field": (ST + "T1,08:00:00,08:00:00,,,,1,0,0,,,,\n", ST + "T1,08:00:00,08:00:00,S1,,,1,0,0,,,,\n"),
    "missing_pickup_or_drop_off_window": (ST + "T1,,,,,Z1,1,2,2,08:00:00,,B1,B1\n", ST + "T1,,,,,Z1,1,2,2,08:00:00,09:00:00,B1,B1\n"),
    "invalid_pickup_drop_off_window": (ST + "T1,,,,,Z1,1,2,2,10:00:00,10:00:00,B1,B1\n", ST + "T1,,,,,Z1,1,2,2,10:00:00,10:00:01,B1,B1\n"),
    "forbidden_arrival_or_departure_time": (ST + "T1,08:00:00,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\n",
                                            ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\n"),
    "forbidden_pickup_type": (ST + "T1,,,,,Z1,1,0,2,08:00:00,10:00:00,,B1\n", ST + "T1,,,,,Z1,1,1,2,08:00:00,10:00:00,,B1\n"),
    "forbidden_drop_off_type": (ST + "T1,,,,,Z1,1,2,0,08:00:00,10:00:00,B1,\n", ST + "T1,,,,,Z1,1,2,3,08:00:00,10:00:00,B1,\n"),
    "missing_pickup_drop_off_booking_rule_id": (ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,,B1\n", ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\n"),
    "foreign_key_violation": (ST + "T1,,,,,Z9,1,2,2,08:00:00,10:00:00,B1,B1\n", ST + "T1,,,,,Z2,1,2,2,08:00:00,10:00:00,B1,B1\n"),
    # Z1 and Z3 overlap in space; in time 08-10 and 09-11 overlap, 08-10 and 10-12 only touch
    "overlapping_zone_and_pickup_drop_off_window": (
        ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\nT1,,,,,Z3,2,2,2,09:00:00,11:00:00,B1,B1\n",
        ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\nT1,,,,,Z3,2,2,2,10:00:00,12:00:00,B1,B1\n"),
}


@pytest.mark.parametrize("code", sorted(ZONE_ROWS))
def test_stop_times_flex_rule_fails_and_passes(tmp_path, code):
    bad_rows, good_rows = ZONE_ROWS[code]
    geo = zones(Z1=square(141.40, 43.30), Z2=square(141.45, 43.30), Z3=square(141.41, 43.31))
    bad = run(tmp_path / "bad", flex(bad_rows, locations=geo), rule(RULES, code))
    assert code in codes(bad), bad.notices.to_pylist()
    good = run(tmp_path / "good", flex(good_rows, locations=geo), rule(RULES, code))
    assert code not in codes(good), good.notices.to_pylist()


def test_overlap_is_reported_for_each_row_of_the_pair_as_mobilitydata_does(tmp_path):
    geo = zones(Z1=square(141.40, 43.30), Z3=square(141.41, 43.31))
    rows = ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\nT1,,,,,Z3,2,2,2,09:00:00,11:00:00,B1,B1\n"
    result = run(tmp_path, flex(rows, locations=geo), rule(RULES, "overlapping_zone_and_pickup_drop_off_window"))
    assert sorted(n["value"] for n in found(result, "overlapping_zone_and_pickup_drop_off_window")) == ["Z1", "Z3"]


ROUTE = "route_id,agency_id,route_short_name,route_long_name,route_type,continuous_pickup,continuous_drop_off\n"


@pytest.mark.parametrize("route,bad", [("R1,A,1,港線,3,2,2\n", True), ("R1,A,1,港線,3,1,1\n", False), ("R1,A,1,港線,3,,\n", False)])
def test_window_on_a_route_with_continuous_pickup_is_forbidden(tmp_path, route, bad):
    result = run(tmp_path, flex(ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\n", routes=ROUTE + route),
                 rule(RULES, "forbidden_continuous_pickup_drop_off"))
    assert codes(result) == ({"forbidden_continuous_pickup_drop_off"} if bad else set())


def test_flex_trip_with_a_window_at_its_ends_has_no_missing_trip_edge(tmp_path):
    from transforms.rules.stop_times import RULES as ST_RULES

    result = run(tmp_path, flex(OK_ST), rule(ST_RULES, "missing_trip_edge"))
    assert not result.counts
    timed = run(tmp_path / "timed", flex(ST + "T1,,,S1,,,1,0,0,,,,\nT1,08:10:00,08:10:00,S2,,,2,0,0,,,,\n"), rule(ST_RULES, "missing_trip_edge"))
    assert codes(timed) == {"missing_trip_edge"}


def test_zone_sharing_an_id_with_a_stop_is_a_duplicate_geography_id(tmp_path):
    rows = ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\n"
    bad = run(tmp_path / "bad", flex(rows, locations=zones(Z1=square(141.40, 43.30), S1=square(141.5, 43.3))),
              rule(RULES, "duplicate_geography_id"))
    assert [(n["file"], n["value"]) for n in found(bad, "duplicate_geography_id")] == [("locations.geojson", "S1")]
    good = run(tmp_path / "good", flex(rows), rule(RULES, "duplicate_geography_id"))
    assert not good.counts


OK_ST = ST + "T1,,,,,Z1,1,2,2,08:00:00,10:00:00,B1,B1\n"
BOOKING = {
    "forbidden_real_time_booking_field_value": (BR + "B1,0,30,,,,,,,\n", BR + "B1,0,,,,,,,,\n"),
    "forbidden_same_day_booking_field_value": (BR + "B1,1,30,,1,,,,,\n", BR + "B1,1,30,,,,,,,\n"),
    "forbidden_prior_day_booking_field_value": (BR + "B1,2,30,,1,17:00:00,,,,\n", BR + "B1,2,,,1,17:00:00,,,,\n"),
    "missing_prior_notice_duration_min": (BR + "B1,1,,,,,,,,\n", BR + "B1,1,30,,,,,,,\n"),
    "invalid_prior_notice_duration_min": (BR + "B1,1,60,30,,,,,,\n", BR + "B1,1,30,60,,,,,,\n"),
    "forbidden_prior_notice_start_day": (BR + "B1,1,30,600,,,2,08:00:00,,\n", BR + "B1,1,30,600,,,,,,\n"),
    "prior_notice_last_day_after_start_day": (BR + "B1,2,,,7,17:00:00,2,08:00:00,,\n", BR + "B1,2,,,1,17:00:00,7,08:00:00,,\n"),
    "missing_prior_notice_last_day": (BR + "B1,2,,,,17:00:00,,,,\n", BR + "B1,2,,,1,17:00:00,,,,\n"),
    "missing_prior_notice_last_time": (BR + "B1,2,,,1,,,,,\n", BR + "B1,2,,,1,17:00:00,,,,\n"),
    "forbidden_prior_notice_start_time": (BR + "B1,2,,,1,17:00:00,,08:00:00,,\n", BR + "B1,2,,,1,17:00:00,7,08:00:00,,\n"),
    "missing_prior_notice_start_time": (BR + "B1,2,,,1,17:00:00,7,,,\n", BR + "B1,2,,,1,17:00:00,7,08:00:00,,\n"),
}


@pytest.mark.parametrize("code", sorted(BOOKING))
def test_booking_rule_fails_and_passes(tmp_path, code):
    bad_rows, good_rows = BOOKING[code]
    bad = run(tmp_path / "bad", flex(OK_ST, booking_rules=bad_rows), rule(RULES, code))
    assert [n["value"] for n in found(bad, code)] == ["B1"], bad.notices.to_pylist()
    good = run(tmp_path / "good", flex(OK_ST, booking_rules=good_rows), rule(RULES, code))
    assert code not in codes(good), good.notices.to_pylist()


def test_booking_row_with_an_unreadable_value_is_not_checked_further(tmp_path):
    # Lincoln County writes prior_notice_duration_min as 24:00:00: invalid_integer, and (as MobilityData) no missing_ notice
    result = run(tmp_path, flex(OK_ST, booking_rules=BR + "B1,1,24:00:00,,,,,,,\n"), rule(RULES, "missing_prior_notice_duration_min"))
    assert not result.counts


def test_every_flex_rule_has_japanese_why_and_fix():
    for r in RULES:
        assert r.why_ja and r.fix_ja, r.code


#: What our Flex rules report on each shared Flex feed (docs/validation-parity.md, "GTFS-Flex", explains each against gtfs-guru)
SHARED = {
    ("us-otp-fixtures", "aspen-flex-on-demand.gtfs"): {},
    ("us-otp-fixtures", "cobblinc-scheduled-deviated-flex.gtfs"): {"forbidden_continuous_pickup_drop_off": 144,
                                                                  "missing_pickup_drop_off_booking_rule_id": 144},
    ("us-otp-fixtures", "lincoln-county-flex.gtfs"): {"invalid_geometry": 1},
    ("de-uckermark-rufbus",): {},
}


@pytest.mark.parametrize("path", sorted(SHARED))
def test_shared_flex_feeds_give_the_recorded_flex_notices(tmp_path, path):
    from tests.conftest import shared
    from tests.transforms.rules._feed_b import tables
    from transforms.rules.engine import run_rules

    out, read = tables(tmp_path, shared("gtfs", "flex", *path))
    ruled = run_rules(out, rules=[r for r in RULES if r.stage == "sql"], validation_date=DAY)
    flex_codes = {r.code for r in RULES} - {"foreign_key_violation", "missing_required_field"}
    got = {c: n for (c, _), n in [*read.counts.items(), *ruled.counts.items()] if c in flex_codes}
    assert got == SHARED[path]


def test_flex_codes_are_mobilitydata_codes_with_its_severities():
    from pathlib import Path

    tsv = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "mobilitydata-notice-codes.tsv"
    if not tsv.exists():
        pytest.skip(f"{tsv} is absent")
    severities = dict(reversed(line.split("\t")) for line in tsv.read_text(encoding="utf-8").split("\n") if line and not line.startswith("#"))
    for r in RULES:
        assert severities.get(r.code) == r.severity, r.code
        assert r.why.endswith(".") and r.fix, r.code


def test_a_stop_served_only_through_a_location_group_is_used(tmp_path):
    from transforms.rules.stops import RULES as STOP_RULES

    stops = ("stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.41\n"
             "S3,病院前,43.32,141.42\nS4,公民館,43.33,141.43\n")
    rows = ST + "T1,,,S1,,,1,0,0,,,,\nT1,,,,G1,,2,2,2,08:00:00,10:00:00,B1,B1\nT1,,,S2,,,3,0,0,,,,\n"
    files = flex(rows, stops=stops, location_groups="location_group_id,location_group_name\nG1,病院\n",
                 location_group_stops="location_group_id,stop_id\nG1,S3\n")
    result = run(tmp_path, files, rule(STOP_RULES, "stop_without_stop_time"))
    assert [n["value"] for n in found(result, "stop_without_stop_time")] == ["S4"]  # S3 is served through G1
