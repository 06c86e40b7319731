"""Find the stops and trips in a timetable sheet, as the spec's ``layout`` describes them.

Trips run across columns (one column per trip, stops down a column) or down rows (one row
per trip); the rows layout is read by transposing the sheet, so cell references are always
given in the original sheet's notation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transforms.timetable.times import BAD, BLANK, Cell, parse_time_cell, DEFAULT_NOT_RUN, DEFAULT_PASS
from transforms.timetable.workbook import Sheet, cell_ref, column_index


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
    cells: dict[int, Cell] = field(default_factory=dict)  # sheet row -> parsed cell
    raw: dict[int, object] = field(default_factory=dict)


@dataclass
class SheetTimetable:
    sheet: Sheet  # as read (transposed for the rows layout)
    transposed: bool
    stops: list[StopRow] = field(default_factory=list)
    trips: list[TripColumn] = field(default_factory=list)

    def ref(self, row: int, col: int) -> str:
        """Return the Excel reference of an (internal) cell in the original sheet."""
        return cell_ref(self.sheet.name, col, row) if self.transposed else cell_ref(self.sheet.name, row, col)


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _idx(v) -> int | None:
    """Return the 0-based index of a column letter/number or a 1-based row number."""
    if v is None:
        return None
    if isinstance(v, int):
        return v - 1
    return column_index(v)


def read_sheet(sheet: Sheet, layout: dict, markers: dict | None = None) -> SheetTimetable:
    """Return the sheet's stops and trip columns with every time cell parsed."""
    markers = markers or {}
    rows_layout = layout.get("trips", "columns") == "rows"
    if rows_layout:
        grid = sheet.transposed()
        stop_col = layout["stop_row"] - 1
        first = column_index(layout["first_stop_column"])
        last = column_index(layout["last_stop_column"]) if layout.get("last_stop_column") else None
        first_trip = layout["first_trip_row"] - 1
        ad = _idx(layout.get("arrival_departure_row"))
        pole = _idx(layout.get("pole_row"))
        number = column_index(layout["number_column"]) if layout.get("number_column") else None
        notes = column_index(layout["notes_column"]) if layout.get("notes_column") else None
        dest = column_index(layout["destination_column"]) if layout.get("destination_column") else None
    else:
        grid = sheet
        stop_col = column_index(layout["stop_column"])
        first = layout["first_stop_row"] - 1
        last = layout["last_stop_row"] - 1 if layout.get("last_stop_row") else None
        first_trip = column_index(layout["first_trip_column"])
        ad = column_index(layout["arrival_departure_column"]) if layout.get("arrival_departure_column") else None
        pole = column_index(layout["pole_column"]) if layout.get("pole_column") else None
        number = layout["number_row"] - 1 if layout.get("number_row") else None
        notes = layout["notes_row"] - 1 if layout.get("notes_row") else None
        dest = layout["destination_row"] - 1 if layout.get("destination_row") else None
    out = SheetTimetable(grid, rows_layout)
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
    pass_m = tuple(markers.get("pass") or DEFAULT_PASS)
    not_m = tuple(markers.get("not_run") or DEFAULT_NOT_RUN)
    for c in range(first_trip, grid.ncols):
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
                                    headsign=_text(grid.value(dest, c)) if dest is not None else ""))
    return out
