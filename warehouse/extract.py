"""Extract: cut working GTFS tables (see :mod:`warehouse.merge`) by area, date window, agency or route.

A trip that leaves the area keeps the stop_times whose stop is inside it; its first and last
kept stops must have times, so the cut moves inward to the nearest timed stop. A trip that
leaves and comes back keeps both parts and is listed as cut in the middle. Every trip cut or
removed is in the returned manifest. Then everything no longer used is removed, in dependency
order: stops (and their stations, entrances and levels), routes, agencies, services, shapes
(clipped to the area), frequencies, transfers, fares, translations and the GTFS-JP files.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import shapely
from shapely.geometry import box, shape

from transforms.canonical import lit, q
from warehouse.merge import TRANSLATION_SPACES, Work


def area_geometry(area: dict):
    """Return the shapely geometry of an export spec's ``area`` ({bbox} or {geojson})."""
    if "bbox" in area:
        return box(*area["bbox"])
    return shape(area["geojson"])


def _has(work: Work, t: str) -> bool:
    return t in work.tables


def _delete_unreferenced(work: Work, table: str, col: str, ref_sql: str, *, keep_null: bool = True) -> int:
    """Delete rows of ``table`` whose ``col`` is not among the values ``ref_sql`` selects; return how many."""
    if not _has(work, table):
        return 0
    w = q("w_" + table)
    cond = f"{q(col)} NOT IN (SELECT v FROM ({ref_sql}) WHERE v IS NOT NULL)"
    if keep_null:
        cond = f"{q(col)} IS NOT NULL AND {cond}"
    else:
        cond = f"({q(col)} IS NULL OR {cond})"
    n = work.con.sql(f"SELECT count(*) FROM {w} WHERE {cond}").fetchall()[0][0]
    if n:
        work.con.execute(f"DELETE FROM {w} WHERE {cond}")
    return n


def _restrict_dates(work: Work, start: date | None, end: date | None) -> dict:
    """Clip calendars to the window; drop services with no day of service in it, and their trips."""
    con = work.con
    info: dict = {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None}
    s_sql = f"DATE '{start.isoformat()}'" if start else None
    e_sql = f"DATE '{end.isoformat()}'" if end else None
    in_window = " AND ".join(x for x in (f"date >= {s_sql}" if s_sql else "", f"date <= {e_sql}" if e_sql else "") if x) or "true"
    if _has(work, "calendar"):
        # Each calendar row's days of service in the window, counted, not listed (a row of centuries would be millions of
        # rows): n = its weekdays in [lo, hi] (whole weeks, then the days left from lo's weekday); it runs in the window if n
        # is more than the dates calendar_dates.txt removes from those very days.
        lo = f"greatest(start_date, {s_sql})" if s_sql else "start_date"
        hi = f"least(end_date, {e_sql})" if e_sql else "end_date"
        f = "[" + ", ".join(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")) + "]"
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _days AS SELECT service_id, lo, hi, f, "
            "(hi - lo + 1) // 7 * list_sum(f) + coalesce(list_sum(list_transform(range((hi - lo + 1) % 7), "
            "lambda k: f[(isodow(lo) - 1 + k) % 7 + 1])), 0) AS n "
            f"FROM (SELECT service_id, {lo} AS lo, {hi} AS hi, {f} AS f FROM w_calendar WHERE {lo} <= {hi}) WHERE lo <= hi")
        removed_days = ("(SELECT c.service_id, count(DISTINCT x.date) AS r FROM _days c JOIN w_calendar_dates x ON x.service_id = c.service_id "
                   "AND x.exception_type = 2 AND x.date BETWEEN c.lo AND c.hi AND c.f[isodow(x.date)] = 1 GROUP BY c.service_id)"
                   if _has(work, "calendar_dates") else "(SELECT NULL::VARCHAR AS service_id, 0 AS r WHERE false)")
        from_calendar = f"SELECT c.service_id FROM _days c LEFT JOIN {removed_days} x USING (service_id) WHERE c.n > coalesce(x.r, 0)"
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _days AS SELECT NULL::VARCHAR AS service_id, 0 AS n WHERE false")
        from_calendar = "SELECT service_id FROM _days"
    added = f" UNION SELECT service_id FROM w_calendar_dates WHERE exception_type = 1 AND {in_window}" if _has(work, "calendar_dates") else ""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _active AS SELECT DISTINCT service_id FROM ({from_calendar}{added})")
    removed = [r[0] for r in con.sql("SELECT DISTINCT service_id FROM w_trips WHERE service_id NOT IN (SELECT service_id FROM _active) ORDER BY 1").fetchall()]
    info["services_without_service_in_window"] = removed
    info["trips_removed"] = con.sql("SELECT count(*) FROM w_trips WHERE service_id NOT IN (SELECT service_id FROM _active)").fetchall()[0][0]
    con.execute("DELETE FROM w_trips WHERE service_id NOT IN (SELECT service_id FROM _active)")
    if _has(work, "calendar"):
        if s_sql:
            con.execute(f"UPDATE w_calendar SET start_date = {s_sql} WHERE start_date < {s_sql}")
        if e_sql:
            con.execute(f"UPDATE w_calendar SET end_date = {e_sql} WHERE end_date > {e_sql}")
        # a calendar left with no day inside the window goes; its service may live on in calendar_dates
        con.execute("DELETE FROM w_calendar WHERE start_date > end_date OR service_id NOT IN (SELECT service_id FROM _days WHERE n > 0)")
    if _has(work, "calendar_dates"):
        info["calendar_dates_outside_window"] = con.sql(f"SELECT count(*) FROM w_calendar_dates WHERE NOT ({in_window})").fetchall()[0][0]
        con.execute(f"DELETE FROM w_calendar_dates WHERE NOT ({in_window})")
    return info


def _restrict_area(work: Work, geom) -> dict:
    """Keep the stop_times whose stop is inside ``geom``, cut inward to timed stops; return trips cut and removed."""
    con = work.con
    stops = con.sql("SELECT stop_id, stop_lon, stop_lat FROM w_stops WHERE stop_lon IS NOT NULL AND stop_lat IS NOT NULL").fetchall()
    ids = [r[0] for r in stops]
    inside = shapely.contains_xy(geom, np.array([r[1] for r in stops], dtype=float), np.array([r[2] for r in stops], dtype=float)) if stops else []
    import pyarrow as pa

    con.register("_inside_in", pa.table({"stop_id": [i for i, ok in zip(ids, inside) if ok]}))
    con.execute("CREATE OR REPLACE TEMP TABLE _inside AS SELECT DISTINCT CAST(stop_id AS VARCHAR) AS stop_id FROM _inside_in")
    con.unregister("_inside_in")
    _flex_inside(work, geom)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _st AS SELECT trip_id, stop_sequence, "
        "coalesce(stop_id, location_group_id, location_id) IN (SELECT stop_id FROM _inside) AS inside, "
        "arrival_time IS NOT NULL OR end_pickup_drop_off_window IS NOT NULL AS has_arr, "
        "departure_time IS NOT NULL OR start_pickup_drop_off_window IS NOT NULL AS has_dep "
        "FROM w_stop_times")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _bounds AS SELECT trip_id, count(*) AS n, min(stop_sequence) AS first_seq, max(stop_sequence) AS last_seq, "
        "min(stop_sequence) FILTER (WHERE inside AND has_dep) AS lo, max(stop_sequence) FILTER (WHERE inside AND has_arr) AS hi "
        "FROM _st GROUP BY trip_id")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _keep AS SELECT s.trip_id, s.stop_sequence FROM _st s JOIN _bounds b USING (trip_id) "
        "WHERE s.inside AND s.stop_sequence BETWEEN b.lo AND b.hi")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _trip_cut0 AS SELECT b.trip_id, b.n, count(k.stop_sequence) AS kept, b.first_seq, b.last_seq, "
        "min(k.stop_sequence) AS kept_first, max(k.stop_sequence) AS kept_last "
        "FROM _bounds b LEFT JOIN _keep k USING (trip_id) GROUP BY ALL")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _trip_cut AS SELECT c.*, "
        "(SELECT count(*) FROM _st s WHERE s.trip_id = c.trip_id AND s.stop_sequence BETWEEN c.kept_first AND c.kept_last) - c.kept AS gap "
        "FROM _trip_cut0 c")
    removed = [r[0] for r in con.sql("SELECT trip_id FROM _trip_cut WHERE kept < 2 ORDER BY trip_id").fetchall()]
    cut = []
    for trip_id, n, kept, first, last, kf, kl, gap in con.sql(
            "SELECT trip_id, n, kept, first_seq, last_seq, kept_first, kept_last, gap FROM _trip_cut WHERE kept >= 2 AND kept < n ORDER BY trip_id").fetchall():
        where = [w for w, yes in (("start", kf > first), ("end", kl < last), ("middle", gap > 0)) if yes]
        cut.append({"trip_id": trip_id, "stop_times_before": n, "stop_times_kept": kept, "first_kept_sequence": kf,
                    "last_kept_sequence": kl, "cut_at": where})
    n_st = con.sql("SELECT count(*) FROM w_stop_times").fetchall()[0][0]
    con.execute("DELETE FROM w_stop_times WHERE (trip_id, stop_sequence) NOT IN (SELECT (trip_id, stop_sequence) FROM _keep) "
                "OR trip_id IN (SELECT trip_id FROM _trip_cut WHERE kept < 2)")
    con.execute("DELETE FROM w_trips WHERE trip_id IN (SELECT trip_id FROM _trip_cut WHERE kept < 2)")
    return {"stops_inside": int(np.count_nonzero(inside)) if len(stops) else 0, "stops_with_coordinates": len(stops),
            "trips_cut": cut, "trips_removed_leaving_fewer_than_2_stops": removed,
            "stop_times_removed": n_st - con.sql("SELECT count(*) FROM w_stop_times").fetchall()[0][0]}


def _clip_shapes(work: Work, geom) -> int:
    """Keep the shape points inside the area plus the one on each side of a boundary crossing; return points removed."""
    if not _has(work, "shapes"):
        return 0
    con = work.con
    pts = con.sql("SELECT shape_id, shape_pt_sequence, shape_pt_lon, shape_pt_lat FROM w_shapes ORDER BY shape_id, shape_pt_sequence").fetchall()
    if not pts:
        return 0
    inside = shapely.contains_xy(geom, np.array([p[2] for p in pts], dtype=float), np.array([p[3] for p in pts], dtype=float))
    keep = []
    i = 0
    while i < len(pts):
        j = i
        while j < len(pts) and pts[j][0] == pts[i][0]:
            j += 1
        flags = inside[i:j]
        near = flags.copy()
        near[1:] |= flags[:-1]
        near[:-1] |= flags[1:]
        if near.sum() >= 2:
            keep += [(pts[k][0], pts[k][1]) for k in range(i, j) if near[k - i]]
        else:  # the shape does not cross the area: keep it whole rather than break the trips that use it
            keep += [(pts[k][0], pts[k][1]) for k in range(i, j)]
        i = j
    import pyarrow as pa

    con.register("_keep_pts", pa.table({"shape_id": [k[0] for k in keep], "seq": [k[1] for k in keep]}))
    before = len(pts)
    con.execute("DELETE FROM w_shapes WHERE (shape_id, shape_pt_sequence) NOT IN (SELECT (shape_id, seq) FROM _keep_pts)")
    con.unregister("_keep_pts")
    return before - len(keep)


def remove_unused(work: Work) -> dict:
    """Remove every entity no longer used after trips were cut; return rows removed per file."""
    con = work.con
    gone: dict[str, int] = {}

    def add(table, n):
        if n:
            gone[f"{table}.txt"] = gone.get(f"{table}.txt", 0) + n

    # trips without stop_times (unless run by frequencies with stop_times — none left means unusable)
    add("trips", _delete_unreferenced(work, "trips", "trip_id", "SELECT DISTINCT trip_id AS v FROM w_stop_times", keep_null=False))
    add("stop_times", _delete_unreferenced(work, "stop_times", "trip_id", "SELECT trip_id AS v FROM w_trips", keep_null=False))
    add("frequencies", _delete_unreferenced(work, "frequencies", "trip_id", "SELECT trip_id AS v FROM w_trips", keep_null=False))
    add("routes", _delete_unreferenced(work, "routes", "route_id", "SELECT DISTINCT route_id AS v FROM w_trips", keep_null=False))
    used_stops = "SELECT DISTINCT stop_id AS v FROM w_stop_times"
    gone_flex = _remove_unused_flex(work)
    for t, n in gone_flex.items():
        add(t, n)
    if _has(work, "location_group_stops"):
        used_stops += " UNION SELECT stop_id FROM w_location_group_stops"
    # stops: used by stop_times, their stations, and entrances/nodes/boarding areas of kept stations
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stops_keep AS {used_stops}")
    con.execute("INSERT INTO _stops_keep SELECT DISTINCT parent_station FROM w_stops WHERE stop_id IN (SELECT v FROM _stops_keep) AND parent_station IS NOT NULL")
    con.execute("INSERT INTO _stops_keep SELECT stop_id FROM w_stops WHERE coalesce(location_type, 0) IN (2, 3, 4) "
                "AND parent_station IN (SELECT v FROM _stops_keep)")
    add("stops", _delete_unreferenced(work, "stops", "stop_id", "SELECT v FROM _stops_keep", keep_null=False))
    for t, cols in (("transfers", ("from_stop_id", "to_stop_id")), ("pathways", ("from_stop_id", "to_stop_id"))):
        for c in cols:
            add(t, _delete_unreferenced(work, t, c, "SELECT stop_id AS v FROM w_stops"))
    if _has(work, "transfers"):
        for c, ref in (("from_route_id", "route_id"), ("to_route_id", "route_id")):
            add("transfers", _delete_unreferenced(work, "transfers", c, f"SELECT {ref} AS v FROM w_routes"))
        for c in ("from_trip_id", "to_trip_id"):
            add("transfers", _delete_unreferenced(work, "transfers", c, "SELECT trip_id AS v FROM w_trips"))
    add("levels", _delete_unreferenced(work, "levels", "level_id", "SELECT level_id AS v FROM w_stops", keep_null=False))
    add("shapes", _delete_unreferenced(work, "shapes", "shape_id", "SELECT shape_id AS v FROM w_trips", keep_null=False))
    services = "SELECT service_id AS v FROM w_trips"
    add("calendar", _delete_unreferenced(work, "calendar", "service_id", services, keep_null=False))
    add("calendar_dates", _delete_unreferenced(work, "calendar_dates", "service_id", services, keep_null=False))
    add("routes_jp", _delete_unreferenced(work, "routes_jp", "route_id", "SELECT route_id AS v FROM w_routes", keep_null=False))
    add("office_jp", _delete_unreferenced(work, "office_jp", "office_id", "SELECT jp_office_id AS v FROM w_trips", keep_null=False))
    add("pattern_jp", _delete_unreferenced(work, "pattern_jp", "jp_pattern_id", "SELECT jp_pattern_id AS v FROM w_trips", keep_null=False))
    if _has(work, "agency"):
        used_agencies = "SELECT agency_id AS v FROM w_routes"
        if con.sql("SELECT count(*) FROM w_routes WHERE agency_id IS NULL").fetchall()[0][0] == 0:
            add("agency", _delete_unreferenced(work, "agency", "agency_id", used_agencies))
        add("agency_jp", _delete_unreferenced(work, "agency_jp", "agency_id", "SELECT agency_id AS v FROM w_agency", keep_null=False))
        add("fare_attributes", _delete_unreferenced(work, "fare_attributes", "agency_id", "SELECT agency_id AS v FROM w_agency"))
    if _has(work, "fare_rules"):
        add("fare_rules", _delete_unreferenced(work, "fare_rules", "route_id", "SELECT route_id AS v FROM w_routes"))
        for c in ("origin_id", "destination_id", "contains_id"):
            add("fare_rules", _delete_unreferenced(work, "fare_rules", c, "SELECT zone_id AS v FROM w_stops"))
        if _has(work, "fare_attributes"):
            add("fare_rules", _delete_unreferenced(work, "fare_rules", "fare_id", "SELECT fare_id AS v FROM w_fare_attributes", keep_null=False))
    if _has(work, "fare_attributes") and _table_exists(con, "_fares_with_rules"):
        # a fare whose every rule went no longer applies anywhere; a fare that never had rules stays
        cond = ("fare_id IN (SELECT fare_id FROM _fares_with_rules) AND fare_id NOT IN "
                + ("(SELECT fare_id FROM w_fare_rules)" if _has(work, "fare_rules") else "(SELECT NULL::VARCHAR WHERE false)"))
        add("fare_attributes", con.sql(f"SELECT count(*) FROM w_fare_attributes WHERE {cond}").fetchall()[0][0])
        con.execute(f"DELETE FROM w_fare_attributes WHERE {cond}")
    if _has(work, "attributions"):
        for c, ref in (("agency_id", "SELECT agency_id AS v FROM w_agency"), ("route_id", "SELECT route_id AS v FROM w_routes"),
                       ("trip_id", "SELECT trip_id AS v FROM w_trips")):
            add("attributions", _delete_unreferenced(work, "attributions", c, ref))
    if _has(work, "translations"):
        keep = {"stop": "SELECT stop_id FROM w_stops", "route": "SELECT route_id FROM w_routes", "trip": "SELECT trip_id FROM w_trips",
                "agency": "SELECT agency_id FROM w_agency" if _has(work, "agency") else None,
                "service": "SELECT service_id FROM w_trips", "fare": "SELECT fare_id FROM w_fare_attributes" if _has(work, "fare_attributes") else None,
                "level": "SELECT level_id FROM w_levels" if _has(work, "levels") else None,
                "pathway": "SELECT pathway_id FROM w_pathways" if _has(work, "pathways") else None,
                "office": "SELECT office_id FROM w_office_jp" if _has(work, "office_jp") else None,
                "pattern": "SELECT jp_pattern_id FROM w_pattern_jp" if _has(work, "pattern_jp") else None,
                "attribution": "SELECT attribution_id FROM w_attributions" if _has(work, "attributions") else None}
        for tname, space in TRANSLATION_SPACES.items():
            ref = keep.get(space) or "SELECT NULL::VARCHAR WHERE false"
            cond = f"table_name = {lit(tname)} AND record_id IS NOT NULL AND record_id NOT IN ({ref})"
            n = con.sql(f"SELECT count(*) FROM w_translations WHERE {cond}").fetchall()[0][0]
            if n:
                con.execute(f"DELETE FROM w_translations WHERE {cond}")
                add("translations", n)
    return gone


def _table_exists(con, name: str) -> bool:
    return bool(con.sql(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = {lit(name)}").fetchall()[0][0])


def extract(work: Work, *, area=None, dates: tuple[date | None, date | None] | None = None, agencies=(), routes=(),
            zones: str = "whole") -> dict:
    """Return the extract's manifest after cutting ``work`` in place by area, date window, agencies and routes.

    A GTFS-Flex zone that crosses the area's edge is kept whole (``zones="whole"``) or clipped to the
    area (``zones="clip"``); the manifest says which, and lists the zones crossing the edge.
    """
    if zones not in ZONE_MODES:
        raise ValueError(f"zones must be one of {ZONE_MODES}, not {zones!r}")
    con = work.con
    _flex_columns(work)
    before = work.rows()
    out: dict = {}
    if _has(work, "fare_rules"):
        con.execute("CREATE OR REPLACE TEMP TABLE _fares_with_rules AS SELECT DISTINCT fare_id FROM w_fare_rules")
    if agencies or routes:
        cond = []
        if routes:
            cond.append(f"route_id IN ({', '.join(lit(r) for r in routes)})")
        if agencies:
            cond.append(f"route_id IN (SELECT route_id FROM w_routes WHERE agency_id IN ({', '.join(lit(a) for a in agencies)}))")
        n = con.sql(f"SELECT count(*) FROM w_trips WHERE NOT ({' OR '.join(cond)})").fetchall()[0][0]
        con.execute(f"DELETE FROM w_trips WHERE NOT ({' OR '.join(cond)})")
        out["by_agency_or_route"] = {"agencies": list(agencies), "routes": list(routes), "trips_removed": n}
        con.execute("DELETE FROM w_stop_times WHERE trip_id NOT IN (SELECT trip_id FROM w_trips)")
    if dates and (dates[0] or dates[1]):
        out["dates"] = _restrict_dates(work, dates[0], dates[1])
        con.execute("DELETE FROM w_stop_times WHERE trip_id NOT IN (SELECT trip_id FROM w_trips)")
        if _has(work, "feed_info"):
            if dates[0]:
                con.execute(f"UPDATE w_feed_info SET feed_start_date = greatest(coalesce(feed_start_date, DATE '{dates[0]}'), DATE '{dates[0]}')")
            if dates[1]:
                con.execute(f"UPDATE w_feed_info SET feed_end_date = least(coalesce(feed_end_date, DATE '{dates[1]}'), DATE '{dates[1]}')")
    if area is not None:
        out["area"] = {"wkt_bounds": list(area.bounds), **_restrict_area(work, area)}
    out["removed_unused"] = remove_unused(work)
    if area is not None:
        out["area"]["shape_points_clipped"] = _clip_shapes(work, area)
        if _has(work, "locations"):
            out["area"]["zones"] = _zones_at_edge(work, area, zones)
    after = work.rows()
    out["rows_before"], out["rows_after"] = before, after
    out["note"] = ("trips leaving the area keep their stop_times inside it, cut inward to the nearest stop with a time; "
                   "every trip cut is listed with where it was cut (start, end, middle); shapes are clipped to the area; "
                   "a Flex zone touching the area is kept with its stop_times (area.zones says whether edge zones are whole or clipped)")
    json.dumps(out, default=str)  # the manifest must be JSON
    return out


# ---------------------------------------------------------------------------------------------
# GTFS-Flex (issue 16): zones and location groups in an extract by area

#: What happens to a zone crossing the area's edge: kept whole (default: riders may be picked up anywhere in it) or clipped.
ZONE_MODES = ("whole", "clip")
_FLEX_COLUMNS = (("location_group_id", "VARCHAR"), ("location_id", "VARCHAR"), ("start_pickup_drop_off_window", "INTEGER"),
                 ("end_pickup_drop_off_window", "INTEGER"), ("pickup_booking_rule_id", "VARCHAR"), ("drop_off_booking_rule_id", "VARCHAR"))


def _flex_columns(work: Work) -> None:
    """Give w_stop_times the Flex columns (empty) when no input had them, so the cuts can name them."""
    if _has(work, "stop_times"):
        for c, t in _FLEX_COLUMNS:
            work.con.execute(f"ALTER TABLE w_stop_times ADD COLUMN IF NOT EXISTS {q(c)} {t}")


def _zones(work: Work) -> list[tuple[str, object]]:
    rows = work.con.sql("SELECT location_id, geometry FROM w_locations WHERE geometry IS NOT NULL").fetchall()
    return [(i, shapely.from_wkb(bytes(g))) for i, g in rows]


def _flex_inside(work: Work, geom) -> None:
    """Add to ``_inside`` the zones that touch the area and the location groups with a stop inside it."""
    con = work.con
    if _has(work, "locations"):
        ids = [i for i, z in _zones(work) if z.intersects(geom)]
        if ids:
            con.executemany("INSERT INTO _inside VALUES (?)", [[i] for i in ids])
    if _has(work, "location_group_stops"):
        con.execute("INSERT INTO _inside SELECT DISTINCT location_group_id FROM w_location_group_stops "
                    "WHERE stop_id IN (SELECT stop_id FROM _inside)")


def _remove_unused_flex(work: Work) -> dict[str, int]:
    """Remove zones, location groups and booking rules no kept stop_time uses; return rows removed per file."""
    gone: dict[str, int] = {}
    geo = ("SELECT location_id AS v FROM w_stop_times UNION SELECT stop_id FROM w_stop_times")  # older drafts put zones in stop_id
    groups = "SELECT location_group_id AS v FROM w_stop_times UNION SELECT stop_id FROM w_stop_times"
    rules = "SELECT pickup_booking_rule_id AS v FROM w_stop_times UNION SELECT drop_off_booking_rule_id FROM w_stop_times"
    for table, col, ref, name in (("locations", "location_id", geo, "locations.geojson"),
                                  ("location_groups", "location_group_id", groups, "location_groups.txt"),
                                  ("location_group_stops", "location_group_id", groups, "location_group_stops.txt"),
                                  ("booking_rules", "booking_rule_id", rules, "booking_rules.txt")):
        n = _delete_unreferenced(work, table, col, ref, keep_null=False)
        if n:
            gone[name] = n
    return gone


def _zones_at_edge(work: Work, geom, mode: str) -> dict:
    """Return the manifest entry of the zones crossing the area's edge, after clipping them if ``mode`` is 'clip'."""
    crossing = [(i, z) for i, z in _zones(work) if not geom.contains(z)]
    if mode == "clip":
        for i, z in crossing:
            cut = shapely.make_valid(z.intersection(geom))
            work.con.execute("UPDATE w_locations SET geometry = ?, geometry_type = ? WHERE location_id = ?",
                             [shapely.to_wkb(cut), cut.geom_type, i])
    return {"mode": mode, "crossing_edge": sorted(i for i, _ in crossing),
            "note": ("zones crossing the area's edge are clipped to it" if mode == "clip" else
                     "zones crossing the area's edge are kept whole: riders may be picked up anywhere in them")}
