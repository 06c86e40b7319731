"""The fixed cost of the rules phase on small feeds: run_rules before/after a change, and DuckDB's planning per rule.

Canonical tables are built once per feed; then ``run_rules`` runs in a fresh process for the tree given by
``--before`` (e.g. ``git archive HEAD | tar -x -C /tmp/before``) and for this tree, interleaved, best of
``--repeat`` (wall and CPU of the process), and the answers (counts and samples) are compared. With ``--per-rule N``
the rules run on one cursor and each rule's seconds are the process's CPU while it ran (its shared tables' builds
included); the N rules with most CPU are printed for both trees. With
``--planning`` each rule's query also runs alone under DuckDB's profiler: wall, planning (binder +
optimizer + physical planner), SQL size, UNION ALL branches and branches over tables the feed lacks.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python bench/bench_rules_fixed.py --before /tmp/before [--planning] FEED.zip ...
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import hashlib, json, os, resource, sys, time, types
sys.path.insert(0, sys.argv[1])
from datetime import date
from pathlib import Path
import duckdb
from transforms.rules import engine
from transforms.rules.engine import run_rules
from transforms.rules.registry import all_rules
all_rules()
if os.environ.get("BENCH_PER_RULE"):  # one cursor: a rule's seconds are the process's CPU while it ran
    engine.time = types.SimpleNamespace(perf_counter=time.process_time)
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
t0, c0 = time.perf_counter(), cpu()
r = run_rules(Path(sys.argv[2]), validation_date=date(2019, 6, 1), profile=sys.argv[3], con=duckdb.connect())
answer = str(sorted(r.counts.items())) + str(sorted(map(str, r.notices.to_pylist())))
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": cpu() - c0, "findings": sum(r.counts.values()),
                  "answer": hashlib.sha256(answer.encode()).hexdigest(), "seconds": r.seconds}))
"""


def _tables(zp: Path) -> tuple[Path, str]:
    import duckdb

    from transforms.canonical import canonicalize
    from transforms.gtfs import GtfsAdapter
    from transforms.schema import load_schema

    tables = Path(tempfile.mkdtemp(prefix="noriba-bench-rules-")) / "gtfs"
    feed = GtfsAdapter().read(zp)
    profile = "gtfs-jp" if any(n.endswith("_jp.txt") for n in feed.files) else "gtfs"
    canonicalize(feed, schema=load_schema(), out_dir=tables, profile=profile, con=duckdb.connect())
    return tables, profile


def compare(zp: Path, before: Path, repeat: int, per_rule: int = 0) -> dict:
    import shutil

    tables, profile = _tables(zp)
    try:
        return _compare(zp, tables, profile, before, repeat, per_rule)
    finally:  # the feed's staged tables (noriba-bench-rules-*): this run's own, removed by it
        shutil.rmtree(tables.parent, ignore_errors=True)


def _compare(zp: Path, tables: Path, profile: str, before: Path, repeat: int, per_rule: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if per_rule:
        env.update(BENCH_PER_RULE="1", NORIBA_RULES_WORKERS="1")
    best: dict[str, dict] = {}
    rule_cpu: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for name, root in (("before", before), ("after", ROOT)):
            out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(tables), profile], capture_output=True,
                                 text=True, env=env, cwd=tempfile.gettempdir(), check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            b = best.setdefault(name, {"wall_s": 1e9, "cpu_s": 1e9, "answers": set(), "findings": r["findings"]})
            b["wall_s"] = min(b["wall_s"], round(r["wall"], 3))
            b["cpu_s"] = min(b["cpu_s"], round(r["cpu"], 3))
            b["answers"].add(r["answer"])
            for code, sec in r["seconds"].items():  # best of the runs, per rule
                rule_cpu.setdefault(name, {})[code] = min(sec, rule_cpu.get(name, {}).get(code, 1e9))
    same = best["before"]["answers"] == best["after"]["answers"] and len(best["after"]["answers"]) == 1
    out = {"feed": zp.name, "load": [round(x, 2) for x in os.getloadavg()], "same_answers": same,
           **{k: {kk: vv for kk, vv in v.items() if kk != "answers"} for k, v in best.items()}}
    if per_rule:
        top = sorted(rule_cpu["after"], key=lambda c: -max(rule_cpu["after"][c], rule_cpu["before"].get(c, 0)))[:per_rule]
        out["rules_cpu_ms"] = {c: [round(rule_cpu["before"].get(c, 0) * 1000, 1), round(rule_cpu["after"][c] * 1000, 1)] for c in top}
    return out


def planning(zp: Path) -> dict:
    """Return each applicable rule's query run alone: wall, planning, SQL size, branches (the shared tables inlined)."""
    from transforms.rules import engine
    from transforms.rules.registry import all_rules
    from transforms.schema import load_schema

    names = set(load_schema().tables)
    tables, profile = _tables(zp)
    con, present = engine.open_tables(tables)
    ctx = engine.Context(validation_date=date(2019, 6, 1), profile=profile, present=present)
    prof = Path(tempfile.mkdtemp()) / "profile.json"
    con.execute("PRAGMA enable_profiling='json'")
    con.execute(f"PRAGMA profiling_output='{prof}'")
    rows = []
    for rule in all_rules():
        if not rule.applies(ctx):
            continue
        sql = rule.sql(ctx)
        best = None
        for _ in range(2):
            t0 = time.perf_counter()
            con.execute(f"SELECT count(*) FROM ({sql})").fetchall()
            wall = time.perf_counter() - t0
            j = json.loads(prof.read_text())
            plan = j["planner"]["total_time"] + j["optimizer"]["total_time"] + j["physical_planner"]["total_time"]
            best = min(best or (wall, plan), (wall, plan))
        absent = [m for m in re.findall(r'(?:FROM|JOIN)\s+"?([a-z_]+)"?', sql) if m in names and m not in present]
        rows.append({"code": rule.code, "wall_ms": round(best[0] * 1000), "planning_ms": round(best[1] * 1000),
                     "sql_chars": len(sql), "branches": len(re.findall(r"\bUNION ALL\b", sql)) + 1, "absent_refs": len(absent)})
    rows.sort(key=lambda r: -r["wall_ms"])
    return {"feed": zp.name, "rules": len(rows), "wall_s": round(sum(r["wall_ms"] for r in rows) / 1000, 3),
            "planning_s": round(sum(r["planning_ms"] for r in rows) / 1000, 3), "load": [round(x, 2) for x in os.getloadavg()],
            "slowest": rows[:12]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("feeds", nargs="+", type=Path)
    ap.add_argument("--before", type=Path, help="a checkout of the tree to compare with (run_rules from there)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--planning", action="store_true", help="also each rule's query alone under DuckDB's profiler")
    ap.add_argument("--per-rule", type=int, default=0, metavar="N",
                    help="with --before: one cursor, and the N rules with most CPU (ms, before and after)")
    args = ap.parse_args()
    for zp in args.feeds:
        if args.before:
            print(json.dumps(compare(zp, args.before, args.repeat, args.per_rule), ensure_ascii=False), flush=True)
        if args.planning:
            print(json.dumps(planning(zp), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
