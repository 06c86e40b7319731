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
