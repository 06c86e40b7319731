"""Turn a checked ``ondemand:`` section into a GTFS-Flex feed and the service tables the marts read.

The feed: agency, routes (route_type 3 or 715), trips, stop_times with pickup/drop-off windows,
locations.geojson (the area as one zone), location_groups / location_group_stops (the fixed stops it
connects to, or a stop-based area), booking_rules, calendar (+ calendar_dates for public holidays),
fare_attributes / fare_rules, feed_info, and GTFS-JP agency_jp / office_jp for a Japanese town.
The same section gives byte-identical files (sorted, fixed zip timestamps), so the same leaflet is
the same feed version and a changed leaflet a new one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import shapely

from transforms.errors import InputError
from transforms.ondemand.spec import DAY_SETS, as_date, minutes

__all__ = ["Area", "OndemandFeed", "build_feed", "write_zip", "STOP_RADIUS_M"]

#: How close to a stop (metres) a booking's pickup or dropoff counts as at that stop, for the marts.
STOP_RADIUS_M = 150.0
ZONE_ID = "area"
GROUP_CONNECT = "connects"
GROUP_AREA = "area_stops"
BOOKING_ID = "booking"
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass
class Area:
    """The service area: a polygon (WGS84) or a list of stops, with a name."""
    name: str
    geometry: object | None = None  # shapely Polygon / MultiPolygon
    stops: list[dict] = field(default_factory=list)


@dataclass
class OndemandFeed:
    files: dict[str, bytes]  # GTFS file name -> content
    zones: list[dict]  # zone_id, zone_name, kind (zone | stop), geometry_wkt: what counts as inside the service
    windows: list[dict]  # service_date, start_s, end_s: when it runs, day by day
    booking: dict  # the booking rule as written to booking_rules.txt


def _csv(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue().encode("utf-8")


def _hms(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}:00"


def _round(geom) -> dict:
    """Return the geometry as a GeoJSON mapping with 6-decimal coordinates (about 0.1 m)."""
    g = shapely.set_precision(geom, 1e-6)
    g = shapely.make_valid(g) if not shapely.is_valid(g) else g
    if g.geom_type not in ("Polygon", "MultiPolygon"):  # make_valid may return a collection: keep its polygons
        polys = [p for p in getattr(g, "geoms", [g]) if p.geom_type in ("Polygon", "MultiPolygon")]
        g = shapely.union_all(polys)
    g = shapely.normalize(g)
    return json.loads(shapely.to_geojson(g))


def service_dates(section: dict, *, country: str | None) -> tuple[list[tuple[str, tuple, list[tuple[int, int]]]], list[tuple[str, date, int]], list[dict]]:
    """Return (services: id, weekday flags, windows), calendar_dates rows and the windows of each service date."""
    import holidays as holidays_pkg

    start, end = as_date(section["valid"]["from"]), as_date(section["valid"]["to"])
    hol = set(holidays_pkg.country_holidays(country, years=range(start.year, end.year + 1))) if country else set()
    hol = {d for d in hol if start <= d <= end}
    groups: dict[str, list[tuple[int, int]]] = {}
    for h in section["hours"]:
        groups.setdefault(h["days"], []).append((minutes(h["from"]), minutes(h["to"])))
    services = [(f"s_{days}", DAY_SETS[days], sorted(w)) for days, w in groups.items()]
    exceptions: list[tuple[str, date, int]] = []
    closed = section.get("holidays", "closed") == "closed"
    for sid, flags, _ in services:
        for d in sorted(hol):
            if sid == "s_holidays":
                exceptions.append((sid, d, 1))
            elif closed and flags[d.weekday()]:
                exceptions.append((sid, d, 2))
    off = {(sid, d) for sid, d, t in exceptions if t == 2}
    windows = []
    d = start
    while d <= end:
        for sid, flags, wins in services:
            runs = (d in hol) if sid == "s_holidays" else (flags[d.weekday()] and (sid, d) not in off)
            if runs:
                windows.extend({"service_date": d, "service_id": sid, "start_s": a * 60, "end_s": b * 60} for a, b in wins)
        d += timedelta(days=1)
    return services, exceptions, windows


def _booking(section: dict) -> dict:
    b = section["booking"]
    rule: dict = {"booking_rule_id": BOOKING_ID}
    if b.get("same_day"):
        rule.update(booking_type=1, prior_notice_duration_min=b["same_day"]["minutes_before"],
                    prior_notice_duration_max=b["same_day"].get("max_minutes_before"))
    else:
        db = b["day_before"]
        rule.update(booking_type=2, prior_notice_last_day=1, prior_notice_last_time=_hms(minutes(db["until"])))
        if db.get("days_ahead"):
            rule.update(prior_notice_start_day=db["days_ahead"], prior_notice_start_time=_hms(minutes(db.get("from") or "08:00")))
    rule.update(message=b.get("message") or _message(section), phone_number=b.get("phone") if "phone" in b["by"] else None,
                info_url=b.get("info_url"), booking_url=b.get("url") if set(b["by"]) & {"app", "web"} else None)
    return rule


def _message(section: dict) -> str:
    """Return the booking rule in plain words (Japanese for a Japanese service), e.g. 前日17時までに電話で予約してください。"""
    b = section["booking"]
    ja = (section.get("agency") or {}).get("lang", "ja") == "ja"
    how = {"phone": ("電話", "by phone"), "app": ("アプリ", "in the app"), "web": ("ウェブ", "online")}
    ways = [how[x][0 if ja else 1] for x in b["by"]]
    if b.get("same_day"):
        n = b["same_day"]["minutes_before"]
        return f"乗車の{n}分前までに{'・'.join(ways)}で予約してください。" if ja else f"Book {' or '.join(ways)} at least {n} minutes before."
    until = b["day_before"]["until"]
    return (f"乗車日の前日{until}までに{'・'.join(ways)}で予約してください。" if ja
            else f"Book {' or '.join(ways)} by {until} the day before.")


def build_feed(section: dict, area: Area, *, feed_id: str, name: str, timezone: str, country: str | None,
               japanese: bool) -> OndemandFeed:
    """Return the GTFS-Flex feed of a checked ``ondemand:`` section whose area is resolved. If the area is empty, raise InputError."""
    ag, rt = section["agency"], section.get("route") or {}
    lang = ag.get("lang") or ("ja" if japanese else "en")
    agency_id = str(ag.get("corporate_number") or feed_id)
    route_id = str(rt.get("id") or feed_id)
    files: dict[str, bytes] = {}
    files["agency.txt"] = _csv(["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang", "agency_phone"],
                               [[agency_id, ag["name"], ag["url"], timezone, lang, ag.get("phone")]])
    files["routes.txt"] = _csv(["route_id", "agency_id", "route_short_name", "route_long_name", "route_type", "route_color",
                                "route_text_color", "route_desc"],
                               [[route_id, agency_id, rt.get("short_name"), rt.get("long_name"), rt.get("type", 3),
                                 rt.get("color"), rt.get("text_color"), "デマンド交通（予約制）" if lang == "ja" else "On-demand service (booking required)"]])
    connect = section.get("connects_to") or []
    stops = [*area.stops, *connect]
    zones: list[dict] = []
    if area.geometry is not None:
        if area.geometry.is_empty:
            raise InputError(f"{feed_id}: ondemand.area: the area has no surface; check the polygon file or the district names",
                             ja=f"{feed_id}: ondemand.area: 運行区域に面積がありません。区域のファイルか町丁目の名前を確認してください")
        gj = _round(area.geometry)
        files["locations.geojson"] = json.dumps(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "id": ZONE_ID, "properties": {"stop_name": area.name},
                                                         "geometry": gj}]},
            ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        zones.append({"zone_id": ZONE_ID, "zone_name": area.name, "kind": "zone", "geometry_wkt": shapely.from_geojson(json.dumps(gj)).wkt})
    for s in stops:  # a stop serves bookings that start or end within STOP_RADIUS_M of it
        zones.append({"zone_id": str(s["id"]), "zone_name": s["name"], "kind": "stop",
                      "geometry_wkt": shapely.Point(round(float(s["lon"]), 6), round(float(s["lat"]), 6)).wkt})
    if stops:
        files["stops.txt"] = _csv(["stop_id", "stop_name", "stop_lat", "stop_lon", "location_type"],
                                  [[str(s["id"]), s["name"], f"{float(s['lat']):.6f}", f"{float(s['lon']):.6f}", 0] for s in stops])
    kana = sorted({(s["name"], s["kana"]) for s in stops if s.get("kana")})
    if japanese and kana:  # GTFS-JP: the reading of each stop name (ja-Hrkt)
        files["translations.txt"] = _csv(["table_name", "field_name", "language", "translation", "field_value"],
                                         [["stops", "stop_name", "ja-Hrkt", k, n] for n, k in kana])
    groups = []
    if area.stops:
        groups.append((GROUP_AREA, area.name, [str(s["id"]) for s in stops]))
    elif connect:
        groups.append((GROUP_CONNECT, "接続先" if lang == "ja" else "Connections", [str(s["id"]) for s in connect]))
    if groups:
        files["location_groups.txt"] = _csv(["location_group_id", "location_group_name"], [[g, n] for g, n, _ in groups])
        files["location_group_stops.txt"] = _csv(["location_group_id", "stop_id"], [[g, s] for g, _, ss in groups for s in ss])
    rule = _booking(section)
    cols = ["booking_rule_id", "booking_type", "prior_notice_duration_min", "prior_notice_duration_max", "prior_notice_last_day",
            "prior_notice_last_time", "prior_notice_start_day", "prior_notice_start_time", "message", "phone_number", "info_url",
            "booking_url"]
    files["booking_rules.txt"] = _csv(cols, [[rule.get(c) for c in cols]])
    services, exceptions, windows = service_dates(section, country=country)
    files["calendar.txt"] = _csv(["service_id", *_DAYS, "start_date", "end_date"],
                                 [[sid, *flags, as_date(section["valid"]["from"]).strftime("%Y%m%d"),
                                   as_date(section["valid"]["to"]).strftime("%Y%m%d")] for sid, flags, _ in services])
    if exceptions:
        files["calendar_dates.txt"] = _csv(["service_id", "date", "exception_type"],
                                           [[sid, d.strftime("%Y%m%d"), t] for sid, d, t in exceptions])
    # trip patterns: within the zone, zone -> connecting stops, connecting stops -> zone; or between the area's stops
    if area.geometry is not None:
        patterns = [("zone", ("location_id", ZONE_ID), ("location_id", ZONE_ID))]
        if connect:
            patterns += [("to_stops", ("location_id", ZONE_ID), ("location_group_id", GROUP_CONNECT)),
                         ("from_stops", ("location_group_id", GROUP_CONNECT), ("location_id", ZONE_ID))]
    else:
        patterns = [("stops", ("location_group_id", GROUP_AREA), ("location_group_id", GROUP_AREA))]
    trips, times = [], []
    for sid, _, wins in services:
        for a, b in wins:
            for pname, on, off in patterns:
                tid = f"{sid}_{a // 60:02d}{a % 60:02d}_{pname}"
                trips.append([route_id, sid, tid, rt.get("short_name") or rt.get("long_name")])
                for seq, (col, ref), pick, drop in ((1, on, 2, 1), (2, off, 1, 2)):
                    times.append([tid, seq, ref if col == "stop_id" else None, ref if col == "location_group_id" else None,
                                  ref if col == "location_id" else None, _hms(a), _hms(b), pick, drop,
                                  BOOKING_ID if pick == 2 else None, BOOKING_ID if drop == 2 else None])
    office = section.get("office") if japanese else None
    if office:  # GTFS-JP: the office that takes the bookings operates every trip (trips.jp_office_id)
        trips = [[*t, str(office.get("id") or "office")] for t in trips]
    files["trips.txt"] = _csv(["route_id", "service_id", "trip_id", "trip_headsign", *(["jp_office_id"] if office else [])], trips)
    files["stop_times.txt"] = _csv(["trip_id", "stop_sequence", "stop_id", "location_group_id", "location_id",
                                    "start_pickup_drop_off_window", "end_pickup_drop_off_window", "pickup_type", "drop_off_type",
                                    "pickup_booking_rule_id", "drop_off_booking_rule_id"], times)
    fare = section.get("fare")
    if fare:
        digits = 0 if fare["currency"] in ("JPY", "KRW") else 2
        files["fare_attributes.txt"] = _csv(["fare_id", "price", "currency_type", "payment_method", "transfers", "agency_id"],
                                            [["fare", f"{float(fare['price']):.{digits}f}", fare["currency"],
                                              1 if fare.get("payment") == "before" else 0, 0, agency_id]])
        files["fare_rules.txt"] = _csv(["fare_id", "route_id"], [["fare", route_id]])
    # feed_version: a digest of the other files, so a changed leaflet says so inside the feed too
    digest = hashlib.sha256(b"".join(n.encode() + b"\0" + hashlib.sha256(b).digest() for n, b in sorted(files.items()))).hexdigest()[:12]
    files["feed_info.txt"] = _csv(["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date", "feed_end_date",
                                   "feed_version", "feed_contact_url"],
                                  [[ag["name"], ag["url"], lang, as_date(section["valid"]["from"]).strftime("%Y%m%d"),
                                    as_date(section["valid"]["to"]).strftime("%Y%m%d"), digest,
                                    section["booking"].get("info_url") or ag["url"]]])
    if japanese:
        files["agency_jp.txt"] = _csv(["agency_id", "agency_official_name", "agency_zip_number", "agency_address",
                                       "agency_president_pos", "agency_president_name"],
                                      [[agency_id, ag.get("official_name") or ag["name"], None, None, None, None]])
        if office:
            files["office_jp.txt"] = _csv(["office_id", "office_name", "office_url", "office_phone"],
                                          [[str(office.get("id") or "office"), office.get("name"), office.get("url"), office.get("phone")]])
    return OndemandFeed(files=files, zones=zones, windows=windows, booking=rule)


def write_zip(feed: OndemandFeed, dest: Path) -> Path:
    """Write the feed as a zip with fixed timestamps and sorted members (same feed → same bytes) and return its path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(feed.files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, feed.files[name])
    tmp.replace(dest)
    return dest
