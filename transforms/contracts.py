"""Data contracts of the canonical tables, as Great Expectations (GX 1.x) expectation suites.

One suite per canonical table, generated from ``specs/schemas/gtfs.yml`` (transforms/schema.py:
columns, types, required, key, enum) and ``specs/expectations/gtfs.yml`` (sanity bounds: time
cap, date window, coordinate field suffixes, non-negative and positive fields).
The suite checks one feed version's partition of the table (the lake Parquet partition, which is
what publish copies into the warehouse); feed_id and feed_version are the partition keys, so they
are not columns of the partition and are not checked.

Mapping rule → expectation (the whole contract; CONTRACT_RULES lists it for docs and reports):

======================  ======================================================  ===============================================
rule                    applies to                                              expectation
======================  ======================================================  ===============================================
columns                 every table                                             expect_table_columns_to_match_set (exact)
type                    every column (_line, fields, _untyped, _extra)          expect_column_values_to_be_of_type
not_null                _line, and every ``required`` field (all key fields     expect_column_values_to_not_be_null
                        but agency_id and attribution_id, which GTFS lets a
                        single-agency feed leave empty)
unique_key              table with one key field                                expect_column_values_to_be_unique
unique_compound_key     table with several key fields                           expect_compound_columns_to_be_unique
has_rows                table with ``required: true`` in the schema             expect_table_row_count_to_be_between(min 1)
latitude                float field ending in ``latitude_suffix`` (_lat)         expect_column_values_to_be_between(-90, 90)
longitude               float field ending in ``longitude_suffix`` (_lon)        expect_column_values_to_be_between(-180, 180)
time_sanity             ``time`` fields (seconds after midnight)                between(0, time_max = 48:00:00)
date_sanity             ``date`` fields                                         between(date_min, date_max)
enum                    ``enum`` fields                                         expect_column_values_to_be_in_set(enum)
non_negative            ``non_negative`` fields (prices, distances, durations)  between(0, None)
positive                ``positive`` fields (headway_secs)                      between(1, None)
======================  ======================================================  ===============================================

Nulls are ignored by every rule except not_null (GX semantics), so optional fields are checked
only where they have a value. Type names depend on the engine that runs the suite: the DuckDB
(SQL) route sees DuckDB types, the pandas route sees pandas dtypes (see TYPE_NAMES).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from transforms.schema import Schema, Table, default_specs_dir, load_schema
from transforms.specfile import Date, ListOf, Map, Number, OneOf, SpecError, Text, check_shape, load_yaml

#: Every key of ``specs/expectations/<schema>.yml``, with the type of its value.
EXPECTATIONS_SHAPE = Map({
    "time_max": OneOf(Text(), Number(whole=True, lo=0), expected='a time such as "48:00:00"'),
    "date_min": Date(), "date_max": Date(), "latitude_suffix": Text(), "longitude_suffix": Text(),
    "non_negative": ListOf(Text()), "positive": ListOf(Text()),
})


@dataclass(frozen=True)
class Bounds:
    """Sanity bounds of the contracts, from ``specs/expectations/<schema>.yml``."""

    time_max_seconds: int
    date_min: dt.date
    date_max: dt.date
    latitude_suffix: str
    longitude_suffix: str
    non_negative: tuple[str, ...]
    positive: tuple[str, ...]


def _seconds(value) -> int:
    """Return HH:MM:SS as seconds. YAML reads an unquoted 48:00:00 as the base-60 integer 172800: that is seconds already."""
    if isinstance(value, int):
        return value
    h, m, sec = (int(x) for x in str(value).split(":"))
    return h * 3600 + m * 60 + sec


@lru_cache(maxsize=8)
def load_bounds(name: str = "gtfs", specs_dir: Path | None = None) -> Bounds:
    """Return the contracts' sanity bounds ``specs/expectations/<name>.yml``. If a key is missing or malformed, then ValueError names it."""
    path = (specs_dir or default_specs_dir()) / "expectations" / f"{name}.yml"
    try:
        doc = load_yaml(path) or {}
    except SpecError as exc:
        raise ValueError("\n".join(exc.problems)) from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: the file must be a YAML mapping (key: value lines)")
    problems, _, _ = check_shape(doc, EXPECTATIONS_SHAPE)
    if problems:
        raise ValueError("\n".join(f"{path}: {f}: {m}" for f, m in problems))

    def get(key: str, parse):
        if key not in doc:
            raise ValueError(f"{path}: missing or malformed {key!r}: the key is missing")
        try:
            return parse(doc[key])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: missing or malformed {key!r}: {doc[key]!r} ({exc})") from None

    def date(v):
        if not isinstance(v, dt.date):
            raise ValueError("expected a date YYYY-MM-DD")
        return v

    def names(v):
        return tuple(str(x) for x in (v or ()))

    bounds = Bounds(
        time_max_seconds=get("time_max", _seconds), date_min=get("date_min", date), date_max=get("date_max", date),
        latitude_suffix=get("latitude_suffix", str), longitude_suffix=get("longitude_suffix", str),
        non_negative=get("non_negative", names), positive=get("positive", names),
    )
    if bounds.date_min >= bounds.date_max:
        raise ValueError(f"{path}: date_min must come before date_max")
    return bounds


#: Columns every lake partition carries besides the schema's fields (see transforms/schema.py).
PARTITION_SYSTEM_COLUMNS = (("_line", "INTEGER"),)
PARTITION_TRAILING_COLUMNS = (("_untyped", "VARCHAR"), ("_extra", "VARCHAR"))

#: Engine → {DuckDB column type: type name that engine reports}. The pandas route loads Parquet
#: with nullable Int32/Float64 dtypes and pandas' str dtype; dates stay datetime.date objects.
TYPE_NAMES = {
    "sql": {"INTEGER": "INTEGER", "DOUBLE": "DOUBLE", "DATE": "DATE", "VARCHAR": "VARCHAR"},
    "pandas": {"INTEGER": "int32", "DOUBLE": "float64", "DATE": "date", "VARCHAR": "str"},
}
ENGINES = tuple(TYPE_NAMES)

#: rule name → (what it checks, in one line). The order is the order of expectations in a suite.
CONTRACT_RULES = {
    "columns": "the partition has exactly the canonical columns",
    "type": "each column has its canonical type",
    "not_null": "_line and every required field have a value",
    "unique_key": "the single key field is unique",
    "unique_compound_key": "the key fields are unique together",
    "has_rows": "a required table has at least one row",
    "latitude": "latitudes are within -90..90",
    "longitude": "longitudes are within -180..180",
    "time_sanity": "times are within 0 and time_max of specs/expectations",
    "date_sanity": "dates are within date_min..date_max of specs/expectations",
    "enum": "enum fields hold one of their allowed values",
    "non_negative": "prices, distances, durations and sequences are not negative",
    "positive": "headways are positive",
}


@dataclass(frozen=True)
class Contract:
    """One expectation of a table's contract: the rule that made it, the GX expectation type and its kwargs."""

    rule: str
    expectation_type: str
    kwargs: dict

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


def partition_columns(table: Table) -> list[tuple[str, str]]:
    """Return (name, DuckDB type) of every column of one version's lake partition of ``table``."""
    return [*PARTITION_SYSTEM_COLUMNS, *((f.column, f.sql_type) for f in table.fields), *PARTITION_TRAILING_COLUMNS]


def table_contracts(table: Table, *, engine: str, bounds: Bounds | None = None) -> list[Contract]:
    """Return the contract of ``table`` as a list of expectations, in CONTRACT_RULES order, for ``engine``.

    Bounds default to ``specs/expectations/gtfs.yml``.
    """
    b = bounds or load_bounds()
    if engine not in TYPE_NAMES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    cols = partition_columns(table)
    out = [Contract("columns", "expect_table_columns_to_match_set",
                    {"column_set": [c for c, _ in cols], "exact_match": True})]
    out += [Contract("type", "expect_column_values_to_be_of_type", {"column": c, "type_": TYPE_NAMES[engine][t]})
            for c, t in cols if t in TYPE_NAMES[engine]]  # BLOB (GTFS-Flex zones, WKB): no type expectation
    out.append(Contract("not_null", "expect_column_values_to_not_be_null", {"column": "_line"}))
    # Keys the schema leaves optional (agency_id, attribution_id) are conditionally required in
    # GTFS: a feed with one agency may leave agency_id empty, so only required fields are checked.
    out += [Contract("not_null", "expect_column_values_to_not_be_null", {"column": f.column})
            for f in table.fields if f.required]
    key = [f.column for f in table.key]
    if len(key) == 1:
        out.append(Contract("unique_key", "expect_column_values_to_be_unique", {"column": key[0]}))
    elif key:
        out.append(Contract("unique_compound_key", "expect_compound_columns_to_be_unique", {"column_list": key}))
    if table.required:
        out.append(Contract("has_rows", "expect_table_row_count_to_be_between", {"min_value": 1, "max_value": None}))
    between = "expect_column_values_to_be_between"
    for f in table.fields:
        if f.type == "float" and f.name.endswith(b.latitude_suffix):
            out.append(Contract("latitude", between, {"column": f.column, "min_value": -90.0, "max_value": 90.0}))
        elif f.type == "float" and f.name.endswith(b.longitude_suffix):
            out.append(Contract("longitude", between, {"column": f.column, "min_value": -180.0, "max_value": 180.0}))
        elif f.type == "time":
            out.append(Contract("time_sanity", between, {"column": f.column, "min_value": 0, "max_value": b.time_max_seconds}))
        elif f.type == "date":
            out.append(Contract("date_sanity", between, {"column": f.column, "min_value": b.date_min, "max_value": b.date_max}))
        elif f.type == "enum" and f.enum:
            out.append(Contract("enum", "expect_column_values_to_be_in_set", {"column": f.column, "value_set": list(f.enum)}))
        if f.name in b.non_negative:
            out.append(Contract("non_negative", between, {"column": f.column, "min_value": 0, "max_value": None}))
        elif f.name in b.positive:
            out.append(Contract("positive", between, {"column": f.column, "min_value": 1, "max_value": None}))
    return out


def suite_name(table: str) -> str:
    """Return the GX suite name of a canonical table (``gtfs.<table>``)."""
    return f"gtfs.{table}"


def build_suite(table: Table, *, engine: str, bounds: Bounds | None = None, only=None):
    """Return the GX ExpectationSuite of ``table`` for ``engine``; each expectation's meta names its contract rule.

    If ``only`` (indexes into :func:`table_contracts`), then the suite holds only those expectations
    (what the SQL engine of warehouse/contracts_sql.py leaves to GX).
    """
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    expectations = []
    contracts = table_contracts(table, engine=engine, bounds=bounds)
    for c in (contracts if only is None else [contracts[i] for i in only]):
        cls = get_expectation_impl(c.expectation_type)
        expectations.append(cls(**c.kwargs, meta={"rule": c.rule, "why": CONTRACT_RULES[c.rule]}))
    return gx.ExpectationSuite(name=suite_name(table.name), expectations=expectations,
                               meta={"table": table.name, "engine": engine, "generated_from": "specs/schemas"})


def build_suites(*, engine: str, schema: Schema | None = None, bounds: Bounds | None = None) -> dict:
    """Return {table name: GX ExpectationSuite} for every canonical table of ``schema`` (default gtfs)."""
    schema = schema or load_schema()
    return {name: build_suite(t, engine=engine, bounds=bounds) for name, t in schema.tables.items()}
