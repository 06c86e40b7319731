"""One in-memory DuckDB database per process, for the short read-only queries of each feed (report, contracts).

Opening a DuckDB database costs ~12 ms and closing it ~3 ms (its threads start and stop); a cursor of an open one
costs ~0.2 ms. A run of 87 small feeds opened two of them per feed. A cursor is a connection of its own: its TEMP
views and tables are its own and go when it is closed; objects it would create outside TEMP, ATTACHes and settings
(SET memory_limit, temp_directory) are the whole database's, so callers that need those open their own database.
The database is closed before the process forks (a forked child has none of DuckDB's threads) and opened again on
the next use.
"""

from __future__ import annotations

import atexit
import os
import threading

import duckdb

_db: duckdb.DuckDBPyConnection | None = None
_lock = threading.Lock()


def cursor() -> duckdb.DuckDBPyConnection:
    """Return a new connection (close it after use) to this process's in-memory scratch database."""
    global _db
    with _lock:
        if _db is None:
            _db = duckdb.connect()
        return _db.cursor()


def close() -> None:
    """Close the scratch database (cursors still open stop working); the next :func:`cursor` opens a new one."""
    global _db
    with _lock:
        db, _db = _db, None
    if db is not None:
        db.close()


os.register_at_fork(before=close)
atexit.register(close)  # closed before the interpreter's teardown (duckdb/duckdb#13904: an abort at exit)
