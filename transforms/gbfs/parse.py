"""Read GBFS snapshots (one JSON document each) into column tables, with notices and quarantined rows.

A snapshot is placed in time by its ``last_updated``. Rows: one per station of a
station_information / station_status snapshot, one per vehicle of a free_bike_status (1.x, 2.x) or
vehicle_status (3.0) snapshot, one per system_information and per vehicle type. A row that cannot
be used is quarantined with its raw JSON; a file that is not JSON counts as one quarantined record,
so rows in = accepted + quarantined.

Vehicle ids (``bike_id``, ``vehicle_id``) and the rental links that embed them are never kept: they
are read only in memory, to find an id listed twice in a snapshot and ids that are not rotated.
Every snapshot is parsed and typed; the official JSON schema runs on every information file and, for
status series, on every snapshot (``schema_check: all``) or on the first, the last, every
``sample_every``-th and every snapshot where a row was quarantined (``sample``).

station_status snapshots are read in batches by the C extension native/noriba_wire (gbfs_status: the GIL released,
the rows straight to Arrow buffers) when it is installed (:data:`NATIVE_STATUS`); a snapshot it does not read exactly
as the typed path would is read by the Python path as before. ``NORIBA_GBFS_PURE=1`` forces the Python path
(tests/transforms/gbfs/test_native_status.py proves both give the same tables, notices and quarantine).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from math import cos, radians
from typing import Union

import msgspec
import pyarrow as pa

from transforms.gbfs.discover import MAX_EPOCH, MAX_INT, MIN_EPOCH, READ_KINDS, epoch_of, kind_from_content, kind_from_name
from transforms.gbfs.rules import schema_notices
from transforms.gbfs.spec import GbfsOptions
from transforms.native import load_native
from transforms.notices import Findings

_I, _F, _S, _B = pa.int64(), pa.float64(), pa.string(), pa.bool_()
SCHEMAS: dict[str, pa.Schema] = {
    "station_information": pa.schema([("file", _S), ("snapshot_ts", _I), ("station_id", _S), ("name", _S), ("short_name", _S),
                                      ("lat", _F), ("lon", _F), ("capacity", _I), ("region_id", _S), ("address", _S),
                                      ("is_virtual_station", _B)]),
    "station_status": pa.schema([("file", _S), ("snapshot_ts", _I), ("station_id", _S), ("num_bikes_available", _I),
                                 ("num_docks_available", _I), ("num_bikes_disabled", _I), ("num_docks_disabled", _I),
                                 ("is_installed", _B), ("is_renting", _B), ("is_returning", _B), ("last_reported", _I)]),
    "vehicle_status": pa.schema([("file", _S), ("snapshot_ts", _I), ("vehicle_type_id", _S), ("lat", _F), ("lon", _F),
                                 ("station_id", _S), ("is_reserved", _B), ("is_disabled", _B), ("current_range_meters", _F),
                                 ("last_reported", _I)]),
    "system_information": pa.schema([("file", _S), ("snapshot_ts", _I), ("system_id", _S), ("name", _S), ("operator", _S),
                                     ("language", _S), ("timezone", _S), ("version", _S)]),
    "vehicle_types": pa.schema([("file", _S), ("snapshot_ts", _I), ("vehicle_type_id", _S), ("form_factor", _S),
                                ("propulsion_type", _S), ("name", _S), ("max_range_meters", _F)]),
    "files": pa.schema([("file", _S), ("kind", _S), ("version", _S), ("snapshot_ts", _I), ("ttl", _I), ("sha256", _S),
                        ("bytes", _I), ("rows_in", _I), ("rows_accepted", _I), ("rows_quarantined", _I),
                        ("schema_checked", _B), ("status", _S)]),
}
TABLES = ("station_information", "station_status", "vehicle_status", "system_information", "vehicle_types")
#: Keys of a vehicle that identify it; dropped from anything kept.
_VEHICLE_ID_KEYS = ("bike_id", "vehicle_id", "rental_uris")
#: Vehicle ids tracked for the rotation check (memory bound).
MAX_TRACKED_IDS = 1_000_000
#: A vehicle that moved farther than this between snapshots has made a trip.
MOVED_M = 100.0


class _TypeRef(msgspec.Struct, gc=False):
    vehicle_type_id: Union[str, None] = None


class _StationState(msgspec.Struct, gc=False):
    """One station of a well-formed station_status (1.x to 3.0): every field of the types the rows keep."""

    station_id: str
    num_bikes_available: Union[int, None] = None
    num_vehicles_available: Union[int, None] = None  # 3.0
    num_docks_available: Union[int, None] = None
    num_bikes_disabled: Union[int, None] = None
    num_vehicles_disabled: Union[int, None] = None  # 3.0
    num_docks_disabled: Union[int, None] = None
    is_installed: Union[bool, int, None] = None  # 1.x writes 1/0
    is_renting: Union[bool, int, None] = None
    is_returning: Union[bool, int, None] = None
    last_reported: Union[int, str, None] = None  # 3.0: RFC 3339
    vehicle_types_available: Union[list[_TypeRef], None] = None


class _StatusData(msgspec.Struct, forbid_unknown_fields=True):
    stations: list[_StationState]


class _StatusDoc(msgspec.Struct):
    data: _StatusData
    last_updated: Union[int, str, None] = None
    ttl: Union[int, None] = None
    version: Union[str, None] = None


#: Decodes a well-formed station_status straight from its bytes into typed objects (msgspec, no dict per station). A
#: document it refuses (a field of another type, another key under data) is read by json.loads and the row-by-row reader.
_STATUS_DECODER = msgspec.json.Decoder(_StatusDoc)


def _load_native():
    """Return noriba_wire.gbfs_status (native/noriba_wire), or None when it is not importable or NORIBA_GBFS_PURE=1."""
    return getattr(load_native("NORIBA_GBFS_PURE"), "gbfs_status", None)


#: The C decoder of station_status batches, or None (every snapshot then goes through _add_status_typed).
NATIVE_STATUS = _load_native()
#: station_status files held back and decoded together (bounds what a batch holds in C at once).
NATIVE_BATCH = 512
#: Threads of the C decoder (the GIL is released while it parses).
NATIVE_THREADS = 1


def _bool(x):
    if type(x) is bool:
        return x
    if type(x) is int and (x == 0 or x == 1):
        return x == 1
    return None


_INT, _BOOL, _NONE = {int}, {bool}, {type(None)}


def _bools(values: list) -> list:
    """Return the values as true/false (1.x writes 1/0), None where neither; the list itself when already all booleans."""
    kinds = set(map(type, values))
    if kinds <= _BOOL:
        return values
    if kinds <= {int, bool} and set(values) <= {0, 1}:
        return list(map(bool, values))
    if kinds <= _NONE:
        return values
    return [_bool(x) for x in values]


def _counts(values: list) -> list:
    """Return the values where they are whole numbers >= 0, None elsewhere; the list itself when all are."""
    kinds = set(map(type, values))
    if kinds <= _INT and (not values or (min(values) >= 0 and max(values) <= MAX_INT)) or kinds <= _NONE:
        return values
    return [x if type(x) is int and 0 <= x <= MAX_INT else None for x in values]


def _typed_counts(values: list) -> list:
    """Return _counts(values) for the typed decoder's values (whole numbers or None), the list itself without a
    per-value step when all are None or all are in range."""
    if None in values:
        return values if values.count(None) == len(values) else _counts(values)
    return values if min(values) >= 0 and max(values) <= MAX_INT else _counts(values)


def _typed_flags(values: list) -> list:
    """Return _bools(values) for the typed decoder's values (true/false, whole numbers or None)."""
    if values.count(1) + values.count(0) == len(values):  # only true, false, 1 and 0 (True == 1, False == 0)
        return list(map(bool, values))
    return _bools(values)


def _int(x):
    if type(x) is float and x.is_integer():
        x = int(x)
    return x if type(x) is int and -MAX_INT <= x <= MAX_INT else None


def _num(x):
    return float(x) if type(x) in (int, float) else None


def _text(x, lang: str | None = None):
    """Return text; a 3.0 localised list [{text, language}] gives the entry in ``lang`` or the first."""
    if isinstance(x, str):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return str(x)
    if isinstance(x, list):
        texts = [t for t in x if isinstance(t, dict) and isinstance(t.get("text"), str)]
        for t in texts:
            if t.get("language") == lang:
                return t["text"]
        return texts[0]["text"] if texts else None
    return None


def _raw(row: object) -> str:
    if isinstance(row, dict):
        row = {k: v for k, v in row.items() if k not in _VEHICLE_ID_KEYS}
    return json.dumps(row, ensure_ascii=False, default=str)[:2000]


@dataclass
class Parsed:
    tables: dict[str, pa.Table]
    findings: Findings
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    versions: dict[str, str] = field(default_factory=dict)  # kind -> version of its last file
    timezone: str | None = None  # from system_information
    station_ids: set[str] = field(default_factory=set)
    vehicle_type_ids: set[str] = field(default_factory=set)


class SnapshotReader:
    """Collect snapshots one file at a time (``add``), then the tables and findings (``finish``)."""

    def __init__(self, opts: GbfsOptions, *, known_station_ids: set[str] | None = None,
                 known_vehicle_type_ids: set[str] | None = None, has_system_information: bool = False):
        self.opts = opts
        self.cols = {t: {f.name: [] for f in SCHEMAS[t]} for t in (*TABLES, "files")}
        self.findings = Findings()
        self.discovery_version: str | None = None
        self.quarantined = 0
        self.accepted = 0
        self.series_index: Counter = Counter()
        self.last_unchecked: dict[str, tuple] = {}  # kind -> (doc, version, file) of the last snapshot not schema-checked
        self.missing_version: Counter = Counter()
        self.no_schema: set[tuple[str, str]] = set()
        self.versions: dict[str, str] = {}
        self.versions_seen: dict[str, set[str]] = {}
        self.known_station_ids = set(known_station_ids or ())
        self.known_type_ids = set(known_vehicle_type_ids or ()) if known_vehicle_type_ids is not None else None
        self.has_system_information = has_system_information
        self.status_station_ids: dict[str, str] = {}  # station id -> first status file naming it
        self.types_in_station_status: dict[str, str] = {}
        self.types_in_vehicles: dict[str, str] = {}
        self.vehicle_station_ids: dict[str, str] = {}
        self.first_seen: dict[str, tuple[float, float]] = {}
        self.not_rotated: set[str] = set()
        self.timezone: str | None = None
        self._pending: list[tuple[str, bytes, str]] = []  # station_status files not yet read (C decoder)
        self._status_parts: list[pa.RecordBatch] = []  # station_status rows so far, when the C decoder read some
        self._primed: dict | None = None  # station_status files decoded ahead (prime), until they are added

    # ------------------------------------------------------------------ files

    def prime(self, files: list[tuple[str, bytes]]) -> None:
        """Decode ahead the station_status files among ``files`` ((name, bytes), in the order they will be added), in one
        call of the C decoder (the GIL released: another thread hashes the files meanwhile). Files then added are read
        from it as long as they are these very objects in this order; at the first other one, what is left of it is
        dropped and files are decoded as they come. Without the C decoder, nothing is done."""
        if NATIVE_STATUS is None:
            return
        status = [(n, d) for n, d in files if type(d) is bytes and kind_from_name(n) == "station_status"]
        if not status:
            return
        results, n_rows, cols = NATIVE_STATUS([d for _, d in status], [n for n, _ in status], NATIVE_THREADS)
        rows, first = 0, []
        for got in results:  # the first row of each file's rows in the batch
            first.append(rows)
            rows += got[3] if got is not None else 0
        self._primed = {"data": [d for _, d in status], "results": results, "first": first, "at": 0,
                        "batch": _status_batch(n_rows, cols) if n_rows else None}

    def _from_primed(self, pending: list) -> tuple | None:
        """Return (results, record batch, its first row) of ``pending`` from the primed decode if it holds them next, in order."""
        primed = self._primed
        if primed is None:
            return None
        at, data = primed["at"], primed["data"]
        if len(pending) > len(data) - at or any(d is not data[at + k] for k, (_, d, _) in enumerate(pending)):
            self._primed = None  # another file came (a duplicate was skipped): decode as files come
            return None
        primed["at"] = at + len(pending)
        if primed["at"] == len(data):
            self._primed = None
        return primed["results"][at:at + len(pending)], primed["batch"], primed["first"][at]

    def _flush_status(self) -> None:
        """Read the held-back station_status files: in C those it reads exactly as _add_status_typed would (the same rows,
        bookkeeping and schema sampling), the others by the Python path, in the order they were added."""
        pending, self._pending = self._pending, []
        got_primed = self._from_primed(pending)
        if got_primed is not None:
            results, batch, base = got_primed
        else:
            results, n_rows, cols = NATIVE_STATUS([d for _, d, _ in pending], [nm for nm, _, _ in pending], NATIVE_THREADS)
            batch, base = (_status_batch(n_rows, cols) if n_rows else None), 0
        c = self.cols["station_status"]
        done = start = base  # rows of ``batch`` read so far / not yet in _status_parts
        seen, types = self.status_station_ids, self.types_in_station_status
        for (name, data, sha256), got in zip(pending, results):
            if got is None:
                if done > start:
                    self._status_parts.append(batch.slice(start, done - start))
                    start = done
                self._add(name, data, sha256)
                continue
            if c["file"]:  # rows of the Python path come before these
                self._seal_status()
            ts, ttl, declared, n, new_sids, new_tids = got
            version = declared or self.opts.version or self.discovery_version or "1.0"
            if declared is None:
                self.missing_version[("station_status", version)] += 1
            self.versions["station_status"] = version
            self.versions_seen.setdefault(version, set()).add("station_status")
            for sid in new_sids:
                if sid not in seen:
                    seen[sid] = name
            for tid in new_tids:
                if tid not in types:
                    types[tid] = name
            self.accepted += n
            done += n
            checked = self._schema("station_status", version, data, declared, name, force=False)
            self._file(name, "station_status", version, ts, ttl, sha256, len(data), n, n, 0, checked, "read")
        if done > start:
            self._status_parts.append(batch.slice(start, done - start))

    def _seal_status(self) -> None:
        """Move the station_status rows of the Python path into _status_parts (after the C decoder's rows before them)."""
        c = self.cols["station_status"]
        schema = SCHEMAS["station_status"]
        self._status_parts.append(pa.RecordBatch.from_arrays([pa.array(c[f.name], f.type) for f in schema], schema=schema))
        for col in c.values():
            col.clear()

    def add(self, name: str, data: bytes, *, sha256: str = "") -> None:
        """Read one file of the batch. A gbfs.json should come first: its version is the default of files without one.
        With the C decoder, station_status files are held back and read together when another kind of file comes, every
        NATIVE_BATCH files and at :meth:`finish`, in the order they were added."""
        if kind_from_name(name) == "station_status":
            if NATIVE_STATUS is not None and type(data) is bytes:
                self._pending.append((name, data, sha256))
                if len(self._pending) >= NATIVE_BATCH:
                    self._flush_status()
                return
        if self._pending:
            self._flush_status()
        self._add(name, data, sha256)

    def _add(self, name: str, data: bytes, sha256: str) -> None:
        if kind_from_name(name) == "station_status" and self._add_status_typed(name, data, sha256):
            return
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            self.findings.add("invalid_json", "ERROR", f"not JSON: {' '.join(str(exc).split())[:200]}", file=name)
            self.findings.quarantine_row(name, None, "invalid_json", "the file is not JSON", data[:2000].decode("utf-8", "replace"))
            self._file(name, kind_from_name(name), None, None, None, sha256, len(data), 1, 0, 1, False, "invalid_json")
            self.quarantined += 1
            return
        kind = kind_from_name(name)
        if kind is None or (kind in READ_KINDS and kind_from_content(doc) not in (None, kind)):
            kind = kind_from_content(doc) or kind
        if kind is None:
            self.findings.add("unknown_gbfs_file", "INFO", "neither the name nor the contents say which GBFS file this is", file=name)
            self._file(name, None, None, None, None, sha256, len(data), 0, 0, 0, False, "unknown")
            return
        if not isinstance(doc, dict):
            doc = {"data": doc}
        declared = doc.get("version") if isinstance(doc.get("version"), str) else None
        version = declared or self.opts.version or self.discovery_version or "1.0"
        if declared is None:
            self.missing_version[(kind, version)] += 1
        self.versions[kind] = version
        self.versions_seen.setdefault(version, set()).add(kind)
        ts = epoch_of(doc.get("last_updated"))
        ttl = doc.get("ttl") if type(doc.get("ttl")) is int and 0 <= doc["ttl"] <= MAX_INT else None
        if kind not in READ_KINDS:
            self._file(name, kind, version, ts, ttl, sha256, len(data), 0, 0, 0, False, "kept")
            return
        if kind == "gbfs":
            self.discovery_version = self.discovery_version or declared
        data_obj = doc.get("data") if isinstance(doc.get("data"), dict) else {}
        q0 = self.quarantined
        n_in = n_ok = 0
        if kind != "gbfs":
            if ts is None:
                rows = self._rows(kind, data_obj)
                for r in rows:
                    self.findings.quarantine_row(name, None, "invalid_last_updated", "the snapshot's last_updated is missing or not a time", _raw(r))
                self.findings.add("invalid_last_updated", "ERROR", f"last_updated {doc.get('last_updated')!r} is not a time; "
                                  f"{len(rows)} rows quarantined", file=name, field="last_updated")
                self.quarantined += len(rows)
                n_in = len(rows)
            else:
                n_in, n_ok = getattr(self, f"_read_{'vehicle_status' if kind == 'free_bike_status' else kind}")(name, ts, data_obj, version, doc)
        checked = self._schema(kind, version, doc, declared, name, force=self.quarantined > q0)
        self._file(name, kind, version, ts, ttl, sha256, len(data), n_in, n_ok, n_in - n_ok, checked, "read")


    def _reported_and_seen(self, reported: list, sids, name: str) -> None:
        """Add the stations' last_reported (epoch seconds; a value that is no date of the years 1 to 9999, or not a number,
        is read as missing: discover.epoch_of) and remember the file that first listed each station in a status."""
        c = self.cols["station_status"]
        c["last_reported"].extend(reported if set(map(type, reported)) <= _INT and MIN_EPOCH <= min(reported)
                                  and max(reported) <= MAX_EPOCH else [epoch_of(x) for x in reported])
        seen = self.status_station_ids
        for sid in sids:
            if sid not in seen:
                seen[sid] = name

    def _add_status_typed(self, name: str, data: bytes, sha256: str) -> bool:
        """Read a station_status whose every station is well formed, decoded to typed objects; return False (nothing
        read) for any other document, which the general reader then reads. The rows are those the general reader makes."""
        try:
            doc = _STATUS_DECODER.decode(data)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):  # msgspec raises the last on text that is not UTF-8
            return False
        if not data.isascii():  # msgspec skips the fields it does not read without checking their UTF-8; json.loads does not
            try:
                data.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                return False
        stations = doc.data.stations
        ts = epoch_of(doc.last_updated)
        if not stations or ts is None:  # no station: the contents say station_information; no time: quarantined
            return False
        bikes = [s.num_bikes_available if s.num_bikes_available is not None else s.num_vehicles_available for s in stations]
        if None in bikes or min(bikes) < 0 or max(bikes) > MAX_INT:
            return False  # the general reader quarantines those rows
        declared = doc.version
        version = declared or self.opts.version or self.discovery_version or "1.0"
        if declared is None:
            self.missing_version[("station_status", version)] += 1
        self.versions["station_status"] = version
        self.versions_seen.setdefault(version, set()).add("station_status")
        c = self.cols["station_status"]
        n = len(stations)
        sids = [s.station_id for s in stations]
        c["file"].extend([name] * n)
        c["snapshot_ts"].extend([ts] * n)
        c["station_id"].extend(sids)
        c["num_bikes_available"].extend(bikes)
        c["num_docks_available"].extend(_typed_counts([s.num_docks_available for s in stations]))
        c["num_bikes_disabled"].extend(_typed_counts([s.num_bikes_disabled if s.num_bikes_disabled is not None
                                                      else s.num_vehicles_disabled for s in stations]))
        c["num_docks_disabled"].extend(_typed_counts([s.num_docks_disabled for s in stations]))
        c["is_installed"].extend(_typed_flags([s.is_installed for s in stations]))
        c["is_renting"].extend(_typed_flags([s.is_renting for s in stations]))
        c["is_returning"].extend(_typed_flags([s.is_returning for s in stations]))
        self._reported_and_seen([s.last_reported for s in stations], sids, name)
        types = self.types_in_station_status
        vtas = [s.vehicle_types_available for s in stations]
        for vta in vtas if vtas.count(None) < n else ():
            if vta:
                for v in vta:
                    if v.vehicle_type_id is not None and v.vehicle_type_id not in types:
                        types[v.vehicle_type_id] = name
        self.accepted += n
        checked = self._schema("station_status", version, data, declared, name, force=False)
        ttl = doc.ttl if doc.ttl is not None and 0 <= doc.ttl <= MAX_INT else None
        self._file(name, "station_status", version, ts, ttl, sha256, len(data), n, n, 0, checked, "read")
        return True

    def _rows(self, kind: str, data: dict) -> list:
        key = {"station_information": "stations", "station_status": "stations", "free_bike_status": "bikes",
               "vehicle_status": "vehicles", "vehicle_types": "vehicle_types"}.get(kind)
        rows = data.get(key) if key else [data]
        return rows if isinstance(rows, list) else []

    def _file(self, *values) -> None:
        for k, v in zip(self.cols["files"], values):
            self.cols["files"][k].append(v)

    def _schema(self, kind: str, version: str, doc: dict, declared: str | None, name: str, *, force: bool) -> bool:
        series = kind in ("station_status", "free_bike_status", "vehicle_status")
        i = self.series_index[kind]
        self.series_index[kind] += 1
        if series and self.opts.schema_check == "sample" and not force and i % self.opts.sample_every:
            self.last_unchecked[kind] = (doc, version, declared, name)
            return False
        self.last_unchecked.pop(kind, None)
        self._validate(kind, version, doc, declared, name)
        return True

    def _validate(self, kind, version, doc, declared, name) -> None:
        if isinstance(doc, bytes):  # a snapshot read by the typed decoder: its JSON tree is made only when it is checked
            doc = json.loads(doc)
        checked = doc if declared is not None else {**doc, "version": version}  # a missing version is reported once per kind
        for n in schema_notices(checked, kind=kind, version=version, file=name):
            if n.code == "no_schema_for_version":
                if (kind, version) in self.no_schema:
                    continue
                self.no_schema.add((kind, version))
            self.findings.add(n.code, n.severity, n.message, file=n.file, field=n.field, value=n.value)

    def _quarantine(self, name: str, line: int, code: str, reason: str, row) -> None:
        self.findings.quarantine_row(name, line, code, reason, _raw(row))
        self.quarantined += 1

    # ------------------------------------------------------------------ kinds

    def _read_station_status(self, name: str, ts: int, data: dict, version: str, doc: dict) -> tuple[int, int]:
        stations = data.get("stations")
        if not isinstance(stations, list):
            return 0, 0
        fast = self._station_status_fast(name, ts, stations)
        if fast is not None:
            return fast
        c = self.cols["station_status"]
        f_, t_, sid_, nb_, nd_, bd_, dd_ = (c["file"], c["snapshot_ts"], c["station_id"], c["num_bikes_available"],
                                            c["num_docks_available"], c["num_bikes_disabled"], c["num_docks_disabled"])
        inst_, rent_, ret_, lr_ = c["is_installed"], c["is_renting"], c["is_returning"], c["last_reported"]
        seen = self.status_station_ids
        types = self.types_in_station_status
        ok = 0
        for i, st in enumerate(stations):
            if type(st) is not dict:
                self._quarantine(name, i + 1, "invalid_station_status", "a station status is not a JSON object", st)
                continue
            sid = st.get("station_id")
            nb = st.get("num_bikes_available")
            if nb is None:
                nb = st.get("num_vehicles_available")  # 3.0
            if type(sid) is not str or type(nb) is not int or not 0 <= nb <= MAX_INT:
                if type(sid) is int:
                    sid = str(sid)
                else:
                    self._quarantine(name, i + 1, "invalid_station_status",
                                     "station_id missing" if type(sid) is not str else f"num_bikes_available {nb!r} is not a whole number ≥ 0", st)
                    continue
                if type(nb) is not int or not 0 <= nb <= MAX_INT:
                    self._quarantine(name, i + 1, "invalid_station_status", f"num_bikes_available {nb!r} is not a whole number ≥ 0", st)
                    continue
            nd = st.get("num_docks_available")
            f_.append(name)
            t_.append(ts)
            sid_.append(sid)
            nb_.append(nb)
            nd_.append(nd if type(nd) is int and 0 <= nd <= MAX_INT else None)
            bd = st.get("num_bikes_disabled")
            if bd is None:
                bd = st.get("num_vehicles_disabled")
            bd_.append(bd if type(bd) is int and 0 <= bd <= MAX_INT else None)
            dd = st.get("num_docks_disabled")
            dd_.append(dd if type(dd) is int and 0 <= dd <= MAX_INT else None)
            inst_.append(_bool(st.get("is_installed")))
            rent_.append(_bool(st.get("is_renting")))
            ret_.append(_bool(st.get("is_returning")))
            lr = st.get("last_reported")
            lr_.append(epoch_of(lr))
            if sid not in seen:
                seen[sid] = name
            vta = st.get("vehicle_types_available")
            if vta:
                for v in vta if isinstance(vta, list) else ():
                    tid = v.get("vehicle_type_id") if isinstance(v, dict) else None
                    if isinstance(tid, str) and tid not in types:
                        types[tid] = name
            ok += 1
        self.accepted += ok
        return len(stations), ok

    def _station_status_fast(self, name: str, ts: int, stations: list) -> tuple[int, int] | None:
        """Return (rows in, rows accepted) of a snapshot whose every station has a text station_id and a whole number
        >= 0 of bikes, read column by column; None for any other snapshot (the row-by-row reader then quarantines)."""
        try:
            key = "num_bikes_available" if "num_bikes_available" in stations[0] else "num_vehicles_available"
            sids = [st["station_id"] for st in stations]
            bikes = [st[key] for st in stations]
        except (KeyError, TypeError, IndexError):
            return None
        if set(map(type, sids)) != {str} or set(map(type, bikes)) != _INT or min(bikes) < 0 or max(bikes) > MAX_INT:
            return None
        c = self.cols["station_status"]
        n = len(stations)
        c["file"].extend([name] * n)
        c["snapshot_ts"].extend([ts] * n)
        c["station_id"].extend(sids)
        c["num_bikes_available"].extend(bikes)
        c["num_docks_available"].extend(_counts([st.get("num_docks_available") for st in stations]))
        dis = [st.get("num_bikes_disabled") for st in stations]
        if None in dis:
            dis = [x if x is not None else st.get("num_vehicles_disabled") for x, st in zip(dis, stations)]
        c["num_bikes_disabled"].extend(_counts(dis))
        c["num_docks_disabled"].extend(_counts([st.get("num_docks_disabled") for st in stations]))
        for col in ("is_installed", "is_renting", "is_returning"):
            c[col].extend(_bools([st.get(col) for st in stations]))
        self._reported_and_seen([st.get("last_reported") for st in stations], sids, name)
        for vta in [st.get("vehicle_types_available") for st in stations]:
            for v in vta if isinstance(vta, list) else ():
                tid = v.get("vehicle_type_id") if isinstance(v, dict) else None
                if isinstance(tid, str) and tid not in self.types_in_station_status:
                    self.types_in_station_status[tid] = name
        self.accepted += n
        return n, n

    def _read_station_information(self, name: str, ts: int, data: dict, version: str, doc: dict) -> tuple[int, int]:
        stations = data.get("stations")
        if not isinstance(stations, list):
            return 0, 0
        c = self.cols["station_information"]
        lang = self.opts.language
        ok = 0
        for i, st in enumerate(stations):
            sid = st.get("station_id") if isinstance(st, dict) else None
            sid = str(sid) if type(sid) is int else sid
            lat, lon = (_num(st.get("lat")), _num(st.get("lon"))) if isinstance(st, dict) else (None, None)
            if not isinstance(sid, str) or lat is None or lon is None:
                self._quarantine(name, i + 1, "invalid_station_information", "station_id, lat or lon missing", st)
                continue
            for k, v in (("file", name), ("snapshot_ts", ts), ("station_id", sid), ("name", _text(st.get("name"), lang)),
                         ("short_name", _text(st.get("short_name"), lang)), ("lat", lat), ("lon", lon),
                         ("capacity", _int(st.get("capacity"))), ("region_id", _text(st.get("region_id"))),
                         ("address", _text(st.get("address"), lang)), ("is_virtual_station", _bool(st.get("is_virtual_station")))):
                c[k].append(v)
            self.known_station_ids.add(sid)
            ok += 1
        self.accepted += ok
        return len(stations), ok

    def _read_vehicle_status(self, name: str, ts: int, data: dict, version: str, doc: dict) -> tuple[int, int]:
        vehicles = data.get("bikes", data.get("vehicles"))
        if not isinstance(vehicles, list):
            return 0, 0
        c = self.cols["vehicle_status"]
        ids_here: set[str] = set()
        dups = 0
        rotation = version >= "2.0"
        first = self.first_seen
        ok = 0
        for i, v in enumerate(vehicles):
            if type(v) is not dict:
                self._quarantine(name, i + 1, "invalid_vehicle_status", "a vehicle is not a JSON object", v)
                continue
            lat, lon = _num(v.get("lat")), _num(v.get("lon"))
            station = v.get("station_id")
            station = station if isinstance(station, str) else None
            if (lat is None or lon is None) and station is None:
                self._quarantine(name, i + 1, "invalid_vehicle_status", "neither lat/lon nor station_id", v)
                continue
            vid = v.get("bike_id", v.get("vehicle_id"))
            if isinstance(vid, str):
                if vid in ids_here:
                    dups += 1
                ids_here.add(vid)
                if rotation and lat is not None:
                    prev = first.get(vid)
                    if prev is None:
                        if len(first) < MAX_TRACKED_IDS:
                            first[vid] = (lat, lon)
                    elif vid not in self.not_rotated and _far(prev, (lat, lon)):
                        self.not_rotated.add(vid)
            tid = v.get("vehicle_type_id")
            tid = tid if isinstance(tid, str) else None
            c["file"].append(name)
            c["snapshot_ts"].append(ts)
            c["vehicle_type_id"].append(tid)
            c["lat"].append(lat)
            c["lon"].append(lon)
            c["station_id"].append(station)
            c["is_reserved"].append(_bool(v.get("is_reserved")))
            c["is_disabled"].append(_bool(v.get("is_disabled")))
            c["current_range_meters"].append(_num(v.get("current_range_meters")))
            lr = v.get("last_reported")
            c["last_reported"].append(epoch_of(lr))
            if tid is not None and tid not in self.types_in_vehicles:
                self.types_in_vehicles[tid] = name
            if station is not None and station not in self.vehicle_station_ids:
                self.vehicle_station_ids[station] = name
            ok += 1
        if dups:
            self.findings.add("duplicate_vehicle_id", "WARNING", f"{dups} vehicle id(s) listed more than once in this snapshot",
                              file=name, field="bike_id" if version < "3.0" else "vehicle_id")
        self.accepted += ok
        return len(vehicles), ok

    def _read_system_information(self, name: str, ts: int, data: dict, version: str, doc: dict) -> tuple[int, int]:
        c = self.cols["system_information"]
        lang = self.opts.language
        for k, v in (("file", name), ("snapshot_ts", ts), ("system_id", _text(data.get("system_id"))),
                     ("name", _text(data.get("name"), lang)), ("operator", _text(data.get("operator"), lang)),
                     ("language", _text(data.get("language"))), ("timezone", _text(data.get("timezone"))), ("version", version)):
            c[k].append(v)
        self.has_system_information = True
        tz = data.get("timezone")
        if isinstance(tz, str):
            self.timezone = tz
        self.accepted += 1
        return 1, 1

    def _read_vehicle_types(self, name: str, ts: int, data: dict, version: str, doc: dict) -> tuple[int, int]:
        types = data.get("vehicle_types")
        if not isinstance(types, list):
            return 0, 0
        c = self.cols["vehicle_types"]
        if self.known_type_ids is None:
            self.known_type_ids = set()
        ok = 0
        for i, t in enumerate(types):
            tid = t.get("vehicle_type_id") if isinstance(t, dict) else None
            if not isinstance(tid, str):
                self._quarantine(name, i + 1, "schema_error", "vehicle_type_id missing", t)
                continue
            for k, v in (("file", name), ("snapshot_ts", ts), ("vehicle_type_id", tid), ("form_factor", _text(t.get("form_factor"))),
                         ("propulsion_type", _text(t.get("propulsion_type"))), ("name", _text(t.get("name"), self.opts.language)),
                         ("max_range_meters", _num(t.get("max_range_meters")))):
                c[k].append(v)
            self.known_type_ids.add(tid)
            ok += 1
        self.accepted += ok
        return len(types), ok

    # ------------------------------------------------------------------ end

    def finish(self) -> Parsed:
        """Return the tables, and the findings including the rules across files."""
        if self._pending:
            self._flush_status()
        for kind, (doc, version, declared, name) in sorted(self.last_unchecked.items()):
            self._validate(kind, version, doc, declared, name)  # the last snapshot of each series is always checked
            files = self.cols["files"]
            j = max(i for i, f in enumerate(files["file"]) if f == name)
            files["schema_checked"][j] = True
        self.last_unchecked.clear()
        self._cross_file()
        tables = {t: pa.Table.from_arrays([pa.array(self.cols[t][f.name], f.type) for f in SCHEMAS[t]], schema=SCHEMAS[t])
                  for t in (*TABLES, "files") if t != "station_status" or not self._status_parts}  # column by column: pa.table(dict) would import pandas
        if self._status_parts:
            if self.cols["station_status"]["file"]:
                self._seal_status()
            parts, self._status_parts = self._status_parts, []
            table = pa.Table.from_batches(parts, schema=SCHEMAS["station_status"])
            tables["station_status"] = table if len(parts) == 1 else table.combine_chunks()
            tables = {t: tables[t] for t in (*TABLES, "files")}
        rows_in = self.accepted + self.quarantined
        return Parsed(tables=tables, findings=self.findings, rows_in=rows_in, rows_accepted=self.accepted,
                      rows_quarantined=self.quarantined, versions=dict(self.versions), timezone=self.timezone,
                      station_ids=set(self.known_station_ids), vehicle_type_ids=set(self.known_type_ids or ()))

    def _cross_file(self) -> None:
        add = self.findings.add
        for (kind, version), n in sorted(self.missing_version.items()):
            if kind == "gbfs" and version == "1.0":
                continue
            add("missing_version", "WARNING", f"{n} {kind} file(s) declare no version; read as GBFS {version}", file=f"{kind}.json", field="version")
        if len(self.versions_seen) > 1:
            desc = "; ".join(f"{v}: {', '.join(sorted(k))}" for v, k in sorted(self.versions_seen.items()))
            add("version_mismatch", "INFO", f"the files declare different GBFS versions ({desc})", field="version")
        kinds = {k for k in self.cols["files"]["kind"] if k}
        if not self.has_system_information and kinds & {"station_status", "free_bike_status", "vehicle_status", "station_information"}:
            add("missing_system_information", "WARNING", "no system_information.json among the files; the spec's time zone is used",
                file="system_information.json")
        if self.status_station_ids and not self.known_station_ids:
            add("missing_station_information", "ERROR", f"{len(self.status_station_ids)} stations have a status but there is no "
                "station_information.json", file="station_information.json")
        elif self.known_station_ids:
            for sid, f in sorted(self.status_station_ids.items()):
                if sid not in self.known_station_ids:
                    add("station_not_in_station_information", "WARNING", f"station {sid} has a status but is not in station_information",
                        file=f, field="station_id", value=sid)
            for sid, f in sorted(self.vehicle_station_ids.items()):
                if sid not in self.known_station_ids:
                    add("invalid_reference_to_station_in_vehicle_status", "WARNING", f"a vehicle is at station {sid}, which is not in "
                        "station_information", file=f, field="station_id", value=sid)
        declared = self.known_type_ids
        for refs, code, where in ((self.types_in_station_status, "invalid_reference_to_vehicle_types_in_station_status",
                                   "vehicle_types_available.vehicle_type_id"),
                                  (self.types_in_vehicles, "invalid_reference_to_vehicle_types_in_vehicle_status", "vehicle_type_id")):
            for tid, f in sorted(refs.items()):
                if declared is None:
                    add(code, "WARNING", f"vehicle type {tid} is referenced but there is no vehicle_types.json to declare it",
                        file=f, field=where, value=tid)
                elif tid not in declared:
                    add(code, "WARNING", f"vehicle type {tid} is not declared in vehicle_types.json", file=f, field=where, value=tid)
        if self.not_rotated:
            add("vehicle_id_not_rotated", "INFO", f"{len(self.not_rotated)} vehicle(s) kept their id after moving more than "
                f"{MOVED_M:g} m between snapshots; ids are not stored", file="free_bike_status.json", field="bike_id")


def _status_batch(n: int, cols: tuple) -> pa.RecordBatch:
    """Return noriba_wire.gbfs_status's column buffers as a station_status record batch (no copy)."""
    foff, fdata, ts, soff, sdata, nb, *rest = cols
    buf = pa.py_buffer

    def nullable(typ, col):
        valid, values, nulls = col
        return pa.Array.from_buffers(typ, n, [buf(valid) if nulls else None, buf(values)], null_count=nulls)

    arrays = [pa.Array.from_buffers(_S, n, [None, buf(foff), buf(fdata)], null_count=0),
              pa.Array.from_buffers(_I, n, [None, buf(ts)], null_count=0),
              pa.Array.from_buffers(_S, n, [None, buf(soff), buf(sdata)], null_count=0),
              pa.Array.from_buffers(_I, n, [None, buf(nb)], null_count=0),
              *(nullable(_I, col) for col in rest[:3]), *(nullable(_B, col) for col in rest[3:6]), nullable(_I, rest[6])]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMAS["station_status"])


def _far(a: tuple[float, float], b: tuple[float, float]) -> bool:
    dy = (a[0] - b[0]) * 111_320.0
    dx = (a[1] - b[1]) * 111_320.0 * cos(radians(a[0]))
    return dx * dx + dy * dy > MOVED_M * MOVED_M


def sort_key(name: str) -> tuple:
    """Return the order files are read in: gbfs.json first (its version is the default), information before status, then by name."""
    kind = kind_from_name(name)
    rank = {"gbfs": 0, "system_information": 1, "vehicle_types": 2, "station_information": 3}.get(kind or "", 4)
    return (rank, name)
