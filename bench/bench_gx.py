"""Benchmark: the stop_times data contract (GX suite) on ~4M rows, DuckDB pushdown vs pandas, against plain SQL.

Input: ../shared/data/gtfs/world/vilnius-2015 replicated ×9 (bench_ingest.replicate: trips and
stop_times copied with suffixed trip ids) = 4,006,953 stop_times rows, ingested once with
run_feed into bench/out/gx-home (reused on later runs). Then, each in its own process (wall time
includes imports, work time excludes them; peak memory is that process's max RSS):

- sql_baseline: bare DuckDB over the same Parquet partition, the same checks as the suite in one
  plain SQL statement (count, count(DISTINCT ...), min/max-style range counts, IN-set counts,
  DESCRIBE for the types) – the floor;
- gx_duckdb: the stop_times suite through GX's SQL engine on DuckDB (warehouse/contracts.py route
  "duckdb": every metric is SQL pushed down to DuckDB);
- gx_duckdb_warehouse: the same, reading the version's rows of gtfs.stop_times in the DuckDB
  warehouse file (attached read-only; it also holds the ×1 version) instead of the Parquet partition;
- gx_pandas: the same suite through GX's pandas engine, the whole partition as one DataFrame
  (route "pandas");
- gx_pandas_batches: the suite without its uniqueness rules on 1M-row pandas batches (what
  batching would give; uniqueness cannot be proved batch by batch, so the product does not batch);
- contracts_<route>: run_contracts on the whole version (all its tables, results stored, Data
  Docs rebuilt), as the pipeline would call it.

    uv run python bench/bench_gx.py [--replicate 9] [--repeat 1] [--skip-full] [--only gx_duckdb gx_pandas ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_ingest import OUT, SOURCE, replicate  # noqa: E402  (the replication helper, shared with the ingest bench)

HOME = OUT / "gx-home"
FEED_ID = "vilnius"


def ingest(n: int) -> tuple[str, int]:
    """Return (feed version, stop_times rows) of the feed replicated n times, ingested into HOME once.

    Runs in a child process: Linux keeps a process's peak RSS across fork and exec, so an ingest in
    this process would inflate every measurement's peak memory.
    """
    proc = subprocess.run([sys.executable, __file__, "--ingest-only", "--replicate", str(n)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed:\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return got["feed_version"], got["rows"]


def _ingest_here(n: int) -> tuple[str, int]:
    from noriba.pipeline import lake_versions, run_feed
    from noriba.specs import parse_spec
    from warehouse.workspace import Workspace

    feed, _, rows = replicate(n)
    ws = Workspace(HOME).ensure()
    spec = parse_spec({"id": FEED_ID, "kind": "gtfs", "source": {"path": str(feed)}}, where="bench", root=ROOT)
    out = run_feed(spec, ws, export=False)
    assert (FEED_ID, out["feed_version"]) in lake_versions(ws, FEED_ID)
    return out["feed_version"], rows


CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
what, home, feed_id, ver = sys.argv[1:5]
sys.path.insert(0, sys.argv[5])
from pathlib import Path
from warehouse.workspace import Workspace
ws = Workspace(Path(home))
part = ws.lake_partition("gtfs_stop_times", feed_id, ver) / "part-0.parquet"
import duckdb, pyarrow, pandas
from transforms.contracts import table_contracts
if what != "sql_baseline":
    import great_expectations, warehouse.contracts, warehouse.gx_duckdb
t1 = time.perf_counter()  # imports done: work_s is the checks alone
if what == "sql_baseline":
    import duckdb
    from transforms.contracts import table_contracts, partition_columns
    from transforms.schema import load_schema
    sys.path.insert(0, sys.argv[6])
    from bench_gx import baseline_sql
    t = load_schema().tables["stop_times"]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW stop_times AS SELECT * FROM read_parquet('{part}', hive_partitioning=false)")
    described = [(r[0], r[1]) for r in con.sql("DESCRIBE stop_times").fetchall()]
    checks, sql = baseline_sql(t, "stop_times")
    bad = con.sql(sql).fetchall()[0]
    failed = sum(1 for v in bad if v) + (described != partition_columns(t))
    rows = con.sql("SELECT count(*) FROM stop_times").fetchall()[0][0]
    n = len(checks) + 1
elif what in ("gx_duckdb", "gx_pandas", "gx_duckdb_warehouse"):
    from warehouse.contracts import validate_version
    route, _, source = what[3:].partition("_")
    res, _ = validate_version(ws, feed_id, ver, route=route, tables=["stop_times"], source=source or "lake", engine="gx")
    failed = sum(1 for r in res if not r["success"])
    rows = next(r["element_count"] for r in res if r["rule"] == "not_null" and r["column_name"] == "_line")
    n = len(res)
elif what == "gx_pandas_batches":
    import pyarrow as pa, pyarrow.parquet as pq, pandas as pd
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl
    from transforms.contracts import table_contracts
    from transforms.schema import load_schema
    from warehouse.contracts import gx_context
    t = load_schema().tables["stop_times"]
    ctx = gx_context(Workspace(Path(home) / "batches"))
    contracts = [c for c in table_contracts(t, engine="pandas") if c.rule not in ("unique_key", "unique_compound_key")]
    suite = gx.ExpectationSuite(name="stop_times_rows", expectations=[get_expectation_impl(c.expectation_type)(**c.kwargs) for c in contracts])
    bd = ctx.data_sources.add_pandas("b").add_dataframe_asset("stop_times").add_batch_definition_whole_dataframe("batch")
    mapper = {pa.int32(): pd.Int32Dtype(), pa.float64(): pd.Float64Dtype()}.get
    failed_set, rows = set(), 0
    for b in pq.ParquetFile(part).iter_batches(batch_size=1_000_000):
        df = pa.Table.from_batches([b]).to_pandas(types_mapper=mapper)
        rows += len(df)
        r = bd.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format="SUMMARY")
        failed_set |= {i for i, x in enumerate(r.results) if not x.success}
        del df
    failed, n = len(failed_set), len(contracts)
elif what.startswith("contracts_"):
    from warehouse.contracts import run_contracts
    s = run_contracts(ws, feed_id, ver, route=what.split("_", 1)[1], engine="gx")  # GX's own engine (the SQL one: bench_pipeline)
    failed, n = s["failed"], s["expectations"]
    import duckdb
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{part}', hive_partitioning=false)").fetchall()[0][0]
wall = time.perf_counter() - t0
print(json.dumps({"rows": rows, "expectations": n, "failed": failed, "wall_s": wall, "work_s": time.perf_counter() - t1,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def baseline_sql(table, view: str) -> tuple[list, str]:
    """Return (contracts, one SELECT counting each contract's violations in plain DuckDB SQL) for ``table``'s row checks."""
    from transforms.contracts import table_contracts
    from transforms.canonical import q

    checks, exprs = [], []
    for c in table_contracts(table, engine="sql"):
        k = c.kwargs
        col = q(k["column"]) if "column" in k else None
        if c.rule == "not_null":
            e = f"count(*) - count({col})"
        elif c.rule == "unique_key":
            e = f"count({col}) - count(DISTINCT {col})"
        elif c.rule == "unique_compound_key":
            cols = ", ".join(q(x) for x in k["column_list"])
            e = f"count(*) - count(DISTINCT ({cols}))"
        elif c.rule == "has_rows":
            e = "CASE WHEN count(*) >= 1 THEN 0 ELSE 1 END"
        elif c.expectation_type == "expect_column_values_to_be_between":
            cond = [f"{col} < {k['min_value']!r}" if k["min_value"] is not None else None,
                    f"{col} > {k['max_value']!r}" if k["max_value"] is not None else None]
            e = f"count(*) FILTER (WHERE {' OR '.join(x for x in cond if x)})"
        elif c.expectation_type == "expect_column_values_to_be_in_set":
            e = f"count(*) FILTER (WHERE {col} NOT IN ({', '.join(map(str, k['value_set']))}))"
        else:  # columns and types: DESCRIBE
            continue
        checks.append(c)
        exprs.append(e)
    return checks, f"SELECT {', '.join(exprs)} FROM {view}"


def measure(what: str, ver: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, what, str(HOME), FEED_ID, ver, str(ROOT), str(ROOT / "bench")],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicate", type=int, default=9, help="copies of Vilnius 2015 (×9 ≈ 4M stop_times)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best wall time is kept")
    ap.add_argument("--skip-full", action="store_true", help="skip run_contracts on the whole version")
    ap.add_argument("--only", nargs="*", help="measure only these (sql_baseline is always measured: it is the baseline)")
    ap.add_argument("--ingest-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ingest_only:
        ver, rows = _ingest_here(args.replicate)
        print(json.dumps({"feed_version": ver, "rows": rows}))
        return
    if not SOURCE.exists():
        raise SystemExit(f"{SOURCE} not found: the benchmark needs ../shared/data beside the project")
    print(f"ingesting Vilnius 2015 ×{args.replicate} into {HOME} (once) ...", flush=True)
    ver, rows = ingest(args.replicate)
    whats = ["sql_baseline", "gx_duckdb", "gx_duckdb_warehouse", "gx_pandas", "gx_pandas_batches"]
    if not args.skip_full:
        whats += ["contracts_duckdb", "contracts_pandas"]
    if args.only:
        whats = ["sql_baseline"] + [w for w in whats if w in args.only and w != "sql_baseline"]
    print(f"stop_times rows: {rows:,}; best of {args.repeat} run(s) each, one process per run")
    print(f"{'what':<20} {'rows':>10} {'checks':>7} {'failed':>7} {'wall s':>8} {'work s':>8} {'peak MB':>8} {'× SQL':>7} {'work × SQL':>10}")
    results, base, base_work = [], None, None
    for what in whats:
        runs = [measure(what, ver) for _ in range(args.repeat)]
        r = min(runs, key=lambda x: x["wall_s"])
        base, base_work = base or r["wall_s"], base_work or r["work_s"]
        print(f"{what:<20} {r['rows']:>10,} {r['expectations']:>7} {r['failed']:>7} {r['wall_s']:>8.2f} {r['work_s']:>8.2f} "
              f"{r['peak_mb']:>8.0f} {r['wall_s'] / base:>7.2f} {r['work_s'] / base_work:>10.2f}", flush=True)
        results.append({"what": what, "replication": args.replicate, **r, "ratio_to_sql": r["wall_s"] / base,
                        "work_ratio_to_sql": r["work_s"] / base_work})
    (OUT / "gx_results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
