"""The SQL engine of the contracts (warehouse/contracts_sql.py) gives GX's own records; GX stays the reference and the fallback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MINI_FEED, make_spec, shared, write_feed
from tests.warehouse.test_contracts import _rewrite

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("rule", "column_name", "kwargs", "success", "element_count", "unexpected_count", "unexpected_percent",
          "observed_value", "exception")
UNIQUE = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


def _ingest(home: Path, feed_id: str, source: Path):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    ws = Workspace(home).ensure()
    out = run_feed(make_spec(feed_id, source), ws, export=False, contracts=False)
    return ws, out["feed_version"]


def _both(ws, feed_id: str, version: str) -> dict:
    """Return {engine: {(table, expectation type, kwargs): row}} of one validation by each engine, asserting the same keys and order."""
    from warehouse.contracts import validate_version

    got, order = {}, {}
    for engine in ("sql", "gx"):
        rows, _ = validate_version(ws, feed_id, version, route="duckdb", engine=engine)
        order[engine] = [(r["table_name"], r["expectation_type"], r["kwargs"]) for r in rows]
        got[engine] = {k: r for k, r in zip(order[engine], rows)}
        assert len(got[engine]) == len(rows)
    assert order["sql"] == order["gx"]
    return got


def _assert_same_records(got: dict) -> int:
    """Assert that both engines stored the same record per expectation; return how many expectations failed."""
    sql, gx = got["sql"], got["gx"]
    for key, want in gx.items():
        have = sql[key]
        assert {f: have[f] for f in FIELDS} == {f: want[f] for f in FIELDS}, key
        values = [json.loads(r["partial_unexpected"]) if r["partial_unexpected"] else r["partial_unexpected"] for r in (have, want)]
        if key[1] in UNIQUE and values[1]:  # GX reads duplicates through a window: same rows, its own order
            if want["unexpected_count"] <= 20:
                assert sorted(map(json.dumps, values[0])) == sorted(map(json.dumps, values[1])), key
            else:
                assert len(values[0]) == len(values[1]) == 20, key
        else:
            assert values[0] == values[1], key
    return sum(not r["success"] for r in gx.values())


@pytest.mark.realdata
@pytest.mark.parametrize("feed", ["gtfs/jp/corpus-2019/feeds/kamacitybus190401.zip", "gtfs/jp/corpus-2019/feeds/133.zip",
                                  "gtfs/jp/mlit-sample-rinkobus", "gtfs/world/vilnius-2015/gtfs.zip"])
def test_the_sql_engine_stores_what_gx_stores_on_real_feeds(tmp_path, feed):
    ws, ver = _ingest(tmp_path / "home", "real", shared(*feed.split("/")))
    got = _both(ws, "real", ver)
    assert len(got["gx"]) > 100
    _assert_same_records(got)


#: Breaks of the kamacitybus corpus feed's partitions: (table, SELECT over the partition p).
BREAKS = [
    ("stops", "SELECT * REPLACE (CASE WHEN _line % 7 = 0 THEN stop_lat + 100 ELSE stop_lat END AS stop_lat, "
              "CASE WHEN _line % 5 = 0 THEN 9 ELSE location_type END AS location_type) FROM p "
              "UNION ALL SELECT * REPLACE (_line + 100000 AS _line) FROM p WHERE _line < 40"),  # 20+ duplicate stop_ids
    ("stop_times", "SELECT * REPLACE (CASE WHEN _line % 3 = 0 THEN 1 ELSE stop_sequence END AS stop_sequence, "
                   "CASE WHEN _line % 11 = 0 THEN NULL ELSE trip_id END AS trip_id, "
                   "CASE WHEN _line % 13 = 0 THEN arrival_time + 200000 ELSE arrival_time END AS arrival_time) FROM p"),
    ("calendar", "SELECT * REPLACE (CASE WHEN _line = 2 THEN DATE '1985-04-01' ELSE start_date END AS start_date) FROM p"),
    ("routes", "SELECT * EXCLUDE (route_desc) FROM p"),  # a missing column: GX describes it (column set, type error)
    ("trips", "SELECT * REPLACE (length(trip_headsign)::INTEGER AS trip_headsign) FROM p"),  # another type: GX says which
    ("agency", "SELECT * FROM p WHERE false"),  # an empty required table
]


@pytest.mark.realdata
def test_the_sql_engine_stores_what_gx_stores_on_a_real_feed_with_failing_expectations(tmp_path):
    from warehouse.contracts import run_contracts

    ws, ver = _ingest(tmp_path / "home", "broken", shared("gtfs", "jp", "corpus-2019", "feeds", "kamacitybus190401.zip"))
    for table, select in BREAKS:
        _rewrite(ws, "broken", ver, table, select)
    got = _both(ws, "broken", ver)
    failed = _assert_same_records(got)
    assert failed >= 10
    bad = {(k[0], r["rule"]) for k, r in got["gx"].items() if not r["success"]}
    assert {("stops", "latitude"), ("stops", "enum"), ("stops", "unique_key"), ("stop_times", "not_null"),
            ("stop_times", "unique_compound_key"), ("stop_times", "time_sanity"), ("calendar", "date_sanity"),
            ("routes", "columns"), ("trips", "type"), ("agency", "has_rows")} <= bad
    summary = run_contracts(ws, "broken", ver, data_docs=False, reuse=False)
    assert summary["engine"] == "sql" and summary["gx_imported"]  # GX evaluated only the mismatched columns and types
    assert summary["failed"] == failed


def test_an_expectation_the_sql_engine_does_not_support_is_left_to_gx():
    import duckdb

    from transforms.contracts import Contract
    from warehouse.contracts_sql import SUPPORTED, evaluate_table

    con = duckdb.connect()
    con.execute("CREATE VIEW t AS SELECT * FROM (VALUES (1, 'a'), (2, NULL), (2, 'c')) v(k, s)")
    regex = Contract("enum", "expect_column_values_to_match_regex", {"column": "s", "regex": "^a"})
    unique = Contract("unique_key", "expect_column_values_to_be_unique", {"column": "k"})
    missing = Contract("not_null", "expect_column_values_to_not_be_null", {"column": "gone"})
    got = evaluate_table(con, "t", [regex, unique, missing], {"k": "INTEGER", "s": "VARCHAR", "gone": "VARCHAR"})
    assert regex.expectation_type not in SUPPORTED
    assert got[0] is None and got[2] is None
    success, result = got[1]
    assert not success and (result["element_count"], result["unexpected_count"]) == (3, 2)
    assert result["partial_unexpected_list"] == [2, 2] and result["unexpected_percent"] == pytest.approx(200 / 3)


def test_an_ingest_whose_expectations_are_all_supported_does_not_import_gx(tmp_path):
    folder = write_feed(tmp_path / "in", MINI_FEED)
    code = ("import sys; from noriba.cli import main; "
            f"rc = main(['--home', {str(tmp_path / 'home')!r}, 'ingest', {str(folder)!r}, '--id', 'mini', '--quiet', '--no-export']); "
            "print(rc, 'great_expectations' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "NORIBA_CONTRACTS_ENGINE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.stdout.split()[-2:] == ["0", "False"], out.stderr
    stored = list((tmp_path / "home" / "reports" / "gx" / "validations").rglob("*.json"))
    assert len(stored) == 6  # one GX validation result per table, written for Data Docs
    assert not (tmp_path / "home" / "reports" / "data_docs").exists()  # rendered by `noriba docs`, not by the ingest


def test_noriba_docs_renders_gx_pages_from_the_results_the_sql_engine_stored(tmp_path):
    from noriba.cli import main

    home = tmp_path / "home"
    ws, ver = _ingest(home, "mini", write_feed(tmp_path / "in", MINI_FEED))
    from warehouse.contracts import run_contracts

    run_contracts(ws, "mini", ver, data_docs="later")
    assert main(["--home", str(home), "docs"]) == 0
    docs = home / "reports" / "data_docs"
    offline = (docs / "offline.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', offline)
    assert len(links) == 6 and all((docs / link).exists() for link in links)
    page = (docs / links[0]).read_text(encoding="utf-8")
    assert "mini@" in page and "expect" in page.lower()
    assert "gtfs.stop_times" in (docs / "index.html").read_text(encoding="utf-8")


def test_the_engine_is_chosen_by_argument_or_environment(tmp_path, monkeypatch):
    from warehouse.contracts import contracts_engine

    monkeypatch.delenv("NORIBA_CONTRACTS_ENGINE", raising=False)
    assert contracts_engine() == "sql" and contracts_engine("gx") == "gx"
    monkeypatch.setenv("NORIBA_CONTRACTS_ENGINE", "gx")
    assert contracts_engine() == "gx"
    monkeypatch.setenv("NORIBA_CONTRACTS_ENGINE", "spark")
    with pytest.raises(ValueError, match="unknown contracts engine NORIBA_CONTRACTS_ENGINE='spark'"):
        contracts_engine()


def test_a_run_whose_parse_deduplicated_the_keys_stores_the_same_results_without_counting_duplicates(tmp_path, monkeypatch):
    """run_feed passes the tables the parse deduplicated on their key (duplicates quarantined): their uniqueness
    expectations are answered without the GROUP BY, and the stored results are the ones a run without that knowledge stores."""
    import duckdb

    import transforms.rules.engine as engine
    from noriba.pipeline import run_feed
    from warehouse.contracts import run_contracts
    from warehouse.workspace import Workspace

    feed = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"] + MINI_FEED["stop_times.txt"].splitlines()[1] + "\n"}
    ws = Workspace(tmp_path / "h").ensure()
    ran: list[str] = []
    real = engine.execute_parsed
    monkeypatch.setattr(engine, "execute_parsed", lambda con, sql, *a, **k: (ran.append(sql), real(con, sql, *a, **k))[1])
    out = run_feed(make_spec("dup", write_feed(tmp_path / "f", feed)), ws, export=False)
    assert out["rows_quarantined"] >= 1  # the duplicate stop time
    stop_times = _counts_of("stop_times", ran)
    assert stop_times and not any("GROUP BY" in s for s in stop_times)

    def stored() -> list:
        con = duckdb.connect(str(ws.warehouse), read_only=True)
        try:
            cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'quality' "
                                              "AND table_name = 'expectation_results'").fetchall() if c not in ("run_at", "reused_from")]
            return [dict(zip(cols, r)) for r in con.execute(f"SELECT {', '.join(cols)} FROM quality.expectation_results ORDER BY ALL").fetchall()]
        finally:
            con.close()

    with_facts = stored()
    assert any(r["expectation_type"] == "expect_compound_columns_to_be_unique" and r["table_name"] == "stop_times" for r in with_facts)
    ran.clear()
    run_contracts(ws, "dup", out["feed_version"], data_docs=False, reuse=False)  # no facts: every duplicate counted
    assert any("GROUP BY" in s for s in _counts_of("stop_times", ran))
    assert stored() == with_facts


def _counting(statement: str) -> bool:
    """Return True if ``statement`` is one of the contracts' counting statements (one table's, or several side by side)."""
    return re.match(r"SELECT (\d+ AS _t, \[\()?count\(\*\)(?! OVER)", statement) is not None


def _counts_of(table: str, statements: list[str]) -> list[str]:
    """Return the SQL that counted ``table``'s contracts in ``statements``: a statement of its own, or its part of the
    statement that counts several tables side by side."""
    out = []
    for s in statements:
        if s.startswith("DESCRIBE"):
            continue
        out += [p for p in s.split(" UNION ALL ") if p.endswith(f'FROM "{table}"')]
    return out


def test_the_tables_of_a_small_version_are_counted_in_one_statement(tmp_path, monkeypatch):
    """A small version's tables are counted by one statement (each statement costs a few ms a feed), and the results are
    the ones of counting each table alone (ALONE_ROWS 0)."""
    import duckdb

    import transforms.rules.engine as engine
    import warehouse.contracts as contracts
    from noriba.pipeline import run_feed
    from warehouse.contracts import run_contracts
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path / "h").ensure()
    ran: list[str] = []
    real = engine.execute_parsed
    monkeypatch.setattr(engine, "execute_parsed", lambda con, sql, *a, **k: (ran.append(sql), real(con, sql, *a, **k))[1])
    out = run_feed(make_spec("one", write_feed(tmp_path / "f", MINI_FEED)), ws, export=False)
    counting = [s for s in ran if _counting(s)]
    assert len(counting) == 1 and len(_counts_of("stops", counting)) == 1 and len(_counts_of("stop_times", counting)) == 1

    def stored() -> list:
        con = duckdb.connect(str(ws.warehouse), read_only=True)
        try:
            cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'quality' "
                                              "AND table_name = 'expectation_results'").fetchall() if c not in ("run_at", "reused_from")]
            return con.execute(f"SELECT {', '.join(cols)} FROM quality.expectation_results ORDER BY ALL").fetchall()
        finally:
            con.close()

    together = stored()
    ran.clear()
    monkeypatch.setattr(contracts, "ALONE_ROWS", 0)
    run_contracts(ws, "one", out["feed_version"], data_docs=False, reuse=False)
    assert len([s for s in ran if _counting(s)]) >= 5  # each table alone
    assert stored() == together and len(together) > 20


def test_unique_key_answers_only_an_expectation_on_exactly_those_columns():
    import duckdb

    from transforms.contracts import Contract
    from warehouse.contracts_sql import evaluate_table

    con = duckdb.connect()
    con.execute("CREATE VIEW v AS SELECT * FROM (VALUES ('a', 1), ('a', 2), ('b', 1), ('b', 1), (NULL, 1)) t(g, n)")
    both = Contract("k", "expect_compound_columns_to_be_unique", {"column_list": ["g", "n"]})
    swapped = Contract("k", "expect_compound_columns_to_be_unique", {"column_list": ["n", "g"]})
    one = Contract("k", "expect_column_values_to_be_unique", {"column": "g"})
    types = {"g": "VARCHAR", "n": "INTEGER"}
    plain = evaluate_table(con, "v", [both, swapped, one], types)
    assert [r[1]["unexpected_count"] for r in plain] == [2, 2, 4]
    told = evaluate_table(con, "v", [both, swapped, one], types, unique_key=("g", "n"))
    assert [r[1]["unexpected_count"] for r in told] == [0, 2, 4]  # only the key's own expectation is taken as told
