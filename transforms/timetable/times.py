"""Read one timetable cell: a time, a "passes without stopping" marker, "does not run here", or nothing.

Accepted times: ``5:30``, ``05:30``, ``5:30:00``, ``24:10`` and later, ``530`` / ``0530``
(text or number, hours and minutes run together), ``5.30``, full-width digits and colons,
Excel time cells and day fractions (``0.2291…`` = 5:30, ``1.0069…`` = 24:10), and Python
time/datetime/timedelta values from openpyxl. A 発/着 suffix is allowed and reported.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from transforms.timetable.workbook import excel_serial

DEFAULT_PASS = ("レ", "↓", "|", "｜", "↓", "⇓", "通過")
DEFAULT_NOT_RUN = ("=", "＝", "‖", "||", "-", "－", "―", "‐", "…", "・")

TIME = "time"
PASS = "pass"
NOT_RUN = "not_run"
BLANK = "blank"
BAD = "bad"


@dataclass(frozen=True)
class Cell:
    kind: str  # time | pass | not_run | blank | bad
    seconds: int | None = None
    mark: str | None = None  # 発 / 着 when the cell carried one
    expected: str | None = None  # for bad cells: what was expected

    @property
    def is_time(self) -> bool:
        return self.kind == TIME


_HM = re.compile(r"^(\d{1,3})[:：.時](\d{1,2})(?:[:：](\d{1,2}))?分?$")
_DIGITS = re.compile(r"^(\d{3,4})$")
EXPECTED = "a time such as 5:30, 05:30, 530, 24:10 or an Excel time, or a marker"


def format_seconds(seconds: int) -> str:
    """Return GTFS time text HH:MM:SS (hours may exceed 24)."""
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def _from_serial(serial: float) -> int:
    return int(round(serial * 86400))


def parse_time_cell(value: Any, *, pass_markers=DEFAULT_PASS, not_run_markers=DEFAULT_NOT_RUN,
                    is_time_format: bool = False, datemode: int = 0) -> Cell:
    """Return what a timetable cell says. If it cannot be read, then the Cell is ``bad`` with what was expected."""
    if value is None:
        return Cell(BLANK)
    serial = excel_serial(value, datemode)
    if serial is not None:
        if serial >= 1 and not (hasattr(value, "days") or serial < 3):  # a full date: keep the time of day
            serial = serial % 1
        return Cell(TIME, _from_serial(serial))
    if isinstance(value, bool):
        return Cell(BAD, expected=EXPECTED)
    if isinstance(value, (int, float)):
        v = float(value)
        if math.isnan(v) or v < 0:
            return Cell(BAD, expected=EXPECTED)
        if is_time_format or (0 < v < 3 and not v.is_integer()) or v == 0:
            # Excel day fraction (0.5 = 12:00, 1.0069 = 24:10); a time-formatted 0 is midnight
            return Cell(TIME, _from_serial(v))
        if v.is_integer():
            return _hhmm(int(v))
        return Cell(BAD, expected=EXPECTED)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        return Cell(BLANK)
    mark = None
    if text[-1] in "発着":
        mark, text = text[-1], text[:-1].strip()
    elif text[0] in "発着" and len(text) > 1:
        mark, text = text[0], text[1:].strip()
    normal_pass = {unicodedata.normalize("NFKC", m) for m in pass_markers}
    normal_not = {unicodedata.normalize("NFKC", m) for m in not_run_markers}
    if text in normal_pass:
        return Cell(PASS)
    if text in normal_not:
        return Cell(NOT_RUN)
    m = _HM.match(text)
    if m:
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if mi < 60 and s < 60 and h < 48:
            return Cell(TIME, h * 3600 + mi * 60 + s, mark)
        return Cell(BAD, expected=EXPECTED)
    m = _DIGITS.match(text)
    if m:
        cell = _hhmm(int(m.group(1)))
        return Cell(cell.kind, cell.seconds, mark, cell.expected)
    return Cell(BAD, expected=EXPECTED)


def _hhmm(n: int) -> Cell:
    h, mi = divmod(n, 100)
    if mi < 60 and h < 48:
        return Cell(TIME, h * 3600 + mi * 60)
    return Cell(BAD, expected=EXPECTED)
