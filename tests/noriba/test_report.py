"""Validation reports: report.json counts every finding, report.html is escaped, self-contained and Japanese for Japanese feeds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import MINI_FEED, make_spec, write_feed

N_BAD = 1205  # more stop times at an undefined stop than the report keeps samples of
EVIL = '<script>alert("x")</script>&'


def _feed(**files) -> dict:
    return {**MINI_FEED, **files}


def _stage(ws, tmp_path, files, *, feed_id="mini", **spec):
    from noriba.pipeline import fetch, stage

    s = make_spec(feed_id, write_feed(tmp_path / feed_id, files), **spec)
    return stage(s, ws, fetch(s, ws))


def _many_bad_stop_times() -> str:
    lines = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    lines += [f"T1,08:{i // 60 % 60:02d}:{i % 60:02d},08:{i // 60 % 60:02d}:{i % 60:02d},{'S9' if i else EVIL},{i + 1}" for i in range(N_BAD)]
    return "\n".join(lines) + "\n"


def test_report_json_counts_equal_the_findings_totals(ws, tmp_path):
    staged = _stage(ws, tmp_path, _feed(**{"stop_times.txt": _many_bad_stop_times(),
                                           "stops.txt": MINI_FEED["stops.txt"] + " S3 ,岬,43.32,141.42\n"}))
    report = json.loads(Path(staged["report"]["json"]).read_text(encoding="utf-8"))
    meta = pq.read_table(Path(staged["staging_dir"]) / "meta_feed_versions.parquet").to_pylist()[0]

    assert {"feed_id", "feed_version", "validation_date", "profile", "rows", "files", "totals", "counts", "policy", "notices"} <= set(report)
    assert (report["feed_id"], report["feed_version"]) == ("mini", staged["feed_version"])
    by_code = {d["code"]: d["count"] for d in report["notices"]}
    assert by_code == json.loads(meta["notice_codes"])  # Findings.counts per code, as pipeline stored them
    assert [report["totals"][s] for s in ("ERROR", "WARNING", "INFO")] == [meta["errors"], meta["warnings"], meta["infos"]]
    assert report["rows"] == {"in": meta["rows_in"], "accepted": meta["rows_accepted"], "quarantined": meta["rows_quarantined"]}
    st = report["files"]["stop_times.txt"]
    assert st["rows_in"] == N_BAD == st["accepted"] + st["quarantined"]

    fk = next(d for d in report["notices"] if d["code"] == "foreign_key_violation")
    assert fk["count"] == N_BAD and fk["severity"] == "ERROR" and fk["blocks"]
    assert len(fk["samples"]) == 1000 and fk["samples_total"] == 1000
    assert {"file", "line", "field", "value", "message"} == set(fk["samples"][0])
    assert fk["samples"][0]["file"] == "stop_times.txt" and fk["samples"][0]["line"] == 2
    assert fk["why"] and fk["fix"]
    assert report["policy"]["status"] == "blocked" and report["policy"]["blocked_by"] == {"foreign_key_violation": N_BAD}
    assert report["notices"][0]["code"] == "foreign_key_violation"  # ERRORs first, and among them what blocks


def test_report_html_escapes_values_and_needs_no_network(ws, tmp_path):
    staged = _stage(ws, tmp_path, _feed(**{"stop_times.txt": _many_bad_stop_times()}))
    page = Path(staged["report"]["html"]).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from elsewhere
    assert "<details>" in page and "How to fix" in page and 'lang="en"' in page
    assert page.index('id="foreign_key_violation"') < page.index("</main>")


def test_report_speaks_japanese_for_a_japanese_feed(ws, tmp_path):
    agency = "agency_id,agency_name,agency_url,agency_timezone,agency_lang\nA,みなと交通,https://example.jp,Asia/Tokyo,ja\n"
    files = _feed(**{"agency.txt": agency, "stop_times.txt": MINI_FEED["stop_times.txt"].replace(",S2,2", ",S9,2")})
    staged = _stage(ws, tmp_path, files)
    page = Path(staged["report"]["html"]).read_text(encoding="utf-8")
    report = json.loads(Path(staged["report"]["json"]).read_text(encoding="utf-8"))
    assert report["language"] == "ja" and report["languages"] == ["ja"]
    assert 'lang="ja"' in page and "検証レポート" in page and "直し方" in page and "公開停止" in page
    assert "stop_times.txt:3 [stop_id] = &#x27;S9&#x27;" in page  # where, with the value, in the first lines of the problem
    from noriba.report import summary_lines

    summary = "\n".join(summary_lines(report))
    assert "エラー foreign_key_violation ×1 (公開を止めています): 参照先に存在しない ID" in summary
    assert "直し方: ID を正しく直すか" in summary


def test_gtfs_jp_profile_alone_makes_the_report_japanese(ws, tmp_path):
    staged = _stage(ws, tmp_path, MINI_FEED, profile="gtfs-jp")
    report = json.loads(Path(staged["report"]["json"]).read_text(encoding="utf-8"))
    assert report["language"] == "ja" and report["policy"]["status"] == "pass"
    assert "合格" in Path(staged["report"]["html"]).read_text(encoding="utf-8")


def test_an_unchanged_version_keeps_its_report(ws, tmp_path):
    from noriba.pipeline import run_feed

    spec = make_spec("mini", write_feed(tmp_path / "a", MINI_FEED))
    first = run_feed(spec, ws)
    html = Path(first["report"]["html"])
    html.unlink()
    (html.parent / "report.json").unlink()
    second = run_feed(spec, ws)  # rebuilt from the lake when missing
    assert second["status"] == "unchanged" and html.exists()
    assert json.loads((html.parent / "report.json").read_text(encoding="utf-8"))["feed_version"] == first["feed_version"]


def test_report_html_shows_each_first_place_with_its_message(ws, tmp_path):
    files = _feed(**{"stop_times.txt": MINI_FEED["stop_times.txt"].replace(",S2,2", ",S9,2")})
    page = Path(_stage(ws, tmp_path, files)["report"]["html"]).read_text(encoding="utf-8")
    section = page[page.index('id="foreign_key_violation"'):]
    place = section.index("stop_times.txt:3 [stop_id] = &#x27;S9&#x27;")
    assert section.index("stop_id &#x27;S9&#x27; is not defined in stops.txt", place) < section.index("<details>")


def test_report_html_names_the_input_file_but_not_where_it_lies_on_the_server(ws, tmp_path):
    staged = _stage(ws, tmp_path, _feed())
    report = json.loads(Path(staged["report"]["json"]).read_text(encoding="utf-8"))
    page = Path(staged["report"]["html"]).read_text(encoding="utf-8")
    folder = str(tmp_path / "mini")
    assert report["source"].startswith(folder)  # the machine-readable report, kept in NORIBA_HOME, has the whole path
    assert folder not in page and str(tmp_path) not in page
    assert re.search(r"<dd>mini[^<]*</dd>", page)  # the input's own name is shown


def test_report_source_name_drops_folders_and_url_secrets():
    from noriba.report import source_name

    assert source_name("/srv/noriba/inbox/バス 2026.zip") == "バス 2026.zip"
    assert source_name("https://user:pw@example.jp/gtfs/feed.zip?key=SECRET#x") == "https://example.jp/gtfs/feed.zip"
    assert source_name("/a/x/stops.csv, /a/x/平日.xlsx") == "stops.csv, 平日.xlsx"
    assert source_name(None) is None
