import duckdb
import pyarrow.parquet as pq

from tests.conftest import MINI_FEED, write_feed
from transforms.canonical import canonicalize
from transforms.gtfs import GtfsAdapter
from transforms.schema import load_schema


def run(tmp_path, files):
    feed = GtfsAdapter().read(write_feed(tmp_path / "in", files))
    result = canonicalize(feed, schema=load_schema(), out_dir=tmp_path / "out")
    notices = feed.findings.notices_table().to_pylist()
    quarantine = feed.findings.quarantine_table().to_pylist()
    return result, notices, quarantine


def codes(notices):
    return sorted({n["code"] for n in notices})


def test_clean_feed_types_times_dates_and_coordinates(tmp_path):
    result, notices, quarantine = run(tmp_path, MINI_FEED)
    assert notices == [] and quarantine == []
    st = pq.read_table(tmp_path / "out" / "stop_times.parquet").to_pylist()
    assert [r["arrival_time"] for r in st] == [8 * 3600, 24 * 3600 + 600]
    assert [r["_line"] for r in st] == [2, 3]
    cal = duckdb.sql(f"SELECT start_date::VARCHAR FROM '{tmp_path}/out/calendar.parquet'").fetchall()
    assert cal == [("2026-04-01",)]
    stops = pq.read_table(tmp_path / "out" / "stops.parquet").to_pylist()
    assert stops[0]["stop_lat"] == 43.30 and stops[0]["stop_name"] == "港前"


def test_untypable_value_is_kept_as_text_and_reported(tmp_path):
    files = {**MINI_FEED, "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,north,141.40\nS2,駅前,43.31,141.41\n"}
    result, notices, quarantine = run(tmp_path, files)
    bad = [n for n in notices if n["code"] == "invalid_float"]
    assert [(n["file"], n["line"], n["field"], n["value"]) for n in bad] == [("stops.txt", 2, "stop_lat", "north")]
    row = pq.read_table(tmp_path / "out" / "stops.parquet").to_pylist()[0]
    assert row["stop_lat"] is None and row["_untyped"] == '{"stop_lat":"north"}'
    assert result.counts["stops.txt"].accepted == 2


def test_unreadable_key_quarantines_the_row(tmp_path):
    files = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"] + "T1,25:00:00,25:00:00,S2,third\n"}
    result, notices, quarantine = run(tmp_path, files)
    assert [(q["file"], q["line"], q["code"]) for q in quarantine] == [("stop_times.txt", 4, "missing_required_field")]
    assert '"stop_sequence":"third"' in quarantine[0]["raw"]
    c = result.counts["stop_times.txt"]
    assert (c.rows_in, c.accepted, c.quarantined) == (3, 2, 1)


def test_duplicate_key_keeps_first_row_and_quarantines_the_rest(tmp_path):
    files = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "S1,港前(重複),43.3,141.4\n"}
    result, notices, quarantine = run(tmp_path, files)
    dup = [n for n in notices if n["code"] == "duplicate_key"]
    assert len(dup) == 1 and dup[0]["line"] == 4 and "line 2" in dup[0]["message"]
    assert quarantine[0]["reason"] == "same key as line 2"
    assert result.counts["stops.txt"].accepted == 2


def test_broken_reference_is_reported_with_file_line_and_value(tmp_path):
    files = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"] + "T1,09:00:00,09:00:00,NOPE,3\n"}
    _, notices, _ = run(tmp_path, files)
    fk = [n for n in notices if n["code"] == "foreign_key_violation"]
    assert [(n["file"], n["line"], n["field"], n["value"]) for n in fk] == [("stop_times.txt", 4, "stop_id", "NOPE")]


def test_missing_required_file_and_column_are_errors(tmp_path):
    files = {k: v for k, v in MINI_FEED.items() if k != "routes.txt"}
    files["stops.txt"] = "stop_id,stop_lat\nS1,43.3\nS2,43.4\n"
    _, notices, _ = run(tmp_path, files)
    assert {"missing_required_file", "foreign_key_violation"} <= set(codes(notices))
    files = {**MINI_FEED, "agency.txt": "agency_id,agency_name,agency_timezone\nA,x,Asia/Tokyo\n"}
    _, notices, _ = run(tmp_path / "b", files)
    assert [(n["code"], n["field"]) for n in notices] == [("missing_required_column", "agency_url")]


def test_unknown_columns_and_files_are_kept(tmp_path):
    files = {**MINI_FEED, "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,my_note\nS1,港前,43.3,141.4,北口\nS2,駅前,43.31,141.41,\n",
             "vendor_extra.txt": "k,v\n1,あ\n"}
    result, notices, _ = run(tmp_path, files)
    assert {"unknown_column", "unknown_file"} <= set(codes(notices))
    row = pq.read_table(tmp_path / "out" / "stops.parquet").to_pylist()[0]
    assert row["_extra"] == '{"my_note":"北口"}'
    assert result.counts["vendor_extra.txt"].accepted == 1


def test_every_header_column_is_recorded_even_without_rows(tmp_path):
    files = dict(MINI_FEED)
    files["agency_jp.txt"] = "agency_id,agency_offilcal_name,memo\n"  # the typo of a real GTFS-JP feed, header only
    feed = GtfsAdapter().read(write_feed(tmp_path / "feed", files))
    result = canonicalize(feed, schema=load_schema(), out_dir=tmp_path / "out")
    cols = [(c["column"], c["position"], c["line"], c["known"], c["likely_field"])
            for c in pq.read_table(tmp_path / "out" / "_columns.parquet").to_pylist() if c["file"] == "agency_jp.txt"]
    assert cols == [("agency_id", 1, 1, True, None), ("agency_offilcal_name", 2, 1, False, "agency_official_name"),
                    ("memo", 3, 1, False, None)]
    assert len(result.columns) == sum(len(tf.csv.header) for tf in feed.files.values())
    # the typo is rule misspelled_column's (WARNING); unknown_column is for the column close to no field
    assert [n.field for n in feed.findings.notices if n.code == "unknown_column"] == ["memo"]


def test_an_empty_required_file_is_reported_once_as_empty_not_as_missing(tmp_path):
    _, notices, _ = run(tmp_path, {**MINI_FEED, "agency.txt": ""})
    about_agency = [(n["code"], n["file"]) for n in notices if n["file"] == "agency.txt"]
    assert about_agency == [("empty_file", "agency.txt")]
    fk = [n["message"] for n in notices if n["code"] == "foreign_key_violation" and n["field"] == "agency_id"]
    assert fk and all("agency.txt (empty)" in m for m in fk)
    _, notices, _ = run(tmp_path / "b", {k: v for k, v in MINI_FEED.items() if k != "agency.txt"})
    assert ("missing_required_file", "agency.txt") in {(n["code"], n["file"]) for n in notices}
