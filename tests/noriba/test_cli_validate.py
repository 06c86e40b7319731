"""`noriba validate`: validation alone, a summary to act on, the report, and exit codes 0 / 1 (blocked) / 2 (unreadable)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MINI_FEED, ROOT, shared, write_feed


def validate(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(home), "validate", "--quiet", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _report_paths(stdout: str) -> list[Path]:
    return [Path(l.split()[-1]) for l in stdout.splitlines() if l.strip().endswith(("report.html", "report.json"))]


@pytest.mark.realdata
def test_good_feed_exits_0_and_writes_nothing_but_the_report(tmp_path):
    home = tmp_path / "h"
    proc = validate(home, str(shared("gtfs/bad-transitfeed/good_feed")), "--date", "2019-06-01")
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout
    html, js = _report_paths(proc.stdout)
    assert html.name == "report.html" and html.exists() and js.exists()
    assert html.parent.parent.parent == home / "reports"
    assert json.loads(js.read_text(encoding="utf-8"))["validation_date"] == "2019-06-01"
    assert not (home / "noriba.duckdb").exists() and not (home / "lake").exists() and not (home / "raw").exists()


@pytest.mark.realdata
def test_bad_feed_exits_1_with_the_problem_where_and_how_to_fix(tmp_path):
    proc = validate(tmp_path / "h", str(shared("gtfs/bad-transitfeed/undefined_stop")))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "BLOCKED by policy: foreign_key_violation" in out
    assert "stop_times.txt:" in out and "[stop_id]" in out and "How to fix:" in out
    assert "Traceback" not in proc.stderr


@pytest.mark.realdata
def test_japanese_corpus_feed_gets_a_japanese_summary_and_exit_code_of_its_verdict(tmp_path):
    feed = shared("gtfs/jp/corpus-2019/feeds/gtfs.1022.minakamimachi_com.zip")
    proc = validate(tmp_path / "h", str(feed), "--date", "2019-06-01")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(_report_paths(proc.stdout)[1].read_text(encoding="utf-8"))
    assert report["language"] == "ja" and "検証日 2019-06-01" in proc.stdout
    assert proc.returncode == (1 if report["policy"]["status"] == "blocked" else 0)
    assert sum(report["totals"].values()) == sum(d["count"] for d in report["notices"])


def test_json_output_is_the_summary_with_report_paths(tmp_path):
    src = write_feed(tmp_path / "in", {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace(",S2,2", ",S9,2")})
    proc = validate(tmp_path / "h", str(src), "--json", "--id", "my-bus")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["feed_id"] == "my-bus" and data["policy"]["status"] == "blocked"
    assert data["notices"][0]["code"] == "foreign_key_violation" and len(data["notices"][0]["samples"]) == 1
    assert Path(data["report_html"]).exists()


@pytest.mark.parametrize("make", ["garbage_zip", "missing", "empty_folder"])
def test_unreadable_input_exits_2_with_one_line_and_no_traceback(tmp_path, make):
    if make == "garbage_zip":
        target = tmp_path / "feed.zip"
        target.write_bytes(b"\x00\xffnot a zip at all")
    elif make == "missing":
        target = tmp_path / "nowhere.zip"
    else:
        target = tmp_path / "empty"
        target.mkdir()
    proc = validate(tmp_path / "h", str(target))
    assert proc.returncode == 2
    errors = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_bad_date_is_one_clear_line(tmp_path):
    proc = validate(tmp_path / "h", str(tmp_path), "--date", "2019-13-01")
    assert proc.returncode == 2 and "YYYY-MM-DD" in proc.stderr and "Traceback" not in proc.stderr


def test_a_feed_id_is_validated_with_its_specs_policy(tmp_path):
    src = write_feed(tmp_path / "in", {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace(",S2,2", ",S9,2")})
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    spec = specs / "feeds" / "my-bus.yml"
    spec.write_text(f"id: my-bus\nkind: gtfs\nsource: {{path: {src}}}\n", encoding="utf-8")
    assert validate(tmp_path / "h", "my-bus", "--specs", str(specs)).returncode == 1
    spec.write_text(spec.read_text(encoding="utf-8") + "policy: {allow: [foreign_key_violation]}\n", encoding="utf-8")
    proc = validate(tmp_path / "h", "my-bus", "--specs", str(specs))
    assert proc.returncode == 0 and "foreign_key_violation ×1" in proc.stdout, proc.stdout + proc.stderr
    assert validate(tmp_path / "h", "no-such-bus", "--specs", str(specs)).returncode == 2
