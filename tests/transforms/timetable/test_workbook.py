import io

import openpyxl

from transforms.timetable.workbook import cell_ref, column_index, column_letter, parse_cell, read_workbook


def test_cell_reference_uses_excel_notation():
    assert cell_ref("平日", 13, 3) == "平日!D14"
    assert column_letter(26) == "AA"
    assert column_index("AA") == 26 and column_index("d") == 3 and column_index(2) == 1
    assert parse_cell("E1") == (0, 4)


def test_merged_cells_take_the_top_left_value():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "土日"
    ws["C3"] = "温泉客向け"
    ws.merge_cells("C3:D3")
    ws["D7"] = "レ"
    ws.merge_cells("D7:D8")
    buf = io.BytesIO()
    wb.save(buf)
    sheets, _ = read_workbook(buf.getvalue(), "holiday.xlsx")
    sh = sheets[0]
    assert sh.name == "土日"
    assert sh.value(2, 2) == sh.value(2, 3) == "温泉客向け"
    assert sh.value(6, 3) == sh.value(7, 3) == "レ"
    assert sh.ref(7, 3) == "土日!D8"


def test_shift_jis_csv_is_read_as_one_sheet_named_after_the_file():
    data = "停留所,便1\r\n髙﨑病院前,6:40\r\n".encode("cp932")
    sheets, notices = read_workbook(data, "平日.csv")
    assert sheets[0].name == "平日"
    assert sheets[0].value(1, 0) == "髙﨑病院前"
    assert any(n.code == "non_utf8_encoding" for n in notices)
