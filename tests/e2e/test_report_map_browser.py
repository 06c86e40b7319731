"""The municipality report's map in a real browser: Leaflet from the report folder, stop names on hover, routes
toggled from the legend, a legend whose entries are never clipped or drawn over each other, tiles only when served.

Runs headless Debian chromium through the locked Playwright (as test_catalog_browser). The feed is Donan Bus
(Muroran) 2020: 74 routes with long Japanese names. Screenshots go to the test's tmp folder (kept by pytest).
"""

from __future__ import annotations

import html
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from tests.conftest import make_spec, shared
from tests.e2e.test_catalog_browser import CHROMIUM_ARGS, chromium_path

TILES = "https://tile.openstreetmap.org/"


@pytest.fixture(scope="module")
def muroran_report(tmp_path_factory):
    """Return (workspace, report) of Muroran 2020, and a server of its exports on 127.0.0.1 (stopped after the module)."""
    from noriba.pipeline import run_feed
    from noriba.serve import serve_in_thread
    from warehouse.workspace import Workspace
    from warehouse.municipality_report import build_report

    ws = Workspace(tmp_path_factory.mktemp("map") / "home").ensure()
    spec = make_spec("muroran-donan", shared("gtfs", "jp", "muroran-donan-2020"), timezone="Asia/Tokyo", profile="gtfs-jp",
                     municipality={"name": "室蘭市", "code": "01205", "prefecture": "北海道"}, name="道南バス 室蘭市内線")
    run_feed(spec, ws, export=False)
    report = build_report(ws, municipality="01205")
    server, base = serve_in_thread(ws)
    yield ws, report, base
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def grey_png(size: int = 256) -> bytes:
    """Return a plain light-grey PNG tile (what the test serves in place of OpenStreetMap's tiles)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xd8\xdc\xc8" * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def open_report(browser, url: str, *, tiles: str, width: int = 1200):
    """Return (page, requests) with the report open; OSM tile requests are answered with a grey tile or refused (offline)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list = []
    page.on("request", lambda r: requests.append(r))
    if tiles == "online":
        page.route(TILES + "**", lambda route: route.fulfill(status=200, content_type="image/png", body=grey_png()))
    page.route(lambda url: not url.startswith(TILES) and not url.startswith(("file:", "http://127.0.0.1")),
               lambda route: route.abort())  # any other site: refused, and listed in requests
    if tiles == "offline":
        page.route(TILES + "**", lambda route: route.abort("internetdisconnected"))
    page.goto(url)
    page.wait_for_function("window.noribaMap !== undefined")
    page.wait_for_timeout(300)
    assert errors == []
    return page, requests


def boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(selector, "els => els.map(e => { const r = e.getBoundingClientRect(); "
                                               "return {x: r.left, y: r.top, w: r.width, h: r.height}; })")


def overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] - 0.5 and b["x"] < a["x"] + a["w"] - 0.5 and a["y"] < b["y"] + b["h"] - 0.5 and b["y"] < a["y"] + a["h"] - 0.5


def assert_legend_fits(page, names: list[str]) -> None:
    """Every route has one legend entry, inside the legend, overlapping no other entry, its whole name shown."""
    shown = page.eval_on_selector_all("#route-legend .rn", "els => els.map(e => e.textContent)")
    assert shown == names
    box = boxes(page, "#route-legend")[0]
    items = boxes(page, "#route-legend li")
    assert len(items) == len(names)
    for i, a in enumerate(items):
        assert a["w"] > 0 and a["h"] > 0
        assert box["x"] - 0.5 <= a["x"] and a["x"] + a["w"] <= box["x"] + box["w"] + 0.5, (i, a, box)
        assert box["y"] - 0.5 <= a["y"] and a["y"] + a["h"] <= box["y"] + box["h"] + 0.5, (i, a, box)
        for j in range(i + 1, len(items)):
            assert not overlap(a, items[j]), (names[i], names[j], a, items[j])
    # no name is cut: each label's text fits its box (no horizontal or vertical overflow)
    cut = page.eval_on_selector_all("#route-legend .rn, #route-legend label",
                                    "els => els.filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)"
                                    ".map(e => e.textContent)")
    assert cut == []


def stop_under_pointer(page, nth: int) -> tuple[str, dict]:
    """Return (name, point) of the ``nth`` stop with no stop of another name within 12 px on screen, for hovering.

    (Poles on both sides of a street share a name and often a pixel at this zoom.)
    """
    name, at = page.evaluate("""(nth) => {
        const m = window.noribaMap.map, stops = window.noribaMap.stops;
        const pts = stops.map(s => m.latLngToContainerPoint(s.getLatLng())), names = stops.map(s => s.getTooltip().getContent());
        const r = m.getContainer().getBoundingClientRect();
        for (let i = 0; i < pts.length; i++) {
            const p = pts[i];
            if (p.x < 60 || p.y < 60 || p.x > r.width - 60 || p.y > r.height - 60) continue;
            if (pts.every((q, j) => names[j] === names[i] || q.distanceTo(p) > 12) && nth-- === 0)
                return [names[i], {x: r.left + p.x, y: r.top + p.y}];
        }
        return null; }""", nth)
    return html.unescape(name), at  # the tooltip's content is the name, HTML-escaped


def test_report_map_uses_the_local_leaflet_names_stops_toggles_routes_and_fits_the_legend(muroran_report, browser, tmp_path):
    """Opened as a file (as the demo prints it): Leaflet from leaflet/, no request leaves the machine, routes on a plain background."""
    import json

    ws, report, _ = muroran_report
    folder = Path(report["html"]).parent
    names = [r["name"] for r in json.loads((folder / "index.html").read_text(encoding="utf-8")
                                           .split('<script type="application/json" id="map-data">')[1].split("</script>")[0])["routes"]]
    assert len(names) == 74 == report["routes"]
    page, requests = open_report(browser, folder.joinpath("index.html").as_uri(), tiles="offline")
    try:
        # Leaflet is the vendored copy beside the page; nothing else is fetched, from anywhere
        assert page.evaluate("L.version") == "1.9.4"
        scripts = page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
        assert scripts == [(folder / "leaflet" / "leaflet.js").as_uri(), (folder / "report-map.js").as_uri()]
        assert {r.url for r in requests} == {(folder / f).as_uri() for f in ("index.html", "leaflet/leaflet.css", "leaflet/leaflet.js", "report-map.js")}
        assert page.is_visible("#map") and not page.is_visible("#svgmap")
        assert "noriba serve" in page.inner_text("#map-note")  # opened as a file: no basemap, and the page says why
        assert page.locator("img.leaflet-tile").count() == 0
        assert page.locator("path.route").count() >= 74 and page.locator("path.stop").count() == report["stops"]
        page.locator("#map").screenshot(path=str(tmp_path / "map-file.png"))

        # stops: the name on hover
        for nth in (0, 5, 10):
            name, at = stop_under_pointer(page, nth)
            page.mouse.move(at["x"], at["y"])
            tip = page.locator(".leaflet-tooltip-pane .leaflet-tooltip")
            tip.wait_for(state="visible")
            assert tip.inner_text() == name and name
            if nth == 0:
                page.locator("#map").screenshot(path=str(tmp_path / "map-stop-tooltip.png"))
            page.mouse.move(5, 5)
            tip.wait_for(state="detached")

        # routes: unticking one in the legend takes it off the map, ticking brings it back
        i = names.index(next(n for n in names if "中央町工大循環線" in n))
        box = page.locator(f'#route-legend input[data-route="{i}"]')
        assert page.locator(f"path.route-{i}").count() >= 1
        box.uncheck()
        assert page.locator(f"path.route-{i}").count() == 0 and not page.evaluate(f"window.noribaMap.map.hasLayer(window.noribaMap.routes[{i}])")
        assert page.locator("path.route").count() >= 73
        page.locator("#map").screenshot(path=str(tmp_path / "map-route-hidden.png"))
        box.check()
        assert page.locator(f"path.route-{i}").count() >= 1

        assert_legend_fits(page, names)
        page.locator("#route-legend").screenshot(path=str(tmp_path / "legend-wide.png"))
        page.set_viewport_size({"width": 420, "height": 900})  # a phone: fewer columns, longer names wrap
        assert_legend_fits(page, names)
        page.locator("#route-legend").screenshot(path=str(tmp_path / "legend-narrow.png"))
    finally:
        page.close()


def test_served_report_shows_openstreetmap_tiles_online_and_a_plain_background_offline(muroran_report, browser, tmp_path):
    _, report, base = muroran_report
    url = f"{base}/reports/01205/index.html"
    page, requests = open_report(browser, url, tiles="online")
    try:
        page.wait_for_selector("img.leaflet-tile-loaded")
        assert "OpenStreetMap" in page.inner_text(".leaflet-control-attribution")
        assert page.get_attribute(".leaflet-control-attribution a", "href") == "https://www.openstreetmap.org/copyright"
        assert not page.is_visible("#map-note")
        tiles = [r for r in requests if r.url.startswith(TILES)]
        assert tiles and all(r.url.endswith(".png") for r in tiles)
        # OSM's tile policy wants a Referer: the served page sends its origin
        assert tiles[0].headers.get("referer", "").startswith(base)
        others = {r.url.split("/")[2] for r in requests if not r.url.startswith((TILES, base))}
        assert others == set(), others
        page.locator("#map").screenshot(path=str(tmp_path / "map-online.png"))
    finally:
        page.close()
    page, _ = open_report(browser, url, tiles="offline")
    try:
        page.wait_for_selector("#map-note:not([hidden])")
        assert "オフライン" in page.inner_text("#map-note")
        assert page.locator("img.leaflet-tile-loaded").count() == 0
        assert page.locator("path.route").count() >= 74 and page.locator("path.stop").count() == report["stops"]
        page.locator("#map").screenshot(path=str(tmp_path / "map-offline.png"))
    finally:
        page.close()


def test_without_leaflet_the_svg_map_stays_and_the_legend_still_hides_routes(muroran_report, browser, tmp_path):
    _, report, _ = muroran_report
    folder = tmp_path / "report"
    shutil.copytree(Path(report["html"]).parent, folder)
    (folder / "leaflet" / "leaflet.js").unlink()
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto((folder / "index.html").as_uri())
        assert page.is_visible("#svgmap svg") and not page.is_visible("#map")
        lines = page.locator('#svgmap polyline[data-route="0"]')
        assert lines.count() >= 1 and lines.first.is_visible()
        page.locator('#route-legend input[data-route="0"]').uncheck()
        assert not lines.first.is_visible()
        page.locator("#svgmap").screenshot(path=str(tmp_path / "svg-fallback.png"))
    finally:
        page.close()
