"""feed_info.txt rules: dates, language, contact and a single row."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.feed_info import RULES

FI = "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date,feed_contact_email,feed_contact_url\n"


def info(start="20260401", end="20270331", lang="ja", email="bus@example.jp", url=""):
    return FI + f"みなと町,https://example.jp,{lang},{start},{end},{email},{url}\n"


@pytest.mark.parametrize("start,end,code", [
    ("20260401", "", "missing_feed_info_date"),
    ("", "20270331", "missing_feed_info_date"),
    ("", "", "missing_feed_info_dates"),
    ("20270331", "20260401", "start_and_end_range_out_of_order"),
    ("20260401", "20270331", None),
])
def test_feed_dates_must_both_be_given_in_order(tmp_path, start, end, code):
    picked = [r for r in RULES if r.code in ("missing_feed_info_date", "missing_feed_info_dates", "start_and_end_range_out_of_order")]
    result = run(tmp_path, feed(feed_info=info(start, end)), picked)
    assert codes(result) == ({code} if code else set())


def test_an_unreadable_date_is_not_called_missing(tmp_path):
    result = run(tmp_path, feed(feed_info=info("2026-04-01", "20270331")), rule(RULES, "missing_feed_info_date"))
    assert not result.counts  # it is invalid_date, raised while reading


@pytest.mark.parametrize("lang,mismatch", [("en", True), ("JA", False), ("mul", False)])
def test_feed_lang_must_match_agency_lang(tmp_path, lang, mismatch):
    agency = "agency_id,agency_name,agency_url,agency_timezone,agency_lang\nA,みなと交通,https://example.jp,Asia/Tokyo,ja\n"
    result = run(tmp_path, feed(agency=agency, feed_info=info(lang=lang)), rule(RULES, "feed_info_lang_and_agency_lang_mismatch"))
    assert codes(result) == ({"feed_info_lang_and_agency_lang_mismatch"} if mismatch else set())
    if mismatch:
        assert "agency A" in found(result, "feed_info_lang_and_agency_lang_mismatch")[0]["message"]


@pytest.mark.parametrize("email,url,missing", [("", "", True), ("bus@example.jp", "", False), ("", "https://example.jp/form", False)])
def test_feed_needs_a_contact(tmp_path, email, url, missing):
    result = run(tmp_path, feed(feed_info=info(email=email, url=url)), rule(RULES, "missing_feed_contact_email_and_url"))
    assert codes(result) == ({"missing_feed_contact_email_and_url"} if missing else set())


def test_feed_info_has_one_row(tmp_path):
    two_rows = info() + "みなと町,https://example.jp,ja,20260401,20270331,,\n"
    result = run(tmp_path / "bad", feed(feed_info=two_rows), rule(RULES, "more_than_one_entity"))
    assert [n["line"] for n in found(result, "more_than_one_entity")] == [3]
    assert not run(tmp_path / "good", feed(feed_info=info()), rule(RULES, "more_than_one_entity")).counts
