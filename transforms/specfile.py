"""Spec files: one safe YAML loader with limits, and a checker for the shape of every key.

Every YAML file under ``specs/`` (feeds, trips, exports, expectations, schemas) is read by
:func:`load_yaml`. It is PyYAML's safe loader (libyaml when built in) with three limits, so a
hostile spec cannot exhaust memory or the stack:

- the file may hold at most :data:`MAX_BYTES` bytes;
- the document, with every alias (``*name``) and merge key (``<<``) expanded, may hold at most
  :data:`MAX_NODES` values — a "billion laughs" spec is refused before anything is built;
- values may nest at most :data:`MAX_DEPTH` levels deep; an alias that contains itself is refused.

:func:`check_shape` checks a parsed spec against a :class:`Map` of its keys: every key at every
depth must be known (an unknown key gets a "did you mean"), and every value must have the
expected type. It returns each problem as (field path, message) and a copy of the document
without the values it refused, so the checks that follow see only values of the right type.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any

import yaml

#: Largest spec file read (bytes). The largest committed spec, specs/schemas/gtfs.yml, is about 11 kB.
MAX_BYTES = 1 << 20
#: Most values (scalars, lists, mappings) a document may hold with every alias expanded.
MAX_NODES = 100_000
#: Deepest nesting of lists and mappings.
MAX_DEPTH = 64

#: A feed, trips source, zone layer or export id. ``\Z``, not ``$``: ``$`` also matches before a final newline.
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: the same safe subset, ~10x faster


class SpecError(Exception):
    """A spec is wrong. ``problems`` lists every mistake as 'file: field: what is wrong'."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _Refused(Exception):
    """The composed document breaks a limit (message for the user)."""


class _Loader(_BASE):
    """The safe loader, refusing documents that break a limit before any Python value is built."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_limits(node)
        return self.construct_document(node)


class _TextDatesLoader(_Loader):
    """The safe loader without timestamps: dates stay text, so a wrong date is reported with its field."""


_TextDatesLoader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"] for k, v in _Loader.yaml_implicit_resolvers.items()}

#: The loader class (for callers that parse YAML text they already hold; prefer load_yaml).
YAML_LOADER = _Loader


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return []


def _check_limits(root) -> None:
    """Return if the node graph is small once expanded. If not (too many values, too deep, an alias in itself), raise _Refused."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size[key] = min(1 + sum(size[id(c)] for c in _children(node)), MAX_NODES + 1)
            if size[key] > MAX_NODES:
                raise _Refused(f"the document holds more than {MAX_NODES:,} values once its aliases (*name) are "
                               "expanded; write the values out, or use fewer aliases")
            continue
        if key in size:
            continue
        if key in on_path:
            raise _Refused("an alias (*name) refers to a mapping or list that contains it; specs cannot be recursive")
        if depth > MAX_DEPTH:
            raise _Refused(f"values are nested more than {MAX_DEPTH} levels deep")
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in on_path:
                raise _Refused("an alias (*name) refers to a mapping or list that contains it; specs cannot be recursive")
            if id(child) not in size:
                stack.append((child, depth + 1, False))


def load_yaml_text(text: str, *, where: str, dates: bool = True) -> Any:
    """Return the document in YAML ``text``. If it is not valid YAML or breaks a limit, raise SpecError naming ``where``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([f"{where}: larger than {MAX_BYTES:,} bytes; a spec is a short hand-written file"])
    try:
        return yaml.load(text, Loader=_Loader if dates else _TextDatesLoader)  # noqa: S506 (a SafeLoader subclass)
    except _Refused as exc:
        raise SpecError([f"{where}: refused: {exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        raise SpecError([f"{where}:{at} not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    except (RecursionError, ValueError, OverflowError) as exc:  # the constructors: e.g. a date such as 2026-02-30
        raise SpecError([f"{where}: a value cannot be read ({exc}); quote it to keep it as text"]) from None


def load_yaml(path: Path, *, dates: bool = True) -> Any:
    """Return the document in the spec file ``path``. If it cannot be read, is not valid YAML or breaks a limit, raise SpecError.

    With ``dates=False`` unquoted dates stay text.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError([f"{path}: cannot be read ({exc.strerror or exc})"]) from None
    if len(data) > MAX_BYTES:
        raise SpecError([f"{path}: larger than {MAX_BYTES:,} bytes; a spec is a short hand-written file"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([f"{path}: not UTF-8; save it as UTF-8"]) from None
    return load_yaml_text(text, where=str(path), dates=dates)


# ---------------------------------------------------------------- shapes


def shown(v: Any, limit: int = 60) -> str:
    """Return ``repr(v)``, cut to ``limit`` characters, for messages that quote a value."""
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "…"


def _found(v: Any) -> str:
    """Return a short description of a value, for 'found ...'."""
    kinds = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list", dict: "a mapping",
             dt.date: "a date", dt.datetime: "a date and time", type(None): "nothing (null)"}
    kind = kinds.get(type(v), type(v).__name__)
    return kind if isinstance(v, (list, dict)) else f"{kind} {shown(v)}"


DROP = object()  #: what a refused value becomes in the cleaned document (the key is left out)


class Shape:
    """What a value must be. ``expected`` says it in words, for messages."""

    expected = "a value"

    def check(self, v: Any, path: str, out: list[tuple[str, str]], dropped: set[str]) -> Any:
        """Return the cleaned value, or DROP. Each problem is appended to ``out``; each path left out to ``dropped``."""
        if self.accepts(v):
            return v
        out.append((path, f"found {_found(v)}; expected {self.expected}"))
        dropped.add(path)
        return DROP

    def accepts(self, v: Any) -> bool:
        return True


class Anything(Shape):
    """Any value; a later check (or nothing) looks at it."""


class Text(Shape):
    expected = "text"

    def __init__(self, *, numbers: bool = False, expected: str | None = None):
        self.numbers = numbers  # a number is accepted where it is read as text (ids, codes, versions)
        if expected:
            self.expected = expected
        elif numbers:
            self.expected = "text or a number"

    def accepts(self, v):
        return isinstance(v, str) or (self.numbers and isinstance(v, (int, float)) and not isinstance(v, bool))


class Number(Shape):
    def __init__(self, *, whole: bool = False, lo: float | None = None, hi: float | None = None):
        self.whole, self.lo, self.hi = whole, lo, hi
        rng = (f" from {lo:g} to {hi:g}" if lo is not None and hi is not None else f" of at least {lo:g}" if lo is not None
               else f" of at most {hi:g}" if hi is not None else "")
        self.expected = f"{'a whole number' if whole else 'a number'}{rng}"

    def accepts(self, v):
        if isinstance(v, bool) or not isinstance(v, int if self.whole else (int, float)):
            return False
        return (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)


class Flag(Shape):
    expected = "true or false"

    def __init__(self, *, expected: str | None = None):
        if expected:
            self.expected = expected

    def accepts(self, v):
        return isinstance(v, bool)


class Date(Shape):
    expected = "a date such as 2026-04-01"

    def accepts(self, v):
        return isinstance(v, (str, dt.date))


class Null(Shape):
    expected = "null"

    def accepts(self, v):
        return v is None


class OneOf(Shape):
    """The first of several shapes that accepts the value (e.g. text, or a list of text)."""

    def __init__(self, *shapes: Shape, expected: str | None = None):
        self.shapes = shapes
        self.expected = expected or " or ".join(s.expected for s in shapes)

    def check(self, v, path, out, dropped):
        for s in self.shapes:
            trial: list = []
            clean = s.check(v, path, trial, set())
            if not trial:
                return clean
        for s in self.shapes:  # a mapping or list: the problems inside it are more precise than "expected ..."
            if isinstance(s, Map) and isinstance(v, dict) or isinstance(s, ListOf) and isinstance(v, list):
                return s.check(v, path, out, dropped)
        out.append((path, f"found {_found(v)}; expected {self.expected}"))
        dropped.add(path)
        return DROP


class ListOf(Shape):
    """A list whose items all have one shape. If one item is wrong, the whole list is left out of the cleaned document."""

    def __init__(self, item: Shape, *, expected: str | None = None):
        self.item = item
        self.expected = expected or f"a list of {item.expected.removeprefix('a ').removeprefix('an ')}"

    def check(self, v, path, out, dropped):
        if not isinstance(v, list):
            out.append((path, f"found {_found(v)}; expected {self.expected}"))
            dropped.add(path)
            return DROP
        clean = [self.item.check(x, f"{path}[{i}]", out, dropped) for i, x in enumerate(v)]
        if any(c is DROP for c in clean):
            dropped.add(path)
            return DROP
        return clean


class Map(Shape):
    """A mapping with known keys (``keys``), or any keys whose values have one shape (``values``)."""

    def __init__(self, keys: dict[str, Shape] | None = None, *, values: Shape | None = None, key: Shape | None = None,
                 expected: str | None = None):
        self.keys, self.values, self.key = keys, values, key or Text(numbers=True)
        self.expected = expected or "a mapping (key: value)"

    def check(self, v, path, out, dropped):
        if not isinstance(v, dict):
            out.append((path, f"found {_found(v)}; expected {self.expected}"))
            dropped.add(path)
            return DROP
        clean = {}
        for k, x in v.items():
            sub = f"{path}.{k}" if path else str(k)
            if self.keys is not None and k not in self.keys:
                known = sorted(self.keys)
                near = difflib.get_close_matches(str(k), known, n=1, cutoff=0.6)
                hint = f"did you mean '{near[0]}'?" if near else f"allowed keys are {', '.join(known)}"
                out.append((sub, f"unknown key; {hint}"))
                dropped.add(sub)
                continue
            if not self.key.accepts(k):
                out.append((sub, f"the key is {_found(k)}; expected {self.key.expected}"))
                dropped.add(sub)
                continue
            c = (self.keys[k] if self.keys is not None else self.values or Anything()).check(x, sub, out, dropped)
            if c is not DROP:
                clean[k] = c
        return clean


def check_shape(doc: Any, shape: Shape, *, prefix: str = "") -> tuple[list[tuple[str, str]], set[str], Any]:
    """Return (every problem as (field path, message), the paths left out, the document without them)."""
    out: list[tuple[str, str]] = []
    dropped: set[str] = set()
    clean = shape.check(doc, prefix, out, dropped)
    return out, dropped, (None if clean is DROP else clean)


def is_under(field: str, fields: set[str]) -> bool:
    """Return whether ``field`` is one of ``fields`` or inside one (``a.b[0]`` is inside ``a.b`` and ``a``)."""
    return any(field == f or field.startswith(f + ".") or field.startswith(f + "[") for f in fields)


def field_of(problem: str, where: str) -> str:
    """Return the field path of a problem written 'where: field: message'."""
    rest = problem[len(where) + 2:] if problem.startswith(where + ": ") else problem
    return rest.split(": ", 1)[0]


