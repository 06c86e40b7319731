"""A version its policy blocks is published for inspection, but gtfs_latest and exports keep to the last one that passed."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from tests.conftest import MINI_FEED, ROOT, make_spec, write_feed

#: MINI_FEED whose second stop time calls at a stop stops.txt does not have (foreign_key_violation, a structure ERROR)
UNDEFINED_STOP = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace("T1,24:10:00,24:10:00,S2,2", "T1,24:10:00,24:10:00,S9,2")}


def _cli(ws, *args):
    return subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(ws.home), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _latest(ws):
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        return (con.execute("SELECT feed_id, feed_version FROM meta.latest_versions").fetchall(),
                con.execute("SELECT feed_version, policy_status, blocked_by FROM meta.feed_versions ORDER BY ingested_at").fetchall(),
                con.execute("SELECT DISTINCT stop_id FROM gtfs_latest.stop_times ORDER BY 1").fetchall())
    finally:
        con.close()


def test_blocked_version_is_published_but_not_latest_and_not_exported(ws, tmp_path):
    from noriba.pipeline import run_feed
    from warehouse.status import status

    good = run_feed(make_spec("mini", write_feed(tmp_path / "a", MINI_FEED)), ws)
    assert good["policy_status"] == "pass" and good["exports"]["gtfs_zip"]
    bad = run_feed(make_spec("mini", write_feed(tmp_path / "b", UNDEFINED_STOP)), ws)
    assert bad["status"] == "new" and bad["published"]["gtfs.stop_times"] == 2
    assert bad["policy_status"] == "blocked" and bad["blocked_by"] == {"foreign_key_violation": 1}
    assert bad["exports"] is None and "foreign_key_violation" in bad["export_refused"]
    assert not list((ws.exports / "gtfs" / "mini").glob(f"*{bad['feed_version']}*"))

    latest, versions, stops = _latest(ws)
    assert latest == [("mini", good["feed_version"])]
    assert [(v, s) for v, s, _ in versions] == [(good["feed_version"], "pass"), (bad["feed_version"], "blocked")]
    assert stops == [("S1",), ("S2",)]

    feed = status(ws)["feeds"][0]
    assert (feed["latest_version"], feed["newest_version"], feed["policy_status"]) == (good["feed_version"], bad["feed_version"], "blocked")
    assert "foreign_key_violation ×1" in feed["reason"] and good["feed_version"] in feed["reason"]

    shown = _cli(ws, "status")
    assert shown.returncode == 0 and "blocked by policy: foreign_key_violation" in shown.stdout

    refused = _cli(ws, "export", "mini", "--version", bad["feed_version"])
    lines = [l for l in refused.stderr.splitlines() if l.strip()]
    assert refused.returncode == 1 and len(lines) == 1 and "foreign_key_violation" in lines[0] and "Traceback" not in refused.stderr
    fallback = _cli(ws, "export", "mini")
    assert fallback.returncode == 0 and good["feed_version"] in fallback.stderr


def test_a_feed_whose_only_version_is_blocked_has_no_latest(ws, tmp_path):
    from noriba.pipeline import run_feed
    from warehouse.status import status

    run_feed(make_spec("mini", write_feed(tmp_path / "b", UNDEFINED_STOP)), ws)
    latest, _, stops = _latest(ws)
    assert latest == [] and stops == []
    feed = status(ws)["feeds"][0]
    assert feed["latest_version"] is None and "gtfs_latest serves no version" in feed["reason"]
    refused = _cli(ws, "export")
    assert refused.returncode == 1 and "blocked by the feed's policy (foreign_key_violation ×1)" in refused.stderr


def test_changing_the_policy_lets_the_same_input_pass(ws, tmp_path):
    from noriba.pipeline import run_feed

    src = write_feed(tmp_path / "b", UNDEFINED_STOP)
    first = run_feed(make_spec("mini", src), ws)
    assert first["policy_status"] == "blocked"
    again = run_feed(make_spec("mini", src, policy={"allow": ["foreign_key_violation"]}), ws)
    assert again["feed_version"] == first["feed_version"] and again["policy_status"] == "pass"
    assert again["exports"]["gtfs_zip"]
    latest, versions, _ = _latest(ws)
    assert latest == [("mini", first["feed_version"])] and len(versions) == 1
    import json

    report = json.loads((ws.reports / "mini" / first["feed_version"] / "report.json").read_text(encoding="utf-8"))
    assert report["policy"]["status"] == "pass" and report["policy"]["rules"]["allow"] == ["foreign_key_violation"]


def test_a_version_from_before_policies_is_judged_on_the_next_run(ws, tmp_path):
    """An older lake row has no verdict nor notice_counts: the rerun judges it from its notices and republishes."""
    import pyarrow.parquet as pq

    from noriba.pipeline import run_feed

    src = write_feed(tmp_path / "b", UNDEFINED_STOP)
    first = run_feed(make_spec("mini", src, policy={"block": []}), ws)
    assert first["policy_status"] == "pass"
    part = ws.lake_partition("meta_feed_versions", "mini", first["feed_version"]) / "part-0.parquet"
    old = pq.read_table(part).drop_columns(["notice_counts", "policy_status", "blocked_by", "policy"])
    pq.write_table(old, part)
    again = run_feed(make_spec("mini", src), ws)
    assert again["policy_status"] == "blocked" and again["blocked_by"] == {"foreign_key_violation": 1}
    latest, versions, _ = _latest(ws)
    assert latest == [] and versions[0][1] == "blocked"
