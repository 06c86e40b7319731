"""The served catalog in a real browser: open the page, follow a download link, check the file's sha256.

Runs headless Debian chromium (``/usr/bin/chromium``, installed by ``.ci/install-chromium``) through
the locked Playwright. Skipped only when chromium is absent and CI is unset.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path() -> str:
    """Return the chromium executable. If there is none, skip the test, unless CI is set, then fail it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; .ci/run installs it with .ci/install-chromium")
        pytest.skip("chromium is not installed (run .ci/install-chromium)")
    return path


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory):
    from noriba.exports import build_export
    from noriba.pipeline import run_feed
    from noriba.serve import serve_in_thread
    from noriba.specs import load_specs
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("e2e") / "home").ensure()
    for spec in load_specs():
        if "demo" in spec.tags:
            run_feed(spec, ws)
    built = build_export("demo-region", ws)
    server, base = serve_in_thread(ws)
    yield ws, built, base
    server.shutdown()
    server.server_close()


def test_catalog_page_download_link_serves_the_file_with_its_sha256(served_demo):
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    ws, built, base = served_demo
    manifest = json.loads(open(built["manifest"], encoding="utf-8").read())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.goto(base + "/")
            assert page.url.endswith("/site/index.html")
            assert "カタログ" in page.title() and "catalog" in page.title()
            page.click(f"a[href='exports/{manifest['export_id']}.html']")
            assert page.url.endswith(f"/site/exports/{manifest['export_id']}.html")
            body = page.inner_text("body")
            assert manifest["export_version"] in body and "CC0-1.0" in body and "2026-04-01" in body
            link = page.locator("a.dl", has_text=f"{manifest['export_id']}.zip")
            shown = link.get_attribute("data-sha256")
            with page.expect_download() as info:
                link.click()
            path = info.value.path()
            got = hashlib.sha256(open(path, "rb").read()).hexdigest()
            assert got == shown == manifest["files"]["gtfs"]["sha256"]
            # the stable latest URL serves the same file
            with page.expect_download() as info:
                page.click("a.latest")
            assert info.value.url.endswith(f"/{manifest['export_id']}/latest.zip")
            assert hashlib.sha256(open(info.value.path(), "rb").read()).hexdigest() == manifest["files"]["gtfs"]["sha256"]
            # the feed pages link their own zips the same way
            page.goto(base + "/site/feeds/minato-city-bus.html")
            assert "みなと市コミュニティバス" in page.inner_text("h1")
            flink = page.locator("a.dl").first
            with page.expect_download() as info:
                flink.click()
            assert hashlib.sha256(open(info.value.path(), "rb").read()).hexdigest() == flink.get_attribute("data-sha256")
        finally:
            browser.close()


def test_municipality_report_prints_to_pdf(served_demo):
    from warehouse.municipality_report import build_report, write_pdf

    chromium_path()
    ws, _, _ = served_demo
    report = build_report(ws, municipality="99001")
    pdf = write_pdf(Path(report["html"]))
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 10_000
