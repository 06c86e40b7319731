from transforms.encoding import decode


def test_utf8_passes_through_without_notice():
    d = decode("停留所,港前\n".encode(), file="stops.txt")
    assert d.encoding == "utf-8" and d.notices == [] and d.data.decode() == "停留所,港前\n"


def test_bom_is_stripped():
    d = decode(b"\xef\xbb\xbfstop_id\n", file="stops.txt")
    assert d.encoding == "utf-8-sig" and d.data == b"stop_id\n"


def test_shift_jis_is_detected_and_reported():
    raw = "stop_id,stop_name\n1,髙松駅前\n".encode("cp932")
    d = decode(raw, file="stops.txt")
    assert d.encoding == "cp932"
    assert d.data.decode("utf-8") == "stop_id,stop_name\n1,髙松駅前\n"
    assert [n.code for n in d.notices] == ["non_utf8_encoding"]


def test_latin1_bytes_inside_utf8_are_decoded_with_a_notice_per_line():
    raw = "stop_id,stop_name\n1,Trondheim S\n2,".encode() + b"Ols\xf8ya\n3,\xc3\x98st\n"
    d = decode(raw, file="stops.txt")
    assert d.encoding == "utf-8+latin-1"
    assert "Olsøya" in d.data.decode("utf-8") and "Øst" in d.data.decode("utf-8")
    assert [(n.code, n.line) for n in d.notices] == [("non_utf8_bytes", 3)]


def test_utf16_is_converted_with_a_warning():
    d = decode("stop_id\n1\n".encode("utf-16"), file="stops.txt")
    assert d.data == b"stop_id\n1\n" and d.notices[0].severity == "WARNING"


def test_declared_encoding_wins():
    raw = "a\nカナ\n".encode("cp932")
    d = decode(raw, file="x.txt", override="Shift_JIS")
    assert d.data.decode() == "a\nカナ\n" and d.notices == []
