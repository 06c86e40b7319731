"""The stop_times pass: the table built in one pass is its SQL definition's, whatever the file's order and batch size."""

import itertools
import math

import duckdb
import numpy as np
import pytest

from tests.transforms.rules._feed_b import feed, found, run, tables
from tests.transforms.rules.test_stop_times import CASES, STOPS
from transforms.rules import engine, stop_times, stop_times_pass
from transforms.rules.engine import open_tables
from transforms.rules.stop_times import RULES

H = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled,timepoint\n"
#: Trips with untimed stops, a stop without coordinates (S99), a run of equal times, gaps in shape_dist_traveled, a trip
#: whose route is unknown (T3: R9) and one of a single stop (T4).
ROWS = [
    "T1,08:00:00,08:00:00,S1,1,0,", "T1,,,S2,2,,", "T1,08:05:00,08:05:00,S3,3,2000,", "T1,08:05:00,08:05:00,S4,4,1900,",
    "T1,08:05:00,08:05:00,S99,5,,", "T1,,,S6,6,,", "T1,08:05:00,08:05:00,S7,7,5000,", "T1,08:20:00,08:21:00,S20,8,,",
    "T2,,08:00:00,S5,10,,", "T2,08:01:00,08:01:00,S9,20,,", "T2,07:59:00,08:02:00,S10,30,,",
    "T3,09:00:00,09:00:00,S1,1,,", "T3,09:01:00,09:01:00,S8,2,,",
    "T4,10:00:00,10:00:00,S1,1,,",
]
TRIPS = "route_id,service_id,trip_id\nR1,WD,T1\nR1,WD,T2\nR9,WD,T3\nR1,WD,T4\n"


def _con(tmp_path, rows):
    files = feed(stop_times=H + "".join(r + "\n" for r in rows), stops=STOPS + "S99,座標なし,,,\n", trips=TRIPS)
    out, _ = tables(tmp_path, files)
    con, _ = open_tables(out)
    return con


def _built(con, batch_rows):
    stop_times_pass.build(con, "built", rows=stop_times._PASS_ROWS, located=stop_times._located(), routes=stop_times._TRIP_FACTS,
                          batch_rows=batch_rows)
    return _all_rows(con, "built")


def _defined(con):
    """Create ``defined`` and its side tables from their SQL definitions."""
    con.execute(f"CREATE TABLE defined AS {stop_times._pass_sql()}")
    for suffix in stop_times_pass.SIDES:
        con.execute(f"CREATE TABLE defined{suffix} AS {stop_times._side_sql(suffix)}")


def _all_rows(con, table):
    """Return the rows of ``table`` and of each of its side tables."""
    return [_rows(con, table)] + [_rows(con, table + suffix, stop_times_pass.SIDES[suffix]) for suffix in stop_times_pass.SIDES]


def _rows(con, table, columns=stop_times_pass.COLUMNS):
    """Return the rows by (trip_id, stop_sequence), positions as offsets (t_r - r), sums rounded to a micrometre."""
    cols = [c for c in columns if c not in ("r", "t_r", "cum_m", "trip_m")]
    more = [e for c, e in (("t_r", "t_r - r"), ("cum_m", "round(cum_m, 6)"), ("trip_m", "round(trip_m, 6)")) if c in columns]
    return con.sql(f"SELECT {', '.join(cols + more)} FROM {table} ORDER BY trip_id, stop_sequence").fetchall()


@pytest.mark.parametrize("batch_rows", [1, 3, 1 << 20])
def test_the_pass_is_its_sql_definition_across_batches(tmp_path, batch_rows):
    con = _con(tmp_path, ROWS)
    _defined(con)
    assert _built(con, batch_rows) == _all_rows(con, "defined")
    assert con.sql("SELECT count(*) FROM built").fetchall() == [(len(ROWS),)]


def test_the_pass_does_not_rely_on_duckdb_keeping_row_order(tmp_path):
    con = _con(tmp_path, ROWS)
    _defined(con)
    con.execute("SET preserve_insertion_order = false")
    try:
        assert _built(con, 4) == _all_rows(con, "defined")
    finally:
        con.execute("RESET preserve_insertion_order")


def test_rows_out_of_trip_order_are_sorted_first(tmp_path):
    shuffled = ROWS[8:] + ROWS[3:8] + ROWS[:3]  # T1 split in two and its rows out of stop_sequence order
    con = _con(tmp_path, shuffled)
    _defined(con)
    assert _built(con, 2) == _all_rows(con, "defined")
    # sorted: positions follow (trip_id, stop_sequence)
    assert con.sql("SELECT list(trip_id ORDER BY r) = list(trip_id ORDER BY trip_id, stop_sequence) FROM built").fetchall() == [(True,)]


def test_same_time_runs_and_previous_timed_stop(tmp_path):
    con = _con(tmp_path, ROWS)
    _built(con, 1 << 20)
    got = dict(con.sql("SELECT stop_sequence, (run, run_n, t_prev) FROM built WHERE trip_id = 'T1'").fetchall())
    # S3 (08:05) starts a run that S4, S99, S6 (untimed) and S7 continue; S2 (untimed) continues S1's run
    assert [got[s][:2] for s in range(1, 9)] == [(1, 2), (1, 2), (2, 5), (2, 5), (2, 5), (2, 5), (2, 5), (3, 1)]
    # the last stop time with both times before S3 is S1 and before S7 S99, not the previous one (untimed): the side
    # table _timed holds those two with their departures; the others but S1 have it just before them
    assert [s for s in range(1, 9) if got[s][2]] == [2, 4, 5, 6, 8]
    timed = con.sql("SELECT stop_sequence, t_dep, t_r - r FROM built_timed WHERE trip_id = 'T1' ORDER BY r").fetchall()
    assert timed == [(3, 8 * 3600, -2), (7, 8 * 3600 + 300, -2)]


def test_running_sum_adds_stop_by_stop_past_the_long_trip_cut(monkeypatch):
    rng = np.random.default_rng(7)
    lengths = np.array([1, 9, 3, 40, 2])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    values = rng.random(lengths.sum()) * 1000
    monkeypatch.setattr(stop_times_pass, "LONG_TRIP", 5)
    got = stop_times_pass._running_sum(values, starts, lengths)
    want = list(itertools.chain.from_iterable(itertools.accumulate(values[a:a + n].tolist()) for a, n in zip(starts, lengths)))
    assert got.tolist() == want  # bit for bit: the same additions in the same order
    assert not math.isnan(got.sum())


def _sql_pass(cur: duckdb.DuckDBPyConnection, table: str, **_) -> None:
    cur.execute(f"CREATE TABLE {table} AS {stop_times._pass_sql()}")
    for suffix in stop_times_pass.SIDES:
        cur.execute(f"CREATE TABLE {table}{suffix} AS {stop_times._side_sql(suffix)}")


@pytest.mark.parametrize("code,bad,good,named", CASES, ids=[c[0] for c in CASES])
def test_each_rule_finds_the_same_on_the_pass_and_on_its_sql_definition(tmp_path, monkeypatch, code, bad, good, named):
    for name, files in (("bad", feed(**bad)), ("good", feed(**good))):
        fast = run(tmp_path / f"{name}-pass", files, RULES)
        with monkeypatch.context() as m:
            m.setattr(stop_times_pass, "build", _sql_pass)
            slow = run(tmp_path / f"{name}-sql", files, RULES)
        assert fast.counts == slow.counts
        assert found(fast, code) == found(slow, code)
        assert fast.notices.to_pylist() == slow.notices.to_pylist()


def test_the_pass_is_built_once_and_dropped(tmp_path):
    out, _ = tables(tmp_path, feed(**CASES[0][1]))
    calls = []
    real = stop_times_pass.build

    def counted(cur, table, **kw):
        calls.append(table)
        real(cur, table, **kw)

    orig = stop_times_pass.build
    stop_times_pass.build = counted
    try:
        con = duckdb.connect()
        engine.run_rules(out, rules=RULES, con=con)
    finally:
        stop_times_pass.build = orig
    assert calls == ["_shared_stop_pass"]
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_shared_%'").fetchall() == [(0,)]


@pytest.mark.parametrize("batch_rows", [1, 3, 1 << 20])
def test_first_visit_marks_a_trips_first_call_at_each_located_stop(tmp_path, batch_rows):
    rows = ["T1,08:00:00,08:00:00,S1,1,,", "T1,08:05:00,08:05:00,S99,2,,", "T1,08:10:00,08:10:00,S1,3,,",
            "T1,08:15:00,08:15:00,S99,4,,", "T1,08:20:00,08:20:00,S3,5,,", "T2,09:00:00,09:00:00,S1,1,,",
            "T2,09:10:00,09:10:00,S3,2,,", "T2,09:20:00,09:20:00,S1,3,,"]
    con = _con(tmp_path, rows)
    _defined(con)
    assert _built(con, batch_rows) == _all_rows(con, "defined")
    assert con.sql("SELECT first_visit FROM built ORDER BY trip_id, stop_sequence").fetchall() == [
        (True,), (None,), (False,), (None,), (True,), (True,), (True,), (False,)]


def test_first_rows_is_index_in_looked_up_the_other_way_round():
    import random

    import pyarrow as pa
    import pyarrow.compute as pc

    rnd = random.Random(7)
    for _ in range(200):  # keys repeat (the first position counts), ids repeat and are NULL or absent
        keys = pa.array([f"t{rnd.randrange(30)}" for _ in range(rnd.randrange(0, 60))], pa.string())
        ids = pa.array([None if rnd.random() < 0.1 else f"t{rnd.randrange(45)}" for _ in range(rnd.randrange(0, 30))], pa.string())
        want = [-1 if v is None else v for v in pc.index_in(ids, value_set=keys, skip_nulls=True).to_pylist()]
        assert stop_times_pass._first_rows(ids, keys).tolist() == want


def test_the_figures_one_rule_reads_are_kept_only_on_the_rows_it_can_report(tmp_path):
    con = _con(tmp_path, ROWS)
    _built(con, 3)
    wide = {"shape_dist_traveled", "prev_dep", "prev_dep_seq", "prev_dist", "prev_dist_seq", "t_r", "t_dep", "t_located", "t_m"}
    assert not wide & {c for (c,) in con.sql("SELECT column_name FROM duckdb_columns() WHERE table_name = 'built'").fetchall()}
    # T2 arrives at 30 (07:59) before it left 20 (08:01); T1's S4 (1900) is not beyond S3's 2000; S3 and S7 of T1 are the
    # stop times whose last timed stop time is not the previous one
    assert con.sql("SELECT trip_id, stop_sequence, prev_dep_seq FROM built_back").fetchall() == [("T2", 30, 20)]
    assert con.sql("SELECT trip_id, stop_sequence, prev_dist, prev_dist_seq FROM built_dist").fetchall() == [("T1", 4, 2000.0, 3)]
    assert con.sql("SELECT trip_id, stop_sequence FROM built_timed ORDER BY r").fetchall() == [("T1", 3), ("T1", 7)]


def test_side_tables_whose_rule_did_not_run_are_dropped(tmp_path):
    out, _ = tables(tmp_path, feed(**CASES[0][1]))
    con = duckdb.connect()
    only = [r for r in RULES if r.code == "fast_travel_between_consecutive_stops"]  # reads the pass, no side table
    engine.run_rules(out, rules=only, con=con)
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%stop_pass%'").fetchall() == [(0,)]


def test_each_pair_of_stops_is_measured_once_and_every_leg_has_its_distance(tmp_path, monkeypatch):
    # T1 and T5 call at S1, S3, S4 in turn: their legs are two pairs of stops; S99 has no coordinates (a leg of 0 m)
    rows = ["T1,08:00:00,08:00:00,S1,1,,", "T1,08:05:00,08:05:00,S3,2,,", "T1,08:09:00,08:09:00,S4,3,,",
            "T1,08:10:00,08:10:00,S99,4,,", "T5,09:00:00,09:00:00,S1,1,,", "T5,09:05:00,09:05:00,S3,2,,",
            "T5,09:09:00,09:09:00,S4,3,,", "T3,09:00:00,09:00:00,S4,1,,", "T3,09:01:00,09:01:00,S3,2,,"]
    con = _con(tmp_path, rows)
    measured: list[int] = []
    real = stop_times_pass._by_k
    monkeypatch.setattr(stop_times_pass, "_by_k", lambda cur, x, sql, n: measured.append(x.num_rows) or real(cur, x, sql, n))
    _defined(con)
    assert _built(con, 1 << 20) == _all_rows(con, "defined")
    # the last trip goes on with the next batch: T1 and T5 (S1-S3, S3-S4: 2 pairs for 4 legs), then T3 (S4-S3)
    assert measured == [2, 1]
    legs = dict(con.sql("SELECT trip_id || ':' || stop_sequence, leg_m FROM built").fetchall())
    assert legs["T1:2"] == legs["T5:2"] > 0 and legs["T1:3"] == legs["T5:3"] > 0 and legs["T1:4"] == 0 and legs["T1:1"] == 0
