"""Small Arrow tables from Python rows, without importing pandas.

pyarrow's ``Table.from_pylist`` and ``pa.array`` on Python objects import pandas on first use
(0.3 s cold), which is a third of a small feed's ingest. These few-row tables (notices found in
Python, quarantined rows, a version's metadata) are built through DuckDB instead.
"""

from __future__ import annotations

import atexit
import threading

import duckdb
import pyarrow as pa

from transforms.sql import q

_SQL = {pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN",
        pa.float64(): "DOUBLE", pa.binary(): "BLOB"}
_PY = ((bool, pa.bool_()), (int, pa.int64()), (float, pa.float64()), (str, pa.string()), (bytes, pa.binary()))

_LOCK = threading.Lock()
_CON: duckdb.DuckDBPyConnection | None = None  # one in-memory database for the process, opened on first use


def _close() -> None:
    """Close the process's database at exit, before the interpreter's teardown destroys it (DuckDB can abort the process
    then when the database was opened in another thread: duckdb/duckdb#13904)."""
    global _CON
    if not _LOCK.acquire(timeout=1):  # a daemon thread holds it at exit: leave the database as it is
        return
    try:
        con, _CON = _CON, None
    finally:
        _LOCK.release()
    if con is not None:
        con.close()


atexit.register(_close)


def infer_schema(row: dict) -> pa.Schema:
    """Return the schema of one row: bool, int64, float64, string or binary by value; None is a string."""
    def arrow_type(v):
        return next((t for py, t in _PY if isinstance(v, py)), pa.string())
    return pa.schema([(k, arrow_type(v)) for k, v in row.items()])


def rows_table(rows: list[dict], schema: pa.Schema | None = None) -> pa.Table:
    """Return ``rows`` as an Arrow table of ``schema`` (inferred from the first row when not given).

    A key missing from a row is null. If there are no rows and no schema, then the table is empty.
    """
    global _CON
    if schema is None:
        schema = infer_schema(rows[0]) if rows else pa.schema([])
    if not rows:
        return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)  # (empty_table imports pandas)
    cols = [[r.get(name) for r in rows] for name in schema.names]
    select = ", ".join(f"unnest(${i + 1}::{_SQL[f.type]}[]) AS {q(f.name)}" for i, f in enumerate(schema))
    with _LOCK:
        if _CON is None:  # opening a database costs ~10 ms; a cursor of this one, next to nothing
            _CON = duckdb.connect()
        cur = _CON.cursor()
    try:
        return cur.sql(f"SELECT {select}", params=cols).to_arrow_table().cast(schema)
    finally:
        cur.close()
