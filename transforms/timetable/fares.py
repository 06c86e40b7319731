"""Fares: 対キロ triangle tables (one sheet per route, origin × destination) and flat fares.

A triangle sheet lists the route's stops down one column (optionally their stop ids in
another); the fare from the stop of row *j* to the stop of row *i* (j < i) stands in row *i*,
in the *j*-th fare column. The same sheets double as the route's stop pattern
(:func:`read_route_tables`), which is how a fare table ties timetable rows to stop ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transforms.timetable.workbook import Sheet


@dataclass
class RouteTable:
    """One route's stops, in order, from a triangle (or plain stop order) sheet."""

    sheet: str
    file: str
    names: list[str] = field(default_factory=list)
    stop_ids: list[str] = field(default_factory=list)  # '' when the sheet has no id column
    rows: list[int] = field(default_factory=list)  # 0-based sheet rows
    fares: dict[tuple[int, int], float] = field(default_factory=dict)  # (origin index, destination index) -> price
    bad_cells: list[tuple[str, object]] = field(default_factory=list)  # (cell ref, value) of unreadable fares


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def read_route_table(sheet: Sheet, *, name_col: int, id_col: int | None, first_row: int = 0,
                     first_fare_col: int | None = None) -> RouteTable:
    """Return the route's stops (and triangle fares when ``first_fare_col`` is given) from one sheet."""
    t = RouteTable(sheet.name, sheet.file)
    for r in range(first_row, sheet.nrows):
        name = _text(sheet.value(r, name_col))
        if not name:
            continue
        t.names.append(name)
        t.stop_ids.append(_text(sheet.value(r, id_col)) if id_col is not None else "")
        t.rows.append(r)
    if first_fare_col is not None:
        for i, r in enumerate(t.rows):
            for j in range(i):
                v = sheet.value(r, first_fare_col + j)
                if v is None:
                    continue
                try:
                    price = float(str(v).replace(",", "").replace("円", "").strip()) if not isinstance(v, float) else v
                except ValueError:
                    t.bad_cells.append((sheet.ref(r, first_fare_col + j), v))
                    continue
                t.fares[(j, i)] = price
    return t


def fare_id_for(price: float, template: str) -> str:
    """Return the fare id of a price from a template such as 'k_{price}'."""
    p = int(price) if float(price).is_integer() else price
    return template.format(price=p)
