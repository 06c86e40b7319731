"""Read .xlsx workbooks as hostile input: bounded zip parts, streamed sheet XML, limits on rows, columns and cells.

An .xlsx is a zip of XML parts. Each part is checked before it is inflated (compression method,
uncompressed size, compression ratio); zipfile itself stops a part at its declared size and
checks its CRC, so a part cannot inflate past what the check saw. Sheet XML is read with expat
in 1 MB pieces: only cell values are kept, so whitespace or unknown elements cost no memory, and
a cell's text is bounded by Excel's own 32,767 characters. Cells arrive sparse (only those
present); callers bound the grid they build by the cells that exist, never by the sheet's
``dimension`` element. Values are converted as openpyxl does with ``data_only=True``.

Limits come from the environment (``NORIBA_SHEET_MAX_*``, see :class:`SheetLimits`); every refusal
is an InputError naming the file, the sheet and the limit, and how to raise it.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from xml.parsers import expat

from transforms.adapters import InputError

#: Excel's own bounds: a cell holds at most 32,767 characters; a sheet has 1,048,576 rows and 16,384 columns.
EXCEL_CELL_CHARS = 32_767
EXCEL_ROWS = 1_048_576
EXCEL_COLUMNS = 16_384
#: Structural bounds no real workbook reaches (Excel allows 64,000 cell formats).
MAX_PARTS = 10_000
MAX_STYLES = 100_000
MAX_SHEETS = 1_000
_CHUNK = 1 << 20
_CELL_REF = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")


@dataclass(frozen=True)
class SheetLimits:
    """Bounds on one workbook. Each can be raised with its environment variable (``env`` names them)."""

    rows: int = EXCEL_ROWS  # rows of one sheet (the last row holding a value)
    columns: int = EXCEL_COLUMNS  # columns of one sheet (the last column holding a value)
    cells: int = 10_000_000  # cells of the grid or table built from the workbook, all sheets read together
    xml_bytes: int = 512 << 20  # uncompressed bytes of one XML part (a sheet, the shared strings)
    ratio: int = 200  # uncompressed / compressed size of a part, checked for parts over 16 MB

    env = {"rows": "NORIBA_SHEET_MAX_ROWS", "columns": "NORIBA_SHEET_MAX_COLUMNS", "cells": "NORIBA_SHEET_MAX_CELLS",
           "xml_bytes": "NORIBA_SHEET_MAX_XML_BYTES", "ratio": "NORIBA_SHEET_MAX_RATIO"}

    @classmethod
    def from_env(cls) -> "SheetLimits":
        """Return the defaults, each replaced by its environment variable when that is set to a whole number."""
        values = {}
        for name, var in cls.env.items():
            raw = os.environ.get(var, "").replace("_", "").strip()
            if raw:
                if not raw.isdigit() or int(raw) < 1:
                    raise InputError(f"{var}={os.environ[var]!r}: must be a whole number of 1 or more")
                values[name] = int(raw)
        return cls(**values)

    def refuse(self, where: str, what: str, name: str, *, fix: str = "") -> InputError:
        """Return the one-line error for ``what`` being over the limit ``name``: what to do (``fix``), and how to raise the limit."""
        unit = {"xml_bytes": "bytes", "ratio": "times"}.get(name, name)
        return InputError(f"{where}: {what}, over the limit of {getattr(self, name):,} {unit}; {fix + ', or ' if fix else ''}"
                          f"if the workbook is genuine, set the environment variable {self.env[name]} to a higher number")


@dataclass(frozen=True)
class TimetableLimits(SheetLimits):
    """Bounds on a timetable workbook: a timetable is stops by trips, so a sheet of 100,000 rows or a workbook
    of a million cells is not one (a trip file in a workbook is read with SheetLimits instead)."""

    rows: int = 100_000
    cells: int = 1_000_000

    env = {**SheetLimits.env, "rows": "NORIBA_TIMETABLE_MAX_ROWS", "cells": "NORIBA_TIMETABLE_MAX_CELLS"}


def column_letters(col: int) -> str:
    """Return the Excel letters of 0-based column ``col``."""
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _column(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _attr(attrs: dict[str, str], local: str) -> str | None:
    """Return the attribute named ``local`` whatever its namespace prefix (``r:id``), or None."""
    if local in attrs:
        return attrs[local]
    for k, v in attrs.items():
        if _local(k) == local:
            return v
    return None


def _parser(where: str) -> expat.XMLParserType:
    """Return an expat parser that refuses any DOCTYPE (an .xlsx never has one; entities are how XML bombs work)."""
    p = expat.ParserCreate()
    p.buffer_text = True

    def doctype(*_a) -> None:
        raise InputError(f"{where}: the XML declares a DOCTYPE, which a spreadsheet never does; the file is refused")

    p.StartDoctypeDeclHandler = doctype
    p.EntityDeclHandler = doctype
    return p


@dataclass
class Stream:
    """One sheet read as a stream. After :meth:`rows` is exhausted, ``merged`` and ``uncached`` are filled."""

    name: str
    part: str
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # (row_lo, row_hi, col_lo, col_hi), hi exclusive
    uncached: list[tuple[int, int, str]] = field(default_factory=list)  # (row, col, formula) of formulas with no saved value


class Workbook:
    """An .xlsx opened for bounded reading. If it is not a readable .xlsx or breaks a limit, raise InputError."""

    kind = ".xlsx workbook"  # how messages name the file (transforms/ods.py reads .ods through this class)

    def __init__(self, source: bytes | Path, name: str, *, limits: SheetLimits | None = None) -> None:
        self.name = name
        self.limits = limits or SheetLimits.from_env()
        try:
            fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
        except OSError as exc:
            raise InputError(f"{name}: cannot be opened ({exc.strerror})") from None
        self._fh = fh
        try:
            entries = zipfile._EndRecData(fh)  # the central directory's own count, before zipfile reads every entry
            if entries and entries[zipfile._ECD_ENTRIES_TOTAL] > MAX_PARTS:
                raise InputError(f"{name}: the zip holds {entries[zipfile._ECD_ENTRIES_TOTAL]:,} parts; "
                                 f"a workbook has a few dozen (limit {MAX_PARTS:,}); the file is refused")
            self.zip = zipfile.ZipFile(fh)
        except InputError:
            fh.close()
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            fh.close()
            raise InputError(f"{name}: not a readable {self.kind} (the zip is damaged: {exc})",
                             ja=f"{name}: 読み込めない {self.kind} です（zip が壊れています: {exc}）。"
                                "元のファイルを Excel か LibreOffice で開いて保存し直してください") from None
        try:
            self._book()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.zip.close()
        self._fh.close()

    def __enter__(self) -> "Workbook":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # ---- parts -------------------------------------------------------------------------
    def _open(self, part: str):
        """Return the part's inflating stream, after checking its method, size and ratio."""
        try:
            info = self.zip.getinfo(part)
        except KeyError:
            raise InputError(f"{self.name}: not a readable {self.kind} (the part {part} is missing)") from None
        where = f"{self.name}!{part}"
        if info.flag_bits & 0x1:
            raise InputError(f"{where}: the part is encrypted; save the workbook without a password",
                             ja=f"{where}: ブックが暗号化（パスワード保護）されています。パスワードなしで保存し直してください")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InputError(f"{where}: compressed with method {info.compress_type}, which Excel does not write; "
                             f"open and save the workbook in Excel or LibreOffice")
        lim = self.limits
        if info.file_size > lim.xml_bytes:
            raise lim.refuse(where, f"{info.file_size:,} bytes once inflated", "xml_bytes")
        if info.file_size > (16 << 20) and info.file_size > lim.ratio * max(info.compress_size, 1):
            raise lim.refuse(where, f"inflates {info.file_size // max(info.compress_size, 1):,} times "
                                    f"({info.compress_size:,} to {info.file_size:,} bytes)", "ratio")
        return self.zip.open(info)

    def _parse(self, part: str, p: expat.XMLParserType, *, after_chunk=None) -> Iterator[None]:
        """Feed the part to ``p`` in pieces, yielding after each; XML errors become InputError."""
        with self._open(part) as fh:
            try:
                while True:
                    chunk = fh.read(_CHUNK)
                    p.Parse(chunk, not chunk)
                    yield None
                    if not chunk:
                        return
            except expat.ExpatError as exc:
                raise InputError(f"{self.name}!{part}: not well-formed XML ({expat.errors.messages[exc.code]}, "
                                 f"line {exc.lineno}); open and save the workbook in Excel or LibreOffice") from None
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise InputError(f"{self.name}!{part}: the part is damaged ({exc}); open and save the workbook again") from None

    def _small(self, part: str, start) -> None:
        p = _parser(f"{self.name}!{part}")
        p.StartElementHandler = lambda n, a: start(_local(n), a)
        for _ in self._parse(part, p):
            pass

    @staticmethod
    def _join(base: str, target: str) -> str:
        if target.startswith("/"):
            return target.lstrip("/")
        parts: list[str] = []
        for seg in (str(PurePosixPath(base).parent) + "/" + target).split("/"):
            if seg in ("", "."):
                continue
            if seg == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(seg)
        return "/".join(parts)

    def _rels(self, part: str) -> dict[str, tuple[str, str]]:
        """Return id -> (type, target part) of a part's relationships (empty when it has none)."""
        rels_part = self._join(part, "_rels/" + PurePosixPath(part).name + ".rels")
        out: dict[str, tuple[str, str]] = {}
        if rels_part not in self.zip.NameToInfo:
            return out

        def start(name: str, a: dict) -> None:
            if name == "Relationship" and len(out) < MAX_PARTS and a.get("Id") and a.get("Target"):
                out[a["Id"]] = (a.get("Type", ""), self._join(part, a["Target"]))

        self._small(rels_part, start)
        return out

    def _book(self) -> None:
        """Read the workbook's sheet list, date system, number formats and shared strings."""
        root = self._rels("") if "_rels/.rels" in self.zip.NameToInfo else {}
        wb_part = next((t for ty, t in root.values() if ty.endswith("/officeDocument")), "xl/workbook.xml")
        if wb_part not in self.zip.NameToInfo:
            raise InputError(f"{self.name}: not a readable .xlsx workbook (no workbook part; is it an .ods or another zip?)",
                             ja=f"{self.name}: 読み込める .xlsx ブックではありません（ブック本体がありません。.ods や別の zip ではありませんか）")
        sheets: list[tuple[str, str]] = []
        self.date1904 = False

        def wb_start(name: str, a: dict) -> None:
            if name == "sheet":
                if len(sheets) >= MAX_SHEETS:
                    raise InputError(f"{self.name}: more than {MAX_SHEETS:,} sheets; the file is refused")
                sheets.append((a.get("name", f"Sheet{len(sheets) + 1}"), _attr(a, "id") or ""))
            elif name == "workbookPr":
                self.date1904 = a.get("date1904", "0").lower() in ("1", "true")

        self._small(wb_part, wb_start)
        rels = self._rels(wb_part)
        self.sheets = [(n, rels[r][1]) for n, r in sheets if r in rels and rels[r][1] in self.zip.NameToInfo]
        strings = next((t for ty, t in rels.values() if ty.endswith("/sharedStrings")), None)
        styles = next((t for ty, t in rels.values() if ty.endswith("/styles")), None)
        self.strings = self._shared_strings(strings) if strings and strings in self.zip.NameToInfo else []
        self.date_styles, self.timedelta_styles = self._styles(styles) if styles and styles in self.zip.NameToInfo else (set(), set())

    def _styles(self, part: str) -> tuple[set[int], set[int]]:
        """Return the cell formats (xf indexes) that show dates, and those that show durations (openpyxl's rules)."""
        from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

        custom: dict[int, str] = {}
        xfs: list[int] = []
        depth = {"cellXfs": False}

        def start(name: str, a: dict) -> None:
            if name == "numFmt" and len(custom) < MAX_STYLES:
                try:
                    custom[int(a.get("numFmtId", "-1"))] = a.get("formatCode", "")
                except ValueError:
                    pass
            elif name == "cellXfs":
                depth["cellXfs"] = True
            elif name == "xf" and depth["cellXfs"]:
                if len(xfs) >= MAX_STYLES:
                    raise InputError(f"{self.name}!{part}: more than {MAX_STYLES:,} cell formats (Excel allows 64,000); the file is refused")
                try:
                    xfs.append(int(a.get("numFmtId", "0")))
                except ValueError:
                    xfs.append(0)

        p = _parser(f"{self.name}!{part}")
        p.StartElementHandler = lambda n, a: start(_local(n), a)
        p.EndElementHandler = lambda n: depth.update(cellXfs=False) if _local(n) == "cellXfs" else None
        for _ in self._parse(part, p):
            pass
        dates, durations = set(), set()
        for i, fid in enumerate(xfs):
            fmt = custom.get(fid, BUILTIN_FORMATS.get(fid))
            if is_date_format(fmt):
                dates.add(i)
            if is_timedelta_format(fmt):
                durations.add(i)
        return dates, durations

    def _shared_strings(self, part: str) -> list[str]:
        """Return the shared strings: each ``si``'s text runs joined, phonetic guides (``rPh``) left out, as openpyxl does."""
        out: list[str] = []
        buf: list[str] = []
        st = {"t": False, "rph": 0, "n": 0}
        where = f"{self.name}!{part}"
        max_strings = self.limits.cells

        def start(name: str, _a) -> None:
            name = _local(name)
            if name == "t":
                st["t"] = True
            elif name == "rPh":
                st["rph"] += 1
            elif name == "si":
                buf.clear()
                st["n"] = 0

        def end(name: str) -> None:
            name = _local(name)
            if name == "t":
                st["t"] = False
            elif name == "rPh":
                st["rph"] -= 1
            elif name == "si":
                if len(out) >= max_strings:
                    raise self.limits.refuse(where, f"more than {max_strings:,} shared strings", "cells")
                out.append("".join(buf))

        def data(s: str) -> None:
            if st["t"] and not st["rph"]:
                st["n"] += len(s)
                if st["n"] > EXCEL_CELL_CHARS:
                    raise InputError(f"{where}: shared string {len(out)} holds more than {EXCEL_CELL_CHARS:,} characters, "
                                     f"Excel's own limit; the workbook is damaged or hostile")
                buf.append(s)

        p = _parser(where)
        p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, data
        for _ in self._parse(part, p):
            pass
        return out

    # ---- sheets ------------------------------------------------------------------------
    def stream(self, name: str) -> Stream:
        """Return the stream of sheet ``name``. If there is no such sheet, raise InputError."""
        for n, part in self.sheets:
            if n == name:
                return Stream(n, part)
        raise InputError(f"{self.name}: no sheet named {name!r}; its sheets are {', '.join(n for n, _ in self.sheets[:20])}",
                         ja=f"{self.name}: シート {name!r} がありません。あるシート: {'、'.join(n for n, _ in self.sheets[:20])}")

    def rows(self, st: Stream) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
        """Yield (0-based row, [(0-based column, value), ...]) for each row holding a value, in file order.

        Values are str, int, float, bool or datetime/time/timedelta (date-formatted numbers); empty
        cells and formulas without a saved value are left out (the latter recorded in ``st.uncached``).
        Rows and columns past the limits are refused as soon as they are seen.
        """
        from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH, from_excel, from_ISO8601

        where = f"{self.name} sheet {st.name}"
        lim = self.limits
        max_row, max_col = min(lim.rows, EXCEL_ROWS), min(lim.columns, EXCEL_COLUMNS)
        epoch = MAC_EPOCH if self.date1904 else WINDOWS_EPOCH
        strings, dates, durations = self.strings, self.date_styles, self.timedelta_styles
        done: list[tuple[int, list[tuple[int, Any]]]] = []
        cur: list[tuple[int, Any]] = []
        buf: list[str] = []
        names: dict[str, str] = {}  # element name -> local name (prefixes are rare; this is the hot path)
        columns: dict[str, int] = {}  # column letters -> index
        # the state of the cell being read (closures over locals: the handlers run for every element of the sheet)
        row = col = -1
        ctype, style, text, formula, inline, phonetic, n_chars, inside = "n", 0, None, None, False, 0, 0, None

        def local(name: str) -> str:
            loc = names.get(name)
            if loc is None:
                loc = names[name] = _local(name)
            return loc

        def ref() -> str:
            return f"{st.name}!{column_letters(col)}{row + 1}" if col >= 0 else f"{st.name}!row {row + 1}"

        def start_row(r: int) -> None:
            nonlocal row
            if r < 0 or r >= max_row:
                raise lim.refuse(where, f"row {r + 1:,} is used", "rows")
            if r != row:
                if cur:
                    done.append((row, cur.copy()))
                    cur.clear()
                row = r

        def start(name: str, a: dict) -> None:
            nonlocal col, ctype, style, text, formula, inline, phonetic, n_chars, inside
            name = names.get(name) or local(name)
            if name == "c":
                r = a.get("r")
                if r:
                    letters = r.rstrip("0123456789")
                    c = columns.get(letters)
                    if c is None:
                        if not _CELL_REF.fullmatch(r):
                            raise InputError(f"{where}: {r!r} is not a cell reference; open and save the workbook in Excel or LibreOffice")
                        c = columns[letters] = _column(letters)
                    digits = r[len(letters):]
                    if not digits.isdigit() or len(digits) > 7:
                        raise InputError(f"{where}: {r!r} is not a cell reference; open and save the workbook in Excel or LibreOffice")
                    col = c
                    rr = int(digits) - 1
                    if rr != row:
                        start_row(rr)
                else:
                    col += 1
                if col >= max_col:
                    raise lim.refuse(where, f"cell {column_letters(col)}{row + 1} is in column {col + 1:,}", "columns")
                ctype, text, formula, inline = a.get("t", "n"), None, None, False
                s_ = a.get("s")
                style = int(s_) if s_ and s_.isdigit() else 0
            elif name == "v" or name == "f" or (name == "t" and inline and not phonetic):
                buf.clear()
                n_chars = 0
                inside = name
            elif name == "row":
                r = a.get("r")
                start_row(int(r) - 1 if r and r.isdigit() else row + 1)
                col = -1
            elif name == "is":
                inline, text = True, ""
            elif name == "rPh":
                phonetic += 1
            elif name == "mergeCell":
                merge(a.get("ref", ""))

        def merge(r: str) -> None:
            m = re.fullmatch(r"([A-Z]{1,3})([0-9]{1,7}):([A-Z]{1,3})([0-9]{1,7})", r)
            if not m:
                return
            r0, c0, r1, c1 = int(m.group(2)) - 1, _column(m.group(1)), int(m.group(4)), _column(m.group(3)) + 1
            if len(st.merged) >= lim.cells:
                raise lim.refuse(where, f"more than {lim.cells:,} merged ranges", "cells")
            if 0 <= r0 < r1 and 0 <= c0 < c1:
                st.merged.append((r0, r1, c0, c1))

        def end(name: str) -> None:
            nonlocal text, formula, inline, phonetic, inside
            name = names.get(name) or local(name)
            if name == "c":
                value = convert()
                if value is not None:
                    cur.append((col, value))
            elif inside is not None and name == inside:
                inside = None
                if name == "v":
                    text = "".join(buf)
                elif name == "f":
                    formula = "".join(buf)
                else:
                    text = (text or "") + "".join(buf)
            elif name == "row":
                if cur:
                    done.append((row, cur.copy()))
                    cur.clear()
            elif name == "rPh":
                phonetic -= 1
            elif name == "is":
                inline = False

        def data(chunk: str) -> None:
            nonlocal n_chars
            if inside is not None:
                n_chars += len(chunk)
                if n_chars > EXCEL_CELL_CHARS:
                    raise InputError(f"{where}: cell {ref()} holds more than {EXCEL_CELL_CHARS:,} characters, Excel's own limit; "
                                     f"the workbook is damaged or hostile")
                buf.append(chunk)

        def convert() -> Any:
            t = ctype
            if t == "inlineStr":
                return text or None
            if not text:  # openpyxl: an empty <v/> is no value
                if formula is not None:
                    st.uncached.append((row, col, formula))
                return None
            try:
                if t == "n":
                    v = float(text) if ("." in text or "e" in text or "E" in text) else int(text)
                    if style in dates:
                        try:
                            return from_excel(v, epoch, timedelta=style in durations)
                        except (OverflowError, ValueError):
                            return "#VALUE!"
                    return v
                if t == "s":
                    return strings[int(text)]
                if t == "b":
                    return bool(int(text))
                if t == "d":
                    return from_ISO8601(text)
            except (ValueError, IndexError):
                raise InputError(f"{where}: cell {ref()} holds {text[:40]!r}, which is not a valid value of its type ({t}); "
                                 f"open and save the workbook in Excel or LibreOffice") from None
            return text  # str (formula text result) and e (error such as #N/A) are kept as text

        p = _parser(where)
        p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, data
        for _ in self._parse(st.part, p):
            if done:
                yield from done
                done.clear()
        if cur:
            done.append((row, cur.copy()))
        yield from done
