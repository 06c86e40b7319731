"""Runs that heal: `noriba run` killed (kill -9) at each step, then run again, ends as an uninterrupted run.

The kill is deterministic: the test hook NORIBA_FAULT_AT=<step> (warehouse/runstate.py) makes the
process SIGKILL itself at that step's fault point, in the middle of the step's work.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.conftest import MINI_FEED, ROOT, write_feed
from tests.noriba.test_cli_errors import tmpfs  # noqa: F401 (fixture: a small tmpfs, skipped where mount is not allowed)

FEED_ID = "fault-bus"
#: Columns that hold the time of a run or the workspace's own path: they differ between any two runs.
VOLATILE = {"ingested_at", "fetched_at", "published_at", "run_at", "raw_path"}
#: Names of temporary files and folders: ours (.x.tmp-id, .x.old-id), older ones (x.zip.tmp) and tempfile's (tmpXXXXXXXX).
TEMP_NAME = re.compile(r"(\.tmp|\.old-)|^tmp[a-z0-9_]{8}$")
FEED_FILES = {**MINI_FEED, "notes.txt": "note_id,text\nN1,港線は平日のみ\n"}  # an unknown file: other_files → export
STEPS = ("parse", "rules", "lake", "publish", "snapshot", "contracts", "export")


def _specs(tmp: Path) -> Path:
    src = write_feed(tmp / "input", FEED_FILES)
    specs = tmp / "specs"
    (specs / "feeds").mkdir(parents=True, exist_ok=True)
    (specs / "feeds" / f"{FEED_ID}.yml").write_text(
        f"id: {FEED_ID}\nkind: gtfs\nsource: {{path: {src}}}\ntimezone: Asia/Tokyo\n", encoding="utf-8")
    return specs


def _run(home: Path, specs: Path, *, fault: str | None = None, popen: bool = False):
    env = {k: v for k, v in os.environ.items() if k not in ("NORIBA_FAULT_AT", "NORIBA_HOME", "NORIBA_DEBUG")}
    if fault:
        env["NORIBA_FAULT_AT"] = fault
    cmd = [sys.executable, "-m", "noriba.cli", "--home", str(home), "run", "--quiet", "--specs", str(specs), "--date", "2026-06-01", FEED_ID]
    if popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def _rows(table) -> list:
    keep = [c for c in table.column_names if c not in VOLATILE]
    return sorted(json.dumps(r, sort_keys=True, default=str, ensure_ascii=False) for r in table.select(keep).to_pylist())


def snapshot(home: Path) -> dict:
    """Return what a run leaves, comparable across workspaces: lake files and rows, warehouse counts and checksums,
    export zip members and Parquet rows, contract results (all without run times and workspace paths)."""
    out: dict = {"lake": {}, "exports": {}, "warehouse": {}}
    for p in sorted((home / "lake").rglob("*")):
        if p.is_file():
            out["lake"][p.relative_to(home / "lake").as_posix()] = _rows(pq.read_table(p))
    for p in sorted((home / "exports").rglob("*")):
        rel = p.relative_to(home / "exports").as_posix()
        if p.suffix == ".zip":
            with zipfile.ZipFile(p) as zf:
                out["exports"][rel] = {n: hashlib.sha256(zf.read(n)).hexdigest() for n in sorted(zf.namelist())}
        elif p.suffix == ".parquet":
            out["exports"][rel] = _rows(pq.read_table(p))
        elif p.is_file():
            out["exports"][rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    con = duckdb.connect(str(home / "noriba.duckdb"), read_only=True)
    tables = con.sql("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL").fetchall()
    for schema, table in tables:
        rel = con.sql(f'SELECT * FROM "{schema}"."{table}"')
        out["warehouse"][f"{schema}.{table}"] = _rows(rel.to_arrow_table())
    con.close()
    return out


def leftovers(home: Path) -> list[str]:
    """Return the temporary files and folders under ``home``, and anything left in staging."""
    temps = [p.relative_to(home).as_posix() for p in home.rglob("*") if TEMP_NAME.search(p.name)]
    staged = [p.relative_to(home).as_posix() for p in (home / "staging").glob("*/*")]
    return sorted(temps + staged)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """An uninterrupted run: (specs folder, its snapshot)."""
    tmp = tmp_path_factory.mktemp("clean")
    specs = _specs(tmp)
    done = _run(tmp / "home", specs)
    assert done.returncode == 0, done.stderr
    snap = snapshot(tmp / "home")
    assert snap["exports"], "the uninterrupted run made no export"
    assert snap["warehouse"]["quality.expectation_results"], "the uninterrupted run stored no contract results"
    return specs, snap


@pytest.mark.parametrize("step", STEPS)
def test_a_run_killed_at_a_step_heals_on_rerun_to_an_uninterrupted_runs_state(step, clean, tmp_path):
    specs, expected = clean
    home = tmp_path / "home"
    killed = _run(home, specs, fault=step)
    assert killed.returncode == -signal.SIGKILL, f"the run was not killed at {step}: {killed.returncode} {killed.stderr}"
    rerun = _run(home, specs)
    assert rerun.returncode == 0 and "Traceback" not in rerun.stderr + rerun.stdout, rerun.stderr
    assert leftovers(home) == []
    got = snapshot(home)
    for part in ("lake", "warehouse", "exports"):
        assert got[part] == expected[part], f"{part} after a kill at {step} and a rerun differs from an uninterrupted run's"
    if step in ("contracts", "export"):  # the version was published: the rerun's input is unchanged, and it says what it finished
        # the export is built while the version is published (noriba.pipeline.start_export): a kill in the contracts may
        # come before or after it is whole, and a kill in the export before or after the publish's commit
        lefts = ("the data contracts and the export", "the data contracts") if step == "contracts" else ("the export",)
        said = rerun.stdout + rerun.stderr  # the CLI writes its messages to stderr
        healed = "input unchanged (sha256" in said and any(f"finished {left} left by an interrupted run" in said for left in lefts)
        assert healed or (step == "export" and re.search(r"version \w+ published", said)), said
    if step == "export":
        again = _run(home, specs)
        assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr, again.stdout + again.stderr


def test_two_runs_of_the_same_feed_at_once_both_end_cleanly_with_one_export(clean, tmp_path):
    specs, expected = clean
    home = tmp_path / "home"
    procs = [_run(home, specs, popen=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (so, se) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in so + se and "error" not in so + se, so + se
    assert sum("nothing to do" in so + se for so, se in outs) == 1  # the second waited for the first, then had nothing to do
    assert leftovers(home) == []
    assert snapshot(home)["exports"] == expected["exports"]
    assert len(list((home / "exports" / "gtfs" / FEED_ID).glob("*.zip"))) == 1


def test_a_run_on_a_full_then_read_only_disk_fails_in_one_line_and_heals_once_writable(clean, tmpfs):
    specs, expected = clean
    home = tmpfs("home", "size=1m")  # the lake fits, the warehouse does not
    full = _run(home, specs)
    assert full.returncode == 2 and "disk is full" in full.stderr and "Traceback" not in full.stderr, full.stderr
    subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
    ro = _run(home, specs)
    assert ro.returncode == 2 and "read-only" in ro.stderr and "Traceback" not in ro.stderr, ro.stderr
    subprocess.run(["mount", "-o", "remount,rw,size=256m", str(home)], check=True)
    rerun = _run(home, specs)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert leftovers(home) == []
    got = snapshot(home)
    assert {k: got[k] for k in expected} == expected
