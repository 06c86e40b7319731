"""What the warehouse holds: feeds, versions, row counts, notices by severity and the policy verdict."""

from __future__ import annotations

import json

from warehouse.workspace import Workspace


def status(ws: Workspace) -> dict:
    """Return one entry per feed describing its newest version, and the version gtfs_latest serves.

    ``latest_version`` is the newest version its policy let pass (None if every version was
    blocked); the counts, ``policy_status`` and ``reason`` are those of ``newest_version``. If
    nothing is published, then feeds is empty.
    """
    if not ws.warehouse.exists():
        return {"warehouse": str(ws.warehouse), "feeds": []}
    from warehouse.policy import blocking_reason
    from warehouse.publish import connect

    con = connect(ws, read_only=True)
    try:
        have = {r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'meta'").fetchall()}
        if "newest_versions" not in have:
            return {"warehouse": str(ws.warehouse), "feeds": []}
        rows = con.execute(
            "SELECT v.feed_id, l.feed_version, v.feed_version, (SELECT count(*) FROM meta.feed_versions x WHERE x.feed_id = v.feed_id), "
            "v.service_start, v.service_end, v.rows_in, v.rows_accepted, v.rows_quarantined, v.errors, v.warnings, v.infos, "
            "v.ingested_at, v.profile, v.notice_codes, coalesce(v.policy_status, 'pass'), v.blocked_by, v.validation_date "
            "FROM meta.feed_versions v SEMI JOIN meta.newest_versions n USING (feed_id, feed_version) "
            "LEFT JOIN meta.latest_versions l USING (feed_id) ORDER BY v.feed_id"
        ).fetchall()
    finally:
        con.close()
    keys = ("feed_id", "latest_version", "newest_version", "versions", "service_start", "service_end", "rows_in", "rows_accepted",
            "rows_quarantined", "errors", "warnings", "infos", "ingested_at", "profile", "notice_codes", "policy_status",
            "blocked_by", "validation_date")
    feeds = []
    for r in rows:
        d = dict(zip(keys, r))
        d["notice_codes"] = json.loads(d["notice_codes"] or "{}")
        d["blocked_by"] = json.loads(d["blocked_by"] or "{}")
        d["reason"] = ""
        if d["policy_status"] == "blocked":
            served = f"gtfs_latest serves {d['latest_version']}" if d["latest_version"] else "gtfs_latest serves no version of this feed"
            d["reason"] = f"blocked by policy: {blocking_reason(d['blocked_by'])}; {served}"
        html = ws.reports / d["feed_id"] / d["newest_version"] / "report.html"
        d["report"] = str(html) if html.exists() else None
        feeds.append(d)
    return {"warehouse": str(ws.warehouse), "feeds": feeds}


def feed_status(ws: Workspace, feed_id: str) -> dict | None:
    """Return one feed's versions (newest first, with verdict and counts), the notices by code of its newest version
    and what changed between its two newest versions. If the feed is not published, then None."""
    from warehouse.policy import blocking_reason
    from warehouse.diff import VERSION_ORDER, diff_versions
    from warehouse.publish import connect

    if not ws.warehouse.exists():
        return None
    con = connect(ws, read_only=True)
    try:
        if not con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'meta' AND view_name = 'latest_versions'").fetchall()[0][0]:
            return None
        keys = ("feed_version", "ingested_at", "service_start", "service_end", "rows_in", "rows_accepted", "rows_quarantined",
                "errors", "warnings", "infos", "notice_codes", "policy_status", "blocked_by")
        rows = con.execute(f"SELECT {', '.join(keys[:-2])}, coalesce(policy_status, 'pass'), blocked_by FROM meta.feed_versions "
                           f"WHERE feed_id = ? ORDER BY {VERSION_ORDER}", [feed_id]).fetchall()
        served = (con.execute("SELECT feed_version FROM meta.latest_versions WHERE feed_id = ?", [feed_id]).fetchall() or [(None,)])[0][0]
        severity = dict(con.execute("SELECT code, any_value(severity) FROM quality.notices WHERE feed_id = ? AND feed_version = ? "
                                    "GROUP BY code", [feed_id, rows[0][0] if rows else ""]).fetchall())
    finally:
        con.close()
    if not rows:
        return None
    versions = []
    for r in rows:
        d = dict(zip(keys, r))
        d["notice_codes"] = json.loads(d["notice_codes"] or "{}")
        d["blocked_by"] = json.loads(d["blocked_by"] or "{}")
        d["served"] = d["feed_version"] == served
        d["reason"] = f"blocked by policy: {blocking_reason(d['blocked_by'])}" if d["policy_status"] == "blocked" else ""
        versions.append(d)
    order = {"ERROR": 0, "WARNING": 1, "INFO": 2}
    notices = sorted(({"code": c, "severity": severity.get(c), "count": n} for c, n in versions[0]["notice_codes"].items()),
                     key=lambda x: (order.get(x["severity"], 3), -x["count"], x["code"]))
    return {"feed_id": feed_id, "latest_version": served, "newest_version": versions[0]["feed_version"], "versions": versions,
            "notices": notices, "diff": diff_versions(ws, feed_id) if len(versions) > 1 else None}
