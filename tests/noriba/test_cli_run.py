"""`noriba ingest/run --date`: the validation date is the one given, so a rerun is reproducible."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from tests.conftest import MINI_FEED, ROOT, write_feed


def test_ingest_records_the_validation_date_given_and_reports_the_verdict(tmp_path):
    src = write_feed(tmp_path / "in", {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace(",S2,2", ",S9,2")})
    proc = subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(tmp_path / "h"), "ingest", "--id", "my-bus",
                           "--date", "2020-02-29", str(src)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr  # blocked by policy: exit 1
    assert "BLOCKED by policy: foreign_key_violation ×1" in proc.stderr
    assert "no export:" in proc.stderr and "report:" in proc.stderr
    con = duckdb.connect(str(tmp_path / "h" / "noriba.duckdb"), read_only=True)
    assert con.execute("SELECT validation_date, policy_status FROM meta.feed_versions").fetchall() == [("2020-02-29", "blocked")]


def test_run_goes_on_after_a_failed_feed_and_lists_the_failures_at_the_end(tmp_path):
    good = write_feed(tmp_path / "good", MINI_FEED)
    feeds = tmp_path / "specs" / "feeds"
    feeds.mkdir(parents=True)
    (feeds / "a-missing.yml").write_text(f"id: a-missing\nkind: gtfs\nsource:\n  path: {tmp_path / 'nowhere.zip'}\n")
    (feeds / "b-good.yml").write_text(f"id: b-good\nkind: gtfs\nsource:\n  path: {good}\n")
    proc = subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(tmp_path / "h"), "run", "--no-export",
                           "--specs", str(tmp_path / "specs")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: 1 of 2 feeds failed: a-missing"
    con = duckdb.connect(str(tmp_path / "h" / "noriba.duckdb"), read_only=True)
    assert con.execute("SELECT feed_id FROM meta.feed_versions").fetchall() == [("b-good",)]


def _run_specs(tmp_path, home: str, jobs: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(tmp_path / home), "run", "--jobs", str(jobs),
                           "--specs", str(tmp_path / "specs"), "--date", "2026-06-01", *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _published(home) -> dict:
    con = duckdb.connect(str(home / "noriba.duckdb"), read_only=True)
    try:
        return {
            "versions": con.execute("SELECT feed_id, feed_version, rows_in, rows_accepted, rows_quarantined, errors, warnings, "
                                    "policy_status, notice_codes FROM meta.feed_versions ORDER BY feed_id").fetchall(),
            "stops": con.execute("SELECT feed_id, stop_id, stop_name FROM gtfs.stops ORDER BY ALL").fetchall(),
            "notices": con.execute("SELECT feed_id, code, severity, file, line, field, value, message FROM quality.notices "
                                   "ORDER BY ALL").fetchall(),
            "quarantine": con.execute("SELECT feed_id, file, line, code, raw FROM quality.quarantine ORDER BY ALL").fetchall(),
            "contracts": con.execute("SELECT feed_id, table_name, expectation_type, success FROM quality.expectation_results "
                                     "ORDER BY ALL").fetchall(),
        }
    finally:
        con.close()


def test_run_of_several_feeds_in_worker_processes_publishes_what_one_after_another_does_in_spec_order(tmp_path):
    feeds = tmp_path / "specs" / "feeds"
    feeds.mkdir(parents=True)
    variants = {
        "a-good": MINI_FEED,
        "b-blocked": {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace(",S2,2", ",S9,2")},
        "c-quarantine": {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "S2,丘の上,43.32,141.42\n"},  # a repeated key
    }
    for fid, files in variants.items():
        (feeds / f"{fid}.yml").write_text(f"id: {fid}\nkind: gtfs\nsource:\n  path: {write_feed(tmp_path / fid, files)}\n")
    one = _run_specs(tmp_path, "one", 1)
    pooled = _run_specs(tmp_path, "pooled", 2)
    for proc in (one, pooled):
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr  # b-blocked: exit 1
    assert _published(tmp_path / "pooled") == _published(tmp_path / "one")
    assert ("S2", "丘の上") not in [r[1:] for r in _published(tmp_path / "pooled")["stops"]]  # quarantined, not lost
    assert any("丘の上" in r[-1] for r in _published(tmp_path / "pooled")["quarantine"])
    lines = pooled.stderr.splitlines()
    # each feed's progress is shown, its worker's steps before its publish, and the feeds are published in spec order
    at = {(fid, what): next(i for i, line in enumerate(lines) if f"{fid}: {what}" in line)
          for fid in variants for what in ("reading", "running validation rules", "publishing version")}
    for fid in variants:
        assert at[fid, "reading"] < at[fid, "running validation rules"] < at[fid, "publishing version"]
    assert at["a-good", "publishing version"] < at["b-blocked", "publishing version"] < at["c-quarantine", "publishing version"]
    published = [line.split(":")[0] for line in lines if "published (" in line]
    assert published == ["a-good", "b-blocked", "c-quarantine"]


def test_run_with_a_number_of_jobs_that_is_not_one_or_more_says_so(tmp_path, monkeypatch):
    from noriba.pipeline import run_jobs
    from transforms.errors import InputError

    monkeypatch.setenv("NORIBA_RUN_JOBS", "two")
    try:
        run_jobs()
    except InputError as exc:
        assert "NORIBA_RUN_JOBS='two' is not a whole number" in str(exc)
    else:
        raise AssertionError("no error")
    monkeypatch.setenv("NORIBA_RUN_JOBS", "1")
    assert run_jobs() == 1 and run_jobs(3) == 3


_KILLED_WORKER_RUN = """
import json, os, signal, sys
from pathlib import Path
from noriba import pipeline
from noriba.specs import load_specs
from warehouse.workspace import Workspace

root = Path(sys.argv[1])
specs = load_specs(root / "specs")
ws = Workspace(root / "h").ensure()
real = pipeline.prepare_feed
parent = os.getpid()

def dies_on_b(spec, *a, **k):
    if spec.id == "b" and os.getpid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)  # a worker killed (out of memory, by hand)
    return real(spec, *a, **k)

pipeline.prepare_feed = dies_on_b  # the workers are forked after this: they run it too
with pipeline.FeedPool(specs, ws, jobs=2, validation_date=None, start_method="fork") as pool:
    got = [pipeline.run_feed(s, ws, pool=pool, export=False) for s in specs]
    stopped = pool.executor is None  # the pool stopped when its worker died
print(json.dumps({"got": [[r["feed_id"], r["status"]] for r in got], "stopped": stopped}))
"""


def test_a_worker_killed_mid_run_leaves_its_feed_and_the_next_ones_to_the_run_itself(tmp_path):
    """Run in a process of its own, which forks its workers as `noriba run` does (a test runner's worker process has
    threads of its own: noriba.forking gives it a fork server, whose workers would not see the replaced function)."""
    import json

    feeds = tmp_path / "specs" / "feeds"
    feeds.mkdir(parents=True)
    for fid in ("a", "b", "c", "d"):
        (feeds / f"{fid}.yml").write_text(f"id: {fid}\nkind: gtfs\nsource:\n  path: {write_feed(tmp_path / fid, MINI_FEED)}\n")
    proc = subprocess.run([sys.executable, "-c", _KILLED_WORKER_RUN, str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["got"] == [["a", "new"], ["b", "new"], ["c", "new"], ["d", "new"]]
    assert out["stopped"] is True  # b, c and d were staged by the run itself


def test_a_big_feed_is_staged_by_the_run_itself_with_no_worker_busy_and_the_order_is_kept(tmp_path, monkeypatch):
    from noriba import pipeline
    from noriba.specs import load_specs
    from warehouse.workspace import Workspace

    feeds = tmp_path / "specs" / "feeds"
    feeds.mkdir(parents=True)
    for fid in ("a", "b", "c"):
        files = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "".join(f"X{i},停留所{i},43.3,141.4\n" for i in range(400 if fid == "b" else 0))}
        (feeds / f"{fid}.yml").write_text(f"id: {fid}\nkind: gtfs\nsource:\n  path: {write_feed(tmp_path / fid, files)}\n")
    monkeypatch.setattr(pipeline, "POOL_MAX_BYTES", 4096)  # b's folder is over it, a's and c's are not
    specs = load_specs(tmp_path / "specs")
    ws = Workspace(tmp_path / "h").ensure()
    with pipeline.FeedPool(specs, ws, jobs=2) as pool:
        assert [pool.has(s) for s in specs] == [True, False, True]
        assert set(pool.futures) == {"a"}  # nothing after b starts before the run has staged b
        got = [pipeline.run_feed(s, ws, pool=pool, export=False) for s in specs]
    assert [(r["feed_id"], r["status"]) for r in got] == [("a", "new"), ("b", "new"), ("c", "new")]
    assert got[1]["rows_in"] == got[0]["rows_in"] + 400
