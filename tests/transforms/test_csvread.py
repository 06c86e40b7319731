from transforms.csvread import read_csv_text


def rows(ct):
    return [tuple(r.values()) for r in ct.table.to_pylist()]


def test_lines_are_physical_lines_with_crlf_and_blank_lines():
    ct = read_csv_text(b"a,b\r\n1,2\r\n\r\n3,4")
    assert rows(ct) == [("1", "2", 2), ("3", "4", 4)]
    assert ct.blank_lines == 1 and ct.rows_in == 2


def test_quoted_line_break_keeps_following_line_numbers():
    ct = read_csv_text(b'a,b\n1,"x\ny"\n2,z\n')
    assert rows(ct) == [("1", "x\ny", 2), ("2", "z", 4)]


def test_rows_with_surplus_cells_are_set_aside_with_their_text():
    ct = read_csv_text(b"a,b\n1,2\n4,5,6\n7,8\n")
    assert rows(ct) == [("1", "2", 2), ("7", "8", 4)]
    assert [(b.line, b.cells, b.text, b.code) for b in ct.bad_rows] == [(3, 3, "4,5,6", "invalid_row_length")]
    assert ct.rows_in == 3


def test_short_rows_and_empty_surplus_cells_are_kept_and_listed():
    ct = read_csv_text(b"a,b,c\n1,2\n3,4,5,,\n")
    assert rows(ct) == [("1", "2", "", 2), ("3", "4", "5", 3)]
    assert ct.ragged_rows == [(2, 2), (3, 5)] and ct.bad_rows == []


def test_header_only_file_has_no_rows():
    ct = read_csv_text(b"a,b\n")
    assert ct.header == ["a", "b"] and ct.rows_in == 0


def test_empty_file_has_no_header():
    assert read_csv_text(b"").header == []



def test_blank_lines_in_unquoted_lf_files_keep_line_numbers():
    # the unquoted LF fast path finds skipped blank lines from the body's length, wherever they are
    cases = {  # data: (row lines, blank lines)
        b"a,b\n1,2\n3,4\n": ([2, 3], 0),
        b"a,b\n1,2\n3,4": ([2, 3], 0),
        b"a,b\n\n1,2\n3,4\n": ([3, 4], 1),
        b"a,b\n1,2\n\n\n3,4\n": ([2, 5], 2),
        b"a,b\n1,2\n3,4\n\n": ([2, 3], 1),
        b"a,b\n1,\n,4\n": ([2, 3], 0),
    }
    for data, (lines, blank) in cases.items():
        ct = read_csv_text(data)
        assert (ct.table.column("_line").to_pylist(), ct.blank_lines) == (lines, blank), data


def test_sliced_arrays_read_with_their_offset():
    # chunks of a big file are slices of one buffer: the line proof must read each chunk's own offsets
    import pyarrow as pa

    from transforms.csvread import _one_row_per_line

    body = b"a,b\n1,2\n33,4\n5,66\n"
    table = pa.table({"c0": pa.array(["1", "33", "5", "x"]).slice(0, 3), "c1": pa.array(["z", "2", "4", "66"]).slice(1)})
    assert _one_row_per_line(body, 4, table)
    assert not _one_row_per_line(body + b"\n", 4, table)


# Hostile input (issue 13): every case ends in seconds with one clear finding, within the limits.

import pytest  # noqa: E402

from tests.conftest import deadline  # noqa: E402
from transforms.csvread import RAW_KEEP_BYTES, limits  # noqa: E402


def wide_csv(columns: int, rows: int) -> bytes:
    header = ",".join(f"col{i}" for i in range(columns))
    return (header + "\n" + "".join(",".join(["v"] * columns) + "\n" for _ in range(rows))).encode()


def test_header_wider_than_the_column_limit_refuses_the_file_and_sets_its_rows_aside():
    with deadline(20):
        ct = read_csv_text(wide_csv(100_000, 2))
    code, message = ct.refused
    assert code == "too_many_columns" and "100,000 columns" in message and "NORIBA_CSV_MAX_COLUMNS" in message
    assert ct.header == [] and ct.table.num_rows == 0
    assert [(b.line, b.code) for b in ct.bad_rows] == [(2, "too_many_columns"), (3, "too_many_columns")]
    assert all(len(b.text.encode()) < RAW_KEEP_BYTES + 100 and b.text.endswith("are kept]") for b in ct.bad_rows)
    assert ct.rows_in == 2


def test_header_only_file_with_100k_columns_is_refused_in_seconds():
    with deadline(20):
        ct = read_csv_text(wide_csv(100_000, 0))
    assert ct.refused[0] == "too_many_columns" and ct.rows_in == 0


def test_file_at_the_column_limit_is_read():
    ct = read_csv_text(wide_csv(limits().columns, 2))
    assert ct.refused is None and len(ct.header) == 1000 and ct.table.num_rows == 2


def test_value_over_the_field_limit_quarantines_its_row_and_names_the_field():
    big = "x" * (200 << 10)
    for data in (f"a,b\n1,{big}\n2,ok\n".encode(),  # pyarrow reads it: the limit is checked after
                 f'a,b\n1,"{big}"\n2,"o\nk"\n'.encode()):  # a quoted line break: the csv module reads it
        with deadline(20):
            ct = read_csv_text(data)
        assert [(b.line, b.code, b.field) for b in ct.bad_rows] == [(2, "field_too_long", "b")], data[:20]
        assert "204,800 bytes long, over the limit of 131,072" in ct.bad_rows[0].reason
        assert len(ct.bad_rows[0].text) < RAW_KEEP_BYTES + 100
        assert ct.table.column("c0").to_pylist() == ["2"] and ct.rows_in == 2


def test_a_50_mb_line_is_set_aside_without_being_split():
    cases = {  # data: (line set aside, line kept)
        b"a,b\n1,2\n" + b"y," * 25_000_000: (3, 2),  # 25M cells and no line end
        b'a,b\n1,"' + b"x" * 50_000_000 + b'"\n3,4\n': (2, 3),
    }
    for data, (bad_line, kept_line) in cases.items():
        with deadline(30):
            ct = read_csv_text(data)
        assert [(b.line, b.code) for b in ct.bad_rows] == [(bad_line, "field_too_long")]
        assert "50,000,00" in ct.bad_rows[0].reason and len(ct.bad_rows[0].text) < RAW_KEEP_BYTES + 100
        assert ct.table.column("_line").to_pylist() == [kept_line]


def test_a_50_mb_header_line_without_line_end_refuses_the_file():
    with deadline(30):
        ct = read_csv_text(b"a,b," + b"y," * 25_000_000)
    assert ct.refused[0] == "too_many_columns" and "about 25,000,003 columns" in ct.refused[1]


def test_cr_only_line_ends_are_read_as_line_ends_with_a_notice():
    ct = read_csv_text(b"a,b\r1,2\r\r3,4\r")
    assert rows(ct) == [("1", "2", 2), ("3", "4", 4)]
    assert [(n.code, n.line) for n in ct.notices] == [("invalid_line_ends", 1)]
    assert read_csv_text(b"a,b\r\n1,2\r\n").notices == []


def test_nul_bytes_are_kept_as_text_on_both_paths():
    assert rows(read_csv_text(b"a,b\n1,x\x00y\n")) == [("1", "x\x00y", 2)]
    assert rows(read_csv_text(b'a,b\n1,x\x00y\n2,"p\nq"\n')) == [("1", "x\x00y", 2), ("2", "p\nq", 3)]


def test_limits_are_raised_by_environment_variables(monkeypatch):
    monkeypatch.setenv("NORIBA_CSV_MAX_COLUMNS", "2000")
    monkeypatch.setenv("NORIBA_CSV_MAX_FIELD_BYTES", "300_000")
    assert read_csv_text(wide_csv(1500, 1)).refused is None
    ct = read_csv_text(("a,b\n1," + "x" * (200 << 10) + "\n").encode())
    assert ct.bad_rows == [] and ct.table.num_rows == 1


def test_a_bad_limit_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("NORIBA_CSV_MAX_COLUMNS", "lots")
    with pytest.raises(ValueError, match="NORIBA_CSV_MAX_COLUMNS='lots' is not a whole number"):
        read_csv_text(b"a,b\n1,2\n")


def test_released_text_keeps_its_row_count_and_header_but_not_its_rows():
    t = read_csv_text(b"a,b\n1,2\n3,4\n5\n")
    before = t.rows_in
    t.release()
    assert t.table.num_rows == 0 and t.header == ["a", "b"] and t.rows_in == before == 3
