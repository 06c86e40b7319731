"""The municipality report's punctuality section in a real browser: the demo region (its simulated realtime morning,
as `noriba demo` builds it) shows 定時運行率 with the share of marts.rt_on_time_performance, the window in one line, a
plot per hour and the route × hour table, from the file alone (no request leaves the machine).

Runs headless Debian chromium through the locked Playwright (as test_catalog_browser). The screenshot of the section
goes to the test's tmp folder (kept by pytest).
"""

from __future__ import annotations

import duckdb
import pytest

from tests.e2e.test_catalog_browser import CHROMIUM_ARGS, chromium_path


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    from tests.warehouse.test_tides import demo_realtime_workspace
    from warehouse.municipality_report import build_report

    ws = demo_realtime_workspace(tmp_path_factory.mktemp("punctuality-browser") / "home")
    return ws, build_report(ws, municipality="99001")


def test_demo_report_shows_the_punctuality_of_the_mart(demo_report, tmp_path):
    from playwright.sync_api import sync_playwright

    ws, report = demo_report
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        on_time, observed = con.execute("SELECT sum(on_time), sum(observed) FROM marts.rt_on_time_performance "
                                        "WHERE feed_id = 'minato-bus-rt'").fetchone()
        by_hour = con.execute("SELECT hour, sum(on_time) / sum(observed) FROM marts.rt_on_time_performance "
                              "WHERE feed_id = 'minato-bus-rt' AND observed > 0 GROUP BY hour ORDER BY hour").fetchall()
        routes = con.execute("SELECT count(DISTINCT route_id) FROM marts.rt_on_time_performance "
                             "WHERE feed_id = 'minato-bus-rt' AND observed > 0").fetchone()[0]
    finally:
        con.close()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors, outside = [], []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route(lambda url: not url.startswith("file:"), lambda route: (outside.append(route.request.url), route.abort()))
            page.goto(f"file://{report['html']}")
            section = page.locator("#punctuality")
            section.scroll_into_view_if_needed()
            assert section.is_visible()
            section.screenshot(path=str(tmp_path / "punctuality.png"))
            assert page.locator("#punctuality h2").inner_text() == "定時運行率（リアルタイムデータ）"
            assert page.locator("#on-time-share").inner_text() == f"{on_time / observed * 100:.1f}%"
            assert "予定時刻の1分前から5分後までに停留所に到着した便の割合" in page.locator("#punctuality p.window").inner_text()
            # one bar per hour with observations, labelled with that hour's on-time share; bars drawn with a height
            labels = page.eval_on_selector_all("#punctuality-hours text.share", "els => els.map(e => e.textContent)")
            assert labels == [f"{share * 100:.0f}%" for _, share in by_hour]
            heights = page.eval_on_selector_all("#punctuality-hours rect.on_time", "els => els.map(e => e.getBoundingClientRect().height)")
            assert len(heights) == len(by_hour) and all(h > 50 for h in heights)
            assert page.locator("table.punctuality tr").count() == 1 + routes
            assert errors == [] and outside == []
        finally:
            browser.close()
