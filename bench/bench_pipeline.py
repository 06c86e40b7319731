"""Benchmark: the whole `noriba ingest` (the user-facing time), phase by phase, against gtfs-guru's validation.

Inputs: Vilnius 2015 replicated ×1, ×4, ×16 (built by bench_ingest.replicate), a 28k-row GTFS-JP
corpus feed, and all 87 corpus feeds through one `noriba run`. Every measurement runs in its own
process (wall time includes imports); each phase's peak memory is the highest RSS a 5 ms sampler
saw while that phase ran (summed over the process and its children: `noriba run` stages feeds in worker processes) (ru_maxrss is not used: Linux keeps it across execve, so a child shows its parent's). gtfs-guru (PyPI, Rust)
validates the same zip at the same validation date in the same run. The machine is shared:
best of --repeat runs per measurement, the load average is recorded, compare ratios not seconds.

    uv run python bench/bench_pipeline.py [--sizes 1 4 16] [--repeat 3] [--corpus [--run-jobs 1 2]] [--jp] [--again]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import OUT, ROOT, SOURCE, replicate  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "gtfs" / "jp" / "corpus-2019" / "feeds"
JP_FEED = CORPUS / "kamacitybus190401.zip"  # 28,516 rows (stops+routes+trips+stop_times+shapes)
VILNIUS_DATE = "2015-06-01"
CORPUS_DATE = "2019-06-01"
PHASES = ("import", "fetch", "parse", "rules", "report", "lake", "publish", "contracts", "export")

CHILD = r"""
import json, os, resource, shutil, sys, threading, time
what, arg, home, vdate = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
shutil.rmtree(home, ignore_errors=True)  # the previous run's workspace: not ingest work
phase = ["import"]
peaks = {}
times = {}
cpus = {}
stop = False
page = os.sysconf("SC_PAGE_SIZE")

def _statm(pid):
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * page / 2**20
    except (OSError, ValueError, IndexError):  # gone meanwhile
        return 0.0

def _children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except (OSError, ValueError):
        pass
    return out

def rss():  # this process and its worker processes (`noriba run`'s pool): the sum of their RSS, an upper bound
    if what != "noriba_run_many":  # no workers: one read, not one per thread (16+ threads, ~5% of a core at 5 ms)
        return _statm(os.getpid())
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += _statm(pid)
        todo += _children(pid)
    return total

def sample():
    while not stop:
        p = phase[0]
        peaks[p] = max(peaks.get(p, 0.0), rss())
        time.sleep(0.005)

threading.Thread(target=sample, daemon=True).start()
def cpu_now():  # user+system of this process (all threads) and of its reaped children
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system

t0 = last = time.perf_counter()
last_cpu = cpu_now()

def mark(name):
    global last, last_cpu
    now, now_cpu = time.perf_counter(), cpu_now()
    p = phase[0]
    peaks[p] = max(peaks.get(p, 0.0), rss())
    times[p] = times.get(p, 0.0) + now - last
    cpus[p] = cpus.get(p, 0.0) + now_cpu - last_cpu
    last, last_cpu = now, now_cpu
    phase[0] = name

from datetime import date
vd = date.fromisoformat(vdate)
if what == "gtfs_guru":
    import gtfs_guru
    mark("validate")
    r = gtfs_guru.validate(arg, date=vdate)
    out = {"notices": len(r.notices) if hasattr(r, "notices") else None}
elif what == "gtfs_guru_many":
    import gtfs_guru
    mark("validate")
    zips = sorted(p for p in os.listdir(arg) if p.endswith(".zip"))
    for z in zips:
        gtfs_guru.validate(os.path.join(arg, z), date=vdate)
    out = {"feeds": len(zips)}
elif what == "noriba_run_many":  # `noriba run` of one spec per corpus feed, in this one process (the CLI's own code)
    # its feed pool forks as the CLI's does: this process's only other thread is the peak sampler above, which holds no
    # lock a worker needs (noriba.forking would otherwise choose a fork server, which the CLI does not)
    os.environ["NORIBA_POOL_START"] = "fork"
    from pathlib import Path
    specs = Path(home) / "specs" / "feeds"
    specs.mkdir(parents=True)
    zips = sorted(p for p in os.listdir(arg) if p.endswith(".zip"))
    for i, z in enumerate(zips):
        (specs / f"f{i:03d}.yaml").write_text(f"id: f{i:03d}\nkind: gtfs\ntimezone: Asia/Tokyo\nsource:\n  path: {json.dumps(os.path.join(arg, z))}\n")
    from noriba.cli import main
    mark("run")
    try:
        rc = main(["--home", str(Path(home) / "ws"), "run", "--specs", str(Path(home) / "specs"), "--quiet", "--date", vdate])
    except SystemExit as e:
        rc = e.code
    out = {"feeds": len(zips), "rc": rc}
elif what == "noriba_validate":  # what `noriba validate ZIP --date` runs
    from pathlib import Path
    from noriba.specs import parse_spec
    from noriba.validate import validate_feed
    from warehouse.workspace import Workspace
    mark("validate")
    spec = parse_spec({"id": "bench", "kind": "gtfs", "source": {"path": arg}}, where="bench", root=Path("."))
    report, _ = validate_feed(spec, Workspace(Path(home)), validation_date=vd)
    out = {"notices": sum(d.get("count", 0) for d in report.get("notices", []))}
else:  # noriba_ingest: the steps of run_feed, in order, timed one by one; noriba_ingest_again: the same zip a second
    # time in the same process and workspace, only the second timed (imports paid, the contracts' stored GX results reusable)
    from pathlib import Path
    from noriba import pipeline
    from noriba.specs import parse_spec
    from warehouse.workspace import Workspace
    import warehouse.publish, warehouse.contracts, warehouse.export, noriba.report  # noqa: F401 (the CLI imports them too)
    if what == "noriba_ingest_again_noreuse":  # the baseline: every table through GX again, as before results were reused
        warehouse.contracts.reusable_results = lambda *a, **k: {}
    ws = Workspace(Path(home)).ensure()
    spec = parse_spec({"id": "bench", "kind": "gtfs", "source": {"path": arg}}, where="bench", root=Path("."))
    for rnd in range(2 if what.startswith("noriba_ingest_again") else 1):
        if rnd:
            times.clear(); peaks.clear(); cpus.clear(); phase[0] = "import"; t0 = last = time.perf_counter(); last_cpu = cpu_now()
        mark("fetch")
        fetched = pipeline.fetch(spec, ws)
        mark("parse")
        def progress(msg):
            if msg.endswith("running validation rules"):
                mark("rules")
        staged = pipeline.parse_validate(spec, ws, fetched, progress=progress, validation_date=vd)
        mark("report")
        staged = pipeline.report_step(ws, staged)
        mark("lake")
        lake = pipeline.write_lake(ws, staged)
        mark("publish")
        # as run_feed: the export is built in a thread while the version is published and its contracts run (its CPU
        # counts in those phases; "export" is the wait for what is left of it), unless the tree predates start_export
        early = pipeline.start_export(ws, lake) if hasattr(pipeline, "start_export") else None
        # as run_feed: the publish and the contracts share one writer connection (opened, checkpointed and closed once,
        # the readers' copy made while it closes), unless the tree predates that
        from contextlib import nullcontext
        session = (pipeline._writer_for_publish_and_contracts(ws, contracts=True)
                   if hasattr(pipeline, "_writer_for_publish_and_contracts") else nullcontext())
        with session:
            out_ = pipeline.publish_step(ws, lake)
            out_["status"] = "new"
            mark("contracts")
            out_ = pipeline.contracts_step(ws, out_)
        mark("export")
        out_ = pipeline.finish_export(ws, early, out_) if hasattr(pipeline, "start_export") else pipeline.export_step(ws, out_)
        out = {"rows_in": staged.get("rows_in"), "errors": staged.get("errors"), "warnings": staged.get("warnings"),
               "exports": bool(out_.get("exports"))}
    out["contracts_reused_tables"] = (out_.get("contracts") or {}).get("reused")
mark("end")
wall = time.perf_counter() - t0
stop = True
# the sampled peak, not ru_maxrss: Linux keeps a process's ru_maxrss across execve, so it would be the bench parent's
cpu = os.times()  # user+system of this process and of its reaped children (the run's workers), all threads
print(json.dumps({**out, "wall_s": wall, "cpu_s": cpu.user + cpu.system + cpu.children_user + cpu.children_system, "peak_mb": max(peaks.values()), "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "phases": {p: {"s": times[p], "cpu_s": cpus.get(p, 0.0), "peak_mb": peaks.get(p, 0.0)} for p in times}}))
"""


def measure(what: str, arg: Path, date: str, repeat: int, *, env: dict | None = None) -> dict:
    best = None
    for _ in range(repeat):
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, "-c", CHILD, what, str(arg), str(OUT / f"home-{what}"), date],
                              capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
        if proc.returncode != 0:
            raise SystemExit(f"{what} {arg.name} failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r["load"] = load
        if best is None or r["wall_s"] < best["wall_s"]:
            best = r
    return best


def phase_line(r: dict) -> str:
    return "  ".join(f"{p} {v['s']:.2f}s/{v.get('cpu_s', 0.0):.2f}cpu/{v['peak_mb']:.0f}MB" for p, v in r["phases"].items())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best wall time is kept")
    ap.add_argument("--jp", action="store_true", help="also the 28k-row GTFS-JP feed")
    ap.add_argument("--corpus", action="store_true", help="also the 87 corpus feeds through one `noriba run`")
    ap.add_argument("--run-jobs", type=int, nargs="+", default=[0],
                    help="with --corpus: the `noriba run` once per value of NORIBA_RUN_JOBS (0: its default), each beside gtfs-guru")
    ap.add_argument("--again", action="store_true",
                    help="also a second ingest of each zip in the same process and workspace (contract results reused)")
    args = ap.parse_args()
    if not SOURCE.exists():
        raise SystemExit(f"{SOURCE} not found: the benchmark needs ../shared/data beside the project")
    results = []
    print(f"best of {args.repeat}; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'input':<14} {'rows':>10} {'ingest s':>9} {'MB':>6} {'validate s':>10} {'MB':>6} {'guru s':>7} {'MB':>6} {'ingest/guru':>11} {'validate/guru':>13}")
    cases = [(f"vilnius ×{n}", replicate(n)[0], VILNIUS_DATE) for n in args.sizes]
    if args.jp:
        cases.append(("jp 28k", JP_FEED, CORPUS_DATE))
    for name, feed, vdate in cases:
        guru = measure("gtfs_guru", feed, vdate, args.repeat)
        ing = measure("noriba_ingest", feed, vdate, args.repeat)
        val = measure("noriba_validate", feed, vdate, args.repeat)
        print(f"{name:<14} {ing['rows_in']:>10,} {ing['wall_s']:>9.2f} {ing['peak_mb']:>6.0f} {val['wall_s']:>10.2f} {val['peak_mb']:>6.0f} "
              f"{guru['wall_s']:>7.2f} {guru['peak_mb']:>6.0f} {ing['wall_s'] / guru['wall_s']:>11.2f} {val['wall_s'] / guru['wall_s']:>13.2f}"
              f"   (load {ing['load']:.1f})")
        print(f"{'':<14} ingest phases: {phase_line(ing)}; CPU: ingest {ing['cpu_s']:.2f} s, validate {val['cpu_s']:.2f} s, "
              f"gtfs-guru {guru['cpu_s']:.2f} s")
        again = {k: measure(f"noriba_ingest_{k}", feed, vdate, args.repeat) for k in ("again_noreuse", "again")} if args.again else None
        for k, r in (again or {}).items():
            print(f"{'':<14} {k}: {r['wall_s']:.2f} s, {r['peak_mb']:.0f} MB, contracts reused on "
                  f"{r['contracts_reused_tables']} tables; phases: {phase_line(r)}")
        results.append({"input": name, "gtfs_guru": guru, "noriba_ingest": ing, "noriba_validate": val, "noriba_ingest_again": again,
                        "ingest_over_guru": ing["wall_s"] / guru["wall_s"], "validate_over_guru": val["wall_s"] / guru["wall_s"]})
    for jobs in args.run_jobs if args.corpus else ():
        guru = measure("gtfs_guru_many", CORPUS, CORPUS_DATE, 1)
        run = measure("noriba_run_many", CORPUS, CORPUS_DATE, 1, env={"NORIBA_RUN_JOBS": str(jobs)} if jobs else None)
        if jobs:
            print(f"corpus with NORIBA_RUN_JOBS={jobs}:")
        print(f"corpus: {run['feeds']} feeds, one `noriba run`: {run['wall_s']:.1f} s (CPU {run['cpu_s']:.1f} s), {run['peak_mb']:.0f} MB "
              f"(rc {run['rc']}); gtfs-guru: {guru['wall_s']:.1f} s (CPU {guru['cpu_s']:.1f} s), {guru['peak_mb']:.0f} MB; "
              f"ratio {run['wall_s'] / guru['wall_s']:.1f}, CPU ratio {run['cpu_s'] / guru['cpu_s']:.1f}  (load {run['load']:.1f})")
        results.append({"input": "corpus-87", "run_jobs": jobs, "gtfs_guru": guru, "noriba_run": run, "run_over_guru": run["wall_s"] / guru["wall_s"]})
    (OUT / "pipeline.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
