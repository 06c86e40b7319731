"""Hostile inputs, generated into a tmp folder in seconds (never committed as files).

Each :class:`Case` writes its input under a folder and says how to run it through the ``noriba``
command line: the arguments, the file name the output must name, and paths that must not exist
afterwards. Zips are written byte by byte (:func:`write_zip`) so sizes, flags and names can lie;
bombs are raw deflate streams made by compressing one block once and writing it many times
(:class:`Repeat`), so a 10 GiB member costs 10 MB of disk and no memory.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from isal import isal_zlib

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
GiB = 1 << 30

MINI_FEED = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,みなと交通,https://example.jp,Asia/Tokyo\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.41\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\nR1,A,1,港線,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WD,T1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2,2\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WD,1,1,1,1,1,0,0,20260401,20270331\n",
    "calendar_dates.txt": "service_id,date,exception_type\nWD,20261229,2\n",
}


# --------------------------------------------------------------------------------------------- zips

@dataclass(frozen=True)
class Repeat:
    """``chunk`` written ``times`` times: compressed once, so its size on disk is that of one block times ``times``."""

    chunk: bytes
    times: int


@dataclass
class Member:
    """One zip member. ``data`` is bytes or a list of bytes / :class:`Repeat` parts; it is deflated unless ``stored``.

    ``declared_size`` overrides the uncompressed size written in both headers (a lying bomb);
    ``flags`` sets general purpose bits (1 = encrypted); ``symlink`` marks it a Unix symbolic link.
    """

    name: str
    data: bytes | list = b""
    stored: bool = False
    declared_size: int | None = None
    flags: int = 0
    symlink: bool = False


def _deflate(parts: list) -> tuple[list[tuple[bytes, int]], int, int]:
    """Return (raw deflate pieces as (bytes, times), crc32, uncompressed size) of ``parts``.

    Each part is compressed by a fresh compressor ending in a full flush (byte aligned, no
    back-references across parts), so pieces can be concatenated and repeated; a final empty
    block closes the stream.
    """
    pieces, crc, size = [], 0, 0
    for part in parts:
        chunk, times = (part.chunk, part.times) if isinstance(part, Repeat) else (part, 1)
        c = zlib.compressobj(9 if len(chunk) <= MiB else 1, zlib.DEFLATED, -15)  # big varied parts: fast over small
        pieces.append((c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH), times))
        for _ in range(times):
            crc = isal_zlib.crc32(chunk, crc)
        size += len(chunk) * times
    pieces.append((zlib.compressobj(9, zlib.DEFLATED, -15).flush(), 1))
    return pieces, crc, size


def write_zip(path: Path, members: list[Member]) -> Path:
    """Return ``path`` after writing ``members`` as a zip, headers exactly as given (names, sizes and flags may lie)."""
    central = []
    with path.open("wb") as f:
        for m in members:
            parts = m.data if isinstance(m.data, list) else [m.data]
            if m.stored:
                raw = b"".join(p.chunk * p.times if isinstance(p, Repeat) else p for p in parts)
                pieces, crc, size, method = [(raw, 1)], zlib.crc32(raw), len(raw), 0
            else:
                (pieces, crc, size), method = _deflate(parts), 8
            csize = sum(len(b) * n for b, n in pieces)
            usize = size if m.declared_size is None else m.declared_size
            name = m.name.encode("utf-8")
            flags = m.flags | 0x800  # names are UTF-8
            offset = f.tell()
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, csize, usize, len(name), 0) + name)
            for blob, n in pieces:
                for _ in range(n):
                    f.write(blob)
            attr = (0o120777 << 16) if m.symlink else (0o100644 << 16)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, flags, method, 0, 0x21, crc, csize, usize,
                                       len(name), 0, 0, 0, 0, attr, offset) + name)
        start = f.tell()
        cd = b"".join(central)
        f.write(cd)
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(cd), start, 0))
    return path


#: feed_info.txt of the honest feed: GTFS recommends the file (missing_recommended_file) and its dates, version and contact.
FEED_INFO = ("feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date,feed_version,feed_contact_email\n"
             "みなと交通,https://example.jp,ja,20260401,20270331,1,info@example.jp\n")


def feed_members(files: dict[str, str] | None = None) -> list[Member]:
    """Return the members of a small valid GTFS feed (MINI_FEED and FEED_INFO, with ``files`` replacing or adding)."""
    return [Member(n, t.encode("utf-8")) for n, t in {**MINI_FEED, "feed_info.txt": FEED_INFO, **(files or {})}.items()]


# --------------------------------------------------------------------------------------------- xlsx

_XLSX_STATIC = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="平日" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '</Relationships>'),
}
_SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>').encode()
_SHEET_TAIL = b"</sheetData></worksheet>"


def _cell(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


#: The notices of the honest timetable below (no kana, no contact, no corporate number, no office_jp; one summary).
TIMETABLE_BASELINE = frozenset({"missing_kana_reading", "timetable_read_summary", "missing_feed_contact_email_and_url",
                                "missing_gtfs_jp_required_file", "agency_id_not_corporate_number"})

#: A timetable sheet, stops down column A (rows 2–3) and two trips in columns B and C.
TIMETABLE_ROWS = ('<row r="1">' + _cell("A1", "停留所") + _cell("B1", "1") + _cell("C1", "2") + "</row>"
                  '<row r="2">' + _cell("A2", "港前") + _cell("B2", "8:00") + _cell("C2", "9:00") + "</row>"
                  '<row r="3">' + _cell("A3", "駅前") + _cell("B3", "8:10") + _cell("C3", "9:10") + "</row>")


def write_xlsx(path: Path, sheet: list) -> Path:
    """Return ``path`` after writing a one-sheet workbook (sheet 平日) whose sheet XML body is ``sheet`` (bytes / Repeat parts)."""
    members = [Member(n, t.encode()) for n, t in _XLSX_STATIC.items()]
    members.append(Member("xl/worksheets/sheet1.xml", [_SHEET_HEAD, *sheet, _SHEET_TAIL]))
    return write_zip(path, members)


# --------------------------------------------------------------------------------------------- specs

def specs_dir(root: Path) -> Path:
    """Return ``root/specs`` holding the canonical schemas, the data contracts and empty feeds/ and trips/ folders (for NORIBA_SPECS)."""
    d = root / "specs"
    if not (d / "schemas").exists():
        for sub in ("schemas", "expectations"):
            shutil.copytree(ROOT / "specs" / sub, d / sub)
        (d / "feeds").mkdir()
        (d / "trips").mkdir()
    return d


def write_timetable_spec(root: Path, folder: Path, *, workbook: str, layout: str | None = None) -> str:
    """Return the feed id after writing a timetable spec that reads ``workbook`` in ``folder`` with a stop list."""
    (folder / "stops.csv").write_text("停留所ID,停留所名,緯度,経度\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.41\n", encoding="utf-8")
    layout = layout or "{trips: columns, stop_column: A, first_stop_row: 2, first_trip_column: B}"
    (specs_dir(root) / "feeds" / "hostile-timetable.yml").write_text(
        "id: hostile-timetable\nkind: timetable\nname: 悪意のある時刻表\n"
        f"source: {{path: {json.dumps(str(folder))}}}\ntimezone: Asia/Tokyo\nprofile: gtfs-jp\n"
        "timetable:\n"
        "  agency: {id: A, name: みなと交通, url: https://example.jp, phone: 0123-00-0000}\n"
        f"  workbooks: [{{file: {workbook}, service: weekday}}]\n"
        f"  layout: {layout}\n"
        "  route: {id: R1, short_name: '1', type: 3}\n"
        "  stops: {file: stops.csv, format: csv, columns: {id: 停留所ID, name: 停留所名, lat: 緯度, lon: 経度}}\n"
        "  fares: {flat: {price: 200, fare_id: flat}}\n"
        "  calendar: {start: 2026-04-01, end: 2027-03-31, services: {weekday: {days: [mon, tue, wed, thu, fri], holidays: skip}}}\n",
        encoding="utf-8")
    return "hostile-timetable"


def write_trips_spec(root: Path, folder: Path) -> str:
    """Return the spec id after writing a trips spec reading every CSV in ``folder`` (pickup, dropoff, fare)."""
    (specs_dir(root) / "trips" / "hostile-trips.yml").write_text(
        "id: hostile-trips\nkind: trips\nname: 悪意のある乗車記録\n"
        f"source: {{path: {json.dumps(str(folder))}}}\ntimezone: Asia/Tokyo\n"
        "trips:\n  files: ['*.csv']\n  format: csv\n  mode: taxi\n  provider: みなと交通タクシー\n  currency: JPY\n"
        "  time: {format: '%Y-%m-%d %H:%M', zone: local}\n"
        "  columns: {pickup_time: 乗車日時, dropoff_time: 降車日時, total_amount: 運賃}\n",
        encoding="utf-8")
    return "hostile-trips"


# --------------------------------------------------------------------------------------------- cases

@dataclass
class Run:
    """How to run a case: the CLI arguments after ``noriba``, a name the output must mention, paths that must stay absent."""

    argv: list[str]
    names: list[str]
    absent: list[Path] = field(default_factory=list)
    codes: tuple[int, ...] = (0, 1, 2)
    #: notice codes the honest version of this input has; published hostile input must add one (controls: exactly these)
    baseline: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Case:
    id: str
    area: str  # the branch of issue 13 whose fix the case checks
    build: Callable[..., Run]  # build(root), or build(root, url) when the case needs a hostile server
    http: tuple[str, dict] | None = None  # (behaviour, options) of tests/hostile/http_servers.serve


def _ingest(path: Path, feed_id: str = "hostile") -> list[str]:
    return ["ingest", str(path), "--id", feed_id, "--date", "2026-06-01"]


def zip_slip(root: Path) -> Run:
    """Members named ../../../x and ../ deep enough to reach /tmp: kept in the export, they would be written there."""
    home_escape = "../" * 3 + "zipslip-escaped.txt"  # exports/<tmp>/ → above NORIBA_HOME, inside the test folder
    deep = "../" * 40 + str(root / "zipslip-deep.txt").lstrip("/")
    z = write_zip(root / "slip.zip", feed_members() + [Member(home_escape, b"x,y\n1,2\n"), Member(deep, b"x,y\n1,2\n")])
    return Run(_ingest(z), ["slip.zip"], absent=[root / "zipslip-escaped.txt", root / "zipslip-deep.txt"])


def absolute_member(root: Path) -> Run:
    """A member named with an absolute path (unique, under the test folder) must never be written there."""
    target = root / "absolute-target" / "pwned.txt"
    z = write_zip(root / "absolute.zip", feed_members() + [Member(str(target), b"x,y\n1,2\n")])
    return Run(_ingest(z), ["absolute.zip"], absent=[target, target.parent])


def symlink_member(root: Path) -> Run:
    """A member marked as a Unix symbolic link pointing at /etc/passwd and one at a folder outside."""
    z = write_zip(root / "symlink.zip", feed_members() + [
        Member("extra/passwd.txt", b"/etc/passwd", symlink=True),
        Member("links/out", str(root / "symlink-target").encode(), symlink=True),
        Member("links/out/escaped.txt", b"x\n"),
    ])
    return Run(_ingest(z), ["symlink.zip"], absent=[root / "symlink-target"])


def symlink_stops(root: Path) -> Run:
    """stops.txt itself is a symbolic link member to /etc/passwd."""
    members = [m for m in feed_members() if m.name != "stops.txt"] + [Member("stops.txt", b"/etc/passwd", symlink=True)]
    z = write_zip(root / "symlink-stops.zip", members)
    return Run(_ingest(z), ["symlink-stops.zip"])


def folder_symlink_out(root: Path) -> Run:
    """A feed folder whose stops.txt is a symbolic link to a file outside it, and whose extra/ links to a folder outside.

    The linked stops.txt is valid, so reading it silently gives no notice at all: only refusing the link does.
    """
    outside = root / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "stops.txt").write_text(MINI_FEED["stops.txt"].replace("港前", "外の港前"), encoding="utf-8")
    (outside / "dir" / "notes.txt").write_text("a,b\n1,2\n", encoding="utf-8")
    feed = root / "feed"
    feed.mkdir()
    for name, text in MINI_FEED.items():
        if name != "stops.txt":
            (feed / name).write_text(text, encoding="utf-8")
    (feed / "stops.txt").symlink_to(outside / "stops.txt")
    (feed / "extra").symlink_to(outside / "dir", target_is_directory=True)
    return Run(_ingest(feed), ["stops.txt", "extra"])


def bomb_lying(root: Path) -> Run:
    """stop_times.txt declares 1,000 bytes and inflates to 10 GiB."""
    header = b"trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
    members = [m for m in feed_members() if m.name != "stop_times.txt"]
    members.append(Member("stop_times.txt", [header, Repeat(bytes(MiB), 10 * 1024)], declared_size=1000))
    z = write_zip(root / "bomb-lying.zip", members)
    return Run(_ingest(z), ["bomb-lying.zip"])


def bomb_honest(root: Path) -> Run:
    """stop_times.txt honestly declares 3.5 GiB of zeros (about 3.6 MB zipped), under the old 4 GiB member limit."""
    members = [m for m in feed_members() if m.name != "stop_times.txt"]
    members.append(Member("stop_times.txt", [Repeat(bytes(MiB), 3584)]))
    z = write_zip(root / "bomb-honest.zip", members)
    return Run(_ingest(z), ["bomb-honest.zip"])


def bomb_nested(root: Path) -> Run:
    """A valid feed carrying inner.zip, itself a zip of a lying 10 GiB bomb (kept as an unknown file)."""
    inner = write_zip(root / "inner.zip", [Member("stops.txt", [Repeat(bytes(MiB), 10 * 1024)], declared_size=1000)])
    z = write_zip(root / "nested.zip", feed_members() + [Member("inner.zip", inner.read_bytes(), stored=True)])
    inner.unlink()
    return Run(_ingest(z), ["nested.zip"])


def nested_feed(root: Path) -> Run:
    """The whole feed is a zip inside the zip (a common upload mistake): no .txt at the top."""
    inner = write_zip(root / "inner.zip", feed_members())
    z = write_zip(root / "feed-in-zip.zip", [Member("gtfs.zip", inner.read_bytes(), stored=True)])
    inner.unlink()
    return Run(_ingest(z), ["feed-in-zip.zip"])


def duplicate_members(root: Path) -> Run:
    """stops.txt twice, both valid, with different names: which one is the feed? Taking one silently is the bug."""
    other = MINI_FEED["stops.txt"].replace("港前", "偽港前").replace("駅前", "偽駅前")
    z = write_zip(root / "duplicate.zip", feed_members() + [Member("stops.txt", other.encode())])
    return Run(_ingest(z), ["duplicate.zip"])


def encrypted_member(root: Path) -> Run:
    """stops.txt has the 'encrypted' flag bit set."""
    members = [Member(m.name, m.data, flags=1 if m.name == "stops.txt" else 0) for m in feed_members()]
    z = write_zip(root / "encrypted.zip", members)
    return Run(_ingest(z), ["encrypted.zip"])


def truncated_zip(root: Path) -> Run:
    """A feed zip cut off in the middle (the central directory is gone)."""
    full = write_zip(root / "full.zip", feed_members({"shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
                                                      + "".join(f"SH,43.{i:04d},141.{i:04d},{i}\n" for i in range(5000))}))
    data = full.read_bytes()
    full.unlink()
    (root / "truncated.zip").write_bytes(data[: len(data) // 2])
    return Run(_ingest(root / "truncated.zip"), ["truncated.zip"])


def truncated_member(root: Path) -> Run:
    """A zip whose central directory is intact but whose stop_times.txt data is cut short (sizes say more)."""
    path = write_zip(root / "truncated-member.zip", feed_members())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("stop_times.txt")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode())
    data[start: start + info.compress_size] = bytes(info.compress_size)  # the deflate stream zeroed: not inflatable
    path.write_bytes(bytes(data))
    return Run(_ingest(path), ["truncated-member.zip"])


def nul_bytes(root: Path) -> Run:
    """NUL bytes inside stops.txt and a stop_times.txt that is 1 MB of NULs after its header (stored, so not a zip bomb)."""
    members = [m for m in feed_members() if m.name not in ("stops.txt", "stop_times.txt")]
    members.append(Member("stops.txt", "stop_id,stop_name,stop_lat,stop_lon\nS1,港\x00前,43.30,141.40\nS2,駅前,43.31,141.41\n\x00\x00\x00\n".encode()))
    members.append(Member("stop_times.txt", MINI_FEED["stop_times.txt"].encode() + bytes(MiB), stored=True))
    z = write_zip(root / "nul.zip", members)
    return Run(_ingest(z), ["nul.zip"])


def geojson_nested(root: Path) -> Run:
    """A GTFS-Flex locations.geojson of a million nested brackets (1 MB, stored): past any parser's recursion."""
    z = write_zip(root / "geonest.zip", feed_members() + [Member("locations.geojson", b"[" * MiB, stored=True)])
    return Run(_ingest(z), ["geonest.zip"])


def geojson_huge(root: Path) -> Run:
    """A 20 MB locations.geojson (stored; mostly spaces inside a FeatureCollection): over the GeoJSON size limit."""
    data = b'{"type": "FeatureCollection", "features": [' + b" " * (20 * MiB) + b"]}"
    z = write_zip(root / "geohuge.zip", feed_members() + [Member("locations.geojson", data, stored=True)])
    return Run(_ingest(z), ["geohuge.zip"])


def utf16_members(root: Path) -> Run:
    """stops.txt in UTF-16 LE with a BOM, routes.txt in UTF-16 BE without one."""
    members = [m for m in feed_members() if m.name not in ("stops.txt", "routes.txt")]
    members.append(Member("stops.txt", MINI_FEED["stops.txt"].encode("utf-16")))
    members.append(Member("routes.txt", MINI_FEED["routes.txt"].encode("utf-16-be")))
    z = write_zip(root / "utf16.zip", members)
    return Run(_ingest(z), ["utf16.zip"])


def bad_rows_1m(root: Path) -> Run:
    """stop_times.txt with a million rows whose surplus cells are not empty (each one a notice and a quarantined row).

    Members with big text are stored, not deflated, so they test the CSV reader, not the zip's packing-ratio check.
    """
    rows = "".join(f"T1,08:00:00,08:00:00,S1,{i},x{i},y,z\n" for i in range(1_000_000)).encode()
    z = write_zip(root / "badrows.zip", [m for m in feed_members() if m.name != "stop_times.txt"] + [
        Member("stop_times.txt", [b"trip_id,arrival_time,departure_time,stop_id,stop_sequence\n", rows], stored=True)])
    return Run(_ingest(z), ["badrows.zip"])


def columns_100k(root: Path) -> Run:
    """stops.txt with 100,000 columns in its header and two rows (stored, as above)."""
    header = "stop_id,stop_name,stop_lat,stop_lon," + ",".join(f"c{i}" for i in range(100_000 - 4))
    rows = "".join(f"S{n},港前,43.30,141.40," + ",".join(str(i % 97) for i in range(100_000 - 4)) + "\n" for n in (1, 2))
    members = [m for m in feed_members() if m.name != "stops.txt"]
    members.append(Member("stops.txt", f"{header}\n{rows}".encode(), stored=True))
    z = write_zip(root / "wide.zip", members)
    return Run(_ingest(z), ["wide.zip"])


def field_50mb(root: Path) -> Run:
    """stops.txt whose stop_desc is one quoted field of 50 MB (base64 of pseudo-random bytes, stored)."""
    import base64
    import random

    blob = base64.b64encode(random.Random(13).randbytes(50 * MiB * 3 // 4))
    members = [m for m in feed_members() if m.name != "stops.txt"]
    members.append(Member("stops.txt", [b'stop_id,stop_name,stop_lat,stop_lon,stop_desc\nS1,\xe6\xb8\xaf,43.30,141.40,"', blob,
                                        b'"\nS2,x,43.31,141.41,\n'], stored=True))
    z = write_zip(root / "bigfield.zip", members)
    return Run(_ingest(z), ["bigfield.zip"])


def xlsx_far_cell(root: Path) -> Run:
    """A timetable workbook with one more cell at XFD1048576 (the last cell Excel has)."""
    folder = root / "tt"
    folder.mkdir()
    write_xlsx(folder / "weekday.xlsx", [TIMETABLE_ROWS.encode(), ('<row r="1048576">' + _cell("XFD1048576", "x") + "</row>").encode()])
    return Run(["run", write_timetable_spec(root, folder, workbook="weekday.xlsx"), "--date", "2026-06-01"], ["weekday.xlsx"],
               baseline=TIMETABLE_BASELINE)


def xlsx_whitespace_bomb(root: Path) -> Run:
    """A timetable workbook whose sheet XML holds 3 GiB of whitespace between rows (about 3 MB zipped)."""
    folder = root / "tt"
    folder.mkdir()
    write_xlsx(folder / "weekday.xlsx", [TIMETABLE_ROWS.encode(), Repeat(b" " * MiB, 3 * 1024)])
    return Run(["run", write_timetable_spec(root, folder, workbook="weekday.xlsx"), "--date", "2026-06-01"], ["weekday.xlsx"],
               baseline=TIMETABLE_BASELINE)


def xlsx_million_rows(root: Path) -> Run:
    """A timetable sheet with trips down rows: a million rows, each one trip.

    Values vary as in a real sheet; a block of 10,000 rows (no ``r`` attributes, which are optional)
    is written 100 times, so it packs as real data does (about 6:1), not as a bomb.
    """
    folder = root / "tt"
    folder.mkdir()
    head = ('<row r="1">' + _cell("A1", "便") + _cell("B1", "港前") + _cell("C1", "駅前") + "</row>").encode()
    block = "".join(f"<row><c><v>{n}</v></c><c><v>{(300 + n % 997) / 1440:.6f}</v></c><c><v>{(310 + n % 997) / 1440:.6f}</v></c></row>"
                    for n in range(10_000)).encode()
    write_xlsx(folder / "weekday.xlsx", [head, Repeat(block, 100)])
    layout = "{trips: rows, stop_row: 1, first_stop_column: B, first_trip_row: 2}"
    return Run(["run", write_timetable_spec(root, folder, workbook="weekday.xlsx", layout=layout), "--date", "2026-06-01"],
               ["weekday.xlsx"], baseline=TIMETABLE_BASELINE)


def _yaml_bomb(levels: int = 9) -> str:
    """Return a flow-style YAML list whose last element expands to 9**levels 'lol's (billion laughs)."""
    out = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        out.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "[" + ", ".join(out) + "]"


def _yaml_bomb_case(key: str) -> Callable[[Path], Run]:
    def build(root: Path) -> Run:
        d = specs_dir(root)
        feed = root / "feed"
        feed.mkdir()
        for n, t in MINI_FEED.items():
            (feed / n).write_text(t, encoding="utf-8")
        values = {"name": "爆弾", "tags": "[]", "timezone": "Asia/Tokyo", key: _yaml_bomb()}
        (d / "feeds" / "yaml-bomb.yml").write_text(
            f"id: yaml-bomb\nkind: gtfs\nname: {values['name']}\nsource: {{path: {json.dumps(str(feed))}}}\n"
            f"timezone: {values['timezone']}\ntags: {values['tags']}\n", encoding="utf-8")
        return Run(["run", "yaml-bomb"], ["yaml-bomb.yml"])
    build.__doc__ = f"A feed spec whose {key} is a billion-laughs YAML alias bomb."
    return build


def trips_csv_nul(root: Path) -> Run:
    """A trip log CSV with NUL bytes in cells and a line that is only NULs."""
    folder = root / "trips"
    folder.mkdir()
    (folder / "log.csv").write_bytes("乗車日時,降車日時,運賃\n2026-04-01 08:00,2026-04-01 08:20,1200\n".encode()
                                     + b"2026-04-01 09:\x0000,2026-04-01 09:20,1\x0000\n" + b"\x00" * 1000 + b"\n"
                                     + "2026-04-01 10:00,2026-04-01 10:20,900\n".encode())
    return Run(["trips", write_trips_spec(root, folder)], ["log.csv"])


def trips_csv_mixed_encoding(root: Path) -> Run:
    """A trip log CSV whose header is UTF-8 and whose later rows are Shift_JIS (two exports pasted together)."""
    folder = root / "trips"
    folder.mkdir()
    utf8 = "乗車日時,降車日時,運賃,備考\n" + "2026-04-01 08:00,2026-04-01 08:20,1200,駅前\n" * 1000
    sjis = "2026-04-02 08:00,2026-04-02 08:20,1300,港前\n" * 1000
    (folder / "log.csv").write_bytes(utf8.encode("utf-8") + sjis.encode("cp932") + "2026-04-03 08:00,2026-04-03 08:20,5,\xe9\n".encode("latin-1"))
    return Run(["trips", write_trips_spec(root, folder)], ["log.csv"])


#: A slow server's spec: each wait 5 s, the whole download 10 s (h-fetch's source.deadline_s, default 900 s).
_SLOW = "retries: 1, timeout_s: 5, deadline_s: 10"


def _http_case(source_extra: str, doc: str) -> Callable[[Path, str], Run]:
    def build(root: Path, url: str) -> Run:
        (specs_dir(root) / "feeds" / "hostile-http.yml").write_text(
            f"id: hostile-http\nkind: gtfs\nsource: {{url: {url}, {source_extra}}}\ntimezone: Asia/Tokyo\n", encoding="utf-8")
        return Run(["run", "hostile-http", "--date", "2026-06-01"], [url.rsplit("/", 1)[0]])
    build.__doc__ = doc
    return build


def control_gtfs(root: Path) -> Run:
    """An honest small feed: must pass within the limits (proves the harness does not kill honest runs)."""
    z = write_zip(root / "honest.zip", feed_members())
    return Run(_ingest(z), ["honest"], codes=(0,))


def control_timetable(root: Path) -> Run:
    """An honest small timetable workbook: must pass within the limits."""
    folder = root / "tt"
    folder.mkdir()
    write_xlsx(folder / "weekday.xlsx", [TIMETABLE_ROWS.encode()])
    return Run(["run", write_timetable_spec(root, folder, workbook="weekday.xlsx"), "--date", "2026-06-01"], ["hostile-timetable"],
               codes=(0,), baseline=TIMETABLE_BASELINE)


CASES: list[Case] = [
    Case("control_gtfs", "control", control_gtfs),
    Case("control_timetable", "control", control_timetable),
    Case("zip_slip", "h-zip", zip_slip),
    Case("absolute_member", "h-zip", absolute_member),
    Case("symlink_member", "h-zip", symlink_member),
    Case("symlink_stops", "h-zip", symlink_stops),
    Case("folder_symlink_out", "h-fetch", folder_symlink_out),
    Case("bomb_lying_header", "h-zip", bomb_lying),
    Case("bomb_honest_3_5gib", "h-zip", bomb_honest),
    Case("bomb_nested", "h-zip", bomb_nested),
    Case("nested_feed_zip", "h-zip", nested_feed),
    Case("duplicate_members", "h-zip", duplicate_members),
    Case("encrypted_member", "h-zip", encrypted_member),
    Case("truncated_zip", "h-zip", truncated_zip),
    Case("truncated_member", "h-zip", truncated_member),
    Case("nul_bytes", "h-csvwide", nul_bytes),
    Case("utf16_members", "h-csvwide", utf16_members),
    Case("geojson_nested", "h-flex", geojson_nested),
    Case("geojson_huge", "h-flex", geojson_huge),
    Case("bad_rows_1m", "h-csvwide", bad_rows_1m),
    Case("columns_100k", "h-csvwide", columns_100k),
    Case("field_50mb", "h-csvwide", field_50mb),
    Case("xlsx_far_cell", "h-sheets", xlsx_far_cell),
    Case("xlsx_whitespace_bomb", "h-sheets", xlsx_whitespace_bomb),
    Case("xlsx_million_rows", "h-sheets", xlsx_million_rows),
    Case("trips_csv_nul", "h-sheets", trips_csv_nul),
    Case("trips_csv_mixed_encoding", "h-sheets", trips_csv_mixed_encoding),
    Case("yaml_bomb_name", "h-specs", _yaml_bomb_case("name")),
    Case("yaml_bomb_tags", "h-specs", _yaml_bomb_case("tags")),
    Case("yaml_bomb_timezone", "h-specs", _yaml_bomb_case("timezone")),
    # hostile servers: tests/hostile/http_servers.py (h-fetch), behaviour name and options in Case.http
    Case("http_500", "h-fetch", _http_case("retries: 2", "The server always answers 500."), http=("status", {"code": 500})),
    Case("http_redirect_loop", "h-fetch", _http_case("retries: 2", "The URL redirects for ever."), http=("redirect_loop", {})),
    Case("http_trickle", "h-fetch", _http_case(_SLOW, "One byte every 0.2 s: each read is quick, the download never ends."),
         http=("trickle", {"interval": 0.2, "length": 10 << 20})),
    Case("http_trickle_headers", "h-fetch", _http_case(_SLOW, "Headers that never end, one byte every 0.2 s."),
         http=("trickle_headers", {"interval": 0.2})),
    Case("http_huge_unannounced", "h-fetch", _http_case("retries: 1", "3 GiB without Content-Length, under the default 2 GiB limit."),
         http=("huge", {"size": 3 << 30, "announce": False, "chunk": 1 << 20})),
    Case("http_huge_over_limit", "h-fetch", _http_case("retries: 1, max_bytes: 50000000", "200 MB announced, source.max_bytes 50 MB."),
         http=("huge", {"size": 200 << 20, "announce": True})),
    Case("http_lying_length", "h-fetch", _http_case("retries: 1", "Content-Length says 10,000 bytes, the body is a small zip."),
         http=("lying_length", {"announced": 10_000})),
    Case("http_reset", "h-fetch", _http_case("retries: 1", "The connection is reset after 4 KB of 1 MB."), http=("reset", {})),
    Case("http_html", "h-fetch", _http_case("retries: 1", "An HTML maintenance page where a zip was expected."), http=("html", {})),
]
