"""Read .ods spreadsheets (OpenDocument, LibreOffice Calc's format) as hostile input, like transforms/xlsx.py.

An .ods is a zip whose ``content.xml`` holds every sheet. The zip and its parts get the same checks as an
.xlsx (transforms.xlsx.Workbook: part count, method, inflated size, ratio, no DOCTYPE); ``content.xml`` is
streamed with expat in 1 MB pieces and only cell values are kept. ODF writes a run of equal rows or cells
once with a repeat count (every office suite pads a sheet with ``number-columns-repeated="16384"`` and a
million repeated empty rows): empty runs only move the position, and a run holding values is repeated
within the sheet's row and column limits, so the cells built are bounded by what the caller's cell budget
allows, never by what the file asks for. Values are converted as the .xlsx reader converts them: numbers
(float, percentage, currency), dates to ``datetime``, times to ``time`` (or ``timedelta`` from 24 hours
on), booleans, text (paragraphs joined by line breaks; ``text:s`` spaces, tabs and line breaks kept,
comments left out). A merged range (``number-columns-spanned`` / ``number-rows-spanned``) is reported
like an .xlsx merge; covered cells are skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from xml.parsers import expat

from transforms.errors import InputError
from transforms.xlsx import EXCEL_CELL_CHARS, SheetLimits, Stream, Workbook, column_letters

MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0|"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0|"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0|"
_DURATION = re.compile(r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?\Z")
_NUMBER_TYPES = ("float", "percentage", "currency")


def _ref(sheet: str, row: int, col: int) -> str:
    return f"{sheet}!{column_letters(col)}{row + 1}"


def looks_like_ods(data: bytes) -> bool:
    """Return whether ``data`` starts like an OpenDocument spreadsheet (its first zip member is the mimetype, stored)."""
    return data[:4] == b"PK\x03\x04" and data[30:38] == b"mimetype" and MIMETYPE.encode() in data[38:38 + 100]


def _duration(text: str) -> dt.time | dt.timedelta:
    m = _DURATION.match(text.strip())
    if not m or text.strip() in ("P", "PT", "-P", "-PT"):
        raise ValueError(text)
    sign, days, hours, minutes, seconds = m.groups()
    td = dt.timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0), seconds=float(seconds or 0))
    if sign:
        td = -td
    if dt.timedelta(0) <= td < dt.timedelta(days=1):
        secs = round(td.total_seconds(), 6)
        return (dt.datetime.min + dt.timedelta(seconds=secs)).time()
    return td


class OdsBook(Workbook):
    """An .ods opened for bounded reading. If it is not a readable .ods or breaks a limit, raise InputError."""

    kind = ".ods spreadsheet"

    def _book(self) -> None:
        names = set(self.zip.namelist())
        if "content.xml" not in names:
            raise InputError(f"{self.name}: not a readable .ods spreadsheet (no content.xml); open and save it in LibreOffice Calc")
        if "mimetype" in names:
            with self._open("mimetype") as fh:
                mt = fh.read(200).decode("ascii", "replace").strip()
            if mt != MIMETYPE:
                raise InputError(f"{self.name}: an OpenDocument file of type {mt[:80]!r}, not a spreadsheet ({MIMETYPE}); "
                                 "save the sheet as .ods, .xlsx or .csv")
        self._names: list[tuple[str, str]] | None = None
        self._open_rows: dict[int, Iterator] = {}

    @property
    def sheets(self) -> list[tuple[str, str]]:
        """Return [(sheet name, part)] in order (content.xml read once for the names, no cell kept)."""
        if self._names is None:
            self._names = [(ev[1], "content.xml") for ev in self._events(names_only=True) if ev[0] == "sheet"]
        return self._names

    def stream(self, name: str) -> Stream:
        """Return the stream of the sheet ``name``; :meth:`rows` reads it (the sheets before it are passed over)."""
        for st, rows in self.sheets_stream():
            if st.name == name:
                self._open_rows[id(st)] = rows
                return st
            for _ in rows:
                pass
        raise InputError(f"{self.name}: no sheet named {name!r}; its sheets: {', '.join(n for n, _ in self.sheets)}",
                         ja=f"{self.name}: シート {name!r} がありません。あるシート: {'、'.join(n for n, _ in self.sheets)}")

    def rows(self, st: Stream) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
        """Yield (row, [(column, value), ...]) of the rows of ``st`` (from :meth:`stream`) holding a value."""
        return self._open_rows.pop(id(st))

    def sheets_stream(self) -> Iterator[tuple[Stream, Iterator[tuple[int, list[tuple[int, Any]]]]]]:
        """Yield (stream, rows) per sheet, in order: ``rows`` yields (row, [(column, value), ...]) of the rows holding a
        value (0-based); once it is exhausted, the stream's ``merged`` and ``uncached`` are filled. Read each sheet's rows
        before asking for the next sheet."""
        events = self._events()
        for ev in events:
            if ev[0] != "sheet":
                continue
            st = Stream(ev[1], "content.xml")

            def rows(st: Stream = st) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
                for e in events:
                    if e[0] == "row":
                        yield e[1], e[2]
                    elif e[0] == "end":
                        st.merged, st.uncached = e[1], e[2]
                        return

            yield st, rows()

    def _events(self, *, names_only: bool = False) -> Iterator[tuple]:
        lim: SheetLimits = self.limits
        where = f"{self.name}!content.xml"
        p = expat.ParserCreate(namespace_separator="|")
        p.buffer_text = True

        def doctype(*_a) -> None:
            raise InputError(f"{where}: the XML declares a DOCTYPE, which a spreadsheet never does; the file is refused")

        p.StartDoctypeDeclHandler = doctype
        p.EntityDeclHandler = doctype
        out: list[tuple] = []
        s: dict[str, Any] = {"sheet": None, "row": 0, "col": 0, "cells": [], "row_repeat": 1, "merged": [], "uncached": [],
                             "cell": None, "text": None, "chars": 0, "note": 0, "tables": 0}

        def ref() -> str:
            return _ref(s["sheet"] or "?", s["row"], s["col"])

        def count(a: dict, key: str) -> int:
            raw = a.get(_TABLE + key, "1")
            if not raw.isdigit() or not 1 <= int(raw) <= 1 << 24:
                raise InputError(f"{where}: {ref()} repeats or spans {raw[:20]!r} times, not a count a spreadsheet writes; "
                                 "open and save the file in LibreOffice Calc")
            return int(raw)

        def start(name: str, a: dict) -> None:
            if name == _TABLE + "table":
                if s["sheet"] is not None:
                    raise InputError(f"{where}: {ref()} holds a table inside a cell, which Noriba does not read; "
                                     "copy its values into the sheet itself")
                s["tables"] += 1
                s.update(sheet=a.get(_TABLE + "name") or f"Sheet{s['tables']}", row=0, merged=[], uncached=[])
                out.append(("sheet", s["sheet"]))
            elif s["sheet"] is None or names_only:
                return
            elif name == _TABLE + "table-row":
                s.update(col=0, cells=[], row_repeat=count(a, "number-rows-repeated"))
            elif name in (_TABLE + "table-cell", _TABLE + "covered-table-cell"):
                s["cell"] = {"covered": name.endswith("covered-table-cell"), "attrs": a, "repeat": count(a, "number-columns-repeated"),
                             "rows": count(a, "number-rows-spanned"), "cols": count(a, "number-columns-spanned")}
                s.update(text=[], chars=0)
            elif s["cell"] is not None:
                if name == _OFFICE + "annotation":
                    s["note"] += 1
                elif s["note"]:
                    return
                elif name in (_TEXT + "p", _TEXT + "h"):
                    if s["text"]:
                        s["text"].append("\n")
                elif name == _TEXT + "s":
                    add(" " * count({_TABLE + "c": a.get(_TEXT + "c", "1")}, "c"))
                elif name == _TEXT + "tab":
                    add("\t")
                elif name == _TEXT + "line-break":
                    add("\n")

        def add(text: str) -> None:
            if s["cell"] is None or s["note"] or s["cell"]["covered"]:
                return
            s["chars"] += len(text)
            if s["chars"] > EXCEL_CELL_CHARS:
                raise InputError(f"{where}: cell {ref()} holds more than {EXCEL_CELL_CHARS:,} characters, a spreadsheet's own limit; "
                                 "the file is damaged or hostile")
            s["text"].append(text)

        def value(cell: dict) -> Any:
            a = cell["attrs"]
            vtype = a.get(_OFFICE + "value-type")
            text = "".join(s["text"] or [])
            try:
                if vtype in _NUMBER_TYPES:
                    raw = a.get(_OFFICE + "value", "")
                    return float(raw) if any(ch in raw for ch in ".eE") or raw.lower() in ("nan", "inf", "-inf") else int(raw)
                if vtype == "date":
                    d = dt.datetime.fromisoformat(a.get(_OFFICE + "date-value", ""))
                    return d.replace(tzinfo=None)
                if vtype == "time":
                    return _duration(a.get(_OFFICE + "time-value", ""))
                if vtype == "boolean":
                    return a.get(_OFFICE + "boolean-value", "").strip().lower() == "true"
            except ValueError:
                raise InputError(f"{where}: cell {ref()} is of type {vtype} but holds {str(dict(a))[:120]}, not a valid value; "
                                 "open and save the file in LibreOffice Calc") from None
            if vtype == "string":
                return a.get(_OFFICE + "string-value", text)
            if vtype is None and a.get(_TABLE + "formula"):
                s["uncached"].append((s["row"], s["col"], a[_TABLE + "formula"][:200]))
                return None
            return text or None

        def end(name: str) -> None:
            if s["sheet"] is None or (names_only and name != _TABLE + "table"):
                return
            if name == _TABLE + "table":
                out.append(("end", s["merged"], s["uncached"]))
                s["sheet"] = None
            elif name == _OFFICE + "annotation" and s["cell"] is not None:
                s["note"] -= 1
            elif name in (_TABLE + "table-cell", _TABLE + "covered-table-cell") and s["cell"] is not None:
                cell, s["cell"] = s["cell"], None
                if not cell["covered"]:
                    v = value(cell)
                    if v is not None and v != "":
                        if s["col"] + cell["repeat"] > lim.columns:
                            raise lim.refuse(f"{self.name} sheet {s['sheet']}", f"a value reaches column {s['col'] + cell['repeat']:,}",
                                             "columns", fix="delete stray cells far from the table")
                        s["cells"].extend((s["col"] + k, v) for k in range(cell["repeat"]))
                    if (cell["rows"] > 1 or cell["cols"] > 1) and v is not None:
                        s["merged"].append((s["row"], s["row"] + cell["rows"], s["col"], s["col"] + cell["cols"]))
                s["col"] += cell["repeat"]
            elif name == _TABLE + "table-row":
                if s["cells"]:
                    if s["row"] + s["row_repeat"] > lim.rows:
                        raise lim.refuse(f"{self.name} sheet {s['sheet']}", f"a value reaches row {s['row'] + s['row_repeat']:,}",
                                         "rows", fix="delete stray cells far from the table")
                    if len(s["cells"]) * s["row_repeat"] > lim.cells:
                        raise lim.refuse(f"{self.name} sheet {s['sheet']}", f"row {s['row'] + 1} repeats {len(s['cells']):,} values "
                                         f"{s['row_repeat']:,} times", "cells", fix="delete the repeated rows")
                    cells = s["cells"]  # one list for every repeat: the caller copies what it keeps
                    out.extend(("row", s["row"] + k, cells) for k in range(s["row_repeat"]))
                s["row"] += s["row_repeat"]

        p.StartElementHandler, p.EndElementHandler = start, end
        p.CharacterDataHandler = add
        for _ in self._parse("content.xml", p):
            yield from out
            out.clear()
        yield from out
