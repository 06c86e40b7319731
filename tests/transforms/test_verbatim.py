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
    "minute 60": (HEAD + "T1,08:60:00,08:00:00,S1,1\n", False),
    "second 60": (HEAD + "T1,08:00:00,08:00:60,S1,1\n", False),
    "empty times": (HEAD + "T1,,,S1,1\nT1,08:00:00,08:00:00,S2,2\n", True),
    "negative number": (HEAD + "T1,08:00:00,08:00:00,S1,-1\n", True),
    "ten digits": (HEAD + "T1,08:00:00,08:00:00,S1,1234567890\n", False),
    "zero": (HEAD + "T1,08:00:00,08:00:00,S1,0\n", True),
    "NUL": (HEAD + "T1,08:00:00,08:00:00,S\x001,1\n", False),
    "space in number": (HEAD + "T1,08:00:00,08:00:00,S1, 1\n", False),
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


def test_byte_tests_prove_only_what_the_pattern_accepts():
    """_spelled_fast says True only for values the pattern matches (False only means "test the pattern")."""
    import random

    import pyarrow as pa
    import pyarrow.compute as pc

    from transforms.verbatim import VERBATIM, _spelled_fast

    rng = random.Random(7)
    alphabet = "0123456789:-+ a\u00e9"
    for pattern in (VERBATIM["time"], VERBATIM["INTEGER"]):
        for _ in range(3000):
            values = ["".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 2, 8, 9, 10)))) for _ in range(rng.randint(1, 4))]
            if rng.random() < 0.5:  # mostly well-formed values, one of them perhaps not
                values = [f"{rng.randint(0, 99):02d}:{rng.randint(0, 69):02d}:{rng.randint(0, 69):02d}" if pattern == VERBATIM["time"]
                          else str(rng.choice((0, 1, 7, 10, 999_999_999, 1_000_000_000))) for _ in values] + values[:rng.randint(0, 1)]
            arr = pa.array(values, pa.string())
            for a in (arr, arr.slice(1)):
                if _spelled_fast(a, pattern):
                    assert pc.all(pc.match_substring_regex(a, pattern), min_count=0).as_py(), (pattern, a.to_pylist())
    plain_times = pa.array(["08:00:00", "24:59:59", "00:00:00"] * 1000)
    assert _spelled_fast(plain_times, VERBATIM["time"])
    assert _spelled_fast(pa.array(["0", "1", "12", "999999999", ""] * 1000), VERBATIM["INTEGER"])
    assert not _spelled_fast(pa.array(["08:00:00", None]), VERBATIM["time"])  # a null: the pattern decides


def test_plain_stop_times_are_proven_without_hashing_their_values(tmp_path, monkeypatch):
    """A plain stop_times.txt is found plain by byte tests alone: no distinct values of a column are formed."""
    import pyarrow.compute as pc

    from transforms.gtfs import GtfsAdapter

    rows = "".join(f"T{i // 20},{8 + i % 12:02d}:{i % 60:02d}:00,{8 + i % 12:02d}:{i % 60:02d}:30,S{i % 97},{i % 20}\n" for i in range(5000))
    feed = tmp_path / "f.zip"
    with zipfile.ZipFile(feed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("stop_times.txt", (HEAD + rows).encode())

    def no_unique(*a, **k):
        raise AssertionError("pc.unique called")

    monkeypatch.setattr(pc, "unique", no_unique)
    tf = GtfsAdapter().read(feed).files["stop_times.txt"]
    assert tf.verbatim is not None and tf.verbatim["rows"] == 5000


def test_a_header_with_a_quote_or_cr_is_not_plain_even_when_the_body_is_proven():
    """The CSV read's proof (lines_proven) covers the body after the header line; a quote or CR in the header's own cells
    still makes the member not plain, as without the proof."""
    from transforms.verbatim import plain_bytes

    for header in (['a"b', "c"], ["a\rb", "c"]):
        data = (",".join(header) + "\n1,2\n").encode()
        assert plain_bytes(data, header, 1) is False
        assert plain_bytes(data, header, 1, lines_proven=True) is False
    assert plain_bytes(b"a,c\n1,2\n", ["a", "c"], 1, lines_proven=True) is True
