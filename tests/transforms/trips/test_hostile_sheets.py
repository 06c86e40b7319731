"""Hostile trip workbooks (generated): read sparse and bounded, never by the sheet's declared dimension, or refused in one line."""

from __future__ import annotations

import pytest

from tests.transforms.timetable import bombs
from transforms.adapters import InputError

SECTION = {"currency": "JPY", "time": {"format": "%Y-%m-%d %H:%M:%S", "zone": "local"},
           "columns": {"pickup_time": "pu", "dropoff_time": "do", "total_amount": "fare"}}
READ = """
import sys
from pathlib import Path
import duckdb
from transforms.adapters import InputError
from transforms.trips import readers
from transforms.trips.spec import check_trips
p = Path(sys.argv[1])
opts, _ = check_trips({"files": [p.name], "columns": {"pickup_time": "colA"}}, where="t.yml")
f = readers.SourceFile(path=p, label=p.name, format="xlsx")
try:
    t, cols = readers.load_batch(duckdb.connect(), [f], opts=opts)
    print("read", t.num_rows, cols)
except InputError as exc:
    print("refused", exc)
"""


def _load(path, **section):
    import duckdb

    from transforms.trips import readers
    from transforms.trips.spec import check_trips

    opts, _ = check_trips({"files": [path.name], "columns": {"pickup_time": "colA"}, **section}, where="t.yml")
    return readers.load_batch(duckdb.connect(), [readers.SourceFile(path=path, label=path.name, format="xlsx")], opts=opts)[0]
MAX_RSS_MB = 1536


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _rows(*rows: list[str]) -> list[bytes]:
    return [f'<row r="{i}">{"".join(cells)}</row>'.encode() for i, cells in enumerate(rows, start=1)]


def test_rows_past_an_understated_dimension_are_all_read(tmp_path, stage):
    path = bombs.write_xlsx(tmp_path / "t.xlsx", bombs._sheet(_rows(
        [_cell("A1", "pu"), _cell("B1", "do"), _cell("C1", "fare")],
        [_cell("A2", "2026-04-01 10:00:00"), _cell("B2", "2026-04-01 10:20:00"), '<c r="C2"><v>900</v></c>'],
        [_cell("A3", "2026-04-01 11:00:00"), _cell("B3", "2026-04-01 11:05:00"), '<c r="C3"><v>500</v></c>']), dimension="A1"))
    staged, con = stage({"t.xlsx": path.read_bytes()}, SECTION)
    assert (staged.rows_in, staged.accepted) == (2, 2)
    assert con.sql("SELECT total_amount FROM fct ORDER BY source_row").fetchall() == [(900,), (500,)]


def test_cell_at_XFD1048576_is_one_more_column_not_a_grid(tmp_path):
    path = bombs.far_cell(tmp_path / "far.xlsx")
    status, out, rss, cpu = bombs.run_capped(READ, str(path))
    assert status == 0, out[-2000:]
    assert out.strip() == "read 1 ['start', 'column_16384']"
    assert rss < MAX_RSS_MB


def test_whitespace_inflating_to_gigabytes_is_refused(tmp_path):
    path = bombs.whitespace_padded(tmp_path / "ws.xlsx", gigabytes=2)
    status, out, rss, cpu = bombs.run_capped(READ, str(path))
    assert status == 0, out[-2000:]
    assert out.startswith("refused ws.xlsx!xl/worksheets/sheet1.xml:") and "NORIBA_SHEET_MAX_XML_BYTES" in out
    assert rss < MAX_RSS_MB


@pytest.mark.slow  # about 30 CPU seconds: a million rows are parsed
def test_a_million_trips_in_a_sheet_are_read_in_bounded_memory(tmp_path):
    path = bombs.many_rows(tmp_path / "rows.xlsx", cols=8)
    status, out, rss, cpu = bombs.run_capped(READ, str(path), cpu_seconds=120)
    assert status == 0, out[-2000:]
    assert out.strip() == f"read 1048575 {['col' + c for c in 'ABCDEFGH']}"
    assert rss < MAX_RSS_MB


def test_table_over_the_cell_limit_is_refused_saying_how_to_raise_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NORIBA_SHEET_MAX_CELLS", "100")
    path = bombs.many_rows(tmp_path / "big.xlsx", rows=100, cols=2)
    with pytest.raises(InputError) as exc:
        _load(path)
    assert str(exc.value).startswith("big.xlsx sheet Sheet1: 51 rows x 2 columns make 102 cells")
    assert "NORIBA_SHEET_MAX_CELLS" in str(exc.value)


def test_repeated_header_keeps_both_columns(tmp_path):
    path = bombs.write_xlsx(tmp_path / "dup.xlsx", bombs._sheet(_rows([_cell("A1", "fare"), _cell("B1", "fare")],
                                                                     ['<c r="A2"><v>1</v></c><c r="B2"><v>2</v></c>'])))
    assert _load(path).drop_columns(["_file", "_row"]).to_pylist() == [{"fare": "1", "fare_2": "2"}]


def test_a_trip_sheet_saved_as_ods_is_read_like_the_xlsx(tmp_path, stage):
    """A taxi operator's log kept in LibreOffice: the same rows as from an .xlsx, its second sheet picked by name."""
    from tests.transforms.test_ods import cell, ods, text

    def row(*cells: str) -> str:
        return f"<table:table-row>{''.join(cells)}</table:table-row>"

    data = ods('<table:table table:name="メモ">' + row(text("集計用")) + "</table:table>"
               '<table:table table:name="運行記録">'
               + row(text("pu"), text("do"), text("fare"))
               + row(text("2026-04-01 10:00:00"), text("2026-04-01 10:20:00"), cell(office__value_type="float", office__value="900"))
               + row(text("2026-04-01 11:00:00"), text("2026-04-01 11:05:00"), cell(office__value_type="currency", office__value="500"))
               + '<table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="16381"/>'
               "</table:table-row></table:table>")
    staged, con = stage({"t.ods": data}, {**SECTION, "sheet": "運行記録"})
    assert (staged.rows_in, staged.accepted) == (2, 2)
    assert con.sql("SELECT total_amount FROM fct ORDER BY source_row").fetchall() == [(900,), (500,)]
