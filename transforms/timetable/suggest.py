"""Look at a timetable workbook and write a starting spec: its sheets, the blocks found and their ranges.

``noriba spec suggest PATH`` prints :func:`suggest`. A block is a grid of time-like cells (6:40,
Excel times; pass/not-run markers such as レ and = join them) with a column of stop names to its
left (trips across columns) or a row of stop names above it (trips down rows), and the header
rows just above it (便, 備考, 行先, 系統). Time-like cells that belong to no block are listed, so
the user sees what a layout would leave out. Everything found is a guess to check against the
workbook; the output says so.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from transforms.adapters import InputError
from transforms.timetable.layout import is_time_like
from transforms.timetable.times import DEFAULT_NOT_RUN, DEFAULT_PASS
from transforms.timetable.workbook import Sheet, column_letter, read_workbook

WORKBOOK_SUFFIXES = (".xls", ".xlsx", ".xlsm", ".ods")
#: A block needs at least this many time-like cells; fewer are listed as cells outside every block.
MIN_TIMES = 2
_MARKS = {unicodedata.normalize("NFKC", m) for m in (*DEFAULT_PASS, *DEFAULT_NOT_RUN)}
_HEADERS = (("destination", ("行先", "行き先", "方面", "行")), ("route", ("系統", "路線", "線名")),
            ("notes", ("備考", "記事", "注", "記号")), ("number", ("便", "No", "NO", "番号", "号")))


@dataclass
class Found:
    """One block in internal coordinates (the grid is transposed for trips down rows), 0-based."""

    stop_col: int
    first: int
    last: int
    first_trip: int
    last_trip: int
    ad: int | None = None
    header: dict[str, int] = field(default_factory=dict)  # number/notes/destination/route -> row
    labels: dict[str, str] = field(default_factory=dict)
    times: int = 0
    trips: int = 0
    header_times: int = 0  # time-like cells among the header rows (e.g. 所要時分), read as part of the block
    tail: bool = False  # text in the stop column below the block (footnotes): the block needs its last row


@dataclass
class SheetPlan:
    name: str
    rows_layout: bool
    blocks: list[Found]
    outside: list[tuple[str, int]]  # (range, cells)
    times: int


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return unicodedata.normalize("NFKC", str(v)).strip()


def _timeish(grid: Sheet, tf: set, r: int, c: int) -> bool:
    return is_time_like(grid.value(r, c), time_format=(r, c) in tf)


def _components(grid: Sheet, tf: set) -> list[set[tuple[int, int]]]:
    """Return groups of touching time-like and marker cells, each holding at least one time."""
    cells = {(r, c) for r in range(grid.nrows) for c in range(grid.ncols)
             if grid.value(r, c) is not None and (_timeish(grid, tf, r, c) or _text(grid.value(r, c)) in _MARKS)}
    seen: set[tuple[int, int]] = set()
    out = []
    for start in sorted(cells):
        if start in seen:
            continue
        group, todo = set(), [start]
        seen.add(start)
        while todo:
            r, c = todo.pop()
            group.add((r, c))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    n = (r + dr, c + dc)
                    if n in cells and n not in seen:
                        seen.add(n)
                        todo.append(n)
        if any(_timeish(grid, tf, r, c) for r, c in group):
            out.append(group)
    return out


def _label_kind(label: str) -> str | None:
    for kind, words in _HEADERS:
        if any(w in label for w in words):
            return kind
    return None


def _column_names_above(grid: Sheet, tf: set, r0: int, c0: int, c1: int, stop_col: int) -> bool:
    """Return True if the row above holds a distinct name over every time column (a table of records: pickup, dropoff)."""
    if r0 == 0:
        return False
    names = [_text(grid.value(r0 - 1, c)) for c in range(c0, c1 + 1)]
    label = _text(grid.value(r0 - 1, stop_col))
    return (all(n and not re.fullmatch(r"[\d.]+", n) and not _timeish(grid, tf, r0 - 1, c) for n, c in zip(names, range(c0, c1 + 1)))
            and len(set(names)) == len(names) and _label_kind(label) is None)


def _blocks(grid: Sheet, tf: set, *, min_stops: int = 2) -> tuple[list[Found], list[set[tuple[int, int]]]]:
    """Return the blocks with a stop column to their left, and the groups of cells that are none."""
    found: list[Found] = []
    rest: list[set[tuple[int, int]]] = []
    comps = sorted(_components(grid, tf), key=lambda g: (min(r for r, _ in g), min(c for _, c in g)))
    for g in comps:
        r0, r1 = min(r for r, _ in g), max(r for r, _ in g)
        c0, c1 = min(c for _, c in g), max(c for _, c in g)
        n_times = sum(_timeish(grid, tf, r, c) for r, c in g)
        stop_col = ad = None
        for c in range(c0 - 1, max(-1, c0 - 5), -1):
            vals = [_text(grid.value(r, c)) for r in range(r0, r1 + 1)]
            if vals and all(v in ("着", "発", "") for v in vals) and any(vals):
                ad = c
                continue
            names = [v for r, v in zip(range(r0, r1 + 1), vals) if v and not _timeish(grid, tf, r, c) and not re.fullmatch(r"[\d.]+", v)]
            if len(names) >= max(2, 0.6 * (r1 - r0 + 1)) and len(set(names)) >= max(min_stops, 0.5 * len(names)):  # names, not pole letters
                stop_col = c
                break
        if n_times < MIN_TIMES or stop_col is None or _column_names_above(grid, tf, r0, c0, c1, stop_col):
            rest.append(g)
            continue
        # a block directly below the previous one with the same columns, separated only by stop rows no trip serves, is one block
        prev = found[-1] if found else None
        if prev and prev.stop_col == stop_col and prev.first_trip == c0 and r0 > prev.last and all(
                _text(grid.value(r, stop_col)) and _label_kind(_text(grid.value(r, stop_col))) is None
                and all(grid.value(r, c) is None for c in range(c0, c1 + 1)) for r in range(prev.last + 1, r0)):
            prev.last, prev.last_trip = r1, max(prev.last_trip, c1)
            prev.times += n_times
            continue
        b = Found(stop_col, r0, r1, c0, c1, ad, times=n_times)
        floor = max((f.last for f in found if f.first_trip <= c1 and f.last_trip >= c0 and f.last < r0), default=-1)
        for r in range(r0 - 1, max(floor, r0 - 5), -1):
            label = _text(grid.value(r, stop_col)) or (_text(grid.value(r, ad)) if ad is not None else "")
            values = [_text(grid.value(r, c)) for c in range(c0, c1 + 1)]
            kind = _label_kind(label)
            if kind is None and any(values):
                kind = "number" if all(re.fullmatch(r"\d+", v) for v in values if v) else "notes"
            if kind is None or kind in b.header:
                continue
            b.header[kind], b.labels[kind] = r, label
        b.trips = sum(any(_timeish(grid, tf, r, c) for r in range(r0, r1 + 1)) for c in range(c0, c1 + 1))
        b.tail = any(_text(grid.value(r, stop_col)) for r in range(r1 + 1, grid.nrows))
        found.append(b)
    # a few times among the header rows of a block (e.g. a depot time above the first stop) are read as part of it
    kept = []
    for g in rest:
        inside = all(any(min([b.first, *b.header.values()]) <= r <= b.last and b.first_trip <= c <= b.last_trip for b in found)
                     for r, c in g)
        if not inside:
            kept.append(g)
        else:
            for b in found:
                if b.first_trip <= min(g)[1] <= b.last_trip and min(g)[0] < b.first:
                    b.header_times += len(g)
                    break
    return found, kept


def analyse(sheet: Sheet) -> SheetPlan:
    """Return the blocks of one sheet, trips across columns or down rows (whichever explains more time cells)."""
    total = sum(is_time_like(v, time_format=(r, c) in sheet.time_format) for r, row in enumerate(sheet.cells)
                for c, v in enumerate(row) if v is not None)
    plans = []
    for rows_layout in (False, True):
        grid = sheet.transposed() if rows_layout else sheet
        tf = {(c, r) for r, c in sheet.time_format} if rows_layout else sheet.time_format
        blocks, rest = _blocks(grid, tf, min_stops=3 if rows_layout else 2)  # trips down rows: a row of 3 stop names at least
        outside = []
        for g in rest:
            cells = [(c, r) if rows_layout else (r, c) for r, c in g if _timeish(grid, tf, r, c)]
            r0, r1 = min(r for r, _ in cells), max(r for r, _ in cells)
            c0, c1 = min(c for _, c in cells), max(c for _, c in cells)
            outside.append((f"{sheet.name}!{column_letter(c0)}{r0 + 1}:{column_letter(c1)}{r1 + 1}", len(cells)))
        plans.append(SheetPlan(sheet.name, rows_layout, blocks, outside, total))
    cols, rows = (sum(b.times + b.header_times for b in p.blocks) for p in plans)
    return plans[1] if rows > cols * 1.1 else plans[0]  # trips across columns unless down rows explains clearly more


def _layout(plan: SheetPlan, b: Found, *, ends: bool) -> dict:
    """Return the spec layout keys of one block, in the sheet's notation."""
    def col(c):
        return column_letter(c)

    def row(r):
        return r + 1

    if plan.rows_layout:  # internal rows are sheet columns
        out = {"trips": "rows", "stop_row": row(b.stop_col), "first_stop_column": col(b.first)}
        if ends or b.tail:
            out["last_stop_column"] = col(b.last)
        out["first_trip_row"] = row(b.first_trip)
        if ends:
            out["last_trip_row"] = row(b.last_trip)
        if b.ad is not None:
            out["arrival_departure_row"] = row(b.ad)
        out.update({f"{k}_column": col(v) for k, v in sorted(b.header.items(), key=lambda kv: kv[1])})
        return out
    out = {"trips": "columns", "stop_column": col(b.stop_col), "first_stop_row": row(b.first)}
    if ends or b.tail:
        out["last_stop_row"] = row(b.last)
    out["first_trip_column"] = col(b.first_trip)
    if ends:
        out["last_trip_column"] = col(b.last_trip)
    if b.ad is not None:
        out["arrival_departure_column"] = col(b.ad)
    out.update({f"{k}_row": row(v) for k, v in sorted(b.header.items(), key=lambda kv: kv[1])})
    return out


def _where(plan: SheetPlan, b: Found) -> str:
    def ref(r, c):
        return f"{column_letter(r)}{c + 1}" if plan.rows_layout else f"{column_letter(c)}{r + 1}"

    stops = f"{ref(b.first, b.stop_col)}:{ref(b.last, b.stop_col)}"
    trips = f"{ref(b.first, b.first_trip)}:{ref(b.last, b.last_trip)}"
    heads = ", ".join(f"{k} {'column' if plan.rows_layout else 'row'} "
                      f"{column_letter(v) if plan.rows_layout else v + 1} ({b.labels[k] or '-'})" for k, v in sorted(b.header.items(), key=lambda kv: kv[1]))
    return f"stops {stops}, times {trips} ({b.trips} trips, {b.times} time cells)" + (f", headers: {heads}" if heads else "")


def _yaml_value(v) -> str:
    if isinstance(v, int):
        return str(v)
    s = str(v)
    return s if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) and s not in ("null", "true", "false", "yes", "no", "on", "off") else f'"{s}"'


def _flow(d: dict) -> str:
    return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in d.items()) + "}"


def sheet_layout(plan: SheetPlan) -> dict:
    """Return the layout of one sheet: one block's keys, or the first block's keys with ``blocks`` for each."""
    if len(plan.blocks) == 1:
        return _layout(plan, plan.blocks[0], ends=False)
    full = [_layout(plan, b, ends=True) for b in plan.blocks]
    base = {k: v for k, v in full[0].items() if all(f.get(k) == v for f in full)}
    return {**base, "blocks": [{k: v for k, v in f.items() if base.get(k) != v} for f in full]}


def plans_of(path: Path) -> list[SheetPlan]:
    """Return the plan of every sheet of a workbook. If it cannot be read, raise InputError."""
    sheets, _ = read_workbook(path.read_bytes(), path.name)
    return [analyse(s) for s in sheets]


def looks_like_timetable(path: Path) -> bool:
    """Return True if a workbook holds at least one timetable block (a grid of time-like cells beside stop names)."""
    try:
        plans = plans_of(path)
    except InputError:
        return False
    return any(b.trips >= 2 and b.last - b.first >= 1 for p in plans for b in p.blocks)


def suggest(path: Path) -> str:
    """Return a commented starting spec for a timetable workbook. If it cannot be read, raise InputError."""
    plans = plans_of(path)
    name = path.name
    stem = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-") or "timetable"
    lines = [f"# Starting spec suggested by `noriba spec suggest {name}`: check every value against the workbook.",
             "# What was found (rows and columns as Excel shows them):"]
    with_blocks = [p for p in plans if p.blocks]
    for p in plans:
        if not p.blocks and not p.outside:
            lines.append(f"#   sheet {p.name}: no time-like cells")
            continue
        way = "trips down rows" if p.rows_layout else "trips across columns"
        lines.append(f"#   sheet {p.name}: {len(p.blocks)} block{'s' if len(p.blocks) != 1 else ''}, {way}")
        for i, b in enumerate(p.blocks, 1):
            lines.append(f"#     block {i}: {_where(p, b)}")
        for where, n in p.outside:
            lines.append(f"#     OUTSIDE every block: {where} ({n} time-like cells) - add a block for them if they are trips")
        if len(p.blocks) > 1 and len({tuple(sorted((k, v - b.first) for k, v in b.header.items())) for b in p.blocks}) == 1:
            lines.append("#     the blocks repeat one shape: `repeat: {marker: first_stop}` in place of `blocks:` also finds them")
    if not with_blocks:
        lines.append("# No timetable block was found: no grid of times beside a column (or row) of stop names.")
        lines.append("# If this is a file of trip records, run `noriba spec suggest --kind trips` on it.")
        return "\n".join(lines) + "\n"
    layouts = [(p, sheet_layout(p)) for p in with_blocks]
    shapes = [repr(lay) for _, lay in layouts]
    common = max(shapes, key=shapes.count)  # the spec-level layout is the most common one; the others are overrides
    first, base = next((p, lay) for p, lay in layouts if repr(lay) == common)
    lines += [
        f"id: {stem}",
        "kind: timetable",
        f"name: {_yaml_value(path.stem)}",
        "source:",
        "  files:",
        f"    {_yaml_value(name)}: {_yaml_value(str(path))}",
        "    stops.csv: TODO/stops.csv     # the stop list: name and coordinates of every stop",
        "timezone: Asia/Tokyo",
        "profile: gtfs-jp",
        "timetable:",
        "  agency: {id: \"TODO\", name: TODO, url: \"https://example.jp\"}",
        "  workbooks:",
        f"    - {{file: {_yaml_value(name)}, service: weekday}}",
        *([f"  sheets:\n    include: [{', '.join(_yaml_value(p.name) for p in with_blocks)}]"] if len(with_blocks) < len(plans) else []),
        f"  layout:            # as in sheet {first.name}" + (f" and {shapes.count(common) - 1} more" if shapes.count(common) > 1 else ""),
    ]
    for k, v in base.items():
        if k == "blocks":
            lines.append("    blocks:          # each block: its keys replace the ones above")
            lines += [f"      - {_flow(b)}" for b in v]
        else:
            lines.append(f"    {k}: {_yaml_value(v)}")
    others = []
    for p, lay in layouts:
        if repr(lay) != common:
            if "blocks" in base and "blocks" not in lay:
                lay["blocks"] = [{}]
            others.append((p.name, lay))
    if others:
        lines.append("  layouts:           # sheets laid out differently from the one above")
        for sheet, lay in others:
            lines.append(f"    - sheet: {_yaml_value(sheet)}")
            lines.append("      layout:")
            for k, v in lay.items():
                if k == "blocks":
                    lines.append("        blocks:")
                    lines += [f"          - {_flow(b)}" for b in v]
                else:
                    lines.append(f"        {k}: {_yaml_value(v)}")
    lines += [
        "  route: {id: \"{sheet}\", type: 3}   # a route per sheet; or layout route_row (系統) / a route per block",
        "  stops:",
        "    file: stops.csv",
        "    format: csv",
        "    columns: {id: TODO, name: TODO, lat: TODO, lon: TODO}",
        "  calendar:",
        "    start: 2026-04-01",
        "    end: 2027-03-31",
        "    services:",
        "      weekday: {days: [mon, tue, wed, thu, fri], holidays: skip}",
    ]
    return "\n".join(lines) + "\n"
