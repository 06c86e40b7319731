"""Whether a GTFS text file can be exported as received: the byte and cell checks of warehouse/export.py's copy_if_verbatim.

The export writes a known file from its canonical rows unless the input's bytes are exactly what that writing gives
(then it copies the zip member's compressed bytes). The checks are made where the file is read (``plain_facts``, on the
bytes and text columns the parse holds anyway), so a big stop_times.txt is not inflated and parsed a second time by the
export; the export makes them itself when it has no facts from this process (a rerun, another machine).
"""

from __future__ import annotations

import re

from transforms.schema import Field, Table

#: Whole-value patterns (RE2) of received text that a field's text expression gives back unchanged: ``text_expr``
#: of the typed value is the received text. A field kind not listed (float, geometry) is always rendered again.
VERBATIM = {
    "time": r"^([0-9]{2}:[0-5][0-9]:[0-5][0-9])?$",  # printf('%02d:%02d:%02d'): two-digit hours, as received
    "date": r"^((19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01]))?$",  # strftime('%Y%m%d'); an invalid day stays untyped, as received
    "INTEGER": r"^(0|-?[1-9][0-9]{0,8})?$",  # CAST(int AS VARCHAR): no sign, zero or space padding; within int32
}
#: A header cell DuckDB's CSV writer never quotes (it quotes '', and values holding , " # CR or LF).
PLAIN_NAME = r"^[^#,\"\s]+$"


def verbatim_pattern(f: Field) -> str | None:
    """Return the pattern of received text that field ``f`` writes back unchanged, "" for any text (VARCHAR), None if none."""
    if f.type in ("time", "date"):
        return VERBATIM[f.type]
    if f.sql_type == "INTEGER":
        return VERBATIM["INTEGER"]
    return "" if f.sql_type == "VARCHAR" else None


def header_patterns(table: Table, header: list[str]) -> dict[str, str] | None:
    """Return {header cell: pattern} if ``header`` is exactly the order the export writes and every cell is plain and of a
    field kind that can come back as received; else None (the file is always rendered)."""
    want = [f.name for f in table.fields if f.name in header] + [h for h in dict.fromkeys(header) if table.field(h) is None]
    if want != header or not all(re.match(PLAIN_NAME, h) for h in header):
        return None
    patterns = {h: verbatim_pattern(f) if (f := table.field(h)) is not None else "" for h in header}
    return None if any(p is None for p in patterns.values()) else patterns


def plain_bytes(data: bytes, header: list[str], rows: int, *, lines_proven: bool = False) -> bool:
    """Return True if ``data`` (a whole member, valid UTF-8 without BOM) is plain: it starts with exactly the header line,
    has no quote, CR, '#' nor NUL, ends with LF and has exactly ``rows`` lines after the header (the CSV read of it has
    ``rows`` rows and skips blank lines, so none is blank): the checks of export's _copy_plain, at once.

    ``lines_proven``: the caller already knows there is no NUL, and the CSV read proved its body (after the first line)
    to hold no quote nor CR and to be one row per line with none blank (csvread's ``CsvText.one_per_line``); then only
    the header line, the last LF and '#' are looked at (one scan instead of five).
    """
    line = ",".join(header)
    if not (data.startswith((line + "\n").encode()) and data.endswith(b"\n")):
        return False
    if lines_proven:  # the proof covers the body; the header line is looked at here (its cells could hold a quote or CR)
        return '"' not in line and "\r" not in line and b"#" not in data
    return (b'"' not in data and b"\r" not in data and b"#" not in data and b"\x00" not in data
            and data.count(b"\n") == rows + 1)


def _utf8(data: bytes) -> bool:
    """Return True if ``data`` is valid UTF-8 (checked a MiB at a time: no text object of the whole file)."""
    import codecs

    if data.isascii():
        return True
    utf8 = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for at in range(0, len(data), 1 << 20):
            utf8.decode(view[at:at + (1 << 20)])
        utf8.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


#: Chunks from this many values are first tested byte by byte (_spelled_fast); smaller ones cost less through the pattern.
FAST_SPELLING_ROWS = 4096


def _spelled_fast(chunk, pattern: str) -> bool:
    """Return True if every value of the Arrow string array ``chunk`` is proven in ``pattern``'s spelling by byte tests
    (the usual columns: every time 'HH:MM:SS', integers of plain digits); False if not proven (the caller then tests
    the pattern itself, so False never means a mismatch)."""
    import numpy as np

    from transforms.csvread import string_offsets

    n = len(chunk)
    if n == 0:
        return True
    if chunk.null_count or chunk.buffers()[2] is None:
        return False
    offsets = string_offsets(chunk)
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    lengths = np.diff(offsets)
    if pattern == VERBATIM["time"]:  # only when every value has 8 bytes: digit digit ':' [0-5] digit ':' [0-5] digit
        if len(data) != 8 * n or not (lengths == 8).all():
            return False
        b = data.reshape(n, 8)
        return bool(all(((b[:, k] - 48) < 10).all() for k in (0, 1, 4, 7)) and (b[:, 2] == 58).all() and (b[:, 5] == 58).all()
                    and ((b[:, 3] - 48) < 6).all() and ((b[:, 6] - 48) < 6).all())
    if pattern == VERBATIM["INTEGER"]:  # only digits (no sign), at most 9 of them, no leading zero before another digit
        if int(lengths.max()) > 9 or not ((data - 48) < 10).all():  # uint8: a byte below '0' wraps above 9
            return False
        return not (data[(offsets[:-1] - offsets[0])[lengths > 1]] == 48).any()
    return False


def cells_match(columns: dict, patterns: dict[str, str]) -> bool:
    """Return True if every value of each typed column (Arrow string arrays, by header cell) is in its pattern's spelling.

    Each chunk is first tested byte by byte (_spelled_fast: plain times and integers, no hashing); a chunk that test does
    not prove has its distinct values tested against the pattern, as export's _count_plain does batch by batch.
    """
    import pyarrow.compute as pc

    def ok(h: str) -> bool:  # chunk by chunk: a column of distinct values (hostile) never makes a set of all of them
        return all((len(c) >= FAST_SPELLING_ROWS and _spelled_fast(c, patterns[h]))
                   or pc.all(pc.match_substring_regex(pc.unique(c), patterns[h]), min_count=0).as_py()
                   for c in getattr(columns[h], "chunks", [columns[h]]))

    typed = [h for h, p in patterns.items() if p]
    if len(typed) > 1 and min(len(columns[h]) for h in typed) >= 1 << 20:  # Arrow releases the GIL: two at a time
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            return all(pool.map(ok, typed))
    return all(ok(h) for h in typed)


def plain_facts(name: str, encoding: str, data: bytes, csvt, *, nul_free: bool = False) -> dict | None:
    """Return what the export needs to copy member ``name`` as received without reading it again ({"rows", "size",
    "crc", "patterns"}), if the bytes and cells pass copy_if_verbatim's checks; else None (the export decides itself).

    ``data`` is the member's bytes, which the caller found to be its decoded text too (nothing dropped or replaced),
    ``csvt`` the CSV read of it. The rows must be one per line with the header's cell count (none ragged, set aside or
    blank). ``nul_free``: the caller found no NUL in ``data`` (not looked for again).
    """
    from isal import isal_zlib

    from transforms.schema import load_schema

    table = load_schema().by_file(name)
    if table is None or table.profile == "geojson" or encoding != "utf-8" or csvt.refused or not csvt.header:
        return None
    if csvt.bad_rows or csvt.ragged_count or csvt.blank_lines or csvt.released_rows is not None:
        return None
    header = list(csvt.header)
    rows = csvt.table.num_rows
    patterns = header_patterns(table, header)
    proven = nul_free and csvt.one_per_line and csvt.header_line == 1
    if patterns is None or not plain_bytes(data, header, rows, lines_proven=proven) or not _utf8(data):
        return None
    if not cells_match({h: csvt.table.column(f"c{i}") for i, h in enumerate(header) if patterns[h]}, patterns):
        return None
    return {"rows": rows, "size": len(data), "crc": isal_zlib.crc32(data), "patterns": sorted(patterns.items())}
