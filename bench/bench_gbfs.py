"""Benchmark: the Boulder B-cycle day of GBFS station_status snapshots to the lake and marts, against reading and
``json.loads`` of the same files (the floor).

Input: ``../shared/data/gbfs/boulder-bcycle-2022``. The upstream day has 1,394 snapshots (16 MB); the
shared copy holds the first 60 of them (00:00-01:01 UTC). The day is rebuilt from those: snapshot k
is real snapshot k mod 60 with ``last_updated`` / ``last_reported`` moved on by 62 s per snapshot
(the day's mean polling interval), written to ``bench/out/boulder-day/`` as 1,394 files of the same
size plus the real station_information.json. Say so with the figures.

Every measurement runs in its own process; peak memory is that process's max RSS. The wall time is
taken around the work after the imports (reported apart), since the floor needs no import; so is the
CPU time (user + system of every thread of the process, DuckDB's included: steadier than the wall
time on a shared machine). Rounds are interleaved (floor, ingest, ingest_all, floor, ...); the best of
each is kept, and the load average is printed at the start and the end:

- ``floor``: read every file and ``json.loads`` it, nothing else (each document is dropped once its stations are
  counted: keeping 1,394 parsed documents alive made the garbage collector walk them over and over, which
  inflated the floor of the week by ~2x in session 7's figures);
- ``ingest``: ``noriba.gbfs.ingest`` into a fresh workspace, exports off: hash and archive every file
  under raw/, parse and type every snapshot (vehicle-id scrubbing, quarantine, rows in = accepted +
  quarantined), the official JSON schema on the information files and on the first, every 100th and
  the last status snapshot (``schema_check: sample``), the cross-file rules, the Parquet lake batch,
  then the publish transaction (into a warehouse whose tables exist: made before the timer,
  as by any earlier run, and reported as setup_s) (gbfs tables, notices, meta) with both marts and the checkpoint;
- ``ingest_all``: the same with ``schema_check: all`` (every snapshot through the schema check);
- ``floor_hour`` / ``hour``: the day's last UTC hour of snapshots alone, read and ``json.loads``-ed / ingested into a
  warehouse that holds the rest of the day (ingested before the timer): the archiver's hourly step, published
  incrementally (only its rows, and the mart hours it can change); ``hour_whole``: the same step with the feed
  republished whole, as before the publish was incremental.

    uv run python bench/bench_gbfs.py [--repeat 3] [--snapshots 1394 9758] [--whats floor ingest ingest_all]

``--digests OUT.json`` writes instead what the code answers (to prove a speed-up changed nothing; run it on the code
before and after, in a checkout each, and compare the two files): for the rebuilt day, the day as its last hour on top
of the rest (the incremental step), the three shared systems, and TIER and Oslo in two batches (a later batch published
incrementally), a digest of every lake table's rows, every raw archive's bytes and every warehouse table's rows (gbfs,
marts, quality, meta), times of the run left out, with the publish modes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOULDER = ROOT.parent / "shared" / "data" / "gbfs" / "boulder-bcycle-2022"
OUT = ROOT / "bench" / "out"
DAY = 1394
STEP_S = 62


def boulder_day(n: int = DAY) -> Path:
    """Return a folder with the Boulder day rebuilt to ``n`` snapshots from the 60 shared ones (see the module docstring)."""
    folder = OUT / ("boulder-day" if n == DAY else f"boulder-{n}")
    status = folder / "station_status_2022-02-15_UTC"
    if status.is_dir() and len(list(status.glob("*.json"))) == n:
        return folder
    status.mkdir(parents=True, exist_ok=True)
    real = sorted((BOULDER / "station_status_2022-02-15_UTC").glob("*.json"))
    t0 = json.loads(real[0].read_text())["last_updated"]
    for k in range(n):
        doc = json.loads(real[k % len(real)].read_text())
        shift = t0 + k * STEP_S - doc["last_updated"]
        doc["last_updated"] += shift
        for st in doc["data"]["stations"]:
            st["last_reported"] += shift
        (status / f"{doc['last_updated']}.json").write_text(json.dumps(doc))
    (folder / "station_information.json").write_bytes((BOULDER / "station_information.json").read_bytes())
    return folder


def split_last_hour(day: Path) -> tuple[Path, Path]:
    """Return (before, hour): the day's folder less the status snapshots of its last hour, and those snapshots alone."""
    base = OUT / f"{day.name}-split"
    before, hour = base / "before", base / "hour"
    status = sorted((day / "station_status_2022-02-15_UTC").glob("*.json"), key=lambda p: int(p.stem))
    last = int(status[-1].stem)
    cut = last - last % 3600  # the last UTC hour
    if not (hour.is_dir() and before.is_dir()):
        for folder in (before, hour):
            (folder / "station_status_2022-02-15_UTC").mkdir(parents=True, exist_ok=True)
        for f in status:
            dest = (hour if int(f.stem) >= cut else before) / "station_status_2022-02-15_UTC" / f.name
            dest.write_bytes(f.read_bytes())
        (before / "station_information.json").write_bytes((day / "station_information.json").read_bytes())
    return before, hour


CHILD = r"""
import glob, json, resource, sys, time
what, folder, home = sys.argv[1], sys.argv[2], sys.argv[3]
pre = sys.argv[4] if len(sys.argv) > 4 else None  # ingested before the timer (the warehouse already holds it)
files = sorted(glob.glob(folder + "/**/*.json", recursive=True))
t_imp = time.perf_counter()
out = {"what": what, "files": len(files), "bytes": sum(len(open(f, "rb").read()) for f in files)}
if what.startswith("floor"):
    t, c = time.perf_counter(), time.process_time()
    rows = 0
    for f in files:  # each document dropped once counted: keeping them all makes the collector walk them again and again
        with open(f, "rb") as fh:
            rows += len(json.loads(fh.read())["data"]["stations"])
    out["wall_s"] = time.perf_counter() - t
    out["cpu_s"] = time.process_time() - c
    out["rows"] = rows
    out["import_s"] = 0.0
else:
    from pathlib import Path
    import duckdb, jsonschema, pandas, pyarrow  # noqa  (pyarrow imports pandas on its first pa.array)
    from noriba.gbfs import ingest
    from noriba.specs import parse_spec
    from warehouse.workspace import Workspace
    import transforms.gbfs.rules, warehouse.gbfs  # noqa
    out["import_s"] = time.perf_counter() - t_imp
    from warehouse.gbfs import _create  # the warehouse exists, as after any earlier run: its tables are made before the timer
    t_setup = time.perf_counter()
    Path(home).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(home + "/noriba.duckdb")
    _create(con)
    con.close()
    check = "all" if what == "ingest_all" else "sample"
    spec = parse_spec({"id": "boulder-day", "kind": "gbfs", "source": {"path": folder}, "timezone": "America/Denver",
                       "gbfs": {"schema_check": check}}, where="bench", root=Path("."))
    if pre:
        ingest(Workspace(Path(home)), "boulder-day", Path(pre), spec=spec, export=False)
    if what == "hour_whole":  # the same step, the feed republished whole (as before the publish was incremental)
        import noriba.gbfs as ng
        whole = ng.publish_feed
        ng.publish_feed = lambda *a, new_batches=None, **k: whole(*a, **k)
    out["setup_s"] = time.perf_counter() - t_setup
    marks = {}
    t, c = time.perf_counter(), time.process_time()
    def progress(msg):
        if "publishing" in msg:
            marks["to_lake_s"] = time.perf_counter() - t
    res = ingest(Workspace(Path(home)), "boulder-day", Path(folder), spec=spec, export=False, progress=progress)
    out["publish_mode"] = res.get("publish_mode")
    out["wall_s"] = time.perf_counter() - t
    out["cpu_s"] = time.process_time() - c
    out["to_lake_s"] = marks.get("to_lake_s")
    out["publish_s"] = out["wall_s"] - out["to_lake_s"]
    out["rows"] = res["batch_rows_in"]  # of this ingest (for "hour": the last hour's rows, not the day's)
    out["rows_quarantined"] = res["rows_quarantined"]
    con = duckdb.connect(home + "/noriba.duckdb", read_only=True)
    out["mart_rows"] = con.sql("SELECT count(*) FROM marts.gbfs_station_availability_hour").fetchall()[0][0]
    out["mart_zone_rows"] = con.sql("SELECT count(*) FROM marts.gbfs_vehicles_zone_hour").fetchall()[0][0]
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run(what: str, folder: Path, home: Path, pre: Path | None = None, *, tree: Path = ROOT) -> dict:
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    res = subprocess.run([sys.executable, "-c", CHILD, what, str(folder), str(home), *([str(pre)] if pre else [])], cwd=tree,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _rows_digest(cols: list[str], rows) -> list:
    """Return [rows, digest of the rows sorted] without the columns that hold the run's own times or paths (the folders
    read are named from the checkout and its parent, so two checkouts give the same digests)."""
    import hashlib

    keep = [i for i, c in enumerate(cols) if c not in ("ingested_at", "raw_path", "published_at", "fetched_at")]
    lines = sorted(repr(tuple(r[i] for i in keep)).replace(str(ROOT), "<checkout>").replace(str(ROOT.parent), "<parent>")
                   for r in rows)
    return [len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]]


def digests(tree: Path = ROOT) -> dict:
    """Return the digests of what ingesting the scenarios of ``--digests`` answers (run in this process, code of ``tree``)."""
    import hashlib
    import shutil

    sys.path.insert(0, str(tree))
    import duckdb
    import pyarrow.parquet as pq

    from noriba.gbfs import ingest
    from noriba.specs import parse_spec
    from warehouse.workspace import Workspace

    day = boulder_day()
    before, hour = split_last_hour(day)
    shared = BOULDER.parent
    scenarios = {
        "day": [("b", day, "America/Denver")],
        "hour": [("b", before, "America/Denver"), ("b", hour, "America/Denver")],
        "boulder": [("b", BOULDER, "America/Denver")],
        "oslo": [("o", shared / "oslo-bysykkel-v2.3", "Europe/Oslo")],
        "tier": [("t", shared / "tier-wolfsburg-v2.3", "Europe/Berlin")],
        "tier_two_batches": [("t", shared / "tier-wolfsburg-v2.3" / "head", "Europe/Berlin"), ("t", shared / "tier-wolfsburg-v2.3", "Europe/Berlin")],
        "oslo_two_batches": [("o", shared / "oslo-bysykkel-v2.3" / "station_status_history", "Europe/Oslo"),
                             ("o", shared / "oslo-bysykkel-v2.3", "Europe/Oslo")],
    }
    out = {}
    for name, steps in scenarios.items():
        home = OUT / "digests" / name
        shutil.rmtree(home, ignore_errors=True)
        ws = Workspace(home)
        modes = []
        for feed, folder, tz in steps:
            spec = parse_spec({"id": feed, "kind": "gbfs", "source": {"path": str(folder)}, "timezone": tz}, where="bench", root=Path("."))
            modes.append(ingest(ws, feed, folder, spec=spec, export=False).get("publish_mode"))
        d: dict = {"publish_modes": modes}
        for p in sorted((home / "lake").rglob("*.parquet")):
            t = pq.read_table(p)
            d[f"lake/{p.relative_to(home / 'lake')}"] = _rows_digest(t.column_names, [tuple(r.values()) for r in t.to_pylist()])
        for p in sorted((home / "raw").rglob("*.zip")):
            d[f"raw/{p.relative_to(home / 'raw')}"] = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        con = duckdb.connect(str(home / "noriba.duckdb"), read_only=True)
        for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN "
                                "('gbfs', 'marts', 'quality', 'meta') ORDER BY 1, 2").fetchall():
            rel = con.execute(f"SELECT * FROM {s}.{t}")
            d[f"{s}.{t}"] = _rows_digest([c[0] for c in rel.description], rel.fetchall())
        con.close()
        out[name] = d
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--snapshots", type=int, nargs="+", default=[DAY], help="status snapshots (1394 = the day; more = more days)")
    ap.add_argument("--whats", nargs="+", default=["floor", "ingest", "ingest_all", "floor_hour", "hour", "hour_whole"],
                    help="floor_hour / hour: the day's last hour alone, read / ingested into a warehouse holding the rest; "
                         "hour_whole: the same, the feed republished whole")
    ap.add_argument("--before", type=Path, help="a checkout of earlier code (git worktree or archive): its ingest runs as "
                    "'before' in the same rounds, for a before/after in the same conditions")
    ap.add_argument("--digests", type=Path, help="write the digests of what the code answers to this file, and stop")
    args = ap.parse_args()
    if args.digests:
        args.digests.write_text(json.dumps(digests(), indent=1, sort_keys=True))
        print(f"digests written to {args.digests}")
        return
    if args.before:
        args.whats.insert(args.whats.index("ingest") + 1, "before")
    import os

    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    print(f"{'what':<11} {'files':>6} {'MB':>6} {'rows':>9} {'wall s':>8} {'ratio':>6} {'cpu s':>7} {'ratio':>6} {'to lake':>8} "
          f"{'publish':>8} {'import s':>8} {'peak MB':>8}")
    for n in args.snapshots:
        folder = boulder_day(n)
        before, hour = split_last_hour(folder) if any("hour" in w for w in args.whats) else (None, None)
        best: dict[str, dict] = {}
        cpu: dict[str, float] = {}  # best CPU time (user + system, all threads) of each step, apart from the best wall time
        for _ in range(args.repeat):
            for what in args.whats:
                r = run("ingest" if what == "before" else what, hour if "hour" in what else folder, OUT / f"home-gbfs-{what}",
                        before if what in ("hour", "hour_whole") else None, tree=args.before if what == "before" else ROOT)
                if what not in best or r["wall_s"] < best[what]["wall_s"]:
                    best[what] = r
                cpu[what] = min(cpu.get(what, 1e9), r["cpu_s"])
        for what, r in best.items():
            base = "floor_hour" if "hour" in what else "floor"
            floor, floor_cpu = best[base]["wall_s"], cpu[base]
            lake = f"{r['to_lake_s']:>8.3f} {r['publish_s']:>8.3f}" if r.get("to_lake_s") is not None else f"{'':>8} {'':>8}"
            print(f"{what:<11} {r['files']:>6} {r['bytes'] / 1e6:>6.1f} {r['rows']:>9,} {r['wall_s']:>8.3f} {r['wall_s'] / floor:>6.2f} "
                  f"{cpu[what]:>7.3f} {cpu[what] / floor_cpu:>6.2f} {lake} {r['import_s']:>8.3f} {r['peak_rss_mb']:>8.0f}")
        print(json.dumps(best))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
