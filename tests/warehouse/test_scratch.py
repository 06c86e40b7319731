"""The process's scratch DuckDB: cursors keep their TEMP views to themselves, and a forked child gets a database of its own."""

from __future__ import annotations

import os


def test_temp_views_of_one_cursor_are_not_seen_by_the_next():
    from warehouse import scratch

    a = scratch.cursor()
    a.execute("CREATE TEMP VIEW stops AS SELECT 1 AS x")
    assert a.execute("SELECT x FROM stops").fetchall() == [(1,)]
    b = scratch.cursor()
    b.execute("CREATE TEMP VIEW stops AS SELECT 2 AS x")  # no clash with a's
    assert b.execute("SELECT x FROM stops").fetchall() == [(2,)]
    a.close()
    b.close()
    c = scratch.cursor()
    try:
        assert c.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'stops'").fetchall() == [(0,)]
    finally:
        c.close()


def test_a_forked_child_queries_a_database_of_its_own():
    from warehouse import scratch

    scratch.cursor().close()  # the parent's database is open before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: DuckDB's threads were not forked, so the parent's database must not be used here
        try:
            cur = scratch.cursor()
            os.write(w, str(cur.execute("SELECT 40 + 2").fetchall()[0][0]).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 16) == b"42"
    finally:
        os.waitpid(pid, 0)
        os.close(r)
    cur = scratch.cursor()  # and the parent opens one again
    try:
        assert cur.execute("SELECT 1").fetchall() == [(1,)]
    finally:
        cur.close()
