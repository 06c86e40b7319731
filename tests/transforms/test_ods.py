"""Reading .ods spreadsheets (transforms/ods.py): a file LibreOffice wrote reads as the .xlsx it came from, and hostile
ones (repeat bombs, nested tables, DOCTYPE, oversized cells, the wrong OpenDocument type) are refused in one line."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest

from transforms.errors import InputError
from transforms.timetable.workbook import read_workbook

ROOT = Path(__file__).resolve().parents[2]
CONVERTED = Path(__file__).parent / "data" / "timetable_holiday.ods"
NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
      'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')


def ods(tables: str, *, mimetype: str = "application/vnd.oasis.opendocument.spreadsheet", prolog: str = "") -> bytes:
    """Return an .ods whose spreadsheet body is ``tables`` (table:table elements)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)  # stored, first, as ODF requires
        z.writestr("content.xml", f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<office:document-content {NS}><office:body>'
                                  f"<office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>",
                   compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def cell(inner: str = "", **attrs) -> str:
    a = " ".join(f'{k.replace("__", ":").replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f"<table:table-cell {a}>{inner}</table:table-cell>"


def text(s: str) -> str:
    return cell(f"<text:p>{s}</text:p>", office__value_type="string")


def test_a_sheet_libreoffice_wrote_reads_as_the_xlsx_it_was_converted_from():
    xlsx, _ = read_workbook((ROOT / "demo/inputs/minato-community-timetable/timetable_holiday.xlsx").read_bytes(), "holiday.xlsx")
    got, notices = read_workbook(CONVERTED.read_bytes(), "holiday.ods")
    assert [s.name for s in got] == [s.name for s in xlsx] == ["土日祝"]
    assert got[0].cells == xlsx[0].cells and sorted(got[0].merged) == sorted(xlsx[0].merged) and not notices
    assert got[0].value(4, 2) == dt.time(9, 0) and got[0].value(0, 5) == got[0].value(0, 0)  # a time; a merged title


def test_values_of_every_type_and_text_as_written():
    data = ods('<table:table table:name="平日"><table:table-row>'
               + cell(office__value_type="float", office__value="3")
               + cell(office__value_type="percentage", office__value="0.25")
               + cell(office__value_type="date", office__date_value="2026-04-01T07:30:00")
               + cell(office__value_type="time", office__time_value="PT25H05M00S")
               + cell(office__value_type="time", office__time_value="PT06H40M00S")
               + cell(office__value_type="boolean", office__boolean_value="true")
               + cell('<text:p>みなと<text:s text:c="2"/>駅</text:p><text:p>前</text:p>'
                      '<office:annotation><text:p>a comment, not the value</text:p></office:annotation>', office__value_type="string")
               + "</table:table-row></table:table>")
    (sheet,), _ = read_workbook(data, "x.ods")
    assert sheet.cells == [[3.0, 0.25, dt.datetime(2026, 4, 1, 7, 30), dt.timedelta(hours=25, minutes=5), dt.time(6, 40), True,
                            "みなと  駅\n前"]]


def test_repeated_empty_rows_and_columns_cost_nothing_and_repeated_values_are_repeated():
    pad = '<table:table-cell table:number-columns-repeated="16380"/>'
    data = ods('<table:table table:name="S">'
               f'<table:table-row>{text("便")}{pad}</table:table-row>'
               f'<table:table-row table:number-rows-repeated="1048570">{pad}</table:table-row>'
               "</table:table>"
               '<table:table table:name="T"><table:table-row table:number-rows-repeated="3">'
               + cell(office__value_type="float", office__value="7", table__number_columns_repeated="2")
               + "</table:table-row></table:table>")
    s, t = read_workbook(data, "x.ods")[0]
    assert s.cells == [["便"]] and t.cells == [[7.0, 7.0]] * 3


def test_a_repeat_bomb_is_refused_naming_the_limit():
    data = ods('<table:table table:name="S"><table:table-row table:number-rows-repeated="1000000">'
               + cell(office__value_type="float", office__value="1", table__number_columns_repeated="16000")
               + "</table:table-row></table:table>")
    with pytest.raises(InputError, match=r"x\.ods sheet S: .*over the limit of .*NORIBA_TIMETABLE_MAX_(ROWS|CELLS)"):
        read_workbook(data, "x.ods")


@pytest.mark.parametrize("body, prolog, mimetype, expected", [
    ('<table:table table:name="S"><table:table-row>' + cell('<table:table table:name="inner"/>') + "</table:table-row></table:table>",
     "", None, "a table inside a cell"),
    ('<table:table table:name="S"/>', '<!DOCTYPE x [<!ENTITY a "b">]>', None, "DOCTYPE"),
    ('<table:table table:name="S"><table:table-row>' + text("x" * 40_000) + "</table:table-row></table:table>", "", None,
     "more than 32,767 characters"),
    ('<table:table table:name="S"/>', "", "application/vnd.oasis.opendocument.text", "not a spreadsheet"),
    ('<table:table table:name="S"><table:table-row>' + cell(office__value_type="date", office__date_value="someday")
     + "</table:table-row></table:table>", "", None, "S!A1 is of type date"),
    ('<table:table table:name="S"><table:table-row table:number-rows-repeated="-3"/></table:table>', "", None, "not a count"),
], ids=["nested-table", "doctype", "huge-cell", "odt", "bad-date", "negative-repeat"])
def test_hostile_or_broken_ods_is_refused_in_one_line(body, prolog, mimetype, expected):
    data = ods(body, prolog=prolog, **({"mimetype": mimetype} if mimetype else {}))
    with pytest.raises(InputError, match=expected) as exc:
        read_workbook(data, "x.ods")
    assert "\n" not in str(exc.value) and "x.ods" in str(exc.value)


def test_a_formula_without_a_saved_value_is_named():
    data = ods('<table:table table:name="S"><table:table-row>' + cell(table__formula="of:=[.B1]*2")
               + text("x") + "</table:table-row></table:table>")
    (sheet,), notices = read_workbook(data, "x.ods")
    assert sheet.cells == [[None, "x"]]
    assert [n.code for n in notices] == ["formula_without_value"] and "S!A1" in notices[0].message
