"""Google transitfeed's broken test feeds (dates, calendar, agency, translations): each gives the notice its name describes.

Reading and typing raise some notices (invalid_date, duplicate_key, ...); the rules of part B raise
the others. Both are collected, as the pipeline does.
"""

from datetime import date

import pytest

from tests.conftest import shared
from tests.transforms.rules._feed_b import tables
from transforms.rules import agency, calendar, fares, feed_info, formats, gtfs_jp, translations
from transforms.rules.engine import ERROR, run_rules

RULES = [*formats.RULES, *agency.RULES, *calendar.RULES, *feed_info.RULES, *fares.RULES, *translations.RULES, *gtfs_jp.RULES]
#: The feeds' calendars run 2007-2010.
DAY = date(2008, 6, 1)


def notices(tmp_path, folder: str) -> list[dict]:
    """Return every notice for the folder: those raised while reading and those of the rules."""
    out, findings = tables(tmp_path, shared("gtfs", "bad-transitfeed", *folder.split("/")))
    ruled = run_rules(out, rules=RULES, validation_date=DAY, sample_limit=10_000)
    return findings.notices_table().to_pylist() + ruled.notices.to_pylist()


@pytest.mark.parametrize("folder,code,files", [
    ("bad_date_format", "invalid_date", {"calendar.txt", "calendar_dates.txt"}),
    ("duplicate_schedule_id", "duplicate_key", {"calendar.txt"}),
    ("invalid_agency_ids", "missing_required_agency_id", {"agency.txt", "routes.txt"}),
    ("invalid_route_agency", "foreign_key_violation", {"routes.txt"}),
    ("missing_agency", "missing_required_file", {"agency.txt"}),
    ("missing_calendar", "missing_calendar_and_calendar_date_files", {"calendar.txt"}),
    ("missing_weekday_column", "missing_required_column", {"calendar.txt"}),
    ("upgrade_translations/old-feed", "old_style_translations", {"translations.txt"}),
])
def test_broken_feed_gives_the_notice_its_name_describes(tmp_path, folder, code, files):
    found = [n for n in notices(tmp_path, folder) if n["code"] == code]
    assert found, f"{folder}: no {code}"
    assert {n["file"] for n in found} == files


def test_a_date_that_cannot_be_read_leaves_its_service_without_days(tmp_path):
    found = {n["code"]: n for n in notices(tmp_path, "bad_date_format")}
    # FULLW's start_date '2007.01.01' is unreadable, so the rules see no range for it.
    assert found["service_never_active"]["value"] == "FULLW"


def test_calendar_dates_alone_define_running_services(tmp_path):
    found = notices(tmp_path, "only_calendar_dates")
    assert not [n for n in found if n["severity"] == ERROR]
    assert not {"service_never_active", "trip_service_never_active", "missing_calendar_and_calendar_date_files"} & {n["code"] for n in found}


def test_translations_in_the_gtfs_layout_raise_no_translation_notice(tmp_path):
    found = {n["code"] for n in notices(tmp_path, "upgrade_translations/new-feed")}
    assert not {c for c in found if "translation" in c}


def test_the_good_feed_has_no_error(tmp_path):
    assert not [n for n in notices(tmp_path, "good_feed") if n["severity"] == ERROR]
