"""`noriba rt validate`: archived realtime hours checked against the static feed in service, notices in rt.notices."""

from __future__ import annotations

import json

import duckdb

from noriba.cli import main
from noriba.rt_validate import validate_hours
from tests.conftest import shared


def test_tampa_capture_validates_against_the_published_static_feed(ws, capsys):
    folder = shared("gtfs", "rt", "bullrunner-tampa")
    home = str(ws.home)
    assert main(["--home", home, "ingest", str(folder / "bullrunner-gtfs.zip"), "--id", "bullrunner", "--quiet"]) == 0
    assert main(["--home", home, "rt", "ingest", str(folder / "bullrunner-vehicle-positions"), "--feed", "bullrunner-rt",
                 "--static", "bullrunner"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "rt", "validate", "bullrunner-rt"]) == 0
    out = capsys.readouterr().err
    assert "against static bullrunner" in out and "W001 10" in out
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    counts = dict(con.execute("SELECT code, notices FROM rt.notice_counts WHERE feed_id = 'bullrunner-rt'").fetchall())
    # the capture was ingested, so there is no fetch time: W008 (stale at fetch) is not checked; the rest is the validator's output
    assert counts == {"W001": 10, "W006": 10, "W009": 10}
    assert con.execute("SELECT count(*), min(static_feed_version) IS NOT NULL FROM rt.notices").fetchall() == [(30, True)]
    con.close()
    assert main(["--home", home, "rt", "validate", "bullrunner-rt"]) == 0  # a rerun replaces the hour
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM rt.notices").fetchall() == [(30,)]


def test_without_a_published_static_feed_the_static_rules_are_skipped(ws):
    folder = shared("gtfs", "rt", "bullrunner-tampa")
    assert main(["--home", str(ws.home), "rt", "ingest", str(folder / "bullrunner-vehicle-positions"), "--feed", "x-rt",
                 "--static", "nowhere"]) == 0
    (hour,) = validate_hours(ws, "x-rt", publish=False)["hours"]
    assert hour["static_feed_version"] is None and hour["counts"] == {"W001": 10, "W006": 10, "W009": 10}


def test_vehicle_positions_are_checked_against_the_trip_updates_of_the_same_moment(ws, tmp_path):
    from noriba import rt
    from tests.transforms.gtfs_rt.test_rules import T, message, trip_update, vehicle

    tu = message()
    trip_update(tu).vehicle.id = "V9"  # the trip updates say V9 runs T1; the positions say V1
    vp = message()
    vp.header.timestamp = T + 10
    vehicle(vp)
    (tmp_path / "tu.pb").write_bytes(tu.SerializeToString())
    (tmp_path / "vp.pb").write_bytes(vp.SerializeToString())
    rt.ingest(ws, "pair-rt", [tmp_path / "tu.pb", tmp_path / "vp.pb"])
    (hour,) = validate_hours(ws, "pair-rt", publish=False)["hours"]
    assert hour["snapshots"] == 2
    assert {"W003", "E047"} <= set(hour["counts"])


def test_the_service_day_is_the_date_in_the_feeds_time_zone():
    from noriba.rt_validate import local_day

    assert local_day("2026-12-06", 16, "Asia/Tokyo") == "2026-12-07"  # 01:30 JST
    assert local_day("2026-12-06", 14, "Asia/Tokyo") == "2026-12-06"
    assert local_day("2026-12-06", 16, None) == "2026-12-06"
    assert local_day("2026-12-06", 16, "Mars/Olympus") == "2026-12-06"


def test_a_validated_hour_gets_a_report_like_a_static_version_naming_the_static_version(ws, capsys):
    import json

    folder = shared("gtfs", "rt", "bullrunner-tampa")
    home = str(ws.home)
    assert main(["--home", home, "ingest", str(folder / "bullrunner-gtfs.zip"), "--id", "bullrunner", "--quiet"]) == 0
    assert main(["--home", home, "rt", "ingest", str(folder / "bullrunner-vehicle-positions"), "--feed", "br-rt",
                 "--static", "bullrunner"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "rt", "validate", "br-rt"]) == 0
    out = capsys.readouterr().err
    (hour,) = validate_hours(ws, "br-rt")["hours"]
    html = hour["report"]
    assert f"report: {html}" in out and html.endswith(f"br-rt/{hour['hour']}/report.html")
    report = json.loads((ws.reports / "br-rt" / hour["hour"] / "report.json").read_text(encoding="utf-8"))
    assert report["kind"] == "gtfs-rt" and report["static_feed_id"] == "bullrunner" and report["static_feed_version"]
    assert {d["code"]: d["count"] for d in report["notices"]} == {"W001": 10, "W006": 10, "W009": 10}
    w001 = next(d for d in report["notices"] if d["code"] == "W001")
    assert w001["why"].startswith("A header, trip update or vehicle position has no timestamp") and w001["why_ja"] and w001["samples"]
    assert report["files"] == {"vehicle_positions (snapshots)": {"rows_in": 1, "accepted": 1, "quarantined": 0, "encoding": "protobuf"}}
    page = open(html, encoding="utf-8").read()
    assert "Checked against" in page and "bullrunner" in page and 'id="W001"' in page

    from noriba.rt_match import match_feed

    (m,) = match_feed(ws, "br-rt")["hours"]  # the match's notices join the hour's report; the snapshot counts stay
    report = json.loads((ws.reports / "br-rt" / hour["hour"] / "report.json").read_text(encoding="utf-8"))
    assert {d["code"] for d in report["notices"]} == {"W001", "W006", "W009", *m["notices"]}
    assert report["rows"] == {"in": 1, "accepted": 1, "quarantined": 0}


def test_the_report_of_a_realtime_hour_speaks_japanese_for_a_feed_in_japan(ws):
    from noriba import rt
    from noriba.report import render_html
    from tests.transforms.gtfs_rt.test_rules import message, trip_update

    msg = message()
    trip_update(msg).ClearField("timestamp")
    path = ws.home / "tu.pb"
    path.write_bytes(msg.SerializeToString())
    rt.ingest(ws, "jp-rt", [path], tz="Asia/Tokyo")
    (hour,) = validate_hours(ws, "jp-rt")["hours"]
    report = json.loads((ws.reports / "jp-rt" / hour["hour"] / "report.json").read_text(encoding="utf-8"))
    assert report["language"] == "ja"
    page = render_html(report)
    assert "検証レポート" in page and "タイムスタンプがなく" in page
