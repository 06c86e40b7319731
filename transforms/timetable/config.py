"""The ``timetable:`` section of a feed spec: validated, with defaults filled in.

:func:`check_config` returns every problem as (field path, message) so the spec loader can
report them all with the file name; :func:`with_defaults` returns the section as the
adapter reads it (it is archived with the input as ``noriba-timetable.json``, so a raw
archive alone reproduces its feed). The format is documented step by step in specs/README.md.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from transforms.specfile import Date, Flag, ListOf, Map, Number, OneOf, Text, check_shape, is_under
from transforms.timetable.calendar import DAYS, HOLIDAY_RULES

#: Layout keys naming rows (1-based) and columns (letters), per trip direction; header keys are those above/left of the stops.
ROW_KEYS = ("stop_row", "first_stop_row", "last_stop_row", "first_trip_row", "last_trip_row", "arrival_departure_row",
            "pole_row", "number_row", "notes_row", "destination_row", "route_row")
COLUMN_KEYS = ("stop_column", "first_stop_column", "last_stop_column", "first_trip_column", "last_trip_column",
               "arrival_departure_column", "pole_column", "number_column", "notes_column", "destination_column", "route_column")
#: Keys of a layout that are not where cells are: how blocks are found, and the route of a block.
BLOCK_KEYS = ("blocks", "repeat")

MANIFEST = "noriba-timetable.json"
LAYOUTS = ("columns", "rows")
STOP_FORMATS = ("gtfs", "csv", "xlsx", "p11")
PATTERN_FORMATS = ("sheets", "odpt")

_QUOTED = 'text in quotes, such as "0500083" (unquoted digits are read as a number)'
_COL = OneOf(Text(), Number(whole=True, lo=1), expected="a column letter (A, B, …) or a 1-based number")
_ROW = Number(whole=True, lo=1)
_NAME = Text(numbers=True)  # sheet names, service ids, header names: 130400 unquoted is still meant as a name
_DIRECTION = Number(whole=True, lo=0, hi=1)
_POSITIONS = {"trips": Text(), "route": _NAME, **{k: _COL for k in COLUMN_KEYS}, **{k: _ROW for k in ROW_KEYS}}
#: Where stops and trips are: one block, or several (declared, or found by a marker); see specs/README.md.
_LAYOUT = Map({**_POSITIONS, "blocks": ListOf(Map(_POSITIONS)), "repeat": Map({"marker": _NAME})})
#: Every key of a ``timetable:`` section, with the type of its value (specs/README.md, "Timetable specs").
TIMETABLE_SHAPE = Map({
    "agency": Map({k: Text() for k in ("name", "url", "timezone", "lang", "phone", "fare_url", "email", "official_name",
                                       "address", "president_pos", "president_name", "kana", "english")}
                  | {"id": Text(expected=_QUOTED), "zip_number": Text(expected=_QUOTED)}),
    "offices": ListOf(Map({"id": _NAME, "name": Text(), "url": Text(), "phone": Text()})),
    "feed": Map({"publisher_name": Text(), "publisher_url": Text(), "lang": Text(), "version": _NAME,
                 "contact_email": Text(), "contact_url": Text()}),
    "workbooks": ListOf(Map({"file": Text(), "service": _NAME, "direction": _DIRECTION, "encoding": Text()})),
    "sheets": Map({"include": ListOf(_NAME), "exclude": ListOf(_NAME),
                   "rules": ListOf(Map({"match": _NAME, "service": _NAME, "direction": _DIRECTION}))}),
    "layout": _LAYOUT,
    "layouts": ListOf(Map({"workbook": Text(), "sheet": _NAME, "layout": _LAYOUT})),
    "route": Map({"id": _NAME, "short_name": _NAME, "long_name": Text(), "long_name_cell": Text(), "type": Number(whole=True),
                  "color": Text(expected='a colour such as "2A9D8F", in quotes'),
                  "text_color": Text(expected='a colour such as "FFFFFF", in quotes'), "office": _NAME}),
    "markers": Map({"pass": ListOf(_NAME), "not_run": ListOf(_NAME)}),
    "footnotes": Map(values=Map({"service": _NAME})),
    "trip_id": Text(),
    "stops": Map({
        "file": Text(), "format": Text(), "encoding": Text(), "crs": _NAME, "pole_child": Text(),
        "columns": Map({k: _NAME for k in ("id", "name", "kana", "english", "lat", "lon", "x", "y", "zone", "code",
                                           "parent", "platform", "desc", "municipality", "operator")}),
        "patterns": Map({"file": Text(), "format": Text(), "name_column": _COL, "stop_id_column": _COL,
                         "first_row": _ROW, "key": Text()}),
        "overrides": ListOf(Map({"sheet": _NAME, "name": Text(), "pole": Number(whole=True, lo=0), "stop_id": _NAME})),
    }),
    "fares": Map({
        "triangle": Map({"file": Text(), "name_column": _COL, "stop_id_column": _COL, "first_fare_column": _COL,
                         "first_row": _ROW, "fare_id": Text()}),
        "flat": Map({"price": Number(lo=0), "fare_id": Text()}),
        "currency": Text(), "payment_method": Number(whole=True, lo=0, hi=1), "transfers": Number(whole=True, lo=0, hi=2),
    }),
    "calendar": Map({
        "start": Date(), "end": Date(),
        "services": Map(values=Map({"days": ListOf(Text()), "holidays": Text()})),
        "exceptions": ListOf(Map({"date": Date(), "from": Date(), "to": Date(), "service": _NAME, "type": Text(),
                                  "note": Text()})),
    }),
    "midnight_wrap": Flag(),
})


def _date(v: Any) -> dt.date | None:
    if isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(str(v).strip())
    except ValueError:
        m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", str(v).strip())
        if m:
            try:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return None
        return None


def _is_column(v: Any) -> bool:
    if isinstance(v, int) and not isinstance(v, bool):
        return v >= 1
    return isinstance(v, str) and bool(re.fullmatch(r"[A-Za-z]{1,3}|\d+", v.strip()))


def check_config(doc: Any, *, files: set[str] | None = None) -> list[tuple[str, str]]:
    """Return every problem in a ``timetable:`` section as (field, message); empty when it is valid.

    ``files`` are the input file names the source provides, when known, so a workbook or stop
    list that is not among them is reported here rather than at run time.
    """
    if not isinstance(doc, dict):
        return [("timetable", "missing or not a mapping; a feed of kind timetable needs a `timetable:` section "
                              "(see specs/README.md, 'Timetable specs')")]
    out, dropped, doc = check_shape(doc, TIMETABLE_SHAPE, prefix="timetable")

    def bad(f: str, msg: str) -> None:
        f = f"timetable.{f}" if f else "timetable"
        if not is_under(f, dropped):  # a value of the wrong type is reported once, by the shape check
            out.append((f, msg))

    def need_file(where: str, name: Any) -> None:
        if not isinstance(name, str) or not name:
            bad(where, "give the file name inside the source (e.g. timetable.xls)")
        elif files is not None and name not in files:
            bad(where, f"'{name}' is not among the source's files ({', '.join(sorted(files)) or 'none'})")

    def column(where: str, v: Any, *, required: bool = False) -> None:
        if v is None:
            if required:
                bad(where, "missing; give a column letter such as B")
        elif not _is_column(v):
            bad(where, f"{v!r} is not a column letter (A, B, …) or a 1-based number")

    def row(where: str, v: Any, *, required: bool = False) -> None:
        if v is None:
            if required:
                bad(where, "missing; give a 1-based row number as Excel shows it")
        elif not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            bad(where, f"{v!r} is not a row number (1, 2, …, as Excel shows it)")

    def check_layout(where: str, lay: dict) -> None:
        trips = lay.get("trips", "columns")
        if trips not in LAYOUTS:
            bad(f"{where}.trips", f"{trips!r}; use columns (one trip per column) or rows (one trip per row)")
        if lay.get("blocks") and lay.get("repeat"):
            bad(f"{where}.repeat", "give blocks (declared ranges) or repeat (found by a marker), not both")
        base = {k: v for k, v in lay.items() if k not in BLOCK_KEYS}
        parts = [(where, base)]
        if lay.get("blocks"):
            parts = [(f"{where}.blocks[{i}]", {**base, **(b if isinstance(b, dict) else {})}) for i, b in enumerate(lay["blocks"])]
        for at, part in parts:
            if trips == "rows":
                row(f"{at}.stop_row", part.get("stop_row"), required=True)
                column(f"{at}.first_stop_column", part.get("first_stop_column"), required=True)
                column(f"{at}.last_stop_column", part.get("last_stop_column"))
                row(f"{at}.first_trip_row", part.get("first_trip_row"), required=True)
                for k in ("last_trip_row", "arrival_departure_row", "pole_row"):
                    row(f"{at}.{k}", part.get(k))
                for k in ("number_column", "notes_column", "destination_column", "route_column"):
                    column(f"{at}.{k}", part.get(k))
            else:
                column(f"{at}.stop_column", part.get("stop_column"), required=True)
                row(f"{at}.first_stop_row", part.get("first_stop_row"), required=True)
                row(f"{at}.last_stop_row", part.get("last_stop_row"))
                column(f"{at}.first_trip_column", part.get("first_trip_column"), required=True)
                for k in ("last_trip_column", "arrival_departure_column", "pole_column"):
                    column(f"{at}.{k}", part.get(k))
                for k in ("number_row", "notes_row", "destination_row", "route_row"):
                    row(f"{at}.{k}", part.get(k))

    agency = doc.get("agency")
    if not isinstance(agency, dict):
        bad("agency", "missing; give at least id, name and url of the operator")
    else:
        for k in ("id", "name", "url"):
            if not agency.get(k):
                bad(f"agency.{k}", "missing")
    offices = doc.get("offices", [])
    if not isinstance(offices, list) or not all(isinstance(o, dict) and o.get("id") and o.get("name") for o in offices):
        bad("offices", "must be a list of {id, name, url?, phone?}")
    feed = doc.get("feed", {})
    if not isinstance(feed, dict):
        bad("feed", "must be a mapping {publisher_name, publisher_url, lang, version, contact_email, contact_url}")
    wbs = doc.get("workbooks")
    if not isinstance(wbs, list) or not wbs:
        bad("workbooks", "missing; list the timetable files, e.g. [{file: 平日.xlsx, service: weekday}]")
        wbs = []
    services = set()
    cal = doc.get("calendar")
    if isinstance(cal, dict) and isinstance(cal.get("services"), dict):
        services = set(cal["services"])
    for i, wb in enumerate(wbs):
        where = f"workbooks[{i}]"
        if not isinstance(wb, dict):
            bad(where, "must be a mapping {file, service?, sheets?}")
            continue
        need_file(f"{where}.file", wb.get("file"))
        if wb.get("service") is not None and services and wb["service"] not in services:
            bad(f"{where}.service", f"'{wb['service']}' is not a service in calendar.services ({', '.join(sorted(map(str, services)))})")
    sheets = doc.get("sheets", {})
    if not isinstance(sheets, dict):
        bad("sheets", "must be a mapping {include: [patterns], exclude: [patterns], rules: [...]}")
    else:
        for k in ("include", "exclude"):
            v = sheets.get(k, [])
            if not isinstance(v, list) or not all(isinstance(p, (str, int)) for p in v):
                bad(f"sheets.{k}", "must be a list of sheet names or patterns such as '平日*'")
        for i, rule in enumerate(sheets.get("rules", []) or []):
            if not isinstance(rule, dict) or "match" not in rule:
                bad(f"sheets.rules[{i}]", "must be {match: pattern, service?: id, direction?: 0|1}")
                continue
            if rule.get("service") is not None and services and rule["service"] not in services:
                bad(f"sheets.rules[{i}].service", f"'{rule['service']}' is not in calendar.services")
            if rule.get("direction") not in (None, 0, 1):
                bad(f"sheets.rules[{i}].direction", "must be 0 or 1")
    layout = doc.get("layout")
    if not isinstance(layout, dict):
        bad("layout", "missing; say where stops and trips are (see specs/README.md)")
    else:
        check_layout("layout", layout)
        for i, o in enumerate(doc.get("layouts", []) or []):
            if not isinstance(o, dict) or not isinstance(o.get("layout"), dict):
                bad(f"layouts[{i}]", "must be {workbook?: pattern, sheet?: pattern, layout: {...}}")
                continue
            if o.get("workbook") is None and o.get("sheet") is None:
                bad(f"layouts[{i}]", "give workbook or sheet (a name or a pattern such as '平日*') it applies to")
            check_layout(f"layouts[{i}].layout", merged_layout(layout, o["layout"]))
    route = doc.get("route", {})
    if not isinstance(route, dict):
        bad("route", "must be a mapping {id: '{sheet}', long_name_cell: E1, type: 3}")
    else:
        cell = route.get("long_name_cell")
        if cell is not None and not re.fullmatch(r"[A-Za-z]{1,3}[1-9]\d*", str(cell)):
            bad("route.long_name_cell", f"{cell!r} is not a cell such as E1")
        if route.get("type", 3) not in (0, 1, 2, 3, 4, 5, 6, 7, 11, 12):
            bad("route.type", f"{route.get('type')!r} is not a GTFS route_type (3 = bus)")
    markers = doc.get("markers", {})
    if not isinstance(markers, dict) or set(markers) - {"pass", "not_run"}:
        bad("markers", "must be {pass: [レ, ↓], not_run: ['=', '‖']}")
    foot = doc.get("footnotes", {})
    if not isinstance(foot, dict):
        bad("footnotes", "must map a note mark to {service: id}, e.g. {'金': {service: friday}}")
    else:
        for mark, v in foot.items():
            if not isinstance(v, dict) or not v.get("service"):
                bad(f"footnotes.{mark}", "must be {service: id}")
            elif services and v["service"] not in services:
                bad(f"footnotes.{mark}.service", f"'{v['service']}' is not in calendar.services")
    stops = doc.get("stops")
    if not isinstance(stops, dict):
        bad("stops", "missing; name the stop list: {file: stops.csv, format: csv, columns: {...}}")
    else:
        need_file("stops.file", stops.get("file"))
        fmt = stops.get("format", "gtfs")
        if fmt not in STOP_FORMATS:
            bad("stops.format", f"{fmt!r}; use one of: {', '.join(STOP_FORMATS)}")
        if fmt in ("csv", "xlsx"):
            cols = stops.get("columns")
            if not isinstance(cols, dict) or "name" not in cols or not ({"lat", "lon"} <= set(cols) or {"x", "y"} <= set(cols)):
                bad("stops.columns", "map name and lat/lon (or x/y with crs) to the list's header names")
        if stops.get("crs") is not None:
            from transforms.timetable.crs import crs_epsg

            try:
                crs_epsg(stops["crs"])
            except ValueError as exc:
                bad("stops.crs", str(exc))
        for i, o in enumerate(stops.get("overrides", []) or []):
            if not isinstance(o, dict) or not o.get("name") or not o.get("stop_id") or set(o) - {"sheet", "name", "pole", "stop_id"}:
                bad(f"stops.overrides[{i}]", "must be {name: 中央町, stop_id: 0101_C, sheet?: '130400', pole?: 0}")
        pat = stops.get("patterns")
        if pat is not None:
            if not isinstance(pat, dict):
                bad("stops.patterns", "must be {file, format: sheets|odpt, name_column, stop_id_column}")
            else:
                need_file("stops.patterns.file", pat.get("file"))
                if pat.get("format", "sheets") not in PATTERN_FORMATS:
                    bad("stops.patterns.format", f"use one of: {', '.join(PATTERN_FORMATS)}")
                if pat.get("format", "sheets") == "sheets":
                    column("stops.patterns.name_column", pat.get("name_column"), required=True)
                    column("stops.patterns.stop_id_column", pat.get("stop_id_column"))
                    row("stops.patterns.first_row", pat.get("first_row"))
    fares = doc.get("fares")
    if fares is not None:
        if not isinstance(fares, dict):
            bad("fares", "must be {triangle: {...}} or {flat: {price: 200}}")
        else:
            tri = fares.get("triangle")
            if tri is not None:
                if not isinstance(tri, dict):
                    bad("fares.triangle", "must be a mapping")
                else:
                    need_file("fares.triangle.file", tri.get("file"))
                    column("fares.triangle.name_column", tri.get("name_column"), required=True)
                    column("fares.triangle.stop_id_column", tri.get("stop_id_column"))
                    column("fares.triangle.first_fare_column", tri.get("first_fare_column"), required=True)
                    row("fares.triangle.first_row", tri.get("first_row"))
            flat = fares.get("flat")
            if flat is not None and (not isinstance(flat, dict) or not isinstance(flat.get("price"), (int, float))):
                bad("fares.flat", "must be {price: 200, fare_id?: flat}")
    if not isinstance(cal, dict):
        bad("calendar", "missing; give start, end and services")
    else:
        start, end = _date(cal.get("start")), _date(cal.get("end"))
        if start is None:
            bad("calendar.start", f"{cal.get('start')!r} is not a date such as 2026-04-01")
        if end is None:
            bad("calendar.end", f"{cal.get('end')!r} is not a date such as 2027-03-31")
        if start and end and end < start:
            bad("calendar.end", "is before calendar.start")
        svcs = cal.get("services")
        if not isinstance(svcs, dict) or not svcs:
            bad("calendar.services", "missing; e.g. {weekday: {days: [mon, tue, wed, thu, fri], holidays: skip}}")
        else:
            for sid, s in svcs.items():
                if not isinstance(s, dict):
                    bad(f"calendar.services.{sid}", "must be {days: [...], holidays: skip|run|as_day}")
                    continue
                days = s.get("days", [])
                if not isinstance(days, list) or any(d not in DAYS for d in days):
                    bad(f"calendar.services.{sid}.days", f"must be a list of {', '.join(DAYS)}")
                if s.get("holidays", "as_day") not in HOLIDAY_RULES:
                    bad(f"calendar.services.{sid}.holidays", f"use one of: {', '.join(HOLIDAY_RULES)}")
        for i, e in enumerate(cal.get("exceptions", []) or []):
            where = f"calendar.exceptions[{i}]"
            if not isinstance(e, dict):
                bad(where, "must be {date | from/to, service, type: added|removed, note?}")
                continue
            if "date" in e:
                if _date(e["date"]) is None:
                    bad(f"{where}.date", f"{e['date']!r} is not a date")
            elif _date(e.get("from")) is None or _date(e.get("to")) is None:
                bad(where, "give date, or from and to")
            if services and e.get("service") not in services:
                bad(f"{where}.service", f"{e.get('service')!r} is not in calendar.services")
            if e.get("type") not in ("added", "removed"):
                bad(f"{where}.type", "use added (runs that day) or removed (does not run)")
    for i, wb in enumerate(wbs):
        if isinstance(wb, dict) and wb.get("service") is None and not any(
                isinstance(r, dict) and r.get("service") for r in (sheets.get("rules", []) if isinstance(sheets, dict) else [])):
            bad(f"workbooks[{i}].service", "missing; give the workbook's service, or sheets.rules that set one")
    return out


def merged_layout(base: dict, override: dict) -> dict:
    """Return a layout override laid over the spec-level layout (its keys replace the default's; blocks/repeat are not inherited when it gives either)."""
    out = dict(base)
    if "blocks" in override or "repeat" in override:
        out.pop("blocks", None)
        out.pop("repeat", None)
    out.update(override)
    return out


def layout_for(cfg: dict, workbook: str, sheet: str) -> dict:
    """Return the layout of one sheet: the spec-level layout with every matching ``layouts`` override laid over it, in order."""
    import fnmatch

    lay = cfg["layout"]
    for o in cfg.get("layouts", []) or []:
        if o.get("workbook") is not None and not fnmatch.fnmatchcase(workbook, str(o["workbook"])):
            continue
        if o.get("sheet") is not None and not fnmatch.fnmatchcase(sheet, str(o["sheet"])):
            continue
        lay = merged_layout(lay, o["layout"])
    return lay


def with_defaults(doc: dict) -> dict:
    """Return a JSON-able copy of a valid section with dates as ISO text."""

    def clean(v):
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    out = clean(doc)
    out.setdefault("markers", {})
    out.setdefault("footnotes", {})
    out.setdefault("sheets", {})
    out.setdefault("route", {})
    out.setdefault("offices", [])
    out.setdefault("feed", {})
    out.setdefault("midnight_wrap", True)
    out.setdefault("trip_id", "{route}_{service}_{n}")
    return out
