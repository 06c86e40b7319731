"""Trip CSVs whose rows cannot be trusted (mixed encodings, undecodable bytes, NUL): each row named, quarantined raw, none lost."""

from __future__ import annotations

import json

SECTION = {"currency": "JPY", "time": {"format": "%Y-%m-%d %H:%M:%S", "zone": "local"},
           "columns": {"pickup_time": "pu", "dropoff_time": "do", "total_amount": "fare", "pickup_zone": "area"}}
HEADER = "pu,do,fare,area\n"


def _row(area: str, enc: str, minute: int = 0) -> bytes:
    return f"2026-04-01 10:{minute:02d}:00,2026-04-01 10:{minute + 10:02d}:00,900,{area}\n".encode(enc)


def _quarantine(con) -> dict[int, tuple[str, str, dict]]:
    return {line: (code, reason, json.loads(raw)) for line, code, reason, raw in
            con.sql("SELECT line, code, reason, raw FROM quarantine").fetchall()}


def test_utf8_rows_inside_a_shift_jis_file_are_each_quarantined_with_a_notice(stage):
    data = (HEADER.encode() + _row("室蘭", "cp932", 0) + _row("登別", "utf-8", 1) + _row("伊達", "cp932", 2)
            + _row("白老", "utf-8", 3) + _row("洞爺", "cp932", 4))
    staged, con = stage({"t.csv": data}, SECTION)
    f = staged.files[0]
    assert (f["rows_in"], f["accepted"], f["quarantined"]) == (5, 3, 2)
    assert sorted(a for (a,) in con.sql("SELECT pickup_zone FROM fct").fetchall()) == sorted(["伊達", "室蘭", "洞爺"])
    q = _quarantine(con)
    assert sorted(q) == [2, 4]
    assert q[2][0] == "invalid_record" and "UTF-8 while the file is Shift_JIS" in q[2][1]
    assert q[2][2]["area"] == "登別"  # the raw row, readable
    rows = [n for n in staged.notices if n.code == "mixed_encoding_row"]
    assert [(n.file, n.line) for n in rows] == [("t.csv", 2), ("t.csv", 4)]


def test_shift_jis_rows_inside_a_utf8_file_are_each_quarantined_not_read_as_latin1(stage):
    data = HEADER.encode() + _row("室蘭", "utf-8", 0) + _row("登別", "cp932", 1) + _row("伊達", "utf-8", 2)
    staged, con = stage({"t.csv": data}, SECTION)
    assert (staged.rows_in, staged.accepted, staged.quarantined) == (3, 2, 1)
    assert sorted(a for (a,) in con.sql("SELECT pickup_zone FROM fct").fetchall()) == sorted(["室蘭", "伊達"])
    (line, (code, reason, raw)), = _quarantine(con).items()
    assert line == 2 and "Shift_JIS (CP932) while the file is UTF-8" in reason
    assert [n.line for n in staged.notices if n.code == "mixed_encoding_row"] == [2]
    assert not any(n.code == "non_utf8_bytes" for n in staged.notices)


def test_undecodable_bytes_quarantine_their_row_with_the_bytes_shown(stage):
    data = HEADER.encode() + _row("Muroran", "utf-8", 0) + b"2026-04-01 10:01:00,2026-04-01 10:11:00,900,Mur\xff\xferan\n" + _row("Date", "utf-8", 2)
    staged, con = stage({"t.csv": data}, SECTION)
    f = staged.files[0]
    assert (f["rows_in"], f["accepted"], f["quarantined"]) == (3, 2, 1)
    (line, (code, reason, raw)), = _quarantine(con).items()
    assert line == 2 and "not valid utf-8" in reason
    assert raw["area"] == "Mur\\xff\\xferan" and raw["pu"] == "2026-04-01 10:01:00"
    (n,) = [n for n in staged.notices if n.code == "undecodable_row"]
    assert (n.line, n.severity) == (2, "ERROR") and "ff fe" in n.message
    assert not any(n.code == "non_utf8_bytes" for n in staged.notices)  # one notice per row, not a file-wide one


def test_nul_byte_in_a_value_quarantines_its_row(stage):
    data = HEADER.encode() + _row("Muroran", "utf-8", 0) + b"2026-04-01 10:01:00,2026-04-01 10:11:00,9\x0000,Date\n"
    staged, con = stage({"t.csv": data}, SECTION)
    f = staged.files[0]
    assert (f["rows_in"], f["accepted"], f["quarantined"]) == (2, 1, 1)
    (line, (code, reason, raw)), = _quarantine(con).items()
    assert line == 2 and "NUL" in reason and raw["fare"] == "9\x0000"
    (n,) = [n for n in staged.notices if n.code == "nul_in_value"]
    assert (n.file, n.line) == ("t.csv", 2) and "field 3" in n.message


def test_clean_shift_jis_file_is_read_whole_with_one_notice(stage):
    data = HEADER.encode() + _row("室蘭", "cp932", 0) + _row("伊達", "cp932", 1)
    staged, con = stage({"t.csv": data}, SECTION)
    assert (staged.rows_in, staged.accepted) == (2, 2)
    assert [n.code for n in staged.notices] == ["non_utf8_encoding"]


def test_quoted_newline_keeps_rows_numbered_as_records(stage):
    data = (HEADER.encode() + b'2026-04-01 10:00:00,2026-04-01 10:10:00,900,"Muro\nran"\n'
            + b"2026-04-01 10:01:00,2026-04-01 10:11:00,900,\x00\n" + _row("Date", "utf-8", 2))
    staged, con = stage({"t.csv": data}, SECTION)
    assert (staged.rows_in, staged.accepted, staged.quarantined) == (3, 2, 1)
    assert list(_quarantine(con)) == [2]


def test_declared_encoding_is_checked_row_by_row(stage):
    data = HEADER.encode() + _row("室蘭", "cp932", 0) + _row("登別", "utf-8", 1)
    staged, con = stage({"t.csv": data}, SECTION, encoding="shift_jis")
    assert (staged.rows_in, staged.accepted, staged.quarantined) == (2, 1, 1)
    assert list(_quarantine(con)) == [2]
    assert [n.line for n in staged.notices if n.code == "mixed_encoding_row"] == [2]
