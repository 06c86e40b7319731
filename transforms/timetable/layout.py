"""Find the stops and trips in a timetable sheet, as the spec's ``layout`` describes them.

Trips run across columns (one column per trip, stops down a column) or down rows (one row
per trip); the rows layout is read by transposing the sheet, so cell references are always
given in the original sheet's notation.

A sheet may hold several blocks (stacked, or side by side), each with its own stop rows, trip
columns and header rows: declared in ``layout.blocks`` or found by ``layout.repeat`` (a marker
cell). :func:`uncovered` names the time-like cells that no block covers, so half a timetable is
never read silently.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field

from transforms.timetable.config import BLOCK_KEYS, COLUMN_KEYS, ROW_KEYS  # noqa: F401 (re-exported)
from transforms.timetable.times import BAD, BLANK, Cell, parse_time_cell, DEFAULT_NOT_RUN, DEFAULT_PASS
from transforms.timetable.workbook import Sheet, cell_ref, column_index, column_letter


@dataclass
class StopRow:
    """One stop of the sheet: its name, pole, and the sheet rows for arrival and departure."""

    name: str
    name_ref: str
    pole: str = ""
    arr_row: int = -1
    dep_row: int = -1
    index: int = 0  # position among the sheet's stops
    label: str = ""  # 発 / 着 from the arrival/departure column


@dataclass
class TripColumn:
    col: int
    number: str = ""
    notes: str = ""
    headsign: str = ""  # from the destination (行先) header
    route: str = ""  # from the route (系統) header, when the layout has one
    cells: dict[int, Cell] = field(default_factory=dict)  # sheet row -> parsed cell
    raw: dict[int, object] = field(default_factory=dict)


@dataclass
class SheetTimetable:
    sheet: Sheet  # as read (transposed for the rows layout)
    transposed: bool
    stops: list[StopRow] = field(default_factory=list)
    trips: list[TripColumn] = field(default_factory=list)
    block: "Block | None" = None
    loose_times: int = 0  # time-like cells in the block's trip area when it has no stop names

    def ref(self, row: int, col: int) -> str:
        """Return the Excel reference of an (internal) cell in the original sheet."""
        return cell_ref(self.sheet.name, col, row) if self.transposed else cell_ref(self.sheet.name, row, col)


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


#: A marker found more often than this on one sheet marks something other than blocks (the sheet is refused, not read for hours).
MAX_BLOCKS = 200


class LayoutError(ValueError):
    """The layout does not fit a sheet: ``field`` is the layout key to change, ``cell`` where (may be empty)."""

    def __init__(self, field: str, message: str, cell: str = ""):
        super().__init__(message)
        self.field, self.cell = field, cell


@dataclass
class Block:
    """One timetable block of a sheet in internal coordinates (transposed for the rows layout), 0-based."""

    number: int  # 1-based position among the sheet's blocks
    stop_col: int
    first: int
    last: int | None
    first_trip: int
    last_trip: int | None
    ad: int | None = None
    pole: int | None = None
    header: dict = field(default_factory=dict)  # number/notes/dest/route -> internal row
    route: str | None = None  # route id template of the block, if the layout gives one
    how: str = "layout"  # layout | blocks[i] | marker 'text' at REF

    @property
    def top(self) -> int:
        return min([self.first, *self.header.values()])

    @property
    def left(self) -> int:
        return min(c for c in (self.stop_col, self.ad, self.pole) if c is not None)


def _internal(layout: dict, rows_layout: bool) -> dict:
    """Return the layout's positions as 0-based internal (row, column) indexes."""
    def col(k):
        return column_index(layout[k]) if layout.get(k) not in (None, "") else None

    def row(k):
        return int(layout[k]) - 1 if layout.get(k) is not None else None

    if rows_layout:  # the grid is transposed: sheet rows are internal columns and sheet columns internal rows
        return {"stop_col": row("stop_row"), "first": col("first_stop_column"), "last": col("last_stop_column"),
                "first_trip": row("first_trip_row"), "last_trip": row("last_trip_row"),
                "ad": row("arrival_departure_row"), "pole": row("pole_row"),
                "header": {k: v for k, v in (("number", col("number_column")), ("notes", col("notes_column")),
                                             ("dest", col("destination_column")), ("route", col("route_column")))
                           if v is not None}}
    return {"stop_col": col("stop_column"), "first": row("first_stop_row"), "last": row("last_stop_row"),
            "first_trip": col("first_trip_column"), "last_trip": col("last_trip_column"),
            "ad": col("arrival_departure_column"), "pole": col("pole_column"),
            "header": {k: v for k, v in (("number", row("number_row")), ("notes", row("notes_row")),
                                         ("dest", row("destination_row")), ("route", row("route_row"))) if v is not None}}


def _block(number: int, layout: dict, rows_layout: bool, how: str) -> Block:
    try:
        p = _internal(layout, rows_layout)
    except ValueError as exc:
        raise LayoutError("layout", str(exc)) from None
    need = ("stop_row", "first_stop_column", "first_trip_row") if rows_layout else ("stop_column", "first_stop_row", "first_trip_column")
    for k, v in zip(need, (p["stop_col"], p["first"], p["first_trip"])):
        if v is None:
            raise LayoutError(k, f"{how} gives no {k}")
    route = layout.get("route")
    return Block(number, p["stop_col"], p["first"], p["last"], p["first_trip"], p["last_trip"], p["ad"], p["pole"], p["header"],
                 None if route is None else str(route), how)


def _shifted(b: Block, dr: int, dc: int, number: int, how: str) -> Block:
    def s(v, d):
        return None if v is None else v + d

    return Block(number, b.stop_col + dc, b.first + dr, s(b.last, dr), b.first_trip + dc, s(b.last_trip, dc), s(b.ad, dc),
                 s(b.pole, dc), {k: v + dr for k, v in b.header.items()}, b.route, how)


def find_blocks(sheet: Sheet, layout: dict) -> tuple[Sheet, bool, list[Block]]:
    """Return (grid as read, transposed?, the blocks of the sheet) as the layout declares or marks them.

    ``layout.blocks`` lists blocks, each a layout merged over the enclosing one; ``layout.repeat``
    finds more blocks like the first at each cell holding the marker (``first_stop``: the first
    stop's name again in the stop column's place, with the same header labels). A block's stop
    rows end above the next block below it and its trips left of the next block beside it,
    unless the layout gives last_stop_row / last_trip_column. If the layout cannot fit, raise LayoutError.
    """
    rows_layout = layout.get("trips", "columns") == "rows"
    grid = sheet.transposed() if rows_layout else sheet
    base = {k: v for k, v in layout.items() if k not in BLOCK_KEYS}
    blocks: list[Block]
    if layout.get("blocks"):
        blocks = [_block(i + 1, {**base, **(b or {})}, rows_layout, f"layout.blocks[{i}]") for i, b in enumerate(layout["blocks"])]
    else:
        first = _block(1, base, rows_layout, "layout")
        blocks = [first]
        rep = layout.get("repeat")
        if rep:
            blocks += _repeated(grid, first, str(rep.get("marker", "first_stop")), sheet.name, rows_layout)
    if len(blocks) > 1:
        _bound(blocks)
    return grid, rows_layout, blocks


def _ref(sheet_name: str, rows_layout: bool, r: int, c: int) -> str:
    return cell_ref(sheet_name, c, r) if rows_layout else cell_ref(sheet_name, r, c)


def _repeated(grid: Sheet, first: Block, marker: str, sheet_name: str, rows_layout: bool) -> list[Block]:
    """Return the blocks found at the other cells holding the marker, each the first block shifted there."""
    if marker == "first_stop":
        anchor = next(((r, first.stop_col) for r in range(first.first, grid.nrows) if _text(grid.value(r, first.stop_col))), None)
        if anchor is None:
            return []
        text = _text(grid.value(*anchor))
        labels = {r: _text(grid.value(r, first.stop_col)) for r in first.header.values()}
        labels = {r: t for r, t in labels.items() if t}
    else:
        text, labels = marker.strip(), {}
        anchor = next(((r, c) for r in range(grid.nrows) for c in range(grid.ncols) if _text(grid.value(r, c)) == text), None)
        if anchor is None:
            raise LayoutError("layout.repeat.marker", f"no cell of the sheet holds the marker {text!r}")
    out: list[Block] = []
    for r in range(grid.nrows):
        for c in range(grid.ncols):
            if (r, c) == anchor or _text(grid.value(r, c)) != text:
                continue
            dr, dc = r - anchor[0], c - anchor[1]
            if first.top + dr < 0 or first.left + dc < 0:
                continue
            if marker == "first_stop":
                if labels:
                    if any(_text(grid.value(hr + dr, first.stop_col + dc)) != t for hr, t in labels.items()):
                        continue  # e.g. a loop back to the first stop, not a new block
                elif _text(grid.value(r - 1, c)):
                    continue
            out.append(_shifted(first, dr, dc, len(out) + 2, f"marker {text!r} at {_ref(sheet_name, rows_layout, r, c)}"))
            if len(out) >= MAX_BLOCKS:
                raise LayoutError("layout.repeat.marker", f"the marker {text!r} is found more than {MAX_BLOCKS} times; "
                                  "choose a text that only the start of each block holds")
    return out


def _bound(blocks: list[Block]) -> None:
    """Give each block without declared ends the end before its neighbour beside it and below it."""
    for b in blocks:
        if b.last_trip is None:
            beside = [o.left for o in blocks if o is not b and o.left > b.left and o.top <= b.first]
            if beside:
                b.last_trip = min(beside) - 1
    for b in blocks:
        if b.last is None:
            right = b.last_trip if b.last_trip is not None else 1 << 30
            below = [o.top for o in blocks if o is not b and o.top > b.first and b.left <= o.left <= right]
            if below:
                b.last = min(below) - 1


def read_block(sheet: Sheet, grid: Sheet, rows_layout: bool, block: Block, markers: dict | None = None) -> SheetTimetable:
    """Return one block's stops and trip columns with every time cell parsed."""
    markers = markers or {}
    stop_col, first, last, first_trip = block.stop_col, block.first, block.last, block.first_trip
    ad, pole = block.ad, block.pole
    number, notes, dest, route_line = (block.header.get(k) for k in ("number", "notes", "dest", "route"))
    out = SheetTimetable(grid, rows_layout, block=block)
    end = (last + 1) if last is not None else grid.nrows
    # stops: consecutive 着 / 発 rows of one stop become one stop with arrival and departure rows
    for r in range(first, min(end, grid.nrows)):
        name = _text(grid.value(r, stop_col))
        if not name:
            continue
        label = _text(grid.value(r, ad)) if ad is not None else ""
        if not label and name[-1:] in ("発", "着") and len(name) > 1 and name[-2:-1] in (" ", "\u3000", "(", "（"):
            label, name = name[-1], name[:-1].strip(" \u3000(（")
        prev = out.stops[-1] if out.stops else None
        if prev is not None and prev.name == name and label == "発" and prev.label == "着" and prev.dep_row == prev.arr_row:
            prev.dep_row = r
            continue
        out.stops.append(StopRow(name, out.ref(r, stop_col), _text(grid.value(r, pole)) if pole is not None else "",
                                 r, r, len(out.stops), label))
    stop_rows = sorted({s.arr_row for s in out.stops} | {s.dep_row for s in out.stops})
    if not out.stops:  # times with no stop beside them are a layout that does not fit, not an empty block
        right = min(grid.ncols, block.last_trip + 1) if block.last_trip is not None else grid.ncols
        out.loose_times = sum(is_time_like(grid.value(r, c), time_format=((c, r) if rows_layout else (r, c)) in sheet.time_format)
                              for r in range(first, min(end, grid.nrows)) for c in range(first_trip, right))
    pass_m = tuple(markers.get("pass") or DEFAULT_PASS)
    not_m = tuple(markers.get("not_run") or DEFAULT_NOT_RUN)
    for c in range(first_trip, min(grid.ncols, block.last_trip + 1) if block.last_trip is not None else grid.ncols):
        cells = {}
        raw = {}
        for r in stop_rows:
            v = grid.value(r, c)
            cells[r] = parse_time_cell(v, pass_markers=pass_m, not_run_markers=not_m,
                                       is_time_format=(c, r) in sheet.time_format if rows_layout else (r, c) in sheet.time_format,
                                       datemode=sheet.datemode)
            raw[r] = v
        if all(x.kind == BLANK for x in cells.values()):
            continue
        if not any(x.is_time or x.kind == BAD for x in cells.values()):
            continue  # a column of markers only (e.g. a note column) is not a trip
        out.trips.append(TripColumn(c, _text(grid.value(number, c)) if number is not None else "",
                                    _text(grid.value(notes, c)) if notes is not None else "", cells=cells, raw=raw,
                                    headsign=_text(grid.value(dest, c)) if dest is not None else "",
                                    route=_text(grid.value(route_line, c)) if route_line is not None else ""))
    return out


_CLOCK = re.compile(r"^[発着]?\s*\d{1,2}[:：]\d{2}(?:[:：]\d{2})?\s*[発着]?$")


def is_time_like(value, *, time_format: bool = False) -> bool:
    """Return True for a cell that can only be a time of day: 6:40 as text, an Excel time, or a time-formatted fraction.

    Plain numbers (530, 12) are not counted: trip numbers and fares look the same.
    """
    if isinstance(value, (dt.time, dt.timedelta)):
        return True
    if isinstance(value, dt.datetime):
        return value.year <= 1900  # a time of day stored on Excel's day 0
    if isinstance(value, float) and not isinstance(value, bool):
        return time_format and 0 <= value < 2
    if isinstance(value, str):
        return bool(_CLOCK.match(unicodedata.normalize("NFKC", value).strip()))
    return False


def uncovered(sheet: Sheet, grid: Sheet, rows_layout: bool, blocks: list[Block]) -> list[tuple[str, int]]:
    """Return (range in Excel notation, number of cells) for each group of time-like cells outside every block."""
    areas = [(b.top, b.last if b.last is not None else grid.nrows - 1, b.left,
              b.last_trip if b.last_trip is not None else grid.ncols - 1) for b in blocks]
    outside: list[tuple[int, int]] = []  # sheet (row, col)
    for r, row in enumerate(sheet.cells):
        for c, v in enumerate(row):
            if v is None or not is_time_like(v, time_format=(r, c) in sheet.time_format):
                continue
            ir, ic = (c, r) if rows_layout else (r, c)
            if not any(r0 <= ir <= r1 and c0 <= ic <= c1 for r0, r1, c0, c1 in areas):
                outside.append((r, c))
    groups: list[list[tuple[int, int]]] = []
    for r, c in outside:  # sheet rows in order: a gap of more than two rows starts a new group
        if groups and r - groups[-1][-1][0] <= 2:
            groups[-1].append((r, c))
        else:
            groups.append([(r, c)])
    out = []
    for g in groups:
        r0, r1 = min(r for r, _ in g), max(r for r, _ in g)
        c0, c1 = min(c for _, c in g), max(c for _, c in g)
        out.append((f"{sheet.name}!{column_letter(c0)}{r0 + 1}:{column_letter(c1)}{r1 + 1}", len(g)))
    return out
