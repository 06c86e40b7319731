"""The canonical tables' contracts are generated from specs/schemas, one GX suite per table, rule by rule."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from transforms.contracts import (
    CONTRACT_RULES, ENGINES, TYPE_NAMES, build_suites, load_bounds, partition_columns, table_contracts,
)
from transforms.schema import load_schema


def _by_rule(table: str, rule: str, *, engine: str = "sql"):
    return [c for c in table_contracts(load_schema().tables[table], engine=engine) if c.rule == rule]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_suite_is_generated_for_every_canonical_table(engine):
    schema = load_schema()
    suites = build_suites(engine=engine)
    assert set(suites) == set(schema.tables)
    for name, suite in suites.items():
        assert suite.name == f"gtfs.{name}"
        assert len(suite.expectations) == len(table_contracts(schema.tables[name], engine=engine))
        assert {e.meta["rule"] for e in suite.expectations} <= set(CONTRACT_RULES)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_column_must_exist_with_its_canonical_type(engine):
    for name, table in load_schema().tables.items():
        cols = partition_columns(table)
        [match] = _by_rule(name, "columns", engine=engine)
        assert match.kwargs == {"column_set": [c for c, _ in cols], "exact_match": True}
        types = {c.column: c.kwargs["type_"] for c in _by_rule(name, "type", engine=engine)}
        assert types == {c: TYPE_NAMES[engine][t] for c, t in cols if t in TYPE_NAMES[engine]}  # WKB (BLOB): no type expectation
    assert {c.column: c.kwargs["type_"] for c in _by_rule("stop_times", "type", engine="sql")}["arrival_time"] == "INTEGER"
    assert {c.column: c.kwargs["type_"] for c in _by_rule("calendar", "type", engine="sql")}["start_date"] == "DATE"
    assert {c.column: c.kwargs["type_"] for c in _by_rule("stops", "type", engine="pandas")}["stop_lat"] == "float64"


def test_required_and_key_fields_must_not_be_null():
    for name, table in load_schema().tables.items():
        expected = {"_line"} | {f.column for f in table.fields if f.required}
        assert {c.column for c in _by_rule(name, "not_null")} == expected
        # every key is required except the two GTFS lets a single-agency feed leave empty
        assert {(name, f.name) for f in table.key if not f.required} <= {("agency", "agency_id"), ("attributions", "attribution_id")}
    assert "agency_id" not in {c.column for c in _by_rule("agency", "not_null")}
    assert [c.kwargs for c in _by_rule("agency", "unique_key")] == [{"column": "agency_id"}]
    assert "stop_headsign" not in {c.column for c in _by_rule("stop_times", "not_null")}
    assert {"trip_id", "stop_sequence"} <= {c.column for c in _by_rule("stop_times", "not_null")}


def test_keys_must_be_unique_alone_or_together():
    assert [c.kwargs for c in _by_rule("stops", "unique_key")] == [{"column": "stop_id"}]
    assert [c.kwargs for c in _by_rule("stop_times", "unique_compound_key")] == [{"column_list": ["trip_id", "stop_sequence"]}]
    assert [c.kwargs for c in _by_rule("calendar_dates", "unique_compound_key")] == [{"column_list": ["service_id", "date"]}]
    assert _by_rule("fare_rules", "unique_key") == [] and _by_rule("fare_rules", "unique_compound_key") == []


def test_required_tables_must_have_rows():
    schema = load_schema()
    have = {name for name in schema.tables if _by_rule(name, "has_rows")}
    assert have == {name for name, t in schema.tables.items() if t.required}
    assert {"stops", "stop_times", "trips", "routes", "agency"} <= have


def test_coordinates_must_be_on_earth():
    lat = {(c.kwargs["column"], c.kwargs["min_value"], c.kwargs["max_value"]) for t in ("stops", "shapes") for c in _by_rule(t, "latitude")}
    lon = {(c.kwargs["column"], c.kwargs["min_value"], c.kwargs["max_value"]) for t in ("stops", "shapes") for c in _by_rule(t, "longitude")}
    assert lat == {("stop_lat", -90.0, 90.0), ("shape_pt_lat", -90.0, 90.0)}
    assert lon == {("stop_lon", -180.0, 180.0), ("shape_pt_lon", -180.0, 180.0)}


def test_times_and_dates_must_be_sane():
    schema = load_schema()
    b = load_bounds()
    times = {(t, c.column) for t in schema.tables for c in _by_rule(t, "time_sanity")}
    assert times == {(t.name, f.column) for t in schema.tables.values() for f in t.fields if f.type == "time"}
    assert ("frequencies", "start_time") in times and ("stop_times", "departure_time") in times
    assert all(c.kwargs["min_value"] == 0 and c.kwargs["max_value"] == b.time_max_seconds == 172800
               for t, _ in times for c in _by_rule(t, "time_sanity"))
    dates = {(t, c.column): (c.kwargs["min_value"], c.kwargs["max_value"]) for t in schema.tables for c in _by_rule(t, "date_sanity")}
    assert set(dates) == {(t.name, f.column) for t in schema.tables.values() for f in t.fields if f.type == "date"}
    assert dates[("calendar", "end_date")] == (b.date_min, b.date_max) == (dt.date(1990, 1, 1), dt.date(2100, 12, 31))
    assert b.date_min <= dt.date(2099, 12, 31) <= b.date_max  # "until further notice" passes


def test_enums_must_hold_an_allowed_value():
    schema = load_schema()
    got = {(t, c.column): c.kwargs["value_set"] for t in schema.tables for c in _by_rule(t, "enum")}
    assert got == {(t.name, f.column): list(f.enum) for t in schema.tables.values() for f in t.fields if f.type == "enum"}
    assert got[("calendar_dates", "exception_type")] == [1, 2]


def test_prices_and_distances_cannot_be_negative():
    assert [(c.column, c.kwargs["min_value"], c.kwargs["max_value"]) for c in _by_rule("fare_attributes", "non_negative")] == [
        ("price", 0, None), ("transfer_duration", 0, None)]
    assert "shape_dist_traveled" in {c.column for c in _by_rule("stop_times", "non_negative")}
    assert [(c.column, c.kwargs["min_value"]) for c in _by_rule("frequencies", "positive")] == [("headway_secs", 1)]


def test_a_table_added_to_the_schema_gets_its_suite_without_code(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "gtfs.yml").write_text(textwrap.dedent("""\
        tables:
          depots:
            required: true
            fields:
              - {name: depot_id, type: id, key: true, required: true}
              - {name: depot_lat, type: float}
              - {name: opened, type: date}
        """), encoding="utf-8")
    schema = load_schema("gtfs", tmp_path)
    suites = build_suites(engine="sql", schema=schema)
    assert list(suites) == ["depots"]
    rules = [e.meta["rule"] for e in suites["depots"].expectations]  # type: _line, 3 fields, _untyped, _extra
    assert rules.count("type") == 6 and {"unique_key", "has_rows", "latitude", "date_sanity"} <= set(rules)


def _specs(tmp_path, bounds: str):
    (tmp_path / "expectations").mkdir()
    (tmp_path / "expectations" / "gtfs.yml").write_text(bounds, encoding="utf-8")
    return tmp_path


def test_sanity_bounds_come_from_specs_expectations(tmp_path):
    specs = _specs(tmp_path, textwrap.dedent("""\
        time_max: "30:00:00"
        date_min: 2000-01-01
        date_max: 2050-12-31
        latitude_suffix: _lat
        longitude_suffix: _lon
        non_negative: [stop_sequence]
        positive: []
        """))
    b = load_bounds("gtfs", specs)
    got = table_contracts(load_schema().tables["stop_times"], engine="sql", bounds=b)
    assert {c.kwargs["max_value"] for c in got if c.rule == "time_sanity"} == {30 * 3600}
    assert [c.column for c in got if c.rule == "non_negative"] == ["stop_sequence"]
    cal = table_contracts(load_schema().tables["calendar"], engine="sql", bounds=b)
    assert {(c.kwargs["min_value"], c.kwargs["max_value"]) for c in cal if c.rule == "date_sanity"} == {
        (dt.date(2000, 1, 1), dt.date(2050, 12, 31))}


def test_malformed_bounds_name_the_file_and_key(tmp_path):
    specs = _specs(tmp_path, "time_max: 48:00:00\ndate_min: 1990-01-01\n")
    with pytest.raises(ValueError, match=r"expectations/gtfs.yml: missing or malformed 'date_max'"):
        load_bounds("gtfs", specs)


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        table_contracts(load_schema().tables["stops"], engine="spark")
