"""Hostile workbooks (generated, never committed): each is read in bounded memory and time, or refused with one clear message."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from tests.transforms.timetable import bombs
from transforms.adapters import InputError
from transforms.timetable.workbook import read_workbook

READ = """
import sys
from pathlib import Path
from transforms.adapters import InputError
from transforms.timetable.workbook import read_workbook
p = Path(sys.argv[1])
try:
    sheets, _ = read_workbook(p.read_bytes(), p.name)
    print("read", [(s.nrows, s.ncols) for s in sheets])
except InputError as exc:
    print("refused", exc)
"""
#: The target of issue 13: every hostile workbook is read or refused under 1.5 GB peak memory.
MAX_RSS_MB = 1536


@pytest.fixture(scope="module")
def bomb_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bombs")


def test_cell_at_XFD1048576_is_refused_naming_the_file_sheet_cell_and_limit(bomb_dir):
    path = bombs.far_cell(bomb_dir / "far.xlsx")
    status, out, rss, cpu = bombs.run_capped(READ, str(path))
    assert status == 0, out[-2000:]
    assert out.startswith("refused far.xlsx sheet Sheet1:"), out
    # a timetable has no row 1,048,576: the row limit refuses it before any grid is built
    assert "row 1,048,576 is used" in out and "NORIBA_TIMETABLE_MAX_ROWS" in out
    assert rss < MAX_RSS_MB


def test_a_few_stray_cells_within_the_limit_are_read(bomb_dir, monkeypatch):
    monkeypatch.setenv("NORIBA_TIMETABLE_MAX_CELLS", str(1 << 40))
    path = bombs.write_xlsx(bomb_dir / "near.xlsx", bombs._sheet([b'<row r="1"><c r="A1"><v>1</v></c></row>',
                                                                 b'<row r="3"><c r="C3"><v>2</v></c></row>'], dimension="A1:XFD1048576"))
    (sheet,), _ = read_workbook(path.read_bytes(), path.name)
    assert (sheet.nrows, sheet.ncols) == (3, 3)  # bounded by the cells that exist, not the declared dimension
    assert sheet.value(2, 2) == 2.0


@pytest.fixture(scope="module")
def whitespace(bomb_dir):
    return bombs.whitespace_padded(bomb_dir / "ws.xlsx", gigabytes=2)


def test_sheet_xml_inflating_to_gigabytes_is_refused_before_it_is_inflated(whitespace):
    status, out, rss, cpu = bombs.run_capped(READ, str(whitespace))
    assert status == 0, out[-2000:]
    assert out.startswith("refused ws.xlsx!xl/worksheets/sheet1.xml:"), out
    assert "NORIBA_SHEET_MAX_XML_BYTES" in out
    assert rss < MAX_RSS_MB


def test_whitespace_in_sheet_xml_costs_no_memory_when_the_limits_are_raised(whitespace):
    status, out, rss, cpu = bombs.run_capped(READ, str(whitespace), env={"NORIBA_SHEET_MAX_XML_BYTES": str(4 << 30),
                                                                         "NORIBA_SHEET_MAX_RATIO": "100000"})
    assert status == 0, out[-2000:]
    assert out.strip() == "read [(2, 1)]"
    assert rss < 256  # the parser keeps cell values only: 2 GB of spaces are streamed past


@pytest.fixture(scope="module")
def million_rows(bomb_dir):
    return bombs.many_rows(bomb_dir / "rows.xlsx", cols=4)


def test_sheet_of_a_million_rows_is_no_timetable_and_is_refused_in_seconds(million_rows):
    status, out, rss, cpu = bombs.run_capped(READ, str(million_rows), cpu_seconds=30)
    assert status == 0, out[-2000:]
    assert out.startswith("refused rows.xlsx sheet Sheet1: row 100,001 is used, over the limit of 100,000 rows;"), out
    assert "NORIBA_TIMETABLE_MAX_ROWS" in out
    assert cpu < 15 and rss < MAX_RSS_MB


@pytest.mark.slow  # about 30 CPU seconds: a million rows are parsed
def test_sheet_of_a_million_rows_is_read_in_bounded_memory_when_the_limits_are_raised(million_rows):
    status, out, rss, cpu = bombs.run_capped(READ, str(million_rows), cpu_seconds=120,
                                             env={"NORIBA_TIMETABLE_MAX_ROWS": str(1 << 21), "NORIBA_TIMETABLE_MAX_CELLS": str(1 << 24)})
    assert status == 0, out[-2000:]
    assert out.strip() == "read [(1048576, 4)]"
    assert rss < MAX_RSS_MB


def test_rows_over_the_limit_are_refused_saying_how_to_raise_it(bomb_dir, monkeypatch):
    monkeypatch.setenv("NORIBA_TIMETABLE_MAX_ROWS", "100")
    path = bombs.many_rows(bomb_dir / "200.xlsx", rows=200, cols=2)
    with pytest.raises(InputError) as exc:
        read_workbook(path.read_bytes(), path.name)
    assert str(exc.value).startswith("200.xlsx sheet Sheet1: row 101 is used, over the limit of 100 rows;")
    assert "NORIBA_TIMETABLE_MAX_ROWS" in str(exc.value)


def test_cells_over_the_limit_are_refused_naming_the_farthest_cell(bomb_dir, monkeypatch):
    monkeypatch.setenv("NORIBA_TIMETABLE_MAX_CELLS", "50")
    path = bombs.many_rows(bomb_dir / "cells.xlsx", rows=30, cols=2)
    with pytest.raises(InputError, match=r"cells\.xlsx sheet Sheet1: its values span 26 rows x 2 columns .*Sheet1!A26.*NORIBA_TIMETABLE_MAX_CELLS"):
        read_workbook(path.read_bytes(), path.name)


def test_formula_without_a_saved_value_is_named_in_a_notice():
    wb = openpyxl.Workbook()  # openpyxl, like many generators, saves formulas without their values
    ws = wb.active
    ws.title = "平日"
    ws["A1"], ws["B1"] = "6:40", "=A1+1/24"
    buf = io.BytesIO()
    wb.save(buf)
    (sheet,), notices = read_workbook(buf.getvalue(), "平日.xlsx")
    assert sheet.value(0, 1) is None
    (n,) = notices
    assert (n.code, n.file, n.value) == ("formula_without_value", "平日.xlsx", "平日!B1")
    assert "=A1+1/24" in n.message and "save" in n.message


def test_formula_with_a_saved_value_is_read_without_notice(bomb_dir):
    path = bombs.write_xlsx(bomb_dir / "cached.xlsx", bombs._sheet([b'<row r="1"><c r="A1"><f>1+1</f><v>2</v></c></row>']))
    (sheet,), notices = read_workbook(path.read_bytes(), path.name)
    assert sheet.value(0, 0) == 2.0 and notices == []


def _one_line_refusal(data: bytes, name: str) -> str:
    with pytest.raises(InputError) as exc:
        read_workbook(data, name)
    msg = str(exc.value)
    assert msg.startswith(name) and "\n" not in msg
    return msg


def test_xml_with_a_doctype_is_refused(bomb_dir):
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
              b'<worksheet xmlns="' + bombs.MAIN.encode() + b'"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol2;</t>'
              b'</is></c></row></sheetData></worksheet>')
    path = bombs.write_xlsx(bomb_dir / "lol.xlsx", [laughs])
    assert "DOCTYPE" in _one_line_refusal(path.read_bytes(), "lol.xlsx")


def test_zip_that_is_not_a_workbook_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    assert "no workbook part" in _one_line_refusal(buf.getvalue(), "timetable.xlsx")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # an .ods whose content.xml is not OpenDocument XML
        z.writestr("content.xml", "<office:document-content/>")
    assert "timetable.ods!content.xml: not well-formed XML" in _one_line_refusal(buf.getvalue(), "timetable.ods")


def test_shared_string_that_does_not_exist_is_refused_naming_the_cell(bomb_dir):
    path = bombs.write_xlsx(bomb_dir / "sst.xlsx", bombs._sheet([b'<row r="1"><c r="C1" t="s"><v>7</v></c></row>']))
    assert "Sheet1!C1" in _one_line_refusal(path.read_bytes(), "sst.xlsx")


def test_cell_past_the_last_excel_column_is_refused(bomb_dir):
    path = bombs.write_xlsx(bomb_dir / "xfe.xlsx", bombs._sheet([b'<row r="1"><c r="XFE1"><v>1</v></c></row>']))
    assert "NORIBA_SHEET_MAX_COLUMNS" in _one_line_refusal(path.read_bytes(), "xfe.xlsx")


def test_cell_longer_than_excel_allows_is_refused(bomb_dir):
    long = b"x" * 40_000
    path = bombs.write_xlsx(bomb_dir / "long.xlsx", bombs._sheet([b'<row r="1"><c r="A1" t="inlineStr"><is><t>' + long + b"</t></is></c></row>"]))
    assert "32,767" in _one_line_refusal(path.read_bytes(), "long.xlsx")


def test_xls_sheet_over_the_cell_limit_is_refused_naming_file_and_sheet(monkeypatch):
    from tests.conftest import shared

    path = shared("jp-sources/muroran-donan-timetables-2017/timetable_weekday_20170401.xls")
    monkeypatch.setenv("NORIBA_TIMETABLE_MAX_CELLS", "100")
    with pytest.raises(InputError, match=r"^timetable_weekday_20170401\.xls sheet .+: its values span .* over the limit of 100 cells;.*"
                                         r"NORIBA_TIMETABLE_MAX_CELLS"):
        read_workbook(path.read_bytes(), path.name)


def test_merged_ranges_covering_more_than_the_cell_limit_are_refused(bomb_dir, monkeypatch):
    monkeypatch.setenv("NORIBA_TIMETABLE_MAX_CELLS", "1000")
    merges = "".join('<mergeCell ref="A1:J10"/>' for _ in range(20)).encode()  # 20 overlapping ranges of 100 cells: 2,000 fills
    sheet = [f'<?xml version="1.0"?><worksheet xmlns="{bombs.MAIN}"><sheetData><row r="1"><c r="A1"><v>1</v></c></row>'
             f'</sheetData><mergeCells>'.encode(), merges, b"</mergeCells></worksheet>"]
    path = bombs.write_xlsx(bomb_dir / "merged.xlsx", sheet)
    assert "merged ranges" in _one_line_refusal(path.read_bytes(), "merged.xlsx")


def test_workbook_without_sheets_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{bombs.MAIN}"><sheets/></workbook>')
    assert "no sheet" in _one_line_refusal(buf.getvalue(), "empty.xlsx")


def test_part_inflating_a_thousand_times_is_refused_by_its_ratio(bomb_dir):
    path = bombs.whitespace_padded(bomb_dir / "ratio.xlsx", gigabytes=0.1)  # 100 MB of spaces: under the size limit
    msg = _one_line_refusal(path.read_bytes(), "ratio.xlsx")
    assert "inflates" in msg and "NORIBA_SHEET_MAX_RATIO" in msg
