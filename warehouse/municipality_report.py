"""Municipality report: one HTML page (plots as inline SVG) about a municipality's own service, from the
latest version of its feeds in the lake. Its folder is self-contained: the interactive map's script and
the vendored Leaflet (``static/``) are copied beside the page; without them, or in print, the SVG map shows.

It shows a map of stops and routes with the area within 300 m of a stop, trips per hour and
service hours for a representative weekday, Saturday and Sunday/holiday, coverage (area, and
population when a population layer is given), and what changed since the previous version of
each feed: stops and trips added or removed, stops renamed or moved, trips and service hours up
or down. Labels are Japanese for Japanese municipalities. ``report.json`` beside the page holds
the same figures for machines.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import shapely
from pyproj import CRS, Transformer
from shapely.ops import transform as shp_transform

from warehouse.workspace import Workspace
from transforms.schema import load_schema

COVERAGE_M = 300.0
MOVED_M = 50.0
DAY_TYPES = ("weekday", "saturday", "sunday")
PALETTE = ("#0b5394", "#cc4125", "#6aa84f", "#e69138", "#674ea7", "#3d85c6", "#a61c00", "#45818e", "#bf9000", "#741b47")

LABELS = {
    "title": ("公共交通レポート", "Public transport report"),
    "feeds": ("対象データ", "Feeds"), "feed": ("フィード", "Feed"), "version": ("バージョン", "Version"),
    "valid": ("有効期間", "Valid"), "stops": ("停留所", "Stops"), "routes": ("路線", "Routes"), "trips": ("便数", "Trips"),
    "map": ("停留所・路線図（網掛けは停留所から 300 m 圏）", "Stops and routes (shaded: within 300 m of a stop)"),
    "per_hour": ("時間帯別の便数（出発時刻）", "Trips per hour (by departure)"),
    "hours": ("運行時間（車両・時間の合計）", "Service hours (vehicle hours)"),
    "weekday": ("平日", "Weekday"), "saturday": ("土曜", "Saturday"), "sunday": ("日曜・祝日", "Sunday/holiday"),
    "date_used": ("代表日", "Representative day"), "first": ("始発", "First"), "last": ("終発着", "Last"),
    "coverage": ("カバー率", "Coverage"), "area": ("停留所 300 m 圏の面積", "Area within 300 m of a stop"),
    "population": ("300 m 圏の人口（推計）", "Population within 300 m (estimate)"),
    "no_population": ("人口データが指定されていないため、人口は表示していません。", "No population layer was given, so population is not shown."),
    "changes": ("前回バージョンからの変化", "Changes since the previous version"),
    "no_previous": ("前回のバージョンがないため、比較はありません。", "There is no previous version to compare with."),
    "added": ("追加", "Added"), "removed": ("廃止", "Removed"), "renamed": ("名称変更", "Renamed"), "moved": ("移設（50 m 超）", "Moved (over 50 m)"),
    "stops_changes": ("停留所の変化", "Stops"), "trips_changes": ("便の変化", "Trips"),
    "before": ("前回", "Before"), "after": ("今回", "After"), "diff": ("増減", "Change"),
    "demand": ("需要（ゾーン別）と交通空白の移動", "Demand by zone and transit-gap trips"),
    "no_trip_data": ("この自治体の移動データ（タクシー・デマンド交通の乗車記録）はまだ取り込まれていません。取り込まれると、ゾーン別の需要と公共交通で行けない移動をここに示します。",
                     "No trip records (taxi, on-demand) are published for this municipality yet; once they are, demand by zone and the trips transit cannot serve appear here."),
    "zone": ("ゾーン", "Zone"), "demand_zones": ("乗車の多いゾーン", "Zones with the most pickups"),
    "demand_hours": ("時間帯別の乗車数", "Pickups per hour"), "gaps": ("交通空白の移動（公共交通で行けない移動）", "Transit-gap trips (trips transit cannot serve)"),
    "month": ("月", "Month"), "gap_trips": ("空白の移動", "Gap trips"), "far": ("停留所から遠い", "Far from a stop"),
    "outside_hours": ("運行時間外", "Outside service hours"), "share": ("割合", "Share"),
    "route": ("路線", "Route"), "name": ("名称", "Name"), "count": ("件数", "Count"), "more": ("ほか", "and"),
    "km2": ("km²", "km²"), "people": ("人", "people"),
    "expiring_warning": ("{feed} のデータは {end} で終わります（残り {days} 日）。期限までにダイヤ改正後のデータを取り込んでください。",
                         "The data of {feed} ends on {end} ({days} days left): publish the timetable revision before then."),
    "expired_warning": ("{feed} のデータは {end} で期限切れです（{ago} 日経過）。改正後のデータを取り込んでください。",
                        "The data of {feed} expired on {end} ({ago} days ago): publish the current timetable."),
    "map_file": ("背景地図（OpenStreetMap）は、このレポートを noriba serve で開くと表示されます。ファイルとして開いたときは路線と停留所だけを表示します。",
                 "The OpenStreetMap basemap shows when this report is opened through noriba serve; opened as a file, the map shows routes and stops only."),
    "map_offline": ("背景地図を読み込めません（オフライン）。路線と停留所だけを表示しています。",
                    "The basemap could not be loaded (offline): routes and stops only."),
    "pickups": ("件", "trips"), "trip_records": ("乗車数", "Trips"), "all_days": ("全日", "All days"),
    "suppressed": ("移動データの集計は {k} 件未満のセルを公開していません（空欄・「< {k}」）。",
                   "Trip figures with fewer than {k} trips are not published (blank or \"< {k}\")."),
    "punctuality": ("定時運行率（リアルタイムデータ）", "On-time performance (realtime data)"),
    "on_time_share": ("定時運行率", "On-time share"),
    "punctuality_window": ("定時：予定時刻の{early}前から{late}後までに停留所に到着した便の割合です（GTFS-Realtime の車両位置から観測。{period}、観測した到着 {n} 件）。",
                           "On time: arriving at a stop from {early} early to {late} late (observed from GTFS-Realtime vehicle positions; "
                           "{period}, {n} observed arrivals)."),
    "punctuality_hours": ("時間帯別の定時運行率（予定到着時刻）", "On-time share by hour (scheduled arrival)"),
    "punctuality_routes": ("路線・時間帯別の定時運行率", "On-time share by route and hour"),
    "early": ("早発", "Early"), "on_time": ("定時", "On time"), "late": ("遅延", "Late"),
    "observed": ("観測到着", "Observed"), "mean_delay": ("平均遅れ", "Mean delay"),
    "rt_feeds": ("リアルタイムデータ", "Realtime feeds"),
}


#: Trip modes (transforms/trips/spec.py MODES) as the report names them.
MODE_LABELS = {"taxi": ("タクシー", "Taxi"), "ride_hailing": ("配車サービス", "Ride-hailing"), "on_demand": ("デマンド交通", "On-demand"),
               "shared_taxi": ("乗合タクシー", "Shared taxi"), "micromobility": ("マイクロモビリティ", "Micromobility")}


def mode_label(mode: str, lang: str) -> str:
    """Return a trip mode's name in the report's language; an unknown mode as it is."""
    ja, en = MODE_LABELS.get(mode, (mode, mode))
    return ja if lang == "ja" else en


def t(key: str, lang: str) -> str:
    ja, en = LABELS[key]
    return ja if lang == "ja" else en


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


# ---------------------------------------------------------------------------------------------
# Reading one feed version


@dataclass
class Version:
    feed_id: str
    feed_version: str
    meta: dict
    con: duckdb.DuckDBPyConnection


def versions_of(ws: Workspace, feed_id: str) -> list[dict]:
    """Return the metadata rows of every version of a feed in the lake, oldest first (ingestion, then service start)."""
    root = ws.lake / "meta_feed_versions" / f"feed_id={feed_id}"
    parts = sorted(root.glob("feed_version=*/part-0.parquet"))
    if not parts:
        return []
    con = duckdb.connect()
    rows = []
    for p in parts:
        r = con.sql(f"SELECT * FROM read_parquet('{p}', hive_partitioning=false)").to_arrow_table().to_pylist()[0]
        r["feed_version"] = p.parent.name.split("=", 1)[1]
        r["feed_id"] = feed_id
        rows.append(r)
    con.close()
    return sorted(rows, key=lambda r: (r.get("ingested_at") or "", r.get("service_start") or "", r["feed_version"]))


def open_version(ws: Workspace, meta: dict) -> Version:
    """Return a connection where the version's canonical tables are views under their GTFS names."""
    from transforms.rules.engine import open_tables

    files = {}
    for table in load_schema().tables:
        part = ws.lake_partition(f"gtfs_{table}", meta["feed_id"], meta["feed_version"]) / "part-0.parquet"
        if part.exists():
            files[table] = [str(part)]
    con, _ = open_tables(None, files=files)
    return Version(meta["feed_id"], meta["feed_version"], meta, con)


def _service_dates(v: Version, *, days: int = 370) -> dict[date, int]:
    """Return {date: trips running} for every date of the version's service window (at most ``days`` days)."""
    start, end = v.meta.get("service_start"), v.meta.get("service_end")
    if not start or not end:
        return {}
    s = date.fromisoformat(start)
    e = min(date.fromisoformat(end), s + timedelta(days=days))
    con = v.con
    rows = con.sql(f"""
        WITH d AS (SELECT CAST(g AS DATE) AS d FROM generate_series(DATE '{s}', DATE '{e}', INTERVAL 1 DAY) t(g)),
        cal AS (SELECT d.d, c.service_id FROM d JOIN calendar c ON d.d BETWEEN c.start_date AND c.end_date
                WHERE (CASE isodow(d.d) WHEN 1 THEN c.monday WHEN 2 THEN c.tuesday WHEN 3 THEN c.wednesday WHEN 4 THEN c.thursday
                       WHEN 5 THEN c.friday WHEN 6 THEN c.saturday ELSE c.sunday END) = 1),
        act AS (SELECT d, service_id FROM cal WHERE (service_id, d) NOT IN (SELECT (service_id, date) FROM calendar_dates WHERE exception_type = 2)
                UNION SELECT date, service_id FROM calendar_dates WHERE exception_type = 1 AND date BETWEEN DATE '{s}' AND DATE '{e}')
        SELECT act.d, count(*) FROM act JOIN trips USING (service_id) GROUP BY act.d ORDER BY act.d""").fetchall()
    return {d: n for d, n in rows}


def day_type(d: date, holidays_set) -> str:
    if d in holidays_set or d.isoweekday() == 7:
        return "sunday"
    return "saturday" if d.isoweekday() == 6 else "weekday"


def representative_days(per_date: dict[date, int], country: str | None) -> dict[str, date]:
    """Return, per day type, the first date with that type's most common number of trips (exceptions do not count)."""
    import holidays as hol

    if not per_date:
        return {}
    years = sorted({d.year for d in per_date})
    try:
        hs = hol.country_holidays(country or "JP", years=years)
    except (NotImplementedError, KeyError):
        hs = {}
    by_type: dict[str, list[tuple[date, int]]] = {k: [] for k in DAY_TYPES}
    for d, n in sorted(per_date.items()):
        by_type[day_type(d, hs)].append((d, n))
    out = {}
    for k, items in by_type.items():
        if not items:
            continue
        mode = Counter(n for _, n in items).most_common(1)[0][0]
        out[k] = next(d for d, n in items if n == mode)
    return out


def day_stats(v: Version, d: date) -> dict:
    """Return trips, trips per hour, vehicle hours and first/last times of the service running on date ``d``.

    A trip of frequencies.txt counts once per departure (one every headway_secs from start_time until before end_time).
    Its departures are counted, not listed: a file of 1-second headways over a long period is as quick as any other."""
    hours: dict[int, int] = {}
    trips = seconds = first = last = None
    for h, a, b, c, e in v.con.sql(_DAY_SQL.replace("$day", f"DATE '{d}'")).fetchall():
        if h is None:  # the day's totals
            trips, seconds, first, last = a, b, c, e
        else:
            hours[h] = a
    top = max([23, *hours])  # a day's 24 hours, and the hours after midnight (24:00–) when trips leave then
    return {"date": d.isoformat(), "trips": int(trips or 0), "vehicle_hours": round((seconds or 0) / 3600, 1),
            "first": _hms(first) if first is not None else None, "last": _hms(last) if last is not None else None,
            "by_hour": [hours.get(h, 0) for h in range(top + 1)]}


#: One statement for date $day: a row of totals (hour NULL: trips, seconds of service, first departure, last arrival),
#: then a row per hour with departures (hour, departures). The runs: a plain trip's (its first departure and last
#: arrival), and per row of frequencies.txt its first departure ``st``, headway ``hw``, number of departures ``n`` and a
#: run's duration ``dur`` (the trip's span); each read several times, so materialised once.
_DAY_SQL = """
    WITH act AS (
        SELECT service_id FROM calendar WHERE $day BETWEEN start_date AND end_date
          AND (CASE isodow($day) WHEN 1 THEN monday WHEN 2 THEN tuesday WHEN 3 THEN wednesday WHEN 4 THEN thursday
               WHEN 5 THEN friday WHEN 6 THEN saturday ELSE sunday END) = 1
          AND service_id NOT IN (SELECT service_id FROM calendar_dates WHERE date = $day AND exception_type = 2)
        UNION SELECT service_id FROM calendar_dates WHERE date = $day AND exception_type = 1),
    span AS MATERIALIZED (
        SELECT trip_id, min(coalesce(departure_time, arrival_time)) AS dep, max(coalesce(arrival_time, departure_time)) AS arr
        FROM stop_times GROUP BY trip_id),
    plain AS MATERIALIZED (
        SELECT s.dep, s.arr FROM trips t JOIN span s USING (trip_id)
        WHERE t.service_id IN (SELECT service_id FROM act) AND t.trip_id NOT IN (SELECT trip_id FROM frequencies)
          AND s.dep IS NOT NULL),
    freq AS MATERIALIZED (
        SELECT CAST(f.start_time AS BIGINT) AS st, CAST(f.headway_secs AS BIGINT) AS hw,
               (CAST(f.end_time AS BIGINT) - f.start_time + f.headway_secs - 1) // f.headway_secs AS n, s.arr - s.dep AS dur
        FROM trips t JOIN span s USING (trip_id) JOIN frequencies f USING (trip_id)
        WHERE t.service_id IN (SELECT service_id FROM act) AND f.headway_secs > 0 AND f.end_time > f.start_time),
    -- departures per hour: a plain trip's hour, and for a row of frequencies.txt each hour its departures fall in, with
    -- how many (departure k is st + k·hw, k < n; the hours spanned are listed, not the departures)
    per_hour AS (
        SELECT dep // 3600 AS h, count(*) AS c FROM plain GROUP BY h
        UNION ALL
        SELECT h, least(n - 1, (h * 3600 + 3600 - st + hw - 1) // hw - 1)
                  - CASE WHEN h * 3600 <= st THEN 0 ELSE (h * 3600 - st + hw - 1) // hw END + 1 AS c
        FROM freq, generate_series(st // 3600, (st + (n - 1) * hw) // 3600) AS x(h))
    SELECT NULL::BIGINT AS h,
           (SELECT count(*) FROM plain) + (SELECT coalesce(sum(n), 0) FROM freq),
           (SELECT coalesce(sum(greatest(arr - dep, 0)), 0) FROM plain)
             + (SELECT coalesce(sum(n * greatest(coalesce(dur, 0), 0)), 0) FROM freq),
           least((SELECT min(dep) FROM plain), (SELECT min(st) FROM freq)),
           greatest((SELECT max(arr) FROM plain), (SELECT max(st + (n - 1) * hw + dur) FROM freq))
    UNION ALL
    SELECT h, sum(c), NULL, NULL, NULL FROM per_hour WHERE c > 0 GROUP BY h
"""


def _hms(s: int) -> str:
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def version_stats(v: Version, country: str | None) -> dict:
    days = representative_days(_service_dates(v), country)
    out = {"feed_id": v.feed_id, "feed_version": v.feed_version, "service_start": v.meta.get("service_start"),
           "service_end": v.meta.get("service_end"), "days": {}}
    for k, d in days.items():
        out["days"][k] = day_stats(v, d)
    out["stops"] = v.con.sql("SELECT count(*) FROM stops WHERE coalesce(location_type, 0) = 0").fetchall()[0][0]
    out["routes"] = v.con.sql("SELECT count(*) FROM routes").fetchall()[0][0]
    return out


# ---------------------------------------------------------------------------------------------
# Changes between two versions


def _haversine(a, b) -> float:
    from warehouse.merge import haversine_m

    return haversine_m(a[0], a[1], b[0], b[1])


def compare_versions(old: Version, new: Version, *, country: str | None = None) -> dict:
    """Return what changed from ``old`` to ``new``: stops and trips added and removed (by id), stops renamed or moved, totals."""
    def stops(v):
        return {r[0]: r[1:] for r in v.con.sql("SELECT stop_id, stop_name, stop_lat, stop_lon, coalesce(location_type, 0) FROM stops").fetchall()}

    def trips(v):
        return {r[0]: r[1:] for r in v.con.sql(
            "SELECT t.trip_id, t.route_id, coalesce(r.route_short_name, '') || CASE WHEN r.route_short_name IS NOT NULL AND r.route_long_name IS NOT NULL "
            "THEN ' ' ELSE '' END || coalesce(r.route_long_name, '') AS route_name, t.service_id, "
            "(SELECT min(departure_time) FROM stop_times s WHERE s.trip_id = t.trip_id) AS dep "
            "FROM trips t LEFT JOIN routes r USING (route_id)").fetchall()}

    so, sn = stops(old), stops(new)
    to, tn = trips(old), trips(new)

    def stop_row(i, r):
        return {"stop_id": i, "stop_name": r[0], "location_type": r[3]}

    def trip_row(i, r):
        return {"trip_id": i, "route_id": r[0], "route_name": r[1].strip(), "service_id": r[2], "departure": _hms(r[3]) if r[3] is not None else None}

    renamed = [{"stop_id": i, "before": so[i][0], "after": sn[i][0]} for i in sorted(set(so) & set(sn)) if so[i][0] != sn[i][0]]
    moved = []
    for i in sorted(set(so) & set(sn)):
        a, b = so[i], sn[i]
        if None not in (a[1], a[2], b[1], b[2]):
            dist = _haversine((a[1], a[2]), (b[1], b[2]))
            if dist > MOVED_M:
                moved.append({"stop_id": i, "stop_name": b[0], "distance_m": round(dist)})
    names_old = {r[0] for r in so.values() if r[3] == 0}
    names_new = {r[0] for r in sn.values() if r[3] == 0}
    so_stats, sn_stats = version_stats(old, country), version_stats(new, country)
    days = {}
    for k in DAY_TYPES:
        a, b = so_stats["days"].get(k), sn_stats["days"].get(k)
        if a or b:
            days[k] = {"trips_before": a["trips"] if a else 0, "trips_after": b["trips"] if b else 0,
                       "vehicle_hours_before": a["vehicle_hours"] if a else 0.0, "vehicle_hours_after": b["vehicle_hours"] if b else 0.0,
                       "date_before": a["date"] if a else None, "date_after": b["date"] if b else None}
    return {
        "feed_id": new.feed_id, "before": old.feed_version, "after": new.feed_version,
        "before_valid": [old.meta.get("service_start"), old.meta.get("service_end")],
        "after_valid": [new.meta.get("service_start"), new.meta.get("service_end")],
        "stops_added": [stop_row(i, sn[i]) for i in sorted(set(sn) - set(so))],
        "stops_removed": [stop_row(i, so[i]) for i in sorted(set(so) - set(sn))],
        "stops_renamed": renamed, "stops_moved": moved,
        "stop_names_added": sorted(n for n in names_new - names_old if n), "stop_names_removed": sorted(n for n in names_old - names_new if n),
        "trips_added": [trip_row(i, tn[i]) for i in sorted(set(tn) - set(to))],
        "trips_removed": [trip_row(i, to[i]) for i in sorted(set(to) - set(tn))],
        "routes_added": sorted({tn[i][0] for i in tn} - {to[i][0] for i in to}),
        "routes_removed": sorted({to[i][0] for i in to} - {tn[i][0] for i in tn}),
        "days": days,
    }


def change_report(ws: Workspace, feed_id: str, *, country: str | None = None) -> dict | None:
    """Return the changes between the two latest versions of a feed, or None if it has only one version."""
    vs = versions_of(ws, feed_id)
    if len(vs) < 2:
        return None
    old, new = open_version(ws, vs[-2]), open_version(ws, vs[-1])
    try:
        return compare_versions(old, new, country=country)
    finally:
        old.con.close()
        new.con.close()


# ---------------------------------------------------------------------------------------------
# Geometry: a metric CRS, coverage, the map


def utm_crs(lon: float, lat: float) -> CRS:
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def coverage(points_lonlat: list[tuple[float, float]], *, radius_m: float = COVERAGE_M, population: Path | None = None,
             population_field: str = "population") -> dict:
    """Return the union of ``radius_m`` buffers around the points (in a UTM CRS), its area, and the population inside.

    Population comes from a GeoJSON layer: polygons count by the share of their area inside, points whole.
    """
    if not points_lonlat:
        return {"area_km2": 0.0, "geometry": None, "crs": None}
    lon0 = sum(p[0] for p in points_lonlat) / len(points_lonlat)
    lat0 = sum(p[1] for p in points_lonlat) / len(points_lonlat)
    crs = utm_crs(lon0, lat0)
    fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xs, ys = fwd.transform([p[0] for p in points_lonlat], [p[1] for p in points_lonlat])
    area = shapely.union_all(shapely.buffer(shapely.points(xs, ys), radius_m, quad_segs=12))
    out = {"area_km2": round(area.area / 1e6, 3), "geometry": area, "crs": crs, "transformer": fwd, "radius_m": radius_m}
    if population is not None:
        gj = json.loads(Path(population).read_text(encoding="utf-8"))
        total = covered = 0.0
        for feat in gj.get("features", []):
            pop = float((feat.get("properties") or {}).get(population_field) or 0)
            geom = shp_transform(lambda x, y, z=None: fwd.transform(x, y), shapely.geometry.shape(feat["geometry"]))
            total += pop
            if geom.geom_type == "Point":
                covered += pop if area.contains(geom) else 0.0
            elif geom.area > 0:
                covered += pop * geom.intersection(area).area / geom.area
        out["population_total"] = round(total)
        out["population_covered"] = round(covered)
        out["population_share"] = round(covered / total, 4) if total else None
    return out


def _route_name(short: str | None, long: str | None, route_id: str) -> str:
    """Return a route's legend name: short and long name together when both exist, else whichever exists, else its id."""
    parts = [x.strip() for x in (short, long) if x and x.strip()]
    return " ".join(dict.fromkeys(parts)) or route_id


def _route_color(color: str | None, n: int) -> str:
    """Return the route's own colour (#rrggbb), unless it is missing, malformed or too light to see on a map; then a palette colour."""
    c = (color or "").strip().lstrip("#")
    if len(c) == 6 and all(ch in "0123456789abcdefABCDEF" for ch in c):
        r, g, b = (int(c[i:i + 2], 16) for i in (0, 2, 4))
        if 0.2126 * r + 0.7152 * g + 0.0722 * b < 215:
            return f"#{c.lower()}"
    return PALETTE[n % len(PALETTE)]


def map_layers(feeds: list[Version]) -> tuple[list[dict], list[tuple[float, float, str]]]:
    """Return the routes and stops to draw: one route per feed and name, each with its lines in (lon, lat), and (lon, lat, name) stops.

    A route's lines are its shapes, or the stop sequence of its longest trip when it has no shape. Routes of one feed
    with the same name (the directions of a line, often) are one legend entry, toggled together.
    """
    routes: dict[tuple[str, str], dict] = {}
    stops: list[tuple[float, float, str]] = []
    for v in feeds:
        con = v.con
        names = {rid: _route_name(s, l_, rid) for rid, s, l_ in con.sql(
            "SELECT route_id, route_short_name, route_long_name FROM routes ORDER BY coalesce(route_sort_order, 0), route_id").fetchall()}
        colors = dict(con.sql("SELECT route_id, route_color FROM routes").fetchall())
        lines: list[tuple[str, list]] = []
        if con.sql("SELECT count(*) FROM shapes").fetchall()[0][0] > 0:
            q = "SELECT DISTINCT route_id, shape_id FROM trips WHERE shape_id IS NOT NULL ORDER BY route_id, shape_id"
            for rid, sid in con.sql(q).fetchall():
                lines.append((rid, con.sql("SELECT shape_pt_lon, shape_pt_lat FROM shapes WHERE shape_id = $s AND shape_pt_lon IS NOT NULL "
                                           "ORDER BY shape_pt_sequence", params={"s": sid}).fetchall()))
        with_line = {rid for rid, pts in lines if len(pts) >= 2}  # a route whose shapes have no points is drawn by its stops
        q = ("SELECT t.route_id, arg_max(t.trip_id, (SELECT count(*) FROM stop_times s WHERE s.trip_id = t.trip_id)) FROM trips t "
             "GROUP BY t.route_id ORDER BY t.route_id")
        for rid, tid in con.sql(q).fetchall():
            if rid in with_line:
                continue
            lines.append((rid, con.sql("SELECT s.stop_lon, s.stop_lat FROM stop_times st JOIN stops s USING (stop_id) WHERE st.trip_id = $t "
                                       "AND s.stop_lon IS NOT NULL ORDER BY st.stop_sequence", params={"t": tid}).fetchall()))
        order = {rid: i for i, rid in enumerate(names)}
        for rid, pts in sorted(lines, key=lambda x: order.get(x[0], len(order))):
            if len(pts) < 2:
                continue
            name = names.get(rid, rid)
            entry = routes.setdefault((v.feed_id, name), {"feed_id": v.feed_id, "name": name, "route_ids": [], "lines": [],
                                                          "color": _route_color(colors.get(rid), len(routes))})
            if rid not in entry["route_ids"]:
                entry["route_ids"].append(rid)
            entry["lines"].append(pts)
        stops += con.sql("SELECT stop_lon, stop_lat, stop_name FROM stops WHERE stop_lon IS NOT NULL AND stop_lat IS NOT NULL "
                         "AND coalesce(location_type, 0) = 0 ORDER BY stop_id").fetchall()
    return list(routes.values()), stops


#: The basemap: OpenStreetMap's standard tiles (https://operations.osmfoundation.org/policies/tiles/), with the attribution they require.
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
#: The vendored map library (Leaflet, from the npm registry) and the page's map script, copied beside each report.
STATIC = Path(__file__).parent / "static"


def map_data(routes: list[dict], stops: list[tuple[float, float, str]], cov: dict, *, lang: str) -> dict | None:
    """Return what the interactive map draws, in (lat, lon): routes (lines simplified to about 2 m), stops, the coverage area, bounds.

    If there is nothing to draw, then None.
    """
    fwd = cov.get("transformer")
    if fwd is None or not (routes or stops):
        return None
    inv = Transformer.from_crs(cov["crs"], "EPSG:4326", always_xy=True)

    def simplify(pts):
        xs, ys = fwd.transform([p[0] for p in pts], [p[1] for p in pts])
        line = shapely.LineString(list(zip(xs, ys))).simplify(2.0)
        lon, lat = inv.transform(*line.xy)
        return [[round(a, 6), round(b, 6)] for a, b in zip(lat, lon)]

    out_routes = [{"name": r["name"], "color": r["color"], "feed_id": r["feed_id"], "route_ids": r["route_ids"],
                   "lines": [simplify(pts) for pts in r["lines"]]} for r in routes]
    area = []
    geom = cov.get("geometry")
    if geom is not None:
        for poly in (list(geom.geoms) if hasattr(geom, "geoms") else [geom]):
            rings = []
            for ring in [poly.exterior, *poly.interiors]:
                lon, lat = inv.transform(*shapely.LineString(ring.coords).simplify(2.0).xy)
                rings.append([[round(a, 6), round(b, 6)] for a, b in zip(lat, lon)])
            area.append(rings)
    lats = [p[0] for r in out_routes for ln in r["lines"] for p in ln] + [s[1] for s in stops]
    lons = [p[1] for r in out_routes for ln in r["lines"] for p in ln] + [s[0] for s in stops]
    return {"routes": out_routes, "stops": [[round(s[1], 6), round(s[0], 6), s[2] or ""] for s in stops], "coverage": area,
            "bounds": [[min(lats), min(lons)], [max(lats), max(lons)]], "tiles": OSM_TILES, "attribution": OSM_ATTRIBUTION,
            "text": {"file": t("map_file", lang), "offline": t("map_offline", lang)}}


def legend_html(routes: list[dict], *, lang: str) -> str:
    """Return the route legend: one entry per route in a wrapping list (any number fits); a checkbox shows or hides the route."""
    if not routes:
        return ""
    items = "".join(
        f'<li><label title="{_e(r["name"])}"><input type="checkbox" checked data-route="{i}">'
        f'<span class="sw" style="background:{_e(r["color"])}"></span><span class="rn">{_e(r["name"])}</span></label></li>'
        for i, r in enumerate(routes))
    return f'<ul class="legend" id="route-legend" aria-label="{_e(t("routes", lang))}">{items}</ul>'


def svg_map(routes: list[dict], stops: list[tuple[float, float, str]], cov: dict, *, lang: str, width: int = 760, height: int = 520) -> str:
    """Return an SVG map (the page's map without script, and in print): the coverage area, each route's lines, the stops, a scale bar.

    The route legend is the HTML list beside it (legend_html), so names are never cut or drawn over each other.
    """
    fwd = cov.get("transformer")
    if fwd is None:
        return ""
    allx, ally = [], []
    proj_lines = []
    for i, r in enumerate(routes):
        for pts in r["lines"]:
            xs, ys = fwd.transform([p[0] for p in pts], [p[1] for p in pts])
            proj_lines.append((i, r["name"], r["color"], list(zip(xs, ys))))
            allx += list(xs)
            ally += list(ys)
    sx, sy = fwd.transform([s[0] for s in stops], [s[1] for s in stops]) if stops else ([], [])
    allx += list(sx)
    ally += list(sy)
    if cov.get("geometry") is not None:
        b = cov["geometry"].bounds
        allx += [b[0], b[2]]
        ally += [b[1], b[3]]
    if not allx:
        return ""
    minx, maxx, miny, maxy = min(allx), max(allx), min(ally), max(ally)
    pad = 20
    scale = min((width - 2 * pad) / max(maxx - minx, 1), (height - 2 * pad - 40) / max(maxy - miny, 1))

    offx = (width - 2 * pad - (maxx - minx) * scale) / 2

    def px(x, y):
        return pad + offx + (x - minx) * scale, height - pad - 40 - (y - miny) * scale

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{_e(t("map", lang))}"><rect width="{width}" height="{height}" fill="#fbfcfd"/>']
    geom = cov.get("geometry")
    if geom is not None:
        polys = list(geom.geoms) if hasattr(geom, "geoms") else [geom]
        for poly in polys:
            d = ""
            for ring in [poly.exterior, *poly.interiors]:
                coords = [px(x, y) for x, y in ring.coords]
                d += "M" + " L".join(f"{a:.1f},{b:.1f}" for a, b in coords) + " Z "
            parts.append(f'<path d="{d}" fill="#9fc5e8" fill-opacity="0.35" stroke="#6fa8dc" stroke-width="0.6" fill-rule="evenodd"/>')
    for i, name, c, pts in proj_lines:
        d = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in pts))
        parts.append(f'<polyline data-route="{i}" points="{d}" fill="none" stroke="{_e(c)}" stroke-width="2.2" stroke-opacity="0.85">'
                     f'<title>{_e(name)}</title></polyline>')
    for (x, y), (_, _, name) in zip(zip(sx, sy), stops):
        a, b = px(x, y)
        parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.6" fill="#fff" stroke="#1b1f24" stroke-width="1"><title>{_e(name)}</title></circle>')
    # scale bar
    span = max(maxx - minx, maxy - miny, 1) / 5
    bar_m = next(m for m in (c * 10 ** e for e in range(1, 7) for c in (1, 2, 5)) if m >= span * 0.6)
    parts.append(f'<line x1="{pad}" y1="{height - 22}" x2="{pad + bar_m * scale:.1f}" y2="{height - 22}" stroke="#1b1f24" stroke-width="3"/>'
                 f'<text x="{pad}" y="{height - 6}" font-size="12">{bar_m / 1000:g} km</text>')
    parts.append("</svg>")
    return "".join(parts)


def hour_axis(series: list[list[int | None]]) -> range:
    """Return the hours the per-hour chart shows: from the first to the last hour with service in any series.

    Hours past 23 (after-midnight service, GTFS times such as 25:10) stay on the axis when they have trips; an hour
    whose count is suppressed (None) counts as having trips. If no series has any, then 0–23.
    """
    used = [h for s in series for h, v in enumerate(s) if v is None or v]
    return range(min(used), max(used) + 1) if used else range(24)


def _nice_step(top: float) -> int:
    """Return a gridline step of 1, 2 or 5 times a power of ten giving three to five lines up to ``top``."""
    return next(m for m in (c * 10 ** e for e in range(0, 9) for c in (1, 2, 5)) if top / m <= 5)


def svg_hour_bars(series: list[tuple[str, list[int | None], str]], *, aria: str, suppressed: str = "", width: int = 760,
                  height: int = 260) -> str:
    """Return a grouped bar chart per hour, one (label, counts by hour, colour) per series; the axis spans hour_axis.

    A count that is not published (None) is marked with ``suppressed`` (e.g. "<10"), never drawn as zero.
    """
    if not series:
        return ""
    axis = hour_axis([s for _, s, _ in series])
    hours = len(axis)
    top = max([v or 0 for _, s, _ in series for v in s] + [0]) or 1
    left, bottom, pad = 40, 30, 10
    gw = (width - left - pad - 24) / hours
    bw = gw / (len(series) + 0.5)
    ph = height - bottom - pad - 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_e(aria)}">']
    step = _nice_step(top)
    for yv in range(0, top + 1, step):
        y = pad + 20 + ph - yv / top * ph
        parts.append(f'<line x1="{left}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e1e4e8"/><text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{yv}</text>')
    every = 1 if hours <= 20 else 2
    for n, h in enumerate(axis):
        for i, (lab, s, color) in enumerate(series):
            v = s[h] if h < len(s) else 0
            if v is None and suppressed:
                x = left + n * gw + (i + 0.45) * bw
                parts.append(f'<text class="suppressed" x="{x:.1f}" y="{pad + 16 + ph:.1f}" font-size="9" text-anchor="middle" fill="#57606a">'
                             f'{_e(suppressed)}<title>{h}:00 {_e(lab)} {_e(suppressed)}</title></text>')
            elif v:
                bh = v / top * ph
                x = left + n * gw + i * bw
                parts.append(f'<rect x="{x:.1f}" y="{pad + 20 + ph - bh:.1f}" width="{bw * 0.9:.1f}" height="{bh:.1f}" fill="{color}"><title>{h}:00 {_e(lab)} {v}</title></rect>')
        if (h - axis.start) % every == 0 or h == axis.stop - 1:
            parts.append(f'<text class="hour" x="{left + n * gw + gw / 2:.1f}" y="{height - 12}" font-size="10" text-anchor="middle">{h}</text>')
    parts.append(f'<text x="{width - pad}" y="{height - 12}" font-size="10" text-anchor="end">h</text>')
    x0 = left
    for lab, _, color in series:
        parts.append(f'<rect x="{x0}" y="4" width="12" height="12" fill="{color}"/><text x="{x0 + 16}" y="14" font-size="12">{_e(lab)}</text>')
        x0 += 16 + _text_width(lab, 12) + 28
    parts.append("</svg>")
    return "".join(parts)


def _text_width(s: str, size: float) -> float:
    """Return about how wide ``s`` is drawn at font size ``size`` (full-width characters one em, others 0.6 em)."""
    return sum(size if ord(c) >= 0x2E80 else size * 0.6 for c in s)


DAY_COLORS = {"weekday": "#0b5394", "saturday": "#e69138", "sunday": "#cc4125"}


def svg_trips_per_hour(days: dict, *, lang: str, width: int = 760, height: int = 260) -> str:
    """Return the trips-per-hour chart of the representative days, one colour per day type."""
    series = [(f"{t(k, lang)} ({days[k]['date']})", days[k]["by_hour"], DAY_COLORS[k]) for k in DAY_TYPES if k in days]
    return svg_hour_bars(series, aria=t("per_hour", lang), width=width, height=height)


def svg_hbars(items: list[tuple[str, float, str]], *, unit: str, digits: int = 1, width: int = 760) -> str:
    """Return horizontal bars: (label, value, colour) each, values shown with ``digits`` decimals (0 for counts).

    A label too long for its column is shortened with "…"; the whole label is the bar's tooltip.
    """
    if not items:
        return ""
    top = max(v for _, v, _ in items) or 1
    h = 28 * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" width="100%" role="img">']
    for i, (lab, v, c) in enumerate(items):
        y = 6 + i * 28
        w = v / top * (width - 260)
        short = str(lab)
        while _text_width(short, 12) > 140 and len(short) > 1:
            short = short[:-2] + "…"
        parts.append(f'<g><title>{_e(lab)}</title><text x="150" y="{y + 15}" font-size="12" text-anchor="end">{_e(short)}</text>'
                     f'<rect x="160" y="{y}" width="{w:.1f}" height="20" fill="{c}"/>'
                     f'<text x="{166 + w:.1f}" y="{y + 15}" font-size="12">{v:,.{digits}f} {_e(unit)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Trip data (taxi, on-demand): the marts published by the trips pipeline, when there are any


def trip_data(ws: Workspace, names: list[str]) -> dict | None:
    """Return demand by zone and transit-gap figures for a municipality (by any of ``names``), or None without trip marts.

    Reads ``marts.trips_by_zone_hour`` and ``marts.transit_gap_by_municipality`` from the warehouse,
    read-only; a warehouse that is missing, busy or has no such tables gives None.
    """
    if not ws.warehouse.exists():
        return None
    names = [n for n in dict.fromkeys(names) if n]
    try:
        con = duckdb.connect(str(ws.warehouse), read_only=True)
    except duckdb.Error:
        return None
    from warehouse.trips import GAP_COUNTS, GAP_SHARES, privacy_k, suppress

    try:
        have = {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'").fetchall()}
        out: dict = {}
        params = {"names": names}
        sources: set[str] = set()
        for table in ("trips_by_zone_hour", "transit_gap_by_municipality"):
            if table in have:
                sources |= {r[0] for r in con.execute(f"SELECT DISTINCT source_id FROM marts.{table} "
                                                      "WHERE municipality IN (SELECT unnest($names))", params).fetchall()}
        k = privacy_k(con, sorted(sources))
        suppressed: dict[str, int] = {}
        if "trips_by_zone_hour" in have:
            have_zones = bool(con.sql("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'trips' AND table_name = 'zones'").fetchall()[0][0])
            # the zone layer's names (trips.zones), where it has them
            zone_names = ("SELECT zone_layer, zone_id, any_value(zone_name) AS zone_name FROM trips.zones WHERE coalesce(zone_name, '') <> '' "
                          "GROUP BY zone_layer, zone_id") if have_zones else "SELECT NULL AS zone_layer, NULL AS zone_id, NULL AS zone_name WHERE false"
            zones = con.execute(
                f"SELECT h.zone_id, sum(h.trips) AS trips, sum(h.passengers) AS passengers, any_value(n.zone_name) AS zone_name "
                f"FROM marts.trips_by_zone_hour h LEFT JOIN ({zone_names}) n ON n.zone_layer = h.zone_layer AND n.zone_id = h.zone_id "
                "WHERE h.municipality IN (SELECT unnest($names)) AND h.zone_id IS NOT NULL GROUP BY h.zone_id ORDER BY trips DESC, h.zone_id",
                params).fetchall()
            hours = dict(con.execute("SELECT hour, sum(trips) FROM marts.trips_by_zone_hour WHERE municipality IN (SELECT unnest($names)) "
                                     "GROUP BY hour", params).fetchall())
            modes = con.execute("SELECT mode, sum(trips) FROM marts.trips_by_zone_hour WHERE municipality IN (SELECT unnest($names)) "
                                "GROUP BY mode ORDER BY 2 DESC", params).fetchall()
            if zones:
                # every figure goes through the exports' suppression: cells with fewer than k trips are not published
                out["zones"], suppressed["zones"] = suppress(
                    [{"zone_id": z, "zone_name": zn, "trips": int(n), "passengers": int(p) if p is not None else None} for z, n, p, zn in zones],
                    k=k, groups=((),))  # the report's total is published: no one suppressed cell is its difference
                by_hour, suppressed["by_hour"] = suppress([{"hour": h, "trips": int(hours.get(h, 0))} for h in range(24)], k=k, groups=((),))
                kept = {r["hour"]: r["trips"] for r in by_hour}
                # an hour without trips stays 0; a suppressed hour is None (not published), not "no trips"
                out["by_hour"] = [kept.get(h, 0 if not hours.get(h) else None) for h in range(24)]
                suppressed["by_hour"] -= sum(1 for h in range(24) if not hours.get(h))
                kept_modes, suppressed["modes"] = suppress([{"mode": m, "trips": int(v)} for m, v in modes], k=k, groups=((),))
                out["modes"] = {r["mode"]: r["trips"] for r in kept_modes}
        if "transit_gap_by_municipality" in have:
            gaps = con.execute(
                "SELECT month, sum(trips), sum(gap_trips), sum(far_from_stop), sum(outside_service_hours) FROM marts.transit_gap_by_municipality "
                "WHERE municipality IN (SELECT unnest($names)) GROUP BY month ORDER BY month", params).fetchall()
            if gaps:
                out["transit_gaps"], suppressed["transit_gaps"] = suppress(
                    [{"month": m, "trips": int(t_), "gap_trips": int(g), "far_from_stop": int(f), "outside_service_hours": int(o),
                      "gap_share": round(g / t_, 4) if t_ else None} for m, t_, g, f, o in gaps], k=k, minor=GAP_COUNTS, shares=GAP_SHARES,
                    groups=((),))
        if out:
            out["k"] = k
            out["suppressed_cells"] = suppressed
        return out or None
    except duckdb.Error:
        return None
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Punctuality (issue 15): on-time performance of the realtime feeds of the report's static feeds


def punctuality(ws: Workspace, static_feed_ids: list[str], *, route_names: dict | None = None) -> dict | None:
    """Return the on-time performance of the realtime feeds whose static feed (rt.feeds.static_feed_id) is one of
    ``static_feed_ids``, from ``marts.rt_on_time_performance``: overall, by hour (local, of the scheduled arrival), by
    route, and by route and hour; each with observed arrivals, early, on time, late and on_time_share (on time /
    observed). None when no such feed has an observed arrival, or the warehouse has no realtime marts.

    ``route_names`` maps (static feed id, route_id) to the name shown. ``early_s`` / ``late_s`` are the window the
    mart was built with (default 60 / 300 s).
    """
    if not ws.warehouse.exists() or not static_feed_ids:
        return None
    try:
        con = duckdb.connect(str(ws.warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        have = {(r[0], r[1]) for r in con.sql("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
        if not {("rt", "feeds"), ("marts", "rt_on_time_performance")} <= have:
            return None
        feeds = con.execute("SELECT feed_id, static_feed_id FROM rt.feeds WHERE static_feed_id IN (SELECT unnest(?)) ORDER BY feed_id",
                            [list(static_feed_ids)]).fetchall()
        if not feeds:
            return None
        ids = [f for f, _ in feeds]
        static_of = dict(feeds)
        where = "WHERE feed_id IN (SELECT unnest($ids)) AND observed > 0"
        counts = ("sum(observed)::BIGINT AS observed, sum(early)::BIGINT AS early, sum(on_time)::BIGINT AS on_time, "
                  "sum(late)::BIGINT AS late, sum(mean_delay_s * observed) / sum(observed) AS mean_delay_s")
        total = con.execute(f"SELECT {counts}, min(early_s), max(late_s), count(DISTINCT (early_s, late_s)) "
                            f"FROM marts.rt_on_time_performance {where}", {"ids": ids}).fetchone()
        if not total[0]:
            return None

        def rows(group: str) -> list[dict]:
            rel = con.execute(f"SELECT {group}, {counts} FROM marts.rt_on_time_performance {where} GROUP BY ALL ORDER BY ALL", {"ids": ids})
            names = [d[0] for d in rel.description]
            out = []
            for r in rel.fetchall():
                d = dict(zip(names, r))
                d["on_time_share"] = round(d["on_time"] / d["observed"], 4)
                d["mean_delay_s"] = round(d["mean_delay_s"], 1) if d["mean_delay_s"] is not None else None
                out.append(d)
            return out

        period = None
        if ("marts", "rt_stop_events") in have:
            period = con.execute("SELECT min(service_date)::VARCHAR, max(service_date)::VARCHAR, count(DISTINCT service_date) "
                                 "FROM marts.rt_stop_events WHERE feed_id IN (SELECT unnest($ids)) AND observed_arrival IS NOT NULL",
                                 {"ids": ids}).fetchone()
        by_route = rows("feed_id, route_id")
        names = route_names or {}
        for r in by_route:
            r["route_name"] = names.get((static_of[r["feed_id"]], r["route_id"]), r["route_id"])
        return {
            "feeds": [{"feed_id": f, "static_feed_id": s} for f, s in feeds], "early_s": total[5], "late_s": total[6],
            "windows": total[7], "dates": {"first": period[0], "last": period[1], "days": period[2]} if period and period[0] else None,
            "observed": total[0], "early": total[1], "on_time": total[2], "late": total[3],
            "on_time_share": round(total[2] / total[0], 4), "mean_delay_s": round(total[4], 1) if total[4] is not None else None,
            "day_types": [r["day_type"] for r in rows("day_type")],
            "by_hour": rows("hour"), "by_route": by_route, "by_route_hour": rows("feed_id, route_id, hour"),
        }
    except duckdb.Error:
        return None
    finally:
        con.close()


def _span(seconds: int, lang: str) -> str:
    """Return a window edge in words: 60 → 1分 / 1 min, 90 → 90秒 / 90 s."""
    if seconds % 60 == 0:
        return f"{seconds // 60}分" if lang == "ja" else f"{seconds // 60} min"
    return f"{seconds}秒" if lang == "ja" else f"{seconds} s"


PUNCTUALITY_COLORS = {"early": "#e69138", "on_time": "#6aa84f", "late": "#cc4125"}


def svg_punctuality_hours(by_hour: list[dict], *, lang: str, width: int = 760, height: int = 280) -> str:
    """Return stacked bars per hour: the shares of early, on-time and late arrivals (of those observed), the on-time
    share written above each bar; each part's tooltip gives its count."""
    if not by_hour:
        return ""
    hours = list(range(min(r["hour"] for r in by_hour), max(r["hour"] for r in by_hour) + 1))
    at = {r["hour"]: r for r in by_hour}
    left, bottom, top_pad, pad = 44, 30, 44, 10
    gw = (width - left - pad) / len(hours)
    bw = min(gw * 0.7, 60)
    ph = height - bottom - top_pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{_e(t("punctuality_hours", lang))}" id="punctuality-hours">']
    for pct in (0, 25, 50, 75, 100):
        y = top_pad + ph - pct / 100 * ph
        parts.append(f'<line x1="{left}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e1e4e8"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{pct}%</text>')
    for n, h in enumerate(hours):
        x = left + n * gw + (gw - bw) / 2
        r = at.get(h)
        if r:
            y = top_pad + ph
            for k in ("on_time", "late", "early"):
                share = r[k] / r["observed"]
                if share:
                    bh = share * ph
                    y -= bh
                    parts.append(f'<rect class="{k}" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{PUNCTUALITY_COLORS[k]}">'
                                 f'<title>{h}:00 {_e(t(k, lang))} {r[k]:,} / {r["observed"]:,}</title></rect>')
            parts.append(f'<text class="share" x="{x + bw / 2:.1f}" y="{top_pad - 4:.1f}" font-size="11" text-anchor="middle" '
                         f'font-weight="600">{r["on_time_share"] * 100:.0f}%</text>')
        n_obs = f' <tspan fill="#57606a">(n={r["observed"]:,})</tspan>' if r else ""
        parts.append(f'<text x="{left + n * gw + gw / 2:.1f}" y="{height - 12}" font-size="10" text-anchor="middle">{h}{n_obs}</text>')
    parts.append(f'<text x="{width - pad}" y="{height - 12}" font-size="10" text-anchor="end">h</text>')
    x0 = left
    for k in ("on_time", "late", "early"):
        lab = t(k, lang)
        parts.append(f'<rect x="{x0}" y="4" width="12" height="12" fill="{PUNCTUALITY_COLORS[k]}"/>'
                     f'<text x="{x0 + 16}" y="14" font-size="12">{_e(lab)}</text>')
        x0 += 16 + _text_width(lab, 12) + 28
    parts.append("</svg>")
    return "".join(parts)


def _share_cell(share: float | None, observed: int = 0) -> str:
    """Return a table cell with an on-time share, shaded from red (low) to green (high); empty without observations."""
    if share is None or not observed:
        return "<td></td>"
    color = "#d9ead3" if share >= 0.9 else "#fff2cc" if share >= 0.7 else "#f4cccc"
    return f"<td class='num' style='background:{color}' title='{observed:,}'>{share * 100:.0f}%</td>"


def punctuality_html(p: dict | None, *, lang: str) -> str:
    """Return the page's punctuality section (a headline share, the window in one line, the by-hour plot and the
    route × hour table), or '' when the report's feeds have no realtime data."""
    if not p:
        return ""
    L = lambda k: _e(t(k, lang))  # noqa: E731
    ja = lang == "ja"
    d = p.get("dates") or {}
    if d:
        period = d["first"] if d["first"] == d["last"] else (f"{d['first']}～{d['last']}" if ja else f"{d['first']} to {d['last']}")
    else:
        period = ""
    kinds = [t({"sunday_holiday": "sunday"}.get(k, k), lang) for k in p.get("day_types") or [] if k in ("weekday", "saturday", "sunday_holiday")]
    if kinds:
        period += ("（" + "・".join(kinds) + "）") if ja else " (" + ", ".join(kinds) + ")"
    if p.get("windows", 1) > 1:
        period += "、フィードにより判定幅が異なります" if ja else "; the feeds' windows differ"
    line = t("punctuality_window", lang).format(early=_span(p["early_s"], lang), late=_span(p["late_s"], lang),
                                                 period=period, n=f"{p['observed']:,}")
    out = f"<section id='punctuality'><h2>{L('punctuality')}</h2>"
    delay = ""
    if p.get("mean_delay_s") is not None:
        delay = (f"（{t('mean_delay', lang)} {p['mean_delay_s']:+.0f} 秒）" if ja else f" ({t('mean_delay', lang)} {p['mean_delay_s']:+.0f} s)")
    out += (f"<p class='headline'>{L('on_time_share')}: <b id='on-time-share'>{p['on_time_share'] * 100:.1f}%</b>"
            f" <span class='en'>{L('early')} {p['early']:,} / {L('on_time')} {p['on_time']:,} / {L('late')} {p['late']:,}{_e(delay)}</span></p>")
    out += f"<p class='window'>{_e(line)}</p>"
    out += f"<p class='en'>{L('rt_feeds')}: " + ", ".join(f"<code>{_e(f['feed_id'])}</code> → <code>{_e(f['static_feed_id'])}</code>"
                                                        for f in p["feeds"]) + "</p>"
    out += f"<h3>{L('punctuality_hours')}</h3>{svg_punctuality_hours(p['by_hour'], lang=lang)}"
    hours = sorted({r["hour"] for r in p["by_hour"]})
    cells = {(r["feed_id"], r["route_id"], r["hour"]): r for r in p["by_route_hour"]}
    out += (f"<h3>{L('punctuality_routes')}</h3><table class='punctuality'><tr><th>{L('route')}</th><th>{L('observed')}</th>"
            f"<th>{L('on_time_share')}</th><th>{L('mean_delay')}</th>" + "".join(f"<th class='num'>{h}{'時' if ja else ':00'}</th>" for h in hours)
            + "</tr>")
    for r in p["by_route"]:
        md = "" if r["mean_delay_s"] is None else (f"{r['mean_delay_s']:+.0f} 秒" if ja else f"{r['mean_delay_s']:+.0f} s")
        out += (f"<tr><th>{_e(r['route_name'])}</th><td class='num'>{r['observed']:,}</td>{_share_cell(r['on_time_share'], r['observed'])}"
                f"<td class='num'>{_e(md)}</td>"
                + "".join(_share_cell((c := cells.get((r["feed_id"], r["route_id"], h))) and c["on_time_share"], c["observed"] if c else 0)
                          for h in hours) + "</tr>")
    out += "</table></section>"
    return out


# ---------------------------------------------------------------------------------------------
# The report


def municipality_feeds(ws: Workspace, municipality: str) -> list[dict]:
    """Return the latest version metadata of the feeds whose spec names this municipality (code or name)."""
    from warehouse.versions import latest_versions

    out = []
    for fid, meta in latest_versions(ws, passing_only=False).items():
        muni = (json.loads(meta.get("spec") or "{}").get("municipality") or {})
        if municipality in (str(muni.get("code") or ""), muni.get("name")):
            out.append(meta)
    return out


def _list(items: list[str], n: int, lang: str) -> str:
    shown = ", ".join(_e(x) for x in items[:n])
    if len(items) > n:
        shown += f" … ({t('more', lang)} {len(items) - n})"
    return shown


def expiry_warnings(versions: list[Version], *, today: date) -> list[dict]:
    """Return the feeds whose data ends within EXPIRING_DAYS of ``today`` or has ended: a revision (改正) is due.

    The end is feed_info.feed_end_date when the feed gives one, else its last service day.
    """
    from warehouse.catalog import validity

    out = []
    for v in versions:
        end = v.meta.get("service_end")
        have = {r[0] for r in v.con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        if "feed_info" in have:
            fi = v.con.sql("SELECT max(feed_end_date)::VARCHAR FROM feed_info").fetchall()[0][0]
            end = fi or end
        state, left = validity(None, end, today)
        if state in ("expiring", "expired"):
            out.append({"feed_id": v.feed_id, "end_date": str(end)[:10], "days_left": left, "validity": state})
    return out


def build_report(ws: Workspace, *, municipality: str | None = None, feed_ids: list[str] | None = None, name: str | None = None,
                 key: str | None = None, population: Path | None = None, lang: str | None = None, today: date | None = None) -> dict:
    """Return the paths and figures of the report for a municipality (by code or name) or an explicit list of feeds.

    If a feed's data ends within 30 days of ``today`` (default: today), then the report warns that a revision is due.
    If no feed matches, then raise ValueError saying what was looked for.
    """
    from warehouse.versions import latest_versions

    latest = latest_versions(ws, passing_only=False)  # a report describes the newest service, even one its policy blocked
    if feed_ids:
        metas = [latest[f] for f in feed_ids if f in latest]
        missing = [f for f in feed_ids if f not in latest]
        if missing:
            raise ValueError(f"no version in the lake for feed(s) {', '.join(missing)}")
    else:
        metas = municipality_feeds(ws, municipality or "")
    if not metas:
        raise ValueError(f"no feed names the municipality {municipality!r} (municipality: {{code: ..., name: ...}} in its spec)")
    specs = [json.loads(m.get("spec") or "{}") for m in metas]
    muni = next((s.get("municipality") for s in specs if s.get("municipality")), {}) or {}
    name = name or muni.get("name") or municipality or ", ".join(m["feed_id"] for m in metas)
    is_jp = bool(muni.get("prefecture")) or any(m.get("profile") == "gtfs-jp" for m in metas) or any(
        (s.get("timezone") or "") == "Asia/Tokyo" for s in specs)
    lang = lang or ("ja" if is_jp else "en")
    country = "JP" if is_jp else None
    key = key or str(muni.get("code") or municipality or metas[0]["feed_id"])
    versions = [open_version(ws, {**m, "feed_id": m["feed_id"]}) for m in metas]
    try:
        stats = [version_stats(v, country) for v in versions]
        pts = []
        for v in versions:
            pts += v.con.sql("SELECT DISTINCT s.stop_lon, s.stop_lat FROM stops s WHERE s.stop_lon IS NOT NULL "
                             "AND s.stop_id IN (SELECT stop_id FROM stop_times)").fetchall()
        cov = coverage(pts, population=population)
        days: dict[str, dict] = {}
        for st in stats:
            for k, d in st["days"].items():
                acc = days.setdefault(k, {"date": d["date"], "trips": 0, "vehicle_hours": 0.0, "by_hour": [], "first": d["first"], "last": d["last"]})
                acc["trips"] += d["trips"]
                acc["vehicle_hours"] = round(acc["vehicle_hours"] + d["vehicle_hours"], 1)
                acc["by_hour"] = [a + b for a, b in zip(acc["by_hour"] + [0] * (len(d["by_hour"]) - len(acc["by_hour"])),
                                                          d["by_hour"] + [0] * (len(acc["by_hour"]) - len(d["by_hour"])))]
                acc["first"] = min(x for x in (acc["first"], d["first"]) if x) if (acc["first"] or d["first"]) else None
                acc["last"] = max(x for x in (acc["last"], d["last"]) if x) if (acc["last"] or d["last"]) else None
        routes, stops = map_layers(versions)
        map_svg = svg_map(routes, stops, cov, lang=lang)
        mdata = map_data(routes, stops, cov, lang=lang)
        flex = flex_service(versions, lang=lang)
        if flex["zones"]:
            mdata = with_zones(mdata, flex["zones"], lang=lang)
        legend = legend_html(routes, lang=lang)
        warnings = expiry_warnings(versions, today=today or date.today())
        route_names = {(v.feed_id, rid): _route_name(sn, ln, rid) for v in versions
                       for rid, sn, ln in v.con.sql("SELECT route_id, route_short_name, route_long_name FROM routes").fetchall()}
    finally:
        for v in versions:
            v.con.close()
    changes = [c for c in (change_report(ws, m["feed_id"], country=country) for m in metas) if c]
    figures = {
        "key": key, "name": name, "name_en": muni.get("name_en"), "lang": lang, "municipality": muni, "expiry_warnings": warnings,
        "feeds": [{"feed_id": m["feed_id"], "feed_version": m["feed_version"], "service_start": m.get("service_start"),
                   "service_end": m.get("service_end")} for m in metas],
        "stops": sum(s["stops"] for s in stats), "routes": sum(s["routes"] for s in stats), "days": days,
        "coverage": {k: v for k, v in cov.items() if k in ("area_km2", "radius_m", "population_total", "population_covered", "population_share")},
        "flex": {"zones": [{k: z[k] for k in ("feed_id", "location_id", "name", "booking")} for z in flex["zones"]],
                 "booking_rules": flex["booking_rules"]},
        "changes": changes, "trip_data": trip_data(ws, [str(muni.get("code") or ""), muni.get("name") or "", municipality or ""]),
        "punctuality": punctuality(ws, [m["feed_id"] for m in metas], route_names=route_names),
    }
    out_dir = ws.exports / "reports" / key
    out_dir.mkdir(parents=True, exist_ok=True)
    page = render(figures, map_svg=map_svg, lang=lang, map_data=mdata, legend=legend)
    copy_map_assets(out_dir)
    (out_dir / "index.html").write_text(page, encoding="utf-8")
    (out_dir / "report.json").write_text(json.dumps(figures, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return {"html": str(out_dir / "index.html"), "json": str(out_dir / "report.json"), **figures}


MAP_SCRIPT = "report-map.js"


def copy_map_assets(out_dir: Path) -> None:
    """Copy the vendored Leaflet (``leaflet/``) and the page's map script beside a report, so the folder works on its own, offline."""
    import shutil

    shutil.copytree(STATIC / "leaflet", out_dir / "leaflet", dirs_exist_ok=True)
    shutil.copy2(STATIC / MAP_SCRIPT, out_dir / MAP_SCRIPT)


def _script_json(doc) -> str:
    """Return JSON safe inside <script>: no "<" (so no "</script>" from a hostile stop name) and no line separators."""
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


MAP_CSS = (".map{height:520px;border:1px solid #d0d7de;background:#eef1f4;margin:.4rem 0}"
           ".legend{list-style:none;margin:.4rem 0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:4px 16px}"
           ".legend li{min-width:0}.legend label{display:flex;align-items:flex-start;gap:6px;font-size:.85rem;line-height:1.3}"
           ".legend .sw{flex:none;width:18px;height:5px;margin-top:.5em;border-radius:2px}"
           ".legend .rn{min-width:0;overflow-wrap:anywhere}.legend input{display:none;margin:.15em 0 0}.legend.live input{display:inline}"
           ".leaflet-tooltip{font-size:.85rem}.leaflet-container svg{background:none;border:0;margin:0}"
           "@media print{#map,#map-note{display:none!important}#svgmap{display:block!important}.legend input{display:none!important}}")


def _count(n: int | None, k: int) -> str:
    """Return a trip count for the page: a suppressed one (None) reads "< k"."""
    return f"&lt; {k}" if n is None else f"{n:,}"


def _share(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def render(f: dict, *, map_svg: str, lang: str, map_data: dict | None = None, legend: str = "") -> str:
    """Return the report page: HTML with inline SVG plots, and an interactive map (Leaflet, beside the page) over the SVG map.

    Without script, or without Leaflet, the SVG map stays; online and served, OpenStreetMap tiles are its basemap.
    """
    from warehouse.catalog import CSS

    L = lambda k: _e(t(k, lang))  # noqa: E731
    body = ""
    for w in f.get("expiry_warnings") or []:
        key = "expired_warning" if w["validity"] == "expired" else "expiring_warning"
        body += f"<p class='{'err' if w['validity'] == 'expired' else 'warn'}'>⚠ " + _e(t(key, lang).format(
            feed=w["feed_id"], end=w["end_date"], days=w["days_left"], ago=-w["days_left"])) + "</p>"
    body += f"<p>{L('feeds')}: " + ", ".join(
        f"<code>{_e(x['feed_id'])}</code> ({L('version')} <code>{_e(x['feed_version'])}</code>, {L('valid')} {_e(x['service_start'])} – {_e(x['service_end'])})"
        for x in f["feeds"]) + "</p>"
    body += (f"<table><tr><th>{L('stops')}</th><th>{L('routes')}</th>" + "".join(f"<th>{L('trips')} ({L(k)})</th>" for k in f["days"])
             + f"<th>{L('area')}</th></tr><tr><td class='num'>{f['stops']:,}</td><td class='num'>{f['routes']:,}</td>"
             + "".join(f"<td class='num'>{d['trips']:,}</td>" for d in f["days"].values())
             + f"<td class='num'>{f['coverage']['area_km2']:,.2f} {L('km2')}</td></tr></table>")
    body += f"<h2>{L('map')}</h2>"
    if map_data:
        body += (f'<div id="map" class="map" hidden></div><p id="map-note" class="en" hidden></p>'
                 f'<script type="application/json" id="map-data">{_script_json(map_data)}</script>')
    body += f'<div id="svgmap">{map_svg}</div>{legend}'
    if map_data:
        body += f'<script src="leaflet/leaflet.js"></script><script src="{MAP_SCRIPT}"></script>'

    body += flex_html(f.get("flex") or {}, lang=lang)
    body += f"<h2>{L('per_hour')}</h2>{svg_trips_per_hour(f['days'], lang=lang)}"
    colors = {"weekday": "#0b5394", "saturday": "#e69138", "sunday": "#cc4125"}
    body += f"<h2>{L('hours')}</h2>" + svg_hbars([(t(k, lang), d["vehicle_hours"], colors[k]) for k, d in f["days"].items()],
                                                 unit="h" if lang != "ja" else "時間")
    body += (f"<table><tr><th></th><th>{L('date_used')}</th><th>{L('trips')}</th><th>{L('first')}</th><th>{L('last')}</th></tr>"
             + "".join(f"<tr><th>{L(k)}</th><td>{_e(d['date'])}</td><td class='num'>{d['trips']:,}</td><td>{_e(d['first'])}</td><td>{_e(d['last'])}</td></tr>"
                       for k, d in f["days"].items()) + "</table>")
    body += punctuality_html(f.get("punctuality"), lang=lang)
    c = f["coverage"]
    body += f"<h2>{L('coverage')}</h2><p>{L('area')}: <b>{c['area_km2']:,.2f} {L('km2')}</b></p>"
    if c.get("population_total") is not None:
        share = f" ({c['population_share'] * 100:.1f}%)" if c.get("population_share") is not None else ""
        body += f"<p>{L('population')}: <b>{c['population_covered']:,} / {c['population_total']:,} {L('people')}{share}</b></p>"
    else:
        body += f"<p class='en'>{L('no_population')}</p>"
    body += f"<h2>{L('changes')}</h2>"
    if not f["changes"]:
        body += f"<p>{L('no_previous')}</p>"
    for ch in f["changes"]:
        body += (f"<h3><code>{_e(ch['feed_id'])}</code>: <code>{_e(ch['before'])}</code> ({_e(ch['before_valid'][0])}) → "
                 f"<code>{_e(ch['after'])}</code> ({_e(ch['after_valid'][0])})</h3>")
        rows = [(L("stops_changes") + " " + L("added"), len(ch["stops_added"]), _list([f"{s['stop_name']} ({s['stop_id']})" for s in ch["stops_added"]], 12, lang)),
                (L("stops_changes") + " " + L("removed"), len(ch["stops_removed"]), _list([f"{s['stop_name']} ({s['stop_id']})" for s in ch["stops_removed"]], 12, lang)),
                (L("stops_changes") + " " + L("renamed"), len(ch["stops_renamed"]), _list([f"{s['before']} → {s['after']} ({s['stop_id']})" for s in ch["stops_renamed"]], 12, lang)),
                (L("stops_changes") + " " + L("moved"), len(ch["stops_moved"]), _list([f"{s['stop_name']} {s['distance_m']} m" for s in ch["stops_moved"]], 12, lang)),
                (L("trips_changes") + " " + L("added"), len(ch["trips_added"]), _list([f"{x['route_name'] or x['route_id']} {x['departure'] or ''} ({x['trip_id']})" for x in ch["trips_added"]], 10, lang)),
                (L("trips_changes") + " " + L("removed"), len(ch["trips_removed"]), _list([f"{x['route_name'] or x['route_id']} {x['departure'] or ''} ({x['trip_id']})" for x in ch["trips_removed"]], 10, lang))]
        body += (f"<table><tr><th></th><th>{L('count')}</th><th>{L('name')}</th></tr>"
                 + "".join(f"<tr><th>{a}</th><td class='num'>{n:,}</td><td>{txt}</td></tr>" for a, n, txt in rows) + "</table>")
        body += (f"<table><tr><th></th><th>{L('trips')} {L('before')}</th><th>{L('trips')} {L('after')}</th><th>{L('diff')}</th>"
                 f"<th>{L('hours')} {L('before')}</th><th>{L('hours')} {L('after')}</th><th>{L('diff')}</th></tr>")
        for k, d in ch["days"].items():
            dt = d["trips_after"] - d["trips_before"]
            dh = d["vehicle_hours_after"] - d["vehicle_hours_before"]
            cls = lambda x: "ok" if x > 0 else ("err" if x < 0 else "")  # noqa: E731
            body += (f"<tr><th>{L(k)}</th><td class='num'>{d['trips_before']:,}</td><td class='num'>{d['trips_after']:,}</td>"
                     f"<td class='num {cls(dt)}'>{dt:+,}</td><td class='num'>{d['vehicle_hours_before']:,.1f}</td>"
                     f"<td class='num'>{d['vehicle_hours_after']:,.1f}</td><td class='num {cls(dh)}'>{dh:+,.1f}</td></tr>")
        body += "</table>"
    body += f"<h2>{L('demand')}</h2>"
    td = f.get("trip_data")
    if not td:
        body += f"<p>{L('no_trip_data')}</p>"
    else:
        k = td.get("k") or 10
        if td.get("zones"):
            body += f"<h3>{L('demand_zones')}</h3>" + svg_hbars(
                [(z.get("zone_name") or z["zone_id"], z["trips"], "#6aa84f") for z in td["zones"][:12]], unit=t("pickups", lang), digits=0)
            modes = ("、" if lang == "ja" else ", ").join(f"{mode_label(m, lang)} {v:,}{t('pickups', lang) if lang == 'ja' else ''}"
                                                         for m, v in td["modes"].items())
            body += f"<h3>{L('demand_hours')}</h3>" + svg_hour_bars(
                [(f"{t('all_days', lang)}（{modes}）" if lang == "ja" else f"{t('all_days', lang)} ({modes})", td["by_hour"], "#6aa84f")],
                aria=t("demand_hours", lang), suppressed=f"<{k}")
        if td.get("transit_gaps"):
            body += (f"<h3>{L('gaps')}</h3><table><tr><th>{L('month')}</th><th>{L('trip_records')}</th><th>{L('gap_trips')}</th><th>{L('far')}</th>"
                     f"<th>{L('outside_hours')}</th><th>{L('share')}</th></tr>"
                     + "".join(f"<tr><td>{_e(g['month'])}</td><td class='num'>{_count(g['trips'], k)}</td><td class='num'>{_count(g['gap_trips'], k)}</td>"
                               f"<td class='num'>{_count(g['far_from_stop'], k)}</td><td class='num'>{_count(g['outside_service_hours'], k)}</td>"
                               f"<td class='num'>{_share(g['gap_share'])}</td></tr>"
                               for g in td["transit_gaps"]) + "</table>")
        body += f"<p class='en'>{_e(t('suppressed', lang).format(k=k))}</p>"
    title = f"{f['name']} {t('title', lang)}"
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{_e(title)}</title>{"<link rel=stylesheet href=leaflet/leaflet.css>" if map_data else ""}'
            f"<style>{CSS}h3{{font-size:1rem}}svg{{background:#fff;border:1px solid #d0d7de;margin:.4rem 0}}{MAP_CSS}</style></head>"
            f'<body><header><a href="../../site/index.html">Noriba</a><h1>{_e(title)}</h1></header><main>{body}</main></body></html>\n')


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def write_pdf(html_path: Path, pdf_path: Path | None = None) -> Path | None:
    """Return the PDF printed from the report page by headless Chromium (Playwright), or None when no Chromium is installed."""
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        return None
    from playwright.sync_api import sync_playwright

    pdf_path = pdf_path or Path(html_path).with_suffix(".pdf")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(Path(html_path).resolve().as_uri())
            page.pdf(path=str(pdf_path), format="A4", print_background=True, margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"})
        finally:
            browser.close()
    return pdf_path


# ---------------------------------------------------------------------------------------------
# GTFS-Flex (issue 16): service zones on the map and booking rules in plain words


def _clock(seconds: int | None, lang: str) -> str:
    if seconds is None:
        return ""
    h, m = divmod(int(seconds) // 60, 60)
    if lang == "ja":
        return f"{h}時" + (f"{m}分" if m else "")
    return f"{h}:{m:02d}"


def _minutes(n: int, lang: str) -> str:
    if lang == "ja":
        return f"{n // 1440}日" if n % 1440 == 0 else f"{n // 60}時間" if n % 60 == 0 else f"{n}分"
    return f"{n // 1440} day(s)" if n % 1440 == 0 else f"{n // 60} hour(s)" if n % 60 == 0 else f"{n} minutes"


def _days_before(d: int, lang: str) -> str:
    if lang == "ja":
        return "当日" if d == 0 else "前日" if d == 1 else f"{d}日前の"
    return "the same day" if d == 0 else "the day before" if d == 1 else f"{d} days before"


def booking_words(rule: dict, *, lang: str = "ja") -> str:
    """Return a booking rule in plain words, e.g. 「前日17時までに電話予約（電話 0120-000-000）」 or 「30分前までに予約」.

    The deadline comes from prior_notice_last_day/_last_time (booking_type 2) or prior_notice_duration_min (1);
    the channel from phone_number and booking_url.
    """
    ja = lang == "ja"
    phone, url = rule.get("phone_number"), rule.get("booking_url") or rule.get("info_url")
    if ja:
        channel = "電話またはウェブで予約" if phone and rule.get("booking_url") else "電話予約" if phone else "ウェブで予約" if rule.get("booking_url") else "予約"
    else:
        channel = "book by phone or online" if phone and rule.get("booking_url") else "book by phone" if phone else "book online" if rule.get("booking_url") else "book"
    bt = rule.get("booking_type")
    when = ""
    if bt == 0:
        when = "乗車直前まで随時" if ja else "any time up to departure: "
    elif bt == 1 and rule.get("prior_notice_duration_min") is not None:
        n = rule["prior_notice_duration_min"]
        when = f"{_minutes(n, lang)}前までに" if ja else f"at least {_minutes(n, lang)} ahead: "
    elif bt == 2 and rule.get("prior_notice_last_day") is not None:
        d, tm = rule["prior_notice_last_day"], _clock(rule.get("prior_notice_last_time"), lang)
        when = f"{_days_before(d, lang)}{tm}までに" if ja else f"by {tm or 'the end of'} {_days_before(d, lang)}: "
    text = f"{when}{channel}" if ja else (when + channel)
    if ja and bt == 1 and rule.get("prior_notice_duration_max") is not None:
        text += f"（{_minutes(rule['prior_notice_duration_max'], lang)}前から受付）"
    if rule.get("prior_notice_start_day") is not None:
        start = f"{_days_before(rule['prior_notice_start_day'], lang)}{_clock(rule.get('prior_notice_start_time'), lang)}"
        text += f"（{start}から受付）" if ja else f" (from {start})"
    contact = [x for x in ((("電話 " if ja else "phone ") + phone) if phone else None, url) if x]
    if contact:
        text += ("（" + "、".join(contact) + "）") if ja else " (" + ", ".join(contact) + ")"
    return text


def flex_service(feeds: list[Version], *, lang: str) -> dict:
    """Return the GTFS-Flex service of the feeds: zones to draw (rings in lat, lon, simplified) and booking rules in words."""
    zones, rules = [], []
    for v in feeds:
        con = v.con
        words = {}
        for r in con.sql("SELECT * FROM booking_rules ORDER BY _line").to_arrow_table().to_pylist():
            words[r["booking_rule_id"]] = booking_words(r, lang=lang)
            rules.append({"feed_id": v.feed_id, "booking_rule_id": r["booking_rule_id"], "words": words[r["booking_rule_id"]],
                          "message": r.get("message")})
        where = _booking_rule_places(con, lang=lang)
        for r in rules:
            if r["feed_id"] == v.feed_id:
                r["where"] = where.get(r["booking_rule_id"], "")
        used = {}
        for zone, rule in con.sql(
                "SELECT coalesce(location_id, stop_id), coalesce(pickup_booking_rule_id, drop_off_booking_rule_id) FROM stop_times "
                "WHERE coalesce(pickup_booking_rule_id, drop_off_booking_rule_id) IS NOT NULL GROUP BY ALL ORDER BY ALL").fetchall():
            used.setdefault(zone, []).append(words.get(rule, rule))
        for lid, name, geom in con.sql("SELECT location_id, stop_name, geometry FROM locations WHERE geometry IS NOT NULL ORDER BY _line").fetchall():
            g = shapely.from_wkb(bytes(geom)).simplify(0.00002)
            polys = [p for p in (g.geoms if hasattr(g, "geoms") else [g]) if p.geom_type == "Polygon"]
            rings = [[[[round(y, 6), round(x, 6)] for x, y in ring.coords] for ring in (p.exterior, *p.interiors)] for p in polys]
            zones.append({"feed_id": v.feed_id, "location_id": lid, "name": name or lid, "booking": used.get(lid, []), "rings": rings})
    return {"zones": zones, "booking_rules": rules}


def _booking_rule_places(con, *, lang: str) -> dict[str, str]:
    """Return {booking_rule_id: the routes and zones whose stop times use it, in words}, so a reader sees the service, not an id."""
    sep = "、" if lang == "ja" else ", "
    zone_name = "coalesce(l.stop_name, g.location_group_name, s.stop_name, st.location_id, st.location_group_id, st.stop_id)"
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views()").fetchall()}
    joins = (("LEFT JOIN locations l ON l.location_id = st.location_id " if "locations" in have else "")
             + ("LEFT JOIN location_groups g ON g.location_group_id = st.location_group_id " if "location_groups" in have else "")
             + "LEFT JOIN stops s ON s.stop_id = st.stop_id ")
    if "locations" not in have:
        zone_name = zone_name.replace("l.stop_name, ", "")
    if "location_groups" not in have:
        zone_name = zone_name.replace("g.location_group_name, ", "")
    try:
        rows = con.execute(
            "SELECT b.rule, string_agg(DISTINCT coalesce(r.route_short_name, r.route_long_name, r.route_id), ?), "
            "string_agg(DISTINCT b.zone, ?) FROM (SELECT unnest([st.pickup_booking_rule_id, st.drop_off_booking_rule_id]) AS rule, "
            f"st.trip_id, {zone_name} AS zone FROM stop_times st {joins}) b "
            "JOIN trips t ON t.trip_id = b.trip_id JOIN routes r ON r.route_id = t.route_id WHERE b.rule IS NOT NULL GROUP BY b.rule",
            [sep, sep]).fetchall()
    except Exception:  # a feed without one of these tables: the id is shown alone
        return {}
    return {rule: (f"{routes}（{zones}）" if lang == "ja" else f"{routes} ({zones})") if zones else routes
            for rule, routes, zones in rows}


def with_zones(mdata: dict | None, zones: list[dict], *, lang: str) -> dict:
    """Return the map data with the service zones added and the bounds widened to them (a map of zones alone if none)."""
    out = dict(mdata) if mdata else {"routes": [], "stops": [], "coverage": [], "tiles": OSM_TILES, "attribution": OSM_ATTRIBUTION,
                                     "text": {"file": t("map_file", lang), "offline": t("map_offline", lang)}}
    pts = [p for z in zones for rings in z["rings"] for ring in rings for p in ring]
    if mdata:
        pts += mdata["bounds"]
    out["zones"] = zones
    out["bounds"] = [[min(p[0] for p in pts), min(p[1] for p in pts)], [max(p[0] for p in pts), max(p[1] for p in pts)]]
    return out


def flex_html(flex: dict, *, lang: str) -> str:
    """Return the page's section on demand-responsive service: its zones and how to book, or '' when the feeds have none."""
    if not flex.get("zones") and not flex.get("booking_rules"):
        return ""
    ja = lang == "ja"
    out = f"<h2>{'デマンド交通（予約制の区域運行）' if ja else 'Demand-responsive service (book ahead)'}</h2>"
    if flex.get("zones"):
        out += (f"<p>{'運行区域' if ja else 'Service zones'}: {len(flex['zones']):,}"
                f"{'（地図に橙色で表示）' if ja else ' (orange on the map)'}</p>")
    if flex.get("booking_rules"):
        out += (f"<table><tr><th>{'路線（区域）' if ja else 'Service (zones)'}</th><th>{'予約方法' if ja else 'How to book'}</th></tr>"
                + "".join(f"<tr><td title=\"booking_rule_id {_e(r['booking_rule_id'])}\">"
                          f"{_e(r.get('where')) if r.get('where') else '<code>' + _e(r['booking_rule_id']) + '</code>'}</td>"
                          f"<td>{_e(r['words'])}</td></tr>" for r in flex["booking_rules"])
                + "</table>")
    return out
