"""GTFS / GTFS-JP adapter: read a zip or a folder into text tables."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Callable

from isal import isal_zlib

from transforms.adapters import InputError, Progress, TextFeed, TextFile
from transforms.csvread import read_csv_text
from transforms.encoding import decode
from transforms.notices import ERROR, INFO, WARNING

#: Largest uncompressed member read; larger ones are refused with a notice (zip bombs, mistakes).
MAX_MEMBER_BYTES = 4 << 30


def normalised_sha256(data: bytes) -> str:
    """Return sha256 of UTF-8 text with CRLF turned into LF and a final line end ensured."""
    h = hashlib.sha256()
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    h.update(data)
    if data and not data.endswith(b"\n"):
        h.update(b"\n")
    return h.hexdigest()


def _members(source: Path) -> dict[str, Callable[[], bytes]]:
    """Return {member path: reader} of the files in a zip or folder. If it is neither, raise InputError.

    Each reader has a ``size`` attribute (uncompressed bytes) so the biggest files can start first.
    """
    if source.is_dir():
        found = {}
        for p in sorted(source.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                found[p.relative_to(source).as_posix()] = _sized(lambda p=p: p.read_bytes(), p.stat().st_size)
        return found
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise InputError(f"{source}: not a zip file and not a folder; a GTFS feed is a .zip of .txt files") from None
    found = {}
    for info in zf.infolist():
        if info.is_dir() or PurePosixPath(info.filename).name.startswith(".") or "__MACOSX" in info.filename:
            continue
        if info.file_size > MAX_MEMBER_BYTES:
            raise InputError(f"{source}!{info.filename}: {info.file_size} bytes uncompressed, over the {MAX_MEMBER_BYTES} byte limit")
        found[info.filename] = _sized(lambda info=info: _member_bytes(source, zf, info), info.file_size)
    return found


def _member_bytes(source: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Return the bytes of one zip member. If the member is damaged, then raise InputError naming it."""
    try:
        return _inflate(zf, info)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise InputError(f"{source}!{info.filename}: this file of the zip is damaged or cannot be unpacked ({e}); "
                         "download or export the feed again") from None


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Return the bytes of one zip member, inflated with ISA-L. If it is not plain deflate, then zipfile reads it.

    ISA-L inflates about 3x faster than zlib (bench/README.md); the CRC-32 is checked as zipfile
    does, and any problem with the member falls back to zipfile so its error message is the one users see.
    """
    if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:  # stored, bzip2/lzma, encrypted
        return zf.read(info.filename)
    try:
        with open(zf.filename, "rb") as f:
            f.seek(info.header_offset)
            header = f.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                return zf.read(info.filename)
            f.seek(info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little"))
            compressed = f.read(info.compress_size)
        data = isal_zlib.decompress(compressed, wbits=-15, bufsize=max(info.file_size, 1))
    except (OSError, isal_zlib.error, ValueError):
        return zf.read(info.filename)
    if len(data) != info.file_size or isal_zlib.crc32(data) != info.CRC:
        return zf.read(info.filename)  # raises zipfile's own 'Bad CRC-32' / size error
    return data


def _sized(reader: Callable[[], bytes], size: int) -> Callable[[], bytes]:
    reader.size = size  # type: ignore[attr-defined]
    return reader


def _load(name: str, read: Callable[[], bytes], encoding: str | None):
    """Return (decoded text, CSV table, normalised sha256, first NUL line or None) of one member.

    Runs in a worker thread: unzip, decoding checks, hashing and pyarrow's CSV reader release
    the GIL, so a big stop_times.txt is read while the other files are.
    """
    raw = read()
    dec = decode(raw, file=name, override=encoding)
    del raw
    nul = None
    if b"\x00" in dec.data:
        nul = dec.data.count(b"\n", 0, dec.data.find(b"\x00")) + 1
    return dec, read_csv_text(dec.data), normalised_sha256(dec.data), nul


#: Files read at once; two suits the 2-core machines this runs on, more only costs memory.
READ_THREADS = 2


class GtfsAdapter:
    kind = "gtfs"

    def read(self, source: Path, *, encoding: str | None = None, progress: Progress | None = None) -> TextFeed:
        """Return the feed at ``source`` (zip or folder) as text tables.

        If files sit in a single sub-folder, then they are read from there with a notice.
        Files that are not CSV text are kept as received.
        """
        feed = TextFeed()
        members = _members(Path(source))
        if not members:
            raise InputError(f"{source}: the feed is empty (no files)")
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
            members = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in members.items()}
        texts = []
        for name in sorted(members):
            read = members[name]
            if "/" in name:
                feed.findings.add("unknown_file", INFO, f"file '{name}' in a sub-folder is not part of GTFS; kept as received", file=name)
                feed.other_files[name] = read()
            elif not name.lower().endswith(".txt"):
                feed.findings.add("unknown_file", INFO, f"file '{name}' is not a GTFS text file; kept as received", file=name)
                feed.other_files[name] = read()
            else:
                texts.append(name)
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            futures = {}
            for name in sorted(texts, key=lambda n: -getattr(members[n], "size", 0)):
                futures[name] = pool.submit(_load, name, members[name], encoding)
            for name in texts:
                if progress:
                    progress(f"reading {name}")
                dec, csvt, sha, nul = futures.pop(name).result()
                feed.findings.notices.extend(dec.notices)
                feed.findings.counts.update((n.code, n.severity) for n in dec.notices)
                if nul is not None:
                    feed.findings.add("invalid_character", ERROR, "file contains NUL bytes (\\0); they are not allowed in GTFS text", file=name, line=nul)
                self._add_text(feed, name, dec, csvt, sha)
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
