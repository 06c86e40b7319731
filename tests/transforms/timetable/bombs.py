"""Hostile spreadsheets, generated: an .xlsx is a zip of XML parts, written here by hand (nothing is committed)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"

_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
          '<Override PartName="/xl/worksheets/sheet1.xml" '
          'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" '
         f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK = (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
             '<sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WB_RELS = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" '
            f'Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')


def write_xlsx(path: Path, sheet_xml: Iterable[bytes], *, sheet: str = "Sheet1", level: int = 6) -> Path:
    """Write a one-sheet .xlsx whose sheet XML is the concatenation of ``sheet_xml`` (streamed, deflated)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        z.writestr("[Content_Types].xml", _TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK.replace("{name}", sheet))
        z.writestr("xl/_rels/workbook.xml.rels", _WB_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            for chunk in sheet_xml:
                fh.write(chunk)
    return path


def _sheet(rows: Iterable[bytes], *, dimension: str = "A1") -> Iterator[bytes]:
    yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/><sheetData>'.encode()
    yield from rows
    yield b"</sheetData></worksheet>"


def far_cell(path: Path) -> Path:
    """Return an .xlsx with a header in A1 and one more cell at XFD1048576, the last cell Excel allows."""
    return write_xlsx(path, _sheet([b'<row r="1"><c r="A1" t="inlineStr"><is><t>start</t></is></c></row>',
                                    b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'], dimension="A1:XFD1048576"))


def whitespace_padded(path: Path, *, gigabytes: float = 2.0) -> Path:
    """Return an .xlsx whose sheet XML holds ``gigabytes`` of spaces between two rows (a few MB once deflated)."""
    block = b" " * (8 << 20)

    def rows() -> Iterator[bytes]:
        yield b'<row r="1"><c r="A1" t="inlineStr"><is><t>start</t></is></c></row>'
        for _ in range(int(gigabytes * 1024 / 8)):
            yield block
        yield b'<row r="2"><c r="A2"><v>1</v></c></row>'

    return write_xlsx(path, _sheet(rows()), level=1)


def many_rows(path: Path, *, rows: int = 1_048_576, cols: int = 8) -> Path:
    """Return an .xlsx of ``rows`` rows of ``cols`` numbers, with a header row (the most rows Excel allows by default)."""
    letters = [chr(65 + i) for i in range(cols)]

    def body() -> Iterator[bytes]:
        yield ('<row r="1">' + "".join(f'<c r="{c}1" t="inlineStr"><is><t>col{c}</t></is></c>' for c in letters) + "</row>").encode()
        buf = []
        for r in range(2, rows + 1):
            buf.append(f'<row r="{r}">' + "".join(f'<c r="{c}{r}"><v>{r}</v></c>' for c in letters) + "</row>")
            if len(buf) == 10000:
                yield "".join(buf).encode()
                buf = []
        yield "".join(buf).encode()

    return write_xlsx(path, _sheet(body(), dimension=f"A1:{letters[-1]}{rows}"), level=1)


_PEAK = """
import atexit, resource, sys
resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu} + 5))
resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))
def _peak():
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    sys.stdout.flush()
    print("\\n__peak_kb__", kb)
atexit.register(_peak)
"""


def run_capped(code: str, *args: str, env: dict[str, str] | None = None, cpu_seconds: int = 60,
               memory_bytes: int = 6 << 30, root: Path | None = None) -> tuple[int, str, float, float]:
    """Return (exit status, output, peak RSS in MB, CPU seconds) of ``code`` run in a child Python capped in CPU time and address space.

    The caps stop old, unbounded code from taking the machine down: it dies (SIGXCPU, MemoryError)
    and the caller's assertions fail. Peak RSS is the child's own VmHWM, read by the child as it
    exits: the rusage of a child counts the pages of the parent it was forked from, which for a
    long test session is hundreds of MB. If the child is killed, the peak is reported as infinite.
    """
    import os
    import subprocess
    import sys

    root = root or Path(__file__).resolve().parents[3]
    prefix = _PEAK.format(cpu=cpu_seconds, mem=memory_bytes)
    p = subprocess.run([sys.executable, "-c", prefix + code, *args], cwd=root, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    out = p.stdout.decode("utf-8", "replace")
    peak = float("inf")
    if "__peak_kb__" in out:
        out, _, kb = out.rpartition("__peak_kb__")
        out = out.rstrip("\n") + "\n"
        peak = int(kb) / 1024
    import resource

    return p.returncode, out, peak, _children_cpu(resource)


_cpu_seen = [0.0]


def _children_cpu(resource) -> float:
    """Return the CPU seconds of the children waited for since the last call."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = u.ru_utime + u.ru_stime
    spent, _cpu_seen[0] = total - _cpu_seen[0], total
    return spent
