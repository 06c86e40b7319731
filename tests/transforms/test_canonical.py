import pytest
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


def _text(trips, seqs):
    import pyarrow as pa

    return pa.table({"c0": pa.array(trips, pa.string()), "c1": pa.array(seqs, pa.string())})


def test_contiguous_increasing_keys_are_proven_unique_from_text():
    from transforms.canonical import run_groups

    groups = run_groups(_text(["A", "A", "B", "B", "B"], ["1", "2", "1", "5", "9"]), "c0", "c1")
    assert groups is not None and groups.to_pylist() == ["A", "B"]  # each group once: the reference check uses them


def test_key_proof_from_text_declines_what_it_cannot_prove():
    from transforms.canonical import run_groups

    assert run_groups(_text(["A", "A", "B", "A"], ["1", "2", "1", "3"]), "c0", "c1") is None  # A comes back
    assert run_groups(_text(["A", "A", "B"], ["1", "1", "1"]), "c0", "c1") is None  # repeated sequence
    assert run_groups(_text(["A", "A", "B"], ["2", "1", "1"]), "c0", "c1") is None  # sequence goes down
    assert run_groups(_text(["A", "", "B"], ["1", "2", "1"]), "c0", "c1") is None  # empty id: quarantine decides
    assert run_groups(_text(["A", "A", "B"], ["1", " 2", "1"]), "c0", "c1") is None  # not a plain integer
    assert run_groups(_text(["A", "A", "B"], ["1", "9999999999", "1"]), "c0", "c1") is None  # over INTEGER


def test_duplicate_stop_time_key_is_quarantined_when_trips_interleave(tmp_path):
    files = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"] + MINI_FEED["stop_times.txt"].split("\n", 2)[1] + "\n"}
    result, notices, quarantine = run(tmp_path, files)
    assert [q["code"] for q in quarantine] == ["duplicate_key"]
    assert result.counts["stop_times.txt"].rows_in == result.counts["stop_times.txt"].accepted + 1


def test_fast_time_reader_agrees_with_the_sql_typing_on_every_form():
    import duckdb
    import pyarrow as pa

    from transforms.canonical import fast_times, typed_expr
    from transforms.schema import Field

    values = ["08:00:00", "8:00:00", "24:10:00", "99:59:59", "", " 08:00:00", "08:60:00", "08:00:6x", "8:0:00",
              "08-00-00", "123:00:00", "0:00:00", "５:３０:００", None, "07:05:09"]
    fast = fast_times(pa.chunked_array([pa.array(values[:5], pa.string()), pa.array(values[5:], pa.string())]))
    assert fast.to_pylist()[:4] == [28800, 28800, 87000, 359999]
    assert fast.to_pylist()[4:9] == [None] * 5 and fast.to_pylist()[-1] == 25509
    f = Field(name="arrival_time", type="time")
    con = duckdb.connect()
    con.register("t", pa.table({"v": pa.array(values, pa.string()), "s": fast}))
    both = con.sql(f"SELECT {typed_expr(f, 'v')}, {typed_expr(f, 'v', fast='s')} FROM t").fetchall()
    assert [a for a, _ in both] == [b for _, b in both]  # the fast path changes the speed, not the result


@pytest.mark.parametrize("kind,ftype", [("int", "int"), ("float", "float")])
def test_fast_number_reader_agrees_with_the_sql_typing_on_every_form(kind, ftype):
    import duckdb
    import pyarrow as pa

    from transforms.canonical import fast_numbers, typed_expr
    from transforms.schema import Field

    values = ["0", "7", "-3", "007", "+5", " 5", "5 ", "0x10", "1_0", "2147483647", "12345678901", "1.5", "-.5", "5.",
              "1e5", "1E-3", "nan", "inf", "Infinity", "1e400", "1,5", "５", "", None, "--1", "1-2", "e", "."]
    chunks = [pa.array(values[i:i + 3], pa.string()) for i in range(0, len(values), 3)]  # one odd value refuses only its chunk
    fast = fast_numbers(pa.chunked_array(chunks), kind)
    f = Field(name="v", type=ftype)
    con = duckdb.connect()
    con.register("t", pa.table({"v": pa.array(values, pa.string()), "s": fast}))
    both = con.sql(f"SELECT {typed_expr(f, 'v')}, {typed_expr(f, 'v', fast='s')}, s FROM t").fetchall()
    assert [a for a, _, _ in both] == [b for _, b, _ in both]  # the fast path changes the speed, not the result
    got = dict(zip(values, (s for _, _, s in both)))
    assert got["0"] == 0 and got["7"] == 7 and got["-3"] == -3  # the plain first chunk is read by Arrow
    assert got["0x10"] is None and got["nan"] is None  # forms Arrow reads but GTFS does not are left to SQL


def test_a_column_arrow_types_completely_is_not_checked_again_and_a_bad_value_still_is(tmp_path):
    result, notices, quarantine = run(tmp_path / "a", MINI_FEED)
    assert not [n for n in notices if n["code"] in ("invalid_integer", "invalid_float")] and not quarantine
    bad = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace("S1,1\n", "S1,x1\n")}
    assert bad["stop_times.txt"] != MINI_FEED["stop_times.txt"]
    result, notices, quarantine = run(tmp_path / "b", bad)
    assert ("invalid_integer", "x1", 2) in {(n["code"], n["value"], n["line"]) for n in notices}
    assert [(q["code"], q["line"]) for q in quarantine] == [("missing_required_field", 2)]  # a key that does not type
    assert result.counts["stop_times.txt"].accepted == result.counts["stop_times.txt"].rows_in - 1


def test_fast_time_reader_handles_one_width_columns_and_sliced_arrays():
    import pyarrow as pa

    from transforms.canonical import fast_times

    arr = pa.array(["00:00:01", "10:20:30", "25:00:00", "01:02:03"], pa.string())
    assert fast_times(arr).to_pylist() == [1, 37230, 90000, 3723]
    assert fast_times(arr.slice(1, 2)).to_pylist() == [37230, 90000]


def test_key_proof_from_text_checks_the_boundaries_between_chunks():
    import pyarrow as pa

    from transforms.canonical import run_groups

    def chunked(trips, seqs, cut):
        return pa.table({"c0": pa.chunked_array([trips[:cut], trips[cut:]], pa.string()),
                         "c1": pa.chunked_array([seqs[:cut], seqs[cut:]], pa.string())})

    assert run_groups(chunked(["A", "A", "A", "B"], ["1", "2", "3", "1"], 2), "c0", "c1") is not None
    assert run_groups(chunked(["A", "A", "A", "B"], ["1", "2", "2", "1"], 2), "c0", "c1") is None  # repeat across the cut
    assert run_groups(chunked(["A", "B", "A", "C"], ["1", "1", "2", "1"], 2), "c0", "c1") is None  # A returns after the cut



def test_an_empty_required_file_is_reported_once_as_empty_not_as_missing(tmp_path):
    _, notices, _ = run(tmp_path, {**MINI_FEED, "agency.txt": ""})
    about_agency = [(n["code"], n["file"]) for n in notices if n["file"] == "agency.txt"]
    assert about_agency == [("empty_file", "agency.txt")]
    fk = [n["message"] for n in notices if n["code"] == "foreign_key_violation" and n["field"] == "agency_id"]
    assert fk and all("agency.txt (empty)" in m for m in fk)
    _, notices, _ = run(tmp_path / "b", {k: v for k, v in MINI_FEED.items() if k != "agency.txt"})
    assert ("missing_required_file", "agency.txt") in {(n["code"], n["file"]) for n in notices}


def test_columns_typed_side_by_side_give_the_same_tables(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import transforms.canonical as canonical

    files = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"] + "T1,x9:00:00,25:00:00,S2,3\n"}
    run(tmp_path / "serial", files)
    monkeypatch.setattr(canonical, "PARALLEL_ROWS", 1)
    run(tmp_path / "parallel", files)
    for name in ("stop_times", "trips", "stops"):
        serial = pq.read_table(next((tmp_path / "serial").rglob(f"{name}.parquet")))
        parallel = pq.read_table(next((tmp_path / "parallel").rglob(f"{name}.parquet")))
        assert serial.equals(parallel), name


def _tables(out_dir):
    return {p.stem: pq.read_table(p) for p in sorted(out_dir.glob("*.parquet")) if not p.stem.startswith("_")}


def test_tables_assembled_in_arrow_equal_the_sql_typed_ones(tmp_path, monkeypatch):
    import dataclasses

    import transforms.canonical as canonical

    files = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "S3,,43.32,\n"}  # empty text and float cells
    run(tmp_path / "arrow", files)
    typed_in_arrow = canonical._type_in_arrow
    monkeypatch.setattr(canonical, "_type_in_arrow", lambda *a: dataclasses.replace(typed_in_arrow(*a), out=None))
    run(tmp_path / "sql", files)
    arrow, sql = _tables(tmp_path / "arrow" / "out"), _tables(tmp_path / "sql" / "out")
    assert arrow.keys() == sql.keys() and "stop_times" in arrow
    for name in arrow:
        assert arrow[name].schema.remove_metadata() == sql[name].schema.remove_metadata(), name
        assert arrow[name].to_pylist() == sql[name].to_pylist(), name
    assert [r["stop_name"] for r in arrow["stops"].to_pylist()] == ["港前", "駅前", None]


def test_a_file_written_before_its_checks_is_rewritten_without_quarantined_rows(tmp_path, monkeypatch):
    import transforms.canonical as canonical

    files = {
        **MINI_FEED,
        "stops.txt": MINI_FEED["stops.txt"] + "S1,港前(重複),43.3,141.4\n",  # duplicate key: quarantined
        "stop_times.txt": MINI_FEED["stop_times.txt"] + "T9,09:00:00,09:00:00,S1,1\nT9,09:05:00,09:05:00,S2,2\n",
    }
    _, in_order, _ = run(tmp_path / "in_order", files)
    monkeypatch.setattr(canonical, "PARALLEL_ROWS", 1)  # every file counts as big: typed and written first
    result, early, quarantine = run(tmp_path / "early", files)
    assert early == in_order
    assert [(q["file"], q["line"]) for q in quarantine] == [("stops.txt", 4)]
    stops = pq.read_table(tmp_path / "early" / "out" / "stops.parquet").to_pylist()
    assert [r["_line"] for r in stops] == [2, 3] and result.counts["stops.txt"].accepted == 2
    fk = [(n["file"], n["line"], n["value"]) for n in early if n["code"] == "foreign_key_violation"]
    assert fk == [("stop_times.txt", 4, "T9"), ("stop_times.txt", 5, "T9")]


# Hostile input (issue 13): one clear finding per problem, bounded memory, rows in = accepted + quarantined.

from tests.conftest import deadline  # noqa: E402


def adds_up(result):
    return all(c.rows_in == c.accepted + c.quarantined for c in result.counts.values())


def test_bad_rows_beyond_the_sample_limit_are_counted_exactly_and_all_quarantined(tmp_path):
    from transforms.csvread import NOTICE_SAMPLE_LIMIT

    n = NOTICE_SAMPLE_LIMIT * 3
    rows = "".join(f"T1,08:00:00,08:00:00,S1,{i},junk\n" for i in range(n))
    files = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"] + rows}
    feed = GtfsAdapter().read(write_feed(tmp_path / "in", files))
    result = canonicalize(feed, schema=load_schema(), out_dir=tmp_path / "out")
    notices = [n for n in feed.findings.notices if n.code == "invalid_row_length"]
    assert len(notices) == NOTICE_SAMPLE_LIMIT and notices[0].line == 4
    assert feed.findings.counts[("invalid_row_length", "ERROR")] == n
    quarantine = feed.findings.quarantine_table()
    assert quarantine.num_rows == n and quarantine.column("raw")[0].as_py() == "T1,08:00:00,08:00:00,S1,0,junk"
    c = result.counts["stop_times.txt"]
    assert (c.rows_in, c.accepted, c.quarantined) == (n + 2, 2, n) and adds_up(result)


def test_quarantined_text_and_notice_values_are_clipped(tmp_path):
    huge = "9" * 100_000 + "x"  # under the field limit, but not a number: the key is unreadable
    files = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"] + f"T1,25:00:00,25:00:00,S2,{huge}\n"}
    result, notices, quarantine = run(tmp_path, files)
    [q] = quarantine
    assert q["line"] == 4 and q["raw"].startswith('{"trip_id":"T1"') and len(q["raw"]) < 4200 and "bytes; only the first" in q["raw"]
    [bad] = [n for n in notices if n["code"] == "invalid_integer"]
    assert bad["line"] == 4 and len(bad["value"]) < 1100 and len(bad["message"]) < 1100
    assert result.counts["stop_times.txt"].quarantined == 1 and adds_up(result)


def test_file_wider_than_the_column_limit_gets_one_notice_and_its_rows_quarantined(tmp_path):
    cols = 5000
    stops = ",".join(["stop_id", "stop_name", "stop_lat", "stop_lon"] + [f"x{i}" for i in range(cols - 4)]) + "\n"
    stops += "".join(f"S{r},n,43.3,141.4," + ",".join(["v"] * (cols - 4)) + "\n" for r in (1, 2))
    with deadline(60):
        result, notices, quarantine = run(tmp_path, {**MINI_FEED, "stops.txt": stops})
    assert {n["message"] for n in notices if n["code"] == "foreign_key_violation"} >= {"stop_id 'S1' is not defined in stops.txt (not read) (stop_id)"}
    wide = [n for n in notices if n["file"] == "stops.txt"]
    assert [(n["code"], n["line"]) for n in wide] == [("too_many_columns", 1)], wide
    assert "5,000 columns" in wide[0]["message"]
    assert [(q["file"], q["line"], q["code"]) for q in quarantine] == [("stops.txt", 2, "too_many_columns"), ("stops.txt", 3, "too_many_columns")]
    c = result.counts["stops.txt"]
    assert (c.rows_in, c.accepted, c.quarantined) == (2, 0, 2) and adds_up(result)


def test_file_at_the_column_limit_is_typed_in_seconds(tmp_path):
    cols = 1000
    stops = ",".join(["stop_id", "stop_name", "stop_lat", "stop_lon"] + [f"x{i}" for i in range(cols - 4)]) + "\n"
    stops += "".join(f"S{r},n,43.3,141.4," + ",".join(["v"] * (cols - 4)) + "\n" for r in (1, 2))
    with deadline(60):
        result, notices, _ = run(tmp_path, {**MINI_FEED, "stops.txt": stops})
    assert result.counts["stops.txt"].accepted == 2 and "too_many_columns" not in codes(notices)


def test_value_over_the_field_limit_quarantines_its_row_with_file_line_and_field(tmp_path):
    files = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "S3," + "x" * (200 << 10) + ",43.3,141.4\n"}
    with deadline(60):
        result, notices, quarantine = run(tmp_path, files)
    [n] = [n for n in notices if n["code"] == "field_too_long"]
    assert (n["file"], n["line"], n["field"]) == ("stops.txt", 4, "stop_name") and "204,800 bytes" in n["message"]
    assert [(q["file"], q["line"], q["code"]) for q in quarantine] == [("stops.txt", 4, "field_too_long")]
    assert len(quarantine[0]["raw"]) < 4200
    c = result.counts["stops.txt"]
    assert (c.rows_in, c.accepted, c.quarantined) == (3, 2, 1) and adds_up(result)


def test_nul_bytes_utf16_and_cr_only_files_end_with_notices_naming_the_file(tmp_path):
    files = {
        **MINI_FEED,
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,港\x00前,43.30,141.40\nS2,駅前,43.31,141.41\n",
        "routes.txt": MINI_FEED["routes.txt"].replace("\n", "\r"),
    }
    folder = write_feed(tmp_path / "in", files)
    (folder / "agency.txt").write_bytes(MINI_FEED["agency.txt"].encode("utf-16"))
    feed = GtfsAdapter().read(folder)
    result = canonicalize(feed, schema=load_schema(), out_dir=tmp_path / "out")
    got = {(n["code"], n["file"], n["line"]) for n in feed.findings.notices_table().to_pylist()}
    assert got == {("invalid_character", "stops.txt", 2), ("non_utf8_encoding", "agency.txt", None),
                   ("invalid_line_ends", "routes.txt", 1)}
    assert [result.counts[f].accepted for f in ("agency.txt", "routes.txt", "stops.txt")] == [1, 1, 2] and adds_up(result)


# Small feeds' fixed cost (session 16): dates, empty files and unknown columns typed in Arrow, no table registered
# with DuckDB that no query reads. The answers must be the SQL typing's.

def test_fast_dates_type_only_what_the_sql_typing_types_the_same(monkeypatch):
    import random

    import pyarrow as pa

    import transforms.canonical as canonical
    from transforms.canonical import fast_dates

    rng = random.Random(7)
    values = [f"{rng.randint(0, 9999):04d}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}" for _ in range(20000)]
    values += ["20240229", "20230229", "19000229", "20000229", "10000101", "09991231", "99991231", "00000000",
               "2024061", "202406011", " 20240601", "20240601 ", "２０２４０６０１", "2024-6-1", "", None]
    arr = pa.chunked_array([pa.array(values[:7000], pa.string()), pa.array(values[7000:], pa.string()).slice(5)])
    con = duckdb.connect()
    whole = fast_dates(arr)
    con.register("t", pa.table({"v": arr, "f": whole}))
    sql = "CASE WHEN regexp_full_match(v, '\\s*\\d{8}\\s*') THEN CAST(try_strptime(trim(v), '%Y%m%d') AS DATE) END"
    assert con.execute(f"SELECT count(*) FROM t WHERE f IS NOT NULL AND f IS DISTINCT FROM ({sql})").fetchall() == [(0,)]
    typed = dict(con.execute("SELECT v, f::VARCHAR FROM t WHERE f IS NOT NULL").fetchall())
    assert typed["20240229"] == "2024-02-29" and typed["10000101"] == "1000-01-01" and typed["99991231"] == "9999-12-31"
    for v in ("20230229", "19000229", " 20240601", "２０２４０６０１", "2024061", "", None):
        assert v not in typed
    # a block at a time gives the same
    monkeypatch.setattr(canonical, "DATE_BLOCK", 7)
    assert fast_dates(arr).equals(whole)
    # every plain date (8 digits, no space) of the sample is typed here, not left to SQL
    left = con.execute(f"SELECT count(*) FROM t WHERE f IS NULL AND ({sql}) IS NOT NULL AND strlen(v) = 8 AND v >= '1000'").fetchall()
    assert left == [(0,)]


def test_dates_empty_files_and_unknown_columns_are_typed_in_arrow_with_the_sql_answers(tmp_path, monkeypatch):
    import dataclasses

    import transforms.canonical as canonical

    files = {**MINI_FEED,
             "agency.txt": "agency_id,agency_name,agency_url,agency_timezone,agency_offilcal_name\n"
                           "A,みなと交通,https://example.jp,Asia/Tokyo,\"港 \"\"交通\"\"\\\"\n",
             "calendar_dates.txt": "service_id,date,exception_type\nWD,20260402,1\nWD,20260230,2\nWD, 20260403 ,1\n",
             "transfers.txt": "from_stop_id,to_stop_id,transfer_type,min_transfer_time\n",
             "feed_info.txt": "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date\nP,https://p.jp,ja,20260401,\n"}
    registered = []
    con = duckdb.connect()

    class Spy:  # what canonicalize asks DuckDB to register
        def __getattr__(self, name):
            return getattr(con, name)

        def register(self, name, table):
            registered.append(name)
            return con.register(name, table)

    feed = GtfsAdapter().read(write_feed(tmp_path / "in", files))
    canonicalize(feed, schema=load_schema(), out_dir=tmp_path / "arrow" / "out", con=Spy(), views_after=False)
    # no query read the clean tables: none was registered, and no view of them is left
    assert "t_stops" not in registered and "raw_stops" not in registered and "t_calendar_dates" not in registered
    assert not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 't_stops'").fetchall()[0][0]
    arrow_notices = feed.findings.notices_table().to_pylist()
    typed_in_arrow = canonical._type_in_arrow
    # every field left to SQL: the typing before the Arrow paths
    monkeypatch.setattr(canonical, "_type_in_arrow", lambda *a: dataclasses.replace(typed_in_arrow(*a), out=None, clean=set()))
    monkeypatch.setattr(canonical, "ARROW_EXTRA_ROWS", -1)  # the unknown columns' JSON by the SQL COPY too
    _, sql_notices, _ = run(tmp_path / "sql", files)
    arrow, sql = _tables(tmp_path / "arrow" / "out"), _tables(tmp_path / "sql" / "out")
    assert arrow.keys() == sql.keys() and {"transfers", "calendar_dates", "feed_info"} <= arrow.keys()
    for name in arrow:
        assert arrow[name].schema.remove_metadata() == sql[name].schema.remove_metadata(), name
        assert arrow[name].to_pylist() == sql[name].to_pylist(), name
    assert arrow_notices == sql_notices
    assert [n["line"] for n in arrow_notices if n["code"] == "invalid_date"] == [3]  # 20260230; ' 20260403 ' is SQL's
    assert [str(r["date"]) for r in arrow["calendar_dates"].to_pylist()] == ["2026-04-02", "2026-04-03"]  # a key: quarantined
    assert pq.ParquetFile(tmp_path / "arrow" / "out" / "transfers.parquet").metadata.num_row_groups == 0  # as DuckDB writes it
    assert arrow["agency"].column("_extra").to_pylist() == ['{"agency_offilcal_name":"港 \\"交通\\"\\\\"}']


def test_duplicate_keys_are_found_the_same_by_the_arrow_hash_pass_and_by_sql(tmp_path, monkeypatch):
    import transforms.canonical as canonical

    files = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "S1,港前(重複),43.3,141.4\n",
             "calendar_dates.txt": "service_id,date,exception_type\nWD,20260402,1\nWD,20260402,2\nWD,20260403,1\n"}
    _, arrow_notices, arrow_quarantine = run(tmp_path / "arrow", files)
    monkeypatch.setattr(canonical, "ARROW_KEY_ROWS", 0)  # every table too big for the hash pass: the SQL checks
    _, sql_notices, sql_quarantine = run(tmp_path / "sql", files)
    assert arrow_notices == sql_notices and arrow_quarantine == sql_quarantine
    assert sorted((q["file"], q["line"]) for q in arrow_quarantine) == [("calendar_dates.txt", 3), ("stops.txt", 4)]
    assert _tables(tmp_path / "arrow" / "out")["calendar_dates"].to_pylist() == _tables(tmp_path / "sql" / "out")["calendar_dates"].to_pylist()
