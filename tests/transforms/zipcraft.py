"""Test helpers that GENERATE hostile zips byte by byte: lying sizes, odd names, flags zipfile will not write."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from isal import isal_zlib


@dataclass
class Raw:
    """One member exactly as it goes into the zip: name bytes, sizes and CRC as declared, data as stored."""

    name: bytes
    data: Iterable[bytes] | bytes
    compress_size: int
    file_size: int
    crc: int
    method: int = 8
    flags: int = 0x800  # names are UTF-8
    external_attr: int = 0
    create_system: int = 3


def raw_zip(path: Path, members: list[Raw]) -> Path:
    """Return ``path`` after writing ``members`` as a zip, headers exactly as given (no ZIP64: sizes < 4 GiB)."""
    central = []
    with path.open("wb") as f:
        for m in members:
            offset = f.tell()
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, m.flags, m.method, 0, 0x21,
                                m.crc, m.compress_size, m.file_size, len(m.name), 0) + m.name)
            for chunk in ([m.data] if isinstance(m.data, bytes) else m.data):
                f.write(chunk)
            central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", (m.create_system << 8) | 20, 20, m.flags, m.method, 0, 0x21,
                                       m.crc, m.compress_size, m.file_size, len(m.name), 0, 0, 0, 0, m.external_attr, offset) + m.name)
        start = f.tell()
        for c in central:
            f.write(c)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), f.tell() - start, start, 0))
    return path


def deflated(data: bytes) -> bytes:
    """Return ``data`` as a raw deflate stream."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    packed = c.compress(data) + c.flush()
    return packed


def member(name: str | bytes, data: bytes, **kw) -> Raw:
    """Return an honest deflated member (correct sizes and CRC), its fields overridable by ``kw``."""
    packed = deflated(data)
    fields = dict(name=name.encode() if isinstance(name, str) else name, data=packed, compress_size=len(packed),
                  file_size=len(data), crc=zlib.crc32(data))
    return Raw(**{**fields, **kw})


CHUNK = 64 << 20


def zeros_deflated(n_chunks: int) -> tuple[list[bytes], int, int]:
    """Return (deflate stream as chunks, its length, CRC-32) of ``n_chunks`` × 64 MiB of zero bytes, made in a second.

    Each chunk ends with a full flush, so one compressed chunk repeated is a valid stream.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(CHUNK)) + c.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc, zero = 0, bytes(CHUNK)
    for _ in range(n_chunks):
        crc = isal_zlib.crc32(zero, crc)
    return [block] * n_chunks + [end], len(block) * n_chunks + len(end), crc
