"""Validate archived GTFS-Realtime hours with the realtime rules (transforms/gtfs_rt/rules.py) and publish the notices.

Each part's snapshots are checked in fetch order, each against the previous one of the same part,
and against the static feed the realtime feed belongs to (``static_feed_id`` of raw/<feed>/rt/feed.json),
in the version *in service on the hour's date* in the feed's time zone (raw/<feed>/rt/feed.json; UTC
when it has none) (meta.feed_versions service_start..service_end;
the newest such version, else the newest published one). The fetch time comes from the hour's
fetch log; an ingested file has none, so W008 and E050 are not checked for it.

The warehouse gets ``rt.notices`` (feed_id, date, hour, static_feed_version, then the columns of
transforms/notices.NOTICE_SCHEMA; up to ``sample_limit`` samples per code and hour) and
``rt.notice_counts`` (feed_id, date, hour, code, severity, notices), each hour replaced whole on rerun;
and each hour's report, ``reports/<feed>/<YYYY-MM-DDTHH>/report.{json,html}`` (noriba/report.py), the same page as a
static feed version's report, naming the static version the hour was checked against.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from warehouse.workspace import Workspace

RT_NOTICE_COLUMNS = ("feed_id VARCHAR, date DATE, hour INTEGER, static_feed_version VARCHAR, code VARCHAR, severity VARCHAR, "
                     "file VARCHAR, line BIGINT, field VARCHAR, value VARCHAR, message VARCHAR")


def local_day(date: str, hour: int, tz: str | None) -> str:
    """Return the date (YYYY-MM-DD) in the feed's time zone at the middle of a UTC hour; the UTC date when tz is unknown."""
    from datetime import timedelta, timezone
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not tz:
        return date
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return date
    at = datetime.fromisoformat(date).replace(tzinfo=timezone.utc) + timedelta(hours=hour, minutes=30)
    return at.astimezone(zone).date().isoformat()


def static_version(con, static_feed_id: str, day: str) -> str | None:
    """Return the version of a published static feed in service on ``day`` (YYYY-MM-DD), else its newest version; None if unpublished."""
    try:
        rows = con.execute(
            "SELECT feed_version, (service_start IS NOT NULL AND service_start <= ? AND (service_end IS NULL OR service_end >= ?)) "
            "AS in_service FROM meta.feed_versions WHERE feed_id = ? ORDER BY in_service DESC, ingested_at DESC NULLS LAST",
            [day, day, static_feed_id]).fetchall()
    except Exception:  # noqa: BLE001 (no meta schema yet: nothing published)
        return None
    return rows[0][0] if rows else None


def _fetch_times(folder) -> dict[str, int]:
    """Return {archived file name: fetch time, POSIX seconds} from an hour's fetch log (archiver fetches only)."""
    out: dict[str, int] = {}
    log = folder / "fetches.jsonl"
    if not log.exists():
        return out
    with log.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and r.get("file") and r.get("status") is not None and r.get("fetched_at"):
                try:
                    out.setdefault(os.path.basename(str(r["file"])),
                                   int(datetime.fromisoformat(str(r["fetched_at"]).replace("Z", "+00:00")).timestamp()))
                except ValueError:
                    continue
    return out


def validate_hours(ws: Workspace, feed_id: str, hours: list[str] | None = None, *, sample_limit: int = 1000,
                   publish: bool = True) -> dict:
    """Validate archived hours of a realtime feed (default: every hour archived); return counts per hour and code.

    If ``publish``, the notices replace the hours' earlier ones in ``rt.notices`` / ``rt.notice_counts``.
    """
    from google.protobuf.message import DecodeError
    from google.transit import gtfs_realtime_pb2 as pb

    from noriba.rt import _NAME, archived_hour, raw_hours, read_feed_info
    from transforms.gtfs_rt.rules import Snapshot, StaticIndex, validate
    from warehouse.publish import connect

    info = read_feed_info(ws, feed_id)
    static_id = info.get("static_feed_id")
    hours = hours or raw_hours(ws, feed_id)
    indexes: dict[str, StaticIndex] = {}
    results = []
    for key in hours:
        date, hour, folder = archived_hour(ws, feed_id, key)
        version = None
        if static_id and ws.warehouse.exists():
            con = connect(ws, read_only=True)
            try:
                version = static_version(con, static_id, local_day(date, int(hour), info.get("timezone")))
                if version and version not in indexes:
                    indexes[version] = StaticIndex.from_warehouse(con, static_id, version)
            finally:
                con.close()
        static = indexes.get(version)
        fetched = _fetch_times(folder)
        names = sorted((f for f in os.listdir(folder) if _NAME.match(f)), key=lambda n: (_NAME.match(n)["part"], n.split("-")[-2], n))
        from transforms.notices import Findings
        findings = Findings()
        previous: dict[str, Snapshot] = {}
        tus = [n for n in names if _NAME.match(n)["part"] == "trip_updates"]
        cache: dict[str, Snapshot | None] = {}

        def read(name: str) -> Snapshot | None:
            msg = pb.FeedMessage()
            data = (folder / name).read_bytes()
            try:
                msg.ParseFromString(data)
            except DecodeError:
                return None  # quarantined by the parse step
            return Snapshot(msg, name, fetched.get(name), data=data)

        def trip_updates_at(name: str) -> Snapshot | None:
            """Return the TripUpdates snapshot of the same moment: the last one fetched at or before ``name``, else the first."""
            hms = name.split("-")[-2]
            before = [n for n in tus if n.split("-")[-2] <= hms]
            pick = before[-1] if before else tus[0]
            if pick not in cache:
                cache.clear()
                cache[pick] = read(pick)
            return cache[pick]

        files: dict[str, dict] = {}
        for name in names:
            part = _NAME.match(name)["part"]
            snap = read(name)
            f = files.setdefault(f"{part} (snapshots)", {"rows_in": 0, "accepted": 0, "quarantined": 0, "encoding": "protobuf"})
            f["rows_in"] += 1
            f["accepted" if snap is not None else "quarantined"] += 1
            if snap is None:
                previous.pop(part, None)  # the next snapshot is compared with nothing
                continue
            other = snap if part == "combined" else trip_updates_at(name) if part == "vehicle_positions" and tus else None
            validate(snap, previous=previous.get(part), static=static, other=other, findings=findings, sample_limit=sample_limit)
            previous[part] = snap
        counts = {code: n for (code, _), n in sorted(findings.counts.items())}
        severities = {code: sev for code, sev in findings.counts}
        results.append({"hour": f"{date}T{hour}", "static_feed_id": static_id, "static_feed_version": version,
                        "snapshots": len(names), "counts": counts})
        if publish:
            _publish(ws, feed_id, date, int(hour), version, findings, severities, sample_limit)
            results[-1]["report"] = write_hour_report(ws, feed_id, date, int(hour), files=files)
    return {"feed_id": feed_id, "hours": results}


def write_hour_report(ws: Workspace, feed_id: str, date: str, hour: int, *, files: dict | None = None) -> str:
    """Write the realtime hour's validation report (noriba/report.py: reports/<feed>/<YYYY-MM-DDTHH>/); return the HTML's path."""
    from noriba.report import build_rt_report, write_report
    from noriba.rt import read_feed_info

    info = read_feed_info(ws, feed_id)
    report = build_rt_report(ws, feed_id, date, hour, files=files, static_feed_id=info.get("static_feed_id"), tz=info.get("timezone"))
    return write_report(ws, report)["html"]


def _publish(ws: Workspace, feed_id: str, date: str, hour: int, version: str | None, findings, severities: dict,
             sample_limit: int) -> None:
    import pyarrow as pa

    from transforms.gtfs_rt.rules import RT_RULES
    from warehouse.publish import connect, publish_lock
    from warehouse.txn import transaction

    t = findings.notices_table()
    kept: dict[str, int] = {}
    keep = []
    for code in t.column("code").to_pylist():
        kept[code] = kept.get(code, 0) + 1
        keep.append(kept[code] <= sample_limit)
    t = t.filter(pa.array(keep, pa.bool_())) if t.num_rows else t
    with publish_lock(ws), connect(ws) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS rt")
        con.execute(f"CREATE TABLE IF NOT EXISTS rt.notices ({RT_NOTICE_COLUMNS})")
        con.execute("CREATE TABLE IF NOT EXISTS rt.notice_counts (feed_id VARCHAR, date DATE, hour INTEGER, "
                    "static_feed_version VARCHAR, code VARCHAR, severity VARCHAR, notices BIGINT)")
        with transaction(con):
            codes = [r.code for r in RT_RULES]  # other writers' codes (noriba/rt_match.py) stay
            marks = ", ".join("?" for _ in codes)
            for table in ("rt.notices", "rt.notice_counts"):
                con.execute(f"DELETE FROM {table} WHERE feed_id = ? AND date = ?::DATE AND hour = ? AND code IN ({marks})",
                            [feed_id, date, hour, *codes])
            con.register("rt_found", t)
            con.execute("INSERT INTO rt.notices BY NAME SELECT ?::VARCHAR AS feed_id, ?::DATE AS date, ?::INTEGER AS hour, "
                        "?::VARCHAR AS static_feed_version, * FROM rt_found", [feed_id, date, hour, version])
            con.unregister("rt_found")
            for (code, sev), n in sorted(findings.counts.items()):
                con.execute("INSERT INTO rt.notice_counts VALUES (?, ?::DATE, ?, ?, ?, ?, ?)", [feed_id, date, hour, version, code, sev, n])
