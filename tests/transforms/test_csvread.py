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
    assert [(b.line, b.cells, b.text) for b in ct.bad_rows] == [(3, 3, "4,5,6")]
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
