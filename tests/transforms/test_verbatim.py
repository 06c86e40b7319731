"""The parse's plain facts (transforms/verbatim.py) say a member is plain exactly when the export's own check does."""

from __future__ import annotations

import zipfile

import pytest

HEAD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
CASES = {
    "plain": (HEAD + "T1,08:00:00,08:00:00,S1,1\nT1,24:10:00,24:10:00,S2,2\n", True),
    "header only": (HEAD, True),
    "one-digit hour": (HEAD + "T1,8:00:00,08:00:00,S1,1\n", False),
    "padded number": (HEAD + "T1,08:00:00,08:00:00,S1,01\n", False),
    "quoted": (HEAD + 'T1,08:00:00,08:00:00,"S1",1\n', False),
    "CR LF": (HEAD.replace("\n", "\r\n") + "T1,08:00:00,08:00:00,S1,1\r\n", False),
    "hash": (HEAD + "T1,08:00:00,08:00:00,S#1,1\n", False),
    "blank line": (HEAD + "T1,08:00:00,08:00:00,S1,1\n\nT1,08:05:00,08:05:00,S2,2\n", False),
    "no last LF": (HEAD + "T1,08:00:00,08:00:00,S1,1", False),
    "ragged": (HEAD + "T1,08:00:00,08:00:00,S1\n", False),
    "BOM": ("\ufeff" + HEAD + "T1,08:00:00,08:00:00,S1,1\n", False),
    "non-ASCII": (HEAD + "T1,08:00:00,08:00:00,停留所,1\n", True),
    "other column order": ("trip_id,stop_id,arrival_time,departure_time,stop_sequence\nT1,S1,08:00:00,08:00:00,1\n", False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plain_facts_agree_with_the_exports_check(tmp_path, case):
    from transforms.gtfs import GtfsAdapter
    from transforms.schema import load_schema
    from warehouse.export import copy_if_verbatim

    text, plain = CASES[case]
    feed = tmp_path / "f.zip"
    with zipfile.ZipFile(feed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("stop_times.txt", text.encode("utf-8"))
    tf = GtfsAdapter().read(feed).files["stop_times.txt"]
    header = [h.strip().lstrip("\ufeff") for h in tf.csv.header]
    table = load_schema().by_file("stop_times.txt")
    checked = copy_if_verbatim(feed, "stop_times.txt", table, header, tf.csv.rows_in, tmp_path / "out.txt")
    assert checked == plain
    assert (tf.verbatim is not None) == plain  # never plain where the export's check says not
    if plain:
        with zipfile.ZipFile(feed) as zf:
            info = zf.getinfo("stop_times.txt")
        assert (tf.verbatim["rows"], tf.verbatim["size"], tf.verbatim["crc"]) == (tf.csv.rows_in, info.file_size, info.CRC)
