"""Read spreadsheet sheets (.xls, .xlsx, .ods, .csv) into plain cell grids, merged cells filled.

Rows and columns are 0-based inside the code; people see Excel notation (``平日!D14``) made
by :func:`cell_ref`. A merged range is filled with its top-left value, so a note or a
``レ`` spanning several cells applies to each of them.

Workbooks are hostile input: .xlsx sheets are streamed by transforms.xlsx and each grid spans the
cells holding a value (not the sheet's declared dimension); .xls sheets are loaded one at a time.
Both are bounded by transforms.xlsx.TimetableLimits (NORIBA_TIMETABLE_MAX_ROWS and _CELLS, NORIBA_SHEET_MAX_* for the rest).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from transforms.errors import InputError
from transforms.encoding import decode
from transforms.notices import WARNING, Notice
from transforms.xlsx import column_letters


#: The Excel column letters of a 0-based column (0 → A, 26 → AA).
column_letter = column_letters


def column_index(letters: str | int) -> int:
    """Return the 0-based column of Excel letters ('A' → 0) or of a 1-based number. If invalid, raise ValueError."""
    if isinstance(letters, int):
        if letters < 1:
            raise ValueError(f"column number {letters} must be 1 or more")
        return letters - 1
    s = str(letters).strip().upper()
    if s.isdigit():
        return column_index(int(s))
    if not re.fullmatch(r"[A-Z]{1,3}", s):
        raise ValueError(f"{letters!r} is not a column such as 'B' or 2")
    n = 0
    for ch in s:
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def parse_cell(ref: str) -> tuple[int, int]:
    """Return the 0-based (row, col) of an Excel reference such as 'E1'. If invalid, raise ValueError."""
    m = re.fullmatch(r"\s*([A-Za-z]{1,3})(\d+)\s*", str(ref))
    if not m or int(m.group(2)) < 1:
        raise ValueError(f"{ref!r} is not a cell such as 'E1'")
    return int(m.group(2)) - 1, column_index(m.group(1))


def cell_ref(sheet: str, row: int, col: int) -> str:
    """Return the Excel notation of a 0-based cell, e.g. ``平日!D14``."""
    return f"{sheet}!{column_letter(col)}{row + 1}"


@dataclass
class Sheet:
    """One sheet as a grid of values: str, float, datetime.time/datetime/timedelta, or None for empty."""

    name: str
    file: str
    cells: list[list[Any]]
    datemode: int = 0  # xls: 0 = 1900 system, 1 = 1904 system
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # (row_lo, row_hi, col_lo, col_hi) exclusive
    #: cells with a date/time number format (xls), so a number there is an Excel time
    time_format: set[tuple[int, int]] = field(default_factory=set)

    @property
    def nrows(self) -> int:
        return len(self.cells)

    @property
    def ncols(self) -> int:
        return max((len(r) for r in self.cells), default=0)

    def value(self, row: int, col: int) -> Any:
        if 0 <= row < len(self.cells) and 0 <= col < len(self.cells[row]):
            return self.cells[row][col]
        return None

    def ref(self, row: int, col: int) -> str:
        return cell_ref(self.name, row, col)

    def transposed(self) -> "Sheet":
        """Return the sheet with rows and columns swapped (for trips that run down rows)."""
        n = self.ncols
        grid = [[self.value(r, c) for r in range(self.nrows)] for c in range(n)]
        return Sheet(self.name, self.file, grid, self.datemode,
                     [(c0, c1, r0, r1) for r0, r1, c0, c1 in self.merged], {(c, r) for r, c in self.time_format})


def _fill_merged(cells: list[list[Any]], merged: list[tuple[int, int, int, int]], *, where: str = "", limit: int = 0) -> None:
    """Give every cell of each merged range its top-left value. If ``limit`` and the ranges cover more cells than it, raise InputError."""
    work = 0
    for r0, r1, c0, c1 in merged:
        if r0 >= len(cells):
            continue
        top = cells[r0][c0] if c0 < len(cells[r0]) else None
        if top is None:
            continue
        work += (min(r1, len(cells)) - r0) * (c1 - c0)
        if limit and work > limit:
            from transforms.xlsx import TimetableLimits as SheetLimits

            raise SheetLimits.from_env().refuse(where, f"its merged ranges cover more than {work:,} cells", "cells")
        for r in range(r0, min(r1, len(cells))):
            row = cells[r]
            if len(row) < c1:
                row.extend([None] * (c1 - len(row)))
            for c in range(c0, c1):
                if (r, c) != (r0, c0):
                    row[c] = top


def _read_xls(data: bytes, name: str) -> list[Sheet]:
    """Return the sheets of an .xls. If a sheet's used range is over the row, column or cell limits, raise InputError.

    xlrd holds one sheet's cells (at most 65,536 x 256 in the format) while the grid is built;
    each sheet is released before the next is loaded.
    """
    import xlrd

    from transforms.xlsx import TimetableLimits as SheetLimits

    lim = SheetLimits.from_env()
    budget = lim.cells
    try:
        book = xlrd.open_workbook(file_contents=data, formatting_info=True, on_demand=True, ragged_rows=True)
    except Exception as exc:  # xlrd raises many types for broken files
        raise InputError(f"{name}: not a readable .xls workbook ({exc})",
                         ja=f"{name}: 読み込めない .xls ブックです（{exc}）。Excel か LibreOffice で開いて保存し直してください") from None
    sheets = []
    for i in range(book.nsheets):
        try:
            sh = book.sheet_by_index(i)
        except Exception as exc:
            raise InputError(f"{name}: sheet {i + 1} cannot be read ({exc})",
                             ja=f"{name}: {i + 1} 枚目のシートが読み込めません（{exc}）。Excel か LibreOffice で開いて保存し直してください") from None
        where = f"{name} sheet {sh.name}"
        if sh.nrows > lim.rows:
            raise lim.refuse(where, f"row {sh.nrows:,} is used", "rows")
        if sh.ncols > lim.columns:
            raise lim.refuse(where, f"column {sh.ncols:,} is used", "columns")
        if sh.nrows * sh.ncols > budget:
            raise lim.refuse(where, f"its values span {sh.nrows:,} rows x {sh.ncols:,} columns ({sh.nrows * sh.ncols:,} cells)", "cells",
                             fix="delete stray cells far from the table")
        budget -= sh.nrows * sh.ncols
        cells: list[list[Any]] = []
        timefmt: set[tuple[int, int]] = set()
        for r in range(sh.nrows):
            row: list[Any] = []
            n = sh.row_len(r)
            for c in range(sh.ncols):
                if c >= n:
                    row.append(None)
                    continue
                ctype, v = sh.cell_type(r, c), sh.cell_value(r, c)
                if ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    row.append(None)
                elif ctype == xlrd.XL_CELL_DATE:
                    timefmt.add((r, c))
                    row.append(float(v))
                elif ctype == xlrd.XL_CELL_NUMBER:
                    row.append(float(v))
                elif ctype == xlrd.XL_CELL_TEXT:
                    row.append(v if v.strip() else None)
                elif ctype == xlrd.XL_CELL_BOOLEAN:
                    row.append(bool(v))
                else:  # error cells
                    row.append(None)
            cells.append(row)
        merged = [tuple(m) for m in sh.merged_cells]
        _fill_merged(cells, merged, where=where, limit=lim.cells)
        sheets.append(Sheet(sh.name, name, cells, book.datemode, merged, timefmt))
        book.unload_sheet(i)
    return sheets


def _read_xlsx(data: bytes, name: str) -> tuple[list[Sheet], list[Notice]]:
    """Return the sheets of an .xlsx, each a grid bounded by the cells holding a value, and a notice per formula without a saved value.

    The sheet XML is streamed (transforms.xlsx); the grid spans the cells that hold a value and the
    merged ranges whose top-left holds one, never the sheet's declared ``dimension``. If the grids
    of the workbook would hold more than the cell limit, raise InputError naming the sheet and the
    farthest cell.
    """
    from transforms.xlsx import TimetableLimits, Workbook

    with Workbook(data, name, limits=TimetableLimits.from_env()) as wb:
        if not wb.sheets:
            raise InputError(f"{name}: the workbook has no sheet", ja=f"{name}: ブックにシートがありません")
        return _grids(name, wb.limits, ((st, wb.rows(st)) for st in (wb.stream(sheet_name) for sheet_name, _ in wb.sheets)))


def _read_ods(data: bytes, name: str) -> tuple[list[Sheet], list[Notice]]:
    """Return the sheets of an .ods (OpenDocument, LibreOffice Calc), as :func:`_read_xlsx` does for an .xlsx (transforms/ods.py)."""
    from transforms.ods import OdsBook
    from transforms.xlsx import TimetableLimits

    with OdsBook(data, name, limits=TimetableLimits.from_env()) as wb:
        sheets, notices = _grids(name, wb.limits, wb.sheets_stream())
        if not sheets:
            raise InputError(f"{name}: the spreadsheet has no sheet", ja=f"{name}: 表計算ファイルにシートがありません")
        return sheets, notices


def _grids(name: str, lim, streams) -> tuple[list[Sheet], list[Notice]]:
    """Return the grids of streamed sheets ((stream, rows) pairs, rows as (row, [(col, value)])) within the cell budget, merged
    ranges filled, and a notice per formula without a saved value."""
    sheets: list[Sheet] = []
    notices: list[Notice] = []
    budget = lim.cells
    for st, row_iter in streams:
        sheet_name = st.name
        rows: dict[int, list[Any]] = {}  # each row as long as its last value, filled as the XML streams by
        n_rows = n_cols = 0
        for r, cells in row_iter:
            for c, v in cells:
                if isinstance(v, str):
                    if not v.strip():
                        continue
                elif isinstance(v, int) and not isinstance(v, bool):
                    v = float(v)
                row = rows.setdefault(r, [])
                if c >= len(row):
                    n_rows, n_cols = max(n_rows, r + 1), max(n_cols, c + 1)
                    if n_rows * n_cols > budget:
                        raise _too_many(lim, name, sheet_name, n_rows, n_cols, (r, c))
                    row.extend([None] * (c + 1 - len(row)))
                row[c] = v
        merged = []
        for r0, r1, c0, c1 in st.merged:
            if r0 in rows and c0 < len(rows[r0]) and rows[r0][c0] is not None:  # its value goes to every cell of the range
                merged.append((r0, r1, c0, c1))
                n_rows, n_cols = max(n_rows, r1), max(n_cols, c1)
                if n_rows * n_cols > budget:
                    raise _too_many(lim, name, sheet_name, n_rows, n_cols, (r1 - 1, c1 - 1))
        budget -= n_rows * n_cols
        grid: list[list[Any]] = []
        for r in range(n_rows):
            row = rows.pop(r, [])
            row.extend([None] * (n_cols - len(row)))
            grid.append(row)
        _fill_merged(grid, merged, where=f"{name} sheet {sheet_name}", limit=lim.cells)
        for r, c, formula in st.uncached[:_MAX_FORMULA_NOTICES]:
            notices.append(Notice(
                "formula_without_value", WARNING,
                f"{cell_ref(sheet_name, r, c)} holds the formula ={formula[:80]} but no saved value, so it was read as empty; "
                f"open the workbook in Excel (or LibreOffice) and save it so the values are stored, or type the value in the cell",
                file=name, value=cell_ref(sheet_name, r, c)))
        if len(st.uncached) > _MAX_FORMULA_NOTICES:
            notices.append(Notice("formula_without_value", WARNING,
                                  f"sheet {sheet_name}: {len(st.uncached) - _MAX_FORMULA_NOTICES:,} more formulas without a saved value",
                                  file=name))
        sheets.append(Sheet(sheet_name, name, grid, 0, merged, set()))  # datetimes are already converted in the workbook's date system
    return sheets, notices


#: Formula cells without a saved value are named one notice each, up to this many per sheet; the rest are counted.
_MAX_FORMULA_NOTICES = 200


def _too_many(lim, name: str, sheet: str, n_rows: int, n_cols: int, far: tuple[int, int]) -> InputError:
    return lim.refuse(f"{name} sheet {sheet}",
                      f"its values span {n_rows:,} rows x {n_cols:,} columns (A1:{column_letter(n_cols - 1)}{n_rows}, "
                      f"{n_rows * n_cols:,} cells, out to {cell_ref(sheet, *far)})", "cells",
                      fix="delete stray cells far from the table")


def _read_csv(data: bytes, name: str, encoding: str | None) -> tuple[list[Sheet], list]:
    dec = decode(data, file=name, override=encoding)
    text = dec.data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    rows = [[(v if v.strip() else None) for v in row] for row in csv.reader(io.StringIO(text, newline=""))]
    return [Sheet(PurePosixPath(name).stem, name, rows)], dec.notices


def read_workbook(data: bytes, name: str, *, encoding: str | None = None) -> tuple[list[Sheet], list]:
    """Return (sheets, decoding notices) of a .xls, .xlsx/.xlsm, .ods or .csv file. If it cannot be read, raise InputError."""
    from transforms.ods import looks_like_ods

    suffix = PurePosixPath(name).suffix.lower()
    if looks_like_ods(data) or (suffix == ".ods" and data[:4] == b"PK\x03\x04"):
        return _read_ods(data, name)
    if data[:4] == b"PK\x03\x04" or suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(data, name)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or suffix == ".xls":
        return _read_xls(data, name), []
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(data, name, encoding)
    raise InputError(f"{name}: not a spreadsheet Noriba can read (.xls, .xlsx, .ods or .csv)",
                     ja=f"{name}: Noriba が読める表計算ファイル（.xls、.xlsx、.ods、.csv）ではありません。"
                        "いずれかの形式で保存し直してください")


def excel_serial(value: Any, datemode: int = 0) -> float | None:
    """Return an Excel serial number (days, fraction = time of day) for a date/time/timedelta value, else None."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds() / 86400
    if isinstance(value, dt.datetime):
        epoch = dt.datetime(1904, 1, 1) if datemode else dt.datetime(1899, 12, 30)
        return (value - epoch).total_seconds() / 86400
    if isinstance(value, dt.time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
    return None
