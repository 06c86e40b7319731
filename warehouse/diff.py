"""What changed between two versions of a feed: rows added, removed and changed per file, notice codes that came and went."""

from __future__ import annotations

import json

from warehouse.workspace import Workspace
from transforms.schema import SYSTEM_COLUMNS, load_schema
from transforms.sql import lit, q

#: newest first, as meta.newest_versions orders them
VERSION_ORDER = "ingested_at DESC, fetched_at DESC, feed_version"


class DiffError(ValueError):
    """A diff that cannot be made: unknown feed or version, or a feed with one version."""


def feed_versions(con, feed_id: str) -> list[str]:
    """Return the feed's published versions, newest first."""
    return [r[0] for r in con.execute(f"SELECT feed_version FROM meta.feed_versions WHERE feed_id = ? ORDER BY {VERSION_ORDER}",
                                      [feed_id]).fetchall()]


def resolve_version(versions: list[str], text: str, feed_id: str) -> str:
    """Return the version ``text`` names (the whole id or a unique prefix of it). If none or several, then DiffError."""
    hits = [v for v in versions if v == text] or [v for v in versions if v.startswith(text)]
    if len(hits) != 1:
        what = "no" if not hits else "more than one"
        raise DiffError(f"{feed_id}: {what} version {text!r}; its versions (newest first): {', '.join(versions)}")
    return hits[0]


def _table_diff(con, table, feed_id: str, old: str, new: str) -> dict:
    system = {c for c, _ in SYSTEM_COLUMNS}
    cols = [c for c, _ in table.columns_sql() if c not in system]
    key = [f.column for f in table.key]

    def rows(v: str, what: list[str]) -> str:
        return f"SELECT {', '.join(q(c) for c in what)} FROM gtfs.{q(table.name)} WHERE feed_id = {lit(feed_id)} AND feed_version = {lit(v)}"

    if key:
        vals = [c for c in cols if c not in key]
        k = f"{{{', '.join(f'{c!r}: {q(c)}' for c in key)}}}"
        v = f"{{{', '.join(f'{c!r}: {q(c)}' for c in vals)}}}" if vals else "NULL"
        side = lambda ver: f"SELECT {k} AS k, {v} AS v FROM ({rows(ver, cols)})"  # noqa: E731
        added, removed, changed = con.execute(
            f"SELECT count(*) FILTER (o.k IS NULL), count(*) FILTER (n.k IS NULL), "
            f"count(*) FILTER (n.k IS NOT NULL AND o.k IS NOT NULL AND n.v IS DISTINCT FROM o.v) "
            f"FROM ({side(new)}) n FULL OUTER JOIN ({side(old)}) o ON n.k IS NOT DISTINCT FROM o.k").fetchall()[0]
    else:  # no key: a changed row is one removed and one added
        added = con.execute(f"SELECT count(*) FROM ({rows(new, cols)} EXCEPT ALL {rows(old, cols)})").fetchall()[0][0]
        removed = con.execute(f"SELECT count(*) FROM ({rows(old, cols)} EXCEPT ALL {rows(new, cols)})").fetchall()[0][0]
        changed = None
    counts = con.execute(f"SELECT count(*) FILTER (feed_version = ?), count(*) FILTER (feed_version = ?) FROM gtfs.{q(table.name)} "
                         f"WHERE feed_id = ?", [old, new, feed_id]).fetchall()[0]
    return {"file": table.file_name, "rows_before": counts[0], "rows_after": counts[1],
            "added": added, "removed": removed, "changed": changed, "keyed_by": key}


def diff_versions(ws: Workspace, feed_id: str, old: str | None = None, new: str | None = None) -> dict:
    """Return what changed from version ``old`` to ``new`` of a feed (default: the two newest).

    Per file: rows added, removed and changed (same key, other values; None for files without a key,
    where a changed row counts as one removed and one added). Notice codes: those that appeared,
    disappeared or changed count. If the feed, a version or a second version is missing, then DiffError.
    """
    from warehouse.publish import connect

    if not ws.warehouse.exists():
        raise DiffError(f"nothing published yet in {ws.home}; run `noriba run` or `noriba ingest` first")
    con = connect(ws, read_only=True)
    try:
        versions = feed_versions(con, feed_id)
        if not versions:
            known = [r[0] for r in con.execute("SELECT DISTINCT feed_id FROM meta.feed_versions ORDER BY 1").fetchall()]
            raise DiffError(f"{feed_id}: no published feed with that id; published: {', '.join(known) or 'none'}")
        if old is None and new is None:
            if len(versions) < 2:
                raise DiffError(f"{feed_id}: only one version ({versions[0]}); a diff needs two (run the feed again when its input changes)")
            new, old = versions[0], versions[1]
        else:
            old, new = resolve_version(versions, old, feed_id), resolve_version(versions, new, feed_id)
        codes = {v: json.loads(c or "{}") for v, c in con.execute(
            "SELECT feed_version, notice_codes FROM meta.feed_versions WHERE feed_id = ? AND feed_version IN (?, ?)",
            [feed_id, old, new]).fetchall()}
        severity = dict(con.execute("SELECT code, any_value(severity) FROM quality.notices WHERE feed_id = ? "
                                    "AND feed_version IN (?, ?) GROUP BY code", [feed_id, old, new]).fetchall())
        files = []
        for table in load_schema().tables.values():
            d = _table_diff(con, table, feed_id, old, new)
            if d["rows_before"] or d["rows_after"]:
                files.append(d)
    finally:
        con.close()
    before, after = codes.get(old, {}), codes.get(new, {})
    note = lambda c: {"code": c, "severity": severity.get(c), "before": before.get(c, 0), "after": after.get(c, 0)}  # noqa: E731
    return {
        "feed_id": feed_id, "from_version": old, "to_version": new,
        "files": files,
        "notices_appeared": [note(c) for c in sorted(set(after) - set(before))],
        "notices_disappeared": [note(c) for c in sorted(set(before) - set(after))],
        "notices_changed": [note(c) for c in sorted(set(before) & set(after)) if before[c] != after[c]],
    }
