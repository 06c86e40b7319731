"""Trip rules, in the style of transforms/rules/engine.py: one Rule per code, with severity and a one-line why.

A trip rule's ``sql(ctx)`` is a boolean SQL predicate over one staged trip row (the canonical
columns plus the raw facts the mapping keeps: ``_period``, ``_pickup_raw``, ``_pickup_zero_point``
...). All predicates run in one set-based pass in DuckDB. ERROR rules are hard: the row goes to
``quality.quarantine`` with its raw values and every hard reason. WARNING/INFO rules are soft:
the row is accepted and the codes are listed in its ``flags`` column. Every rule's count is kept
per file, over all rows in, so the counts compare with what a data provider says about its file.
"""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule
from transforms.trips.readers import lit


def _unknown_zone(col: str):
    def sql(ctx: Context) -> str:
        ids = ctx.param("unknown_zone_ids", ())
        known = ctx.param("known_zones_table", None)
        parts = []
        if ids:
            parts.append(f"{col} IN ({', '.join(lit(i) for i in ids)})")
        if known:
            parts.append(f"({col} IS NOT NULL AND {col} NOT IN (SELECT zone_id FROM {known}))")
        return " OR ".join(parts) if parts else "false"
    return sql


RULES: list[Rule] = [
    Rule("invalid_record", ERROR, "The record breaks the source's own schema (e.g. an MDS trip the JSON schema rejects); the schema's message says where.",
         ("record",), sql=lambda ctx: "_rejected IS NOT NULL"),
    Rule("missing_pickup_time", ERROR, "The pickup time is empty or cannot be read with the spec's timestamp format, so the trip cannot be placed in time.",
         ("pickup_time",), sql=lambda ctx: "pickup_time_utc IS NULL",
         fix="Check time.format / time.epoch (time.date_format / time.time_of_day_format for a date and a time of day in two "
             "columns) in the trips spec against the file's timestamps."),
    Rule("dropoff_before_pickup", ERROR, "The dropoff time is earlier than the pickup time: at least one of the two is wrong.",
         ("pickup_time", "dropoff_time"), sql=lambda ctx: "dropoff_time_utc < pickup_time_utc",
         fix="Check that columns.pickup_time and columns.dropoff_time are not swapped and that time.format reads both."),
    Rule("duration_too_long", ERROR, "The trip lasts longer than the spec's max_duration_h (default 24 h) on the meter's own (local) clock: a meter left running or a wrong date.",
         ("pickup_time", "dropoff_time"),
         sql=lambda ctx: f"dropoff_time_local - pickup_time_local > INTERVAL '{float(ctx.param('max_duration_h', 24)) * 3600} seconds'"),
    Rule("pickup_outside_period", ERROR, "The pickup is outside the period the file declares (e.g. the month in its name): a wrong clock or a misfiled trip.",
         ("pickup_time",), sql=lambda ctx: "_period IS NOT NULL AND NOT (pickup_time_local >= _period[1] AND pickup_time_local < _period[2])",
         fix="Check trips.period (from_name, start/end, overrides) and time.zone in the trips spec."),
    Rule("bad_trip_count", ERROR, "The trip count of an aggregate row is empty, negative or not a whole number, so the row cannot be counted as trips.",
         ("trip_count",), sql=lambda ctx: "trip_count IS NULL", needs=("trip_count",),
         fix="Correct the count in the file; if the column is not a trip count, remove columns.trip_count from the trips spec.",
         why_ja="集計行の件数（乗車回数）が空欄・負の数・整数以外のため、回数として数えられません。",
         fix_ja="ファイルの件数を直してください。この列が件数でなければ、trips 仕様の columns.trip_count を削除してください。"),
    Rule("negative_amount", WARNING, "The total amount is negative (a refund, void or data error); kept, but sums of fares should exclude it.",
         ("total_amount",), sql=lambda ctx: "total_amount < 0"),
    Rule("zero_distance", WARNING, "The trip distance is zero: a cancelled trip, or a meter that did not record distance.",
         ("distance",), sql=lambda ctx: "distance_km = 0"),
    Rule("missing_passengers", WARNING, "The passenger count is zero or empty, so ridership sums undercount.",
         ("passengers",), sql=lambda ctx: "coalesce(passengers, 0) = 0", needs=("passengers",)),
    Rule("missing_vendor", INFO, "The vendor / device code is empty (e.g. trips booked through a dispatch app).",
         ("vendor",), sql=lambda ctx: "vendor IS NULL", needs=("vendor",)),
    Rule("unknown_code", WARNING, "A code (payment type, vendor, mode) is not in the spec's code list; it is kept as unknown:<code>.",
         ("payment_type", "vendor"), sql=lambda ctx: "starts_with(payment_type, 'unknown:') OR starts_with(vendor, 'unknown:') OR starts_with(mode, 'unknown:')"),
    Rule("unknown_pickup_zone", WARNING, "The pickup zone is an 'unknown' zone or not in the zone layer, so the trip cannot be mapped.",
         ("pickup_zone",), sql=_unknown_zone("pickup_zone")),
    Rule("unknown_dropoff_zone", WARNING, "The dropoff zone is an 'unknown' zone or not in the zone layer.",
         ("dropoff_zone",), sql=_unknown_zone("dropoff_zone")),
    Rule("zero_coordinates", WARNING, "The pickup point is 0,0 (no GPS fix); the point is dropped and no zone can be assigned.",
         ("pickup_lat", "pickup_lon"), sql=lambda ctx: "coalesce(_pickup_zero_point, false)", needs=("pickup_lat",)),
    Rule("missing_dropoff_point", WARNING, "The dropoff coordinates are empty, so the dropoff cannot be placed on a map.",
         ("dropoff_lat", "dropoff_lon"), sql=lambda ctx: "(dropoff_lat IS NULL OR dropoff_lon IS NULL) AND NOT coalesce(_dropoff_zero_point, false)", needs=("pickup_lat",)),
    Rule("missing_duration", WARNING, "Neither a dropoff time nor a duration is known.",
         ("dropoff_time", "duration"), sql=lambda ctx: "duration_s IS NULL AND pickup_time_utc IS NOT NULL"),
    Rule("impossible_speed", WARNING, "Distance over duration is faster than the spec's max_speed_kmh (default 150 km/h): distance or times are wrong.",
         ("distance", "duration"),
         sql=lambda ctx: f"duration_s > 0 AND distance_km / (duration_s / 3600.0) > {float(ctx.param('max_speed_kmh', 150))}"),
    Rule("point_outside_zones", INFO, "The point lies in no zone of the layer (outside the service area, or a bad coordinate).",
         ("pickup_lat", "pickup_lon"), sql=lambda ctx: "pickup_lat IS NOT NULL AND pickup_zone IS NULL", needs=("point_zones",)),
]

HARD = ERROR
SOFT = (WARNING, INFO)


def applicable(fields: set[str], *, point_zones: bool) -> list[Rule]:
    """Return the rules that apply to a batch mapping ``fields``: a rule's ``needs`` are source fields the batch must map."""
    have = set(fields) | ({"point_zones"} if point_zones else set())
    return [r for r in RULES if all(n in have for n in r.needs)]


def codes_sql(rules: list[Rule], ctx: Context) -> tuple[str, str]:
    """Return SQL expressions (hard codes list, soft codes list) for one row."""
    def lst(rs):
        if not rs:
            return "[]::VARCHAR[]"
        items = ", ".join(f"CASE WHEN coalesce(({r.sql(ctx)}), false) THEN '{r.code}' END" for r in rs)
        return f"list_filter([{items}], lambda x: x IS NOT NULL)"
    return lst([r for r in rules if r.severity == HARD]), lst([r for r in rules if r.severity != HARD])
