"""The ``trips:`` and ``zones:`` sections of a spec: how one operator's files map into fct_trips.

A trips spec declares which files to read, their format, and for each canonical field the
source column (or a list of candidate columns: the first one a file has wins, so one spec covers
several naming conventions), plus units, timestamp format and zone, code lists and rules.
``check_trips`` / ``check_zones`` return every mistake as 'file: field: what is wrong'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePath

from transforms.specfile import (ID_PATTERN, Date, Flag, ListOf, Map, Null, Number, OneOf, SpecError, Text, check_shape,
                                 is_under, load_yaml)

MODES = ("taxi", "ride_hailing", "on_demand", "shared_taxi", "micromobility")
FORMATS = ("auto", "csv", "parquet", "json", "jsonl", "avro", "xlsx", "mds")
DISTANCE_UNITS = {"km": 1.0, "m": 0.001, "mi": 1.609344}
DURATION_UNITS = {"s": 1, "min": 60, "ms": 0.001}
TIME_ZONES = ("local", "utc")
EPOCHS = ("s", "ms")
#: Canonical source fields a spec may map (the mapping engine turns them into fct_trips columns).
SOURCE_FIELDS = (
    "trip_ref", "vendor", "provider", "mode", "pickup_time", "dropoff_time", "duration", "passengers", "distance",
    "pickup_zone", "dropoff_zone", "pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon",
    "fare_amount", "tip_amount", "total_amount", "payment_type", "currency",
    # shapes operators actually send (issue 17): date and time of day in separate columns, one row standing for
    # several trips (an aggregate: one row per base per day with a count), a booking status, addresses without points
    "pickup_date", "pickup_time_of_day", "dropoff_date", "dropoff_time_of_day", "trip_count", "status",
    "pickup_address", "dropoff_address",
)
CODE_FIELDS = ("vendor", "payment_type", "mode", "provider", "status")
#: Fields the rows of a file can be excluded by (``trips.exclude``): a row whose value is listed is not a trip.
EXCLUDE_FIELDS = ("status", "mode", "vendor", "payment_type", "provider")
#: Date formats tried, in order, when time.date_format is not given (a full timestamp is read as its date).
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%m/%d/%Y", "%d.%m.%Y", "%Y年%m月%d日")
#: Time-of-day formats tried, in order, when time.time_of_day_format is not given (24 h, then 12 h with AM/PM).
TIME_OF_DAY_FORMATS = ("%H:%M:%S", "%H:%M", "%H:%M:%S.%f", "%I:%M:%S %p", "%I:%M %p", "%I:%M:%S%p", "%I:%M%p", "%H%M%S", "%H%M")
#: Rows of a file looked at to find its header when trips.header_row is auto.
HEADER_SCAN_ROWS = 50
_TEXTS = OneOf(Text(), ListOf(Text()), expected="text or a list of text")
_NAMES = OneOf(Text(numbers=True), ListOf(Text(numbers=True)), expected="a column name or a list of them")
#: Every key of a ``trips:`` section, with the type of its value.
TRIPS_SHAPE = Map({
    "files": _TEXTS, "format": Text(), "mode": Text(), "provider": Text(), "currency": Text(), "money_unit": Text(),
    "distance_unit": Text(), "duration_unit": Text(),
    "time": Map({"format": _TEXTS, "zone": Text(), "epoch": Text(), "date_format": _TEXTS, "time_of_day_format": _TEXTS}),
    "header_row": OneOf(Number(whole=True, lo=1), Text(), expected="a line number (1 = the first line) or auto"),
    "footer_rows": Number(whole=True, lo=0),
    "exclude": Map(values=OneOf(Text(numbers=True), ListOf(Text(numbers=True)), expected="a value or a list of values")),
    "period": Map({"from_name": Text(), "start": Date(), "end": Date(),
                   "overrides": Map(values=OneOf(Text(), Date(), Null(), expected="a month YYYY-MM or null"))}),
    "zones": Map({"layer": Text(), "unknown_ids": _NAMES}),
    "municipalities": Map({"layer": Text()}),
    "columns": Map(values=_NAMES),
    "codes": Map(values=Map(values=OneOf(Text(numbers=True), Null(), expected="a value or null"))),
    "rules": Map({"max_speed_kmh": Number(lo=1), "max_duration_h": Number(lo=0.01)}),
    "privacy": Map({"k": Number(whole=True, lo=2), "allow_points": Flag(), "allow_exact_times": Flag()}),
    "transit_gap": Map({"gtfs_feed": Text(), "max_distance_m": Number(lo=1)}),
    "sheet": Text(numbers=True), "mds_schema": Text(), "holidays": Text(expected="a country code such as JP (write NO in quotes)"),
    "provider_by_file": Map(values=Text()),
})
#: Every key of a ``zones:`` section, with the type of its value.
ZONES_SHAPE = Map({
    "format": Text(), "id_field": Text(), "name_field": Text(), "group_field": Text(), "geometry_field": Text(),
    "crs": Text(expected="text such as EPSG:2263"), "role": Text(),
    "lookup": Map({"path": Text(), "id_field": Text(), "name_field": Text(), "group_field": Text()}),
})


@dataclass(frozen=True)
class TripOptions:
    """The parsed ``trips:`` section (defaults filled in)."""

    files: tuple[str, ...]
    format: str = "auto"
    mode: str = "taxi"
    provider: str = ""
    currency: str = "USD"
    money_minor: bool = False
    distance_factor: float = 1.0
    duration_factor: float = 1.0
    time_formats: tuple[str, ...] = ()
    time_zone: str = "local"
    epoch: str | None = None
    period_from_name: str | None = None
    period_overrides: dict = field(default_factory=dict)
    period_start: str | None = None
    period_end: str | None = None
    zone_layer: str | None = None
    unknown_zone_ids: tuple[str, ...] = ()
    municipality_layer: str | None = None
    columns: dict = field(default_factory=dict)  # source field -> tuple of candidate column names
    codes: dict = field(default_factory=dict)  # source field -> {raw code: canonical value}
    max_speed_kmh: float = 150.0
    max_duration_h: float = 24.0
    k: int = 10
    allow_points: bool = False
    allow_exact_times: bool = False
    gtfs_feed: str | None = None
    max_stop_distance_m: float = 500.0
    sheet: str | None = None
    mds_schema: str | None = None
    provider_by_file: dict = field(default_factory=dict)  # file glob -> provider, when one source mixes operators
    header_row: int | str | None = None  # 1-based line (or sheet row) of the header, "auto" (found below title rows), None: the first (non-empty) one
    footer_rows: int = 0  # lines at the end of each file that are not records (totals, notes)
    exclude: dict = field(default_factory=dict)  # source field -> tuple of values whose rows are not trips
    date_formats: tuple[str, ...] = ()
    time_of_day_formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class ZoneOptions:
    format: str = "auto"  # shapefile | geojson | wkt_csv
    id_field: str = "id"
    name_field: str | None = None
    group_field: str | None = None
    geometry_field: str = "geometry"
    crs: str | None = None
    lookup: dict | None = None  # {path, id_field, name_field, group_field}
    role: str = "zones"  # zones | municipality


def _as_list(v) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, (list, tuple)):
        return tuple(str(x) for x in v)
    return (str(v),)


def check_trips(section: object, *, where: str) -> tuple[TripOptions | None, list[str]]:
    """Return the parsed ``trips:`` section and every problem in it (empty when it is valid)."""
    if not isinstance(section, dict):
        return None, [f"{where}: trips: missing; a trips spec needs a `trips:` mapping (files, columns, ...)"]
    shape_problems, dropped, section = check_shape(section, TRIPS_SHAPE, prefix="trips")
    problems = [f"{where}: {f}: {msg}" for f, msg in shape_problems]

    def bad(f: str, msg: str) -> None:
        if not is_under(f"trips.{f}", dropped):
            problems.append(f"{where}: trips.{f}: {msg}")

    files = _as_list(section.get("files"))
    if not files:
        bad("files", "give the file names or glob patterns to read, relative to source.path")
    fmt = section.get("format", "auto")
    if fmt not in FORMATS:
        bad("format", f"{fmt!r}; use one of: {', '.join(FORMATS)}")
    mode = section.get("mode", "taxi")
    if mode not in MODES:
        bad("mode", f"{mode!r}; use one of: {', '.join(MODES)}")
    money = section.get("money_unit", "major")
    if money not in ("major", "minor"):
        bad("money_unit", f"{money!r}; use major (dollars, yen) or minor (cents)")
    dist = section.get("distance_unit", "km")
    if dist not in DISTANCE_UNITS:
        bad("distance_unit", f"{dist!r}; use one of: {', '.join(DISTANCE_UNITS)}")
    dur = section.get("duration_unit", "s")
    if dur not in DURATION_UNITS:
        bad("duration_unit", f"{dur!r}; use one of: {', '.join(DURATION_UNITS)}")
    cur = str(section.get("currency", "USD"))
    if not re.fullmatch(r"[A-Z]{3}", cur):
        bad("currency", f"{cur!r} is not an ISO 4217 code such as JPY or USD")
    time = section.get("time") or {}
    if not isinstance(time, dict):
        bad("time", "must be a mapping: {format: '%Y/%m/%d %H:%M', zone: local|utc, epoch: s|ms}")
        time = {}
    tz = time.get("zone", "local")
    if tz not in TIME_ZONES:
        bad("time.zone", f"{tz!r}; use local (wall-clock time in the spec's timezone) or utc")
    epoch = time.get("epoch")
    if epoch is not None and epoch not in EPOCHS:
        bad("time.epoch", f"{epoch!r}; use s or ms (or leave it out for text timestamps)")
    period = section.get("period") or {}
    if not isinstance(period, dict):
        bad("period", "must be a mapping: {from_name: '(\\d{4}-\\d{2})'} or {start: 2020-01-01, end: 2020-12-31}")
        period = {}
    rx = period.get("from_name")
    if rx is not None:
        try:
            if re.compile(str(rx)).groups != 1:
                bad("period.from_name", "the pattern needs exactly one (group) capturing YYYY-MM")
        except re.error as exc:
            bad("period.from_name", f"not a valid regular expression: {exc}")
    columns = section.get("columns") or {}
    if not isinstance(columns, dict) or not columns:
        bad("columns", "map canonical fields to source columns, e.g. pickup_time: tpep_pickup_datetime")
        columns = {}
    for k in sorted(set(columns) - set(SOURCE_FIELDS)):
        bad(f"columns.{k}", f"not a canonical field; use one of: {', '.join(SOURCE_FIELDS)}")
    if columns and "pickup_time" not in columns and "pickup_date" not in columns:
        bad("columns.pickup_time", "required: the column holding the pickup (start) time, or columns.pickup_date "
                                   "(with columns.pickup_time_of_day when the time of day is in a column of its own)")
    if "pickup_time" in columns and "pickup_date" in columns:
        bad("columns.pickup_date", "give either pickup_time (date and time in one column) or pickup_date "
                                   "(+ pickup_time_of_day), not both")
    for part, whole in (("pickup_time_of_day", "pickup_date"), ("dropoff_date", "pickup_date"),
                        ("dropoff_time_of_day", "pickup_date")):
        if part in columns and whole not in columns:
            bad(f"columns.{part}", f"needs columns.{whole} too (the date the time of day belongs to)")
    if "dropoff_time" in columns and ("dropoff_date" in columns or "dropoff_time_of_day" in columns):
        bad("columns.dropoff_time", "give either dropoff_time or dropoff_date / dropoff_time_of_day, not both")
    if epoch is not None and "pickup_date" in columns:
        bad("time.epoch", "epoch times are one column: map columns.pickup_time, not pickup_date")
    header_row = section.get("header_row")
    if isinstance(header_row, str) and header_row != "auto":
        bad("header_row", f"{header_row!r}; give the line number of the header (1 = the first line) or auto")
    if fmt in ("parquet", "json", "jsonl", "avro", "mds"):
        for key in ("header_row", "footer_rows"):
            if section.get(key) is not None:
                bad(key, f"applies to csv and xlsx files only; {fmt} records name their fields, so remove it")
    exclude = section.get("exclude") or {}
    for k in sorted(exclude):
        if k not in EXCLUDE_FIELDS:
            bad(f"exclude.{k}", f"rows can be excluded by: {', '.join(EXCLUDE_FIELDS)}")
        elif k not in columns:
            bad(f"exclude.{k}", f"map columns.{k} to the column holding it, so its rows can be excluded")
    codes = section.get("codes") or {}
    if not isinstance(codes, dict):
        bad("codes", "must map a field to its code list, e.g. payment_type: {1: card, 2: cash}")
        codes = {}
    for k, v in codes.items():
        if k not in CODE_FIELDS:
            bad(f"codes.{k}", f"code lists apply to: {', '.join(CODE_FIELDS)}")
        elif not isinstance(v, dict):
            bad(f"codes.{k}", "must be a mapping of source code to value")
    zones = section.get("zones") or {}
    munis = section.get("municipalities") or {}
    rules = section.get("rules") or {}
    privacy = section.get("privacy") or {}
    gap = section.get("transit_gap") or {}
    for f, ref in (("zones.layer", zones.get("layer")), ("municipalities.layer", munis.get("layer")),
                   ("transit_gap.gtfs_feed", gap.get("gtfs_feed"))):
        if ref is not None and not ID_PATTERN.match(ref):
            bad(f, f"{ref!r} is not a spec id (lowercase letters, digits and '-')")
    if zones.get("layer") and not ({"pickup_zone", "dropoff_zone"} & set(columns)
                                   or {"pickup_lat", "pickup_lon"} <= set(columns)
                                   or {"dropoff_lat", "dropoff_lon"} <= set(columns)):
        bad("zones.layer", f"names the zone layer {zones.get('layer')!r} but no column maps to it: map "
                           "columns.pickup_zone / dropoff_zone (zone ids), or columns.pickup_lat and pickup_lon (points, "
                           "placed in zones), or remove zones.layer")
    k = privacy.get("k", 10)
    max_speed, max_dur = float(rules.get("max_speed_kmh", 150)), float(rules.get("max_duration_h", 24))
    max_stop = float(gap.get("max_distance_m", 500))
    if problems:
        return None, problems
    return TripOptions(
        files=files, format=fmt, mode=mode, provider=str(section.get("provider") or ""), currency=cur,
        money_minor=money == "minor", distance_factor=DISTANCE_UNITS[dist], duration_factor=DURATION_UNITS[dur],
        time_formats=_as_list(time.get("format")), time_zone=tz, epoch=epoch,
        period_from_name=str(rx) if rx else None,
        period_overrides={str(a): (None if b is None else str(b)) for a, b in (period.get("overrides") or {}).items()},
        period_start=str(period["start"]) if period.get("start") else None,
        period_end=str(period["end"]) if period.get("end") else None,
        zone_layer=zones.get("layer"), unknown_zone_ids=_as_list(zones.get("unknown_ids")),
        municipality_layer=munis.get("layer"),
        columns={k: _as_list(v) for k, v in columns.items()},
        codes={k: {str(a): (None if b is None else str(b)) for a, b in v.items()} for k, v in codes.items()},
        max_speed_kmh=max_speed, max_duration_h=max_dur, k=k,
        allow_points=bool(privacy.get("allow_points", False)), allow_exact_times=bool(privacy.get("allow_exact_times", False)),
        gtfs_feed=gap.get("gtfs_feed"), max_stop_distance_m=max_stop,
        sheet=None if section.get("sheet") is None else str(section["sheet"]), mds_schema=section.get("mds_schema"),
        provider_by_file={str(a): str(b) for a, b in (section.get("provider_by_file") or {}).items()},
        header_row=header_row, footer_rows=int(section.get("footer_rows", 0)),
        exclude={k: _as_list(v) for k, v in exclude.items()},
        date_formats=_as_list(time.get("date_format")), time_of_day_formats=_as_list(time.get("time_of_day_format")),
    ), []


def check_zones(section: object, *, where: str) -> tuple[ZoneOptions | None, list[str]]:
    """Return the parsed ``zones:`` section and every problem in it."""
    problems: list[str] = []

    def bad(f: str, msg: str) -> None:
        if not is_under(f"zones.{f}", dropped):
            problems.append(f"{where}: zones.{f}: {msg}")

    if not isinstance(section, dict):
        return None, [f"{where}: zones: missing; a zones spec needs a `zones:` mapping (id_field, ...)"]
    shape_problems, dropped, section = check_shape(section, ZONES_SHAPE, prefix="zones")
    problems.extend(f"{where}: {f}: {msg}" for f, msg in shape_problems)
    fmt = section.get("format", "auto")
    if fmt not in ("auto", "shapefile", "geojson", "wkt_csv"):
        bad("format", f"{fmt!r}; use shapefile, geojson or wkt_csv")
    if not section.get("id_field"):
        bad("id_field", "required: the attribute holding the zone id")
    role = section.get("role", "zones")
    if role not in ("zones", "municipality"):
        bad("role", f"{role!r}; use zones or municipality")
    crs = section.get("crs")
    if crs is not None:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(crs)
        except CRSError:
            bad("crs", f"{crs!r} is not a coordinate reference system pyproj knows (e.g. EPSG:2263)")
    lookup = section.get("lookup")
    if lookup is not None and (not isinstance(lookup, dict) or not lookup.get("path") or not lookup.get("id_field")):
        bad("lookup", "must give path and id_field (a CSV of zone ids, names and groups)")
    if problems:
        return None, problems
    return ZoneOptions(
        format=fmt, id_field=str(section["id_field"]), name_field=section.get("name_field"),
        group_field=section.get("group_field"), geometry_field=str(section.get("geometry_field", "geometry")),
        crs=crs, lookup=lookup, role=role,
    ), []


def layers(section: dict) -> list[str]:
    """Return the zone layers a ``trips:`` section uses (zones and municipalities), sorted."""
    refs = [(section.get(k) or {}).get("layer") if isinstance(section.get(k), dict) else None for k in ("zones", "municipalities")]
    return sorted({r for r in refs if isinstance(r, str) and r})


def trip_options(spec) -> TripOptions:
    """Return the parsed trips section of a FeedSpec (already validated when the spec was loaded)."""
    opts, problems = check_trips(spec.options, where=str(spec.spec_path or spec.id))
    if problems:
        raise SpecError(problems)
    return opts


def zone_options(spec) -> ZoneOptions:
    """Return the parsed zones section of a FeedSpec (already validated when the spec was loaded)."""
    opts, problems = check_zones(spec.options, where=str(spec.spec_path or spec.id))
    if problems:
        raise SpecError(problems)
    return opts


def default_trips_dir() -> Path:
    from transforms.schema import default_specs_dir

    return default_specs_dir() / "trips"


def load_schema_fields() -> list[dict]:
    """Return the fields of the canonical trips table (specs/schemas/trips.yml)."""
    from transforms.schema import default_specs_dir

    return _schema_fields(str(default_specs_dir()))


#: Every key of ``specs/schemas/trips.yml``, with the type of its value.
SCHEMA_SHAPE = Map({"table": Text(), "fields": ListOf(Map({
    "name": Text(), "type": Text(), "required": Flag(), "doc": Text(), "personal": Flag(), "enum": ListOf(Text()),
}))})


@lru_cache(maxsize=4)
def _schema_fields(specs_dir: str) -> list[dict]:
    path = Path(specs_dir) / "schemas" / "trips.yml"
    doc = load_yaml(path)
    problems, _, _ = check_shape(doc, SCHEMA_SHAPE)
    if problems or not isinstance(doc.get("fields"), list):
        raise SpecError([f"{path}: {f or 'fields'}: {m}" for f, m in problems] or [f"{path}: fields: missing"])
    return doc["fields"]


def file_label(path: Path, root: Path) -> str:
    """Return the file's name relative to the source root (POSIX), as stored in source_file."""
    try:
        return PurePath(path.relative_to(root)).as_posix()
    except ValueError:
        return path.name
