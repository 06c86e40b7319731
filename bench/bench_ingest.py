"""Benchmark: GTFS ingest against bare DuckDB read_csv (the floor) and gtfs-kit read_feed.

Input: ../shared/data/gtfs/world/vilnius-2015 replicated ×1, ×4 and ×16 (trips and
stop_times copied with suffixed trip ids; the other files unchanged). Every measurement
runs in its own process, so wall time includes imports and peak memory is that process's.

    uv run python bench/bench_ingest.py [--sizes 1 4 16] [--repeat 1]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
import csv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "data" / "gtfs" / "world" / "vilnius-2015" / "gtfs.zip"
OUT = ROOT / "bench" / "out"


def replicate(n: int) -> tuple[Path, Path, int]:
    """Return (feed zip, extracted stop_times.txt, stop_times rows) for the feed replicated n times."""
    feed = OUT / f"vilnius-x{n}-blocks.zip"  # named anew when the replication changed, so no older copy is reused
    st_path = OUT / f"vilnius-x{n}-blocks-stop_times.txt"
    if feed.exists() and st_path.exists():
        rows = sum(1 for _ in st_path.open("rb")) - 1
        return feed, st_path, rows
    OUT.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(SOURCE) as zf:
        files = {n_: zf.read(n_) for n_ in zf.namelist()}

    def rep(data: bytes, *id_cols: str) -> bytes:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        header, lines = rows[0], [r for r in rows[1:] if r]
        idx = [header.index(c) for c in id_cols if c in header]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for k in range(n):
            for cells in lines:
                if k:
                    cells = list(cells)
                    for i in idx:
                        if cells[i]:
                            cells[i] = f"{cells[i]}_r{k}"
                w.writerow(cells)
        return buf.getvalue().encode("utf-8")

    # each copy is its own service: its trips and its blocks (copies sharing a block_id would overlap in time, and
    # every validator would report each pair: 140,388 block_trips_with_overlapping_stop_times at ×4 in gtfs-guru)
    files["trips.txt"] = rep(files["trips.txt"], "trip_id", "block_id")
    files["stop_times.txt"] = rep(files["stop_times.txt"], "trip_id")
    with zipfile.ZipFile(feed, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    st_path.write_bytes(files["stop_times.txt"])
    return feed, st_path, files["stop_times.txt"].count(b"\n") - 1


CHILD = r"""
import json, resource, sys, time, shutil
import pyarrow.parquet as pq
what, feed, st = sys.argv[1], sys.argv[2], sys.argv[3]
if what == "noriba_ingest":  # the previous run's workspace is removed before the clock starts: not ingest work
    shutil.rmtree(sys.argv[4], ignore_errors=True)
t0 = time.perf_counter()
if what == "duckdb_read_csv":
    import duckdb
    con = duckdb.connect()
    con.execute(f"CREATE TABLE stop_times AS SELECT * FROM read_csv('{st}', types={{'trip_id': 'VARCHAR', 'stop_id': 'VARCHAR'}})")
    rows = con.execute("SELECT count(*) FROM stop_times").fetchall()[0][0]
elif what == "gtfs_kit_read_feed":
    import gtfs_kit
    f = gtfs_kit.read_feed(feed, dist_units="km")
    rows = len(f.stop_times)
elif what in ("noriba_ingest", "noriba_publish", "noriba_validate"):
    from pathlib import Path
    from noriba.specs import parse_spec
    from warehouse.workspace import Workspace
    from noriba import pipeline
    home = Path(sys.argv[4])
    ws = Workspace(home)
    if what == "noriba_ingest":  # archive, unzip, decode, read, type, structural checks, Parquet lake
        ws.ensure()
        spec = parse_spec({"id": "vilnius", "kind": "gtfs", "source": {"path": feed}}, where="bench", root=Path("."))
        staged = pipeline.parse_validate(spec, ws, pipeline.fetch(spec, ws), rules=False)
        lake = pipeline.write_lake(ws, staged)
        rows = json.loads(pq.read_table(next((home / "lake" / "meta_feed_versions").rglob("*.parquet"))).column("files")[0].as_py())["stop_times.txt"]["accepted"]
        (home / "lake.json").write_text(json.dumps(lake))
    elif what == "noriba_publish":  # the lake version into the DuckDB file, one transaction
        lake = json.loads((home / "lake.json").read_text())
        rows = pipeline.publish_step(ws, lake)["published"]["gtfs.stop_times"]
    else:  # the full rule set over the lake version's tables
        from transforms.rules.engine import run_rules
        from transforms.rules.registry import all_rules
        lake = json.loads((home / "lake.json").read_text())
        files = {p.parent.parent.parent.name[len("gtfs_"):]: [str(p)] for p in (home / "lake").glob(f"gtfs_*/feed_id=vilnius/feed_version={lake['feed_version']}/part-0.parquet")}
        run = run_rules(None, files=files)
        rows = pq.ParquetFile(files["stop_times"][0]).metadata.num_rows
        print(json.dumps({"rules": sum(1 for r in all_rules() if r.stage == "sql"), "findings": sum(run.counts.values()),
                          "slowest": sorted(run.seconds.items(), key=lambda kv: -kv[1])[:5]}), file=sys.stderr)
wall = time.perf_counter() - t0
print(json.dumps({"rows": rows, "wall_s": wall, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(what: str, feed: Path, st: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, what, str(feed), str(st), str(OUT / "home")],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if what == "noriba_validate":
        out["detail"] = json.loads(proc.stderr.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best wall time is kept")
    ap.add_argument("--skip-gtfs-kit", action="store_true")
    args = ap.parse_args()
    if not SOURCE.exists():
        raise SystemExit(f"{SOURCE} not found: the benchmark needs ../shared/data beside the project")
    results = []
    print(f"Vilnius 2015 GTFS replicated by copying trips/stop_times with suffixed trip ids; best of {args.repeat} run(s) each.")
    print(f"{'size':>5} {'stop_times':>11} {'what':<20} {'wall s':>8} {'peak MB':>8} {'× floor':>8}")
    for n in args.sizes:
        feed, st, rows = replicate(n)
        whats = ["duckdb_read_csv", "noriba_ingest", "noriba_publish", "noriba_validate"] + ([] if args.skip_gtfs_kit else ["gtfs_kit_read_feed"])
        got: dict[str, dict] = {}
        for _ in range(args.repeat):
            # publish and validate read the lake that the ingest run just before them wrote
            for what in whats:
                r = measure(what, feed, st)
                if what not in got or r["wall_s"] < got[what]["wall_s"]:
                    got[what] = r
        floor = got["duckdb_read_csv"]["wall_s"]
        for what, r in got.items():
            print(f"×{n:<4} {rows:>11,} {what:<20} {r['wall_s']:>8.2f} {r['peak_mb']:>8.0f} {r['wall_s'] / floor:>8.2f}")
            results.append({"replication": n, "stop_times_rows": rows, "what": what, **r, "ratio_to_floor": r["wall_s"] / floor})
        if "gtfs_kit_read_feed" in got:
            print(f"      noriba ingest / gtfs-kit read_feed = {got['noriba_ingest']['wall_s'] / got['gtfs_kit_read_feed']['wall_s']:.2f}")
        print(f"      ingest + publish = {got['noriba_ingest']['wall_s'] + got['noriba_publish']['wall_s']:.2f} s "
              f"({(got['noriba_ingest']['wall_s'] + got['noriba_publish']['wall_s']) / floor:.2f} × floor)")
    (OUT / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
