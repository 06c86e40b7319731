"""Benchmark: trips ingest of the 36 NYC yellow months against bare DuckDB read_csv of the same files (the floor).

Input: ../shared/data/trips/nyc-yellow-samples/monthly (36 files, 360,000 rows) and a ×16 replication
(576 files, 5,760,000 rows: the same files linked under r00..r15/, names kept so each file still
declares its month). Every measurement runs in its own process: wall time includes imports and
peak memory is that process's max RSS.

- ``floor``: ``CREATE TABLE t AS SELECT * FROM read_csv([...files], strict_mode=false)`` (the mixed
  LF/CRLF months need strict_mode=false), nothing else;
- ``noriba_trips``: ``noriba.trips_pipeline.run_trips(..., export=False)`` with the committed
  nyc-yellow-samples mapping: archive (hash) every file, read, map to fct_trips (units, both clocks,
  code lists), zone lookup against the TLC zones (+ unknown-zone rules), every trip rule, quarantine
  with raw rows, the Parquet lake by month, and the publish transaction with its marts.

    uv run python bench/bench_trips.py [--sizes 1 16] [--repeat 1]
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
if what == "floor":
    import duckdb
    con = duckdb.connect()
    lst = "[" + ", ".join("'" + f + "'" for f in files) + "]"
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv({lst}, strict_mode=false)")
    rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
    extra = {}
else:
    from pathlib import Path
    from noriba.specs import load_spec, parse_spec
    from noriba.workspace import Workspace
    from noriba.trips_pipeline import run_trips
    from transforms.trips.spec import load_trip_specs
    shutil.rmtree(home, ignore_errors=True)
    ws = Workspace(Path(home)).ensure()
    specs = {s.id: s for s in load_trip_specs()}
    base = specs["nyc-yellow-samples"]
    doc = {"id": "yellow-bench", "kind": "trips", "source": {"path": folder}, "timezone": base.timezone,
           "municipality": base.municipality, "trips": {**base.options, "files": ["r*/*.csv"]}}
    spec = parse_spec(doc, where="bench", root=Path("."))
    specs[spec.id] = spec
    out = run_trips(spec, ws, specs=specs, export=False)
    rows = out["rows_in"]
    extra = {"accepted": out["rows_accepted"], "quarantined": out["rows_quarantined"]}
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"what": what, "rows": rows, "wall_s": round(wall, 2), "peak_mb": round(peak), **extra}))
"""


def measure(what: str, folder: Path) -> dict:
    home = OUT / f"home-{what}"
    res = subprocess.run([sys.executable, "-c", CHILD, what, str(folder), str(home)], capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(f"{what} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    if not MONTHLY.exists():
        raise SystemExit(f"{MONTHLY} is missing; the benchmark needs ../shared/data beside the project")
    rows = []
    for n in args.sizes:
        folder = replicate(n)
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for what in ("floor", "noriba_trips"):
                m = measure(what, folder)
                if what not in best or m["wall_s"] < best[what]["wall_s"]:
                    best[what] = m
        f, t = best["floor"], best["noriba_trips"]
        ratio = t["wall_s"] / f["wall_s"]
        rows.append((n, f, t, ratio))
        print(f"x{n:<3} rows {t['rows']:>9,}  floor {f['wall_s']:6.2f} s {f['peak_mb']:5d} MB   noriba {t['wall_s']:6.2f} s "
              f"{t['peak_mb']:5d} MB   ratio {ratio:4.2f}   (accepted {t['accepted']:,}, quarantined {t['quarantined']:,})", flush=True)
    print()
    print("| size | rows | floor (DuckDB read_csv) | noriba trips ingest | × floor |")
    print("|---|---|---|---|---|")
    for n, f, t, ratio in rows:
        print(f"| ×{n} | {t['rows']:,} | {f['wall_s']:.2f} s, {f['peak_mb']} MB | {t['wall_s']:.2f} s, {t['peak_mb']} MB | {ratio:.2f} |")


if __name__ == "__main__":
    main()
