"""Hostile zips and folders met by the GTFS reader: names that leave the folder, links, duplicates, bombs, damage.

Each case ends in one notice on the file it concerns or one InputError naming it; never a traceback.
"""

import bz2
import os
import random
import tracemalloc
import warnings
import zipfile

import pytest

from tests.conftest import MINI_FEED, write_feed
from tests.transforms.zipcraft import Raw, member, raw_zip
from transforms.adapters import InputError
from transforms.gtfs import GtfsAdapter


def _mini(*extra: Raw) -> list[Raw]:
    return [member(n, t.encode()) for n, t in MINI_FEED.items()] + list(extra)


def _codes(feed, code):
    return [n for n in feed.findings.notices if n.code == code]


@pytest.mark.parametrize("name", ["../x.bin", "a/../../x.bin", "/etc/x.bin", "..\\..\\x.bin", "C:/x.bin", "\\\\host\\x.bin",
                                  "docs/\x1b[2Jx.bin", "a\nb.bin"])
def test_zip_member_outside_folder_or_with_control_characters_is_refused(tmp_path, name):
    feed = GtfsAdapter().read(raw_zip(tmp_path / "f.zip", _mini(member(name, b"payload"))))
    assert not any(v == b"payload" for v in feed.other_files.values()), "the refused member was kept"
    [notice] = _codes(feed, "unsafe_file_name")
    assert notice.severity == "ERROR"
    assert "\x1b" not in notice.message and "\n" not in notice.message and "\x1b" not in notice.file
    assert set(feed.files) == set(MINI_FEED), "the rest of the feed is read"


def test_zip_member_name_with_nul_is_refused_not_read_as_the_name_before_it(tmp_path):
    path = raw_zip(tmp_path / "f.zip", _mini(member(b"stops.txt\x00../../x.sh", b"stop_id\nEVIL\n")))
    feed = GtfsAdapter().read(path)
    assert "EVIL" not in str(feed.files["stops.txt"].csv.__dict__), "the member named 'stops.txt<NUL>…' replaced stops.txt"
    [notice] = _codes(feed, "unsafe_file_name")
    assert notice.file == "stops.txt\\x00../../x.sh"


def test_two_zip_members_with_one_name_give_a_notice_on_that_file(tmp_path):
    path = tmp_path / "f.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")
        for n, t in MINI_FEED.items():
            zf.writestr(n, t)
        zf.writestr("stops.txt", "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\n")
    feed = GtfsAdapter().read(path)
    [notice] = _codes(feed, "duplicate_file")
    assert notice.file == "stops.txt" and notice.severity == "ERROR"
    assert feed.files["stops.txt"].csv.rows_in == 1, "the last one is the one read, as the notice says"
    assert "last" in notice.message


def test_zip_member_that_is_a_symbolic_link_is_refused(tmp_path):
    link = member("shapes.txt", b"/etc/passwd", external_attr=0o120777 << 16)
    feed = GtfsAdapter().read(raw_zip(tmp_path / "f.zip", _mini(link)))
    assert "shapes.txt" not in feed.files and "shapes.txt" not in feed.other_files
    [notice] = _codes(feed, "special_file")
    assert notice.file == "shapes.txt" and notice.severity == "ERROR"


def test_zip_inside_the_feed_zip_is_kept_with_a_notice_saying_what_to_do(tmp_path):
    inner = tmp_path / "inner.zip"
    raw_zip(inner, _mini())
    feed = GtfsAdapter().read(raw_zip(tmp_path / "f.zip", _mini(member("gtfs.zip", inner.read_bytes()))))
    [notice] = _codes(feed, "nested_zip")
    assert notice.file == "gtfs.zip" and "not read" in notice.message
    assert feed.other_files["gtfs.zip"] == inner.read_bytes(), "kept as received"


def test_encrypted_zip_member_is_refused_in_one_clear_error(tmp_path):
    path = raw_zip(tmp_path / "f.zip", _mini(member("stops.txt", b"\x00" * 64, flags=0x801)))
    with pytest.raises(InputError, match=r"f\.zip!stops\.txt: .*encrypted.*without a password"):
        GtfsAdapter().read(path)


def test_zip_member_with_an_unknown_compression_method_is_refused_in_one_clear_error(tmp_path):
    path = raw_zip(tmp_path / "f.zip", _mini(member("stops.txt", b"x", method=9)))  # deflate64
    with pytest.raises(InputError, match=r"f\.zip!stops\.txt: .*compression method 9"):
        GtfsAdapter().read(path)


def test_truncated_or_damaged_zip_gives_an_input_error_never_another_exception(tmp_path):
    good = raw_zip(tmp_path / "good.zip", _mini()).read_bytes()
    rnd = random.Random(13)
    cases = [good[:n] for n in range(0, len(good), max(1, len(good) // 97))]
    for _ in range(150):
        bad = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            bad[rnd.randrange(len(bad))] = rnd.randrange(256)
        cases.append(bytes(bad))
    for i, data in enumerate(cases):
        path = tmp_path / f"case{i}.zip"
        path.write_bytes(data)
        try:
            GtfsAdapter().read(path)
        except InputError as e:
            assert "\n" not in str(e) and str(path) in str(e)


def test_truncated_zip_says_it_is_incomplete(tmp_path):
    good = raw_zip(tmp_path / "good.zip", _mini()).read_bytes()
    (tmp_path / "cut.zip").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"cut\.zip: .*(incomplete|truncated)"):
        GtfsAdapter().read(tmp_path / "cut.zip")


def test_utf16_text_member_is_read_with_one_notice(tmp_path):
    files = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"]}
    feed_zip = raw_zip(tmp_path / "f.zip", [member(n, t.encode("utf-16") if n == "stops.txt" else t.encode()) for n, t in files.items()])
    feed = GtfsAdapter().read(feed_zip)
    assert feed.files["stops.txt"].csv.rows_in == 2
    assert [n.code for n in feed.findings.notices if n.file == "stops.txt"] == ["non_utf8_encoding"]


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_DEFLATED])
def test_zip_member_that_unpacks_to_more_than_it_declares_is_refused_without_unpacking_it(tmp_path, method):
    big = bytes(256 << 20)
    if method == zipfile.ZIP_BZIP2:
        packed = bz2.compress(big, 1)
    else:
        from tests.transforms.zipcraft import deflated

        packed = deflated(big)
    liar = Raw(name=b"notes.bin", data=packed, compress_size=len(packed), file_size=1000, crc=0, method=method)
    path = raw_zip(tmp_path / "f.zip", _mini(liar))
    del big
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"f\.zip!notes\.bin: .*more than the 1,000 bytes"):
            GtfsAdapter().read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"unpacking a lying member allocated {peak >> 20} MiB"


def test_zip_member_packed_more_tightly_than_any_feed_is_refused_before_unpacking(tmp_path, monkeypatch):
    data = b"trip_id,stop_id\n" + b"T1,S1\n" * (2 << 20)  # 12 MiB that pack 1000:1; real feeds pack at most ~25:1
    path = raw_zip(tmp_path / "f.zip", _mini(member("stop_times.txt", data)))
    with pytest.raises(InputError, match=r"f\.zip!stop_times\.txt: .*NORIBA_MAX_ZIP_RATIO"):
        GtfsAdapter().read(path)
    monkeypatch.setenv("NORIBA_MAX_ZIP_RATIO", "2000")
    feed = GtfsAdapter().read(path)
    assert feed.files["stop_times.txt"].csv.rows_in == 2 << 20, "a user who trusts the feed raises the limit and it is read"


def test_folder_source_does_not_follow_links_out_of_the_folder(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "shapes.txt").write_text("shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\nSECRET,1,1,1\n")
    (secret / "key.bin").write_bytes(b"SECRET")
    feed_dir = write_feed(tmp_path / "feed", MINI_FEED)
    os.symlink(secret / "shapes.txt", feed_dir / "shapes.txt")
    os.symlink(secret, feed_dir / "more")
    os.symlink(feed_dir / "stops.txt", feed_dir / "stops_copy.bin")  # inside the folder: read
    feed = GtfsAdapter().read(feed_dir)
    assert "shapes.txt" not in feed.files
    assert not any(b"SECRET" in v for v in feed.other_files.values())
    assert {n.file for n in _codes(feed, "special_file")} == {"shapes.txt", "more"}
    assert feed.other_files["stops_copy.bin"] == (feed_dir / "stops.txt").read_bytes()


def test_file_of_a_sub_folder_feed_does_not_replace_a_top_level_file_of_the_same_name(tmp_path):
    members = [member("gtfs/" + n, t.encode()) for n, t in MINI_FEED.items()]
    members += [member("gtfs/readme.md", b"inner"), member("readme.md", b"outer")]
    feed = GtfsAdapter().read(raw_zip(tmp_path / "f.zip", members))
    assert set(MINI_FEED) <= set(feed.files)
    assert feed.other_files == {"readme.md": b"outer", "gtfs/readme.md": b"inner"}


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_text_member_without_byte_order_mark_is_read_with_one_notice(tmp_path, codec):
    members = [member(n, t.encode(codec) if n == "stops.txt" else t.encode()) for n, t in MINI_FEED.items()]
    feed = GtfsAdapter().read(raw_zip(tmp_path / "f.zip", members))
    assert feed.files["stops.txt"].csv.header == ["stop_id", "stop_name", "stop_lat", "stop_lon"]
    assert feed.files["stops.txt"].csv.rows_in == 2
    [notice] = [n for n in feed.findings.notices if n.file == "stops.txt"]
    assert notice.code == "non_utf8_encoding" and "UTF-16" in notice.message


def test_zip_of_too_many_files_is_refused_before_they_are_listed(tmp_path):
    many = [member(f"f{i}.bin", b"") for i in range(10_001)]
    with pytest.raises(InputError, match=r"f\.zip: the zip holds 10,0\d\d files"):
        GtfsAdapter().read(raw_zip(tmp_path / "f.zip", _mini(*many)))


def test_zip_whose_end_record_hides_how_many_files_it_holds_is_still_refused(tmp_path):
    path = raw_zip(tmp_path / "f.zip", _mini(*[member(f"f{i}.bin", b"") for i in range(10_001)]))
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8:end + 12] = (5).to_bytes(2, "little") * 2  # the count says 5; the central directory holds them all
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"f\.zip: the zip holds 10,0\d\d files"):
        GtfsAdapter().read(path)
