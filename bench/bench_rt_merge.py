"""Benchmark: the merged realtime feed of an export (warehouse/rt_merge.py) at New York bus scale.

Input: ../shared/data/gtfs/rt/nyct-subway-2019/feed_buses_weekend.protobuf (3,547 trip updates, 62,928
stop_time_updates, 2.2 MB), archived as the realtime feed of static feed ``nyct-bus`` in a workspace
whose export ``bench-region`` merges ``nyct-bus`` with one other feed: its crosswalk.csv renames every
trip, route and stop id of the snapshot to ``bus:<id>`` (as if they all collided) and its GTFS zip holds
the merged ids, so every id is rewritten and none dropped. Measured in one process, best of ``--repeat``:

- ``floor``: read the snapshot file and ``FeedMessage.ParseFromString`` it (upb), nothing else;
- ``copy``: the second baseline: the floor, plus copying every entity into a new FeedMessage and
  serialising it (a merge that rewrites nothing);
- ``loop``: a third baseline: the floor, plus a plain Python loop reading every entity's trip id and route id and
  every stop_time_update's stop id (touching each id once from Python, writing nothing);
- ``ours, cold``: ``rt_merge.build`` with its message cache emptied (finding the latest snapshot,
  parse, rewrite every id through the crosswalk, serialise; the export's id map is cached per version);
- ``ours, cached``: ``rt_merge.build`` again (what a repeated GET costs);
- ``id map``: loading the export's crosswalk and zip ids once per export version.

    uv run python bench/bench_rt_merge.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSES = ROOT.parent / "shared" / "data" / "gtfs" / "rt" / "nyct-subway-2019" / "feed_buses_weekend.protobuf"


def make_home(home: Path) -> tuple[int, int, int]:
    """Write the export and the archived snapshot; return (entities, stop_time_updates, crosswalk rows)."""
    from google.transit import gtfs_realtime_pb2 as pb

    sys.path.insert(0, str(ROOT))
    from noriba import rt
    from warehouse.workspace import Workspace

    ws = Workspace(home).ensure()
    data = BUSES.read_bytes()
    msg = pb.FeedMessage()
    msg.ParseFromString(data)
    ids: dict[str, set[str]] = {"trip": set(), "route": set(), "stop": set()}
    stus = 0
    for e in msg.entity:
        t = e.trip_update.trip if e.HasField("trip_update") else e.vehicle.trip
        if t.trip_id:
            ids["trip"].add(t.trip_id)
        if t.route_id:
            ids["route"].add(t.route_id)
        for s in e.trip_update.stop_time_update:
            stus += 1
            if s.stop_id:
                ids["stop"].add(s.stop_id)
        if e.vehicle.stop_id:
            ids["stop"].add(e.vehicle.stop_id)
    folder = ws.exports / "bench-region" / "v1"
    folder.mkdir(parents=True)
    with (folder / "crosswalk.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["space", "feed_id", "source_id", "merged_id", "reason"])
        for space, values in ids.items():
            for v in sorted(values):
                w.writerow([space, "nyct-bus", v, f"bus:{v}", "namespaced"])
    with zipfile.ZipFile(folder / "bench-region.zip", "w") as z:
        for space, (name, col) in (("trip", ("trips.txt", "trip_id")), ("route", ("routes.txt", "route_id")),
                                   ("stop", ("stops.txt", "stop_id"))):
            z.writestr(name, col + "\n" + "".join(f"bus:{v}\n" for v in sorted(ids[space])))
    (folder / "manifest.json").write_text(json.dumps({
        "inputs": [{"feed_id": "nyct-bus", "namespace": "bus"}, {"feed_id": "other", "namespace": "other"}],
        "files": {"gtfs": {"path": "bench-region.zip"}, "crosswalk": {"path": "crosswalk.csv"}}}), encoding="utf-8")
    (ws.exports / "bench-region" / "latest.json").write_text(json.dumps({"export_version": "v1", "dir": "v1"}), encoding="utf-8")
    rt.ingest(ws, "nyct-bus-rt", [BUSES], static="nyct-bus")
    return len(msg.entity), stus, sum(len(v) for v in ids.values())


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from google.transit import gtfs_realtime_pb2 as pb

    sys.path.insert(0, str(ROOT))
    from warehouse import rt_merge
    from warehouse.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="bench-rt-merge-") as tmp:
        home = Path(tmp) / "home"
        entities, stus, xw = make_home(home)
        ws = Workspace(home)
        snap = rt_merge.latest_snapshot(ws, "nyct-bus-rt", "trip_updates")

        def floor():
            m = pb.FeedMessage()
            m.ParseFromString(snap.read_bytes())

        def copy():
            m = pb.FeedMessage()
            m.ParseFromString(snap.read_bytes())
            out = pb.FeedMessage()
            out.header.CopyFrom(m.header)
            for e in m.entity:
                out.entity.add().CopyFrom(e)
            out.SerializeToString()

        def loop():
            m = pb.FeedMessage()
            m.ParseFromString(snap.read_bytes())
            n = 0
            for e in m.entity:
                t = e.trip_update.trip
                n += bool(t.trip_id) + bool(t.route_id)
                for stu in e.trip_update.stop_time_update:
                    n += bool(stu.stop_id)
            return n

        def idmap():
            rt_merge._ID_MAPS.clear()
            rt_merge.load_id_map(ws, "bench-region")

        def cold():
            rt_merge._CACHE.clear()
            rt_merge.build(ws, "bench-region", "trip-updates")

        t_idmap = best(idmap, args.repeat)
        t_floor, t_copy, t_loop, t_cold = (best(floor, args.repeat), best(copy, args.repeat), best(loop, args.repeat),
                                           best(cold, args.repeat))
        built = rt_merge.build(ws, "bench-region", "trip-updates")
        t_cached = best(lambda: rt_merge.build(ws, "bench-region", "trip-updates"), args.repeat * 20)
        assert built.status["dropped_entities"] == 0 and len(built.message.entity) == entities
        assert all(e.trip_update.trip.trip_id.startswith("bus:") for e in built.message.entity if e.trip_update.trip.trip_id)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"snapshot: {snap.stat().st_size / 1e6:.1f} MB, {entities:,} entities, {stus:,} stop_time_updates; crosswalk {xw:,} ids")
        print(f"floor (ParseFromString)       {t_floor * 1000:8.1f} ms   1.00x")
        print(f"copy (parse + copy + write)   {t_copy * 1000:8.1f} ms   {t_copy / t_floor:5.2f}x")
        print(f"loop (parse + read each id)   {t_loop * 1000:8.1f} ms   {t_loop / t_floor:5.2f}x")
        print(f"ours, cold (rt_merge.build)   {t_cold * 1000:8.1f} ms   {t_cold / t_floor:5.2f}x")
        print(f"ours, cached                  {t_cached * 1000:8.3f} ms   {t_cached / t_floor:5.3f}x")
        print(f"id map (once per version)     {t_idmap * 1000:8.1f} ms")
        print(f"peak memory (process)         {peak:8.0f} MB")


if __name__ == "__main__":
    main()
