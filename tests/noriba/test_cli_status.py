"""`noriba status FEED` and `noriba diff FEED [V1 V2]`: a feed's versions, verdicts, notices by code and what changed."""

from __future__ import annotations

import json

import pytest

from noriba.cli import main
from tests.conftest import MINI_FEED, make_spec, write_feed

V1 = {**MINI_FEED, "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,stop_desc\nS1,港前,43.30,141.40,\nS2,駅前,43.31,141.41,駅前\n",
      "transfers.txt": "from_stop_id,to_stop_id,transfer_type\nS1,S2,0\n"}
# S2 renamed (its description no longer repeats the name), S3 added and served, S4 added and served by no trip
V2 = {**MINI_FEED,
      "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,stop_desc\nS1,港前,43.30,141.40,\nS2,新駅前,43.31,141.41,駅前\n"
                   "S3,港北,43.32,141.42,\nS4,港南,43.33,141.43,\n",
      "stop_times.txt": MINI_FEED["stop_times.txt"] + "T1,24:20:00,24:20:00,S3,3\n",
      "transfers.txt": "from_stop_id,to_stop_id,transfer_type\nS1,S2,1\n"}  # transfers.txt has no key


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    root = tmp_path_factory.mktemp("status")
    ws = Workspace(root / "home").ensure()
    src = root / "in"
    out = []
    for files in (V1, V2):
        for f in src.glob("*"):
            f.unlink()
        write_feed(src, files)
        out.append(run_feed(make_spec("port-bus", src), ws, export=False, contracts=False)["feed_version"])
    return ws, out


def _run(ws, *argv, capsys):
    rc = main(["--home", str(ws.home), *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_diff_counts_rows_added_removed_changed_per_file_and_notice_codes_that_came_and_went(two_versions, capsys):
    ws, (v1, v2) = two_versions
    rc, out, err = _run(ws, "diff", "port-bus", "--json", capsys=capsys)
    assert rc == 0, err
    d = json.loads(out)
    assert (d["from_version"], d["to_version"]) == (v1, v2)
    files = {f["file"]: f for f in d["files"]}
    assert (files["stops.txt"]["added"], files["stops.txt"]["removed"], files["stops.txt"]["changed"]) == (2, 0, 1)
    assert (files["stop_times.txt"]["added"], files["stop_times.txt"]["removed"], files["stop_times.txt"]["changed"]) == (1, 0, 0)
    assert (files["routes.txt"]["added"], files["routes.txt"]["removed"], files["routes.txt"]["changed"]) == (0, 0, 0)
    assert (files["transfers.txt"]["added"], files["transfers.txt"]["removed"], files["transfers.txt"]["changed"]) == (1, 1, None)
    assert (files["stops.txt"]["rows_before"], files["stops.txt"]["rows_after"]) == (2, 4)
    assert "stop_without_stop_time" in [n["code"] for n in d["notices_appeared"]]
    assert "same_name_and_description_for_stop" in [n["code"] for n in d["notices_disappeared"]]
    assert "stop_without_stop_time" not in [n["code"] for n in d["notices_disappeared"]]


def test_diff_of_named_versions_in_reverse_reverses_the_counts(two_versions, capsys):
    ws, (v1, v2) = two_versions
    rc, out, err = _run(ws, "diff", "port-bus", v2[:8], v1, "--json", capsys=capsys)
    assert rc == 0, err
    stops = next(f for f in json.loads(out)["files"] if f["file"] == "stops.txt")
    assert (stops["added"], stops["removed"], stops["changed"]) == (0, 2, 1)


def test_diff_prints_one_line_per_changed_file_and_each_notice_code(two_versions, capsys):
    ws, (v1, v2) = two_versions
    rc, out, err = _run(ws, "diff", "port-bus", capsys=capsys)
    assert rc == 0, err
    assert f"changes from {v1} to {v2}" in out
    assert any(l.split()[:4] == ["stops.txt", "+2", "-0", "~1"] for l in out.splitlines()), out
    assert "routes.txt" not in out
    assert "appeared: WARNING stop_without_stop_time" in out and "disappeared: WARNING same_name_and_description_for_stop" in out


def test_diff_of_an_unknown_version_lists_the_feeds_versions(two_versions, capsys):
    ws, (v1, v2) = two_versions
    rc, out, err = _run(ws, "diff", "port-bus", "ffff0000", v2, capsys=capsys)
    assert rc == 2 and "ffff0000" in err and v1 in err and v2 in err and "Traceback" not in err


def test_diff_of_an_unknown_feed_names_the_published_feeds(two_versions, capsys):
    ws, _ = two_versions
    rc, out, err = _run(ws, "diff", "no-such-bus", capsys=capsys)
    assert rc == 2 and "no-such-bus" in err and "port-bus" in err


def test_status_of_one_feed_shows_versions_verdicts_notices_by_code_and_changes(two_versions, capsys):
    ws, (v1, v2) = two_versions
    rc, out, err = _run(ws, "status", "port-bus", capsys=capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines.index(next(l for l in lines if v2 in l and "pass" in l)) < lines.index(next(l for l in lines if v1 in l and "pass" in l))
    assert any(l.startswith(" * " + v2) for l in lines), out  # the newest version is the one gtfs_latest serves
    assert any("stop_without_stop_time ×1" in l for l in lines), out
    assert "changes from" in out and "stops.txt" in out


def test_status_of_one_feed_as_json_has_each_version_and_the_diff(two_versions, capsys):
    ws, (v1, v2) = two_versions
    rc, out, err = _run(ws, "status", "port-bus", "--json", capsys=capsys)
    assert rc == 0, err
    d = json.loads(out)
    assert [v["feed_version"] for v in d["versions"]] == [v2, v1]
    assert [v["served"] for v in d["versions"]] == [True, False]
    assert {"code": "stop_without_stop_time", "severity": "WARNING", "count": 1} in d["notices"]
    assert d["diff"]["to_version"] == v2


def test_status_of_an_unknown_feed_is_one_error_naming_the_published_ones(two_versions, capsys):
    ws, _ = two_versions
    rc, out, err = _run(ws, "status", "nope", capsys=capsys)
    assert rc == 2 and "nope" in err and "port-bus" in err and "Traceback" not in err
