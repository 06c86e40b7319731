"""File names taken from an input become paths only through here, so none leads out of the folder written to.

A feed names its files (zip members, folder entries); those names are data. Before one is joined to a
folder it is checked: relative, no '..' part, no drive or UNC prefix, no control character, parts of a
length a file system takes. Backslashes count as separators too: a Windows unzip would read them so.
"""

from __future__ import annotations

import re
from pathlib import Path

#: longest part of a name most file systems take (bytes of UTF-8)
MAX_PART_BYTES = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafePath(ValueError):
    """A name from an input would lead out of its folder. The message names it (escaped) and says why, in one line."""


def shown(name: str) -> str:
    """Return ``name`` with control characters written as escapes (``\\x00``, ``\\n``), safe to print on one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1] if m.group() in "\n\r\t" else f"\\x{ord(m.group()):02x}", name)


#: Names made only of parts of letters, digits, '_', '-' and '.' (not first), each of at most MAX_PART_BYTES: always safe
#: (relative, no '..', no drive, no control character), so they skip the checks below (a snapshot folder lists thousands).
_PLAIN = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,%d}/)*[A-Za-z0-9_-][A-Za-z0-9_.-]{0,%d}" % (MAX_PART_BYTES - 1, MAX_PART_BYTES - 1))


def unsafe_reason(name: str) -> str | None:
    """Return why ``name`` may not become a path under a folder, or None if it may."""
    return None if _PLAIN.fullmatch(name) else _reason(name)


def _reason(name: str) -> str | None:
    """Return why ``name`` may not become a path under a folder, or None if it may (every check)."""
    if not name:
        return "the name is empty"
    if _CONTROL.search(name):
        return "the name holds a control character (NUL, line break, escape, …)"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "the name is an absolute path"
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        return "the name climbs out of the folder with '..'"
    if any(len(p.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES for p in parts):
        return f"a part of the name is longer than {MAX_PART_BYTES} bytes"
    return None


def safe_join(root: Path, name: str) -> Path:
    """Return the path of ``name`` under ``root``. If it would lead out of ``root``, then raise UnsafePath.

    Besides the name itself, links already under ``root`` are followed to check where the path ends.
    """
    why = unsafe_reason(name)
    if why:
        raise UnsafePath(f"'{shown(name)}': {why}")
    path = root / name
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafePath(f"'{shown(name)}': the name leads out of the folder through a link")
    return path


def folder_files(root: Path) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """Return the files under ``root`` as {relative name: path} and the entries refused as [(name, why)].

    Hidden files (name starting with '.') are left out. Links are followed only to files inside
    ``root``; links to folders, links leading out, devices and pipes are refused, as are unsafe names.
    """
    import os
    import stat

    base = root.resolve()
    found: dict[str, Path] = {}
    refused: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for d in sorted(dirnames):
            if (here / d).is_symlink():
                refused.append(((here / d).relative_to(root).as_posix(), "it is a link to a folder, which is not followed"))
        dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
        for f in sorted(filenames):
            p = here / f
            name = p.relative_to(root).as_posix()
            if f.startswith("."):
                continue
            why = unsafe_reason(name)
            if why:
                refused.append((name, why))
                continue
            if p.is_symlink():
                target = p.resolve()
                if not target.is_relative_to(base):
                    refused.append((name, "it is a link to a file outside the feed's folder"))
                    continue
            try:
                mode = p.stat().st_mode
            except OSError:
                refused.append((name, "it is a link to nothing"))
                continue
            if not stat.S_ISREG(mode):
                refused.append((name, "it is not a regular file (a device, pipe or socket)"))
                continue
            found[name] = p
    return found, refused
