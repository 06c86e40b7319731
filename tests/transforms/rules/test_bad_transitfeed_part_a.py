"""Google transitfeed's broken test feeds in the area of stops, routes, trips, stop times: each gives the notice its folder names."""

from datetime import date

import pytest

from tests.conftest import shared
from tests.transforms.rules._feed_b import found, tables
from transforms.rules import formats, routes, shapes, stop_times, stops, transfers, trips
from transforms.rules.engine import run_rules

RULES = [r for m in (stops, routes, trips, stop_times, shapes, transfers, formats) for r in m.RULES]

# folder -> (code, an id or value the notice must name)
EXPECTED = {
    "duplicate_stop": ("stops_too_close", "FROG"),
    "missing_departure_time": ("stop_time_with_only_arrival_or_departure_time", "CITY1"),
    "missing_endpoint_times": ("missing_trip_edge", None),
    "missing_stop_times": ("unused_trip", None),
    "repeated_route_name": ("duplicate_route_name", "STBB"),
    "same_short_long_name": ("route_short_and_long_name_equal", "CITY"),
    "unused_stop": ("stop_without_stop_time", "BOGUS"),
    "negative_stop_sequence": ("number_out_of_range", "-2"),
}


@pytest.mark.realdata
@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_broken_feed_gives_the_notice_its_name_describes(tmp_path, folder):
    code, named = EXPECTED[folder]
    out, _ = tables(tmp_path, shared("gtfs", "bad-transitfeed", folder))
    result = run_rules(out, rules=RULES, validation_date=date(2008, 1, 1), sample_limit=1000)
    hits = found(result, code)
    assert hits, f"{folder}: no {code} among {sorted(c for c, _ in result.counts)}"
    if named:
        assert any(named in (h["message"] or "") or named == h["value"] for h in hits), hits


@pytest.mark.realdata
def test_duplicate_stop_sequence_is_reported_while_reading(tmp_path):
    _, findings = tables(tmp_path, shared("gtfs", "bad-transitfeed", "duplicate_stop_sequence"))
    assert any(code == "duplicate_key" for code, _ in findings.counts)


@pytest.mark.realdata
def test_the_good_feed_gives_none_of_these_notices(tmp_path):
    out, _ = tables(tmp_path, shared("gtfs", "bad-transitfeed", "good_feed"))
    result = run_rules(out, rules=RULES, validation_date=date(2008, 1, 1))
    assert not {code for code, _ in result.counts} & {c for c, _ in EXPECTED.values()}
