"""The Muroran Donan Bus 2017 municipal timetables become a GTFS-JP feed like the one published from them.

The spec ``specs/feeds/muroran-donan-timetable.yml`` reads the two municipal workbooks
(``timetable_weekday/weekend_20170401.xls``, one sheet per 系統), takes each route's stop ids
(with のりば letter) from the 対キロ fare triangle (``triangle_table.xlsx``, which lists every
route's stops in order with their ids) and the stop coordinates from the published feed's
stops.txt (the municipal files carry none). The test compares (stop_id, departure_time,
service_id) triples with ``gtfs/jp/muroran-donan-2017`` both ways; both shares are 100% on
this data (the target is 95%).

Systematic differences, and how the spec or the reader settles them:

- Sheet selection: the workbooks hold 413 sheets, 371 weekday ones with trips, covering the
  whole Donan Bus network; the published feed is the city lines (市内線) only, 78 系統. The spec
  selects those with sheet-name patterns (10xxxx, 11xxxx, 120000/120200/120400, 13xxxx). Sheets
  selected but without trips (e.g. 130410) are reported as INFO and skipped, as the published
  feed has no trips for them either.
- Terminal loops: sheets 130200 and 130210 list 工大 on two consecutive rows (arrival and
  departure); the published feed has one stop time there, and so has ours (the same stop on two
  rows in a row is one stop time, first time = arrival, last = departure). The rows accounting
  below counts those merged cells.
- Route 130400 is missing from the fare triangle, so its stops are matched by name, and its
  last stop 中央町 has のりば 0 (alighting only), which matches four poles; the operator's pole
  list (pole_completions.csv) gives 0101_C, declared in the spec as a stop override. Without it
  the stop is reported with its candidates and its time quarantined, never guessed.
- Calendar: ours comes from the holidays library; the published calendar_dates also lists the
  three holidays that fall on a Saturday (2017-04-29, 09-23, 12-23) as exceptions that change
  nothing (weekday removed on a Saturday, weekend added on a Saturday); ours leaves those out.
  The days each service runs are the same, which the test checks.
- Translations: GTFS-JP requires translations.txt, and the published feed has none (our
  validator reports missing_gtfs_jp_required_file on it). The municipal files give no kana, so
  ours carries the agency's reading and English name declared in the spec, and every stop name
  without a reading is a WARNING (missing_kana_reading) that tells the operator what to add.
- Not compared: trip ids (same scheme, route_service_n), pickup/drop-off types (the published
  feed marks first and last stops 3/1; the timetables say nothing about them), shapes (from
  OpenStreetMap, not in the municipal files), and fare_rules for zone pairs that a loop route
  passes twice with two fares (the published feed keeps both, GTFS can apply one; ours keeps
  the first and warns).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import re
import zipfile
from collections import Counter

import pytest

from tests.conftest import ROOT, shared

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

SPEC = ROOT / "specs" / "feeds" / "muroran-donan-timetable.yml"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from noriba.pipeline import run_feed
    from noriba.specs import load_spec
    from warehouse.workspace import Workspace

    shared("jp-sources", "muroran-donan-timetables-2017")
    spec = load_spec(SPEC)
    ws = Workspace(tmp_path_factory.mktemp("muroran") / "home").ensure()
    first = run_feed(spec, ws)
    again = run_feed(spec, ws)
    with zipfile.ZipFile(first["exports"]["gtfs_zip"]) as zf:
        files = {n: list(csv.DictReader(io.StringIO(zf.read(n).decode("utf-8-sig")))) for n in zf.namelist()}
    return spec, ws, first, again, files


def _triples(stop_times: list[dict], trips: list[dict]) -> Counter:
    service = {t["trip_id"]: t["service_id"] for t in trips}
    return Counter((r["stop_id"], r["departure_time"], service[r["trip_id"]]) for r in stop_times)


def _published(name: str) -> list[dict]:
    path = shared("gtfs", "jp", "muroran-donan-2017", name)
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def test_muroran_timetables_reproduce_the_published_feed(built):
    _, _, _, _, files = built
    ours = _triples(files["stop_times.txt"], files["trips.txt"])
    theirs = _triples(_published("stop_times.txt"), _published("trips.txt"))
    common = sum((ours & theirs).values())
    reproduced = common / sum(theirs.values())
    contained = common / sum(ours.values())
    print(f"published triples reproduced: {reproduced:.4%}; our triples in the published feed: {contained:.4%}")
    assert reproduced >= 0.95 and contained >= 0.95
    assert len(files["trips.txt"]) == len(_published("trips.txt"))


def test_muroran_feed_is_gtfs_jp_without_errors(built):
    from warehouse.publish import connect

    spec, ws, first, _, files = built
    assert first["errors"] == 0
    con = connect(ws, read_only=True)
    errors = con.sql(f"SELECT code, any_value(message) FROM quality.notices WHERE feed_id = '{spec.id}' "
                     "AND severity = 'ERROR' GROUP BY code").fetchall()
    con.close()
    assert errors == []
    assert {"agency_jp.txt", "office_jp.txt", "routes_jp.txt", "fare_attributes.txt", "fare_rules.txt",
            "calendar_dates.txt", "feed_info.txt"} <= set(files)
    # fares: every route in the triangle table gets its origin-destination fares
    assert {r["route_id"] for r in files["fare_rules.txt"]} == {r["route_id"] for r in files["routes.txt"]} - {"130400"}


def _service_days(calendar: list[dict], dates: list[dict]) -> dict[str, set]:
    import datetime as dt

    names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    out: dict[str, set] = {}
    for c in calendar:
        d = dt.datetime.strptime(c["start_date"], "%Y%m%d").date()
        end = dt.datetime.strptime(c["end_date"], "%Y%m%d").date()
        days = out.setdefault(c["service_id"], set())
        while d <= end:
            if c[names[d.weekday()]] == "1":
                days.add(d.strftime("%Y%m%d"))
            d += dt.timedelta(days=1)
    for r in dates:
        (out.setdefault(r["service_id"], set()).add if r["exception_type"] == "1" else out[r["service_id"]].discard)(r["date"])
    return out


def test_services_run_on_the_same_days_as_published(built):
    _, _, _, _, files = built
    ours = _service_days(files["calendar.txt"], files["calendar_dates.txt"])
    theirs = _service_days(_published("calendar.txt"), _published("calendar_dates.txt"))
    assert ours == theirs


def test_unchanged_timetables_make_no_new_version(built):
    _, _, first, again, _ = built
    assert again["status"] == "unchanged" and again["feed_version"] == first["feed_version"]


def _time_cells(path, include: list[str]) -> tuple[int, int]:
    """Return (time cells in the selected sheets, cells of a stop repeated on the next row), counted with xlrd alone."""
    import xlrd

    book = xlrd.open_workbook(str(path))
    cells = repeated = 0
    for sh in book.sheets():
        if not any(fnmatch.fnmatchcase(sh.name, p) for p in include):
            continue
        for c in range(5, sh.ncols):
            prev_name, prev_time = None, False
            for r in range(6, sh.nrows):
                name, v = str(sh.cell_value(r, 1)).strip(), str(sh.cell_value(r, c)).strip()
                is_time = bool(re.fullmatch(r"\d{1,2}:\d{2}", v))
                cells += is_time
                if is_time and prev_time and name == prev_name:
                    repeated += 1
                prev_name, prev_time = name, is_time
    return cells, repeated


def test_every_time_cell_is_a_stop_time_or_quarantined(built):
    from warehouse.publish import connect

    spec, ws, first, _, files = built
    include = spec.timetable["sheets"]["include"]
    base = shared("jp-sources", "muroran-donan-timetables-2017")
    counted = [_time_cells(base / f"timetable_{k}_20170401.xls", include) for k in ("weekday", "weekend")]
    cells = sum(c for c, _ in counted)
    repeated = sum(r for _, r in counted)
    con = connect(ws, read_only=True)
    quarantined = con.sql(f"SELECT count(*) FROM quality.quarantine WHERE feed_id = '{spec.id}'").fetchall()[0][0]
    con.close()
    assert cells > 26_000
    assert cells == len(files["stop_times.txt"]) + repeated + quarantined
    assert first["rows_in"] == first["rows_accepted"] + first["rows_quarantined"]
