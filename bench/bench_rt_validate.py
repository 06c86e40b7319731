"""Benchmark: realtime validation of an hour of New York bus TripUpdates against its parse (issue 15 point 4).

The hour is bench_rt.py's (``make_hour``: feed_buses_weekend.protobuf replicated as ``--snapshots``
snapshots 20 s apart, each trip re-reported with probability ``--p``). Each step runs in its own
process (wall time without imports; CPU = user + system of that process; peak RSS), rounds interleaved,
best of ``--repeat``:

- ``floor``: read each snapshot and ``FeedMessage.ParseFromString`` it (upb), nothing else;
- ``parse``: ``noriba.rt.parse_hour`` (the hour to the lake);
- ``validate``: ``noriba.rt_validate.validate_hours(publish=False)``: every realtime rule on every snapshot,
  each against the previous one, with the fetch log's times (no static feed: the bus timetable is not in shared/data);
- ``validate_before``: the same with the realtime rules of commit ``--before`` (read from git), one protobuf access
  per stop_time_update: the same-run baseline of the change.

    uv run python bench/bench_rt_validate.py [--snapshots 30] [--p 0.333] [--repeat 2] [--before a6e2cb1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_rt import FEED, HOUR, make_hour  # noqa: E402

OUT = ROOT / "bench" / "out" / "rt_validate"

CHILD = r"""
import importlib.util, json, os, resource, sys, time
sys.path.insert(0, sys.argv[3])
what, folder, home, feed, hour, before = sys.argv[1:3] + sys.argv[4:]
from google.transit import gtfs_realtime_pb2 as pb
if what == "validate_before":  # the realtime rules of an earlier commit, in place of today's
    spec = importlib.util.spec_from_file_location("transforms.gtfs_rt.rules", before)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["transforms.gtfs_rt.rules"] = mod
    spec.loader.exec_module(mod)
    if "data" not in mod.Snapshot.__dataclass_fields__:  # rules older than Snapshot.data: drop it
        _old = mod.Snapshot
        mod.Snapshot = lambda message, file="", fetched_at=None, data=None: _old(message, file, fetched_at)
from pathlib import Path
from noriba import rt, rt_validate
import transforms.gtfs_rt.rules, transforms.gtfs_rt.parse, transforms.gtfs_rt.wire, warehouse.publish, numpy, pyarrow.compute  # before the clock
from warehouse.workspace import Workspace
files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".pb"))
ws = Workspace(Path(home))
extra = {}
_r = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = _r.ru_utime + _r.ru_stime
t0 = time.perf_counter()
if what == "floor":
    for f in files:
        m = pb.FeedMessage()
        m.ParseFromString(open(f, "rb").read())
elif what == "parse":
    rt.parse_hour(ws, feed, hour)
else:
    res = rt_validate.validate_hours(ws, feed, [hour], publish=False)
    extra = {"notices": sum(res["hours"][0]["counts"].values())}
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"what": what, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime - cpu0, "snapshots": len(files),
                  "peak_rss_mb": ru.ru_maxrss / 1024, **extra}))
"""


def child(what: str, folder: Path, home: Path, before: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, what, str(folder), str(ROOT), str(home), FEED, HOUR.strftime("%Y-%m-%dT%H"),
                          str(before)], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--p", type=float, default=1 / 3)
    ap.add_argument("--snapshots", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--before", default="a6e2cb1", help="commit whose transforms/gtfs_rt/rules.py is the baseline ('' to skip)")
    args = ap.parse_args()
    home = OUT / "home"
    shutil.rmtree(home, ignore_errors=True)
    t0 = time.perf_counter()
    raw_bytes, stus = make_hour(home, args.snapshots, args.p)
    print(f"made {args.snapshots} snapshots, {raw_bytes / 1e6:.1f} MB, {stus:,} stop_time_updates in {time.perf_counter() - t0:.0f} s",
          flush=True)
    before = OUT / "rules_before.py"
    steps = ["floor", "parse", "validate"]
    if args.before:
        before.write_text(subprocess.run(["git", "show", f"{args.before}:transforms/gtfs_rt/rules.py"], capture_output=True, text=True,
                                         check=True, cwd=ROOT).stdout)
        steps.append("validate_before")
    folder = home / "raw" / FEED / "rt" / HOUR.strftime("%Y-%m-%d") / HOUR.strftime("%H")
    runs: dict[str, list[dict]] = {s: [] for s in steps}
    for _ in range(args.repeat):
        for what in steps:
            runs[what].append(child(what, folder, home, before))
            print(json.dumps(runs[what][-1]), flush=True)
    best = {w: {**min(r, key=lambda x: x["wall_s"]), "cpu_s": min(x["cpu_s"] for x in r)} for w, r in runs.items()}
    summary = {"p": round(args.p, 3), "snapshots": args.snapshots, "stop_time_updates": stus,
               **{f"{w}_s": round(b["wall_s"], 2) for w, b in best.items()},
               **{f"cpu_{w}_s": round(b["cpu_s"], 2) for w, b in best.items()},
               **{f"{w}_vs_parse": round(b["wall_s"] / best["parse"]["wall_s"], 2) for w, b in best.items() if w.startswith("validate")},
               **{f"{w}_vs_floor": round(b["wall_s"] / best["floor"]["wall_s"], 2) for w, b in best.items() if w != "floor"},
               **{f"{w}_peak_rss_mb": round(b["peak_rss_mb"]) for w, b in best.items()},
               "notices_same": len({b.get("notices") for w, b in best.items() if w.startswith("validate")}) == 1}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
