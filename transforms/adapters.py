"""The adapter contract: every source kind turns its input into GTFS-shaped text tables.

An adapter reads whatever the source is (a GTFS zip, a timetable workbook, ...) and returns
a :class:`TextFeed`: for each GTFS file name, the header and rows as text with their source
line, plus what it noticed. Typing, structural checks and the canonical tables are shared
(:mod:`transforms.canonical`), so a new kind only has to produce text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from transforms.csvread import CsvText
from transforms.errors import InputError  # noqa: F401 (re-exported: adapters raise it)
from transforms.notices import Findings


@dataclass
class TextFile:
    name: str  # file name inside the feed, e.g. 'stops.txt'
    csv: CsvText
    encoding: str
    content_sha256: str  # over the normalised UTF-8 text (no BOM, LF line ends)
    verbatim: dict | None = None  # transforms.verbatim.plain_facts: the export may copy the member as received


@dataclass
class TextFeed:
    files: dict[str, TextFile] = field(default_factory=dict)
    other_files: dict[str, bytes] = field(default_factory=dict)  # non-CSV members kept as received
    findings: Findings = field(default_factory=Findings)

    def content_hash(self) -> str:
        """Return the feed's version hash: sha256 over the sorted (file name, content hash) pairs."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(f"{name}\0{self.files[name].content_sha256}\n".encode())
        for name in sorted(self.other_files):
            h.update(f"{name}\0{hashlib.sha256(self.other_files[name]).hexdigest()}\n".encode())
        return h.hexdigest()


Progress = Callable[[str], None]


class Adapter(Protocol):
    kind: str

    def read(self, source: Path, *, encoding: str | None = None, progress: Progress | None = None) -> TextFeed:
        """Return the source as GTFS-shaped text tables. If it cannot be read at all, raise InputError."""


def adapter_for(kind: str) -> Adapter:
    """Return the adapter of a source kind. If the kind is unknown, raise InputError listing the known kinds."""
    if kind == "gtfs":  # imported on demand: a GTFS run need not load the spreadsheet readers
        from transforms.gtfs import GtfsAdapter

        return GtfsAdapter()
    if kind == "timetable":
        from transforms.timetable.adapter import TimetableAdapter

        return TimetableAdapter()
    raise InputError(f"unknown feed kind '{kind}'; known kinds: gtfs, timetable")
