import pytest

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


class _Trickle:
    """A stream that hands out at most ``step`` bytes per read, as a decompressor may."""

    def __init__(self, data: bytes, step: int = 7):
        import io

        self.f, self.step = io.BytesIO(data), step

    def read(self, n: int = -1) -> bytes:
        return self.f.read(self.step if n is None or n < 0 else min(n, self.step))


STREAM_CASES = {
    "lf": b"a,b\n1,x\n2,y\n",
    "crlf_split_across_chunks": b"a,b\r\n1,x\r\n2,yyyyy\r\n3,z\r\n",
    "no_final_newline": b"a,b\n1,x\n2,y",
    "utf8_japanese": "a,b\n1,港前\n2,駅前\n".encode(),
    "blank_lines": b"a,b\n1,x\n\n2,y\n",
    "bom": b"\xef\xbb\xbfa,b\n1,x\n",
    "cp932": "a,b\n1,港前\n".encode("cp932"),
    "nul": b"a,b\n1,x\x00\n",
    "quoted_newline": b'a,b\n1,"x\ny"\n',
    "ragged": b"a,b\n1,x,z\n",
}


@pytest.mark.parametrize("name", sorted(STREAM_CASES))
def test_streamed_read_equals_the_whole_file_read_or_hands_the_bytes_back(name):
    from transforms.csvread import Streamed, read_csv_stream
    from transforms.gtfs import normalised_sha256

    data = STREAM_CASES[name]
    got = read_csv_stream(_Trickle(data), head=9)
    if isinstance(got, Streamed):
        whole = read_csv_text(data)
        assert got.csv.table.equals(whole.table) and got.csv.header == whole.header
        assert got.sha256 == normalised_sha256(data)
        assert name in ("lf", "crlf_split_across_chunks", "no_final_newline", "utf8_japanese")
    else:
        assert got == (data, None)  # every byte handed back for the exact path
        assert name not in ("lf", "crlf_split_across_chunks", "no_final_newline", "utf8_japanese")
