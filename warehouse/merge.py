"""Merge several feed versions from the lake into one GTFS (GTFS-JP when the inputs are).

Ids are namespaced per feed (``<namespace>:<id>``) only where they collide; stops with the same
name within a set distance are unified across feeds; the assignment of every source id to its
merged id is a crosswalk, reused on the next build so merged ids stay stable across versions.
Nothing is dropped silently: every collision, unification, same-name stop pair left apart (with its reason) and left-out
file is in the manifest.

The working tables live in one DuckDB connection as ``w_<table>``, with the source feed
(``_feed``), the feed's position in the export (``_ord``) and the source line (``_line``) beside
the canonical columns; :mod:`warehouse.extract` cuts the same tables, and :func:`write_feed`
writes them as a GTFS zip through :mod:`warehouse.export`.
"""

from __future__ import annotations

import json
import math
import tempfile
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

import duckdb

from warehouse.workspace import Workspace
from transforms.canonical import lit, q
from transforms.schema import Schema, load_schema

Progress = Callable[[str], None]

#: Every id space: the (table, field) pairs that hold its ids. The first pair defines the entity.
SPACES: dict[str, tuple[tuple[str, str], ...]] = {
    "agency": (("agency", "agency_id"), ("routes", "agency_id"), ("fare_attributes", "agency_id"),
               ("agency_jp", "agency_id"), ("attributions", "agency_id")),
    # GTFS-Flex zones and location groups share the stops' id space (duplicate_geography_id); they are
    # namespaced like stops when they collide and never unified by distance (_unify_stops reads stops only)
    "stop": (("stops", "stop_id"), ("stops", "parent_station"), ("stop_times", "stop_id"),
             ("transfers", "from_stop_id"), ("transfers", "to_stop_id"), ("pathways", "from_stop_id"),
             ("pathways", "to_stop_id"), ("locations", "location_id"), ("location_groups", "location_group_id"),
             ("location_group_stops", "location_group_id"), ("location_group_stops", "stop_id"),
             ("stop_times", "location_group_id"), ("stop_times", "location_id"), ("stop_areas", "stop_id")),
    "booking_rule": (("booking_rules", "booking_rule_id"), ("stop_times", "pickup_booking_rule_id"),
                     ("stop_times", "drop_off_booking_rule_id")),
    "route": (("routes", "route_id"), ("trips", "route_id"), ("fare_rules", "route_id"), ("transfers", "from_route_id"),
              ("transfers", "to_route_id"), ("attributions", "route_id"), ("routes_jp", "route_id"),
              ("routes", "jp_parent_route_id"), ("route_networks", "route_id")),
    "trip": (("trips", "trip_id"), ("stop_times", "trip_id"), ("frequencies", "trip_id"), ("transfers", "from_trip_id"),
             ("transfers", "to_trip_id"), ("attributions", "trip_id")),
    "service": (("calendar", "service_id"), ("calendar_dates", "service_id"), ("trips", "service_id"),
                ("booking_rules", "prior_notice_service_id"), ("timeframes", "service_id")),
    "shape": (("shapes", "shape_id"), ("trips", "shape_id")),
    "fare": (("fare_attributes", "fare_id"), ("fare_rules", "fare_id")),
    "zone": (("stops", "zone_id"), ("fare_rules", "origin_id"), ("fare_rules", "destination_id"),
             ("fare_rules", "contains_id")),
    "block": (("trips", "block_id"),),
    "level": (("levels", "level_id"), ("stops", "level_id")),
    "pathway": (("pathways", "pathway_id"),),
    "office": (("office_jp", "office_id"), ("trips", "jp_office_id")),
    "pattern": (("pattern_jp", "jp_pattern_id"), ("trips", "jp_pattern_id")),
    "attribution": (("attributions", "attribution_id"),),
    # Fares v2, networks and timeframes (read for MobilityData's rules): their ids are namespaced when they collide,
    # like every other id, so 29 feeds' rider category "1" do not become 29 rows of one key
    "rider_category": (("rider_categories", "rider_category_id"), ("fare_products", "rider_category_id")),
    "fare_media": (("fare_media", "fare_media_id"), ("fare_products", "fare_media_id")),
    "fare_product": (("fare_products", "fare_product_id"), ("fare_leg_rules", "fare_product_id"),
                     ("fare_transfer_rules", "fare_product_id")),
    "area": (("areas", "area_id"), ("stop_areas", "area_id"), ("fare_leg_rules", "from_area_id"),
             ("fare_leg_rules", "to_area_id")),
    "network": (("networks", "network_id"), ("route_networks", "network_id"), ("fare_leg_rules", "network_id")),
    "timeframe": (("timeframes", "timeframe_group_id"), ("fare_leg_rules", "from_timeframe_group_id"),
                  ("fare_leg_rules", "to_timeframe_group_id")),
    "leg_group": (("fare_leg_rules", "leg_group_id"), ("fare_transfer_rules", "from_leg_group_id"),
                  ("fare_transfer_rules", "to_leg_group_id")),
}

#: translations.txt: the id space its record_id refers to, by table_name.
TRANSLATION_SPACES = {
    "agency": "agency", "stops": "stop", "routes": "route", "trips": "trip", "stop_times": "trip",
    "calendar": "service", "fare_attributes": "fare", "levels": "level", "pathways": "pathway",
    "office_jp": "office", "pattern_jp": "pattern", "attributions": "attribution",
}

DEFAULT_STOP_DISTANCE_M = 30.0


@dataclass(frozen=True)
class MergeInput:
    feed_id: str
    feed_version: str
    namespace: str  # prefix for this feed's colliding ids


@dataclass
class Work:
    """Working GTFS tables ``w_<table>`` in ``con``, with the header of each output file."""

    con: duckdb.DuckDBPyConnection
    tables: list[str]
    headers: dict[str, list[str]]
    profile: str = "gtfs"
    manifest: dict = field(default_factory=dict)
    received_empty: set[str] = field(default_factory=set)  # tables every input had with a header and no rows
    feed_headers: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # feed -> file -> header as received

    def count(self, table: str) -> int:
        if table not in self.tables:
            return 0
        return self.con.sql(f"SELECT count(*) FROM {q('w_' + table)}").fetchall()[0][0]

    def rows(self) -> dict[str, int]:
        return {t: self.count(t) for t in self.tables}


def _say(progress: Progress | None, msg: str) -> None:
    if progress:
        progress(msg)


def norm_name(name: str | None) -> str:
    """Return a stop name folded for comparison: NFKC (full-width → half-width), no spaces, case-folded."""
    if not name:
        return ""
    return "".join(unicodedata.normalize("NFKC", name).split()).casefold()


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


def load_inputs(ws: Workspace, inputs: list[MergeInput], *, con: duckdb.DuckDBPyConnection | None = None) -> tuple[Work, dict]:
    """Return the working tables holding every input version's canonical rows, and each input's metadata."""
    schema = load_schema()
    con = con or duckdb.connect()
    metas: dict[str, dict] = {}
    headers: dict[str, dict[str, list[str]]] = {}
    for inp in inputs:
        part = ws.lake_partition("meta_feed_versions", inp.feed_id, inp.feed_version) / "part-0.parquet"
        if not part.exists():
            raise FileNotFoundError(f"feed {inp.feed_id} version {inp.feed_version} is not in the lake ({part})")
        row = con.sql(f"SELECT * FROM read_parquet({lit(str(part))}, hive_partitioning=false)").to_arrow_table().to_pylist()[0]
        metas[inp.feed_id] = row
        files = json.loads(row["files"])
        headers[inp.feed_id] = {n: [h.strip().lstrip("\ufeff") for h in info.get("header") or []] for n, info in files.items()}
    present = []
    for table in schema.tables.values():
        parts = []
        for i, inp in enumerate(inputs):
            part = ws.lake_partition(f"gtfs_{table.name}", inp.feed_id, inp.feed_version) / "part-0.parquet"
            if part.exists():
                parts.append(f"SELECT {lit(inp.feed_id)} AS _feed, {i} AS _ord, * FROM read_parquet({lit(str(part))}, hive_partitioning=false)")
        if not parts:
            continue
        con.execute(f"CREATE OR REPLACE TABLE {q('w_' + table.name)} AS {' UNION ALL BY NAME '.join(parts)}")
        present.append(table.name)
    work = Work(con=con, tables=present, headers=_union_headers(schema, present, headers),
                profile="gtfs-jp" if any(m.get("profile") == "gtfs-jp" for m in metas.values()) else "gtfs")
    work.received_empty = {t for t in present if work.count(t) == 0}
    work.feed_headers = headers
    return work, metas


def _union_headers(schema: Schema, present: list[str], headers: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    """Return, per table, the known fields any input had (standard order) and then the unknown columns (first seen first)."""
    out = {}
    for t in present:
        table = schema.tables[t]
        seen: list[str] = []
        for per_feed in headers.values():
            for h in per_feed.get(table.file_name, []):
                if h and h not in seen:
                    seen.append(h)
        known = [f.name for f in table.fields if f.name in seen]
        out[t] = known + [h for h in seen if table.field(h) is None]
    return out


def complete_headers(work: Work) -> None:
    """Add to each header the known fields the merge filled in (e.g. agency_id), in standard order."""
    schema = load_schema()
    for t in work.tables:
        table = schema.tables[t]
        have = set(work.headers.get(t, []))
        missing = [f for f in table.fields if f.name not in have]
        if not missing:
            continue
        sel = ", ".join(f"count({q(f.column)}) AS {q(f.name)}" for f in missing)
        counts = work.con.sql(f"SELECT {sel} FROM {q('w_' + t)}").fetchall()[0]
        added = {f.name for f, n in zip(missing, counts) if n}
        if added:
            unknown = [h for h in work.headers.get(t, []) if table.field(h) is None]
            work.headers[t] = [f.name for f in table.fields if f.name in have or f.name in added] + unknown


# ---------------------------------------------------------------------------------------------
# Merge


def _fill_agency_ids(work: Work, inputs: list[MergeInput]) -> list[dict]:
    """Give every agency an id and every route / fare its agency, as GTFS requires once feeds share one agency.txt."""
    con, filled = work.con, []
    if "agency" not in work.tables:
        return filled
    for inp in inputs:
        n = con.execute("SELECT count(*) FROM w_agency WHERE _feed = ? AND agency_id IS NULL", [inp.feed_id]).fetchall()[0][0]
        if n:
            con.execute("UPDATE w_agency SET agency_id = ? WHERE _feed = ? AND agency_id IS NULL", [inp.namespace, inp.feed_id])
            filled.append({"feed_id": inp.feed_id, "file": "agency.txt", "field": "agency_id", "rows": n, "value": inp.namespace})
    single = ("SELECT _feed, any_value(agency_id) AS agency_id FROM w_agency GROUP BY _feed HAVING count(*) = 1")
    for t in ("routes", "fare_attributes"):
        if t not in work.tables:
            continue
        rows = con.sql(f"SELECT x._feed, count(*) FROM {q('w_' + t)} x JOIN ({single}) a USING (_feed) WHERE x.agency_id IS NULL GROUP BY ALL ORDER BY 1").fetchall()
        con.execute(f"UPDATE {q('w_' + t)} x SET agency_id = a.agency_id FROM ({single}) a WHERE x._feed = a._feed AND x.agency_id IS NULL")
        for fid, n in rows:
            filled.append({"feed_id": fid, "file": f"{t}.txt", "field": "agency_id", "rows": n, "value": "the feed's only agency"})
    return filled


def _fill_absent_as_meant(work: Work, inputs: list[MergeInput]) -> list[dict]:
    """Fill, for an input without a column or file another input has, what GTFS says its absence means; return what was filled.

    Without this the merged feed would show the input's rows with the column empty (or its routes
    without a routes_jp row), a warning the input never had.
    """
    con, filled = work.con, []
    if "timepoint" in work.headers.get("stop_times", []):
        for inp in inputs:
            if "stop_times.txt" not in work.feed_headers.get(inp.feed_id, {}) or \
                    "timepoint" in work.feed_headers[inp.feed_id]["stop_times.txt"]:
                continue
            # GTFS stop_times.timepoint: "1 or empty - times are considered exact"; a stop time without times is interpolated
            n = con.execute("SELECT count(*) FROM w_stop_times WHERE _feed = ?", [inp.feed_id]).fetchall()[0][0]
            con.execute("UPDATE w_stop_times SET timepoint = CASE WHEN arrival_time IS NOT NULL OR departure_time IS NOT NULL "
                        "THEN 1 ELSE 0 END WHERE _feed = ?", [inp.feed_id])
            if n:
                filled.append({"feed_id": inp.feed_id, "file": "stop_times.txt", "field": "timepoint", "rows": n,
                               "value": "1 where the stop time has times, else 0",
                               "why": f"{inp.feed_id} has no timepoint column; in GTFS an empty timepoint means exact times "
                                      "where times are given"})
    for jp, base, key, what in (("routes_jp", "routes", "route_id", "route"), ("agency_jp", "agency", "agency_id", "agency")):
        if jp not in work.tables or base not in work.tables:
            continue
        for inp in inputs:
            if f"{jp}.txt" in work.feed_headers.get(inp.feed_id, {}):
                continue
            n = con.execute(f"SELECT count(*) FROM {q('w_' + base)} WHERE _feed = ? AND {q(key)} IS NOT NULL", [inp.feed_id]).fetchall()[0][0]
            if not n:
                continue
            con.execute(f"INSERT INTO {q('w_' + jp)} BY NAME SELECT _feed, _ord, _line, {q(key)} FROM {q('w_' + base)} "
                        f"WHERE _feed = ? AND {q(key)} IS NOT NULL", [inp.feed_id])
            filled.append({"feed_id": inp.feed_id, "file": f"{jp}.txt", "field": key, "rows": n,
                           "value": f"one row per {what}, other fields empty",
                           "why": f"{inp.feed_id} has no {jp}.txt; GTFS-JP wants a {jp} row for every {what}"})
    return filled


def service_overlap(metas: dict, inputs: list[MergeInput]) -> list[dict]:
    """Return one problem naming the feeds and their service periods if two inputs' periods share no day ([] otherwise)."""
    spans = [(i.feed_id, metas[i.feed_id].get("service_start"), metas[i.feed_id].get("service_end")) for i in inputs]
    spans = [s for s in spans if s[1] and s[2]]
    apart = [(a, b) for n, a in enumerate(spans) for b in spans[n + 1:] if a[2] < b[1] or b[2] < a[1]]
    if not apart:
        return []
    involved = [s for s in spans if any(s in pair for pair in apart)]
    pairs = "; ".join(f"{a[0]} ({a[1]} – {a[2]}) and {b[0]} ({b[1]} – {b[2]})" for a, b in apart)
    return [{"code": "service_periods_do_not_overlap", "severity": "WARNING",
             "feeds": [{"feed_id": f, "start": s, "end": e} for f, s, e in involved],
             "pairs": [[a[0], b[0]] for a, b in apart],
             "message": f"service periods do not overlap: {pairs}; no day has service from all of them, so the merged feed "
                        "is not one network on any day — check that these are the versions you meant to merge",
             "message_ja": "運行期間が重なっていません: " + pairs.replace(" and ", " と ")
                           + "。すべてのフィードが運行する日がないため、統合したフィードはどの日も 1 つの路線網になりません。"
                             "統合するバージョンが正しいか確認してください。"}]


def same_clock(zones: list[str], start: date, end: date) -> bool:
    """Return True if the time zones have the same UTC offset at every hour from ``start`` to ``end`` (so local times mean the same)."""
    from datetime import datetime, timezone as tz
    from zoneinfo import ZoneInfo

    infos = [ZoneInfo(z) for z in zones]
    t = datetime(start.year, start.month, start.day, tzinfo=tz.utc)
    stop = datetime(end.year, end.month, end.day, tzinfo=tz.utc) + timedelta(days=2)
    while t <= stop:
        offsets = {t.astimezone(i).utcoffset() for i in infos}
        if len(offsets) > 1:
            return False
        t += timedelta(hours=1)
    return True


def _harmonise_timezones(work: Work, metas: dict) -> tuple[list[dict], list[dict]]:
    """Give every agency the most common agency_timezone when the others keep the same clock over the service window.

    GTFS requires one time zone for all agencies of a feed. Zones with the same offsets (America/Vancouver
    and America/Los_Angeles) can be rewritten without changing any time; others are left as received and
    listed as a problem.
    """
    if "agency" not in work.tables:
        return [], []
    zones = dict(work.con.sql("SELECT agency_timezone, list(DISTINCT _feed ORDER BY _feed) FROM w_agency "
                              "WHERE agency_timezone IS NOT NULL GROUP BY ALL ORDER BY count(*) DESC, agency_timezone").fetchall())
    if len(zones) < 2:
        return [], []
    main = next(iter(zones))
    starts = [m["service_start"] for m in metas.values() if m.get("service_start")]
    ends = [m["service_end"] for m in metas.values() if m.get("service_end")]
    start = date.fromisoformat(min(starts)) if starts else date.today()
    end = min(date.fromisoformat(max(ends)) if ends else start, start + timedelta(days=3 * 366))
    filled, problems = [], []
    for z, feeds in zones.items():
        if z == main:
            continue
        try:
            ok = same_clock([main, z], start, end)
        except Exception:  # an unknown zone name: leave it, it is reported by validation
            ok = False
        if ok:
            work.con.execute("UPDATE w_agency SET agency_timezone = ? WHERE agency_timezone = ?", [main, z])
            filled += [{"feed_id": f, "file": "agency.txt", "field": "agency_timezone", "value": main,
                        "was": z, "why": f"{z} keeps the same clock as {main} from {start} to {end}; GTFS needs one time zone"} for f in feeds]
        else:
            problems.append({"code": "agencies_with_different_timezones", "timezones": {main: zones[main], z: feeds},
                             "message": f"{z} does not keep the same clock as {main}; GTFS requires one time zone for all agencies, "
                                        "the merged feed keeps each as received"})
    return filled, problems


def _unify_stops(work: Work, inputs: list[MergeInput], distance_m: float) -> tuple[dict, list[dict], list[dict]]:
    """Return {(feed, stop_id): (feed, stop_id) it is unified into}, the unifications and the near misses left apart.

    A stop is unified into a stop of an earlier feed with the same name (NFKC, spaces and case
    ignored) and location type within ``distance_m``; each target takes at most one stop per feed,
    nearest first. If the later feed prices fares by zone, then its stops keep their own zones and
    are not unified (the pair is listed instead). If taking the kept stop's coordinates would make a
    shape check fail for the later feed's trips where it passes as received (see :func:`_shape_harm`),
    then the pair is not unified and is listed with the check, the shape, the trips and both distances.
    """
    con = work.con
    if "stops" not in work.tables or distance_m <= 0:
        return {}, [], []
    zone_feeds = set()
    if "fare_rules" in work.tables:
        zone_feeds = {r[0] for r in con.sql(
            "SELECT DISTINCT _feed FROM w_fare_rules WHERE coalesce(origin_id, destination_id, contains_id) IS NOT NULL").fetchall()}
    rows = con.sql("SELECT _feed, _ord, stop_id, stop_name, stop_lat, stop_lon, coalesce(location_type, 0), zone_id "
                   "FROM w_stops WHERE stop_lat IS NOT NULL AND stop_lon IS NOT NULL ORDER BY _ord, _line").fetchall()
    by_feed: dict[int, list] = defaultdict(list)
    coords: dict[tuple[str, str], tuple[float, float]] = {}
    for r in rows:
        by_feed[r[1]].append(r)
        coords[(r[0], r[2])] = (r[4], r[5])
    keepers: dict[tuple[str, int], list] = defaultdict(list)  # (norm name, location type) -> stops kept so far
    unified: dict[tuple[str, str], tuple[str, str]] = {}
    carried: dict[tuple[str, str], tuple[str, str]] = {}  # kept stop -> (feed, zone_id) it takes from a unified stop
    groups: dict[tuple[str, str], dict] = {}
    apart: list[dict] = []
    cell = distance_m / 111_000 * 2
    for ord_ in sorted(by_feed):
        pairs = []
        for fid, _, sid, name, lat, lon, lt, zone in by_feed[ord_]:
            key = (norm_name(name), lt)
            if not key[0]:
                continue
            for k in keepers.get(key, ()):
                if abs(k[4] - lat) > cell:
                    continue
                d = haversine_m(lat, lon, k[4], k[5])
                if d <= distance_m:
                    pairs.append((d, (fid, sid, name, zone), k))
        pairs.sort(key=lambda p: (p[0], p[1][1], p[2][2]))
        harm = _shape_harm(work, [(p[1][0], p[1][1], *coords[(p[1][0], p[1][1])], p[2][4], p[2][5]) for p in pairs])
        taken_src, taken_dst = set(), set()
        for n, (d, (fid, sid, name, zone), k) in enumerate(pairs):
            src, dst = (fid, sid), (k[0], k[2])
            if src in taken_src or dst in taken_dst:
                continue
            carry = None
            if fid in zone_feeds and zone is not None:
                # the later feed's fares need its zone: the kept stop can take it only if it has none and its feed ignores zones
                if k[7] is None and k[0] not in zone_feeds and dst not in carried:
                    carry = zone
                else:
                    apart.append({"reason": "fare zones differ: the later feed prices fares by zone", "check": "fare_zones",
                                  "stop_name": name,
                                  "stops": [{"feed_id": k[0], "stop_id": k[2], "zone_id": k[7]},
                                            {"feed_id": fid, "stop_id": sid, "zone_id": zone}],
                                  "distance_m": round(d, 1)})
                    taken_src.add(src)
                    continue
            if harm.get(n):
                # left apart; the stop may still be unified with another same-name stop that harms no shape check
                apart.append({"reason": _harm_reason(harm[n][0], stop=f"{fid} {sid}", kept=f"{k[0]} {k[2]}", distance_m=d),
                              "check": harm[n][0]["check"], "stop_name": name,
                              "stops": [{"feed_id": k[0], "stop_id": k[2]}, {"feed_id": fid, "stop_id": sid}],
                              "distance_m": round(d, 1), "shapes": harm[n]})
                continue
            taken_src.add(src)
            taken_dst.add(dst)
            unified[src] = dst
            g = groups.setdefault(dst, {"stop_name": k[3], "kept": {"feed_id": k[0], "stop_id": k[2]}, "unified": []})
            g["unified"].append({"feed_id": fid, "stop_id": sid, "stop_name": name, "distance_m": round(d, 1)})
            if carry is not None:
                carried[dst] = (fid, carry)
                g["zone_id_from"] = {"feed_id": fid, "zone_id": carry}
        for fid, _, sid, name, lat, lon, lt, zone in by_feed[ord_]:
            if (fid, sid) not in unified and norm_name(name):
                keepers[(norm_name(name), lt)].append((fid, ord_, sid, name, lat, lon, lt, zone))
    work.manifest["_carried_zones"] = carried
    return unified, list(groups.values()), apart


def _shape_harm(work: Work, moves: list[tuple[str, str, float, float, float, float]]) -> dict[int, list[dict]]:
    """Return, by index in ``moves``, the shape checks that moving the stop would make fail where they pass as received.

    Each move is (feed, stop_id, lat, lon, new lat, new lon): a stop of a later feed taking the kept
    stop's coordinates. Two checks of :mod:`transforms.rules.shapes` depend on where a stop is: the
    last stop of a trip that runs past its shape's end must lie within ``TRIP_END_TOLERANCE_M`` of
    that end (else ``trip_distance_exceeds_shape_distance``, an ERROR), and a stop must lie within
    ``STOP_FAR_FROM_SHAPE_M`` of the shape of every trip calling there (``stop_too_far_from_shape``).
    Only the moved stop's own feed's trips and shapes are looked at: the kept stop does not move.
    """
    from transforms.rules.shapes import STOP_FAR_FROM_SHAPE_M, TRIP_END_TOLERANCE_M, stop_shape_distance_sql

    con = work.con
    if not moves or not {"trips", "stop_times", "shapes"} <= set(work.tables):
        return {}
    import pyarrow as pa

    out: dict[int, list[dict]] = defaultdict(list)
    by_feed: dict[str, list[int]] = defaultdict(list)
    for n, m in enumerate(moves):
        by_feed[m[0]].append(n)
    for fid, idx in sorted(by_feed.items()):
        con.register("_mv", pa.Table.from_pylist([{"i": n, "stop_id": moves[n][1], "lat": moves[n][2], "lon": moves[n][3],
                                                   "new_lat": moves[n][4], "new_lon": moves[n][5]} for n in idx]))
        f = lit(fid)
        # trips whose last stop (by shape_dist_traveled) is a moved stop and which run past their shape's end
        ends = con.sql(
            "WITH sh AS (SELECT shape_id, max(shape_dist_traveled) AS max_d, arg_max(shape_pt_lat, shape_pt_sequence) AS lat, "
            f"arg_max(shape_pt_lon, shape_pt_sequence) AS lon FROM w_shapes WHERE _feed = {f} GROUP BY shape_id "
            "HAVING max(shape_dist_traveled) IS NOT NULL), "
            "tr AS (SELECT trip_id, max(shape_dist_traveled) AS max_d, arg_max(stop_id, shape_dist_traveled) AS stop_id "
            f"FROM w_stop_times WHERE _feed = {f} AND shape_dist_traveled IS NOT NULL GROUP BY trip_id) "
            "SELECT m.i, t.shape_id, count(*), min(t.trip_id), any_value(sh.lat), any_value(sh.lon), "
            "any_value(m.lat), any_value(m.lon), any_value(m.new_lat), any_value(m.new_lon) "
            f"FROM w_trips t JOIN tr USING (trip_id) JOIN sh USING (shape_id) JOIN _mv m ON m.stop_id = tr.stop_id "
            f"WHERE t._feed = {f} AND tr.max_d > sh.max_d GROUP BY m.i, t.shape_id ORDER BY m.i, t.shape_id").fetchall()
        for i, shape, trips, trip, elat, elon, lat, lon, nlat, nlon in ends:
            before, after = haversine_m(lat, lon, elat, elon), haversine_m(nlat, nlon, elat, elon)
            if before <= TRIP_END_TOLERANCE_M < after:
                out[i].append({"check": "trip_distance_exceeds_shape_distance", "shape_id": shape, "trips": trips, "trip_id": trip,
                               "m_as_received": round(before, 1), "m_if_unified": round(after, 1), "tolerance_m": TRIP_END_TOLERANCE_M})
        # every shape of the trips calling at a moved stop: distance as received and if unified
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _mv_shapes AS SELECT m.i, t.shape_id, count(DISTINCT t.trip_id) AS trips, min(t.trip_id) AS trip_id "
            "FROM w_stop_times st JOIN w_trips t ON t._feed = st._feed AND t.trip_id = st.trip_id JOIN _mv m ON m.stop_id = st.stop_id "
            f"WHERE st._feed = {f} AND t.shape_id IS NOT NULL GROUP BY m.i, t.shape_id")
        points = ("SELECT CAST(s.i AS VARCHAR) || ':' || CAST(w AS VARCHAR) AS pid, s.shape_id, CASE w WHEN 0 THEN m.lat ELSE m.new_lat END AS lat, "
                  "CASE w WHEN 0 THEN m.lon ELSE m.new_lon END AS lon FROM _mv_shapes s JOIN _mv m USING (i), range(2) r(w)")
        shapes = f"SELECT shape_id, shape_pt_lat, shape_pt_lon, shape_pt_sequence FROM w_shapes WHERE _feed = {f}"
        far = con.sql(
            f"WITH d AS ({stop_shape_distance_sql(points, shapes)}) "
            "SELECT s.i, s.shape_id, s.trips, s.trip_id, b.d, a.d FROM _mv_shapes s "
            "JOIN d b ON b.shape_id = s.shape_id AND b.pid = CAST(s.i AS VARCHAR) || ':0' "
            "JOIN d a ON a.shape_id = s.shape_id AND a.pid = CAST(s.i AS VARCHAR) || ':1' "
            f"WHERE b.d <= {STOP_FAR_FROM_SHAPE_M} AND a.d > {STOP_FAR_FROM_SHAPE_M} ORDER BY s.i, s.shape_id").fetchall()
        for i, shape, trips, trip, before, after in far:
            out[i].append({"check": "stop_too_far_from_shape", "shape_id": shape, "trips": trips, "trip_id": trip,
                           "m_as_received": round(before, 1), "m_if_unified": round(after, 1), "tolerance_m": STOP_FAR_FROM_SHAPE_M})
        con.unregister("_mv")
        con.execute("DROP TABLE IF EXISTS _mv_shapes")
    return dict(out)


def _harm_reason(h: dict, *, stop: str, kept: str, distance_m: float) -> str:
    """Return why a stop pair is left apart, from one failing shape check of :func:`_shape_harm`."""
    head = f"unifying would move stop {stop} {distance_m:.1f} m onto {kept}, "
    trips = f"{h['trips']} trip(s) (e.g. trip_id {h['trip_id']})"
    if h["check"] == "trip_distance_exceeds_shape_distance":
        return (head + f"{h['m_if_unified']:.1f} m from the end of shape_id {h['shape_id']}, where {trips} end past the shape; "
                f"as received it is {h['m_as_received']:.1f} m, within the {h['tolerance_m']:g} m tolerance, so "
                "trip_distance_exceeds_shape_distance would become an ERROR")
    return (head + f"{h['m_if_unified']:.0f} m from shape_id {h['shape_id']} of the {trips} calling there; as received it is "
            f"{h['m_as_received']:.0f} m, within {h['tolerance_m']:g} m, so stop_too_far_from_shape would be reported")


def _carry_zones(work: Work, carried: dict, crosswalk: list[dict]) -> None:
    """Give each kept stop the (merged) zone of the stop unified into it, so the later feed's fares still apply."""
    if not carried:
        return
    merged = {(r["space"], r["feed_id"], r["source_id"]): r["merged_id"] for r in crosswalk}
    for (kfeed, kstop), (zfeed, zone) in carried.items():
        work.con.execute("UPDATE w_stops SET zone_id = ? WHERE _feed = ? AND stop_id = ?",
                         [merged.get(("zone", zfeed, zone), zone), kfeed, merged.get(("stop", kfeed, kstop), kstop)])


def _unify_agencies(work: Work) -> dict[tuple[str, str], tuple[str, str]]:
    """Return {(feed, agency_id): (feed, agency_id)} for agencies of later feeds identical (same id and name) to an earlier one."""
    if "agency" not in work.tables:
        return {}
    rows = work.con.sql("SELECT _feed, agency_id, agency_name FROM w_agency ORDER BY _ord, _line").fetchall()
    first: dict[tuple[str, str], str] = {}
    out = {}
    for fid, aid, name in rows:
        key = (aid, norm_name(name))
        if key in first and first[key] != fid:
            out[(fid, aid)] = (first[key], aid)
        else:
            first.setdefault(key, fid)
    return out


def _ids_by_space(work: Work) -> dict[str, list[tuple[str, str]]]:
    """Return, per id space, every (feed, id) used anywhere in the feeds, in feed order."""
    out = {}
    for space, pairs in SPACES.items():
        parts = [f"SELECT _feed, _ord, CAST({q(f)} AS VARCHAR) AS id FROM {q('w_' + t)} WHERE {q(f)} IS NOT NULL"
                 for t, f in pairs if t in work.tables]
        if not parts:
            continue
        out[space] = [(r[0], r[1]) for r in work.con.sql(
            f"SELECT _feed, id FROM ({' UNION ALL '.join(parts)}) GROUP BY _feed, _ord, id ORDER BY _ord, id").fetchall()]
    return out


def assign_ids(ids: dict[str, list[tuple[str, str]]], namespaces: dict[str, str], *,
               unified: dict[str, dict[tuple[str, str], tuple[str, str]]],
               previous: dict[tuple[str, str, str], str]) -> tuple[list[dict], dict[str, list[dict]]]:
    """Return the crosswalk (one row per space, feed and source id) and the collisions per space.

    An id keeps the merged id it had in the previous crosswalk when nobody else claims it;
    otherwise it stays as is unless another feed uses it too, then it becomes ``<namespace>:<id>``.
    A unified id takes the merged id of the entity it was unified into.
    """
    crosswalk: list[dict] = []
    collisions: dict[str, list[dict]] = {}
    for space, pairs in ids.items():
        uni = unified.get(space, {})
        own = [p for p in pairs if p not in uni]
        feeds_of: dict[str, list[str]] = defaultdict(list)
        for fid, i in own:
            feeds_of[i].append(fid)
        claimed: dict[str, tuple[str, str]] = {}
        merged: dict[tuple[str, str], tuple[str, str]] = {}
        for fid, i in own:
            prev = previous.get((space, fid, i))
            if prev and prev not in claimed:
                claimed[prev] = (fid, i)
                merged[(fid, i)] = (prev, "previous")
        for fid, i in own:
            if (fid, i) in merged:
                continue
            collides = len(feeds_of[i]) > 1
            cand = f"{namespaces[fid]}:{i}" if collides else i
            n = 1
            while cand in claimed:
                n += 1
                cand = f"{namespaces[fid]}:{i}" if n == 2 and not collides else f"{namespaces[fid]}:{i}~{n}"
            claimed[cand] = (fid, i)
            merged[(fid, i)] = (cand, "namespaced" if cand != i else "same")
        for (fid, i), (m, why) in merged.items():
            if why == "previous":
                why = "kept from previous build" + ("" if m == i else " (namespaced)")
            crosswalk.append({"space": space, "feed_id": fid, "source_id": i, "merged_id": m, "reason": why})
        for (fid, i), target in uni.items():
            m = merged.get(target, (target[1], ""))[0]
            crosswalk.append({"space": space, "feed_id": fid, "source_id": i, "merged_id": m,
                              "reason": f"unified with {target[0]} {target[1]}"})
        listed = []
        for i, fids in feeds_of.items():
            if len(fids) > 1:
                listed.append({"id": i, "feeds": fids, "merged_ids": {f: merged[(f, i)][0] for f in fids}})
        if listed:
            collisions[space] = sorted(listed, key=lambda c: c["id"])
    return crosswalk, collisions


def _apply_crosswalk(work: Work, crosswalk: list[dict], drop: dict[str, set[tuple[str, str]]]) -> None:
    """Rewrite every id field through the crosswalk and drop the rows of unified entities."""
    con = work.con
    changed = [r for r in crosswalk if r["merged_id"] != r["source_id"]]
    con.execute("CREATE OR REPLACE TEMP TABLE _xw (space VARCHAR, _feed VARCHAR, old_id VARCHAR, new_id VARCHAR)")
    if changed:
        import pyarrow as pa

        con.register("_xw_in", pa.Table.from_pylist([{"space": r["space"], "_feed": r["feed_id"], "old_id": r["source_id"],
                                                      "new_id": r["merged_id"]} for r in changed]))
        con.execute("INSERT INTO _xw SELECT * FROM _xw_in")
        con.unregister("_xw_in")
    fields_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for space, pairs in SPACES.items():
        for t, f in pairs:
            fields_of[t].append((f, space))
    for t in list(work.tables):
        w = q("w_" + t)
        if t in ("stops", "agency", "agency_jp"):
            space = "stop" if t == "stops" else "agency"
            key = "stop_id" if t == "stops" else "agency_id"
            gone = drop.get(space) or set()
            if gone:
                con.execute("CREATE OR REPLACE TEMP TABLE _gone (_feed VARCHAR, id VARCHAR)")
                con.executemany("INSERT INTO _gone VALUES (?, ?)", sorted(gone))
                con.execute(f"DELETE FROM {w} WHERE (_feed, {q(key)}) IN (SELECT (_feed, id) FROM _gone)")
        joins, repl = [], []
        for n, (f, space) in enumerate(fields_of.get(t, [])):
            joins.append(f"LEFT JOIN _xw m{n} ON m{n}.space = {lit(space)} AND m{n}._feed = t._feed AND m{n}.old_id = t.{q(f)}")
            repl.append(f"coalesce(m{n}.new_id, t.{q(f)}) AS {q(f)}")
        if t == "translations":
            case = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in TRANSLATION_SPACES.items())
            joins.append(f"LEFT JOIN _xw mr ON mr.space = (CASE t.table_name {case} END) AND mr._feed = t._feed AND mr.old_id = t.record_id")
            repl.append("coalesce(mr.new_id, t.record_id) AS record_id")
        if repl:
            con.execute(f"CREATE OR REPLACE TABLE {w} AS SELECT t.* REPLACE ({', '.join(repl)}) FROM {w} t {' '.join(joins)}")


def _dedupe(work: Work, table: str, key: list[str]) -> list[dict]:
    """Keep the first row (feed order) of each key; return the rows left out."""
    if table not in work.tables:
        return []
    con, w = work.con, q("w_" + table)
    k = ", ".join(f"{q(c)}" for c in key)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _dup AS SELECT _feed, _line, row_number() OVER (PARTITION BY {k} ORDER BY _ord, _line) AS n FROM {w}")
    dropped = [{"feed_id": f, "file": f"{table}.txt", "line": l}
               for f, l in con.sql("SELECT _feed, _line FROM _dup WHERE n > 1 ORDER BY _feed, _line").fetchall()]
    if dropped:
        con.execute(f"DELETE FROM {w} WHERE (_feed, _line) IN (SELECT (_feed, _line) FROM _dup WHERE n > 1)")
    return dropped


def _feed_info(work: Work, metas: dict, *, publisher: dict, version: str) -> None:
    """Replace the inputs' feed_info rows by one describing the merged feed (publisher, language, dates, version)."""
    con = work.con
    langs = set()
    if "feed_info" in work.tables:
        langs = {r[0] for r in con.sql("SELECT DISTINCT lower(feed_lang) FROM w_feed_info WHERE feed_lang IS NOT NULL").fetchall()}
    if not langs and "agency" in work.tables:
        langs = {r[0] for r in con.sql("SELECT DISTINCT lower(agency_lang) FROM w_agency WHERE agency_lang IS NOT NULL").fetchall()}
    lang = publisher.get("lang") or (langs.pop() if len(langs) == 1 else "mul")
    starts = [m["service_start"] for m in metas.values() if m.get("service_start")]
    ends = [m["service_end"] for m in metas.values() if m.get("service_end")]
    schema = load_schema().tables["feed_info"]
    cols = ", ".join(f"{q(c)} {t}" for c, t in schema.columns_sql() if c not in ("feed_id", "feed_version"))
    con.execute(f"CREATE OR REPLACE TABLE w_feed_info (_feed VARCHAR, _ord INTEGER, {cols})")
    con.execute(
        "INSERT INTO w_feed_info (_feed, _ord, _line, feed_publisher_name, feed_publisher_url, feed_lang, feed_start_date, "
        "feed_end_date, publisher_feed_version, feed_contact_email, feed_contact_url, _untyped, _extra) "
        "VALUES ('', 0, 2, ?, ?, ?, ?::DATE, ?::DATE, ?, ?, ?, NULL, NULL)",
        [publisher.get("name") or "Noriba", publisher.get("url") or "https://github.com/noriba", lang,
         min(starts) if starts else None, max(ends) if ends else None, version, publisher.get("email"), publisher.get("contact_url")],
    )
    if "feed_info" not in work.tables:
        work.tables.append("feed_info")
    header = ["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date", "feed_end_date", "feed_version"]
    header += [h for h, v in (("feed_contact_email", publisher.get("email")), ("feed_contact_url", publisher.get("contact_url"))) if v]
    work.headers["feed_info"] = header


def read_crosswalk(path: Path) -> dict[tuple[str, str, str], str]:
    """Return {(space, feed_id, source_id): merged_id} from a crosswalk CSV written by an earlier build (empty if none)."""
    import csv

    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {(r["space"], r["feed_id"], r["source_id"]): r["merged_id"] for r in csv.DictReader(fh)}


def write_crosswalk(rows: list[dict], path: Path) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["space", "feed_id", "source_id", "merged_id", "reason"], lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: (r["space"], r["feed_id"], r["source_id"])))
    tmp.replace(path)


def merge(ws: Workspace, inputs: list[MergeInput], *, previous_crosswalk: dict | None = None,
          stop_distance_m: float = DEFAULT_STOP_DISTANCE_M, publisher: dict | None = None, version: str = "",
          progress: Progress | None = None) -> tuple[Work, list[dict]]:
    """Return the merged working tables and the crosswalk of every id; the manifest is ``work.manifest``.

    If only one input is given, then its ids are kept as they are (nothing collides).
    """
    if len({i.feed_id for i in inputs}) != len(inputs):
        raise ValueError("a feed is listed twice in the merge inputs")
    if len({i.namespace for i in inputs}) != len(inputs):
        raise ValueError("two merge inputs have the same namespace")
    _say(progress, f"merge: loading {len(inputs)} feed version(s) from the lake")
    work, metas = load_inputs(ws, inputs)
    rows_in = work.rows()
    filled = _fill_agency_ids(work, inputs)
    filled += _fill_absent_as_meant(work, inputs)  # after agency ids: an agency_jp row needs its agency's id
    _say(progress, "merge: unifying stops and agencies")
    stop_unified, stop_groups, apart = _unify_stops(work, inputs, stop_distance_m)
    agency_unified = _unify_agencies(work)
    _say(progress, "merge: assigning ids")
    ids = _ids_by_space(work)
    crosswalk, collisions = assign_ids(ids, {i.feed_id: i.namespace for i in inputs},
                                       unified={"stop": stop_unified, "agency": agency_unified},
                                       previous=previous_crosswalk or {})
    _say(progress, "merge: rewriting ids")
    _apply_crosswalk(work, crosswalk, {"stop": set(stop_unified), "agency": set(agency_unified)})
    _carry_zones(work, work.manifest.pop("_carried_zones", {}), crosswalk)
    dropped_translations = _dedupe(work, "translations", ["table_name", "field_name", "language", "record_id", "record_sub_id",
                                                          "field_value", "trans_id", "lang"])
    dropped_agency_jp = _dedupe(work, "agency_jp", ["agency_id"])
    _feed_info(work, metas, publisher=publisher or {}, version=version)
    complete_headers(work)
    harmonised, problems = _harmonise_timezones(work, metas)
    filled += harmonised
    problems += service_overlap(metas, inputs)
    other = []
    for inp in inputs:
        part = ws.lake_partition("gtfs_other_files", inp.feed_id, inp.feed_version) / "part-0.parquet"
        if part.exists():
            for name, n in work.con.sql(f"SELECT file_name, count(*) FROM read_parquet({lit(str(part))}, hive_partitioning=false) GROUP BY ALL ORDER BY 1").fetchall():
                other.append({"feed_id": inp.feed_id, "file": name, "rows": n})
        blobs = ws.lake_partition("gtfs_other_blobs", inp.feed_id, inp.feed_version) / "part-0.parquet"
        if blobs.exists():
            for (name,) in work.con.sql(f"SELECT file_name FROM read_parquet({lit(str(blobs))}, hive_partitioning=false) ORDER BY 1").fetchall():
                other.append({"feed_id": inp.feed_id, "file": name, "rows": None})
    rows_out = work.rows()
    work.manifest = {
        "inputs": [{"feed_id": i.feed_id, "feed_version": i.feed_version, "namespace": i.namespace,
                    "profile": metas[i.feed_id].get("profile"), "content_sha256": metas[i.feed_id].get("content_sha256"),
                    "service_start": metas[i.feed_id].get("service_start"), "service_end": metas[i.feed_id].get("service_end"),
                    "spec": json.loads(metas[i.feed_id].get("spec") or "{}")} for i in inputs],
        "stop_distance_m": stop_distance_m,
        "collisions": collisions,
        "collision_counts": {s: len(c) for s, c in collisions.items()},
        "unified_stops": stop_groups,
        "stops_not_unified": apart,
        "unified_agencies": [{"kept": {"feed_id": d[0], "agency_id": d[1]}, "unified": {"feed_id": s[0], "agency_id": s[1]}}
                             for s, d in agency_unified.items()],
        "filled": filled,
        "left_out": {
            "unknown_files": [{**o, "why": "files outside GTFS/GTFS-JP may hold ids the merge rewrote; kept in each feed's own export"} for o in other],
            "duplicate_translations": dropped_translations,
            "duplicate_agency_jp": dropped_agency_jp,
            "feed_info": [{"feed_id": f, "why": "replaced by one feed_info row for the merged feed"} for f in metas],
        },
        "problems": problems,
        "rows_in": rows_in,
        "rows_out": rows_out,
    }
    return work, crosswalk


# ---------------------------------------------------------------------------------------------
# Writing and validating


def write_feed(work: Work, zip_path: Path, *, tables_dir: Path | None = None) -> Path:
    """Write the working tables as a GTFS zip (and, if ``tables_dir`` is given, as canonical Parquet with ``_feed``)."""
    from warehouse.export import write_gtfs_text, zip_dir

    schema = load_schema()
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=zip_path.parent) as tmpd:
        tmp = Path(tmpd)
        for t in work.tables:
            table = schema.tables[t]
            if work.count(t) == 0 and not table.required and t not in work.received_empty:
                continue  # emptied by an extract: left out rather than written as a header-only file
            if table.profile == "geojson":  # GTFS-Flex zones: locations.geojson rebuilt from the rows (ids rewritten)
                from transforms.flex.geojson import to_geojson

                rows = work.con.sql(f"SELECT location_id, stop_name, stop_desc, geometry, _extra FROM {q('w_' + t)} "
                                    "ORDER BY _ord, _line").to_arrow_table().to_pylist()
                (tmp / table.file_name).write_bytes(to_geojson(rows))
                continue
            write_gtfs_text(work.con, table, q("w_" + t), work.headers.get(t) or [f.name for f in table.fields if f.required],
                            tmp / table.file_name, order_by="_ord, _line")
        zip_dir(tmp, zip_path)
    if tables_dir is not None:
        tables_dir.mkdir(parents=True, exist_ok=True)
        for t in work.tables:
            cols = ["_feed", *(c for c, _ in schema.tables[t].columns_sql() if c not in ("feed_id", "feed_version"))]
            work.con.execute(f"COPY (SELECT {', '.join(q(c) for c in cols)} FROM {q('w_' + t)} ORDER BY _ord, _line) "
                             f"TO {lit(str(tables_dir / (t + '.parquet')))} (FORMAT parquet, COMPRESSION zstd)")
    return zip_path


def validate_zip(zip_path: Path, *, validation_date: date | None = None, profile: str | None = None,
                 work_dir: Path | None = None) -> dict[str, dict]:
    """Return {code: {severity, count}} found by Noriba's validator (reading, typing, structural checks and rules).

    The typed tables and the rules' spill folder are in a new folder of ``work_dir`` (the export's own folder in the
    workspace), else of the system's temporary folder; each call has its own."""
    from transforms.adapters import adapter_for
    from transforms.canonical import canonicalize
    from transforms.rules.engine import run_rules

    feed = adapter_for("gtfs").read(Path(zip_path))
    is_jp = profile == "gtfs-jp" or any(n.endswith("_jp.txt") for n in feed.files)
    con = duckdb.connect()
    with tempfile.TemporaryDirectory(prefix="noriba-validate-", dir=work_dir) as tmpd:
        tables = Path(tmpd) / "gtfs"  # the rules spill beside it (tmpd/_rules_spill), not into the shared parent folder
        canonicalize(feed, schema=load_schema(), out_dir=tables, profile="gtfs-jp" if is_jp else "gtfs", con=con)
        ruled = run_rules(tables, validation_date=validation_date, profile="gtfs-jp" if is_jp else "gtfs", con=con)
    con.close()
    feed.findings.add_table(ruled.notices, ruled.counts)
    out: dict[str, dict] = {}
    for (code, sev), n in feed.findings.counts.items():
        e = out.setdefault(code, {"severity": sev, "count": 0})
        e["count"] += n
    return out


def input_notices(ws: Workspace, inputs: list[MergeInput]) -> dict[str, dict]:
    """Return {code: {severity, count}} summed over the inputs, as recorded when each version was validated."""
    from transforms.rules.registry import rule_codes

    known = rule_codes()
    out: dict[str, dict] = {}
    con = duckdb.connect()
    for inp in inputs:
        meta = ws.lake_partition("meta_feed_versions", inp.feed_id, inp.feed_version) / "part-0.parquet"
        codes = json.loads(con.sql(f"SELECT notice_codes FROM read_parquet({lit(str(meta))}, hive_partitioning=false)").fetchall()[0][0] or "{}")
        sev = {}
        notes = ws.lake_partition("quality_notices", inp.feed_id, inp.feed_version) / "part-0.parquet"
        if notes.exists():
            sev = dict(con.sql(f"SELECT code, any_value(severity) FROM read_parquet({lit(str(notes))}, hive_partitioning=false) GROUP BY code").fetchall())
        for code, n in codes.items():
            e = out.setdefault(code, {"severity": sev.get(code) or (known[code].severity if code in known else "INFO"), "count": 0})
            e["count"] += n
    con.close()
    return out


def new_errors(found: dict[str, dict], before: dict[str, dict], *, severity: str = "ERROR") -> dict[str, dict]:
    """Return the codes of ``severity`` found more often in the output than in all its inputs together, with both counts."""
    out = {}
    for code, e in found.items():
        if e["severity"] != severity:
            continue
        had = before.get(code, {}).get("count", 0)
        if e["count"] > had:
            out[code] = {"count": e["count"], "inputs": had}
    return out


def validation_date_of(ws: Workspace, inputs: list[MergeInput]) -> date | None:
    """Return the latest date the inputs were validated for, so the output is judged on the same day."""
    con = duckdb.connect()
    days = []
    for inp in inputs:
        meta = ws.lake_partition("meta_feed_versions", inp.feed_id, inp.feed_version) / "part-0.parquet"
        d = con.sql(f"SELECT validation_date FROM read_parquet({lit(str(meta))}, hive_partitioning=false)").fetchall()[0][0]
        if d:
            days.append(date.fromisoformat(d))
    con.close()
    return max(days) if days else None


__all__ = ["MergeInput", "Work", "merge", "write_feed", "validate_zip", "input_notices", "new_errors", "read_crosswalk",
           "write_crosswalk", "assign_ids", "load_inputs"]
