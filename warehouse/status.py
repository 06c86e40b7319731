"""What the warehouse holds: feeds, versions, row counts and notices by severity."""

from __future__ import annotations

from noriba.workspace import Workspace


def status(ws: Workspace) -> dict:
    """Return one entry per feed with its latest version, counts and notices. If nothing is published, feeds is empty."""
    if not ws.warehouse.exists():
        return {"warehouse": str(ws.warehouse), "feeds": []}
    from warehouse.publish import connect

    con = connect(ws, read_only=True)
    try:
        have = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'feed_versions'").fetchall()[0][0]
        if not have:
            return {"warehouse": str(ws.warehouse), "feeds": []}
        rows = con.execute(
            "SELECT v.feed_id, v.feed_version, (SELECT count(*) FROM meta.feed_versions x WHERE x.feed_id = v.feed_id), "
            "v.service_start, v.service_end, v.rows_in, v.rows_accepted, v.rows_quarantined, v.errors, v.warnings, v.infos, "
            "v.ingested_at, v.profile, v.notice_codes "
            "FROM meta.feed_versions v SEMI JOIN meta.latest_versions l USING (feed_id, feed_version) ORDER BY v.feed_id"
        ).fetchall()
    finally:
        con.close()
    import json

    keys = ("feed_id", "latest_version", "versions", "service_start", "service_end", "rows_in", "rows_accepted",
            "rows_quarantined", "errors", "warnings", "infos", "ingested_at", "profile", "notice_codes")
    feeds = []
    for r in rows:
        d = dict(zip(keys, r))
        d["notice_codes"] = json.loads(d["notice_codes"] or "{}")
        feeds.append(d)
    return {"warehouse": str(ws.warehouse), "feeds": feeds}
