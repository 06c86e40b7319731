"""Fare rules (fares v1): fare_attributes.txt and fare_rules.txt fit together and every route has a fare."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.fares import RULES

FA = "fare_id,price,currency_type,payment_method,transfers,transfer_duration\n"
FR = "fare_id,route_id,origin_id,destination_id,contains_id\n"
ZONED = {"stops": "stop_id,stop_name,stop_lat,stop_lon,zone_id\nS1,港前,43.30,141.40,Z1\nS2,駅前,43.31,141.41,Z2\n"}
TWO_ROUTES = {
    "routes": "route_id,agency_id,route_short_name,route_long_name,route_type\nR1,A,1,港線,3\nR2,A,2,山線,3\n",
    "trips": "route_id,service_id,trip_id\nR1,WD,T1\nR2,WD,T2\n",
    "stop_times": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\n"
                  "T2,09:00:00,09:00:00,S2,1\nT2,09:10:00,09:10:00,S1,2\n",
}


def test_fare_no_rule_uses_is_reported(tmp_path):
    fa = FA + "F1,210,JPY,0,0,\nF2,250,JPY,0,0,\n"
    bad = run(tmp_path / "bad", feed(fare_attributes=fa, fare_rules=FR + "F1,R1,,,\n"), rule(RULES, "fare_without_rules"))
    assert [n["value"] for n in found(bad, "fare_without_rules")] == ["F2"]
    good = run(tmp_path / "good", feed(fare_attributes=fa, fare_rules=FR + "F1,R1,,,\nF2,,,,\n"), rule(RULES, "fare_without_rules"))
    assert not good.counts


def test_repeated_fare_rule_is_reported(tmp_path):
    fa = FA + "F1,210,JPY,0,0,\n"
    bad = run(tmp_path / "bad", feed(**ZONED, fare_attributes=fa, fare_rules=FR + "F1,R1,Z1,Z2,\nF1,R1,Z1,Z2,\n"), rule(RULES, "duplicate_fare_rule"))
    assert [n["line"] for n in found(bad, "duplicate_fare_rule")] == [3]
    good = run(tmp_path / "good", feed(**ZONED, fare_attributes=fa, fare_rules=FR + "F1,R1,Z1,Z2,\nF1,R1,Z2,Z1,\n"), rule(RULES, "duplicate_fare_rule"))
    assert not good.counts


@pytest.mark.parametrize("second,conflict", [("F2,250,JPY,0,0,", True), ("F2,250,JPY,1,0,", False), ("F2,210,JPY,0,0,", False)])
def test_two_prices_for_one_journey_and_payment_conflict(tmp_path, second, conflict):
    fa = FA + "F1,210,JPY,0,0,\n" + second + "\n"
    result = run(tmp_path, feed(**ZONED, fare_attributes=fa, fare_rules=FR + "F1,R1,Z1,Z2,\nF2,R1,Z1,Z2,\n"), rule(RULES, "conflicting_fare_rules"))
    assert codes(result) == ({"conflicting_fare_rules"} if conflict else set())
    if conflict:
        assert "F1 (210.0)" in found(result, "conflicting_fare_rules")[0]["message"]


@pytest.mark.parametrize("rules,missing", [(FR + "F1,R1,,,\n", True), (FR + "F1,R1,,,\nF1,R2,,,\n", False), (FR + "F1,,,,\n", False)])
def test_route_named_by_no_fare_rule_has_no_fare(tmp_path, rules, missing):
    result = run(tmp_path, feed(**TWO_ROUTES, fare_attributes=FA + "F1,210,JPY,0,0,\n", fare_rules=rules), rule(RULES, "route_without_fare"))
    assert [n["value"] for n in found(result, "route_without_fare")] == (["R2"] if missing else [])


def test_fare_rules_without_fare_attributes_give_no_price(tmp_path):
    bad = run(tmp_path / "bad", feed(fare_rules=FR + "F1,R1,,,\n"), rule(RULES, "fare_rules_without_fare_attributes"))
    assert codes(bad) == {"fare_rules_without_fare_attributes"}
    good = run(tmp_path / "good", feed(fare_attributes=FA + "F1,210,JPY,0,0,\n", fare_rules=FR + "F1,R1,,,\n"),
               rule(RULES, "fare_rules_without_fare_attributes"))
    assert not good.counts


@pytest.mark.parametrize("transfers,reported", [("0", True), ("", False), ("1", False)])
def test_transfer_duration_needs_transfers(tmp_path, transfers, reported):
    result = run(tmp_path, feed(fare_attributes=FA + f"F1,210,JPY,0,{transfers},3600\n"), rule(RULES, "transfer_duration_without_transfers"))
    assert codes(result) == ({"transfer_duration_without_transfers"} if reported else set())


@pytest.mark.parametrize("rules,missing", [
    (FR + "F1,R1,Z1,Z2,\nF1,R2,Z1,Z2,\n", ["Z2 -> Z1"]),  # R2 runs Z2 to Z1; its rule is the other way
    (FR + "F1,R1,Z1,Z2,\nF1,R2,Z2,Z1,\n", []),
    (FR + "F1,R1,Z1,Z2,\nF1,,Z2,Z1,\n", []),  # a rule without route_id covers every route
    (FR + "F1,R1,Z1,Z2,\n", []),  # R2 has no rule at all: that is route_without_fare, said once
])
def test_journey_a_trip_offers_needs_a_zone_fare(tmp_path, rules, missing):
    files = feed(**TWO_ROUTES, **ZONED, fare_attributes=FA + "F1,210,JPY,0,0,\n", fare_rules=rules)
    result = run(tmp_path, files, rule(RULES, "journey_without_fare"))
    assert [n["value"] for n in found(result, "journey_without_fare")] == missing


def test_journeys_of_a_trip_through_many_stops_are_pairs_of_zones_not_of_stops(tmp_path):
    """One trip through 3,000 stops in three zones offers six journeys; the rule formed every pair of its stops (4.5M rows
    for 3,000 stops, 5*10^11 for a million). It now forms pairs of zones from each zone's first and last stop: the same
    journeys (those of a zone seen before another, with empty zones skipped) and rows in proportion to the stops, which
    DuckDB's profile of the query shows (largest operator output)."""
    from tests.transforms.rules._feed_b import DAY, largest_operator_rows, tables
    from transforms.rules import engine

    n = 3000
    # zones Z0, Z1, Z2 back and forth, some stops without a zone; Z3 only at the first stop (journeys from it, none to it)
    zone = ["Z3"] + [None if k % 7 == 3 else f"Z{(k // 2) % 3}" for k in range(1, n)]
    stops = "stop_id,stop_name,stop_lat,stop_lon,zone_id\n" + "".join(
        f"S{k},停留所{k},{43.30 + k * 1e-4:.4f},141.40,{zone[k] or ''}\n" for k in range(n))
    st = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "".join(
        f"T1,{8 + k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d},{8 + k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d},S{k},{k}\n" for k in range(n))
    files = feed(stops=stops, stop_times=st, fare_attributes=FA + "F1,210,JPY,0,0,\n", fare_rules=FR + "F1,,Z0,Z1,\n")
    picked = rule(RULES, "journey_without_fare")
    seen = {(zone[i], zone[j]) for i in range(n) for j in range(i + 1, min(n, i + 40)) if zone[i] and zone[j] and zone[i] != zone[j]}
    assert len(seen) == 9  # every ordered pair of Z0..Z2 and Z3 to each: all found within 40 stops of each other
    result = run(tmp_path / "run", files, picked)
    assert sorted(x["value"] for x in found(result, "journey_without_fare")) == sorted(f"{o} -> {d}" for o, d in seen - {("Z0", "Z1")})

    out, _ = tables(tmp_path / "t", files)
    con, present = engine.open_tables(out)
    ctx = engine.Context(validation_date=DAY, profile="gtfs", present=present)
    assert largest_operator_rows(con, picked[0].sql(ctx), tmp_path / "profile.json") <= 10 * n
