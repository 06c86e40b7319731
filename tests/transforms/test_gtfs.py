import zipfile

import pytest

from transforms.adapters import InputError
from transforms.gtfs import GtfsAdapter, _members

STOPS = "stop_id,stop_name,stop_lat,stop_lon\n" + "".join(f"S{i},停留所{i},35.{i:04d},139.5\n" for i in range(2000))


def _zip(path, compression, members):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, text in members.items():
            z.writestr(name, text.encode("utf-8"))
    return path


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2])
def test_every_zip_member_reads_as_zipfile_reads_it(tmp_path, compression):
    path = _zip(tmp_path / "feed.zip", compression, {"stops.txt": STOPS, "empty.txt": ""})
    members = _members(path)
    with zipfile.ZipFile(path) as z:
        assert {name: read() for name, read in members.items()} == {name: z.read(name) for name in z.namelist()}


def test_damaged_zip_member_is_named_in_one_clear_error(tmp_path):
    data = bytearray(_zip(tmp_path / "ok.zip", zipfile.ZIP_DEFLATED, {"stops.txt": STOPS}).read_bytes())
    start = data.find(b"stops.txt") + len("stops.txt") + 100  # inside the compressed bytes
    data[start:start + 8] = bytes(b ^ 0xFF for b in data[start:start + 8])
    (tmp_path / "bad.zip").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad\.zip!stops\.txt: this file of the zip is damaged"):
        GtfsAdapter().read(tmp_path / "bad.zip")


def test_member_whose_checksum_does_not_match_is_refused(tmp_path):
    path = _zip(tmp_path / "feed.zip", zipfile.ZIP_DEFLATED, {"stops.txt": STOPS})
    with zipfile.ZipFile(path) as z:
        crc = z.getinfo("stops.txt").CRC.to_bytes(4, "little")
    data = path.read_bytes()
    assert data.count(crc) == 2  # the local header and the central directory
    path.write_bytes(data.replace(crc, ((int.from_bytes(crc, "little") + 1) % 2**32).to_bytes(4, "little")))
    with pytest.raises(InputError, match="Bad CRC-32"):
        GtfsAdapter().read(path)
