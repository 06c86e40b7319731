"""Decode the bytes of a text file to UTF-8, saying what was done.

Feeds arrive as UTF-8, UTF-8 with a BOM, Shift_JIS/CP932, UTF-16, and UTF-8 with stray
Latin-1 bytes. Nothing is decoded silently: every conversion other than plain UTF-8
produces a notice.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from transforms.notices import ERROR, INFO, WARNING, Notice

UTF8_BOM = codecs.BOM_UTF8
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff9f]")
_PRIVATE_USE = re.compile(r"[\ue000-\uf8ff]")
#: Names accepted as Shift_JIS; Python's cp932 is the superset Windows actually writes.
SHIFT_JIS_NAMES = {"shift_jis", "shift-jis", "sjis", "cp932", "ms932", "windows-31j", "s_jis"}


@dataclass
class Decoded:
    """UTF-8 bytes of a file, without BOM, and how they were obtained."""

    data: bytes
    encoding: str  # utf-8 | utf-8-sig | cp932 | utf-16 | <override> | utf-8+latin-1
    notices: list[Notice] = field(default_factory=list)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _looks_japanese(text: str) -> bool:
    if _PRIVATE_USE.search(text):
        return False
    return _JAPANESE.search(text) is not None


def _utf16_without_bom(raw: bytes) -> str | None:
    """Return 'utf-16-le' or 'utf-16-be' if ``raw`` starts as UTF-16 ASCII text without a BOM, else None.

    A GTFS file starts with its ASCII header, so in UTF-16 every other byte of its first 32
    characters is NUL and the bytes between are not.
    """
    head = raw[:64]
    if len(head) < 8 or len(head) % 2 or b"\x00" not in head:
        return None
    even, odd = head[0::2], head[1::2]
    if not odd.strip(b"\x00") and b"\x00" not in even:
        return "utf-16-le"
    if not even.strip(b"\x00") and b"\x00" not in odd:
        return "utf-16-be"
    return None


def decode(raw: bytes, *, file: str, override: str | None = None) -> Decoded:
    """Return the file's text as UTF-8 bytes without BOM.

    If ``override`` names an encoding, then it is used (undecodable bytes are replaced and
    reported). Otherwise UTF-8 is tried first, then CP932 when the result is plausible
    Japanese, then UTF-8 with invalid bytes read as Latin-1, each with a notice.
    """
    if raw.startswith(UTF8_BOM):
        body = raw[len(UTF8_BOM):]
        if override is None or override.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig"):
            try:
                if not body.isascii():
                    body.decode("utf-8")
                return Decoded(body, "utf-8-sig")
            except UnicodeDecodeError:
                pass  # fall through to the lenient path below, keeping the BOM stripped
        raw = body
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = raw.decode("utf-16", errors="replace")
        return Decoded(
            text.encode("utf-8"),
            "utf-16",
            [Notice("non_utf8_encoding", WARNING, "file is UTF-16; GTFS requires UTF-8. It was converted.", file=file)],
        )
    bare16 = None if override else _utf16_without_bom(raw)
    if bare16:
        return Decoded(
            raw.decode(bare16, errors="replace").encode("utf-8"),
            "utf-16",
            [Notice("non_utf8_encoding", WARNING, "file is UTF-16 without a byte order mark; GTFS requires UTF-8. It was converted.", file=file)],
        )
    if override:
        enc = "cp932" if override.lower() in SHIFT_JIS_NAMES else override
        try:
            return Decoded(raw.decode(enc).encode("utf-8"), enc)
        except LookupError:
            return Decoded(raw, "utf-8", [Notice("unknown_encoding", ERROR, f"encoding '{override}' in the feed spec is not known; read as UTF-8", file=file)])
        except UnicodeDecodeError as exc:
            text = raw.decode(enc, errors="replace")
            return Decoded(
                text.encode("utf-8"),
                enc,
                [Notice("invalid_character", ERROR, f"bytes not valid in the declared encoding {override} were replaced with U+FFFD",
                        file=file, line=_line_of(raw, exc.start), value=raw[exc.start:exc.end + 8].hex(" "))],
            )
    if raw.isascii():  # much faster than a full UTF-8 decode, and the common case
        return Decoded(raw, "utf-8")
    try:
        raw.decode("utf-8")
        return Decoded(raw, "utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp932")
        if _looks_japanese(text):
            return Decoded(
                text.encode("utf-8"),
                "cp932",
                [Notice("non_utf8_encoding", INFO, "file is Shift_JIS (CP932); it was converted to UTF-8", file=file)],
            )
    except UnicodeDecodeError:
        pass
    return _lenient_utf8(raw, file)


def _lenient_utf8(raw: bytes, file: str) -> Decoded:
    """Return UTF-8 with each invalid byte read as Latin-1, and one notice per affected line."""
    bad_lines: dict[int, str] = {}

    def handler(exc: UnicodeDecodeError):
        chunk = exc.object[exc.start:exc.end]
        line = _line_of(exc.object, exc.start)
        if line not in bad_lines:
            lo = max(exc.object.rfind(b"\n", 0, exc.start) + 1, exc.start - 30)
            bad_lines[line] = exc.object[lo:exc.end + 20].split(b"\n")[0].decode("utf-8", "replace")
        return chunk.decode("latin-1"), exc.end

    codecs.register_error("noriba_latin1", handler)
    text = raw.decode("utf-8", errors="noriba_latin1")
    notices = [
        Notice(
            "non_utf8_bytes",
            WARNING,
            "bytes that are not valid UTF-8 were read as Latin-1 (ISO-8859-1); check the text and save the file as UTF-8",
            file=file,
            line=line,
            value=context.replace("\ufffd", "?"),
        )
        for line, context in sorted(bad_lines.items())[:1000]
    ]
    if len(bad_lines) > 1000:
        notices.append(Notice("non_utf8_bytes", WARNING, f"{len(bad_lines) - 1000} more lines with non-UTF-8 bytes", file=file))
    return Decoded(text.encode("utf-8"), "utf-8+latin-1", notices)
