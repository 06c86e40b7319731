"""One transaction of the warehouse writer: what every publish step (GTFS, trips, on-demand, realtime, GBFS) shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, *, checkpoint: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction of ``con`` and yield ``con``.

    If the block ends normally, then COMMIT (and CHECKPOINT when ``checkpoint``, so readers' copies see a compact file);
    if it raises anything (an error, KeyboardInterrupt, a task killed by SIGTERM), then ROLLBACK and raise it again, so a
    reader sees the publish whole or not at all.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:  # the failure already ended the transaction
            pass
        raise
    con.execute("COMMIT")
    if checkpoint:
        con.execute("CHECKPOINT")
