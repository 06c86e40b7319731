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
