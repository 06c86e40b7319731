"""Benchmark: trips ingest and publish of the 36 NYC yellow months against bare DuckDB read_csv of the same files (the floor).

Input: ../shared/data/trips/nyc-yellow-samples/monthly (36 files, 360,000 rows) replicated ×4 and ×16
(the same files linked under r00..r15/, names kept so each file still declares its month; ×16 =
576 files, 5,760,000 rows). Every measurement runs in its own process, like bench_ingest.py: wall
time includes imports and peak memory is that process's max RSS.

- ``floor``: ``CREATE TABLE t AS SELECT * FROM read_csv([...files], strict_mode=false)`` (the mixed
  LF/CRLF months need strict_mode=false), nothing else;
- ``zones``: the nyc-taxi-zones spec's run (``run_trips`` of the zones spec: read the shapefile,
  reproject, keep the layer in the lake, publish trips.zones) into a fresh workspace; a zone layer
  is ingested once per layer version, by its own spec and DAG, before the trips that use it;
- ``ingest``: the trips DAG's steps up to the lake in the workspace the zones run left
  (``fetch_trips``, ``parse_validate_trips``, ``write_trips_lake``): hash and archive every file,
  read, map to fct_trips (units, both clocks, code lists), zone lookup against the stored TLC layer
  (+ unknown-zone rules), every trip rule, quarantine with raw rows, the Parquet lake by month;
- ``publish``: the DAG's publish step (``noriba.tasks.trips_publish``: ``publish_trips`` of that
  lake version, no spec loading): one DuckDB transaction (the rows copied into trips.fct_trips,
  quality tables, marts) and the checkpoint;
- ``ingest_cold``: ``ingest`` in a fresh workspace without the zones run, so it reads and
  reprojects the shapefile itself.

    uv run python bench/bench_trips.py [--sizes 1 4 16] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONTHLY = ROOT.parent / "shared" / "data" / "trips" / "nyc-yellow-samples" / "monthly"
OUT = ROOT / "bench" / "out"
WHATS = ("floor", "ingest_cold", "zones", "ingest", "publish")


def replicate(n: int) -> Path:
    """Return a folder holding the 36 monthly files n times (symlinks under r00.., names unchanged)."""
    folder = OUT / f"yellow-x{n}"
    for k in range(n):
        sub = folder / f"r{k:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        for f in sorted(MONTHLY.glob("*.csv")):
            link = sub / f.name
            if not link.exists():
                os.symlink(f, link)
    return folder


CHILD = r"""
import json, resource, sys, time, shutil, glob
t0 = time.perf_counter()
what, folder, home = sys.argv[1], sys.argv[2], sys.argv[3]
files = sorted(glob.glob(folder + "/r*/*.csv"))
extra = {}
if what == "floor":
    import duckdb
    con = duckdb.connect()
    lst = "[" + ", ".join("'" + f + "'" for f in files) + "]"
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv({lst}, strict_mode=false)")
    rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
elif what == "publish":  # noriba.tasks.trips_publish: the lake version into the DuckDB file, one transaction, marts, checkpoint
    from pathlib import Path
    from warehouse.workspace import Workspace
    from warehouse.trips import published_version, publish_trips
    ws = Workspace(Path(home))
    assert published_version(ws, "yellow-bench") is None
    out = publish_trips(ws, "yellow-bench")
    rows = out["rows_in"]
    extra = {"accepted": out["rows_accepted"]}
else:
    from pathlib import Path
    from noriba.specs import parse_spec
    from warehouse.workspace import Workspace
    from noriba import trips_pipeline as tp
    from noriba.specs import load_trip_specs
    if what in ("ingest_cold", "zones"):
        shutil.rmtree(home, ignore_errors=True)
    ws = Workspace(Path(home)).ensure()
    specs = {s.id: s for s in load_trip_specs()}
    base = specs["nyc-yellow-samples"]
    doc = {"id": "yellow-bench", "kind": "trips", "source": {"path": folder}, "timezone": base.timezone,
           "municipality": base.municipality, "trips": {**base.options, "files": ["r*/*.csv"]}}
    spec = parse_spec(doc, where="bench", root=Path("."))
    specs[spec.id] = spec
    if what == "zones":  # the zone layer's own run: shapefile -> lake (stored layer) -> trips.zones
        rows = tp.run_trips(specs["nyc-taxi-zones"], ws, specs=specs)["zones"]
    else:  # the trips DAG's fetch, parse_validate and write_lake steps
        fetched = tp.fetch_trips(spec, ws)
        staged = tp.parse_validate_trips(spec, ws, fetched, specs=specs)
        tp.write_trips_lake(ws, staged)
        rows = staged["rows_in"]
        extra = {"accepted": staged["rows_accepted"], "quarantined": staged["rows_quarantined"],
                 "phases": {k: round(v, 2) for k, v in staged.get("seconds", {}).items()}}
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"what": what, "rows": rows, "wall_s": round(wall, 2), "peak_mb": round(peak), **extra}))
"""


def measure(what: str, folder: Path, n: int) -> dict:
    home = OUT / f"home-trips-x{n}" if what != "ingest_cold" else OUT / f"home-trips-cold-x{n}"
    res = subprocess.run([sys.executable, "-c", CHILD, what, str(folder), str(home)], capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(f"{what} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best wall time is kept")
    args = ap.parse_args()
    if not MONTHLY.exists():
        raise SystemExit(f"{MONTHLY} is missing; the benchmark needs ../shared/data beside the project")
    load = os.getloadavg()
    print(f"NYC yellow samples ×n; best of {args.repeat}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    table, results = [], []
    for n in args.sizes:
        folder = replicate(n)
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for what in WHATS:  # ingest reads the layer the zones run stored; publish reads the lake the ingest wrote
                m = measure(what, folder, n)
                if what not in best or m["wall_s"] < best[what]["wall_s"]:
                    best[what] = m
        floor = best["floor"]["wall_s"]
        ing, pub = best["ingest"], best["publish"]
        both = {"wall_s": round(ing["wall_s"] + pub["wall_s"], 2), "peak_mb": max(ing["peak_mb"], pub["peak_mb"])}
        for what in WHATS:
            r = best[what]
            print(f"×{n:<3} {r['rows']:>10,} {what:<12} {r['wall_s']:7.2f} s {r['peak_mb']:6d} MB  {r['wall_s'] / floor:5.2f} × floor"
                  + (f"   accepted {r['accepted']:,}, quarantined {r['quarantined']:,}, phases {r['phases']}" if "phases" in r else ""),
                  flush=True)
            results.append({"replication": n, **r, "ratio_to_floor": round(r["wall_s"] / floor, 2)})
        print(f"×{n:<3} {ing['rows']:>10,} {'ingest+publish':<12} {both['wall_s']:7.2f} s {both['peak_mb']:6d} MB  {both['wall_s'] / floor:5.2f} × floor",
              flush=True)
        results.append({"replication": n, "what": "ingest+publish", "rows": ing["rows"], **both, "ratio_to_floor": round(both["wall_s"] / floor, 2)})
        table.append((n, ing["rows"], best, both))
    (OUT / "trips_results.json").write_text(json.dumps(results, indent=2))
    print()
    print("| size | rows | floor | ingest | × floor | publish | × floor | ingest + publish | × floor | zones run (once per layer) | cold ingest (reads the shapefile) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, rows, b, both in table:
        f = b["floor"]["wall_s"]

        def cell(r: dict) -> str:
            return f"{r['wall_s']:.2f} s, {r['peak_mb']} MB"

        print(f"| ×{n} | {rows:,} | {cell(b['floor'])} | {cell(b['ingest'])} | {b['ingest']['wall_s'] / f:.2f} | {cell(b['publish'])} | "
              f"{b['publish']['wall_s'] / f:.2f} | {cell(both)} | {both['wall_s'] / f:.2f} | {cell(b['zones'])} | "
              f"{cell(b['ingest_cold'])} ({b['ingest_cold']['wall_s'] / f:.2f}) |")


if __name__ == "__main__":
    main()
