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
    from warehouse.workspace import Workspace

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
    assert set(kinds) == {"demo-region", "minato-city-bus", "minato-community-timetable", "kita-coast-line", "minato-noriai-ondemand"}
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
            with urllib.request.urlopen(f"{base}/files?{q}", timeout=60) as r:
                return json.loads(r.read().decode("utf-8"))

        both = get("pref=1&target_date=2026-06-01")["body"]
        assert {r["feed_id"] for r in both} == {"minato-city-bus", "minato-community-timetable", "kita-coast-line", "minato-noriai-ondemand", "demo-region"}
        assert all(r["feed_pref_id"] == 1 and r["file_url"].endswith(".zip") for r in both)
        assert get("pref=10&target_date=2026-06-01")["body"] == []  # 群馬県
        assert get("pref=1&target_date=2030-01-01")["body"] == []  # after the service ends
        assert {r["feed_id"] for r in get("pref=" + urllib.parse.quote("北海道"))["body"]} == {"minato-city-bus", "minato-community-timetable", "kita-coast-line", "minato-noriai-ondemand", "demo-region"}
        with pytest.raises(urllib.error.HTTPError) as bad:
            get("target_date=June")
        assert bad.value.code == 400
        with urllib.request.urlopen(base + "/", timeout=60) as r:  # the root redirects to the catalog page
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
        assert upward <= {"warehouse.workspace"}, (name, upward)  # Workspace is a plain path holder every layer shares


def test_adhoc_ingest_without_a_licence_stays_out_of_the_public_catalog_unless_published(tmp_path):
    from noriba.cli import main
    from noriba.exports import update_catalog
    from tests.conftest import MINI_FEED, write_feed

    home = tmp_path / "home"
    feed = write_feed(tmp_path / "feed", MINI_FEED)
    assert main(["--home", str(home), "ingest", str(feed), "--id", "adhoc-private", "--quiet"]) == 0
    assert main(["--home", str(home), "ingest", str(feed), "--id", "adhoc-public", "--publish", "--quiet"]) == 0
    assert main(["--home", str(home), "ingest", str(feed), "--id", "adhoc-licensed", "--license", "CC-BY-4.0", "--quiet"]) == 0
    from warehouse.workspace import Workspace

    ws = Workspace(home)
    update_catalog(ws)
    site = ws.exports / "site"
    cat = {s["noriba"]["id"]: s for s in json.loads((site / "catalog.json").read_text(encoding="utf-8"))["sources"]}
    files = {r["feed_id"]: r for r in json.loads((site / "files.json").read_text(encoding="utf-8"))["body"]}
    index = (site / "index.html").read_text(encoding="utf-8")
    assert set(cat) == set(files) == {"adhoc-public", "adhoc-licensed"}
    assert "adhoc-private" not in index and not (site / "feeds" / "adhoc-private.html").exists()
    # the catalog says which licence each file carries, also when none was stated
    assert cat["adhoc-licensed"]["noriba"]["license"] == "CC-BY-4.0" and files["adhoc-licensed"]["feed_license_id"] == "CC-BY-4.0"
    assert cat["adhoc-public"]["noriba"]["license"] == "not stated" and files["adhoc-public"]["feed_license_id"] == "not stated"
    assert "ライセンス未記載" in (site / "feeds" / "adhoc-public.html").read_text(encoding="utf-8")


def test_expired_and_soon_expiring_feeds_are_marked_on_the_page_and_in_catalog_json(demo_ws):
    from datetime import date

    from noriba.exports import export_locations
    from warehouse.catalog import build_site

    def built(today):
        build_site(demo_ws, today=today, locations=export_locations())
        site = demo_ws.exports / "site"
        cat = {s["noriba"]["id"]: s for s in json.loads((site / "catalog.json").read_text(encoding="utf-8"))["sources"]}
        return cat, (site / "index.html").read_text(encoding="utf-8"), (site / "feeds" / "minato-city-bus.html").read_text(encoding="utf-8")

    try:
        cat, index, page = built(date(2026, 6, 1))  # every demo feed runs 2026-04-01 – 2027-03-31
        assert {s["status"] for s in cat.values()} == {"active"} and {s["noriba"]["validity"] for s in cat.values()} == {"current"}
        assert "期限切れ" not in index
        cat, index, page = built(date(2027, 3, 10))
        assert {s["status"] for s in cat.values()} == {"active"} and {s["noriba"]["validity"] for s in cat.values()} == {"expiring"}
        assert cat["minato-city-bus"]["noriba"]["days_left"] == 21
        assert "まもなく期限切れ" in index and "まもなく期限切れ" in page
        cat, index, page = built(date(2027, 4, 1))
        assert {s["status"] for s in cat.values()} == {"inactive"} and {s["noriba"]["validity"] for s in cat.values()} == {"expired"}
        assert "期限切れ" in index and "まもなく" not in index and "expired" in page
    finally:
        build_site(demo_ws, locations=export_locations())


def test_files_listing_has_the_merged_export_and_every_file_a_stable_latest_url(demo_ws):
    from warehouse.export import sha256_of

    site = demo_ws.exports / "site"
    rows = {r["feed_id"]: r for r in json.loads((site / "files.json").read_text(encoding="utf-8"))["body"]}
    assert rows["demo-region"]["feed_pref_id"] == 1 and rows["demo-region"]["file_url"].endswith("demo-region.zip")
    assert rows["demo-region"]["feed_license_id"] == "CC0-1.0"
    for s in json.loads((site / "catalog.json").read_text(encoding="utf-8"))["sources"]:
        ident, latest = s["noriba"]["id"], s["urls"]["latest"]
        assert latest in (f"/gtfs/{ident}/latest.zip", f"/{ident}/latest.zip")
        assert s["urls"]["direct_download"] != latest and "latest" not in s["urls"]["direct_download"]
        assert sha256_of(demo_ws.exports / latest.lstrip("/")) == s["noriba"]["sha256"]


def test_tides_tables_of_a_public_feeds_realtime_are_listed_with_their_rows_and_files(demo_ws):
    """The index lists each realtime feed's TIDES tables per service date, linked, when its static feed is in the catalog;
    a package of a feed whose static feed is not public, or one that cannot be read, is left out."""
    from warehouse.catalog import build_site

    def package(feed: str, static: str, day: str, *, broken: bool = False) -> None:
        (demo_ws.raw_dir(feed) / "rt").mkdir(parents=True, exist_ok=True)
        (demo_ws.raw_dir(feed) / "rt" / "feed.json").write_text(json.dumps({"static_feed_id": static}), encoding="utf-8")
        folder = demo_ws.exports / "tides" / feed / day
        folder.mkdir(parents=True, exist_ok=True)
        resources = [{"name": n, "path": f"{n}.parquet", "rows": r} for n, r in
                     (("vehicle_locations", 1234), ("trips_performed", 8), ("stop_visits", 38))]
        for r in resources:
            (folder / r["path"]).write_bytes(b"PAR1")
        (folder / "datapackage.json").write_text("{" if broken else json.dumps({"resources": resources, "problems": {}}),
                                                 encoding="utf-8")

    package("bus-rt", "minato-city-bus", "2026-06-01")
    package("bus-rt", "minato-city-bus", "2026-06-02")
    package("private-rt", "not-in-the-catalog", "2026-06-01")
    package("broken-rt", "minato-city-bus", "2026-06-01", broken=True)
    index = build_site(demo_ws).read_text(encoding="utf-8")
    section = index.split("TIDES", 1)[1]
    assert "リアルタイム運行実績" in index and "bus-rt" in section
    assert section.index("2026-06-02") < section.index("2026-06-01")  # newest day first
    assert '<a href="../tides/bus-rt/2026-06-01/vehicle_locations.parquet" title="Parquet">1,234</a>' in section
    assert '<a href="../tides/bus-rt/2026-06-02/datapackage.json">datapackage.json</a>' in section
    assert "private-rt" not in index and "broken-rt" not in index
