"""A starting trips spec for a file Noriba has never seen: what ``noriba spec suggest PATH`` prints for a trip file.

The file's first records are read (CSV in any encoding, an .xlsx sheet, JSON / JSON lines,
Parquet), the header is found below title rows, total rows at the end are counted as footer
rows, and each column gets a type (integer, number, date, time of day, date and time, text) and
the canonical trip field it most likely holds, from its name (English or Japanese) and its
values. The result is YAML with comments: every guess says what it was based on, so a person
checks it instead of writing a spec from nothing. It loads with the trips spec checker as is.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from transforms.adapters import InputError
from transforms.trips.readers import _EXT_FORMATS, find_header, unique_names
from transforms.trips.spec import DATE_FORMATS, HEADER_SCAN_ROWS, TIME_OF_DAY_FORMATS

#: Records looked at for types and values (the first ones under the header).
SAMPLE_ROWS = 2000
#: Bytes of a CSV read for the suggestion (its end is read too, for footer rows).
MAX_BYTES = 64 << 20
#: Timestamp formats tried for a column holding a date and a time.
DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                    "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p",
                    "%m/%d/%Y %I:%M %p", "%d.%m.%Y %H:%M", "%Y%m%d%H%M%S")
_TOTAL_WORDS = ("合計", "総計", "小計", "計", "total", "sum", "grand total", "総数")
_CANCEL_WORDS = ("cancel", "キャンセル", "取消", "取り消し", "中止", "no show", "no-show", "noshow", "void", "未乗車")
_NUMBER = re.compile(r"[+-]?((\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

#: (canonical field, name patterns, types it may have), tried in order; the first field a column matches wins.
FIELD_HINTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("trip_ref", r"trip.?id|booking.?id|ride.?id|予約番号|予約id|運行id|乗車id|^id$", ("text", "integer")),
    ("pickup_time", r"pick.?up.*(time|date)|start.?(time|date|at)|begin|depart|乗車(日時|時刻)|開始(日時|時刻)|出発(日時|時刻)|^pickup_at$",
     ("datetime",)),
    ("dropoff_time", r"drop.?off.*(time|date)|end.?(time|date|at)|arriv|降車(日時|時刻)|終了(日時|時刻)|到着(日時|時刻)|^dropoff_at$",
     ("datetime",)),
    ("pickup_date", r"date|day|日付|年月日|運行日|乗車日|日$", ("date", "datetime")),
    ("pickup_time_of_day", r"pick.?up|start|begin|depart|乗車|開始|出発|時刻|time", ("time",)),
    ("dropoff_time_of_day", r"drop.?off|end|arriv|降車|終了|到着", ("time",)),
    ("pickup_lat", r"(pick.?up|start|from|乗車|出発).*(lat|緯度)|^lat|緯度$", ("number",)),
    ("pickup_lon", r"(pick.?up|start|from|乗車|出発).*(lon|lng|経度)|^lon|^lng|経度$", ("number",)),
    ("dropoff_lat", r"(drop.?off|end|to|降車|到着).*(lat|緯度)", ("number",)),
    ("dropoff_lon", r"(drop.?off|end|to|降車|到着).*(lon|lng|経度)", ("number",)),
    ("pickup_zone", r"(pu|pick.?up|start|乗車|出発).*(zone|location.?id|area|区域|地区|エリア)|^zone|区域|地区|エリア|base|営業所|拠点",
     ("text", "integer")),
    ("dropoff_zone", r"(do|drop.?off|end|降車|到着).*(zone|location.?id|area|区域|地区|エリア)", ("text", "integer")),
    ("pickup_address", r"(pick.?up|start|from|乗車|出発).*(address|住所|場所|地点)|^address$|住所$|乗車地$", ("text",)),
    ("dropoff_address", r"(drop.?off|end|to|降車|到着).*(address|住所|場所|地点)|降車地$", ("text",)),
    ("status", r"status|state|result|状態|状況|ステータス|区分", ("text",)),
    ("passengers", r"passenger|pax|riders|ridership|人数|乗客数|乗車人員", ("integer",)),
    ("trip_count", r"count|trips|rides|dispatch|件数|回数|運行数|乗車数|便数|台数", ("integer",)),
    ("distance", r"distance|miles|km|距離", ("number", "integer")),
    ("duration", r"duration|所要|乗車時間|minutes|seconds", ("number", "integer")),
    ("tip_amount", r"tip|チップ", ("number", "integer")),
    ("fare_amount", r"fare|運賃|料金", ("number", "integer")),
    ("total_amount", r"total|amount|合計|金額|売上", ("number", "integer")),
    ("payment_type", r"pay|支払", ("text", "integer")),
    ("vendor", r"vendor|vehicle|car|device|車両|号車|車番", ("text", "integer")),
    ("provider", r"company|operator|provider|事業者|会社", ("text",)),
)


@dataclass
class Column:
    name: str
    values: list[str] = field(default_factory=list)  # non-empty sample values, as written
    blanks: int = 0
    kind: str = "empty"  # integer | number | date | time | datetime | text | empty
    fmt: str | None = None  # the strptime format that reads every sampled value (date / time / datetime)
    field: str | None = None
    why: str = ""


def suggest(path: Path, *, sheet: str | None = None) -> str:
    """Return a commented YAML starting spec (kind trips) for the trip file at ``path``.

    The first records are sampled; an .xlsx uses ``sheet`` (else its first sheet). If the file
    cannot be read, raise InputError naming it.
    """
    path = Path(path)
    fmt = _EXT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path.name}: cannot tell the format from the extension (.csv, .tsv, .txt, .xlsx, .json, .jsonl, .parquet)")
    notes: list[str] = []
    header_line, footer = None, 0
    if fmt == "csv":
        head, tail, total, encoding = _csv_rows(path)
        if encoding not in ("utf-8", "ascii"):
            notes.append(f"encoding: read as {encoding}; add `encoding: {encoding}` beside `timezone:` if Noriba guesses wrong")
        header_line, names, records, footer = _shape(head, tail, total, notes)
    elif fmt == "xlsx":
        head, tail, total, sheet_name, sheets = _xlsx_rows(path, sheet)
        notes.append(f"sheet: {sheet_name!r} of {', '.join(repr(s) for s in sheets)}")
        header_line, names, records, footer = _shape(head, tail, total, notes)
    else:
        names, records = _record_rows(path, fmt)
    cols = [Column(n) for n in names]
    for r in records:
        for i, c in enumerate(cols):
            v = r[i] if i < len(r) else ""
            v = "" if v is None else str(v)
            if v.strip() in ("", "-", "--", "—", "ー", "－"):
                c.blanks += 1
            else:
                c.values.append(v)
    for c in cols:
        _type(c)
    _fields(cols)
    return _render(path, fmt, sheet if fmt == "xlsx" else None, header_line, footer, cols, len(records), notes)


# ---- reading ----------------------------------------------------------------------------------------------------------

def _csv_rows(path: Path) -> tuple[list[list[str]], list[list[str]], int, str]:
    """Return (first records, last records, records in all, encoding) of a CSV, read at most MAX_BYTES."""
    from transforms.encoding import decode

    raw = path.read_bytes()[:MAX_BYTES] if path.stat().st_size > MAX_BYTES else path.read_bytes()
    if not raw.strip():
        raise InputError(f"{path.name}: the file is empty")
    dec = decode(raw, file=path.name)
    text = dec.data.decode("utf-8", errors="replace")
    sample = text[:65536]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
        delim = dialect.delimiter
    except csv.Error:
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
    head: list[list[str]] = []
    tail: deque = deque(maxlen=10)
    n = 0
    try:
        for rec in csv.reader(io.StringIO(text, newline=""), delimiter=delim):
            n += 1
            if len(head) < HEADER_SCAN_ROWS + SAMPLE_ROWS:
                head.append(rec)
            tail.append(rec)
    except csv.Error as exc:
        raise InputError(f"{path.name}: record {n + 1}: {exc}; the CSV cannot be read") from None
    return head, list(tail), n, dec.encoding


def _xlsx_rows(path: Path, sheet: str | None) -> tuple[list[list[str]], list[list[str]], int, str, list[str]]:
    """Return (first rows, last rows, rows in all, sheet name, all sheet names) of a workbook sheet, empty rows kept as []."""
    from transforms.trips.readers import _text
    from transforms.xlsx import Workbook

    with Workbook(path, path.name) as wb:
        if not wb.sheets:
            raise InputError(f"{path.name}: the workbook has no sheet")
        names = [n for n, _ in wb.sheets]
        st = wb.stream(sheet) if sheet else wb.stream(names[0])
        head: list[list[str]] = []
        tail: deque = deque(maxlen=10)
        n = 0
        for r, cells in wb.rows(st):
            while n < r:  # empty rows keep their place, so line numbers are sheet rows
                if len(head) < HEADER_SCAN_ROWS + SAMPLE_ROWS:
                    head.append([])
                tail.append([])
                n += 1
            row = [""] * (max((c for c, _ in cells), default=-1) + 1)
            for c, v in cells:
                row[c] = _text(v) or ""
            if len(head) < HEADER_SCAN_ROWS + SAMPLE_ROWS:
                head.append(row)
            tail.append(row)
            n += 1
        return head, list(tail), n, st.name, names


def _record_rows(path: Path, fmt: str) -> tuple[list[str], list[list]]:
    """Return (column names, first records) of a JSON, JSON lines or Parquet file."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        t = next(pf.iter_batches(batch_size=SAMPLE_ROWS), None)
        names = pf.schema_arrow.names
        rows = [] if t is None else [[_plain(r.get(n)) for n in names] for r in t.to_pylist()]
        return names, rows
    try:
        text = path.read_text(encoding="utf-8-sig")
        if fmt == "jsonl":
            recs = [json.loads(line) for line, _ in zip((x for x in text.splitlines() if x.strip()), range(SAMPLE_ROWS))]
        else:
            doc = json.loads(text)
            if isinstance(doc, dict):
                doc = next((v for v in doc.values() if isinstance(v, list)), [doc])
            recs = list(doc)[:SAMPLE_ROWS]
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name}: cannot be read as {fmt}: {exc}") from None
    names: dict[str, None] = {}
    for r in recs:
        if isinstance(r, dict):
            names.update(dict.fromkeys(r))
    return list(names), [[_plain(r.get(n)) if isinstance(r, dict) else None for n in names] for r in recs]


def _plain(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _shape(head: list[list[str]], tail: list[list[str]], total: int, notes: list[str]) -> tuple[int, list[str], list[list[str]], int]:
    """Return (header line, distinct column names, sampled records, footer rows) of a table read as rows."""
    scan = head[:HEADER_SCAN_ROWS]
    idx = find_header(scan)
    if idx is None:
        idx = 0
        notes.append("header: no row looks like a header (names over each column); the first line is taken: CHECK header_row")
    names, renamed = unique_names(head[idx], label="", line=idx + 1)
    for n in renamed:
        notes.append(f"header: {n.message}")
    width = len([v for v in head[idx] if str(v).strip()])
    # footer: rows at the end that are totals or much narrower than the header (notes, signatures)
    footer = 0
    for row in reversed(tail):
        filled = [v for v in row if str(v).strip()]
        if not filled:
            continue
        first = str(filled[0]).strip().lower()
        if any(first.startswith(w) for w in _TOTAL_WORDS) or len(filled) < max(2, width // 2):
            footer += 1
        else:
            break
    if total - idx - 1 <= footer:
        footer = 0
    records = [r for r in head[idx + 1:] if any(str(v).strip() for v in r)]
    if total <= len(head) and footer:
        records = records[:len(records) - footer]
    return idx + 1, names, records[:SAMPLE_ROWS], footer


# ---- types and fields -------------------------------------------------------------------------------------------------

def _fits(values: list[str], fmt: str, *, upper: bool = False) -> bool:
    for v in values:
        try:
            datetime.strptime(v.strip().upper() if upper else v.strip(), fmt)
        except ValueError:
            return False
    return True


def _type(c: Column) -> None:
    vals = c.values[:500]
    if not vals:
        return
    if all(_NUMBER.fullmatch(v.strip()) for v in vals):
        c.kind = "integer" if all("." not in v and "e" not in v.lower() for v in vals) else "number"
        if c.kind == "integer" and all(len(v.strip()) == 8 and v.strip().startswith(("19", "20")) for v in vals) and _fits(vals, "%Y%m%d"):
            c.kind, c.fmt = "date", "%Y%m%d"
        return
    for fmt in DATETIME_FORMATS:
        if _fits(vals, fmt):
            c.kind, c.fmt = "datetime", fmt
            return
    for fmt in DATE_FORMATS:
        if _fits(vals, fmt):
            c.kind, c.fmt = "date", fmt
            return
    date_part = [v.strip()[:10] for v in vals]
    if all(v.strip().endswith(" 00:00:00") for v in vals) and _fits(date_part, "%Y-%m-%d"):
        c.kind, c.fmt = "date", None  # a sheet's date cells: read as dates without a format
        return
    for fmt in TIME_OF_DAY_FORMATS:
        if fmt not in ("%H%M", "%H%M%S") and _fits(vals, fmt, upper=True):
            c.kind, c.fmt = "time", fmt
            return
    c.kind = "text"


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _fields(cols: list[Column]) -> None:
    """Give each column the canonical field it most likely holds (each field to one column at most)."""
    taken: set[str] = set()
    for fld, _, kinds in FIELD_HINTS:  # a column named as the canonical field first (total_amount, not tolls_amount)
        for c in cols:
            if not c.field and fld not in taken and c.kind in kinds and _squash(c.name) == _squash(fld):
                c.field, c.why = fld, f"named {fld}"
                taken.add(fld)
    for fld, pattern, kinds in FIELD_HINTS:
        rx = re.compile(pattern, re.IGNORECASE)
        for c in cols:
            if c.field or fld in taken or c.kind not in kinds:
                continue
            if rx.search(c.name.strip()):
                c.field, c.why = fld, f"name matches {fld}"
                taken.add(fld)
                break
    # by values when the name says nothing: the status with cancellations, the only date, the only time columns
    for c in cols:
        if c.field:
            continue
        low = {v.strip().lower() for v in c.values}
        if c.kind == "text" and "status" not in taken and 1 < len(low) <= 20 and any(w in v for v in low for w in _CANCEL_WORDS):
            c.field, c.why = "status", "few distinct values, one of them a cancellation"
            taken.add("status")
    dates = [c for c in cols if c.kind == "date" and not c.field]
    if "pickup_date" not in taken and "pickup_time" not in taken and dates:
        dates[0].field, dates[0].why = "pickup_date", "the first date column"
        taken.add("pickup_date")
    if "pickup_time" in taken and "pickup_date" in taken:  # a full timestamp wins over a date column
        for c in cols:
            if c.field in ("pickup_date", "pickup_time_of_day", "dropoff_time_of_day"):
                c.field, c.why = None, ""
    times = [c for c in cols if c.kind == "time" and not c.field]
    if "pickup_date" in taken:
        for fld in ("pickup_time_of_day", "dropoff_time_of_day"):
            if fld not in taken and times:
                t = times.pop(0)
                t.field, t.why = fld, "a time-of-day column beside the date"
                taken.add(fld)
    else:
        for c in cols:
            if c.field in ("pickup_time_of_day", "dropoff_time_of_day"):
                c.field, c.why = None, ""
    if "pickup_time" not in taken and "pickup_date" not in taken:
        dts = [c for c in cols if c.kind == "datetime"]
        if dts:
            dts[0].field, dts[0].why = "pickup_time", "the first date-and-time column"
            if len(dts) > 1 and "dropoff_time" not in taken:
                dts[1].field, dts[1].why = "dropoff_time", "the second date-and-time column"


# ---- output -----------------------------------------------------------------------------------------------------------

def _q(v: str) -> str:
    return json.dumps(v, ensure_ascii=False)


def _describe(c: Column) -> str:
    if c.kind == "empty":
        return "empty in the sample"
    distinct = Counter(v.strip() for v in c.values)
    ex = ", ".join(v for v, _ in distinct.most_common(3))
    fmt = f" ({c.fmt})" if c.fmt else ""
    blank = f", {c.blanks} blank or '-'" if c.blanks else ""
    return f"{c.kind}{fmt}, {len(distinct)} distinct{blank}, e.g. {ex}"[:160].replace("\n", " ").replace("\r", " ")


def _render(path: Path, fmt: str, sheet: str | None, header_line: int | None, footer: int, cols: list[Column], n: int,
            notes: list[str]) -> str:
    japanese = any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", c.name + "".join(c.values[:50])) for c in cols)
    stem = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "trips"
    by_field = {c.field: c for c in cols if c.field}
    out = [f"# Starting trips spec suggested by `noriba spec suggest` for {path.name} ({n:,} records sampled).",
           "# Every guess says what it is based on; check the lines marked CHECK, then save this under specs/trips/.",
           *[f"# {x}".replace("\n", " ") for x in notes]]
    if header_line and header_line > 1:
        above = "line 1 is" if header_line == 2 else f"lines 1-{header_line - 1} are"
        out.append(f"# title rows: {above} above the header (line {header_line}); they are not read")
    if footer:
        out.append(f"# footer: the last {footer} non-empty line(s) look like totals or notes, not trips; they are not read")
    if "trip_count" in by_field:
        out.append(f"# aggregate file: {by_field['trip_count'].name!r} looks like a trip count; each row stands for that many "
                   f"trips (the marts sum it, the exports' k counts trips)")
    out += [
        f"id: {stem}  # CHECK: a spec id (lowercase letters, digits and '-')",
        "kind: trips",
        f"name: {_q(path.stem)}",
        "source:",
        f"  path: {_q(str(path.parent))}  # the folder holding the files",
        f"timezone: {'Asia/Tokyo' if japanese else 'UTC'}  # CHECK: the time zone of the file's clock",
        "trips:",
        f"  files: [{_q(path.name)}]  # CHECK: a glob such as \"*.{path.suffix.lstrip('.') or 'csv'}\" for monthly files",
        f"  format: {fmt}",
    ]
    if sheet:
        out.append(f"  sheet: {_q(sheet)}")
    if header_line and header_line > 1:
        out.append(f"  header_row: {header_line}  # or auto: the row holding the mapped column names")
    if footer:
        out.append(f"  footer_rows: {footer}")
    out.append("  mode: taxi  # CHECK: taxi, ride_hailing, on_demand, shared_taxi or micromobility")
    out.append(f"  currency: {'JPY' if japanese else 'USD'}  # CHECK")
    time: list[str] = []
    pt = by_field.get("pickup_time")
    if pt is not None and pt.fmt:
        time.append(f"format: {_q(pt.fmt)}")
    pd_ = by_field.get("pickup_date")
    if pd_ is not None and pd_.fmt:
        time.append(f"date_format: {_q(pd_.fmt)}")
    tod = sorted({c.fmt for c in cols if c.field in ("pickup_time_of_day", "dropoff_time_of_day") and c.fmt})
    if tod:
        time.append(f"time_of_day_format: [{', '.join(_q(f) for f in tod)}]")
    if time:
        out.append(f"  time: {{{', '.join(time)}, zone: local}}")
    out.append("  columns:")
    if not by_field.get("pickup_time") and not by_field.get("pickup_date"):
        out.append("    pickup_time: CHANGE-ME  # CHECK: no column looks like the pickup time; name it here")
    for c in cols:
        if c.field:
            out.append(f"    {c.field}: {_q(c.name)}  # {c.why}; {_describe(c)}")
    if "pickup_date" in by_field and "pickup_time_of_day" not in by_field:
        out.append("    # no time-of-day column: pickups are at midnight of their date; the marts leave the hour empty")
    status = by_field.get("status")
    if status is not None:
        counts = Counter(v.strip() for v in status.values)
        cancel = sorted(v for v in counts if any(w in v.lower() for w in _CANCEL_WORDS))
        seen = ", ".join(f"{v} ({k})" for v, k in counts.most_common(12))
        out.append(f"  # {status.name!r} values in the sample: {seen}")
        if cancel:
            out.append("  exclude:  # rows with these values are not trips: counted as excluded, with the reason")
            out.append(f"    status: [{', '.join(_q(v) for v in cancel)}]")
        else:
            out.append(f"  # exclude: {{status: [...]}}  # list the values of {status.name!r} that are not trips")
    points = {"pickup_lat", "pickup_lon"} <= set(by_field)
    if "pickup_zone" in by_field or points:
        out.append("  # zones: {layer: <a zones spec id>}  # to place trips in zones (ids or points)")
    elif any(f in by_field for f in ("pickup_address", "dropoff_address")):
        out.append("  # no coordinates: addresses are kept as text (pickup_address / dropoff_address), no zone can be assigned")
    out.append("  privacy: {k: 10}  # cells with fewer than k trips are not exported")
    rest = [c for c in cols if not c.field]
    if rest:
        out.append("# Columns not mapped (add them under trips.columns if they hold a canonical field):")
        out += [f"#   {c.name}: {_describe(c)}" for c in rest]
    return "\n".join(out) + "\n"
