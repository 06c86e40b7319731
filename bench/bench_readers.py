"""Benchmark: analysts' queries while feeds publish (issue 14.5), and what the published copy costs the writer.

Input: the 10 largest feeds of ../shared/data/gtfs/jp/corpus-2019 (by stop_times rows; --feeds N
for another number), fetched, staged and written to the lake once with run_feed (no contracts, no
export) into bench/out/readers-lake (reused on later runs). Each measurement then publishes every
version from that lake (a symlink) into a fresh workspace, one publish after another, as the
pipeline's publish step does:

- publish_baseline: the writer's file only, the published copy never made (the named baseline:
  the cost of publishing as such);
- publish_snapshot: the same with the copy (writer/noriba.duckdb copied beside noriba.duckdb,
  fsynced, renamed over it) after each publish, as the product does;
- readers_snapshot: publish_snapshot while a reader process opens noriba.duckdb read-only, runs a
  count query, closes, sleeps 10 ms, in a loop: query latency p50/p99/max, failures;
- readers_one_file: the design before this change, where readers open the one file the writer
  writes: the same reader on writer/noriba.duckdb, the copy never made; failures on both sides;
- copy cost: the writer's file grown by replicating gtfs.stop_times (other feed_version values)
  to --scale-mb, then the copy (copy_file_range, fsync, rename) against DuckDB's own
  ``ATTACH … ; COPY FROM DATABASE`` into a new file; MB/s.

    uv run python bench/bench_readers.py [--feeds 10] [--repeat 2] [--scale-mb 1024]
    uv run python bench/bench_readers.py --reader FILE STOP OUT    (the reader loop; tests/warehouse/test_readers.py runs it)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
CORPUS = ROOT.parent / "shared" / "data" / "gtfs" / "jp" / "corpus-2019"

#: What the reader asks: versions published, versions that have stops, stop_times rows. A half publish would show
#: stops of a version without its meta row (the meta row is the last table a publish writes).
QUERY = ("SELECT (SELECT count(*) FROM meta.feed_versions), "
         "(SELECT count(*) FROM (SELECT DISTINCT feed_id, feed_version FROM gtfs.stops)), "
         "(SELECT count(*) FROM gtfs.stop_times)")


def reader(path: str, stop: str, out: str, *, pause: float = 0.01) -> None:
    """Write to ``out`` one JSON line per query on ``path`` (open read-only, QUERY, close) until file ``stop`` exists.

    Each line: start (epoch s), seconds (open to close), the query's three counts or the error,
    or absent while the file does not exist yet.
    """
    import duckdb

    rows = []
    while not os.path.exists(stop):
        start, t0 = time.time(), time.perf_counter()
        if not os.path.exists(path):
            rows.append({"start": start, "absent": True})
            time.sleep(pause)
            continue
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                versions, with_stops, stop_times = con.execute(QUERY).fetchall()[0]
            finally:
                con.close()
            rows.append({"start": start, "seconds": time.perf_counter() - t0, "versions": versions,
                         "with_stops": with_stops, "stop_times": stop_times})
        except Exception as exc:  # every failure is a finding: recorded, the loop goes on
            rows.append({"start": start, "seconds": time.perf_counter() - t0, "error": f"{type(exc).__name__}: {exc}"})
        time.sleep(pause)
    Path(out).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def start_reader(path: Path, work: Path) -> tuple[subprocess.Popen, Path, Path]:
    """Return (process, stop file, output file) of a reader loop on ``path`` started in its own process."""
    stop, out = work / "reader.stop", work / "reader.jsonl"
    stop.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--reader", str(path), str(stop), str(out)], cwd=ROOT)
    return proc, stop, out


def stop_reader(proc: subprocess.Popen, stop: Path, out: Path) -> list[dict]:
    """Return the reader's lines after telling it to stop and waiting for it."""
    stop.touch()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def latency(rows: list[dict]) -> dict:
    """Return queries, failures, and p50/p99/max seconds of the answered queries among ``rows``."""
    ok = sorted(r["seconds"] for r in rows if "versions" in r)
    pick = (lambda q: ok[min(len(ok) - 1, int(q * len(ok)))]) if ok else (lambda q: None)
    return {"queries": len(ok) + sum("error" in r for r in rows), "failed": sum("error" in r for r in rows),
            "p50_s": pick(0.50), "p99_s": pick(0.99), "max_s": ok[-1] if ok else None,
            "errors": sorted({r["error"][:160] for r in rows if "error" in r})[:3]}


def _feeds(n: int) -> list[tuple[str, Path]]:
    rows = [r for r in csv.DictReader((CORPUS / "INDEX.csv").open(encoding="utf-8")) if r["stop_times"]]
    rows.sort(key=lambda r: -int(r["stop_times"]))
    return [(f"jp-{i:02d}", CORPUS / "feeds" / r["zip"]) for i, r in enumerate(rows[:n])]


def build_lake(n: int) -> tuple[Path, list[tuple[str, str]]]:
    """Return (lake workspace, [(feed id, version)]) of the n feeds staged into the lake once (reused if there)."""
    home = OUT / f"readers-lake-{n}"
    done = home / "versions.json"
    if done.exists():
        return home, [tuple(v) for v in json.loads(done.read_text())]
    from noriba.pipeline import run_feed
    from noriba.specs import parse_spec
    from warehouse.workspace import Workspace

    shutil.rmtree(home, ignore_errors=True)
    ws = Workspace(home).ensure()
    versions = []
    for fid, zip_path in _feeds(n):
        spec = parse_spec({"id": fid, "kind": "gtfs", "source": {"path": str(zip_path)}, "timezone": "Asia/Tokyo"}, where="bench", root=ROOT)
        out = run_feed(spec, ws, export=False, contracts=False)
        versions.append((fid, out["feed_version"]))
    done.write_text(json.dumps(versions))
    return home, versions


def fresh_home(name: str, lake_home: Path):
    from warehouse.workspace import Workspace

    home = OUT / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "lake").symlink_to(lake_home / "lake")
    return Workspace(home)


def publish_all(ws, versions, *, snapshot: bool) -> dict:
    """Return the wall time of publishing every version in turn, the time in the copy, and the publishes that failed."""
    import warehouse.publish as publish

    real = publish.publish_snapshot
    copies: list[float] = []

    def timed(w):
        t = time.perf_counter()
        got = real(w)
        copies.append(time.perf_counter() - t)
        return got

    def skipped(w):  # the baseline: the marker goes, no copy is made
        publish._pending(w).unlink(missing_ok=True)
        return {"seconds": 0.0, "bytes": 0, "how": "none"}

    publish.publish_snapshot = timed if snapshot else skipped
    failed: list[str] = []
    t0 = time.perf_counter()
    try:
        for fid, ver in versions:
            try:
                publish.publish(ws, fid, ver)
            except Exception as exc:
                failed.append(f"{fid}: {type(exc).__name__}: {str(exc)[:160]}")
    finally:
        publish.publish_snapshot = real
    return {"wall_s": time.perf_counter() - t0, "copy_s": sum(copies), "copies": len(copies),
            "copy_max_s": max(copies, default=0.0), "failed_publishes": failed}


def copy_cost(ws, scale_mb: int) -> list[dict]:
    """Return the copy's and COPY FROM DATABASE's seconds at the warehouse's size and grown to ``scale_mb``."""
    import duckdb

    from warehouse.publish import _copy_file, writer_path

    src = writer_path(ws)
    work = OUT / "readers-copy"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    big = work / "grown.duckdb"
    shutil.copyfile(src, big)
    out = []
    for target in (None, scale_mb):
        if target:
            con = duckdb.connect(str(big))
            k = 0
            while big.stat().st_size < target * 1e6:
                k += 1
                con.execute(f"INSERT INTO gtfs._stop_times_wide BY NAME SELECT * REPLACE (feed_version || '-r{k}' AS feed_version) "  # a part
                            "FROM gtfs.stop_times WHERE feed_version NOT LIKE '%-r%'")
                con.execute("CHECKPOINT")
            con.close()
        size = big.stat().st_size
        dst = work / ".copy.tmp"
        t = time.perf_counter()
        how = _copy_file(big, dst)
        os.replace(dst, work / "copy.duckdb")
        copy_s = time.perf_counter() - t
        dst2 = work / "copydb.duckdb"
        dst2.unlink(missing_ok=True)
        t = time.perf_counter()
        con = duckdb.connect()
        con.execute(f"ATTACH '{big}' AS src (READ_ONLY)")
        con.execute(f"ATTACH '{dst2}' AS dst")
        con.execute("COPY FROM DATABASE src TO dst")
        con.execute("DETACH dst")
        con.close()
        copydb_s = time.perf_counter() - t
        out.append({"bytes": size, "how": how, "copy_s": copy_s, "copy_mb_s": size / 1e6 / copy_s,
                    "copy_from_database_s": copydb_s, "copy_from_database_bytes": dst2.stat().st_size})
    shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--scale-mb", type=int, default=1024)
    ap.add_argument("--reader", nargs=3, metavar=("FILE", "STOP", "OUT"))
    args = ap.parse_args()
    if args.reader:
        reader(*args.reader)
        return
    from warehouse.publish import writer_path

    lake_home, versions = build_lake(args.feeds)
    result: dict = {"feeds": len(versions), "load": os.getloadavg()}
    for name, snap in (("publish_baseline", False), ("publish_snapshot", True)):
        runs = [publish_all(fresh_home(f"readers-{name}", lake_home), versions, snapshot=snap) for _ in range(args.repeat)]
        result[name] = min(runs, key=lambda r: r["wall_s"])
    ws = fresh_home("readers-readers_snapshot", lake_home)
    proc, stop, out = start_reader(ws.warehouse, OUT)
    time.sleep(1.0)
    pub = publish_all(ws, versions, snapshot=True)
    rows = stop_reader(proc, stop, out)
    counts = [r["versions"] for r in rows if "versions" in r]
    result["readers_snapshot"] = {**latency(rows), "publish": pub,
                                  "monotonic": all(a <= b for a, b in zip(counts, counts[1:])),
                                  "whole": all(r["versions"] == r["with_stops"] for r in rows if "versions" in r)}
    result["sizes"] = {"writer_bytes": writer_path(ws).stat().st_size, "published_bytes": ws.warehouse.stat().st_size,
                       "stop_times_rows": next((r["stop_times"] for r in reversed(rows) if "versions" in r), None)}
    ws1 = fresh_home("readers-readers_one_file", lake_home)
    writer_path(ws1).parent.mkdir(parents=True)
    proc, stop, out = start_reader(writer_path(ws1), OUT)
    time.sleep(1.0)
    pub = publish_all(ws1, versions, snapshot=False)
    result["readers_one_file"] = {**latency(stop_reader(proc, stop, out)), "publish": pub}
    result["copy_cost"] = copy_cost(ws, args.scale_mb)
    for name in ("publish_baseline", "publish_snapshot", "readers_snapshot", "readers_one_file"):
        shutil.rmtree(OUT / f"readers-{name}", ignore_errors=True)
    result["snapshot_over_baseline"] = result["publish_snapshot"]["wall_s"] / result["publish_baseline"]["wall_s"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
