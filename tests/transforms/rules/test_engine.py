"""The rule engine: rules see every canonical table, findings are counted whole and sampled."""

import re
from datetime import date

import pyarrow as pa
import pytest

from transforms.canonical import canonicalize
from transforms.gtfs import GtfsAdapter
from transforms.rules.engine import ERROR, WARNING, Context, Rule, run_rules
from transforms.rules.registry import all_rules, rule_codes
from transforms.schema import load_schema
from tests.conftest import MINI_FEED, write_feed


def _tables(tmp_path, files=MINI_FEED):
    src = write_feed(tmp_path / "feed", files)
    feed = GtfsAdapter().read(src)
    out = tmp_path / "tables"
    canonicalize(feed, schema=load_schema(), out_dir=out)
    return out


def test_rule_findings_are_counted_and_sampled(tmp_path):
    out = _tables(tmp_path)
    every_stop = Rule("test_every_stop", WARNING, "test", sql=lambda ctx: "SELECT 'stops.txt' AS file, _line AS line, 'stop_id' AS field, stop_id AS value, 'x' AS message FROM stops")
    run = run_rules(out, rules=[every_stop], sample_limit=1)
    n_stops = sum(1 for _ in (tmp_path / "feed" / "stops.txt").open()) - 1
    assert run.counts == {("test_every_stop", WARNING): n_stops}
    assert run.notices.num_rows == 1 and run.notices.column("code").to_pylist() == ["test_every_stop"]


def test_absent_optional_table_is_an_empty_view_and_needs_skips(tmp_path):
    out = _tables(tmp_path)
    on_shapes = Rule("test_shapes", ERROR, "test", sql=lambda ctx: "SELECT 'shapes.txt' AS file, _line AS line, NULL AS field, NULL AS value, 'x' AS message FROM shapes")
    needs_shapes = Rule("test_needs", ERROR, "test", needs=("shapes",), sql=lambda ctx: "SELECT * FROM no_such_table")
    run = run_rules(out, rules=[on_shapes, needs_shapes])
    assert run.counts == {}


def test_validation_date_reaches_rules(tmp_path):
    out = _tables(tmp_path)
    seen = []

    def sql(ctx: Context) -> str:
        seen.append(ctx.validation_date)
        return f"SELECT 'x' AS file, NULL AS line, NULL AS field, CAST({ctx.today} AS VARCHAR) AS value, 'x' AS message"

    run = run_rules(out, rules=[Rule("test_date", WARNING, "test", sql=sql)], validation_date=date(2019, 4, 1))
    assert seen == [date(2019, 4, 1)]
    assert run.notices.column("value").to_pylist() == ["2019-04-01"]


def test_gtfs_jp_rules_run_only_for_gtfs_jp(tmp_path):
    out = _tables(tmp_path)
    jp = Rule("test_jp", WARNING, "test", profile="gtfs-jp", sql=lambda ctx: "SELECT 'x' AS file, 1 AS line, NULL AS field, NULL AS value, 'x' AS message")
    assert run_rules(out, rules=[jp]).counts == {}
    assert run_rules(out, rules=[jp], profile="gtfs-jp").counts == {("test_jp", WARNING): 1}


def test_every_registered_rule_has_code_severity_and_why():
    codes = rule_codes()
    assert len(codes) == len({r.code for r in all_rules()})
    for rule in all_rules():
        # snake_case, or a GTFS-Realtime validator code (E001…, W001…: MobilityData gtfs-realtime-validator's names)
        assert (rule.code.islower() or re.fullmatch(r"[EW]\d{3}", rule.code)) and " " not in rule.code
        assert rule.why and rule.why.endswith("."), rule.code


def test_every_rule_says_what_is_wrong_and_how_to_fix_it_in_english_and_japanese():
    # A Japanese feed's report shows why_ja and fix_ja; a code without them would be English in a Japanese report.
    missing = [r.code for r in all_rules() if not (r.fix and r.why_ja and r.fix_ja)]
    assert missing == []
    assert all(any("\u3040" <= ch <= "\u30ff" for ch in r.why_ja + r.fix_ja) for r in all_rules())  # kana: Japanese text


def test_a_sql_rule_without_query_is_refused():
    with pytest.raises(ValueError):
        Rule("x", ERROR, "x.")


def test_rules_sharing_a_table_build_it_once_and_it_is_dropped_after(tmp_path):
    import duckdb

    out = _tables(tmp_path)
    built = []

    def stops_once(ctx):
        built.append(1)
        return "SELECT stop_id, _line FROM stops"

    def rule(code):
        return Rule(code, WARNING, "test", sql=lambda ctx: f"SELECT 'stops.txt' AS file, _line AS line, 'stop_id' AS field, stop_id AS value, 'x' AS message "
                                                           f"FROM {ctx.shared('stops_once', stops_once(ctx) if not built else 'SELECT 1')}")
    con = duckdb.connect()
    run = run_rules(out, rules=[rule("test_a"), rule("test_b")], con=con)
    assert run.counts[("test_a", WARNING)] == run.counts[("test_b", WARNING)] > 0  # the second rule read the first one's table
    assert not con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_shared_%'").fetchall()[0][0]
    assert Context(validation_date=date(2024, 1, 1)).shared("x", "SELECT 1") == "(SELECT 1)"  # outside run_rules: inline


def test_duckdb_memory_is_bounded_while_rules_run_and_restored_after(tmp_path, monkeypatch):
    import duckdb

    out = _tables(tmp_path)
    seen = Rule("test_limit", WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, "
                "current_setting('memory_limit') AS value, current_setting('temp_directory') AS message")
    con = duckdb.connect()
    before = con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    monkeypatch.setenv("NORIBA_RULES_MEMORY", "300MB")
    (row,) = run_rules(out, rules=[seen], con=con).notices.to_pylist()
    assert row["value"] != before and row["value"].startswith("28")  # 300 MB, as DuckDB shows it (286.1 MiB)
    assert row["message"].startswith(str(tmp_path))  # spills stay in the workspace, beside the tables
    assert con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] == before
    assert not (out.parent / "_rules_spill").exists()


def test_rules_reading_stop_times_in_order_share_one_table(tmp_path):
    from transforms.rules.stop_times import RULES as STOP_TIME_RULES

    out = _tables(tmp_path)
    built = []
    ordered = [r for r in STOP_TIME_RULES if r.code in ("stop_time_with_arrival_before_previous_departure_time",
                                                        "decreasing_or_equal_stop_time_distance",
                                                        "too_many_consecutive_stop_times_with_same_time",
                                                        "fast_travel_between_consecutive_stops", "fast_travel_between_far_stops",
                                                        "too_fast_travel")]

    def spy(name, sql, build=None):
        built.append(name)
        return f"({sql})"

    for r in ordered:
        r.sql(Context(validation_date=date(2024, 1, 1), materialise=spy))
    # the pass, and the side tables its build makes beside it for the rules that alone read their figures
    assert set(built) == {"stop_pass", "stop_pass_back", "stop_pass_dist", "stop_pass_timed"}
    assert run_rules(out, rules=ordered).counts == {}


def test_samples_cut_from_tied_findings_are_the_same_on_every_run(tmp_path):
    out = _tables(tmp_path)
    tied = Rule("test_tied", WARNING, "test", sql=lambda ctx: "SELECT 'stops.txt' AS file, NULL AS line, 'stop_id' AS field, "
                "stop_id AS value, 'x' AS message FROM stops")
    runs = [run_rules(out, rules=[tied], sample_limit=2) for _ in range(3)]
    values = sorted(v for v in runs[0].notices.column("value").to_pylist())
    every = run_rules(out, rules=[tied], sample_limit=1000).notices.column("value").to_pylist()
    assert values == sorted(every)[:2]
    assert all(r.notices.column("value").to_pylist() == runs[0].notices.column("value").to_pylist() for r in runs)


def _answer(run) -> tuple:
    return sorted(run.counts.items()), run.notices.to_pylist()


def test_two_cursors_give_the_answers_of_one_on_a_real_feed(tmp_path, monkeypatch):
    from tests.conftest import shared

    zp = shared("gtfs", "jp", "corpus-2019", "feeds", "kamacitybus190401.zip")
    out = tmp_path / "tables"
    canonicalize(GtfsAdapter().read(zp), schema=load_schema(), out_dir=out, profile="gtfs-jp")
    runs = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("NORIBA_RULES_WORKERS", workers)
        runs[workers] = run_rules(out, validation_date=date(2019, 6, 1), profile="gtfs-jp")
    assert runs["1"].counts and _answer(runs["1"]) == _answer(runs["2"])  # same counts, same samples in the same order
    assert runs["1"].seconds.keys() == runs["2"].seconds.keys()


def test_a_shared_table_that_fails_stops_the_run_with_its_error_and_leaves_no_table(tmp_path, monkeypatch):
    import duckdb

    out = _tables(tmp_path)
    monkeypatch.setenv("NORIBA_RULES_WORKERS", "2")

    def reader(code):
        return Rule(code, WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, NULL AS value, "
                    f"'x' AS message FROM {ctx.shared('broken', 'SELECT * FROM no_such_table')}")

    con = duckdb.connect()
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):  # the builder's error, not a reader's missing table
        run_rules(out, rules=[reader(f"test_{i}") for i in range(4)], con=con)
    assert not con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_shared_%'").fetchall()[0][0]


def test_per_column_scans_read_only_the_tables_the_feed_has(tmp_path):
    from transforms.rules.formats import RULES as FORMAT_RULES

    out = _tables(tmp_path)
    new_line = next(r for r in FORMAT_RULES if r.code == "new_line_in_value")
    ctx = Context(validation_date=date(2024, 1, 1), present=frozenset({"agency", "stops"}))
    sql = new_line.sql(ctx)
    assert 'FROM "stops"' in sql and 'FROM "shapes"' not in sql and 'FROM "translations"' not in sql
    assert Context(validation_date=date(2024, 1, 1)).has("shapes")  # tables present unknown: every table is scanned
    lines = {"stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,\"港\n前\",43.30,141.40\nS2,駅前,43.31,141.41\n"}
    out = _tables(tmp_path / "b", {**MINI_FEED, **lines})
    assert run_rules(out, rules=[new_line]).counts == {("new_line_in_value", new_line.severity): 1}


def test_reference_lists_are_one_table_of_the_run_not_a_list_in_every_query():
    from transforms.rules.formats import RULES as FORMAT_RULES

    asked = []

    def spy(name, sql):
        asked.append(name)
        return f"_shared_{name}"

    for code in ("invalid_timezone", "invalid_language_code", "invalid_currency"):
        sql = next(r for r in FORMAT_RULES if r.code == code).sql(Context(validation_date=date(2024, 1, 1), materialise=spy))
        assert "VALUES" not in sql and "Asia/Tokyo'), (" not in sql
    assert asked == ["ref_timezones", "ref_languages", "ref_currencies"]


def test_a_small_feed_is_held_in_memory_for_the_rules_and_its_views_read_the_files_again_after(tmp_path, monkeypatch):
    import duckdb

    out = _tables(tmp_path)
    reads = Rule("test_reads", WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, "
                 "string_agg(table_name, ',' ORDER BY table_name) AS value, 'x' AS message FROM duckdb_tables() "
                 "WHERE table_name IN ('stops', 'trips') OR table_name LIKE '_rules_held_%'")
    every_stop = Rule("test_every_stop", WARNING, "test", sql=lambda ctx: "SELECT 'stops.txt' AS file, _line AS line, "
                      "'stop_id' AS field, stop_id AS value, stop_name AS message FROM stops")
    con = duckdb.connect()
    held = run_rules(out, rules=[reads, every_stop], con=con)
    assert held.notices.column("value").to_pylist()[0] == "stops,trips"  # tables in memory under the views' names
    assert not con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('stops', 'trips') "
                       "OR table_name LIKE '_rules_held_%'").fetchall()[0][0]
    assert "read_parquet" in con.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'stops'").fetchall()[0][0]
    monkeypatch.setenv("NORIBA_RULES_HOLD_ROWS", "0")  # never held: the same findings from the files
    on_disk = run_rules(out, rules=[reads, every_stop], con=duckdb.connect())
    assert on_disk.notices.column("value").to_pylist()[0] is None  # nothing held
    assert on_disk.counts == held.counts
    assert on_disk.notices.filter(pa.compute.equal(on_disk.notices.column("code"), "test_every_stop")).to_pylist() == \
        held.notices.filter(pa.compute.equal(held.notices.column("code"), "test_every_stop")).to_pylist()


def test_a_feed_over_the_hold_limit_is_read_from_its_files(tmp_path, monkeypatch):
    import duckdb

    out = _tables(tmp_path)
    monkeypatch.setenv("NORIBA_RULES_HOLD_ROWS", "1")
    reads = Rule("test_reads", WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, "
                 "sql AS value, 'x' AS message FROM duckdb_views() WHERE view_name = 'stops'")
    (row,) = run_rules(out, rules=[reads], con=duckdb.connect()).notices.to_pylist()
    assert "read_parquet" in row["value"]


def test_cheap_rules_run_together_give_the_answers_of_each_alone_on_a_real_feed(tmp_path, monkeypatch):
    from tests.conftest import shared

    zp = shared("gtfs", "jp", "corpus-2019", "feeds", "kamacitybus190401.zip")
    out = tmp_path / "tables"
    canonicalize(GtfsAdapter().read(zp), schema=load_schema(), out_dir=out, profile="gtfs-jp")
    runs = {}
    for batch in ("0", "1", "3"):
        monkeypatch.setenv("NORIBA_RULES_BATCH", batch)
        runs[batch] = run_rules(out, validation_date=date(2019, 6, 1), profile="gtfs-jp")
    assert runs["0"].counts and _answer(runs["0"]) == _answer(runs["1"]) == _answer(runs["3"])  # counts, samples, order
    assert runs["0"].seconds.keys() == runs["1"].seconds.keys()


def test_rules_in_one_statement_keep_their_own_counts_and_samples(tmp_path, monkeypatch):
    import duckdb

    from transforms.rules import engine

    out = _tables(tmp_path)
    statements = []
    real = engine._findings_batch
    monkeypatch.setattr(engine, "_findings_batch", lambda con, items, limit: statements.append(len(items)) or real(con, items, limit))

    def rule(code, where, severity=WARNING):
        return Rule(code, severity, "test", sql=lambda ctx: "SELECT 'stops.txt' AS file, _line AS line, 'stop_id' AS field, "
                    f"stop_id AS value, 'x' AS message FROM stops WHERE {where}")

    rules = [rule("test_all", "true"), rule("test_none", "false", ERROR), rule("test_first", "_line = 2"), rule("test_all", "true")]
    monkeypatch.setenv("NORIBA_RULES_WORKERS", "1")
    together = run_rules(out, rules=rules, sample_limit=2, con=duckdb.connect())
    assert statements == [4]  # one statement for the four
    monkeypatch.setenv("NORIBA_RULES_BATCH", "0")
    alone = run_rules(out, rules=rules, sample_limit=2, con=duckdb.connect())
    assert statements == [4]
    n_stops = sum(1 for _ in (tmp_path / "feed" / "stops.txt").open()) - 1
    assert together.counts == alone.counts == {("test_all", WARNING): 2 * n_stops, ("test_first", WARNING): 1}
    assert together.notices.to_pylist() == alone.notices.to_pylist()
    assert together.notices.column("code").to_pylist() == ["test_all"] * 2 + ["test_first"] + ["test_all"] * 2


def test_a_failing_rule_in_a_statement_of_several_raises_its_own_error(tmp_path, monkeypatch):
    import duckdb

    out = _tables(tmp_path)
    monkeypatch.setenv("NORIBA_RULES_WORKERS", "1")
    fine = Rule("test_fine", WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, NULL AS value, "
                "'x' AS message FROM stops")
    broken = Rule("test_broken", WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, "
                  "NULL AS value, 'x' AS message FROM no_such_table")
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        run_rules(out, rules=[fine, broken], con=duckdb.connect())


def test_a_feed_over_the_hold_limit_runs_each_rule_alone(tmp_path, monkeypatch):
    from transforms.rules import engine

    out = _tables(tmp_path)
    monkeypatch.setenv("NORIBA_RULES_HOLD_ROWS", "1")
    monkeypatch.setattr(engine, "_findings_batch", lambda *a: pytest.fail("a big feed's rules are not batched"))
    every_stop = Rule("test_every_stop", WARNING, "test", sql=lambda ctx: "SELECT 'stops.txt' AS file, _line AS line, "
                      "'stop_id' AS field, stop_id AS value, 'x' AS message FROM stops")
    assert run_rules(out, rules=[every_stop, every_stop]).counts


def test_a_shared_reference_list_is_computed_once_per_process_and_gives_the_same_rows(tmp_path, monkeypatch):
    import duckdb

    from transforms.rules import engine

    out = _tables(tmp_path)
    monkeypatch.setattr(engine, "_CONSTANT", {})
    ref = "SELECT * FROM (VALUES ('Asia/Tokyo', DATE '2019-01-01'), ('Europe/Vilnius', NULL)) r(tz, d)"
    stops_ids = "SELECT stop_id FROM stops"

    def reader(code, name, sql, value, message):
        return Rule(code, WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, "
                    f"{value} AS value, {message} AS message FROM {ctx.shared(name, sql)} r")

    rules = [reader("test_ref", "ref", ref, "r.tz", "typeof(r.d) || ' ' || coalesce(CAST(r.d AS VARCHAR), '-')"),
             reader("test_ids", "ids", stops_ids, "r.stop_id", "'x'")]
    first = run_rules(out, rules=rules, con=duckdb.connect())
    assert len(engine._CONSTANT[ref][1][0]) == 2 and engine._CONSTANT[stops_ids] is None  # a feed's table: built each run
    monkeypatch.setattr(engine, "_CONSTANT", {ref: engine._CONSTANT[ref]})
    con = duckdb.connect()
    monkeypatch.setattr(engine.duckdb, "connect", lambda *a, **k: pytest.fail("computed again"))
    again = run_rules(out, rules=rules[:1], con=con)
    assert again.notices.to_pylist() == [r for r in first.notices.to_pylist() if r["code"] == "test_ref"]
    assert sorted((r["value"], r["message"]) for r in again.notices.to_pylist()) == [
        ("Asia/Tokyo", "DATE 2019-01-01"), ("Europe/Vilnius", "DATE -")]


def test_a_small_feed_s_queries_run_on_one_thread_each_and_the_setting_is_restored_after(tmp_path, monkeypatch):
    import duckdb

    out = _tables(tmp_path)
    monkeypatch.setenv("NORIBA_RULES_WORKERS", "2")
    threads = Rule("test_threads", WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, "
                   "current_setting('threads') AS value, 'x' AS message")
    con = duckdb.connect()
    con.execute("SET threads = 3")
    assert run_rules(out, rules=[threads], con=con).notices.column("value").to_pylist() == ["1"]
    assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 3
    monkeypatch.setenv("NORIBA_RULES_HOLD_ROWS", "0")  # not held: DuckDB's threads as they were
    assert run_rules(out, rules=[threads], con=con).notices.column("value").to_pylist() == ["3"]


def test_a_feed_whose_files_pyarrow_cannot_open_is_counted_through_duckdb_for_the_hold(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    out = _tables(tmp_path)

    def refuse(path):
        raise OSError(f"{path}: not a local file")

    monkeypatch.setattr(pq, "read_metadata", refuse)
    reads = Rule("test_reads", WARNING, "test", sql=lambda ctx: "SELECT 'x' AS file, NULL AS line, NULL AS field, "
                 "string_agg(table_name, ',' ORDER BY table_name) AS value, 'x' AS message FROM duckdb_tables() "
                 "WHERE table_name = 'stops'")
    assert run_rules(out, rules=[reads]).notices.column("value").to_pylist() == ["stops"]  # held all the same


def test_a_rule_statement_is_parsed_once_per_process_and_reads_each_feed_s_own_tables(tmp_path):
    from transforms.rules import engine

    every_stop = Rule("test_parsed_once", WARNING, "test", sql=lambda ctx: "SELECT 'stops.txt' AS file, _line AS line, "
                      "'stop_id' AS field, stop_id AS value, stop_name AS message FROM stops")
    first = run_rules(_tables(tmp_path / "a"), rules=[every_stop])
    parsed = {k: v for k, v in engine._PARSED.items() if "stop_name AS message FROM stops" in k}
    three = MINI_FEED["stops.txt"] + "S3,山手,43.32,141.42\n"
    second = run_rules(_tables(tmp_path / "b", {**MINI_FEED, "stops.txt": three}), rules=[every_stop])
    assert parsed and all(engine._PARSED.get(k) is v for k, v in parsed.items())  # the second run ran the first's parse
    assert first.counts == {("test_parsed_once", WARNING): 2}
    assert second.counts == {("test_parsed_once", WARNING): 3}
    assert second.notices.column("message").to_pylist() == ["港前", "駅前", "山手"]


def test_a_big_feeds_stop_time_pass_is_started_first_on_two_cursors(tmp_path, monkeypatch):
    """On a feed read from its files, one cursor starts building the stop-time pass (the phase's longest chain: the pass and
    then its readers) with its first statement while the other runs the other rules; at Vilnius ×16 the pass used to start
    behind the first rules, and the other cursor then ran out of rules and waited for it. The answers stay those of one
    cursor."""
    import os
    import threading

    from tests.conftest import shared
    from transforms.rules import engine, stop_times_pass

    if (os.cpu_count() or 1) < 2:
        pytest.skip("two cursors need two cores")
    zp = shared("gtfs", "jp", "corpus-2019", "feeds", "kamacitybus190401.zip")
    out = tmp_path / "tables"
    canonicalize(GtfsAdapter().read(zp), schema=load_schema(), out_dir=out, profile="gtfs-jp")
    monkeypatch.setenv("NORIBA_RULES_HOLD_ROWS", "0")
    started: list[str] = []
    lock = threading.Lock()
    findings, build = engine._findings, stop_times_pass.build

    def logged_findings(cur, rule, sql, limit):
        with lock:
            started.append(rule.code)
        return findings(cur, rule, sql, limit)

    def logged_build(*args, **kwargs):
        with lock:
            started.append("stop_pass")
        return build(*args, **kwargs)

    monkeypatch.setattr(engine, "_findings", logged_findings)
    monkeypatch.setattr(stop_times_pass, "build", logged_build)
    runs = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("NORIBA_RULES_WORKERS", workers)
        started.clear()
        runs[workers] = run_rules(out, validation_date=date(2019, 6, 1), profile="gtfs-jp")
    assert "stop_pass" in started[:2], started[:5]  # the first statement one of the two cursors took
    assert runs["1"].counts and _answer(runs["1"]) == _answer(runs["2"])


def test_per_column_scans_leave_out_the_columns_every_row_leaves_empty(tmp_path, monkeypatch):
    from transforms.rules import engine
    from transforms.rules.formats import RULES as FORMAT_RULES
    from transforms.rules.mobilitydata_v8 import RULES as MD_RULES

    scans = [r for r in FORMAT_RULES + MD_RULES if r.code in ("new_line_in_value", "leading_or_trailing_whitespaces")]
    # stop_headsign is in no row (not in the header); stop_name is: a line break and a space in one value of S1
    lines = {"stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,\" 港\n前\",43.30,141.40\nS2,駅前,43.31,141.41\n"}
    out = _tables(tmp_path, {**MINI_FEED, **lines})
    seen: list[frozenset] = []
    real = engine._run
    monkeypatch.setattr(engine, "_run", lambda *a, **k: seen.append(k["empty"]) or real(*a, **k))
    for hold in ("0", "1000000"):  # read from the files, and held in memory
        monkeypatch.setenv("NORIBA_RULES_HOLD_ROWS", hold)
        r = run_rules(out, rules=scans, validation_date=date(2024, 1, 1))
        assert r.counts == {("new_line_in_value", ERROR): 1, ("leading_or_trailing_whitespaces", WARNING): 1}
    empty = seen[-1]
    assert ("stop_times", "stop_headsign") in empty and ("stops", "stop_name") not in empty
    assert ("stop_times", "trip_id") not in empty and ("stops", "stop_id") not in empty
    ctx = Context(validation_date=date(2024, 1, 1), present=frozenset({"stops", "stop_times"}), empty=empty)
    for rule in scans:
        sql = rule.sql(ctx)
        assert '"stop_headsign"' not in sql and '"stop_name"' in sql and '"trip_id"' in sql
        assert '"stop_headsign"' in rule.sql(Context(validation_date=date(2024, 1, 1), present=ctx.present))


def test_a_column_empty_in_one_file_of_a_table_and_filled_in_another_is_scanned(tmp_path):
    import pyarrow.parquet as pq

    from transforms.rules import engine

    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"stop_id": ["S1", "S2"], "stop_desc": pa.array([None, None], pa.string())}), a)
    pq.write_table(pa.table({"stop_id": ["S3"], "stop_desc": ["x"]}), b)
    sources = {"stops": "SELECT 1"}
    assert engine._footers(None, sources, {"stops": [str(a)]}, None) == (2, frozenset({("stops", "stop_desc")}))
    assert engine._footers(None, sources, {"stops": [str(a), str(b)]}, None) == (3, frozenset())


def test_a_large_feed_groups_stop_times_by_trip_once_for_the_rules_that_read_each_trips_figures(tmp_path, monkeypatch):
    from transforms.rules import engine
    from transforms.rules.registry import all_rules

    codes = {"unusable_trip", "unused_trip", "block_trips_with_overlapping_stop_times", "trip_headsign_matches_intermediate_stop",
             "stop_has_too_many_matches_for_shape", "stops_match_shape_out_of_order"}
    rules = [r for r in all_rules() if r.code in codes]
    files = {**MINI_FEED,
             "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.41\nS3,終点,43.32,141.42\n",
             "trips.txt": "route_id,service_id,trip_id,trip_headsign,block_id,shape_id\nR1,WD,T1,駅前,B,SH\nR1,WD,T2,,B,SH\n"
                          "R1,WD,T3,,,\nR1,WD,T4,,,\n",
             "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\n"
                               "T1,08:10:00,08:10:00,S2,2\nT1,08:20:00,08:20:00,S3,3\nT2,08:05:00,08:05:00,S3,1\n"
                               "T2,08:30:00,08:30:00,S1,2\nT3,09:00:00,09:00:00,S1,1\n",
             "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\nSH,43.30,141.40,1\nSH,43.32,141.42,2\n"}
    out = _tables(tmp_path, files)
    built: list[str] = []
    real = engine._build_shared
    monkeypatch.setattr(engine, "_build_shared", lambda cur, name, sql: built.append(name) or real(cur, name, sql))
    runs = {}
    for hold in ("1000000", "0"):  # held in memory (each rule its own aggregate), and read from the files (one shared)
        monkeypatch.setenv("NORIBA_RULES_HOLD_ROWS", hold)
        built.clear()
        runs[hold] = run_rules(out, rules=rules, validation_date=date(2026, 6, 1), sample_limit=100)
        assert built.count("trip_facts") == (hold == "0")
    assert _answer(runs["0"]) == _answer(runs["1000000"])
    assert {c for c, _ in runs["0"].counts} >= {"unusable_trip", "unused_trip", "block_trips_with_overlapping_stop_times",
                                                 "trip_headsign_matches_intermediate_stop"}
