"""Contracts run on a published version: the right expectation fails, results land in the warehouse, Data Docs are written."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import MINI_FEED, make_spec, shared, write_feed

ROUTES = ("duckdb", "pandas")


def _ingest(home: Path, feed_id: str, files: dict[str, str] | Path):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    ws = Workspace(home).ensure()
    folder = files if isinstance(files, Path) else write_feed(home.parent / f"{feed_id}-input", files)
    out = run_feed(make_spec(feed_id, folder), ws, export=False)
    return ws, out["feed_version"]


def _rewrite(ws, feed_id: str, version: str, table: str, select: str) -> None:
    """Replace a lake partition by ``select`` over it (``p`` is the partition): a pipeline bug the contracts must catch."""
    part = ws.lake_partition(f"gtfs_{table}", feed_id, version) / "part-0.parquet"
    tmp = part.with_name("new.parquet")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW p AS SELECT * FROM read_parquet('{part}', hive_partitioning=false)")
    con.execute(f"COPY ({select}) TO '{tmp}' (FORMAT parquet)")
    con.close()
    tmp.replace(part)


def _failed(ws, feed_id: str, version: str) -> set[tuple[str, str, str]]:
    from warehouse.publish import connect

    con = connect(ws, read_only=True)
    try:
        return set(con.sql(
            "SELECT table_name, rule, column_name FROM quality.expectation_results "
            f"WHERE feed_id = '{feed_id}' AND feed_version = '{version}' AND NOT success").fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return _ingest(tmp_path_factory.mktemp("contracts") / "home", "mini", MINI_FEED)


@pytest.mark.parametrize("route", ROUTES)
def test_a_clean_version_meets_every_contract(mini, route):
    from transforms.contracts import table_contracts
    from transforms.schema import load_schema
    from warehouse.contracts import run_contracts

    ws, ver = mini
    got = run_contracts(ws, "mini", ver, route=route, data_docs=False)
    tables = {"agency", "stops", "routes", "trips", "stop_times", "calendar"}
    assert got["route"] == route
    assert (got["suites"], got["failed"], got["errors"]) == (len(tables), 0, 0)
    schema = load_schema()
    assert got["expectations"] == sum(len(table_contracts(schema.tables[t], engine="sql")) for t in tables)
    assert got["message"] == f"mini@{ver}: all {got['expectations']} contract checks passed"


def test_results_land_in_the_warehouse_and_a_rerun_replaces_them(mini):
    from warehouse.contracts import RESULT_COLUMNS, run_contracts
    from warehouse.publish import connect

    ws, ver = mini
    first = run_contracts(ws, "mini", ver, data_docs=False)
    second = run_contracts(ws, "mini", ver, data_docs=False)
    con = connect(ws, read_only=True)
    try:
        cols = [r[0] for r in con.sql("DESCRIBE quality.expectation_results").fetchall()]
        rows = con.sql(f"SELECT table_name, rule, expectation_type, column_name, success, element_count, run_at, route "
                       f"FROM quality.expectation_results WHERE feed_id = 'mini' AND feed_version = '{ver}'").fetchall()
        published = con.sql(f"SELECT count(*) FROM gtfs.stop_times WHERE feed_id = 'mini' AND feed_version = '{ver}'").fetchall()[0][0]
    finally:
        con.close()
    assert cols == [c for c, _ in RESULT_COLUMNS]
    assert len(rows) == first["expectations"] == second["expectations"]
    assert {r[6] for r in rows} == {r[6] for r in rows[:1]}  # only the latest run is kept
    assert {r[7] for r in rows} == {"duckdb"}  # auto = the DuckDB route
    not_null_line = [r for r in rows if r[0] == "stop_times" and r[1] == "not_null" and r[3] == "_line"]
    assert [r[5] for r in not_null_line] == [published] == [2]
    assert ("stops", "latitude", "expect_column_values_to_be_between", "stop_lat", True) in {r[:5] for r in rows}


def test_the_duckdb_route_reads_the_warehouse_like_the_lake(mini):
    from warehouse.contracts import validate_version

    ws, ver = mini
    got = {}
    for source in ("lake", "warehouse"):
        rows, _ = validate_version(ws, "mini", ver, route="duckdb", source=source)
        assert {r["source"] for r in rows} == {source}
        got[source] = [(r["table_name"], r["rule"], r["column_name"], r["success"], r["element_count"], r["observed_value"])
                       for r in rows]
    assert got["warehouse"] == got["lake"] and len(got["lake"]) > 100
    assert ("stop_times", "not_null", "_line", True, 2, None) in got["warehouse"]
    with pytest.raises(ValueError, match="the pandas route the lake"):
        validate_version(ws, "mini", ver, route="pandas", source="warehouse")


def test_data_docs_index_is_written_under_reports(mini):
    from warehouse.contracts import run_contracts

    ws, ver = mini
    run_contracts(ws, "mini", ver, route="duckdb", data_docs=False)  # stored by GX, not rendered yet
    got = run_contracts(ws, "mini", ver, route="pandas")
    index = ws.reports / "data_docs" / "index.html"
    assert got["data_docs"] == str(index) and index.exists()
    html = index.read_text(encoding="utf-8")
    assert "gtfs.stop_times" in html and f"mini@{ver}" in html
    pages = list((ws.reports / "data_docs" / "validations" / "gtfs").rglob("*.html"))
    assert any("stop_times" in str(p) for p in pages)
    offline = (ws.reports / "data_docs" / "offline.html").read_text(encoding="utf-8")
    assert "<script" not in offline and f"mini@{ver}" in offline
    links = re.findall(r'href="([^"]+)"', offline)
    assert all((ws.reports / "data_docs" / link).exists() for link in links)
    assert {link for link in links if "-duckdb-" in link} and {link for link in links if "-pandas-" in link}
    assert len(links) == len(list((ws.reports / "gx" / "validations").rglob("*.json")))  # every stored run has its page


CASES = {
    # case: (table to break, SELECT over the partition p, expected failures (table, rule, column))
    "null_key": ("stop_times", "SELECT * REPLACE (CASE WHEN stop_sequence = 2 THEN NULL ELSE trip_id END AS trip_id) FROM p",
                 {("stop_times", "not_null", "trip_id")}),
    "duplicate_key": ("stops", "SELECT * FROM p UNION ALL SELECT * REPLACE (_line + 10 AS _line) FROM p WHERE stop_id = 'S1'",
                      {("stops", "unique_key", "stop_id")}),
    "duplicate_compound_key": ("stop_times", "SELECT * REPLACE (1 AS stop_sequence) FROM p",
                               {("stop_times", "unique_compound_key", "trip_id,stop_sequence")}),
    "wrong_type": ("stops", "SELECT * REPLACE (length(stop_name)::INTEGER AS stop_name) FROM p", {("stops", "type", "stop_name")}),
    "empty_required_table": ("routes", "SELECT * FROM p WHERE false", {("routes", "has_rows", None)}),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_partition_fails_the_right_expectation(tmp_path, case, route):
    from warehouse.contracts import run_contracts

    table, select, expected = CASES[case]
    ws, ver = _ingest(tmp_path / "home", "mini", MINI_FEED)
    _rewrite(ws, "mini", ver, table, select)
    got = run_contracts(ws, "mini", ver, route=route, data_docs=False)
    assert _failed(ws, "mini", ver) == expected
    assert got["failed"] == len(expected) and got["failed_by_table"] == {table: len(expected)}
    assert f": {len(expected)} of {got['expectations']} contract checks failed ({table}: {len(expected)})" in got["message"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_missing_column_fails_the_column_set_and_records_why_its_type_could_not_be_checked(tmp_path, route):
    from warehouse.contracts import run_contracts
    from warehouse.publish import connect

    ws, ver = _ingest(tmp_path / "home", "mini", MINI_FEED)
    _rewrite(ws, "mini", ver, "stops", "SELECT * EXCLUDE (stop_code) FROM p")
    got = run_contracts(ws, "mini", ver, route=route, data_docs=False)
    assert _failed(ws, "mini", ver) == {("stops", "columns", None), ("stops", "type", "stop_code")}
    con = connect(ws, read_only=True)
    try:
        [(observed, exception)] = con.sql("SELECT observed_value, exception FROM quality.expectation_results "
                                          "WHERE rule = 'columns' AND NOT success").fetchall()
        [type_exception] = con.sql("SELECT exception FROM quality.expectation_results "
                                   "WHERE rule = 'type' AND column_name = 'stop_code'").fetchall()[0]
    finally:
        con.close()
    assert exception is None and "stop_code" not in observed
    assert type_exception  # GX could not evaluate it: the message is kept
    assert got["errors"] >= 1


@pytest.mark.parametrize("route", ROUTES)
def test_out_of_range_coordinates_times_and_dates_from_the_input_fail_their_contracts(tmp_path, route):
    from warehouse.contracts import run_contracts
    from warehouse.publish import connect

    files = dict(MINI_FEED)
    files["stops.txt"] = "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,95.5,141.40\nS2,駅前,43.31,-181\n"
    files["stop_times.txt"] = ("trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                               "T1,08:00:00,08:00:00,S1,1\nT1,47:59:59,48:00:01,S2,2\n")
    files["calendar.txt"] = ("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                             "WD,1,1,1,1,1,0,0,19850401,20991231\n")
    ws, ver = _ingest(tmp_path / "home", "bad", files)
    run_contracts(ws, "bad", ver, route=route, data_docs=False)
    assert _failed(ws, "bad", ver) == {("stops", "latitude", "stop_lat"), ("stops", "longitude", "stop_lon"),
                                       ("stop_times", "time_sanity", "departure_time"), ("calendar", "date_sanity", "start_date")}
    con = connect(ws, read_only=True)
    try:
        got = con.sql("SELECT column_name, unexpected_count, partial_unexpected FROM quality.expectation_results "
                      "WHERE NOT success ORDER BY column_name").fetchall()
    finally:
        con.close()
    assert got == [("departure_time", 1, "[172801]"), ("start_date", 1, '["1985-04-01"]'),
                   ("stop_lat", 1, "[95.5]"), ("stop_lon", 1, "[-181.0]")]


def test_an_unknown_route_or_version_is_refused(mini):
    from warehouse.contracts import run_contracts

    ws, ver = mini
    with pytest.raises(ValueError, match="unknown contracts route 'spark'"):
        run_contracts(ws, "mini", ver, route="spark")
    with pytest.raises(ValueError, match="mini: no version 0000 in the lake"):
        run_contracts(ws, "mini", "0000")


@pytest.mark.realdata
def test_both_routes_agree_on_a_real_gtfs_jp_feed(tmp_path):
    from warehouse.contracts import run_contracts, version_tables
    from warehouse.publish import connect

    ws, ver = _ingest(tmp_path / "home", "rinkobus", shared("gtfs/jp/mlit-sample-rinkobus"))
    results = {}
    for route in ROUTES:
        got = run_contracts(ws, "rinkobus", ver, route=route, data_docs=route == "duckdb")
        assert got["errors"] == 0
        con = connect(ws, read_only=True)
        try:
            results[route] = {(t, r, c, ty): (s, n, u) for t, r, c, ty, s, n, u in con.sql(
                "SELECT table_name, rule, column_name, expectation_type, success, element_count, unexpected_count "
                "FROM quality.expectation_results WHERE rule <> 'type'").fetchall()}
            counts = {t: con.sql(f"SELECT count(*) FROM gtfs.{t} WHERE feed_id = 'rinkobus'").fetchall()[0][0]
                      for t in ("stops", "stop_times", "fare_rules", "calendar_dates", "agency_jp")}
            types_ok = con.sql("SELECT bool_and(success) FROM quality.expectation_results WHERE rule = 'type'").fetchall()[0][0]
        finally:
            con.close()
        assert types_ok, f"{route}: every canonical column has its type"
        assert {t for t, *_ in results[route]} == {t.name for t, _ in version_tables(ws, "rinkobus", ver)}
        for t, n in counts.items():
            assert results[route][(t, "not_null", "_line", "expect_column_values_to_not_be_null")][1] == n > 0
    assert results["duckdb"] == results["pandas"]
    assert (ws.reports / "data_docs" / "index.html").exists()


@pytest.mark.realdata
def test_a_real_single_agency_feed_without_agency_id_meets_its_contract(tmp_path):
    from warehouse.contracts import run_contracts

    ws, ver = _ingest(tmp_path / "home", "cairns", shared("gtfs/world/cairns-2014/cairns_gtfs.zip"))
    got = run_contracts(ws, "cairns", ver, data_docs=False)
    assert (got["failed"], got["errors"]) == (0, 0) and got["suites"] >= 7
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.sql("SELECT count(*) FROM gtfs.agency WHERE agency_id IS NULL").fetchall()[0][0] == 1
    finally:
        con.close()


# --- the GX-on-DuckDB workaround (warehouse/gx_duckdb.py): these fail when GX or the lock changes under it ---


def test_gx_still_fetches_after_closing_the_connection_so_duckdb_needs_a_static_pool(tmp_path):
    import sqlalchemy as sa
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    from warehouse.gx_duckdb import file_url

    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT range AS n FROM range(5)")
    con.close()
    plain = SqlAlchemyExecutionEngine(connection_string=file_url(db), poolclass=sa.pool.NullPool)
    try:
        with pytest.raises(sa.exc.ProgrammingError, match="No open result set"):
            plain.execute_query(sa.text("SELECT count(*) FROM t")).fetchall()
    finally:
        plain.engine.dispose()
    # If the line above stops raising, GX now fetches before it closes: the StaticPool in gx_duckdb can go.
    fixed = SqlAlchemyExecutionEngine(connection_string=file_url(db))
    try:
        assert fixed.execute_query(sa.text("SELECT count(*) FROM t")).fetchall() == [(5,)]
        assert [(c["name"], type(c["type"]).__name__) for c in fixed.get_inspector().get_columns("t")] == [("n", "BIGINT")]
    finally:
        fixed.engine.dispose()


def test_engines_on_one_memory_url_share_the_database_and_reflect_duckdb_types():
    import sqlalchemy as sa

    from warehouse.gx_duckdb import memory_url

    url = memory_url()
    a, b = sa.create_engine(url), sa.create_engine(url)
    try:
        with a.connect() as c:
            c.exec_driver_sql("CREATE VIEW v AS SELECT 1::INTEGER AS i, 1.5::DOUBLE AS x, DATE '2026-04-01' AS d, 'み' AS s")
        with b.connect() as c:
            assert c.exec_driver_sql("SELECT s, d FROM v").fetchall() == [("み", dt.date(2026, 4, 1))]
        cols = sa.inspect(b).get_columns("v")
        assert [(c["name"], type(c["type"]).__name__) for c in cols] == [
            ("i", "INTEGER"), ("x", "DOUBLE"), ("d", "DATE"), ("s", "VARCHAR")]
        assert sa.inspect(b).get_view_names() == ["v"] and sa.inspect(b).has_table("v")
    finally:
        a.dispose()
        b.dispose()
    assert memory_url() != url


def test_gx_has_no_duckdb_dialect_and_the_lock_has_no_duckdb_engine():
    import sqlalchemy as sa
    from great_expectations.execution_engine.sqlalchemy_dialect import GXSqlDialect

    # If GX learns DuckDB, or duckdb-engine enters the lock, review warehouse/gx_duckdb.py: it may be replaceable.
    assert "duckdb" not in GXSqlDialect.get_all_dialect_names()
    with pytest.raises(sa.exc.NoSuchModuleError):
        sa.create_engine("duckdb:///:memory:")


def test_a_run_of_many_feeds_asked_for_data_docs_renders_every_feeds_pages_once_at_the_end(tmp_path):
    from noriba.cli import main

    specs = tmp_path / "specs" / "feeds"
    specs.mkdir(parents=True)
    for fid in ("one", "two"):
        folder = write_feed(tmp_path / f"{fid}-input", MINI_FEED)
        (specs / f"{fid}.yaml").write_text(f"id: {fid}\nkind: gtfs\ntimezone: UTC\nsource:\n  path: {folder}\n", encoding="utf-8")
    home = tmp_path / "home"
    assert main(["--home", str(home), "run", "--specs", str(tmp_path / "specs"), "--quiet", "--no-export"]) == 0
    docs = home / "reports" / "data_docs"
    assert not docs.exists()  # not asked: `noriba docs` renders them
    assert main(["--home", str(home), "run", "--specs", str(tmp_path / "specs"), "--quiet", "--no-export", "--data-docs"]) == 0
    offline = (docs / "offline.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', offline)
    assert len(links) == len(list((home / "reports" / "gx" / "validations").rglob("*.json"))) > 0  # every run has its page
    assert all((docs / link).exists() for link in links)
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert "one@" in index and "two@" in index


def test_a_rerun_of_an_unchanged_version_reuses_the_gx_results_and_a_changed_table_is_checked_again(tmp_path):
    from warehouse.contracts import run_contracts

    ws, ver = _ingest(tmp_path / "home", "same", MINI_FEED)  # the ingest ran GX on every table
    first = run_contracts(ws, "same", ver, data_docs=False, reuse=False)
    again = run_contracts(ws, "same", ver, data_docs=False)
    assert (again["reused"], again["expectations"], again["failed"]) == (again["suites"], first["expectations"], 0)
    _rewrite(ws, "same", ver, "stops", "SELECT * REPLACE (CAST(200 AS DOUBLE) AS stop_lat) FROM p")
    changed = run_contracts(ws, "same", ver, data_docs=False)
    assert changed["reused"] == again["suites"] - 1  # only stops went through GX again
    assert _failed(ws, "same", ver) == {("stops", "latitude", "stop_lat")}
    from warehouse.publish import connect

    con = connect(ws, read_only=True)
    try:
        reused_from = dict(con.sql("SELECT table_name, any_value(reused_from) FROM quality.expectation_results "
                                   f"WHERE feed_id = 'same' AND feed_version = '{ver}' GROUP BY 1").fetchall())
    finally:
        con.close()
    assert reused_from["stops"] is None and reused_from["trips"] == f"same@{ver}"


def test_a_new_version_that_changes_one_file_runs_gx_only_on_that_table(tmp_path):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path / "home").ensure()
    first = run_feed(make_spec("f", write_feed(tmp_path / "a", MINI_FEED)), ws, export=False)
    calendar = MINI_FEED["calendar.txt"].rstrip("\n").split("\n")
    extra = "EXTRA," + calendar[-1].split(",", 1)[1]  # one more service: only the calendar partition changes
    changed = {**MINI_FEED, "calendar.txt": "\n".join([*calendar, extra]) + "\n"}
    second = run_feed(make_spec("f", write_feed(tmp_path / "b", changed)), ws, export=False)
    assert second["feed_version"] != first["feed_version"]
    assert (first["contracts"]["reused"], second["contracts"]["reused"]) == (0, second["contracts"]["suites"] - 1)
    assert second["contracts"]["expectations"] == first["contracts"]["expectations"]


def test_stored_results_keep_every_value_as_given_japanese_text_and_floats_json_cannot_hold_included(mini):
    from warehouse.contracts import RESULT_COLUMNS, store_results
    from warehouse.publish import connect

    ws, ver = mini
    base = {c: None for c, _ in RESULT_COLUMNS} | {"feed_id": "mini", "feed_version": ver, "table_name": "stops", "suite": "stops",
                                                  "expectation_type": "expect_column_values_to_not_be_null", "success": False,
                                                  "route": "duckdb", "source": "lake", "run_at": "2026-12-07T00:00:00+00:00"}
    rows = [base | {"rule": "a", "column_name": "stop_name", "element_count": 2**53 + 1, "unexpected_count": 0,
                    "unexpected_percent": 0.1 + 0.2, "observed_value": '"港前\\u3000駅"', "partial_unexpected": '["丘の上", "\\"q\\""]'},
            base | {"rule": "b", "unexpected_percent": float("nan"), "exception": "ゼロ除算 ÷ 0"},
            base | {"rule": "c", "unexpected_percent": 1e-300, "kwargs": '{"mostly": 0.95}', "success": True},
            base | {"rule": "d", "unexpected_percent": float("inf")}]
    store_results(ws, "mini", ver, rows)
    con = connect(ws, read_only=True)
    try:
        got = con.execute("SELECT * FROM quality.expectation_results WHERE feed_id = 'mini' AND feed_version = ? ORDER BY rule",
                          [ver]).fetchall()
        names = [d[0] for d in con.description]
    finally:
        con.close()
    got = [dict(zip(names, r)) for r in got]
    assert [r["rule"] for r in got] == ["a", "b", "c", "d"]
    for want, have in zip(rows, got):
        for c, _ in RESULT_COLUMNS:
            w, h = want[c], have[c]
            if isinstance(w, float) and w != w:
                assert h != h, c
            else:
                assert h == w and type(h) is type(w), (c, w, h)
