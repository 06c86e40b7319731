"""Canonical table schemas, loaded from ``specs/schemas/*.yml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from transforms.specfile import Flag, ListOf, Map, Number, SpecError, Text, check_shape, load_yaml

FIELD_TYPES = (
    "id", "text", "int", "float", "time", "date", "color", "url", "email",
    "phone", "timezone", "lang", "currency", "enum",
    "geometry",  # GTFS-Flex zones (locations.geojson): WKB, WGS84
)

#: Every key of ``specs/schemas/gtfs.yml``, with the type of its value.
SCHEMA_SHAPE = Map({"tables": Map(values=Map({
    "required": Flag(), "profile": Text(),
    "fields": ListOf(Map({"name": Text(), "type": Text(), "required": Flag(), "key": Flag(), "ref": Text(),
                          "enum": ListOf(Number(whole=True)), "column": Text()})),
}))})

#: DuckDB column type of each field type in the canonical tables.
SQL_TYPES = {
    "int": "INTEGER",
    "enum": "INTEGER",
    "float": "DOUBLE",
    "time": "INTEGER",
    "date": "DATE",
    "geometry": "BLOB",
}

#: Columns every canonical row carries, before its own fields.
SYSTEM_COLUMNS = (
    ("feed_id", "VARCHAR"),
    ("feed_version", "VARCHAR"),
    ("_line", "INTEGER"),
)
#: Columns every canonical row carries after its own fields.
TRAILING_COLUMNS = (
    ("_untyped", "VARCHAR"),  # JSON object {field: original text} for values that could not be typed
    ("_extra", "VARCHAR"),  # JSON object {column: text} for columns the schema does not know
)


def default_specs_dir() -> Path:
    """Return the ``specs/`` folder: ``$NORIBA_SPECS`` if set, else the one beside this package."""
    import os

    env = os.environ.get("NORIBA_SPECS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "specs"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    key: bool = False
    ref: str | None = None
    enum: tuple[int, ...] = ()
    column_name: str | None = None  # canonical column when the GTFS name clashes with a system column

    @property
    def column(self) -> str:
        return self.column_name or self.name

    @property
    def sql_type(self) -> str:
        return SQL_TYPES.get(self.type, "VARCHAR")


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[Field, ...]
    required: bool = False
    profile: str = "gtfs"

    @property
    def file_name(self) -> str:
        return f"{self.name}.geojson" if self.profile == "geojson" else f"{self.name}.txt"

    @property
    def key(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.key)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def columns_sql(self) -> list[tuple[str, str]]:
        """Return (name, DuckDB type) of every column of the canonical table, system columns included."""
        return [*SYSTEM_COLUMNS, *((f.column, f.sql_type) for f in self.fields), *TRAILING_COLUMNS]


@dataclass(frozen=True)
class Schema:
    name: str
    tables: dict[str, Table] = field(default_factory=dict)

    def by_file(self, file_name: str) -> Table | None:
        stem = file_name[:-4] if file_name.endswith(".txt") else file_name
        table = self.tables.get(stem)
        return None if table is not None and table.profile == "geojson" else table  # read by transforms/flex/geojson.py


def _parse_field(table: str, raw: dict) -> Field:
    name = raw.get("name")
    ftype = raw.get("type")
    if not name or ftype not in FIELD_TYPES:
        raise ValueError(f"schema table {table}: bad field definition {raw!r}")
    return Field(
        name=name,
        type=ftype,
        required=bool(raw.get("required", False)),
        key=bool(raw.get("key", False)),
        ref=raw.get("ref"),
        enum=tuple(raw.get("enum", ())),
        column_name=raw.get("column"),
    )


@lru_cache(maxsize=8)
def load_schema(name: str = "gtfs", specs_dir: Path | None = None) -> Schema:
    """Return the canonical schema ``specs/schemas/<name>.yml``.

    If the specs folder in use (``specs_dir``, else $NORIBA_SPECS) has no ``schemas/<name>.yml`` (a project's own folder of
    feed specs), then the schema shipped with Noriba is used: a specs folder may override a schema, not has to carry it.
    """
    path = (specs_dir or default_specs_dir()) / "schemas" / f"{name}.yml"
    if not path.exists():
        path = Path(__file__).resolve().parent.parent / "specs" / "schemas" / f"{name}.yml"
    doc = load_yaml(path)
    problems, _, _ = check_shape(doc, SCHEMA_SHAPE)
    if problems or not isinstance(doc.get("tables"), dict):
        raise SpecError([f"{path}: {f or 'tables'}: {m}" for f, m in problems] or [f"{path}: tables: missing"])
    tables = {}
    for tname, tdef in doc["tables"].items():
        tables[tname] = Table(
            name=tname,
            fields=tuple(_parse_field(tname, f) for f in tdef["fields"]),
            required=bool(tdef.get("required", False)),
            profile=tdef.get("profile", "gtfs"),
        )
    return Schema(name=name, tables=tables)
