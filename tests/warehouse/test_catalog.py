"""The catalog: pages per export and feed, catalog.json in the Mobility Database shape, the /files listing."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from noriba.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("catalog") / "home").ensure()
    for spec in load_specs():
        if "demo" in spec.tags:
            run_feed(spec, ws)
    build_export("demo-region", ws)
    return ws


def test_site_has_a_page_per_export_and_feed_with_version_validity_and_sha256(demo_ws):
    from noriba.exports import latest_versions
    from warehouse.export import sha256_of

    site = demo_ws.exports / "site"
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "exports/demo-region.html" in index and "feeds/minato-city-bus.html" in index
    assert "有効期間" in index and "valid" in index  # Japanese and English labels
    for fid, meta in latest_versions(demo_ws).items():
        page = (site / "feeds" / f"{fid}.html").read_text(encoding="utf-8")
        z = demo_ws.exports / "gtfs" / fid / f"{fid}_{meta['feed_version']}.zip"
        assert meta["feed_version"] in page and sha256_of(z) in page
        assert f"../../gtfs/{fid}/{z.name}" in page
        assert meta["service_start"] in page and meta["service_end"] in page
    assert "<script" not in index and "http://" not in index.replace("http://127", "") and "https://cdn" not in index


def test_catalog_json_follows_the_mobility_database_fields(demo_ws):
    cat = json.loads((demo_ws.exports / "site" / "catalog.json").read_text(encoding="utf-8"))
    kinds = {s["noriba"]["id"]: s for s in cat["sources"]}
    assert set(kinds) == {"demo-region", "minato-city-bus", "minato-community-timetable", "kita-coast-line"}
    for s in cat["sources"]:
        assert {"mdb_source_id", "data_type", "provider", "name", "location", "urls", "status", "features"} <= set(s)
        assert s["data_type"] == "gtfs" and s["urls"]["direct_download"].endswith(".zip")
        bb = s["location"]["bounding_box"]
        assert bb["minimum_latitude"] < bb["maximum_latitude"] and bb["minimum_longitude"] < bb["maximum_longitude"]
    assert kinds["minato-city-bus"]["location"]["country_code"] == "JP"
    assert kinds["minato-city-bus"]["location"]["subdivision_name"] == "北海道"
    assert kinds["demo-region"]["noriba"]["feeds"] == ["minato-city-bus", "minato-community-timetable", "kita-coast-line"]


def test_files_listing_filters_by_prefecture_and_target_date_when_served(demo_ws):
    from noriba.serve import serve_in_thread

    server, base = serve_in_thread(demo_ws)
    try:
        def get(q):
            with urllib.request.urlopen(f"{base}/files?{q}") as r:
                return json.loads(r.read().decode("utf-8"))

        both = get("pref=1&target_date=2026-06-01")["body"]
        assert {r["feed_id"] for r in both} == {"minato-city-bus", "minato-community-timetable", "kita-coast-line"}
        assert all(r["feed_pref_id"] == 1 and r["file_url"].endswith(".zip") for r in both)
        assert get("pref=10&target_date=2026-06-01")["body"] == []  # 群馬県
        assert get("pref=1&target_date=2030-01-01")["body"] == []  # after the service ends
        assert {r["feed_id"] for r in get("pref=" + urllib.parse.quote("北海道"))["body"]} == {"minato-city-bus", "minato-community-timetable", "kita-coast-line"}
        with pytest.raises(urllib.error.HTTPError) as bad:
            get("target_date=June")
        assert bad.value.code == 400
        with urllib.request.urlopen(base + "/") as r:  # the root redirects to the catalog page
            assert r.url.endswith("/site/index.html")
    finally:
        server.shutdown()
        server.server_close()


def test_catalog_and_municipality_report_do_not_import_upward_into_noriba():
    """Layers point down (noriba → warehouse): the catalog and the report must not import noriba's export code."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "warehouse"
    for name in ("catalog.py", "municipality_report.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        upward = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("noriba")}
        upward |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names if a.name.startswith("noriba")}
        assert upward <= {"noriba.workspace"}, (name, upward)  # Workspace is a plain path holder every layer shares
