"""Publish: the single writer that moves a feed version from the lake into the DuckDB file.

One transaction per version: if anything fails (or the process dies) before COMMIT, the
warehouse keeps its previous state. A file lock makes concurrent publishers wait in turn.

Readers never meet the writer. The writer has its own file, ``NORIBA_HOME/writer/noriba.duckdb``;
what analysts and every reader open is ``NORIBA_HOME/noriba.duckdb`` (``ws.warehouse``), a copy of
the writer's file that is never written in place: when the publish lock is released after a
write, a fresh copy is made beside it (``.noriba.duckdb.tmp-<id>``, fsynced) and renamed over it
(``os.replace``). A reader that opens it gets the last committed state at once, a whole file
(the old one or the new one, never a half publish), and a reader that keeps it open never holds
up a writer. ``writer/.snapshot-pending`` is made before the writer's file is opened for writing
and removed after the rename, so a process killed in between leaves it, and the next holder of
the publish lock (a rerun) replaces the copy first.

Bounded staleness: inside :func:`deferred_snapshots` (``run_feed`` holds one for a feed's steps, so
its publish and its contracts make one copy, not two; ``noriba run`` of several specs holds one
with ``every=RUN_SNAPSHOT_EVERY`` seconds) releasing the lock copies only when the block's interval
has passed, and the block's end copies what is left. So readers see a feed's publish at the end of
its run, and during a multi-feed run at most ``RUN_SNAPSHOT_EVERY`` seconds late; a reader in the
deferring thread (``connect(read_only=True)``) gets a fresh copy first. A kill leaves the marker as
before. The first copy of a workspace is never deferred.

Why a file copy: DuckDB's ``COPY FROM DATABASE`` into a new file was 65-76x slower (it re-encodes
every row); a reflink (FICLONE) is tried first and costs nothing where the file system has them;
DuckLake would let readers see commits without a copy, but this DuckDB has no ducklake extension
offline. Figures in bench/README.md.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from warehouse.txn import transaction
from warehouse.workspace import Workspace
from transforms.schema import load_schema
from transforms.sql import lit, q
from warehouse.runstate import fault_point, in_thread

NOTICE_COLUMNS = "code VARCHAR, severity VARCHAR, file VARCHAR, line BIGINT, field VARCHAR, value VARCHAR, message VARCHAR"
QUARANTINE_COLUMNS = "file VARCHAR, line BIGINT, code VARCHAR, reason VARCHAR, raw VARCHAR"
FEED_VERSION_COLUMNS = (
    "feed_version VARCHAR, content_sha256 VARCHAR, source_sha256 VARCHAR, source VARCHAR, raw_path VARCHAR, "
    "fetched_at VARCHAR, ingested_at VARCHAR, kind VARCHAR, profile VARCHAR, service_start VARCHAR, service_end VARCHAR, "
    "files VARCHAR, tables VARCHAR, rows_in BIGINT, rows_accepted BIGINT, rows_quarantined BIGINT, errors BIGINT, "
    "warnings BIGINT, infos BIGINT, notice_codes VARCHAR, validation_date VARCHAR, spec VARCHAR, "
    "notice_counts VARCHAR, policy_status VARCHAR, blocked_by VARCHAR, policy VARCHAR"
)

#: Test hook: when set to a table name, the process dies right after loading that table, mid-transaction.
CRASH_ENV = "NORIBA_TEST_CRASH_DURING_PUBLISH"


#: The writer's threads that hold the publish lock now, by writer file (so their reads see their own writes).
_held = threading.local()


def writer_path(ws: Workspace) -> Path:
    """Return the writer's own DuckDB file, ``writer/noriba.duckdb`` beside the published one; only publish opens it."""
    return ws.warehouse.parent / "writer" / ws.warehouse.name


def _pending(ws: Workspace) -> Path:
    return writer_path(ws).parent / ".snapshot-pending"


def _holds_lock(ws: Workspace) -> bool:
    return str(writer_path(ws)) in getattr(_held, "files", ())


@contextmanager
def publish_lock(ws: Workspace):
    """Hold the single-writer lock of the warehouse for the block; other writers wait for it, readers never do.

    If the writer's file was opened for writing (now or by a run killed before its copy was
    published), then the published copy is replaced before the lock is released.
    """
    ws.home.mkdir(parents=True, exist_ok=True)
    key = str(writer_path(ws))
    if key in getattr(_held, "files", ()):  # this thread holds it already (a writer_session): the outer block releases it
        yield
        return
    with open(ws.home / ".publish.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        files = _held.__dict__.setdefault("files", set())
        files.add(key)
        try:
            yield
        except BaseException:
            try:  # what was committed before the error is still published; the error is the one that counts
                if _pending(ws).exists() and _copy_due(ws):
                    _snapshot_now(ws)
            except Exception:
                pass  # the marker stays: the next writer publishes the copy
            raise
        else:
            if _pending(ws).exists() and _copy_due(ws):
                _snapshot_now(ws)
        finally:
            files.discard(key)
            fcntl.flock(fh, fcntl.LOCK_UN)


#: Seconds between copies of the published file during one ``noriba run`` of several specs (plus one at its end).
RUN_SNAPSHOT_EVERY = 30.0

#: This thread's deferral blocks, by writer file: [seconds between copies or None (only at the end), time of the last copy].
_deferred = threading.local()


def _deferral(ws: Workspace) -> list | None:
    return getattr(_deferred, "blocks", {}).get(str(writer_path(ws)))


def _copy_due(ws: Workspace) -> bool:
    """Return True if releasing the publish lock should replace the published copy now: no deferral block in this thread,
    no published copy yet, or the block's interval has passed since its last copy."""
    block = _deferral(ws)
    if block is None or not ws.warehouse.exists():
        return True
    return block[0] is not None and time.monotonic() - block[1] >= block[0]


def _snapshot_now(ws: Workspace) -> dict:
    """Return publish_snapshot's figures, noting the time of the copy for this thread's deferral block. Call under the lock."""
    out = publish_snapshot(ws)
    if (block := _deferral(ws)) is not None:
        block[1] = time.monotonic()
    return out


@contextmanager
def deferred_snapshots(ws: Workspace, *, every: float | None = None):
    """Defer this thread's copies of the published file for the block: at most one every ``every`` seconds (None: none),
    and one at the end of the block if a commit is not yet copied.

    If the thread is already in a block for this warehouse, then the outer block decides. A process killed in the block
    leaves the pending marker, so the next holder of the publish lock makes the copy.
    """
    blocks = _deferred.__dict__.setdefault("blocks", {})
    key = str(writer_path(ws))
    if key in blocks:
        yield
        return
    blocks[key] = [every, time.monotonic()]
    try:
        yield
    except BaseException:
        blocks.pop(key, None)
        try:  # what was committed is still published; the error is the one that counts
            if _pending(ws).exists():
                with publish_lock(ws):
                    pass
        except Exception:
            pass  # the marker stays: the next writer publishes the copy
        raise
    else:
        blocks.pop(key, None)
        if _pending(ws).exists():
            with publish_lock(ws):
                pass  # releasing the lock outside the block copies


def _refresh_for_reader(ws: Workspace) -> None:
    """Replace the published copy now if this thread defers a copy of its own commits, so its own reads see them."""
    if _deferral(ws) is not None and _pending(ws).exists():
        with publish_lock(ws):
            if _pending(ws).exists():
                _snapshot_now(ws)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Linux ioctl FICLONE: the copy shares the source's blocks (btrfs, XFS with reflink, bcachefs); refused elsewhere.
_FICLONE = 0x40049409


def _copy_file(src: Path, dst: Path) -> str:
    """Return how ``src`` was copied to the new file ``dst`` (fsynced): "reflink" where the file system shares blocks
    (nothing is copied), else "copy" (in the kernel: copy_file_range, else read and write)."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            how = "reflink"
        except OSError:
            how = "copy"
            size, done = os.fstat(fin.fileno()).st_size, 0
            try:
                while done < size and (n := os.copy_file_range(fin.fileno(), fout.fileno(), size - done)):
                    done += n
            except OSError:
                if done:
                    raise
            if done < size:  # no copy_file_range here (or across file systems): the plain way
                fin.seek(done)
                fout.seek(done)
                shutil.copyfileobj(fin, fout, 8 << 20)
        os.fsync(fout.fileno())
    return how


def _writer_file(ws: Workspace) -> Path:
    """Return the writer's file. If there is none but a published one (a workspace of earlier versions, where that
    was the writer's), then it starts as a copy of that one."""
    path = writer_path(ws)
    if path.exists() or not ws.warehouse.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    wal = ws.warehouse.with_name(ws.warehouse.name + ".wal")
    if wal.exists():  # commits of an earlier version's killed writer: into the file before it is copied
        duckdb.connect(str(ws.warehouse)).close()
    for old in path.parent.glob(f".{path.name}.tmp-*"):  # a copy a killed run left
        old.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    _copy_file(ws.warehouse, tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path


def _file_state(path: Path) -> str:
    """Return what changes whenever DuckDB commits to ``path``: its headers (a checkpoint rewrites one), size and mtime,
    and whether it has a WAL. Opening it for writing and closing it without a commit changes none of them."""
    import hashlib
    import json

    if not path.exists():
        return "absent"
    st = path.stat()
    with open(path, "rb") as fh:
        head = hashlib.sha256(fh.read(3 * 4096)).hexdigest()
    return json.dumps([head, st.st_size, st.st_mtime_ns, path.with_name(path.name + ".wal").exists()])


def _mark_pending(ws: Workspace) -> None:
    """Make the marker (fsynced) that the published copy may be stale, holding the state of the writer's file it copies.

    If the marker is there already (a killed run's, or this run's), then it is kept: the state it holds is the copy's.
    """
    marker = _pending(ws)
    if marker.exists():
        return
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(_file_state(writer_path(ws)))
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(marker.parent)


def publish_snapshot(ws: Workspace) -> dict:
    """Return how the published copy was replaced by a copy of the writer's file (seconds, bytes, "reflink" or "copy").

    Call it under the publish lock. If nothing was committed to the writer's file since the
    marker was made (a writer that opened it and rolled back), then no copy is made ("unchanged"). The copy is written beside the published file under a
    temporary name, fsynced and renamed over it, so a reader opens either the old file or the
    new one; readers that have the old one open keep it until they close it.
    """
    started = time.perf_counter()
    src = _writer_file(ws)
    dst = ws.warehouse
    marker = _pending(ws)
    copied = marker.read_text(encoding="utf-8") if marker.exists() else ""
    if not src.exists() or (dst.exists() and copied == _file_state(src)):  # nothing was committed since the copy
        marker.unlink(missing_ok=True)
        return {"seconds": time.perf_counter() - started, "bytes": 0, "how": "unchanged"}
    if src.with_name(src.name + ".wal").exists():  # commits not yet in the file (a killed writer's): checkpoint them
        con = duckdb.connect(str(src))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()
    for old in dst.parent.glob(f".{dst.name}.tmp-*"):  # a copy a killed writer left
        old.unlink(missing_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        how = _copy_file(src, tmp)
        fault_point("snapshot")  # test hook: killed after the commit and the copy, before the rename
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)
    _pending(ws).unlink(missing_ok=True)
    return {"seconds": time.perf_counter() - started, "bytes": dst.stat().st_size, "how": how}


def current_file(ws: Workspace) -> Path:
    """Return the DuckDB file this thread reads: the writer's own while it holds the publish lock, else the published copy."""
    return _writer_file(ws) if _holds_lock(ws) else ws.warehouse


def connect(ws: Workspace, *, read_only: bool = False, row_group_size: int | None = None) -> duckdb.DuckDBPyConnection:
    """Return a connection to the warehouse.

    Reading (``read_only``) opens the published copy, which never waits for a writer (refreshed first
    if this thread deferred a copy), or the writer's own file while this thread holds the publish lock. Writing opens the writer's file
    and marks the published copy stale, so releasing the publish lock replaces it. ``row_group_size``: the rows of a row
    group DuckDB writes through this connection (attached with that option; default DuckDB's 122,880).
    """
    if read_only and not _holds_lock(ws):
        _refresh_for_reader(ws)  # read your own writes: a copy this thread deferred is made first
        return duckdb.connect(str(ws.warehouse), read_only=True)
    if (session := _session(ws)) is not None:  # the writer's file is open in this thread's writer_session: a cursor of it
        cur = session.cursor()
        if (use := getattr(_sessions, "uses", {}).get(str(writer_path(ws)))) is not None:
            cur.execute(use)  # a cursor starts in the instance's default database
        return cur
    path = _writer_file(ws)
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    _mark_pending(ws)
    if row_group_size is None:
        return duckdb.connect(str(path))
    con = duckdb.connect()
    con.execute(f"ATTACH {lit(str(path))} AS {q(path.stem)} (ROW_GROUP_SIZE {int(row_group_size)})")
    con.execute(f"USE {q(path.stem)}")
    return con


#: This thread's writer_session connections, by writer file (``uses``: the USE statement of one attached with options).
_sessions = threading.local()


def _session(ws: Workspace) -> duckdb.DuckDBPyConnection | None:
    return getattr(_sessions, "cons", {}).get(str(writer_path(ws)))


@contextmanager
def writer_session(ws: Workspace, *, row_group_size: int | None = None):
    """Hold the publish lock and one connection to the writer's file for the block: :func:`connect` in this thread
    (reading or writing) returns a cursor of it, and :func:`publish_lock` inside is the one held.

    A feed's publish and its contract results share it: the file is opened, closed and checkpointed once, not twice
    (each costs 10-30 ms a feed). The connection is closed (DuckDB checkpoints) before the lock is released, so the
    readers' copy made then is whole. If the thread is already in a session of this warehouse, then the outer one is used.
    ``row_group_size``: as for :func:`connect`, for every write of the session.
    """
    if _session(ws) is not None:
        yield
        return
    cons = _sessions.__dict__.setdefault("cons", {})
    uses = _sessions.__dict__.setdefault("uses", {})
    key = str(writer_path(ws))
    with publish_lock(ws):
        con = connect(ws, row_group_size=row_group_size)
        cons[key] = con
        if row_group_size is not None:
            uses[key] = f"USE {q(writer_path(ws).stem)}"
        ended = False
        try:
            yield
            ended = True
        finally:
            cons.pop(key, None)
            uses.pop(key, None)
            if ended:  # the readers' copy made while DuckDB closes
                _close_copying(ws, con)
            else:  # the lock's release copies what was committed before the error
                con.close()


def _close_copying(ws: Workspace, con: duckdb.DuckDBPyConnection) -> None:
    """Close the writer's connection ``con``. If releasing the publish lock would replace the readers' copy now and the
    writer's file has no WAL (its commits are checkpointed into it), then the copy is made while DuckDB closes: closing
    does not write to a checkpointed file (tested), so the copy is the file as it is once closed. Call under the lock."""
    src = writer_path(ws)
    if not (_pending(ws).exists() and _copy_due(ws)) or src.with_name(src.name + ".wal").exists():
        con.close()
        return
    copying = in_thread(publish_snapshot, ws, name="noriba-snapshot")
    try:
        con.close()
    finally:
        copying.result()  # its error is the caller's, as the lock's release would raise it
    if (block := _deferral(ws)) is not None:  # the copy counts for this thread's deferral block
        block[1] = time.monotonic()


def _warehouse_tables() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Return (schema, table, columns) of every warehouse table, in publish order."""
    out = []
    for t in load_schema().tables.values():
        out.append(("gtfs", t.name, t.columns_sql()))
    out.append(("gtfs", "other_files", [("feed_id", "VARCHAR"), ("feed_version", "VARCHAR"), ("file_name", "VARCHAR"),
                                         ("_line", "INTEGER"), ("header", "VARCHAR"), ("record", "VARCHAR")]))
    out.append(("gtfs", "other_blobs", [("feed_id", "VARCHAR"), ("feed_version", "VARCHAR"), ("file_name", "VARCHAR"), ("content", "BLOB")]))
    out.append(("quality", "notices", [("feed_id", "VARCHAR"), ("feed_version", "VARCHAR"),
                                       *[tuple(c.split()) for c in NOTICE_COLUMNS.split(", ")]]))
    out.append(("quality", "quarantine", [("feed_id", "VARCHAR"), ("feed_version", "VARCHAR"),
                                          *[tuple(c.split()) for c in QUARANTINE_COLUMNS.split(", ")]]))
    out.append(("meta", "feed_versions", [("feed_id", "VARCHAR"), *[tuple(c.split()) for c in FEED_VERSION_COLUMNS.split(", ")],
                                          ("published_at", "VARCHAR")]))
    return out


#: Tables stored as several physical tables, ``gtfs.<table>`` being the view of their union: each narrower one holds fewer
#: columns, and a partition goes into the narrowest that holds every column it fills (the lake's statistics), the widest
#: (every column) when none does. DuckDB's INSERT spends 0.3-0.5 CPU-s per 7M rows on each all-NULL VARCHAR or DOUBLE
#: column it stores (an all-NULL INTEGER almost nothing), so a stop_times without Flex, ``_untyped`` and ``_extra`` values
#: (and without stop headsigns and distances) is not made to store them. The narrower ones hold the version as a number
#: ``_v`` (a constant INTEGER costs nothing to store, the constant texts feed_id and feed_version ~0.4 CPU-s each), which
#: ``_<table>_versions`` maps to feed_id and feed_version; the widest holds them as the table did before.
SPLIT: dict[tuple[str, str], tuple[tuple[str, tuple[str, ...]], ...]] = {
    ("gtfs", "stop_times"): (
        ("narrow", ("_line", "trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence", "pickup_type",
                    "drop_off_type", "continuous_pickup", "continuous_drop_off", "timepoint")),
        ("classic", ("_line", "trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence", "stop_headsign",
                     "pickup_type", "drop_off_type", "continuous_pickup", "continuous_drop_off", "shape_dist_traveled",
                     "timepoint")),
    ),
}
_VERSION_KEY = ("feed_id", "feed_version")


def _parts(schema: str, table: str, cols: list[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Return the physical tables (name, columns in the table's order) holding a warehouse table's rows, narrowest first.

    If the table is not split, then it is its one physical table, of the same name; else the narrower ones hold ``_v``
    instead of feed_id and feed_version, and the widest is ``_<table>_wide``, of the table's columns.
    """
    if (schema, table) not in SPLIT:
        return [(table, cols)]
    out = [(f"_{table}_{name}", [("_v", "INTEGER")] + [(c, t) for c, t in cols if c in keep])
           for name, keep in SPLIT[(schema, table)]]
    return out + [(f"_{table}_wide", cols)]


def _versions_table(table: str) -> tuple[str, list[tuple[str, str]]]:
    """Return the name and columns of a split table's map of ``_v`` to feed_id and feed_version."""
    return f"_{table}_versions", [("_v", "INTEGER"), ("feed_id", "VARCHAR"), ("feed_version", "VARCHAR")]


def _stored_tables() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Return (schema, table, columns) of every physical warehouse table: a split table's parts and map instead of it."""
    out = []
    for s, t, cols in _warehouse_tables():
        if (s, t) in SPLIT:
            out.append((s, *_versions_table(t)))
        out += [(s, name, c) for name, c in _parts(s, t, cols)]
    return out


def _narrowest(part: Path, parts: list[tuple[str, list[tuple[str, str]]]]) -> tuple[str, list[str] | None]:
    """Return the narrowest physical table holding every column of the lake Parquet file ``part`` that has a value in
    some row (by the file's statistics), and the file's columns it holds (None for the widest: all of them).

    If a column's null count is missing in some row group, then it counts as filled; if the file has a column the widest
    does not hold, or its footer cannot be read, then the widest (whose INSERT reports what is wrong, as before).
    """
    from transforms.canonical import parquet_nulls

    try:
        rows, nulls = parquet_nulls(part)
    except Exception:
        return parts[-1][0], None
    names = list(nulls)
    if not set(names) <= {c for c, _ in parts[-1][1]}:
        return parts[-1][0], None
    filled = {n for n, k in nulls.items() if k is None or k < rows}
    for name, cols in parts[:-1]:
        if filled <= (held := {c for c, _ in cols} - {"_v"}) and (read := [c for c in names if c in held]):
            return name, read
    return parts[-1][0], None


def _lake_table(schema: str, table: str) -> str:
    return {"gtfs": f"gtfs_{table}", "quality": f"quality_{table}", "meta": f"meta_{table}"}[schema]


def _view_statements() -> list[str]:
    """Return the CREATE OR REPLACE VIEW statements of the warehouse (meta versions, gtfs_latest), in order."""
    # newest version of each feed, whatever its verdict; latest = newest that its policy did not block
    order = "ORDER BY ingested_at DESC, fetched_at DESC, feed_version"
    out = [
        "CREATE OR REPLACE VIEW meta.newest_versions AS SELECT feed_id, feed_version FROM ("
        f" SELECT feed_id, feed_version, row_number() OVER (PARTITION BY feed_id {order}) AS n"
        " FROM meta.feed_versions) WHERE n = 1",
        "CREATE OR REPLACE VIEW meta.latest_versions AS SELECT feed_id, feed_version FROM ("
        f" SELECT feed_id, feed_version, row_number() OVER (PARTITION BY feed_id {order}) AS n"
        " FROM meta.feed_versions WHERE coalesce(policy_status, 'pass') <> 'blocked') WHERE n = 1",
    ]
    for schema, table, cols in _warehouse_tables():  # a split table: the union of its parts, a missing column as NULL
        if len(parts := _parts(schema, table, cols)) > 1:
            selects = [f"SELECT {', '.join(q(c) for c, _ in cols)} FROM {schema}.{q(parts[-1][0])}"]
            for name, have in parts[:-1]:
                held = {c for c, _ in have}
                select = ", ".join(f"v.{q(c)}" if c in _VERSION_KEY else f"p.{q(c)}" if c in held else f"NULL::{t} AS {q(c)}"
                                   for c, t in cols)
                selects.append(f"SELECT {select} FROM {schema}.{q(name)} p JOIN {schema}.{q(_versions_table(table)[0])} v ON p._v = v._v")
            out.insert(0, f"CREATE OR REPLACE VIEW {schema}.{q(table)} AS {' UNION ALL '.join(selects)}")
    for schema, table, _ in _warehouse_tables():
        if schema == "gtfs":
            out.append(f"CREATE OR REPLACE VIEW gtfs_latest.{q(table)} AS SELECT t.* FROM gtfs.{q(table)} t "
                       f"SEMI JOIN meta.latest_versions l ON t.feed_id = l.feed_id AND t.feed_version = l.feed_version")
    # analysts' views: each GTFS time (seconds after midnight) also as HH:MM:SS text, 25:10:00 after midnight as in GTFS
    for t in load_schema().tables.values():
        times = [f.column for f in t.fields if f.type == "time"]
        if times:
            hms = ", ".join(f"printf('%02d:%02d:%02d', {q(c)} // 3600, {q(c)} % 3600 // 60, {q(c)} % 60) AS {q(c + '_hms')}"
                            for c in times)
            out.append(f"CREATE OR REPLACE VIEW gtfs_latest.{q(t.name + '_hms')} AS SELECT *, {hms} FROM gtfs_latest.{q(t.name)}")
    return out


def _layout_fingerprint(tables: list, views: list[str]) -> str:
    import hashlib

    return hashlib.sha256(repr((tables, views)).encode()).hexdigest()[:32]


def _at_layout(con: duckdb.DuckDBPyConnection, tables: list, fingerprint: str) -> bool:
    """Return True if the warehouse was brought to this layout (fingerprint on meta.latest_versions) and still has every
    stored table (``tables``), with its number of columns at least, and view of it (one catalog query: the first one costs ~5 ms, a column
    listing ~5 ms more)."""
    rows = con.sql(
        "SELECT 't', schema_name, table_name, column_count, NULL FROM duckdb_tables() WHERE schema_name IN ('gtfs', 'meta', 'quality') "
        "UNION ALL SELECT 'v', schema_name, view_name, NULL, comment FROM duckdb_views() WHERE schema_name IN ('gtfs', 'gtfs_latest', 'meta')"
    ).fetchall()
    have = {(s, t): n for kind, s, t, n, _ in rows if kind == "t"}
    views = {(s, t): c for kind, s, t, _, c in rows if kind == "v"}
    if views.get(("meta", "latest_versions")) != fingerprint:
        return False
    need_views = ({("meta", "newest_versions"), ("meta", "latest_versions")} | set(SPLIT)
                  | {("gtfs_latest", t) for s, t, _ in _warehouse_tables() if s == "gtfs"})
    return all(have.get((s, t), -1) >= len(cols) for s, t, cols in tables) and need_views <= views.keys()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the warehouse schemas, tables and latest-version views when missing (new columns are added).

    If a split table (``SPLIT``) is still one table (a warehouse made before the split), then it is renamed to its widest
    part, which keeps its rows, and the view of the parts takes its name.

    If the warehouse is already at the current layout (the fingerprint of these tables and views,
    kept as the comment of meta.latest_versions, matches and every column and view is there), then
    nothing is run: two catalog queries instead of a check per table.
    """
    tables = _stored_tables()
    views = _view_statements()
    fingerprint = _layout_fingerprint(tables, views)
    if _at_layout(con, tables, fingerprint):
        return
    try:  # one commit (one WAL sync) for the whole layout, not one per statement: ~0.2 s less on a new warehouse
        con.execute("BEGIN TRANSACTION")
        own = True
    except duckdb.TransactionException:  # the caller's transaction: the statements are part of it
        own = False
    try:
        for s in ("gtfs", "gtfs_latest", "meta", "quality"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        have: dict[tuple[str, str], set[str]] = {}
        for schema, table, column in con.execute(  # every table's columns in one catalog query, not one per table
                "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                "WHERE table_schema IN ('gtfs', 'meta', 'quality')").fetchall():
            have.setdefault((schema, table), set()).add(column)
        kinds = dict(((s, t), k) for s, t, k in con.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables "
            "WHERE table_schema IN ('gtfs', 'meta', 'quality')").fetchall())
        for schema, table in SPLIT:  # a warehouse of the layout before the split: its table is the widest
            wide = f"_{table}_wide"
            if kinds.get((schema, table)) == "BASE TABLE" and (schema, wide) not in have:
                con.execute(f"ALTER TABLE {schema}.{q(table)} RENAME TO {q(wide)}")
                have[(schema, wide)] = have.pop((schema, table))
            have.pop((schema, table), None)  # the view of the parts (made below)
        for schema, table, cols in tables:
            if (schema, table) not in have:
                con.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{q(table)} ({', '.join(f'{q(c)} {t}' for c, t in cols)})")
                continue
            for c, t in cols:
                if c not in have[(schema, table)]:
                    con.execute(f"ALTER TABLE {schema}.{q(table)} ADD COLUMN {q(c)} {t}")
        for sql in views:
            con.execute(sql)
        con.execute(f"COMMENT ON VIEW meta.latest_versions IS {lit(fingerprint)}")
    except BaseException:
        if own:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
        raise
    if own:
        con.execute("COMMIT")


#: Writer files (path, inode, layout fingerprint) this process brought to the current layout: a run of many feeds checks the
#: catalog once, not once per feed. The layout only ever grows, and a file replaced by another has another inode.
_at_layout_here: set[tuple[str, int, str]] = set()


def _ensure_schema_once(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Run ensure_schema on ``con`` (the writer's file ``path``) unless this process already did on this very file."""
    tables = _stored_tables()
    key = (str(path), path.stat().st_ino if path.exists() else -1, _layout_fingerprint(tables, _view_statements()))
    if key in _at_layout_here:
        return
    ensure_schema(con)
    if path.exists():
        _at_layout_here.add((key[0], path.stat().st_ino, key[2]))


def is_published(ws: Workspace, feed_id: str, feed_version: str) -> bool:
    """Return True if the writer's file holds the version. Under the publish lock: a copy a killed run did not publish is."""
    if not writer_path(ws).exists() and not ws.warehouse.exists():
        return False
    with publish_lock(ws):
        if not _writer_file(ws).exists():
            return False
        con = connect(ws, read_only=True)
        try:
            tables = _stored_tables()
            if not _at_layout(con, tables, _layout_fingerprint(tables, _view_statements())):
                con.close()  # an earlier layout: brought to this one (writing), as publish would
                con = connect(ws)
                ensure_schema(con)
            return bool(con.execute("SELECT count(*) FROM meta.feed_versions WHERE feed_id = ? AND feed_version = ?",
                                    [feed_id, feed_version]).fetchall()[0][0])
        finally:
            con.close()


def _delete_version(con: duckdb.DuckDBPyConnection, schema: str, table: str, parts: list, feed_id: str, feed_version: str) -> None:
    """Delete a version's rows from the physical tables ``parts`` of a warehouse table (and its ``_v`` if split)."""
    where, params = "feed_id = ? AND feed_version = ?", [feed_id, feed_version]
    con.execute(f"DELETE FROM {schema}.{q(parts[-1][0])} WHERE {where}", params)
    if len(parts) > 1:
        versions = f"{schema}.{q(_versions_table(table)[0])}"
        for name, _ in parts[:-1]:
            con.execute(f"DELETE FROM {schema}.{q(name)} WHERE _v IN (SELECT _v FROM {versions} WHERE {where})", params)
        con.execute(f"DELETE FROM {versions} WHERE {where}", params)


def publish(ws: Workspace, feed_id: str, feed_version: str) -> dict:
    """Return row counts published for one feed version, loaded from the lake in one transaction.

    The version's rows replace any earlier copy of the same version, so a rerun is idempotent.
    """
    crash_at = os.environ.get(CRASH_ENV)
    counts: dict[str, int] = {}
    with publish_lock(ws), connect(ws) as con:
        _ensure_schema_once(con, writer_path(ws))
        with transaction(con, checkpoint=_session(ws) is None):  # a session's connection checkpoints when it is closed
            # A version's rows and its meta row are written in one transaction, so without the
            # meta row there is nothing to replace and the (full-scan) deletes can be skipped.
            again = con.execute("SELECT count(*) FROM meta.feed_versions WHERE feed_id = ? AND feed_version = ?",
                                [feed_id, feed_version]).fetchall()[0][0]
            for schema, table, cols in _warehouse_tables():
                parts = _parts(schema, table, cols)
                if again:
                    _delete_version(con, schema, table, parts, feed_id, feed_version)
                part = ws.lake_partition(_lake_table(schema, table), feed_id, feed_version) / "part-0.parquet"
                if not part.exists():
                    continue
                name, read = (table, None) if len(parts) == 1 else _narrowest(part, parts)
                key, params = "?::VARCHAR AS feed_id, ?::VARCHAR AS feed_version", [feed_id, feed_version]
                if read is not None:  # a split table's narrower part: only its columns, the version as its number
                    versions = f"{schema}.{q(_versions_table(table)[0])}"
                    v = con.execute(f"SELECT coalesce(max(_v), 0) + 1 FROM {versions}").fetchall()[0][0]
                    con.execute(f"INSERT INTO {versions} VALUES (?, ?, ?)", [v, feed_id, feed_version])
                    key, params = "?::INTEGER AS _v", [v]
                select = "*" if read is None else ", ".join(map(q, read))
                extra = ", ?::VARCHAR AS published_at" if table == "feed_versions" else ""
                params += [datetime.now(timezone.utc).isoformat(timespec="seconds")] if extra else []
                counts[f"{schema}.{table}"] = con.execute(
                    f"INSERT INTO {schema}.{q(name)} BY NAME SELECT {key}, {select}{extra} "
                    f"FROM read_parquet({lit(str(part))}, hive_partitioning=false)", params,
                ).fetchall()[0][0]
                if crash_at == table:
                    os._exit(86)  # simulate a kill in the middle of the transaction
                fault_point("publish")  # test hook (NORIBA_FAULT_AT=publish): killed after the first table, mid-transaction
    return {"published": counts}
