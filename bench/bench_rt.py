"""Benchmark: GTFS-Realtime archive-to-lake for an hour of New York bus TripUpdates, and the archiver polling 50 feeds.

Input: ../shared/data/gtfs/rt/nyct-subway-2019/feed_buses_weekend.protobuf (3,547 trips, 62,928
stop_time_updates, 2.2 MB) replicated as 180 snapshots 20 s apart (one hour): each snapshot's header
timestamp is shifted by 20 s, and each trip, with probability ``--p`` (default 1/3: a bus reporting
about once a minute), gets a new report: its timestamp becomes the snapshot's, its delay changes by a
random -30..+60 s, and every one of its stop_time_updates' arrival and departure times moves by that
change. The other trips are left byte for byte as in the previous snapshot. The snapshots are
written as the archiver writes them (raw/<feed>/rt/<date>/<hour>/, one fetch-log line each).

Each measurement runs in its own process (wall time without imports; CPU = its user + system time; peak memory = that
process's max RSS); the rounds are interleaved (floor, loop, ours, floor, ...) and the best of each is kept:

- ``floor``: read each snapshot file and ``FeedMessage.ParseFromString`` it (upb), nothing else;
- ``loop``: the second baseline: the floor, plus a plain Python loop over the parsed message building
  one tuple per stop_time_update (trip id, route, start date, stop sequence, stop id, arrival and
  departure time, delay and uncertainty, schedule relationship: the columns of rt_stop_time_updates)
  and per trip update, no dedup, nothing written;
- ``ours``: ``noriba.rt.parse_hour``: read the hour's snapshots and fetch log, parse (unchanged
  entities and rows stored once), write the nine Parquet partitions of the hour (zstd), with the C
  extension native/noriba_wire when it is installed (the output says ``native``);
- ``pure`` (with ``--pure``): the same with ``NORIBA_RT_PURE=1``: the Python and numpy path only.

Then the archiver: a replay server (its own process) serves 50 feeds on 127.0.0.1 (the NYC subway
captures in turn, each feed's content changing every 30 s), and ``noriba rt archive --for`` polls
the 50 gtfs-rt specs at 20 s from one process; its CPU time (user + system, from wait4) over its wall
time is the share of one core.

``--where`` runs ``ours`` once more with a CPU timer around each of its stages (the timers add a little).

    uv run python bench/bench_rt.py [--p 0.333] [--snapshots 180] [--archiver-s 120] [--repeat 3] [--where] [--pure]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RT = ROOT.parent / "shared" / "data" / "gtfs" / "rt"
BUSES = RT / "nyct-subway-2019" / "feed_buses_weekend.protobuf"
OUT = ROOT / "bench" / "out" / "rt"
FEED = "nyct-bus"
HOUR = datetime(2025, 12, 21, 20, 0, 0, tzinfo=timezone.utc)


def make_hour(home: Path, n: int, p: float, seed: int = 15) -> tuple[int, int]:
    """Write n perturbed snapshots of the bus feed into the workspace's raw archive; return (raw bytes, stop_time_updates in them)."""
    from google.transit import gtfs_realtime_pb2 as pb

    sys.path.insert(0, str(ROOT))
    from noriba import rt
    from warehouse.workspace import Workspace

    ws = Workspace(home).ensure()
    rng = random.Random(seed)
    m = pb.FeedMessage()
    m.ParseFromString(BUSES.read_bytes())
    base_ts = int(HOUR.timestamp())
    total = stus = 0
    for k in range(n):
        ts = base_ts + 20 * k
        m.header.timestamp = ts
        if k:
            for e in m.entity:
                if rng.random() >= p:
                    continue
                tu = e.trip_update
                change = rng.randint(-30, 60)
                tu.timestamp = ts - rng.randint(0, 19)
                tu.delay = tu.delay + change
                for s in tu.stop_time_update:
                    if s.HasField("arrival"):
                        s.arrival.time += change
                    if s.HasField("departure"):
                        s.departure.time += change
        data = m.SerializeToString()
        when = HOUR + timedelta(seconds=20 * k)
        sha = hashlib.sha256(data).hexdigest()
        path = rt.archive_snapshot(ws, FEED, "trip_updates", data, when, sha)
        rt.append_line(path.parent / "fetches.jsonl", {
            "fetched_at": when.isoformat(timespec="milliseconds"), "part": "trip_updates", "url": "http://127.0.0.1/bus.pb",
            "status": 200, "latency_ms": 40.0, "bytes": len(data), "header_timestamp": ts, "changed": True, "sha256": sha,
            "file": path.name, "error": None})
        total += len(data)
        stus += sum(len(e.trip_update.stop_time_update) for e in m.entity)
    return total, stus


CHILD = r"""
import json, resource, sys, time, os
sys.path.insert(0, sys.argv[3])
what, folder = sys.argv[1], sys.argv[2]
from google.transit import gtfs_realtime_pb2 as pb
files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".pb"))
extra = {}
if what in ("ours", "where", "pure"):  # imported before the clock starts, like the floor's protobuf module
    from noriba import rt
    import numpy, pyarrow.parquet
    from transforms.gtfs_rt import parse, wire
_r = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = _r.ru_utime + _r.ru_stime
t0 = time.perf_counter()
if what == "floor":
    for f in files:
        m = pb.FeedMessage()
        m.ParseFromString(open(f, "rb").read())
elif what == "loop":
    rows = tus = 0
    for f in files:
        m = pb.FeedMessage()
        m.ParseFromString(open(f, "rb").read())
        out = []
        for e in m.entity:
            if e.HasField("trip_update"):
                tu = e.trip_update
                tr = tu.trip
                tus += 1
                out.append((e.id, tr.trip_id, tr.route_id, tr.start_date, tu.vehicle.id, tu.timestamp, tu.delay))
                for s in tu.stop_time_update:
                    a, d = s.arrival, s.departure
                    out.append((e.id, tr.trip_id, tr.route_id, tr.start_date, s.stop_sequence, s.stop_id,
                                a.time if s.HasField("arrival") else None, a.delay if s.HasField("arrival") else None,
                                a.uncertainty if s.HasField("arrival") else None,
                                d.time if s.HasField("departure") else None, d.delay if s.HasField("departure") else None,
                                d.uncertainty if s.HasField("departure") else None, s.schedule_relationship))
        rows += len(out)
    extra = {"rows_built": rows}
else:
    from noriba import rt
    from warehouse.workspace import Workspace
    home, feed, hour = sys.argv[4], sys.argv[5], sys.argv[6]
    where = {}
    if what == "where":  # ours, with the CPU time of its stages (nested: _entities holds _entity and _stop_time_updates)
        def _timed(obj, name, key):
            f = getattr(obj, name)
            def w(*a, **k):
                c = time.process_time()
                try:
                    return f(*a, **k)
                finally:
                    where[key] = where.get(key, 0.0) + time.process_time() - c
            setattr(obj, name, w)
        _timed(parse.HourParser, "_entities", "entities (changed entities, per snapshot)")
        _timed(parse.HourParser, "_entity", "  of which _entity (one entity's rows from upb, Python: the pure path)")
        _timed(parse.HourParser, "_trip_updates", "  of which _trip_updates (the trip updates read in C, stored: Python)")
        _timed(parse.HourParser, "_stop_time_updates", "  of which _stop_time_updates (walk, hash, match: the pure path)")
        _timed(parse.HourParser, "_stu_native", "  of which _stu_native (stop_time_updates hashed in C, matched, stored)")
        if parse.NATIVE is not None:
            _timed(parse.NATIVE, "trip_updates", "    of which noriba_wire.trip_updates (C)")
            _timed(parse.NATIVE, "unchanged_pos", "  of which noriba_wire.unchanged_pos (C: the unchanged entities found, counted)")
            _timed(parse.NATIVE, "store_trips", "    of which noriba_wire.store_trips (C: the changed trips' states and rows)")
            _timed(parse.NATIVE, "split", "noriba_wire.split")
        _timed(parse._StuTable, "flush", "decode new stop_time_updates (noriba_wire.decode_stus or wire.decode, Arrow arrays)")
        _timed(parse, "split_message", "split_message")
        _timed(parse.HourParser, "finish", "finish (remaining tables)")
        _timed(pyarrow.parquet.ParquetWriter, "write_table", "stop_time_updates Parquet writes")
    res = rt.parse_hour(Workspace(__import__("pathlib").Path(home)), feed, hour)
    extra = {"stored": res["stored"], "rows_in_snapshots": res["rows_in_snapshots"], "quarantined": res["quarantined"],
             "native": parse.NATIVE is not None}
    if where:
        extra["where_cpu_s"] = {k: round(v, 2) for k, v in where.items()}
        extra["pandas_imported"] = "pandas" in sys.modules
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"what": what, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime - cpu0, "snapshots": len(files),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra}))
"""


def child(what: str, folder: Path, home: Path) -> dict:
    env = {**os.environ, "NORIBA_RT_PURE": "1"} if what == "pure" else {k: v for k, v in os.environ.items() if k != "NORIBA_RT_PURE"}
    out = subprocess.run([sys.executable, "-c", CHILD, what, str(folder), str(ROOT), str(home), FEED, HOUR.strftime("%Y-%m-%dT%H")],
                         capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


SERVER = r"""
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
caps = [open(os.path.join(sys.argv[1], f), "rb").read() for f in sorted(os.listdir(sys.argv[1])) if f.startswith("feed_") and "buses" not in f]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        i = int(self.path.strip("/").split(".")[0])
        body = caps[(i + int(time.time() // 30)) % len(caps)]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.request_queue_size = 128
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def bench_archiver(seconds: float, feeds: int = 50) -> dict:
    """Return the archiver's CPU share of one core polling ``feeds`` feeds at 20 s for ``seconds``, against a replay server."""
    work = OUT / "archiver"
    shutil.rmtree(work, ignore_errors=True)
    (work / "specs" / "feeds").mkdir(parents=True)
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(RT / "nyct-subway-2019")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        for i in range(feeds):
            (work / "specs" / "feeds" / f"bus-{i:02d}.yml").write_text(
                f"id: bus-{i:02d}\nkind: gtfs-rt\nrealtime:\n  combined: http://127.0.0.1:{port}/{i}.pb\n  poll_s: 20\n")
        env = {**os.environ, "NORIBA_HOME": str(work / "home"), "NORIBA_SPECS": str(work / "specs")}
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "noriba.cli", "rt", "archive", "--for", f"{seconds:g}s"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=10)
    logs = list((work / "home" / "raw").glob("*/rt/*/*/fetches.jsonl"))
    fetches = [json.loads(line) for p in logs for line in p.read_text().splitlines()]
    cpu = usage.ru_utime + usage.ru_stime
    return {"feeds": feeds, "wall_s": round(wall, 1), "cpu_s": round(cpu, 2), "cpu_share_of_one_core": round(cpu / wall, 4),
            "fetches": len(fetches), "changed": sum(r["changed"] for r in fetches), "errors": sum(bool(r["error"]) for r in fetches),
            "exit": os.waitstatus_to_exitcode(status), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


DIGEST = r"""
import duckdb, json, sys
from pathlib import Path
home = Path(sys.argv[1])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
out = {}
for table in sorted(p.name for p in (home / "lake").iterdir() if p.name.startswith("rt_")):
    files = sorted(str(f) for f in (home / "lake" / table).rglob("*.parquet"))
    out[table] = list(con.execute(
        "SELECT count(*), md5(coalesce(string_agg(r, '' ORDER BY r), '')) FROM "
        "(SELECT md5(CAST(t AS VARCHAR)) AS r FROM read_parquet(?, hive_partitioning = false) AS t)", [files]).fetchone())
print(json.dumps(out))
"""


def lake_digest(home: Path) -> dict:
    """Return {rt lake table: [rows, MD5 of its rows' MD5s sorted]} (row order and row groups do not matter; values do):
    two versions of the parser that store the same rows give the same digests. Computed in a child process: a process
    started later by this one would report this one's memory as its peak (Linux keeps the high-water mark over fork)."""
    out = subprocess.run([sys.executable, "-c", DIGEST, str(home)], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--p", type=float, default=1 / 3, help="share of trips with a new report in each snapshot")
    ap.add_argument("--snapshots", type=int, default=180)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--where", action="store_true", help="then run ours once more with the CPU time of its stages")
    ap.add_argument("--archiver-s", type=float, default=120, help="seconds the archiver runs (0: skip)")
    ap.add_argument("--pure", action="store_true", help="also run ours on the Python path only (NORIBA_RT_PURE=1)")
    args = ap.parse_args()
    home = OUT / "home"
    shutil.rmtree(home, ignore_errors=True)
    t0 = time.perf_counter()
    raw_bytes, stus = make_hour(home, args.snapshots, args.p)
    print(f"made {args.snapshots} snapshots, {raw_bytes / 1e6:.1f} MB, {stus:,} stop_time_updates in {time.perf_counter() - t0:.0f} s",
          flush=True)
    folder = home / "raw" / FEED / "rt" / HOUR.strftime("%Y-%m-%d") / HOUR.strftime("%H")
    # pure before ours: the lake left for the digests and the size is ours
    runs: dict[str, list[dict]] = {"floor": [], "loop": [], **({"pure": []} if args.pure else {}), "ours": []}
    pure_digest = None
    for _ in range(args.repeat):  # rounds interleaved: on a shared machine the load changes from minute to minute
        for what in runs:
            runs[what].append(child(what, folder, home))
            print(json.dumps(runs[what][-1]), flush=True)
            if what == "pure" and pure_digest is None:
                pure_digest = lake_digest(home)
    results = {what: {**min(r, key=lambda x: x["wall_s"]), "cpu_s": min(x["cpu_s"] for x in r)} for what, r in runs.items()}
    lake = sum(p.stat().st_size for p in (home / "lake").rglob("*.parquet"))
    floor = results["floor"]["wall_s"]
    summary = {
        "p": round(args.p, 3), "snapshots": args.snapshots, "raw_mb": round(raw_bytes / 1e6, 1), "stop_time_updates": stus,
        "floor_s": round(floor, 2), "loop_s": round(results["loop"]["wall_s"], 2), "ours_s": round(results["ours"]["wall_s"], 2),
        "ours_vs_floor": round(results["ours"]["wall_s"] / floor, 2), "loop_vs_floor": round(results["loop"]["wall_s"] / floor, 2),
        "cpu_floor_s": round(results["floor"]["cpu_s"], 2), "cpu_loop_s": round(results["loop"]["cpu_s"], 2),
        "cpu_ours_s": round(results["ours"]["cpu_s"], 2),
        "cpu_ours_vs_floor": round(results["ours"]["cpu_s"] / results["floor"]["cpu_s"], 2),
        "ours_peak_rss_mb": round(results["ours"]["peak_rss_mb"]), "native": results["ours"]["native"],
        **({"cpu_pure_s": round(results["pure"]["cpu_s"], 2), "pure_peak_rss_mb": round(results["pure"]["peak_rss_mb"]),
            "cpu_pure_vs_floor": round(results["pure"]["cpu_s"] / results["floor"]["cpu_s"], 2)} if args.pure else {}),
        "lake_mb": round(lake / 1e6, 2),
        "lake_vs_raw": round(lake / raw_bytes, 4), "stu_rows_stored": results["ours"]["stored"]["rt_stop_time_updates"],
        "stu_rows_reconciled": results["ours"]["rows_in_snapshots"]["rt_stop_time_updates"] == stus,
    }
    print(json.dumps(summary), flush=True)
    digest = lake_digest(home)
    print(json.dumps({"lake_digest": digest, **({"pure_lake_digest_equal": pure_digest == digest} if args.pure else {})}), flush=True)
    if args.where:
        print(json.dumps(child("where", folder, home)), flush=True)
    if args.archiver_s:
        print(json.dumps(bench_archiver(args.archiver_s)), flush=True)


if __name__ == "__main__":
    main()
