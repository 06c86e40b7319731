"""``noriba serve`` for real: a child process on 127.0.0.1, requested with urllib, stopped by its PID."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import MINI_FEED, write_feed


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The demo feeds, the demo-region export, and a one-off ingest without a licence (not public)."""
    from noriba.cli import main
    from noriba.exports import build_export
    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from warehouse.workspace import Workspace

    root = tmp_path_factory.mktemp("serve")
    ws = Workspace(root / "home").ensure()
    for spec in load_specs():
        if "demo" in spec.tags:
            run_feed(spec, ws)
    assert main(["--home", str(ws.home), "ingest", str(write_feed(root / "adhoc", MINI_FEED)), "--id", "adhoc-private", "--quiet"]) == 0
    build_export("demo-region", ws)
    return ws


def _start(ws, *extra: str) -> tuple[subprocess.Popen, str]:
    """Return the running ``noriba serve`` child and its first stdout line (the startup line)."""
    proc = subprocess.Popen([sys.executable, "-m", "noriba.cli", "--home", str(ws.home), "serve", "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NORIBA_BASE_URL": ""})
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    if not ready:
        _stop(proc)
        pytest.fail("noriba serve printed nothing in 60 s")
    return proc, proc.stdout.readline()


def _stop(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def served(home):
    proc, line = _start(home)
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert m, line
    yield f"http://127.0.0.1:{m.group(1)}", line
    _stop(proc)


def _get(url: str) -> tuple[int, object, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_startup_line_names_the_address_and_the_endpoints(served):
    _, line = served
    for endpoint in ("/site/index.html", "/catalog.json", "/files.json", "/files?pref=", "latest.zip"):
        assert endpoint in line, (endpoint, line)


def test_catalog_json_and_files_json_are_served_where_the_readme_says(served, home):
    base, _ = served
    status, headers, body = _get(f"{base}/catalog.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == json.loads((home.exports / "site" / "catalog.json").read_text(encoding="utf-8"))
    status, _, body = _get(f"{base}/files.json")
    assert status == 200 and {r["feed_id"] for r in json.loads(body)["body"]} >= {"minato-city-bus", "demo-region"}


def test_an_invalid_prefecture_code_is_a_400_saying_what_is_expected(served):
    base, _ = served
    for bad in ("99", "0", "48", "abc"):
        status, headers, body = _get(f"{base}/files?pref={bad}")
        doc = json.loads(body)
        assert status == 400 and doc["code"] == 400 and "01–47" in doc["message"] and doc["body"] == [], bad
    status, _, body = _get(f"{base}/files?pref=01")
    assert status == 200 and json.loads(body)["body"]


def test_an_impossible_target_date_is_a_400_naming_the_format(served):
    base, _ = served
    for bad in ("2026-13-45", "2026-02-30", "20260601", "June"):
        status, _, body = _get(f"{base}/files?target_date={bad}")
        doc = json.loads(body)
        assert status == 400 and "YYYY-MM-DD" in doc["message"], bad
    assert _get(f"{base}/files?target_date=2026-06-01")[0] == 200


def test_merged_exports_are_in_the_files_listing(served):
    base, _ = served
    rows = {r["feed_id"]: r for r in json.loads(_get(f"{base}/files?pref=1&target_date=2026-06-01")[2])["body"]}
    assert rows["demo-region"]["feed_kind"] == "export"


def test_folders_are_not_listed(served):
    base, _ = served
    for folder in ("/gtfs/", "/gtfs/minato-city-bus/", "/reports/", "/demo-region/", "/site/feeds/"):
        status, _, body = _get(base + folder)
        assert status == 404 and b"minato" not in body and b"Directory listing" not in body, folder


def test_the_latest_url_serves_the_current_file_of_each_feed_and_export(served, home):
    base, _ = served
    cat = json.loads(_get(f"{base}/catalog.json")[2])
    import hashlib

    for s in cat["sources"]:
        status, _, body = _get(base + s["urls"]["latest"])
        assert status == 200 and hashlib.sha256(body).hexdigest() == s["noriba"]["sha256"], s["noriba"]["id"]


def test_a_feed_left_out_of_the_catalog_cannot_be_downloaded(served, home):
    base, _ = served
    zips = sorted((home.exports / "gtfs" / "adhoc-private").glob("*.zip"))
    assert zips  # it was exported, just not published
    for z in zips:
        assert _get(f"{base}/gtfs/adhoc-private/{z.name}")[0] == 404
    assert _get(f"{base}/files?target_date=2026-06-01")[0] == 200
    assert "adhoc-private" not in _get(f"{base}/files.json")[2].decode("utf-8")


def test_host_defaults_to_127_0_0_1_and_can_be_given(home):
    proc, line = _start(home, "--host", "127.0.0.1")
    try:
        assert re.search(r"http://127\.0\.0\.1:\d+/", line), line
    finally:
        _stop(proc)
    from noriba.cli import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"


# ---------------------------------------------------------------- the merged realtime feed (/rt/<export>/...)

@pytest.fixture(scope="module")
def demo_rt(home):
    """The simulated realtime morning of the demo city bus, archived as `noriba demo` does (its static feed is in demo-region)."""
    import datetime as dt

    from noriba import rt_sim
    from noriba.cli import DEMO_RT

    rt_sim.demo_feed(home, static_feed_id=DEMO_RT["static_feed_id"], feed_id=DEMO_RT["feed_id"],
                     day=dt.date.fromisoformat(DEMO_RT["day"]), hours=DEMO_RT["hours"])
    return DEMO_RT["feed_id"]


def _rt(base: str, name: str, export: str = "demo-region"):
    from google.transit import gtfs_realtime_pb2 as pb

    status, headers, body = _get(f"{base}/rt/{export}/{name}")
    assert status == 200, (name, body[:300])
    msg = pb.FeedMessage()
    msg.ParseFromString(body)
    return msg, headers, body


def test_startup_line_names_the_merged_realtime_urls(served):
    _, line = served
    assert "/rt/<export>/trip-updates.pb" in line, line


def test_merged_realtime_is_served_as_protobuf_and_json_with_ids_of_the_downloaded_static_zip(served, demo_rt, tmp_path):
    import io
    import zipfile

    from google.protobuf import json_format
    from google.transit import gtfs_realtime_pb2 as pb

    from transforms.gtfs_rt.rules import StaticIndex

    base, _ = served
    status, _, body = _get(f"{base}/demo-region/latest.zip")  # what an app downloads
    assert status == 200 and zipfile.ZipFile(io.BytesIO(body)).namelist()
    (tmp_path / "demo-region.zip").write_bytes(body)
    static = StaticIndex.from_gtfs_zip(tmp_path / "demo-region.zip")
    counted = 0
    for name in ("trip-updates", "vehicle-positions", "alerts"):
        msg, headers, _ = _rt(base, f"{name}.pb")
        assert headers["Content-Type"] == "application/x-protobuf" and headers["ETag"]
        assert (msg.header.gtfs_realtime_version, msg.header.incrementality) == ("2.0", pb.FeedHeader.FULL_DATASET)
        assert msg.header.timestamp > 0
        status, headers, js = _get(f"{base}/rt/demo-region/{name}.json")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert json_format.Parse(js, pb.FeedMessage()) == msg
        for e in msg.entity:
            trip = e.trip_update.trip if e.HasField("trip_update") else e.vehicle.trip
            assert trip.trip_id in static.trips and trip.route_id in static.routes, trip
            stops = [s.stop_id for s in e.trip_update.stop_time_update] + ([e.vehicle.stop_id] if e.vehicle.stop_id else [])
            assert all(s in static.stops for s in stops), stops
            assert e.id.startswith(f"{demo_rt}:")
            counted += 1
    assert counted >= 2  # the simulated bus's trip update and position at the end of the morning


def test_merged_realtime_has_no_realtime_error_its_input_did_not_have(served, demo_rt, home):
    import duckdb
    from google.transit import gtfs_realtime_pb2 as pb

    from transforms.gtfs_rt.rules import Snapshot, StaticIndex, validate
    from warehouse.rt_merge import load_id_map

    base, _ = served
    doc = json.loads(_get(f"{base}/rt/demo-region/status.json")[2])
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        (version,) = con.execute("SELECT feed_version FROM meta.feed_versions WHERE feed_id = 'minato-city-bus' "
                                 "ORDER BY ingested_at DESC LIMIT 1").fetchone()
        input_static = StaticIndex.from_warehouse(con, "minato-city-bus", version)
    finally:
        con.close()
    merged_static = StaticIndex.from_gtfs_zip(load_id_map(home, "demo-region").zip_path)
    for name in ("trip-updates", "vehicle-positions"):
        merged, _, _ = _rt(base, f"{name}.pb")
        (inp,) = doc["parts"][name]["inputs"]
        assert inp["feed_id"] == demo_rt and inp["dropped"] == {} and inp["entities_out"] == len(merged.entity)
        src = pb.FeedMessage()
        src.ParseFromString((home.raw / inp["snapshot"]).read_bytes())
        errors = lambda f: {code for (code, sev), n in f.counts.items() if sev == "ERROR" and n}  # noqa: E731
        before = errors(validate(Snapshot(src, "input"), static=input_static))
        assert errors(validate(Snapshot(merged, "merged"), static=merged_static)) <= before, name


def test_a_repeated_get_is_the_same_feed_and_its_etag_answers_304(served, demo_rt):
    base, _ = served
    _, headers, body = _rt(base, "trip-updates.pb")
    _, again, body2 = _rt(base, "trip-updates.pb")
    assert body2 == body and again["ETag"] == headers["ETag"]
    req = urllib.request.Request(f"{base}/rt/demo-region/trip-updates.pb", headers={"If-None-Match": headers["ETag"]})
    try:
        urllib.request.urlopen(req, timeout=20)
        raise AssertionError("expected 304")
    except urllib.error.HTTPError as e:
        assert e.code == 304


def test_unknown_export_or_one_without_realtime_is_a_404_with_one_line(served, demo_rt, home):
    import http.client

    from noriba.exports import build_export, parse_export_spec
    from tests.conftest import ROOT

    base, _ = served
    build_export(parse_export_spec({"id": "kita-only", "feeds": {"ids": ["kita-coast-line"]}, "license": {"id": "CC0-1.0"},
                                    "formats": ["gtfs"]}, where="test", root=ROOT), home, validate=False)
    cases = {"/rt/nowhere/trip-updates.pb": "no built export 'nowhere'",
             "/rt/kita-only/vehicle-positions.json": "export 'kita-only' has no realtime input",
             "/rt/kita-only/status.json": "has no realtime input",
             "/rt/demo-region/timetable.pb": "no such realtime file",
             "/rt/demo-region/trip-updates.xml": "no such realtime file"}
    for path, said in cases.items():
        status, headers, body = _get(base + path)
        text = body.decode("utf-8")
        assert status == 404 and said in text and text.count("\n") == 1 and "Traceback" not in text, (path, text)
        assert headers["Content-Type"].startswith("text/plain")
    host, port = base.removeprefix("http://").split(":")
    for raw in ("/rt/../../../etc/passwd", "/rt/..%2F..%2Fraw/trip-updates.pb", "/rt/%2e%2e/trip-updates.pb"):
        c = http.client.HTTPConnection(host, int(port), timeout=20)
        c.request("GET", raw)
        r = c.getresponse()
        body = r.read()
        c.close()
        assert r.status == 404 and b"root:" not in body and b"Traceback" not in body, raw
