"""Write the demo community bus delivered as spreadsheets (authored by the Noriba project, fictional, CC0-1.0).

みなと市コミュニティバス「うみかぜ号」 has no GTFS: like most small operators it keeps a timetable
spreadsheet, a stop list and a flat fare. This script writes them the way a municipal office
would hand them over, into ``inputs/minato-community-timetable/``:

- ``timetable_weekday.csv``: the weekday timetable saved from Excel as CSV in **Shift_JIS
  (CP932)** with CRLF: a title row, a trip number row, a notes row (``金`` = Fridays only),
  stops down column A with a 発/着 column, trips across the columns, times written ``6:40``,
  ``0805`` and ``24:05``, ``レ`` for "passes without stopping", ``=`` for "does not run here",
  a stop on two rows (着 then 発) and stop names written differently from the stop list
  (half-width ``JA``, ``市役所`` for 市役所前).
- ``timetable_holiday.xlsx``: the Saturday/Sunday/holiday timetable in the same layout with
  real Excel time cells, one time typed as a day fraction, a note merged across two trips and a
  ``レ`` merged down two stops.
- ``stops.csv``: the stop list in CP932 with coordinates in the JGD2011 plane rectangular
  system, zone XII (EPSG:6680; X = northing, Y = easting, metres), kana and English names.

Run ``python demo/make_timetable_inputs.py`` to regenerate the committed bytes; the output is
deterministic (fixed timestamps inside the .xlsx).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "inputs" / "minato-community-timetable"

# id: (name in the stop list, kana, english, lat, lon) -- fictional, around みなと駅 (43.30, 141.40)
STOPS = {
    "C01": ("みなと駅", "みなとえき", "Minato Station", 43.30004, 141.40030),
    "C02": ("市役所前", "しやくしょまえ", "City Hall", 43.30310, 141.40390),
    "C03": ("港前", "みなとまえ", "Harbour", 43.29640, 141.39560),
    "C04": ("ＪＡみなと漁港前", "じぇいえーみなとぎょこうまえ", "JA Minato Fishing Port", 43.29260, 141.39020),
    "C05": ("みなと温泉", "みなとおんせん", "Minato Onsen", 43.28830, 141.38610),
    "C06": ("潮風台団地", "しおかぜだいだんち", "Shiokazedai Housing Estate", 43.28410, 141.38050),
    "C07": ("北浜海岸", "きたはまかいがん", "Kitahama Beach", 43.28020, 141.37400),
}

# the timetable's rows: (name as the timetable writes it, 発/着)
ROWS = [("みなと駅", "発"), ("市役所", "発"), ("港前", "発"), ("JAみなと漁港", "発"), ("みなと温泉", "着"),
        ("みなと温泉", "発"), ("潮風台団地", "発"), ("北浜海岸", "着")]

# weekday trips: (number, note, cells per row) -- text as typed by the office
WEEKDAY = [
    ("1", "", ["6:40", "6:44", "6:48", "6:52", "6:57", "7:00", "7:06", "7:12"]),
    ("2", "", ["0805", "0809", "レ", "0815", "0820", "0822", "0828", "0834"]),
    ("3", "", ["10:10", "10:14", "10:18", "10:22", "10:27", "10:30", "=", "="]),
    ("4", "金", ["12:30", "12:34", "12:38", "12:42", "12:47", "12:50", "12:56", "13:02"]),
    ("5", "", ["16:15", "16:19", "16:23", "16:27", "16:32", "16:35", "16:41", "16:47"]),
    ("6", "", ["23:40", "23:44", "23:48", "23:52", "23:57", "24:00", "24:03", "24:05"]),
]
# holiday trips: (number, note, cells) -- times as Excel time values; None = merged レ; floats = day fractions
HOLIDAY = [
    ("1", "温泉客向け", [(9, 0), (9, 4), (9, 8), (9, 12), (9, 17), (9, 20), (9, 26), (9, 32)]),
    ("2", "温泉客向け", [(11, 30), (11, 34), "レ", "レ", (11, 45), (11, 48), (11, 54), (12, 0)]),
    ("3", "", [(15, 0), (15, 4), (15, 8), (15, 12), (15, 17), 0.63888888888889, (15, 26), (15, 32)]),
    ("4", "", [(18, 10), (18, 14), (18, 18), (18, 22), (18, 27), (18, 30), "=", "="]),
]


def jgd2011_zone12(lat: float, lon: float) -> tuple[float, float]:
    """Return (X northing, Y easting) in metres in JGD2011 plane rectangular zone XII (EPSG:6680)."""
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", "EPSG:6680", always_xy=True)
    easting, northing = tr.transform(lon, lat)
    return round(northing, 3), round(easting, 3)


def csv_bytes(rows: list[list[str]], encoding: str = "cp932") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode(encoding, errors="strict")


def weekday_csv() -> bytes:
    rows = [["みなと市コミュニティバス「うみかぜ号」 時刻表（平日）", "", *[""] * len(WEEKDAY)],
            ["便", "", *[n for n, _, _ in WEEKDAY]],
            ["備考", "", *[note for _, note, _ in WEEKDAY]],
            ["停留所", "発着", *[""] * len(WEEKDAY)]]
    for i, (name, mark) in enumerate(ROWS):
        rows.append([name, mark, *[cells[i] for _, _, cells in WEEKDAY]])
    rows.append(["※金 … 金曜日のみ運行（祝日は運休）。レ … 通過、＝ … 運行なし", "", *[""] * len(WEEKDAY)])
    return csv_bytes(rows)


def holiday_xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "土日祝"
    ws["A1"] = "みなと市コミュニティバス「うみかぜ号」 時刻表（土曜・日曜・祝日）"
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=2 + len(HOLIDAY))
    ws.cell(2, 1, "便")
    ws.cell(3, 1, "備考")
    ws.cell(4, 1, "停留所")
    ws.cell(4, 2, "発着")
    for j, (num, note, cells) in enumerate(HOLIDAY):
        col = 3 + j
        ws.cell(2, col, int(num))
        if note and j == 0:
            ws.cell(3, col, note)
        for i, v in enumerate(cells):
            c = ws.cell(5 + i, col)
            if isinstance(v, tuple):
                c.value = dt.time(*v)
                c.number_format = "h:mm"
            elif isinstance(v, float):
                c.value = v  # typed as a day fraction: 0.638888… = 15:20
                c.number_format = "General"
            elif v == "レ" and i > 0 and cells[i - 1] == "レ":
                continue
            else:
                c.value = v
    ws.merge_cells(start_row=3, start_column=3, end_row=3, end_column=4)  # note over trips 1 and 2
    ws.merge_cells(start_row=7, start_column=4, end_row=8, end_column=4)  # レ down two stops of trip 2
    for i, (name, mark) in enumerate(ROWS):
        ws.cell(5 + i, 1, name)
        ws.cell(5 + i, 2, mark)
    wb.properties.creator = "Noriba demo"
    fixed = dt.datetime(2026, 4, 1, 0, 0, 0)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip(buf.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """Return the .xlsx rewritten with fixed member timestamps and core properties, so the bytes are stable."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>2026-04-01T00:00:00Z", body)
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, body)
    return out.getvalue()


def stops_csv() -> bytes:
    rows = [["停留所ID", "停留所名", "よみがな", "英語名", "X座標", "Y座標"]]
    for sid, (name, kana, en, lat, lon) in STOPS.items():
        x, y = jgd2011_zone12(lat, lon)
        rows.append([sid, name, kana, en, f"{x:.3f}", f"{y:.3f}"])
    return csv_bytes(rows)


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    (HERE / "timetable_weekday.csv").write_bytes(weekday_csv())
    (HERE / "timetable_holiday.xlsx").write_bytes(holiday_xlsx())
    (HERE / "stops.csv").write_bytes(stops_csv())
    print(f"wrote {HERE}")


if __name__ == "__main__":
    main()
