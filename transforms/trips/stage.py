"""Stage one trips source: read every file, map it into canonical trips, assign zones, run the trip rules, split.

Output (under ``out_dir``), all Parquet:

- ``fct_trips/month=YYYY-MM/*.parquet``: accepted trips, canonical columns plus ``flags``;
- ``quarantine.parquet``: rows failing a hard rule, with the raw row as JSON and every reason
  (``file, line, code, reason, raw``: the shape of quality.quarantine);
- ``rule_counts.parquet``: per file and rule code, how many rows the rule matched (all rows in);
- ``files.parquet``: per file, rows in / accepted / quarantined / excluded, format and encoding;
- ``notices.parquet``: what reading found (decoding, renamed columns, zone layers) and why rows were
  excluded (``trips.exclude``: not trips, e.g. cancelled bookings), in NOTICE_SCHEMA.

Rows in = accepted + quarantined + excluded holds per file by construction and is checked before returning.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.adapters import InputError
from transforms.notices import NOTICE_SCHEMA, Notice
from transforms.rules.engine import Context
from transforms.trips import mapping, readers, rules
from transforms.trips.spec import TripOptions, load_schema_fields
from transforms.trips.zones import ZoneLayer

Progress = Callable[[str], None]


@dataclass
class Staged:
    files: list[dict]  # per file: file, format, encoding, rows_in, accepted, quarantined, excluded
    rule_counts: list[dict]  # per file and code: file, code, severity, rows
    notices: list[Notice] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase (inspect, read, map, counts, lake, quarantine)

    @property
    def rows_in(self) -> int:
        return sum(f["rows_in"] for f in self.files)

    @property
    def accepted(self) -> int:
        return sum(f["accepted"] for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f["quarantined"] for f in self.files)

    @property
    def excluded(self) -> int:
        return sum(f["excluded"] for f in self.files)

    def counts_by_code(self, *, prefix: str = "") -> dict[str, int]:
        """Return rows matched per rule code, over the files whose name starts with ``prefix``."""
        out: dict[str, int] = {}
        for r in self.rule_counts:
            if r["file"].startswith(prefix):
                out[r["code"]] = out.get(r["code"], 0) + r["rows"]
        return out


def canonical_columns() -> list[str]:
    return [f["name"] for f in load_schema_fields()]


def _period_sql(opts: TripOptions) -> str:
    """Return SQL for the [start, end) local-time period each file declares, or NULL."""
    def from_month(expr: str) -> str:
        start = f"try_strptime({expr} || '-01', '%Y-%m-%d')"
        return f"CASE WHEN {start} IS NULL THEN NULL ELSE [{start}, {start} + INTERVAL 1 MONTH] END"

    base = "NULL::TIMESTAMP[]"
    if opts.period_start and opts.period_end:
        base = f"[TIMESTAMP '{opts.period_start}', TIMESTAMP '{opts.period_end}' + INTERVAL 1 DAY]"
    if opts.period_from_name:
        base = f"coalesce({from_month(f'NULLIF(regexp_extract(_file, {readers.lit(opts.period_from_name)}, 1), {chr(39)}{chr(39)})')}, {base})"
    if opts.period_overrides:
        whens = " ".join(
            f"WHEN {readers.lit(k)} THEN {'NULL::TIMESTAMP[]' if v is None else from_month(readers.lit(v))}"
            for k, v in opts.period_overrides.items())
        base = f"CASE _file {whens} ELSE {base} END"
    return base


def stage_source(
    paths: list[Path], *, root: Path, opts: TripOptions, source_id: str, feed_version: str, timezone: str,
    out_dir: Path, encoding: str | None = None, zones: ZoneLayer | None = None, municipalities: ZoneLayer | None = None,
    municipality_name: str | None = None, con: duckdb.DuckDBPyConnection | None = None, progress: Progress | None = None,
) -> Staged:
    """Return what staging the source's files did; the tables are written under ``out_dir``."""
    con = con or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")  # rows carry their file and record number; order is not data
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "_decoded"
    seconds: dict[str, float] = {}

    def lap(phase: str, t0: float) -> float:
        now = time.perf_counter()
        seconds[phase] = seconds.get(phase, 0.0) + now - t0
        return now

    from concurrent.futures import ThreadPoolExecutor

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # reading each file to check its encoding releases the GIL
        files = list(pool.map(lambda p: readers.inspect(p, root=root, opts=opts, encoding=encoding, staging=tmp), paths))
    lap("inspect", t)
    notices: list[Notice] = [n for f in files for n in f.notices]
    for layer in (zones, municipalities):
        if layer is not None:
            notices.extend(layer.notices)
    known_table = None
    if zones is not None:
        con.register("_known_zones_arrow", pa.table({"zone_id": sorted(zones.known_ids)}))
        con.execute("CREATE OR REPLACE TEMP TABLE _known_zones AS SELECT * FROM _known_zones_arrow")
        known_table = "_known_zones"
    ctx = Context(validation_date=date.today(), params={
        "unknown_zone_ids": opts.unknown_zone_ids, "known_zones_table": known_table,
        "max_speed_kmh": opts.max_speed_kmh, "max_duration_h": opts.max_duration_h})
    cols = canonical_columns()
    fct_dir = out_dir / "fct_trips"
    per_file: dict[str, dict] = {f.label: {"file": f.label, "format": f.format, "encoding": f.encoding, "rows_in": 0,
                                           "accepted": 0, "quarantined": 0, "excluded": 0} for f in files}
    rule_counts: list[dict] = []
    quarantine_parts: list[pa.Table] = []
    severity = {r.code: r.severity for r in rules.RULES}
    for bi, batch in enumerate(readers.batches(files)):
        names = ", ".join(f.label for f in batch[:2]) + (f" and {len(batch) - 2} more" if len(batch) > 2 else "")
        if progress:
            progress(f"{source_id}: reading {names}")
        t = time.perf_counter()
        src, raw_cols = readers.load_batch(con, batch, opts=opts)
        notices.extend(n for f in batch for n in f.read_notices)
        t = lap("read", t)
        src = src.append_column("_k", pa.array(np.arange(src.num_rows, dtype=np.int64)))
        con.register("_src", src)
        # the period a file declares is worked out once per file (regexp on its name), not once per row
        con.execute(f"CREATE OR REPLACE TEMP TABLE _file_periods AS SELECT _file, {_period_sql(opts)} AS _period "
                    f"FROM (SELECT unnest(CAST(? AS VARCHAR[])) AS _file)", [[f.label for f in batch]])
        with_period = "(SELECT s.*, p._period AS __file_period FROM _src s LEFT JOIN _file_periods p ON s._file = p._file)"
        select, resolved = mapping.select_sql(with_period, raw_cols, opts,
                                              timezone=timezone, source_id=source_id, feed_version=feed_version,
                                              period_sql="__file_period")
        _check_columns(batch, resolved, raw_cols, opts)
        rejected = "__rejected__" in raw_cols
        has_points = "pickup_lat" in resolved and "pickup_lon" in resolved
        assign = has_points and (zones is not None or municipalities is not None)
        fills = []
        if zones is not None:
            fills.append(f"{readers.lit(zones.layer_id)} AS zone_layer")
        if municipality_name and municipalities is None:
            fills.append(f"coalesce(pickup_municipality, {readers.lit(municipality_name)}) AS pickup_municipality")
            fills.append(f"coalesce(dropoff_municipality, {readers.lit(municipality_name)}) AS dropoff_municipality")
        replace = f" REPLACE ({', '.join(fills)})" if fills else ""
        mapped = f"SELECT *{replace} FROM ({select}) m"
        if assign or (municipalities is not None and zones is not None):
            con.execute(f"CREATE OR REPLACE TEMP TABLE _m AS {mapped}")
            if zones is not None and has_points:
                _assign(con, zones, "zone")
            if municipalities is not None and has_points:
                _assign(con, municipalities, "municipality")
            elif municipalities is not None and zones is not None:
                _municipality_by_zone(con, zones, municipalities)
            mapped = "SELECT * FROM _m"
        applicable = rules.applicable(set(resolved), point_zones=zones is not None and has_points)
        hard, soft = rules.codes_sql(applicable, ctx)
        if opts.exclude:  # a row that is not a trip (trips.exclude) is counted as excluded, not checked
            hard = f"CASE WHEN _excluded IS NOT NULL THEN []::VARCHAR[] ELSE {hard} END"
            soft = f"CASE WHEN _excluded IS NOT NULL THEN []::VARCHAR[] ELSE {soft} END"
        if rejected:
            hard = f"CASE WHEN _rejected IS NOT NULL THEN ['invalid_record'] ELSE {hard} END"
        excluded_sql = "CASE WHEN _rejected IS NULL THEN _excluded END" if opts.exclude else "NULL::VARCHAR"
        # one streaming pass: canonical columns + rule codes straight into Arrow (no wide DuckDB table)
        select_cols = ", ".join(f"_soft AS flags" if c == "flags" else readers.q(c) for c in cols)
        out = con.sql(f"SELECT {select_cols}, _hard, _k, _rejected, _excl FROM (SELECT *, {hard} AS _hard, {soft} AS _soft, "
                      f"{excluded_sql} AS _excl FROM ({mapped}))").to_arrow_table()
        t = lap("map", t)
        con.register("_r", out.select(["source_file", "source_row", "flags", "_hard", "_k", "_rejected", "_excl"]))
        for fname, code, n in con.sql(
                "SELECT source_file, code, count(*) FROM (SELECT source_file, unnest(flags) AS code FROM _r WHERE len(flags) > 0 "
                "UNION ALL SELECT source_file, unnest(_hard) AS code FROM _r WHERE len(_hard) > 0) GROUP BY ALL").fetchall():
            rule_counts.append({"file": fname, "code": code, "severity": severity.get(code, "ERROR"), "rows": n})
        n_hard = n_excl = 0
        for fname, n_in, n_q, n_x in con.sql(
                "SELECT source_file, count(*), count(*) FILTER (WHERE len(_hard) > 0), count(_excl) FROM _r GROUP BY ALL").fetchall():
            per_file[fname]["rows_in"] += n_in
            per_file[fname]["quarantined"] += n_q
            per_file[fname]["excluded"] += n_x
            per_file[fname]["accepted"] += n_in - n_q - n_x
            n_hard += n_q
            n_excl += n_x
        if n_excl:
            n_by_file: dict[str, int] = {}
            for fname, why, n, first in con.sql("SELECT source_file, _excl, count(*), min(source_row) FROM _r WHERE _excl IS NOT NULL "
                                                "GROUP BY ALL ORDER BY 1, 2").fetchall():
                n_by_file[fname] = n_by_file.get(fname, 0) + n
                fld, column, value = why.split("\t", 2)
                notices.append(Notice("excluded_row", "INFO", f"{n:,} rows are not trips: their {column!r} is {value!r}, which "
                                                              f"trips.exclude.{fld} lists (first at data row {first}); they are "
                                                              f"counted as excluded, not as trips", file=fname, line=first,
                                      field=column, value=value))
            rule_counts.extend({"file": fname, "code": "excluded_row", "severity": "INFO", "rows": n} for fname, n in n_by_file.items())
        t = lap("counts", t)
        accepted, failed = None, np.empty(0, dtype=np.int64)
        if n_hard or n_excl:
            import pyarrow.compute as pc

            n_codes = pc.list_value_length(out.column("_hard"))
            accepted = pc.and_(pc.equal(n_codes, 0), pc.is_null(out.column("_excl"))).combine_chunks()
            failed = np.flatnonzero(pc.fill_null(pc.greater(n_codes, 0), False).to_numpy(zero_copy_only=False))
        _write_months(out.select(cols), fct_dir, f"b{bi}", accepted=accepted)
        t = lap("lake", t)
        raw_json = "json_object(" + ", ".join(f"{readers.lit(c)}, w.{readers.q(c)}" for c in raw_cols if not c.startswith("__")) + ")"
        if rejected and "__raw__" in raw_cols:
            raw_json = f"coalesce(w.__raw__, {raw_json})"
        whys = {r.code: _reason(r, resolved) for r in rules.RULES}
        reason_case = "CASE x " + " ".join(f"WHEN '{c}' THEN {readers.lit(c + ': ' + w)}" for c, w in whys.items()) + " ELSE x END"
        if len(failed):
            # the failing rows and their raw records are picked by position (_k is the row's index in _src), no join over the batch
            bad = out.select(["source_file", "source_row", "_hard", "_k", "_rejected"]).take(pa.array(failed))
            con.register("_qr", bad)
            con.register("_qw", src.take(bad.column("_k")))
            quarantine_parts.append(con.sql(
                f"SELECT r.source_file AS file, r.source_row AS line, r._hard[1] AS code, "
                f"concat_ws(' | ', array_to_string(list_transform(r._hard, lambda x: {reason_case}), ' | '), r._rejected) AS reason, "
                f"CAST({raw_json} AS VARCHAR) AS raw "
                f"FROM _qr r JOIN _qw w ON w._k = r._k ORDER BY 1, 2"
            ).to_arrow_table())
            con.unregister("_qr")
            con.unregister("_qw")
        lap("quarantine", t)
        con.unregister("_src")
        con.unregister("_r")
        con.execute("DROP TABLE IF EXISTS _m")
        con.execute("DROP TABLE IF EXISTS _file_periods")
    shutil.rmtree(tmp, ignore_errors=True)
    for f in per_file.values():
        if f["rows_in"] != f["accepted"] + f["quarantined"] + f["excluded"]:  # cannot happen; proves nothing was lost
            raise AssertionError(f"{f['file']}: rows in {f['rows_in']} != accepted + quarantined + excluded")
    qschema = pa.schema([("file", pa.string()), ("line", pa.int64()), ("code", pa.string()), ("reason", pa.string()), ("raw", pa.string())])
    quarantine = pa.concat_tables([t.cast(qschema) for t in quarantine_parts]) if quarantine_parts else qschema.empty_table()
    pq.write_table(quarantine, out_dir / "quarantine.parquet", compression="zstd")
    pq.write_table(pa.Table.from_pylist(rule_counts, schema=pa.schema([("file", pa.string()), ("code", pa.string()),
                                                                       ("severity", pa.string()), ("rows", pa.int64())])),
                   out_dir / "rule_counts.parquet")
    pq.write_table(pa.Table.from_pylist(list(per_file.values())), out_dir / "files.parquet")
    from dataclasses import asdict

    pq.write_table(pa.Table.from_pylist([asdict(n) for n in notices], schema=NOTICE_SCHEMA), out_dir / "notices.parquet")
    months = sorted(p.name.split("=", 1)[1] for p in fct_dir.glob("month=*")) if fct_dir.exists() else []
    return Staged(files=list(per_file.values()), rule_counts=rule_counts, notices=notices, months=months, seconds=seconds)


#: Source fields a rule names, read from these fields when the spec maps them instead (date and time in two columns).
_RULE_FIELD_PARTS = {"pickup_time": ("pickup_time", "pickup_date", "pickup_time_of_day"),
                     "dropoff_time": ("dropoff_time", "dropoff_date", "dropoff_time_of_day")}


def _reason(rule, resolved: dict[str, str]) -> str:
    """Return the quarantine reason of a hard rule: why, the file's columns it read (and the spec key), and what to change."""
    cols = []
    for f in rule.fields:
        for part in _RULE_FIELD_PARTS.get(f, (f,)):
            if part in resolved:
                cols.append(f"{resolved[part]!r} (trips.columns.{part})")
    where = f" Column {', '.join(cols)}." if cols else ""
    fix = f" Fix: {rule.fix}" if rule.fix else ""
    return f"{rule.why}{where}{fix}"


def _check_columns(batch: list, resolved: dict[str, str], raw_cols: list[str], opts: TripOptions) -> None:
    """Raise InputError if the batch lacks a column the spec needs: the pickup time, or a field the spec maps and relies on
    (trip count, time of day, a field rows are excluded by), naming the file, the spec key and the columns the file has."""
    names = ", ".join(f.label for f in batch[:2]) + (f" and {len(batch) - 2} more" if len(batch) > 2 else "")
    has = ", ".join(c for c in raw_cols[:30] if not c.startswith("__"))
    hint = next((f for f in batch if f.header_hint), None)
    tip = (f"; line {hint.header_hint} of {hint.label} holds the spec's column names: set trips.header_row: "
           f"{hint.header_hint} (or auto)" if hint else "")
    tip_ja = (f"。{hint.label} の {hint.header_hint} 行目に spec の列名があります: trips.header_row: {hint.header_hint}（または auto）"
              f"を指定してください" if hint else "")
    key = "pickup_date" if "pickup_date" in opts.columns else "pickup_time"
    if key not in resolved:
        raise InputError(f"{names}: line {batch[0].header_line}: none of the columns {', '.join(opts.columns[key])} "
                         f"(trips.columns.{key}) is in the header; it has: {has}{tip}",
                         ja=f"{names}: {batch[0].header_line} 行目: 見出しに {'、'.join(opts.columns[key])}（trips.columns.{key}）の"
                            f"どの列もありません。見出しにある列: {has}{tip_ja}")
    needed = {"trip_count", "pickup_time_of_day", "dropoff_time_of_day", "dropoff_date", *opts.exclude}
    for fld in sorted(needed & set(opts.columns) - set(resolved)):
        why = f" (trips.exclude.{fld} needs it)" if fld in opts.exclude else ""
        why_ja = f"（trips.exclude.{fld} に必要）" if fld in opts.exclude else ""
        raise InputError(f"{names}: line {batch[0].header_line}: none of the columns {', '.join(opts.columns[fld])} "
                         f"(trips.columns.{fld}){why} is in the header; it has: {has}{tip}. "
                         f"Name the right column in trips.columns.{fld}",
                         ja=f"{names}: {batch[0].header_line} 行目: 見出しに {'、'.join(opts.columns[fld])}（trips.columns.{fld}）"
                            f"{why_ja}のどの列もありません。見出しにある列: {has}{tip_ja}。trips.columns.{fld} に正しい列名を書いてください")


def _write_months(table: pa.Table, fct_dir: Path, name: str, *, accepted: pa.BooleanArray | None = None) -> None:
    """Write the accepted trips of ``table`` as ``fct_dir/month=YYYY-MM/<name>.parquet``, one file per month.

    If ``accepted`` (one flag per row: no hard rule failed) is given, then the other rows are left
    out. Each month's rows are picked by one mask (month and accepted) straight from the batch, so
    the batch is copied once, in the writer threads, instead of filtered whole first; no sort.
    Arrow's Parquet writer is used: it writes the ``flags`` list column about twice as fast as
    DuckDB's partitioned COPY here.
    """
    if not table.num_rows:
        return
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.compute as pc

    months = pc.dictionary_encode(table.column("month")).combine_chunks()
    keep = np.ones(len(months), dtype=bool) if accepted is None else accepted.to_numpy(zero_copy_only=False)
    if months.null_count:
        if (keep & ~months.indices.is_valid().to_numpy(zero_copy_only=False)).any():
            raise AssertionError("accepted trips without a month")  # cannot happen: no pickup time fails a hard rule
        keep = keep & months.indices.is_valid().to_numpy(zero_copy_only=False)
    codes = months.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    counts = np.bincount(codes[keep], minlength=len(months.dictionary))

    def write(i_month: tuple[int, str]) -> None:
        i, month = i_month
        mask = pc.equal(months.indices, i)
        if accepted is not None:
            mask = pc.and_(mask, accepted)
        part = fct_dir / f"month={month}"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(mask), part / f"{name}.parquet", compression="zstd", use_dictionary=dictionary)

    # timestamps are nearly all distinct: trying a dictionary for them first costs 40 % of their encoding and makes them larger
    dictionary = [f.name for f in table.schema if not pa.types.is_timestamp(f.type)]
    todo = [(i, m) for i, m in enumerate(months.dictionary.to_pylist()) if counts[i]]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # Arrow releases the GIL while it filters and encodes
        list(pool.map(write, todo))


def _assign(con: duckdb.DuckDBPyConnection, layer: ZoneLayer, what: str) -> None:
    """Fill pickup/dropoff ``what`` (zone or municipality) of _m from the points, where the source did not give it."""
    t = con.sql("SELECT _k, pickup_lon, pickup_lat, dropoff_lon, dropoff_lat FROM _m").to_arrow_table()
    if not t.num_rows:
        return

    def arr(name: str) -> np.ndarray:
        return t.column(name).to_numpy(zero_copy_only=False).astype(float)

    pz = layer.assign(arr("pickup_lon"), arr("pickup_lat"))
    dz = layer.assign(arr("dropoff_lon"), arr("dropoff_lat"))
    if what == "municipality":  # municipalities are stored by name (みなと市), their codes stay in trips.zones
        names = {i: n or i for i, n in zip(layer.ids, layer.names)}
        pz = np.array([names.get(v, v) for v in pz], dtype=object)
        dz = np.array([names.get(v, v) for v in dz], dtype=object)
    con.register("_assigned", pa.table({"_k": t.column("_k"), "p": pa.array(pz.tolist(), pa.string()), "d": pa.array(dz.tolist(), pa.string())}))
    con.execute(f"UPDATE _m SET pickup_{what} = coalesce(_m.pickup_{what}, a.p), dropoff_{what} = coalesce(_m.dropoff_{what}, a.d) "
                f"FROM _assigned a WHERE _m._k = a._k")
    con.unregister("_assigned")


def _municipality_by_zone(con: duckdb.DuckDBPyConnection, zones: ZoneLayer, munis: ZoneLayer) -> None:
    """Give trips with only zone ids the municipality containing each zone's representative point."""
    rows = zones.rows()
    pts = [(r["zone_id"], r["point_lon"], r["point_lat"]) for r in rows if r["point_lat"] is not None]
    if not pts:
        return
    m = munis.assign(np.array([p[1] for p in pts]), np.array([p[2] for p in pts]))
    names = {i: n or i for i, n in zip(munis.ids, munis.names)}
    m = np.array([names.get(v, v) for v in m], dtype=object)
    con.register("_zm", pa.table({"zone_id": [p[0] for p in pts], "muni": pa.array(m.tolist(), pa.string())}))
    con.execute("UPDATE _m SET pickup_municipality = z.muni FROM _zm z WHERE _m.pickup_zone = z.zone_id")
    con.execute("UPDATE _m SET dropoff_municipality = z.muni FROM _zm z WHERE _m.dropoff_zone = z.zone_id")
    con.unregister("_zm")
