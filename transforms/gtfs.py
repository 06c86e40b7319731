"""GTFS / GTFS-JP adapter: read a zip or a folder into text tables."""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import struct
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Callable

from isal import isal_zlib

from transforms.adapters import InputError, Progress, TextFeed, TextFile
from transforms.csvread import read_csv_text
from transforms.encoding import decode
from transforms.notices import ERROR, INFO, WARNING, Findings
from transforms.verbatim import plain_facts
from transforms.paths import folder_files, shown, unsafe_reason

#: Largest file of a feed read, unpacked; larger ones are refused (zip bombs, mistakes). NORIBA_MAX_FILE_BYTES sets it.
MAX_MEMBER_BYTES = 4 << 30
#: Highest ratio of unpacked to packed bytes accepted for a zip member (and for the whole zip); NORIBA_MAX_ZIP_RATIO
#: sets it. The 1,800 members of the 130 real zips in ../shared/data/gtfs pack at most 22.8:1 (trips.txt, fare_rules.txt);
#: deflate reaches 1032:1 on repeated bytes, the shape of a zip bomb.
MAX_ZIP_RATIO = 200
#: Members smaller than this are not held to the ratio: tiny files pack oddly and cannot exhaust memory.
RATIO_FLOOR_BYTES = 1 << 20
#: Most files a feed's zip may hold (real feeds: a few dozen), and most bytes its table of contents may take;
#: both are checked before zipfile lists the members (each costs ~0.5 KB of memory).
MAX_ZIP_FILES = 10_000
MAX_DIRECTORY_BYTES = 4 << 20
#: The methods read: stored, deflate, bzip2, lzma (what zipfile writes); others are refused by name.
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}
_LINK = 0o120000  # S_IFLNK in a member's unix mode (the high 16 bits of external_attr)


def normalised_sha256(data: bytes) -> str:
    """Return sha256 of UTF-8 text with CRLF turned into LF and a final line end ensured."""
    h = hashlib.sha256()
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    h.update(data)
    if data and not data.endswith(b"\n"):
        h.update(b"\n")
    return h.hexdigest()


def limits() -> tuple[int, float]:
    """Return (largest file in bytes, highest packing ratio), from NORIBA_MAX_FILE_BYTES and NORIBA_MAX_ZIP_RATIO if set.

    If either is set to something other than a positive number, then raise InputError saying so.
    """
    out = []
    for var, default in (("NORIBA_MAX_FILE_BYTES", MAX_MEMBER_BYTES), ("NORIBA_MAX_ZIP_RATIO", MAX_ZIP_RATIO)):
        text = os.environ.get(var, "").strip()
        try:
            value = float(text) if text else default
        except ValueError:
            value = -1
        if not 0 < value < float("inf"):  # NaN fails too
            raise InputError(f"{var}={text!r} is not a positive number; unset it or write e.g. {var}={default}")
        out.append(value)
    return int(out[0]), out[1]


def _members(source: Path, *, findings: Findings | None = None) -> dict[str, Callable[[], bytes]]:
    """Return {member path: reader} of the files in a zip or folder. If it is neither, raise InputError.

    Each reader has a ``size`` attribute (uncompressed bytes) so the biggest files can start first.
    Members that cannot be files here (names leading out of the folder, links, devices) are left
    out with a notice in ``findings``; members too big or packed too tightly raise InputError.
    """
    findings = findings if findings is not None else Findings()
    max_bytes, max_ratio = limits()
    if source.is_dir():
        files, refused = folder_files(source)
        for name, why in refused:
            code = "unsafe_file_name" if unsafe_reason(name) else "special_file"
            findings.add(code, ERROR, f"'{shown(name)}' was not read: {why}; put the file itself in the feed's folder", file=shown(name))
        found = {}
        for name, p in files.items():
            size = p.stat().st_size
            if size > max_bytes:
                raise InputError(f"{source}/{name}: {size:,} bytes, over the limit of {max_bytes:,} for one file; "
                                 f"if the file is genuine, set NORIBA_MAX_FILE_BYTES higher",
                                 ja=f"{source}/{name}: {size:,} バイトあり、1ファイルの上限 {max_bytes:,} バイトを超えています。"
                                    "正しいファイルであれば、NORIBA_MAX_FILE_BYTES を大きくしてください")
            found[name] = _sized(lambda p=p: p.read_bytes(), size)
        return found
    if not source.exists():
        raise InputError(f"{source}: no such file or folder", ja=f"{source}: ファイルまたはフォルダがありません")
    try:
        _check_directory(source)
        zf = zipfile.ZipFile(source)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, OverflowError, NotImplementedError, struct.error) as e:
        raise _not_a_zip(source, e) from None
    if len(infos) > MAX_ZIP_FILES:
        raise _too_many(source, len(infos))
    found = {}
    copies: Counter = Counter()
    unpacked = packed = 0
    for info in infos:
        name = info.orig_filename  # zipfile cuts filename at a NUL; the name as written is what is checked
        why = unsafe_reason(name)
        if why:
            findings.add("unsafe_file_name", ERROR, f"file '{shown(name)}' of the zip was not read: {why}; "
                         "a feed's files must stay inside its folder: rename it in the zip or remove it", file=shown(name))
            continue
        if info.is_dir() or PurePosixPath(name).name.startswith(".") or "__MACOSX" in name:
            continue
        if (info.external_attr >> 16) & 0o170000 == _LINK:
            findings.add("special_file", ERROR, f"file '{name}' of the zip is a symbolic link, not a file; it was not read; "
                         "put the file itself in the zip", file=name)
            continue
        _check_size(source, info, max_bytes, max_ratio)
        unpacked, packed = unpacked + info.file_size, packed + info.compress_size
        copies[name] += 1
        found[name] = _sized(lambda info=info: _member_bytes(source, zf, info), info.file_size)
    for name, n in copies.items():
        if n > 1:
            findings.add("duplicate_file", ERROR, f"the zip holds {n} files named '{name}'; only the last one was read; "
                         "remove the others from the zip", file=name)
    if unpacked > RATIO_FLOOR_BYTES and unpacked > max_ratio * packed:
        raise InputError(f"{source}: its files unpack to {unpacked:,} bytes from {packed:,} ({unpacked / max(packed, 1):,.0f}:1); "
                         f"real feeds pack at most about 25:1, so the zip is refused as a possible zip bomb; "
                         f"if you trust it, set NORIBA_MAX_ZIP_RATIO higher (now {max_ratio:g})",
                         ja=f"{source}: {packed:,} バイトから {unpacked:,} バイトに展開されます（{unpacked / max(packed, 1):,.0f}:1）。"
                            "実際のフィードの圧縮率はおよそ 25:1 までなので、zip 爆弾の疑いがあるとして受け付けませんでした。"
                            f"信頼できるファイルであれば、NORIBA_MAX_ZIP_RATIO を大きくしてください（現在 {max_ratio:g}）")
    return found


def _too_many(source: Path, n: int) -> InputError:
    """Return the error for a zip that holds ``n`` files, too many."""
    return InputError(f"{source}: the zip holds {n:,} files; a feed has a few dozen, and more than {MAX_ZIP_FILES:,} are refused "
            "(a zip made to exhaust memory); zip the feed's files alone",
            ja=f"{source}: zip に {n:,} 個のファイルがあります。フィードのファイルは数十個で、{MAX_ZIP_FILES:,} 個を超える zip は"
            "（メモリを使い果たさせる zip として）受け付けません。フィードのファイルだけを zip にしてください")


def _check_directory(source: Path) -> None:
    """Raise InputError if the zip's end record declares more files or a bigger table of contents than allowed.

    The record is found as zipfile finds it (the last end signature in the final 64 KiB, then the ZIP64
    record it points to); if there is none, zipfile's own error follows.
    """
    with source.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return
        _sig, _d, _dcd, _n_disk, entries, cd_bytes, _off, _c = struct.unpack("<4s4H2LH", tail[at:at + 22])
        loc = tail[at - 20:at] if at >= 20 else b""
        if loc[:4] == b"PK\x06\x07":
            f.seek(struct.unpack("<Q", loc[8:16])[0])
            rec = f.read(56)
            if len(rec) == 56 and rec[:4] == b"PK\x06\x06":
                entries, cd_bytes = struct.unpack("<2Q", rec[32:48])
    if entries > MAX_ZIP_FILES:
        raise _too_many(source, entries)
    if cd_bytes > MAX_DIRECTORY_BYTES:
        raise InputError(f"{source}: the zip's table of contents takes {cd_bytes:,} bytes; a feed's takes a few thousand, and "
                         f"more than {MAX_DIRECTORY_BYTES:,} are refused (a zip made to exhaust memory); zip the feed's files alone",
                         ja=f"{source}: zip の目次が {cd_bytes:,} バイトあります。フィードの目次は数千バイトで、{MAX_DIRECTORY_BYTES:,} バイトを"
                            "超える zip は（メモリを使い果たさせる zip として）受け付けません。フィードのファイルだけを zip にしてください")


def _not_a_zip(source: Path, e: Exception) -> InputError:
    """Return the one-line error for a file zipfile cannot open: a damaged or cut-off zip, or not a zip at all."""
    with source.open("rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04" or head == b"PK\x05\x06":
        return InputError(f"{source}: the zip is incomplete or damaged ({shown(str(e))}); it may have been cut off while downloading: "
                          "download or export the feed again",
                          ja=f"{source}: zip が途中までしかないか壊れています（{shown(str(e))}）。ダウンロードの途中で切れた可能性があります。"
                             + _AGAIN_JA)
    return InputError(f"{source}: not a zip file and not a folder; a GTFS feed is a .zip of .txt files",
                      ja=f"{source}: zip ファイルでもフォルダでもありません。GTFS フィードは .txt ファイルをまとめた .zip です")


def _check_size(source: Path, info: zipfile.ZipInfo, max_bytes: int, max_ratio: float) -> None:
    """Raise InputError if a member declares more bytes than the limit, or packs more tightly than ``max_ratio``."""
    if info.file_size > max_bytes:
        raise InputError(f"{source}!{shown(info.orig_filename)}: {info.file_size:,} bytes unpacked, over the limit of {max_bytes:,} "
                         f"for one file; if the file is genuine, set NORIBA_MAX_FILE_BYTES higher",
                         ja=f"{source}!{shown(info.orig_filename)}: 展開すると {info.file_size:,} バイトになり、1ファイルの上限 "
                            f"{max_bytes:,} バイトを超えます。正しいファイルであれば、NORIBA_MAX_FILE_BYTES を大きくしてください")
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > max_ratio * info.compress_size:
        raise InputError(f"{source}!{shown(info.orig_filename)}: {info.file_size:,} bytes packed into {info.compress_size:,} "
                         f"({info.file_size / max(info.compress_size, 1):,.0f}:1); real feeds pack at most about 25:1, so the zip "
                         f"is refused as a possible zip bomb; if you trust it, set NORIBA_MAX_ZIP_RATIO higher (now {max_ratio:g})",
                         ja=f"{source}!{shown(info.orig_filename)}: {info.compress_size:,} バイトから {info.file_size:,} バイトに展開されます"
                            f"（{info.file_size / max(info.compress_size, 1):,.0f}:1）。実際のフィードの圧縮率はおよそ 25:1 までなので、"
                            "zip 爆弾の疑いがあるとして受け付けませんでした。信頼できるファイルであれば、"
                            f"NORIBA_MAX_ZIP_RATIO を大きくしてください（現在 {max_ratio:g}）")


#: What to do about a damaged zip, in Japanese (the English messages say "download or export the feed again").
_AGAIN_JA = "フィードをもう一度ダウンロードするか、書き出し直してください"


class _Unreadable(Exception):
    """One member cannot be read; the message says why and what to do (without the member's name), ``ja`` in Japanese."""

    def __init__(self, message: str, ja: str):
        super().__init__(message)
        self.ja = ja


def _member_bytes(source: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Return the bytes of one zip member. If it cannot be read, then raise InputError naming it."""
    try:
        return _inflate(zf, info)
    except _Unreadable as e:
        raise InputError(f"{source}!{shown(info.orig_filename)}: {e}", ja=f"{source}!{shown(info.orig_filename)}: {e.ja}") from None
    except (OSError, EOFError, ValueError, zlib.error, isal_zlib.error, lzma.LZMAError) as e:
        raise InputError(f"{source}!{shown(info.orig_filename)}: this file of the zip is damaged or cannot be unpacked ({shown(str(e))}); "
                         "download or export the feed again",
                         ja=f"{source}!{shown(info.orig_filename)}: zip のこのファイルは壊れているか展開できません（{shown(str(e))}）。"
                            + _AGAIN_JA) from None


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Return the bytes of one zip member, never unpacking more than it declares.

    Deflate is inflated with ISA-L, about 3x faster than zlib (bench/README.md). Every method is
    unpacked with a limit of the declared size plus one byte, so a member that unpacks to more
    (a lying header: a zip bomb) is refused having cost that much memory, no more; the size and
    CRC-32 are then checked as zipfile does.
    """
    if info.flag_bits & 0x1:
        raise _Unreadable("this file of the zip is encrypted (password-protected); Noriba does not read encrypted zips: "
                          "send the feed without a password",
                          "zip のこのファイルは暗号化（パスワード保護）されています。Noriba は暗号化された zip を読みません。"
                          "パスワードなしでフィードを送ってください")
    if info.compress_type not in _METHODS:
        raise _Unreadable(f"this file of the zip is packed with compression method {info.compress_type}, which Noriba does "
                          "not read; zip the feed again with the usual method (deflate)",
                          f"zip のこのファイルは Noriba が読めない圧縮方式（{info.compress_type}）で圧縮されています。"
                          "通常の方式（deflate）で zip にし直してください")
    with open(zf.filename, "rb") as f:
        end = f.seek(0, 2)
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise _Unreadable("this file of the zip is damaged (its header is missing); download or export the feed again",
                              "zip のこのファイルは壊れています（ヘッダーがありません）。" + _AGAIN_JA)
        start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
        if start + info.compress_size > end:
            raise _Unreadable("this file of the zip is cut off (the zip is incomplete); download or export the feed again",
                              "zip のこのファイルは途中で切れています（zip が不完全です）。" + _AGAIN_JA)
        f.seek(start)
        packed = f.read(info.compress_size)
    limit = info.file_size + 1
    if info.compress_type == zipfile.ZIP_DEFLATED:
        data = isal_zlib.decompressobj(-15).decompress(packed, limit)
    elif info.compress_type == zipfile.ZIP_BZIP2:
        data = bz2.BZ2Decompressor().decompress(packed, limit)
    elif info.compress_type == zipfile.ZIP_LZMA:
        data = _unlzma(packed, limit)
    else:
        data = packed[:limit]
    del packed
    if len(data) > info.file_size:
        raise _Unreadable(f"this file of the zip unpacks to more than the {info.file_size:,} bytes its header declares; the zip "
                          "is damaged or built to exhaust memory (a zip bomb), so it was not read; download or export the feed again",
                          f"zip のこのファイルはヘッダーに書かれた {info.file_size:,} バイトより大きく展開されます。zip が壊れているか、"
                          "メモリを使い果たさせるための zip（zip 爆弾）なので読みませんでした。" + _AGAIN_JA)
    if len(data) != info.file_size:
        raise _Unreadable(f"this file of the zip is damaged: it unpacks to {len(data):,} bytes, not the {info.file_size:,} its "
                          "header declares; download or export the feed again",
                          f"zip のこのファイルは壊れています。展開すると {len(data):,} バイトで、ヘッダーに書かれた {info.file_size:,} "
                          "バイトと合いません。" + _AGAIN_JA)
    if isal_zlib.crc32(data) != info.CRC:
        raise _Unreadable("this file of the zip is damaged (Bad CRC-32: its contents do not match its checksum); "
                          "download or export the feed again",
                          "zip のこのファイルは壊れています（CRC-32 不一致：中身がチェックサムと合いません）。" + _AGAIN_JA)
    return data


def _unlzma(packed: bytes, limit: int) -> bytes:
    """Return up to ``limit`` bytes unpacked from a zip LZMA member (version, properties, then a raw LZMA1 stream)."""
    if len(packed) < 9:
        raise _Unreadable("this file of the zip is damaged (its LZMA header is cut off); download or export the feed again",
                          "zip のこのファイルは壊れています（LZMA ヘッダーが途中で切れています）。" + _AGAIN_JA)
    size = int.from_bytes(packed[2:4], "little")
    props = packed[4:4 + size]
    if size != 5 or len(props) != 5 or props[0] >= 9 * 5 * 5:
        raise _Unreadable("this file of the zip is damaged (its LZMA header is not valid); download or export the feed again")
    pb, rest = divmod(props[0], 45)
    lp, lc = divmod(rest, 9)
    lzma1 = {"id": lzma.FILTER_LZMA1, "dict_size": int.from_bytes(props[1:5], "little"), "lc": lc, "lp": lp, "pb": pb}
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1]).decompress(packed[4 + size:], limit)


def _sized(reader: Callable[[], bytes], size: int) -> Callable[[], bytes]:
    reader.size = size  # type: ignore[attr-defined]
    return reader


def _load(name: str, read: Callable[[], bytes], encoding: str | None, facts: bool = True):
    """Return (decoded text, CSV table, normalised sha256, first NUL line or None, plain_facts or None) of one member.

    Runs in a worker thread: unzip, decoding checks, hashing and pyarrow's CSV reader release
    the GIL, so a big stop_times.txt is read while the other files are.
    """
    raw = read()
    dec = decode(raw, file=name, override=encoding)
    as_read = dec.data is raw or dec.data == raw  # the text is the member's bytes (no BOM dropped, nothing replaced)
    del raw
    nul = None
    if b"\x00" in dec.data:
        nul = dec.data.count(b"\n", 0, dec.data.find(b"\x00")) + 1
    csvt = read_csv_text(dec.data)
    plain = (plain_facts(name, dec.encoding, dec.data, csvt, nul_free=nul is None)
             if facts and as_read and name == PurePosixPath(name).name else None)
    return dec, csvt, normalised_sha256(dec.data), nul, plain


#: Files read at once; two suits the 2-core machines this runs on, more only costs memory.
READ_THREADS = 2


class GtfsAdapter:
    kind = "gtfs"
    #: False: the members' plain facts (transforms.verbatim) are not made: no export follows (`noriba validate`)
    plain_facts = True

    def read(self, source: Path, *, encoding: str | None = None, progress: Progress | None = None) -> TextFeed:
        """Return the feed at ``source`` (zip or folder) as text tables.

        If files sit in a single sub-folder, then they are read from there with a notice.
        Files that are not CSV text are kept as received.
        """
        feed = TextFeed()
        members = _members(Path(source), findings=feed.findings)
        if not members:
            raise InputError(f"{source}: the feed is empty (no files)", ja=f"{source}: フィードが空です（ファイルがありません）")
        txt = {k: v for k, v in members.items() if k.lower().endswith(".txt")}
        folders = {str(PurePosixPath(k).parent) for k in txt}
        if "." not in folders and len(folders) == 1:
            sub = folders.pop()
            feed.findings.add(
                "invalid_input_files_in_subfolder", ERROR,
                f"the feed's files are inside the folder '{sub}/' of the zip; they must be at its top level",
                file=sub,
            )
            prefix = sub + "/"
            # a file of the sub-folder keeps its full name if one of that name is already at the top level
            members = {(k[len(prefix):] if k.startswith(prefix) and k[len(prefix):] not in members else k): v
                       for k, v in members.items()}
        texts = []
        for name in sorted(members):
            read = members[name]
            if "/" in name or not name.lower().endswith(".txt"):
                data = feed.other_files[name] = read()
                if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
                    feed.findings.add("nested_zip", WARNING, f"file '{name}' is a zip inside the feed's zip; it was kept as received "
                                      "but not read; if it holds the feed, send that zip itself, or put its files at the top "
                                      "level of one zip", file=name)
                elif name == "locations.geojson":
                    pass  # GTFS-Flex zones: read by transforms/canonical.py (transforms/flex/geojson.py), blob kept as received
                elif "/" in name:
                    feed.findings.add("unknown_file", INFO, f"file '{name}' in a sub-folder is not part of GTFS; kept as received", file=name)
                else:
                    feed.findings.add("unknown_file", INFO, f"file '{name}' is not a GTFS text file; kept as received", file=name)
            else:
                texts.append(name)
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            futures = {}
            for name in sorted(texts, key=lambda n: -getattr(members[n], "size", 0)):
                futures[name] = pool.submit(_load, name, members[name], encoding, self.plain_facts)
            try:
                for name in texts:
                    if progress:
                        progress(f"reading {name}")
                    dec, csvt, sha, nul, facts = futures.pop(name).result()
                    feed.findings.notices.extend(dec.notices)
                    feed.findings.counts.update((n.code, n.severity) for n in dec.notices)
                    if nul is not None:
                        feed.findings.add("invalid_character", ERROR, "file contains NUL bytes (\\0); they are not allowed in GTFS text", file=name, line=nul)
                    self._add_text(feed, name, dec, csvt, sha)
                    feed.files[name].verbatim = facts
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # a file refused ends the read: the others are not started
                raise
        encodings = {f.encoding for f in feed.files.values()}
        if {"utf-8", "utf-8-sig"} <= encodings:
            with_bom = sorted(n for n, f in feed.files.items() if f.encoding == "utf-8-sig")
            feed.findings.add(
                "mixed_bom", INFO,
                f"some files start with a UTF-8 byte order mark and others do not ({', '.join(with_bom)} do); both were read",
            )
        return feed

    @staticmethod
    def _add_text(feed: TextFeed, name: str, dec, csvt, sha: str) -> None:
        if not csvt.header and not csvt.refused:
            feed.findings.add("empty_file", ERROR, "file is empty: it has no header line", file=name)
        feed.files[name] = TextFile(name=name, csv=csvt, encoding=dec.encoding, content_sha256=sha)
        if csvt.blank_lines:
            feed.findings.add("empty_row", WARNING, f"{csvt.blank_lines} blank line(s) skipped", file=name)
        csvt.report(feed.findings, name)  # refused file, ragged and bad rows: notices (sampled) and quarantine
