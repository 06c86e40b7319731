"""Benchmark: merging the 29 Bay Area feeds into one GTFS against a naive concatenation (the floor).

The feeds of ../shared/data/gtfs/world/sfbay-511-2018 are ingested once into bench/out/sfbay-home.
Then, each in its own process (wall time includes imports; peak memory is that process's max RSS):

- **floor**: every canonical table of the 29 lake partitions UNION ALL'd and written as GTFS text
  into one zip — no id handling, no unification (the result is not a valid merged feed);
- **merge**: ``warehouse.merge.merge`` + ``write_feed`` (collisions, unification, crosswalk, zip);
- **validate**: Noriba's validator over the merged zip (read, type, structural checks, rules);
- **extract**: merge + polygon extract (San Francisco and the East Bay shore) + zip;
- **build_export**: the whole ``noriba export sfbay-511-2018`` (merge, zip, validate, Parquet, DuckDB, CSV, catalog).

    uv run python bench/bench_exports.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
HOME = OUT / "sfbay-home"
POLYGON = [[-122.52, 37.70], [-122.36, 37.70], [-122.20, 37.76], [-122.22, 37.88], [-122.52, 37.83]]

CHILD = r'''
import json, resource, sys, time
t0 = time.perf_counter()
from pathlib import Path
from warehouse.workspace import Workspace
from noriba.exports import latest_versions, build_export, _namespaces, load_export_spec
ws = Workspace(Path(sys.argv[2]))
what = sys.argv[1]
lake = {f: m for f, m in latest_versions(ws).items() if f.startswith("sfbay-")}
rows = 0
if what == "floor":
    import duckdb, tempfile
    from transforms.schema import load_schema
    from warehouse.export import write_gtfs_text, zip_dir
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        for t in load_schema().tables.values():
            parts = [ws.lake_partition(f"gtfs_{t.name}", f, m["feed_version"]) / "part-0.parquet" for f, m in lake.items()]
            parts = [str(p) for p in parts if p.exists()]
            if not parts:
                continue
            con.execute(f"CREATE TABLE w AS SELECT * FROM read_parquet({parts}, hive_partitioning=false, union_by_name=true)")
            rows += con.sql("SELECT count(*) FROM w").fetchall()[0][0]
            write_gtfs_text(con, t, "w", [f.name for f in t.fields], Path(tmp) / t.file_name)
            con.execute("DROP TABLE w")
        zip_dir(Path(tmp), Path(sys.argv[3]) / "floor.zip")
elif what in ("merge", "extract", "validate"):
    from warehouse.merge import MergeInput, merge, write_feed, validate_zip
    ids = sorted(lake)
    ns = {f: f.removeprefix("sfbay-") for f in ids}
    zip_path = Path(sys.argv[3]) / f"{what}.zip"
    if what == "validate":
        found = validate_zip(Path(sys.argv[3]) / "merge.zip")
        rows = sum(e["count"] for e in found.values())
    else:
        work, _ = merge(ws, [MergeInput(f, lake[f]["feed_version"], ns[f]) for f in ids])
        if what == "extract":
            from shapely.geometry import Polygon
            from warehouse.extract import extract
            extract(work, area=Polygon(json.loads(sys.argv[4])))
        rows = sum(work.rows().values())
        write_feed(work, zip_path)
elif what == "build_export":
    r = build_export("sfbay-511-2018", ws, force=True)
    rows = sum(json.load(open(r["manifest"]))["rows_out"].values())
print(json.dumps({"what": what, "rows": rows, "seconds": round(time.perf_counter() - t0, 2),
                  "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
'''


def run(what: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, what, str(HOME), str(OUT), json.dumps(POLYGON)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from noriba.exports import build_export; from warehouse.workspace import Workspace; "
                    f"build_export('sfbay-511-2018', Workspace.from_env('{HOME}'), validate=False)"], check=True, cwd=ROOT)
    print(f"ingest (once, if not already): {time.perf_counter() - t:.1f} s")
    results = []
    for _ in range(args.repeat):
        for what in ("floor", "merge", "validate", "extract", "build_export"):
            results.append(run(what))
            print(json.dumps(results[-1]))
    floor = min(r["seconds"] for r in results if r["what"] == "floor")
    print("\n| step | rows | s | × floor | peak MB |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['what']} | {r['rows']:,} | {r['seconds']} | {r['seconds'] / floor:.1f} | {r['peak_mb']} |")
    (OUT / "bench_exports.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
