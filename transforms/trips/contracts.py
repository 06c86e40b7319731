"""Great Expectations contracts for trips: a suite generated from specs/schemas/trips.yml plus the trip rules.

The suite is generated, never hand-written: ``required`` fields must not be null, ``enum`` fields
stay in their set, and the hard trip rules become expectations every *accepted* row must meet
(dropoff not before pickup, duration within the limit, pickup inside the file's period is checked
upstream). Soft rules become expectations with ``mostly`` and a ``severity: warning`` in their
meta, so a report shows how far a source is from clean without failing it.

GX 1.x's pandas route is used on a sample of the accepted rows (GX's SQL datasource on DuckDB
closes its connection before fetching; the pandas route works but is about 4× slower at 10M rows,
hence the sample). The GTFS contracts (another branch's ``transforms/contracts.py``) and these
should be unified into one generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transforms.trips.spec import MODES, load_schema_fields

SUITE_NAME = "trips.fct_trips"


@dataclass
class ContractResult:
    success: bool
    rows_checked: int
    results: list[dict]  # one per expectation: expectation, column, success, unexpected_count, severity

    def failures(self, *, severity: str = "error") -> list[dict]:
        return [r for r in self.results if not r["success"] and r["severity"] == severity]


def expectations(*, max_duration_h: float = 24.0, soft_mostly: float = 0.9) -> list:
    """Return the expectations of the trips suite, generated from the canonical schema and the trip rules."""
    import great_expectations as gx

    ex = gx.expectations
    out = []
    for f in load_schema_fields():
        if f.get("required"):
            out.append(ex.ExpectColumnValuesToNotBeNull(column=f["name"], meta={"severity": "error", "from": "schema.required"}))
        if f.get("enum"):
            out.append(ex.ExpectColumnValuesToBeInSet(column=f["name"], value_set=list(f["enum"]),
                                                      meta={"severity": "error", "from": "schema.enum"}))
    out += [
        ex.ExpectColumnPairValuesAToBeGreaterThanB(column_A="dropoff_time_utc", column_B="pickup_time_utc", or_equal=True,
                                                   ignore_row_if="either_value_is_missing",
                                                   meta={"severity": "error", "rule": "dropoff_before_pickup"}),
        ex.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0, max_value=int(max_duration_h * 3600) + 3600,
                                         meta={"severity": "error", "rule": "duration_too_long",
                                               "note": "the rule uses the local clock; one hour of DST slack"}),
        ex.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0, mostly=soft_mostly,
                                         meta={"severity": "warning", "rule": "negative_amount"}),
        ex.ExpectColumnValuesToBeBetween(column="passengers", min_value=1, mostly=soft_mostly,
                                         meta={"severity": "warning", "rule": "missing_passengers"}),
        ex.ExpectColumnValuesToBeBetween(column="distance_km", min_value=0, mostly=0.99,
                                         meta={"severity": "warning", "rule": "zero_distance"}),
        ex.ExpectColumnValuesToBeBetween(column="pickup_lat", min_value=-90, max_value=90, meta={"severity": "error", "from": "WGS84"}),
        ex.ExpectColumnValuesToBeBetween(column="pickup_lon", min_value=-180, max_value=180, meta={"severity": "error", "from": "WGS84"}),
    ]
    assert set(MODES)  # the enum in the schema is the same list as the spec's modes
    return out


def validate_dataframe(df, *, max_duration_h: float = 24.0) -> ContractResult:
    """Return the suite's results over a pandas DataFrame of fct_trips rows."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    ds = context.data_sources.add_pandas("trips")
    asset = ds.add_dataframe_asset("fct_trips")
    batch_def = asset.add_batch_definition_whole_dataframe("sample")
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations(max_duration_h=max_duration_h)))
    res = batch_def.get_batch(batch_parameters={"dataframe": df}).validate(suite)
    rows = []
    for r in res.results:
        cfg = r.expectation_config
        kw = cfg.kwargs
        rows.append({"expectation": cfg.type, "column": kw.get("column") or f"{kw.get('column_A')}>{kw.get('column_B')}",
                     "success": bool(r.success), "unexpected_count": int((r.result or {}).get("unexpected_count") or 0),
                     "severity": (cfg.meta or {}).get("severity", "error")})
    return ContractResult(success=all(x["success"] for x in rows if x["severity"] == "error"), rows_checked=len(df), results=rows)


def validate_parquet(paths: list[Path] | str, *, sample: int = 100_000, max_duration_h: float = 24.0) -> ContractResult:
    """Return the suite's results over (a deterministic sample of) the accepted trips in Parquet files."""
    import duckdb

    con = duckdb.connect()
    src = paths if isinstance(paths, str) else "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    df = con.sql(f"SELECT * EXCLUDE (flags) FROM read_parquet({src}, hive_partitioning=false) "
                 f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE (42)").df()
    con.close()
    return validate_dataframe(df, max_duration_h=max_duration_h)
