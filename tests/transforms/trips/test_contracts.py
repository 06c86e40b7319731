"""The generated GX suite: every accepted trip meets the hard expectations; a broken row is caught."""

from __future__ import annotations

import datetime as dt

import pandas as pd


def _rows(n: int = 20) -> pd.DataFrame:
    t0 = dt.datetime(2026, 4, 1, 8, 0)
    return pd.DataFrame({
        "source_id": ["t"] * n, "feed_version": ["v"] * n, "source_file": ["a.csv"] * n, "source_row": range(1, n + 1),
        "trip_ref": [None] * n, "mode": ["taxi"] * n, "provider": ["p"] * n, "vendor": [None] * n,
        "pickup_time_utc": [t0] * n, "dropoff_time_utc": [t0 + dt.timedelta(minutes=10)] * n,
        "pickup_time_local": [t0] * n, "dropoff_time_local": [t0 + dt.timedelta(minutes=10)] * n,
        "timezone": ["Asia/Tokyo"] * n, "month": ["2026-04"] * n, "pickup_zone": ["A"] * n, "dropoff_zone": ["B"] * n,
        "zone_layer": ["z"] * n, "pickup_lat": [43.3] * n, "pickup_lon": [141.4] * n, "dropoff_lat": [43.31] * n,
        "dropoff_lon": [141.41] * n, "pickup_municipality": ["みなと市"] * n, "dropoff_municipality": ["みなと市"] * n,
        "distance_km": [2.0] * n, "duration_s": [600] * n, "fare_amount": [900.0] * n, "tip_amount": [0.0] * n,
        "total_amount": [900.0] * n, "currency": ["JPY"] * n, "passengers": [1] * n, "payment_type": ["cash"] * n,
    })


def test_suite_is_generated_from_schema_and_rules():
    from transforms.trips.contracts import expectations
    from transforms.trips.spec import load_schema_fields

    exps = expectations()
    required = {f["name"] for f in load_schema_fields() if f.get("required")}
    not_null = {e.column for e in exps if type(e).__name__ == "ExpectColumnValuesToNotBeNull"}
    assert not_null == required
    assert any(e.meta.get("rule") == "dropoff_before_pickup" for e in exps)


def test_clean_rows_pass_and_a_broken_row_fails_with_its_rule():
    from transforms.trips.contracts import validate_dataframe

    assert validate_dataframe(_rows()).success
    bad = _rows()
    bad.loc[3, "dropoff_time_utc"] = bad.loc[3, "pickup_time_utc"] - dt.timedelta(minutes=5)
    bad.loc[4, "mode"] = "rickshaw"
    res = validate_dataframe(bad)
    assert not res.success
    failed = {r["expectation"] for r in res.failures()}
    assert failed == {"expect_column_pair_values_a_to_be_greater_than_b", "expect_column_values_to_be_in_set"}
