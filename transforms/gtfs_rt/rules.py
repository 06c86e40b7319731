"""Realtime validation rules with MobilityData gtfs-realtime-validator's codes (E001…, W001…), one rule per unit.

A rule checks one parsed snapshot (a ``FeedMessage``, upb) through a :class:`Check`: the message,
the file it came from, when it was fetched, the previous snapshot of the same part (for E017,
E018, W007) and, for the rules that need it, a :class:`StaticIndex` of the static feed it belongs
to (trip, route and stop ids, stop_times per trip, the stops' area). A rule whose input is
missing (no static feed, no previous snapshot, no fetch time) is skipped, never guessed.

Each finding is a notice in transforms/notices.py's shape: file = the snapshot, line = the
entity's position in the message (1-based; null for the header), field, value and a message
naming the entity. :func:`validate` runs every rule and returns a :class:`Findings`.
:data:`RULES` lists the rules' documentation entries (stage ``realtime``) for the registry, reports
and policy.
"""

from __future__ import annotations

import csv
import io
import math
import re
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from transforms.notices import ERROR, WARNING, Findings
from transforms.rules.engine import Rule

if TYPE_CHECKING:
    from google.transit import gtfs_realtime_pb2 as pb

#: POSIX seconds accepted as a time: 2000-01-01 to 2100-01-01 (a value in milliseconds is far above).
MIN_POSIX, MAX_POSIX = 946_684_800, 4_102_444_800
#: W008: a header older than this (seconds) at fetch time is stale.
STALE_S = 65
#: W007: snapshots further apart than this (seconds) are refreshed too slowly.
REFRESH_S = 35
#: E050: an entity timestamp later than the fetch by more than this (seconds) is in the future.
FUTURE_S = 60
#: W004: a speed above this (m/s, about 60 mph; the validator's MAX_REALISTIC_SPEED_METERS_PER_SECOND) is unrealistic.
MAX_SPEED = 26.0
#: E028: how far outside the static feed's stops and shapes a vehicle may be (m).
REGION_BUFFER_M = 1609
#: E029: how far from its trip's shape a vehicle may be (m), the validator's TRIP_BUFFER_METERS.
TRIP_BUFFER_M = 200

# The enum values of gtfs-realtime.proto, written out so that importing the rules (the registry does) loads no protobuf.
_TRIP_RELATIONSHIPS = {0: "SCHEDULED", 1: "ADDED", 2: "UNSCHEDULED", 3: "CANCELED", 5: "REPLACEMENT", 6: "DUPLICATED", 7: "DELETED",
                       8: "NEW"}
_ADDED, _UNSCHEDULED, _CANCELED = 1, 2, 3  # TripDescriptor.ScheduleRelationship
_SKIPPED, _NO_DATA = 1, 2  # TripUpdate.StopTimeUpdate.ScheduleRelationship
_DETOUR = 4  # Alert.Effect
_FULL_DATASET = 0  # FeedHeader.Incrementality
_START_TIME = re.compile(r"\d{2}:[0-5]\d:[0-5]\d\Z")
_START_DATE = re.compile(r"\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\Z")


# ---------------------------------------------------------------- the static feed

def _secs(v) -> int | None:
    """Return seconds of 'H:MM:SS' or of a number of seconds (the warehouse's time columns); None if neither."""
    text = str(v).strip() if v is not None else ""
    if text.isdigit():
        return int(text)
    parts = text.split(":")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        h, m, sec = map(int, parts)
        return h * 3600 + m * 60 + sec
    return None


@dataclass
class StaticIndex:
    """What realtime rules need of a static feed: ids, each trip's route, direction, stops in order, and the served area."""

    trips: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)  # trip_id -> (route_id, direction_id)
    routes: set[str] = field(default_factory=set)
    agencies: set[str] = field(default_factory=set)
    untimed: dict[str, set] = field(default_factory=dict)  # trip_id -> stop_sequences and stop_ids with neither arrival nor departure time
    stops: dict[str, int] = field(default_factory=dict)  # stop_id -> location_type (0 when empty)
    stop_times: dict[str, dict[int, str]] = field(default_factory=dict)  # trip_id -> {stop_sequence: stop_id}
    first_times: dict[str, str] = field(default_factory=dict)  # trip_id -> first arrival (or departure) time, HH:MM:SS
    frequency_trips: set[str] = field(default_factory=set)
    frequencies: dict[str, list[tuple[int, int, int, int]]] = field(default_factory=dict)  # trip_id -> [(start s, end s, headway s, exact_times)]
    trip_shapes: dict[str, str] = field(default_factory=dict)  # trip_id -> shape_id
    shapes: dict[str, tuple] = field(default_factory=dict)  # shape_id -> (lat array, lon array) in shape_pt_sequence order
    bbox: tuple[float, float, float, float] | None = None  # min_lat, min_lon, max_lat, max_lon of stops and shapes

    @classmethod
    def from_rows(cls, *, trips, routes, stops, stop_times, frequencies=(), shapes=(), agencies=()) -> "StaticIndex":
        """Return the index of rows given as dicts of GTFS text (stop_times and shapes in any order)."""
        import numpy as np

        ix = cls()
        for r in routes:
            ix.routes.add(r["route_id"])
        ix.agencies = {a["agency_id"] for a in agencies if a.get("agency_id")}
        for t in trips:
            d = (t.get("direction_id") or "").strip()
            ix.trips[t["trip_id"]] = (t.get("route_id") or None, int(d) if d.isdigit() else None)
            if t.get("shape_id"):
                ix.trip_shapes[t["trip_id"]] = t["shape_id"]
        lats, lons = [], []
        for s in stops:
            lt = (s.get("location_type") or "").strip()
            ix.stops[s["stop_id"]] = int(lt) if lt.isdigit() else 0
            try:
                lats.append(float(s["stop_lat"]))
                lons.append(float(s["stop_lon"]))
            except (KeyError, TypeError, ValueError):
                pass
        points: dict[str, list] = {}
        for r in shapes:
            try:
                pt = (float(r["shape_pt_sequence"]), float(r["shape_pt_lat"]), float(r["shape_pt_lon"]))
            except (KeyError, TypeError, ValueError):
                continue
            points.setdefault(r["shape_id"], []).append(pt)
            lats.append(pt[1])
            lons.append(pt[2])
        for sid, pts in points.items():
            pts.sort()
            ix.shapes[sid] = (np.array([p[1] for p in pts]), np.array([p[2] for p in pts]))
        if lats:
            ix.bbox = (min(lats), min(lons), max(lats), max(lons))
        first: dict[str, tuple[int, str]] = {}
        for st in stop_times:
            try:
                seq = int(st["stop_sequence"])
            except (KeyError, TypeError, ValueError):
                continue
            tid = st["trip_id"]
            ix.stop_times.setdefault(tid, {})[seq] = st.get("stop_id")
            t = str(st.get("arrival_time") or st.get("departure_time") or "").strip()
            if not t:
                ix.untimed.setdefault(tid, set()).update((seq, st.get("stop_id")))
            if t and (tid not in first or seq < first[tid][0]):
                first[tid] = (seq, t)
        ix.first_times = {tid: (t if len(t) == 8 else "0" + t) for tid, (_, t) in first.items()}
        for f in frequencies:
            start, end = _secs(f.get("start_time")), _secs(f.get("end_time"))
            head = _secs(f.get("headway_secs"))
            exact = str(f.get("exact_times") or "0").strip()
            ix.frequency_trips.add(f["trip_id"])
            if start is not None and end is not None and head:
                ix.frequencies.setdefault(f["trip_id"], []).append((start, end, head, 1 if exact == "1" else 0))
        return ix

    @classmethod
    def from_gtfs_zip(cls, path: Path) -> "StaticIndex":
        """Return the index of a GTFS zip (for tests and for a static feed outside the warehouse)."""
        with zipfile.ZipFile(path) as z:
            names = {Path(n).name: n for n in z.namelist()}

            def rows(name):
                if name not in names:
                    return []
                with z.open(names[name]) as fh:
                    return [{(k or "").strip(): (v or "").strip() for k, v in r.items()}
                            for r in csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8-sig"))]

            return cls.from_rows(trips=rows("trips.txt"), routes=rows("routes.txt"), stops=rows("stops.txt"),
                                 stop_times=rows("stop_times.txt"), frequencies=rows("frequencies.txt"), shapes=rows("shapes.txt"),
                                 agencies=rows("agency.txt"))

    @classmethod
    def from_warehouse(cls, con, feed_id: str, feed_version: str) -> "StaticIndex":
        """Return the index of one published static feed version (schema ``gtfs`` of the warehouse)."""
        def rows(table, cols):
            have = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'gtfs' "
                                               "AND table_name = ?", [table]).fetchall()}
            sel = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if c in have else f"NULL AS {c}" for c in cols)
            cur = con.execute(f"SELECT {sel} FROM gtfs.{table} WHERE feed_id = ? AND feed_version = ?", [feed_id, feed_version])
            return [dict(zip(cols, r)) for r in cur.fetchall()]

        shapes = rows("shapes", ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"])
        st = rows("stop_times", ["trip_id", "stop_sequence", "stop_id", "arrival_time", "departure_time"])
        for r in st:  # the warehouse keeps times as seconds after midnight
            for k in ("arrival_time", "departure_time"):
                v = r[k]
                if v is not None and v.lstrip("-").isdigit():
                    s = int(v)
                    r[k] = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
        return cls.from_rows(trips=rows("trips", ["trip_id", "route_id", "direction_id", "shape_id"]), routes=rows("routes", ["route_id"]),
                             stops=rows("stops", ["stop_id", "location_type", "stop_lat", "stop_lon"]), stop_times=st,
                             frequencies=rows("frequencies", ["trip_id", "start_time", "end_time", "headway_secs", "exact_times"]),
                             shapes=shapes, agencies=rows("agency", ["agency_id"]))


# ---------------------------------------------------------------- what a rule sees

@dataclass
class Snapshot:
    message: pb.FeedMessage
    file: str = ""
    fetched_at: int | None = None  # POSIX seconds; None when unknown (then W008 and E050 are skipped)
    data: bytes | None = None  # the bytes the message was parsed from (else it is serialised again for the columnar checks)


@dataclass
class Check:
    snapshot: Snapshot
    previous: Snapshot | None = None
    static: StaticIndex | None = None
    other: Snapshot | None = None  # the TripUpdates snapshot of the same moment, for a VehiclePositions one (W003, E047)

    @property
    def header(self) -> pb.FeedHeader:
        return self.snapshot.message.header

    _cache: dict = field(default_factory=dict, repr=False)  # the lists below, built once per snapshot for every rule

    def entities(self) -> list[tuple[int, pb.FeedEntity]]:
        if "entities" not in self._cache:
            self._cache["entities"] = list(enumerate(self.snapshot.message.entity, 1))
        return self._cache["entities"]

    def trips(self) -> list[tuple[int, pb.FeedEntity, pb.TripDescriptor, str]]:
        """Return (line, entity, trip descriptor, 'trip_update' or 'vehicle') for every entity that has a trip."""
        if "trips" not in self._cache:
            out = []
            for i, e in self.entities():
                if e.HasField("trip_update"):
                    out.append((i, e, e.trip_update.trip, "trip_update"))
                if e.HasField("vehicle") and e.vehicle.HasField("trip"):
                    out.append((i, e, e.vehicle.trip, "vehicle"))
            self._cache["trips"] = out
        return self._cache["trips"]

    def stus(self) -> list[tuple[int, pb.FeedEntity, list[tuple]]]:
        """Return (line, entity, its stop_time_updates as :func:`_stu` tuples) for every trip update (read once per snapshot)."""
        if "stus" not in self._cache:
            self._cache["stus"] = [(i, e, [_stu(s) for s in e.trip_update.stop_time_update])
                                   for i, e in self.entities() if e.HasField("trip_update")]
        return self._cache["stus"]


    def cols(self) -> "StuColumns":
        """Return every stop_time_update of the snapshot as columns (decoded from the bytes with numpy; read once)."""
        if "cols" not in self._cache:
            self._cache["cols"] = StuColumns.of(self)
        return self._cache["cols"]

    def entity(self, line: int) -> pb.FeedEntity:
        return self.entities()[line - 1][1]

    def tu_lines(self) -> list[int]:
        """Return the lines of the entities that have a trip update."""
        if "tu_lines" not in self._cache:
            self._cache["tu_lines"] = [i for i, e in self.entities() if e.HasField("trip_update")]
        return self._cache["tu_lines"]

    def stu_counts(self, mask=None) -> dict[int, int]:
        """Return {line: stop_time_updates (those in ``mask``)} for the lines that have any."""
        import numpy as np

        x = self.cols()
        lines = x.line if mask is None else x.line[mask]
        u, n = np.unique(lines, return_counts=True)
        return dict(zip(u.tolist(), n.tolist()))


_EVENT_WIRE = {1: "varint", 2: "varint"}  # StopTimeEvent: delay, time
_STU_WIRE = {1: "varint", 2: ("message", _EVENT_WIRE), 3: ("message", _EVENT_WIRE), 4: "string", 5: "varint"}


def _repeated(buf, starts, ends, fieldno: int):
    """Return (lane, start, end) of every occurrence of length-delimited field ``fieldno`` in the messages
    ``buf[starts[i]:ends[i]]``, in order; None if a message holds something this walk does not read (then upb reads it)."""
    import numpy as np

    from transforms.gtfs_rt.wire import _varints

    lanes = np.arange(len(starts))
    pos, end = starts.astype(np.int64), ends.astype(np.int64)
    live = pos < end
    lanes, pos, end = lanes[live], pos[live], end[live]
    got: list[tuple] = []
    while len(lanes):
        key, pos, bad = _varints(buf, pos)
        fn, wt = (key >> np.uint64(3)).astype(np.int64), (key & np.uint64(7)).astype(np.int64)
        newpos = np.full(len(lanes), -1, dtype=np.int64)
        w0, w2 = wt == 0, wt == 2
        if w0.any():
            _, after, b0 = _varints(buf, pos[w0])
            newpos[w0] = after
            bad[w0] |= b0
        if w2.any():
            ln, after, b2 = _varints(buf, pos[w2])
            bad[w2] |= b2
            stop = after + ln.astype(np.int64)
            newpos[w2] = stop
            sel = fn[w2] == fieldno
            got.append((lanes[w2][sel], after[sel], stop[sel]))
        newpos[wt == 1] = pos[wt == 1] + 8
        newpos[wt == 5] = pos[wt == 5] + 4
        if bad.any() or (newpos < 0).any() or (newpos > end).any():
            return None
        stay = newpos < end
        lanes, pos, end = lanes[stay], newpos[stay], end[stay]
    if not got:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    lane, start, stop = (np.concatenate(x) for x in zip(*got))
    order = np.lexsort((start, lane))
    return lane[order], start[order], stop[order]


@dataclass
class StuColumns:
    """Every stop_time_update of a snapshot, one numpy array per value, in message order (the rules' vectorised input).

    ``line`` is the entity's line, ``pos`` the update's 1-based position in its trip update; an absent value is 0 with
    its ``has_`` mask false; ``stop`` is the stop_id ('' when absent) and ``stop_code`` an integer per distinct stop_id."""

    line: object
    pos: object
    seq: object
    has_seq: object
    stop: list
    stop_code: object
    rel: object
    has_rel: object
    has_arr: object
    arr_t: object
    has_arr_t: object
    arr_d: object
    has_arr_d: object
    has_dep: object
    dep_t: object
    has_dep_t: object
    dep_d: object
    has_dep_d: object

    def __len__(self) -> int:
        return len(self.line)

    @classmethod
    def of(cls, c: "Check") -> "StuColumns":
        """Return the columns of a checked snapshot: from its bytes with numpy; from upb when the bytes hold something
        the column decoder does not read (groups, a field of the wrong wire type)."""
        try:
            cols = cls._from_wire(c)
        except Exception:  # noqa: BLE001 (anything odd in the bytes: upb reads them below)
            cols = None
        return cols if cols is not None else cls._from_tuples(c)

    @classmethod
    def _from_wire(cls, c: "Check") -> "StuColumns | None":
        import numpy as np
        import pyarrow.compute as pc

        from transforms.gtfs_rt.parse import split_message
        from transforms.gtfs_rt.wire import decode, strings

        data = c.snapshot.data if c.snapshot.data is not None else c.snapshot.message.SerializeToString()
        _, ents = split_message(data)
        if len(ents) != len(c.entities()):
            return None
        lens = np.fromiter((len(e) for e in ents), dtype=np.int64, count=len(ents))
        ends = np.cumsum(lens)
        starts = ends - lens
        buf = np.frombuffer(b"".join(ents) + bytes(10), dtype=np.uint8)
        tu_lines = [i for i, e in c.entities() if e.HasField("trip_update")]
        occ = _repeated(buf, starts, ends, 3)  # FeedEntity.trip_update
        if occ is None:
            return None
        lane, tu_start, tu_end = occ
        if len(lane) != len(tu_lines) or (len(lane) and not np.array_equal(lane + 1, np.asarray(tu_lines))):
            return None  # a trip_update given twice in an entity (merged by upb): read it with upb
        occ = _repeated(buf, tu_start, tu_end, 2)  # TripUpdate.stop_time_update
        if occ is None:
            return None
        tu, st, en = occ
        out, fallback = decode(buf, st, en, _STU_WIRE)
        if fallback.any():
            return None
        n = len(st)
        line = (lane + 1)[tu] if n else np.zeros(0, np.int64)
        first = np.r_[True, tu[1:] != tu[:-1]] if n else np.zeros(0, bool)
        idx = np.arange(n)
        pos = idx - np.maximum.accumulate(np.where(first, idx, 0)) + 1 if n else np.zeros(0, np.int64)

        def event(f):
            sub, present, lanes = out[f]
            cols = []
            for k in (2, 1):  # time, delay
                v = np.zeros(n, np.int64)
                h = np.zeros(n, bool)
                v[lanes] = sub[k][0].view(np.int64)
                h[lanes] = sub[k][1]
                cols += [v, h]
            return present, cols[0], cols[1], np.where(cols[3], cols[2].astype(np.int32), 0).astype(np.int64), cols[3]

        stop_arr = strings(buf, out[4])  # null where absent or empty
        stop = ["" if x is None else x for x in stop_arr.to_pylist()]
        idx = pc.dictionary_encode(stop_arr).indices  # null where the stop_id is: read its buffer (to_numpy of nulls loads pandas)
        codes = (np.frombuffer(idx.buffers()[1], dtype=np.int32, count=len(idx) + idx.offset)[idx.offset:] if len(idx)
                 else np.zeros(0, np.int32))
        stop_code = np.where(out[4][2] & (out[4][1] > 0), codes, -1).astype(np.int64)
        seq, has_seq = out[1]
        rel, has_rel = out[5]
        return cls(line, pos, seq.view(np.int64), has_seq, stop, stop_code, rel.view(np.int64), has_rel, *event(2), *event(3))

    @classmethod
    def _from_tuples(cls, c: "Check") -> "StuColumns":
        import numpy as np

        rows = [(i, n, s) for i, _, stus in c.stus() for n, s in enumerate(stus, 1)]
        ids: dict[str, int] = {}

        def arr(vals, dtype=np.int64):
            return np.array(list(vals), dtype=dtype)

        def ev(k, j):
            values = arr((s[k][j] or 0) if s[k] is not None else 0 for _, _, s in rows)
            return values, arr((s[k] is not None and s[k][j] is not None for _, _, s in rows), bool)

        at, hat = ev(ARR, 0)
        ad, had = ev(ARR, 1)
        dt, hdt = ev(DEP, 0)
        dd, hdd = ev(DEP, 1)
        return cls(arr(i for i, _, _ in rows), arr(n for _, n, _ in rows), arr(s[SEQ] or 0 for _, _, s in rows),
                   arr((s[SEQ] is not None for _, _, s in rows), bool), [s[STOP] for _, _, s in rows],
                   arr(ids.setdefault(s[STOP], len(ids)) if s[STOP] else -1 for _, _, s in rows),
                   arr(s[REL] or 0 for _, _, s in rows), arr((s[REL] is not None for _, _, s in rows), bool),
                   arr((s[ARR] is not None for _, _, s in rows), bool), at, hat, ad, had,
                   arr((s[DEP] is not None for _, _, s in rows), bool), dt, hdt, dd, hdd)


def _first_per_line(line, hits):
    """Return the indices of ``hits`` (sorted indices) that are the first of their line."""
    import numpy as np

    if not len(hits):
        return hits
    keep = np.r_[True, line[hits][1:] != line[hits][:-1]]
    return hits[keep]


#: One finding: (line, field, value, message).
Found = tuple[int | None, str, object, str]


#: id(entity) -> _who(entity) while :func:`validate` runs in this thread (the Check holds every entity, so no id is reused).
_LOCAL = threading.local()


def _who(e: pb.FeedEntity) -> str:
    """Return how a message names an entity: its id, and its trip and vehicle when it has them (once per entity and snapshot)."""
    cache = getattr(_LOCAL, "who", None)
    if cache is None:
        return _name(e)
    got = cache.get(id(e))
    if got is None:
        got = cache[id(e)] = _name(e)
    return got


def _name(e: pb.FeedEntity) -> str:
    out = f"entity {e.id}"
    trip = e.trip_update.trip if e.HasField("trip_update") else e.vehicle.trip if e.HasField("vehicle") else None
    if trip is not None and trip.trip_id:
        out += f" (trip_id {trip.trip_id})"
    veh = e.vehicle.vehicle if e.HasField("vehicle") else e.trip_update.vehicle if e.HasField("trip_update") else None
    if veh is not None and veh.id:
        out += f" (vehicle_id {veh.id})"
    return out


#: A stop_time_update as the rules read it, one tuple (the protobuf is read once; rules compare plain values):
#: (stop_sequence or None, stop_id ('' when absent), schedule_relationship or None, arrival, departure), where an
#: event is None when absent, else (time or None, delay or None).
SEQ, STOP, REL, ARR, DEP = range(5)


def _event(ev) -> tuple[int | None, int | None]:
    return (ev.time if ev.HasField("time") else None, ev.delay if ev.HasField("delay") else None)


def _stu(s) -> tuple:
    return (s.stop_sequence if s.HasField("stop_sequence") else None, s.stop_id,
            s.schedule_relationship if s.HasField("schedule_relationship") else None,
            _event(s.arrival) if s.HasField("arrival") else None, _event(s.departure) if s.HasField("departure") else None)


# ---------------------------------------------------------------- the rules

def e001(c: Check) -> Iterator[Found]:
    def bad(v):
        return v and not (MIN_POSIX <= v < MAX_POSIX)
    if c.header.HasField("timestamp") and bad(c.header.timestamp):
        yield None, "header.timestamp", c.header.timestamp, f"header.timestamp {c.header.timestamp} is not POSIX seconds"
    cols = c.cols()
    stu_bad: dict[int, list] = {}  # line -> [(update index, 'arrival' | 'departure', time)], in message order
    for name, t, h in (("arrival", cols.arr_t, cols.has_arr_t), ("departure", cols.dep_t, cols.has_dep_t)):
        for k in _where(h & (t != 0) & ((t < MIN_POSIX) | (t >= MAX_POSIX))):
            stu_bad.setdefault(int(cols.line[k]), []).append((k, name, int(t[k])))
    for v in stu_bad.values():
        v.sort(key=lambda x: (x[0], x[1] != "arrival"))
    for i, e in c.entities():
        for kind in ("trip_update", "vehicle"):
            if e.HasField(kind) and getattr(e, kind).HasField("timestamp") and bad(getattr(e, kind).timestamp):
                v = getattr(e, kind).timestamp
                yield i, f"{kind}.timestamp", v, f"{_who(e)}: {kind}.timestamp {v} is not POSIX seconds"
        for k, name, t in stu_bad.get(i, ()):
            yield i, f"stop_time_update.{name}.time", t, (
                f"{_who(e)} stop_sequence {int(cols.seq[k])}: {name}.time {t} is not POSIX seconds")
        if e.HasField("alert"):
            for p in e.alert.active_period:
                for name in ("start", "end"):
                    if p.HasField(name) and bad(getattr(p, name)):
                        yield i, f"alert.active_period.{name}", getattr(p, name), (
                            f"{_who(e)}: active_period.{name} {getattr(p, name)} is not POSIX seconds")


def e002(c: Check) -> Iterator[Found]:
    import numpy as np

    x = c.cols()
    k = np.flatnonzero(x.has_seq)
    same = x.line[k][1:] == x.line[k][:-1]
    hits = _first_per_line(x.line, k[1:][same & (x.seq[k][1:] < x.seq[k][:-1])])
    prev = dict(zip(k[1:].tolist(), k[:-1].tolist()))
    for j in hits.tolist():
        a, b = int(x.seq[prev[j]]), int(x.seq[j])
        yield int(x.line[j]), "stop_time_update.stop_sequence", b, f"{_who(c.entity(int(x.line[j])))}: stop_sequence {b} follows {a}; stop_time_updates must be sorted"


def e003(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if trip.trip_id and trip.schedule_relationship != _ADDED and trip.trip_id not in c.static.trips:
            yield i, f"{kind}.trip.trip_id", trip.trip_id, f"{_who(e)}: trip_id {trip.trip_id} is not in the static feed's trips.txt"


def e004(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if trip.route_id and trip.route_id not in c.static.routes:
            yield i, f"{kind}.trip.route_id", trip.route_id, f"{_who(e)}: route_id {trip.route_id} is not in the static feed's routes.txt"


def _frequency(c: Check, exact: int):
    """Yield (line, entity, trip, kind) for trips of the static feed's frequencies with that exact_times."""
    for i, e, trip, kind in c.trips():
        periods = c.static.frequencies.get(trip.trip_id)
        if periods and any(p[3] == exact for p in periods):
            yield i, e, trip, kind


def e006(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in _frequency(c, 0):
        if kind == "trip_update":
            missing = [f for f in ("start_time", "start_date") if not getattr(trip, f)]
            if missing:
                yield i, f"trip_update.trip.{missing[0]}", None, (
                    f"{_who(e)}: trip_id {trip.trip_id} is frequency-based (exact_times 0) but has no {' or '.join(missing)}")


def e013(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in _frequency(c, 0):
        if trip.HasField("schedule_relationship") and trip.schedule_relationship != _UNSCHEDULED:
            name = _TRIP_RELATIONSHIPS.get(trip.schedule_relationship, str(trip.schedule_relationship))
            yield i, f"{kind}.trip.schedule_relationship", name, (
                f"{_who(e)}: trip_id {trip.trip_id} is frequency-based (exact_times 0) but is {name}, not UNSCHEDULED or empty")


def e019(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in _frequency(c, 1):
        t = _secs(trip.start_time)
        if t is None:
            continue
        periods = [p for p in c.static.frequencies[trip.trip_id] if p[3] == 1]
        if not any(p[0] <= t <= p[1] and (t - p[0]) % p[2] == 0 for p in periods):
            yield i, f"{kind}.trip.start_time", trip.start_time, (
                f"{_who(e)}: start_time {trip.start_time} is not a whole number of headways after a frequencies.txt start_time of the trip")


def w005(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in _frequency(c, 0):
        if kind == "trip_update" and not e.trip_update.vehicle.id:
            yield i, "trip_update.vehicle.id", None, f"{_who(e)}: trip_id {trip.trip_id} is frequency-based (exact_times 0) but has no vehicle id"


def _stops_by_line(c: Check, bad) -> dict[int, list[str]]:
    """Return {line: the stop_time_updates' stop_ids for which ``bad(stop_id)``, in order}, checking each distinct stop_id once."""
    x = c.cols()
    first: dict[int, str] = {}
    for k, code in enumerate(x.stop_code.tolist()):
        if code >= 0 and code not in first:
            first[code] = x.stop[k]
    flagged = {code for code, sid in first.items() if bad(sid)}
    out: dict[int, list[str]] = {}
    if flagged:
        import numpy as np

        for k in np.flatnonzero(np.isin(x.stop_code, list(flagged))).tolist():
            out.setdefault(int(x.line[k]), []).append(x.stop[k])
    return out


def e011(c: Check) -> Iterator[Found]:
    unknown = _stops_by_line(c, lambda sid: sid not in c.static.stops)
    for i, e in c.entities():
        if e.HasField("vehicle") and e.vehicle.stop_id and e.vehicle.stop_id not in c.static.stops:
            yield i, "vehicle.stop_id", e.vehicle.stop_id, f"{_who(e)}: stop_id {e.vehicle.stop_id} is not in stops.txt"
        for sid in unknown.get(i, ()):
            yield i, "stop_time_update.stop_id", sid, f"{_who(e)}: stop_id {sid} is not in stops.txt"


def e012(c: Check) -> Iterator[Found]:
    if not c.header.HasField("timestamp"):
        return
    h = c.header.timestamp
    for i, e in c.entities():
        for kind in ("trip_update", "vehicle"):
            if e.HasField(kind) and getattr(e, kind).timestamp > h:
                v = getattr(e, kind).timestamp
                yield i, f"{kind}.timestamp", v, f"{_who(e)}: {kind}.timestamp {v} is after header.timestamp {h}"


def e015(c: Check) -> Iterator[Found]:
    stations = _stops_by_line(c, lambda sid: c.static.stops.get(sid, 0) != 0)
    for i, e in c.entities():
        ids = [e.vehicle.stop_id] if e.HasField("vehicle") else []
        ids += stations.get(i, [])
        for sid in ids:
            if sid and c.static.stops.get(sid, 0) != 0:
                yield i, "stop_id", sid, f"{_who(e)}: stop_id {sid} has location_type {c.static.stops[sid]} in stops.txt, not 0 (a stop)"


def e016(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if trip.schedule_relationship == _ADDED and trip.trip_id in c.static.trips:
            yield i, f"{kind}.trip.trip_id", trip.trip_id, f"{_who(e)}: trip_id {trip.trip_id} is ADDED but is in the static feed"


def e017(c: Check) -> Iterator[Found]:
    p = c.previous.message
    if (c.header.HasField("timestamp") and p.header.timestamp == c.header.timestamp
            and list(p.entity) != list(c.snapshot.message.entity)):
        yield None, "header.timestamp", c.header.timestamp, (
            f"the content changed since {c.previous.file or 'the previous snapshot'} but header.timestamp is the same ({c.header.timestamp})")


def e018(c: Check) -> Iterator[Found]:
    p = c.previous.message.header
    if c.header.HasField("timestamp") and p.HasField("timestamp") and c.header.timestamp < p.timestamp:
        yield None, "header.timestamp", c.header.timestamp, (
            f"header.timestamp {c.header.timestamp} is earlier than {p.timestamp} of {c.previous.file or 'the previous snapshot'}")


def e020(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if trip.start_time and not _START_TIME.match(trip.start_time):
            yield i, f"{kind}.trip.start_time", trip.start_time, f"{_who(e)}: start_time {trip.start_time!r} is not HH:MM:SS"


def e021(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if trip.start_date and not _START_DATE.match(trip.start_date):
            yield i, f"{kind}.trip.start_date", trip.start_date, f"{_who(e)}: start_date {trip.start_date!r} is not YYYYMMDD"


def e022(c: Check) -> Iterator[Found]:
    import numpy as np

    x = c.cols()
    at, dt = x.has_arr & x.has_arr_t & (x.arr_t != 0), x.has_dep & x.has_dep_t & (x.dep_t != 0)
    k = np.flatnonzero(at | dt)
    first = np.where(at, x.arr_t, x.dep_t)[k]  # the update's first time, and its last
    last = np.where(dt, x.dep_t, x.arr_t)[k]
    same = x.line[k][1:] == x.line[k][:-1]
    hits = _first_per_line(x.line, k[1:][same & (first[1:] <= last[:-1])])
    prev = dict(zip(k[1:].tolist(), k[:-1].tolist()))
    for j in hits.tolist():
        p = prev[j]
        t0 = int(x.arr_t[j] if at[j] else x.dep_t[j])
        tp = int(x.dep_t[p] if dt[p] else x.arr_t[p])
        yield int(x.line[j]), "stop_time_update.arrival.time", t0, (
            f"{_who(c.entity(int(x.line[j])))}: stop_sequence {int(x.seq[j])} is predicted at {t0}, not after {tp} at stop_sequence {int(x.seq[p])}")


def e023(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        first = c.static.first_times.get(trip.trip_id)
        if (trip.start_time and first and trip.trip_id not in c.static.frequency_trips
                and _START_TIME.match(trip.start_time) and trip.start_time != first):
            yield i, f"{kind}.trip.start_time", trip.start_time, (
                f"{_who(e)}: start_time {trip.start_time} is not the trip's first time {first} in stop_times.txt")


def e024(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if trip.HasField("direction_id") and trip.trip_id in c.static.trips:
            d = c.static.trips[trip.trip_id][1]
            if d is not None and d != trip.direction_id:
                yield i, f"{kind}.trip.direction_id", trip.direction_id, (
                    f"{_who(e)}: direction_id {trip.direction_id} differs from {d} in trips.txt")


def e025(c: Check) -> Iterator[Found]:
    x = c.cols()
    for j in _where(x.has_arr & x.has_arr_t & x.has_dep & x.has_dep_t & (x.dep_t < x.arr_t)):
        i = int(x.line[j])
        yield i, "stop_time_update.departure.time", int(x.dep_t[j]), (
            f"{_who(c.entity(i))} stop_sequence {int(x.seq[j])}: departure {int(x.dep_t[j])} is before arrival {int(x.arr_t[j])}")


def _position(c: Check):
    for i, e in c.entities():
        if e.HasField("vehicle") and e.vehicle.HasField("position"):
            yield i, e, e.vehicle.position


def e026(c: Check) -> Iterator[Found]:
    for i, e, p in _position(c):
        if not (-90 <= p.latitude <= 90 and -180 <= p.longitude <= 180):
            yield i, "vehicle.position", f"{p.latitude},{p.longitude}", f"{_who(e)}: position {p.latitude},{p.longitude} is not a WGS84 position"


def e027(c: Check) -> Iterator[Found]:
    for i, e, p in _position(c):
        if p.HasField("bearing") and not (0 <= p.bearing <= 360):
            yield i, "vehicle.position.bearing", p.bearing, f"{_who(e)}: bearing {p.bearing} is not between 0 and 360 degrees"


def e028(c: Check) -> Iterator[Found]:
    if c.static.bbox is None:
        return
    lat0, lon0, lat1, lon1 = c.static.bbox
    dlat = REGION_BUFFER_M / 111_195
    dlon = dlat / max(math.cos(math.radians((lat0 + lat1) / 2)), 0.01)
    for i, e, p in _position(c):
        if -90 <= p.latitude <= 90 and not (lat0 - dlat <= p.latitude <= lat1 + dlat and lon0 - dlon <= p.longitude <= lon1 + dlon):
            yield i, "vehicle.position", f"{p.latitude},{p.longitude}", (
                f"{_who(e)}: position {p.latitude},{p.longitude} is more than {REGION_BUFFER_M} m outside the static feed's stops and shapes")


def shape_distance_m(lat: float, lon: float, shape: tuple) -> float:
    """Return the distance in metres from a point to a polyline (lat array, lon array), on a local flat projection."""
    import numpy as np

    lats, lons = shape
    k = 111_195.0
    x = (lons - lon) * k * math.cos(math.radians(lat))
    y = (lats - lat) * k
    if len(x) == 1:
        return float(math.hypot(x[0], y[0]))
    ax, ay, dx, dy = x[:-1], y[:-1], np.diff(x), np.diff(y)
    seg2 = dx * dx + dy * dy
    t = np.clip(np.where(seg2 > 0, -(ax * dx + ay * dy) / np.where(seg2 > 0, seg2, 1), 0), 0, 1)
    return float(np.sqrt(np.min((ax + t * dx) ** 2 + (ay + t * dy) ** 2)))


def e029(c: Check) -> Iterator[Found]:
    detour = {ie.trip.trip_id for _, e in c.entities() if e.HasField("alert") and e.alert.effect == _DETOUR
              for ie in e.alert.informed_entity if ie.HasField("trip") and ie.trip.trip_id}
    for i, e, p in _position(c):
        tid = e.vehicle.trip.trip_id
        shape = c.static.shapes.get(c.static.trip_shapes.get(tid, ""))
        if shape is None or tid in detour or not (-90 <= p.latitude <= 90 and -180 <= p.longitude <= 180):
            continue
        d = shape_distance_m(p.latitude, p.longitude, shape)
        if d > TRIP_BUFFER_M:
            yield i, "vehicle.position", f"{p.latitude},{p.longitude}", (
                f"{_who(e)}: position {p.latitude},{p.longitude} is {d:.0f} m from the trip's shape "
                f"{c.static.trip_shapes[tid]} (more than {TRIP_BUFFER_M} m) and no DETOUR alert names the trip")


def e035(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if trip.trip_id and trip.route_id and trip.trip_id in c.static.trips:
            r = c.static.trips[trip.trip_id][0]
            if r is not None and r != trip.route_id:
                yield i, f"{kind}.trip.route_id", trip.route_id, f"{_who(e)}: trip_id {trip.trip_id} belongs to route_id {r}, not {trip.route_id}"


def _where(mask) -> list[int]:
    import numpy as np

    return np.flatnonzero(mask).tolist()


def _pairs(c: Check, values, truthy):
    """Yield (line, index of the second) of consecutive stop_time_updates of a trip update with the same truthy value."""
    x = c.cols()
    if len(x) < 2:
        return
    same = (x.line[1:] == x.line[:-1]) & truthy[:-1] & (values[1:] == values[:-1])
    for j in _where(same):
        yield int(x.line[j + 1]), j + 1


def e036(c: Check) -> Iterator[Found]:
    x = c.cols()
    for i, j in _pairs(c, x.seq, x.has_seq & (x.seq != 0)):
        q = int(x.seq[j])
        yield i, "stop_time_update.stop_sequence", q, f"{_who(c.entity(i))}: two consecutive stop_time_updates have stop_sequence {q}"


def e037(c: Check) -> Iterator[Found]:
    x = c.cols()
    for i, j in _pairs(c, x.stop_code, x.stop_code >= 0):
        yield i, "stop_time_update.stop_id", x.stop[j], f"{_who(c.entity(i))}: two consecutive stop_time_updates have stop_id {x.stop[j]}"


def e038(c: Check) -> Iterator[Found]:
    v = c.header.gtfs_realtime_version
    if v not in ("1.0", "2.0"):
        yield None, "header.gtfs_realtime_version", v, f"header.gtfs_realtime_version {v!r} is not 1.0 or 2.0"


def e039(c: Check) -> Iterator[Found]:
    if c.header.incrementality == _FULL_DATASET:
        for i, e in c.entities():
            if e.HasField("is_deleted"):
                yield i, "entity.is_deleted", e.is_deleted, f"{_who(e)}: is_deleted is set in a FULL_DATASET feed"


def e040(c: Check) -> Iterator[Found]:
    x = c.cols()
    for j in _where(~x.has_seq & (x.stop_code < 0)):
        i, n = int(x.line[j]), int(x.pos[j])
        yield i, "stop_time_update", n, f"{_who(c.entity(i))}: stop_time_update #{n} has neither stop_sequence nor stop_id"


def e041(c: Check) -> Iterator[Found]:
    have = c.stu_counts()
    for i in c.tu_lines():
        e = c.entity(i)
        if i not in have and e.trip_update.trip.schedule_relationship != _CANCELED:
            yield i, "trip_update.stop_time_update", 0, f"{_who(e)}: the trip_update has no stop_time_update and is not CANCELED"


def e042(c: Check) -> Iterator[Found]:
    x = c.cols()
    for j in _where((x.rel == _NO_DATA) & (x.has_arr | x.has_dep)):
        i = int(x.line[j])
        yield i, "stop_time_update.schedule_relationship", "NO_DATA", (
            f"{_who(c.entity(i))} stop_sequence {int(x.seq[j])}: NO_DATA but an arrival or departure is given")


def e043(c: Check) -> Iterator[Found]:
    x = c.cols()
    for j in _where((x.rel != _NO_DATA) & (x.rel != _SKIPPED) & ~x.has_arr & ~x.has_dep):
        i, q = int(x.line[j]), int(x.seq[j])
        yield i, "stop_time_update", q, f"{_who(c.entity(i))} stop_sequence {q}: neither arrival nor departure"


def e044(c: Check) -> Iterator[Found]:
    x = c.cols()
    live = x.rel != _SKIPPED
    hits = [(j, "arrival") for j in _where(live & x.has_arr & ~x.has_arr_t & ~x.has_arr_d)]
    hits += [(j, "departure") for j in _where(live & x.has_dep & ~x.has_dep_t & ~x.has_dep_d)]
    for j, name in sorted(hits, key=lambda h: (h[0], h[1] != "arrival")):
        i, q = int(x.line[j]), int(x.seq[j])
        yield i, f"stop_time_update.{name}", q, f"{_who(c.entity(i))} stop_sequence {q}: {name} has neither time nor delay"


def _static_stus(c: Check, table: dict):
    """Yield (line, entity, index, has stop_sequence, stop_sequence, stop_id, the trip's value in ``table``) for the
    stop_time_updates of trips that ``table`` (keyed by trip_id) has."""
    x = c.cols()
    if not len(x):
        return
    lines, has, seqs = x.line.tolist(), x.has_seq.tolist(), x.seq.tolist()
    k = 0
    n = len(lines)
    while k < n:
        i = lines[k]
        j = k
        while j < n and lines[j] == i:
            j += 1
        e = c.entity(i)
        got = table.get(e.trip_update.trip.trip_id)
        if got:
            for m in range(k, j):
                yield i, e, m, has[m], seqs[m], x.stop[m], got
        k = j


def e045(c: Check) -> Iterator[Found]:
    for i, e, _, has, q, sid, seqs in _static_stus(c, c.static.stop_times):
        if has and sid and q in seqs and seqs[q] != sid:
            yield i, "stop_time_update.stop_id", sid, (
                f"{_who(e)}: stop_sequence {q} is stop_id {seqs[q]} in stop_times.txt, not {sid}")


def e048(c: Check) -> Iterator[Found]:
    if c.header.gtfs_realtime_version >= "2.0" and not c.header.HasField("timestamp"):
        yield None, "header.timestamp", None, "header.timestamp is missing (required from gtfs_realtime_version 2.0)"


def e049(c: Check) -> Iterator[Found]:
    if c.header.gtfs_realtime_version >= "2.0" and not c.header.HasField("incrementality"):
        yield None, "header.incrementality", None, "header.incrementality is missing (required from gtfs_realtime_version 2.0)"


def e050(c: Check) -> Iterator[Found]:
    now = c.snapshot.fetched_at
    stamps = [(None, "header.timestamp", c.header.timestamp, "header")]
    for i, e in c.entities():
        for kind in ("trip_update", "vehicle"):
            if e.HasField(kind):
                stamps.append((i, f"{kind}.timestamp", getattr(e, kind).timestamp, _who(e)))
    for line, fld, v, who in stamps:
        if v and MIN_POSIX <= v < MAX_POSIX and v > now + FUTURE_S:
            yield line, fld, v, f"{who}: {fld} {v} is {v - now} s after the snapshot was fetched ({now})"


def e051(c: Check) -> Iterator[Found]:
    for i, e, _, has, q, _, seqs in _static_stus(c, c.static.stop_times):
        if has and q not in seqs:
            yield i, "stop_time_update.stop_sequence", q, (
                f"{_who(e)}: stop_sequence {q} is not in the trip's stop_times.txt")


def e052(c: Check) -> Iterator[Found]:
    seen: dict[str, str] = {}
    for i, e in c.entities():
        if e.HasField("vehicle") and e.vehicle.vehicle.id:
            vid = e.vehicle.vehicle.id
            if vid in seen:
                yield i, "vehicle.vehicle.id", vid, f"{_who(e)}: vehicle_id {vid} is also on entity {seen[vid]}"
            seen.setdefault(vid, e.id)


def w001(c: Check) -> Iterator[Found]:
    if not c.header.HasField("timestamp"):
        yield None, "header.timestamp", None, "header does not have a timestamp"
    for i, e in c.entities():
        for kind in ("trip_update", "vehicle"):
            if e.HasField(kind) and not getattr(e, kind).HasField("timestamp"):
                yield i, f"{kind}.timestamp", None, f"{_who(e)}: {kind} does not have a timestamp"


def w002(c: Check) -> Iterator[Found]:
    for i, e in c.entities():
        for kind in ("trip_update", "vehicle"):
            if e.HasField(kind) and not getattr(e, kind).vehicle.id:
                yield i, f"{kind}.vehicle.id", None, f"{_who(e)}: {kind} does not have a vehicle id"


def _tu_vehicles(c: Check) -> tuple[dict[str, str | None], set[str]]:
    """Return ({trip_id: vehicle_id or None} of the other snapshot's trip updates, {its vehicle ids})."""
    trips: dict[str, str | None] = {}
    vehicles: set[str] = set()
    for e in c.other.message.entity:
        if e.HasField("trip_update"):
            tu = e.trip_update
            if tu.trip.trip_id:
                trips.setdefault(tu.trip.trip_id, tu.vehicle.id or None)
            if tu.vehicle.id:
                vehicles.add(tu.vehicle.id)
    return trips, vehicles


def _paired(c: Check) -> bool:
    return (any(e.HasField("vehicle") for e in c.snapshot.message.entity)
            and any(e.HasField("trip_update") for e in c.other.message.entity))


def w003(c: Check) -> Iterator[Found]:
    if not _paired(c):
        return
    tu_trips, tu_vehicles = _tu_vehicles(c)
    vp_vehicles = {e.vehicle.vehicle.id for _, e in c.entities() if e.HasField("vehicle") and e.vehicle.vehicle.id}
    other = c.other.file or "the trip updates"
    for i, e in c.entities():
        if e.HasField("vehicle") and e.vehicle.trip.trip_id and e.vehicle.trip.trip_id not in tu_trips:
            yield i, "vehicle.trip.trip_id", e.vehicle.trip.trip_id, f"{_who(e)}: trip_id {e.vehicle.trip.trip_id} has no trip update in {other}"
    for vid in sorted(tu_vehicles - vp_vehicles):
        yield None, "trip_update.vehicle.id", vid, f"vehicle_id {vid} of a trip update in {other} has no vehicle position"


def e046(c: Check) -> Iterator[Found]:
    x = c.cols()
    for i, e, m, has, q, sid, untimed in _static_stus(c, c.static.untimed):
        key = q if has else sid
        if key not in untimed:
            continue
        for name, hd, ht, d in (("arrival", x.has_arr_d, x.has_arr_t, x.arr_d), ("departure", x.has_dep_d, x.has_dep_t, x.dep_d)):
            if hd[m] and not ht[m]:
                yield i, f"stop_time_update.{name}.delay", int(d[m]), (
                    f"{_who(e)} stop {key}: {name} gives only a delay, but stop_times.txt has no time for the stop to add it to")
                break


def _alerts(c: Check):
    for i, e in c.entities():
        if e.HasField("alert"):
            yield i, e, e.alert


def e030(c: Check) -> Iterator[Found]:
    for i, e, a in _alerts(c):
        for ie in a.informed_entity:
            tid, rid = ie.trip.trip_id, ie.route_id
            if tid and rid and tid in c.static.trips and c.static.trips[tid][0] not in (None, rid):
                yield i, "alert.informed_entity.route_id", rid, f"{_who(e)}: informed trip_id {tid} belongs to route_id {c.static.trips[tid][0]}, not {rid}"


def e031(c: Check) -> Iterator[Found]:
    for i, e, a in _alerts(c):
        for ie in a.informed_entity:
            if ie.route_id and ie.trip.route_id and ie.route_id != ie.trip.route_id:
                yield i, "alert.informed_entity.route_id", ie.route_id, (
                    f"{_who(e)}: informed_entity.route_id {ie.route_id} differs from its trip.route_id {ie.trip.route_id}")


def e032(c: Check) -> Iterator[Found]:
    for i, e, a in _alerts(c):
        if not a.informed_entity:
            yield i, "alert.informed_entity", None, f"{_who(e)}: the alert has no informed_entity"


def e033(c: Check) -> Iterator[Found]:
    for i, e, a in _alerts(c):
        for n, ie in enumerate(a.informed_entity, 1):
            if not (ie.agency_id or ie.route_id or ie.HasField("route_type") or ie.HasField("trip") or ie.stop_id):
                yield i, "alert.informed_entity", n, f"{_who(e)}: informed_entity #{n} names no agency, route, route type, trip or stop"


def e034(c: Check) -> Iterator[Found]:
    for i, e, a in _alerts(c):
        for ie in a.informed_entity:
            if ie.agency_id and ie.agency_id not in c.static.agencies:
                yield i, "alert.informed_entity.agency_id", ie.agency_id, f"{_who(e)}: agency_id {ie.agency_id} is not in agency.txt"


def e047(c: Check) -> Iterator[Found]:
    if not _paired(c):
        return
    tu_trips, _ = _tu_vehicles(c)
    for i, e in c.entities():
        if e.HasField("vehicle") and e.vehicle.trip.trip_id and e.vehicle.vehicle.id:
            tid, vid = e.vehicle.trip.trip_id, e.vehicle.vehicle.id
            if tu_trips.get(tid) and tu_trips[tid] != vid:
                yield i, "vehicle.vehicle.id", vid, (
                    f"{_who(e)}: trip_id {tid} is run by vehicle_id {vid} here but by {tu_trips[tid]} in {c.other.file or 'the trip updates'}")


def w004(c: Check) -> Iterator[Found]:
    for i, e, p in _position(c):
        if p.HasField("speed") and (p.speed < 0 or p.speed > MAX_SPEED):
            yield i, "vehicle.position.speed", p.speed, f"{_who(e)}: speed {p.speed} m/s is unrealistic (over {MAX_SPEED} m/s or negative)"


def w006(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if not trip.trip_id:
            yield i, f"{kind}.trip.trip_id", None, f"{_who(e)}: the trip does not have a trip_id"


def w007(c: Check) -> Iterator[Found]:
    p = c.previous.message.header
    if c.header.HasField("timestamp") and p.HasField("timestamp") and c.header.timestamp - p.timestamp > REFRESH_S:
        yield None, "header.timestamp", c.header.timestamp, (
            f"header.timestamp is {c.header.timestamp - p.timestamp} s after the previous snapshot's; refresh at least every {REFRESH_S} s")


def w008(c: Check) -> Iterator[Found]:
    now = c.snapshot.fetched_at
    if c.header.HasField("timestamp") and now - c.header.timestamp > STALE_S:
        age = now - c.header.timestamp
        yield None, "header.timestamp", c.header.timestamp, (
            f"header.timestamp is {age // 60} min {age % 60} sec old at fetch, more than {STALE_S} s")


def w009(c: Check) -> Iterator[Found]:
    for i, e, trip, kind in c.trips():
        if not trip.HasField("schedule_relationship"):
            yield i, f"{kind}.trip.schedule_relationship", None, f"{_who(e)}: the trip does not have a schedule_relationship"
    x = c.cols()
    total, missing = c.stu_counts(), c.stu_counts(~x.has_rel)
    for i, n in sorted(missing.items()):
        yield i, "stop_time_update.schedule_relationship", n, (
            f"{_who(c.entity(i))}: {n} of {total[i]} stop_time_updates do not have a schedule_relationship")


# ---------------------------------------------------------------- the list

@dataclass(frozen=True)
class RtRule:
    code: str
    severity: str
    why: str
    check: Callable[[Check], Iterator[Found]]
    needs: tuple[str, ...] = ()  # 'static', 'previous', 'fetched_at'
    fix: str = ""
    why_ja: str = ""
    fix_ja: str = ""

    def entry(self) -> Rule:
        return Rule(code=self.code, severity=self.severity, why=self.why, fields=("file", "line", "field"), stage="realtime",
                    fix=self.fix, why_ja=self.why_ja, fix_ja=self.fix_ja)


_S, _P, _N, _O = ("static",), ("previous",), ("fetched_at",), ("other",)
RT_RULES: list[RtRule] = [
    RtRule("E001", ERROR, "A time or timestamp is not POSIX seconds (often milliseconds), so every consumer reads a wrong time.", e001,
           fix="Write seconds since 1970-01-01 UTC (divide milliseconds by 1000).",
           why_ja="時刻・タイムスタンプが POSIX 秒（1970-01-01 UTC からの秒数）ではありません（ミリ秒のことが多い）。",
           fix_ja="1970-01-01 UTC からの秒数で書いてください（ミリ秒なら 1000 で割ります）。"),
    RtRule("E002", ERROR, "A trip update's stop_time_updates are not sorted by stop_sequence.", e002,
           fix="Sort each trip's stop_time_updates by increasing stop_sequence.",
           why_ja="trip_update の stop_time_update が stop_sequence の順に並んでいません。",
           fix_ja="便ごとに stop_time_update を stop_sequence の昇順に並べてください。"),
    RtRule("E003", ERROR, "A trip_id is not in the static feed (and the trip is not ADDED), so the trip cannot be matched to the timetable.",
           e003, _S, fix="Use the trip_id of the static feed in service, or publish the static feed the realtime feed is built from.",
           why_ja="trip_id が静的 GTFS にありません（ADDED の便でもありません）。時刻表の便と対応付けられません。",
           fix_ja="運行中の静的 GTFS の trip_id を使うか、リアルタイムの元になった静的 GTFS を公開してください。"),
    RtRule("E004", ERROR, "A route_id is not in the static feed's routes.txt.", e004, _S,
           fix="Use the route_id of the static feed in service.",
           why_ja="route_id が静的 GTFS の routes.txt にありません。", fix_ja="運行中の静的 GTFS の route_id を使ってください。"),
    RtRule("E006", ERROR, "A trip update of a frequency-based trip (exact_times 0) lacks start_time or start_date, so the run cannot be told apart.",
           e006, _S, fix="Send trip_id, start_time and start_date for every frequency-based trip.",
           why_ja="頻度ベース（exact_times 0）の便の trip_update に start_time か start_date がなく、どの運行か区別できません。",
           fix_ja="頻度ベースの便には trip_id・start_time・start_date をすべて入れてください。"),
    RtRule("E013", ERROR, "A frequency-based trip (exact_times 0) has a schedule_relationship other than UNSCHEDULED.", e013, _S,
           fix="Mark frequency-based trips UNSCHEDULED, or leave schedule_relationship empty.",
           why_ja="頻度ベース（exact_times 0）の便の schedule_relationship が UNSCHEDULED 以外になっています。",
           fix_ja="頻度ベースの便は UNSCHEDULED にするか、schedule_relationship を空にしてください。"),
    RtRule("E019", ERROR, "A frequency-based trip with exact_times 1 starts at a start_time that is not a whole number of headways after the "
           "period's start_time in frequencies.txt.", e019, _S, fix="Send the scheduled start_time of the run (period start + k × headway_secs).",
           why_ja="exact_times 1 の頻度ベースの便の start_time が、frequencies.txt の開始時刻から運行間隔の整数倍になっていません。",
           fix_ja="その運行の予定発車時刻（開始時刻 + 運行間隔 × k）を start_time に入れてください。"),
    RtRule("E011", ERROR, "A stop_id is not in the static feed's stops.txt.", e011, _S,
           fix="Use the stop_id of the static feed in service.",
           why_ja="stop_id が静的 GTFS の stops.txt にありません。", fix_ja="運行中の静的 GTFS の stop_id を使ってください。"),
    RtRule("E012", ERROR, "An entity's timestamp is later than the header timestamp, which must be the newest.", e012,
           fix="Set header.timestamp when the feed is built, after every entity's timestamp.",
           why_ja="エンティティのタイムスタンプがヘッダーのタイムスタンプより新しくなっています。",
           fix_ja="header.timestamp はフィードを作成した時刻（すべてのエンティティより後）にしてください。"),
    RtRule("E015", ERROR, "A stop_id in the realtime feed is a station, entrance or other location, not a stop (location_type 0).", e015, _S,
           fix="Refer to the platform or pole (location_type 0), not its parent station.",
           why_ja="リアルタイムの stop_id が停留所（location_type 0）ではなく、駅や出入口などを指しています。",
           fix_ja="親の駅ではなく、のりば・標柱（location_type 0）の stop_id を使ってください。"),
    RtRule("E016", ERROR, "A trip marked ADDED has a trip_id that is in the static feed.", e016, _S,
           fix="Give an added trip a new trip_id, or mark a scheduled trip SCHEDULED.",
           why_ja="ADDED（臨時）の便の trip_id が静的 GTFS にあります。",
           fix_ja="臨時便には新しい trip_id を付けるか、時刻表にある便なら SCHEDULED にしてください。"),
    RtRule("E017", ERROR, "The feed's content changed but its header timestamp did not.", e017, _P,
           fix="Update header.timestamp whenever the content changes (behind a load balancer, use sticky sessions).",
           why_ja="フィードの内容が変わったのに、ヘッダーのタイムスタンプが変わっていません。",
           fix_ja="内容を更新したら header.timestamp も更新してください（ロードバランサーの後ろならセッションを固定してください）。"),
    RtRule("E018", ERROR, "The header timestamp went backwards since the previous snapshot.", e018, _P,
           fix="Serve the feed from one source, or sticky sessions behind a load balancer, so timestamps only increase.",
           why_ja="ヘッダーのタイムスタンプが前回の取得より古くなっています。",
           fix_ja="一つの配信元から配信するか、ロードバランサーでセッションを固定し、タイムスタンプが戻らないようにしてください。"),
    RtRule("E020", ERROR, "A trip's start_time is not HH:MM:SS.", e020, fix="Write start_time as 25:15:35 (past 24:00 for the next day).",
           why_ja="便の start_time が HH:MM:SS 形式ではありません。", fix_ja="start_time は 25:15:35 のように書いてください（翌日は 24 時以降）。"),
    RtRule("E021", ERROR, "A trip's start_date is not YYYYMMDD.", e021, fix="Write start_date as 20261206.",
           why_ja="便の start_date が YYYYMMDD 形式ではありません。", fix_ja="start_date は 20261206 のように書いてください。"),
    RtRule("E022", ERROR, "Predicted times of consecutive stops do not increase.", e022,
           fix="Check the prediction: each stop's time must be later than the previous stop's.",
           why_ja="連続する停留所の予測時刻が増えていません。", fix_ja="予測を確認してください。各停留所の時刻は前の停留所より後でなければなりません。"),
    RtRule("E023", ERROR, "A trip's start_time is not the first time of that trip in stop_times.txt.", e023, _S,
           fix="Set start_time to the trip's first scheduled time, or leave it empty.",
           why_ja="便の start_time が stop_times.txt のその便の始発時刻と一致しません。",
           fix_ja="start_time を時刻表の始発時刻にするか、空欄にしてください。"),
    RtRule("E024", ERROR, "A trip's direction_id differs from trips.txt.", e024, _S, fix="Use the trip's direction_id from trips.txt.",
           why_ja="便の direction_id が trips.txt と異なります。", fix_ja="trips.txt の direction_id を使ってください。"),
    RtRule("E025", ERROR, "A stop_time_update's departure is before its arrival.", e025, fix="Departure must equal or follow arrival.",
           why_ja="stop_time_update の発車時刻が到着時刻より前です。", fix_ja="発車時刻は到着時刻と同じかそれより後にしてください。"),
    RtRule("E026", ERROR, "A vehicle position is not a WGS84 latitude/longitude (latitude within ±90, longitude within ±180).", e026,
           fix="Send latitude within ±90 and longitude within ±180, in degrees; omit the position when the GPS has no fix.",
           why_ja="車両の位置が WGS84 の緯度経度（緯度 ±90、経度 ±180 の範囲）になっていません。",
           fix_ja="緯度は ±90、経度は ±180 の範囲の度で送ってください。GPS が測位できないときは位置を省略してください。"),
    RtRule("E027", ERROR, "A vehicle bearing is not between 0 and 360 degrees.", e027, fix="Send the bearing in degrees clockwise from north, 0–360.",
           why_ja="車両の方位が 0〜360 度の範囲にありません。", fix_ja="方位は北から時計回りの度（0〜360）で送ってください。"),
    RtRule("E028", ERROR, "A vehicle is outside the area the static feed serves (its stops and shapes, with a 1 mile buffer).", e028, _S,
           fix="Check the GPS and the coordinate order (latitude first); check the static feed is the right one.",
           why_ja="車両の位置が静的 GTFS の運行区域（停留所と形状の範囲から約 1.6 km 以内）の外にあります。",
           fix_ja="GPS と座標の順序（緯度が先）を確認し、対応する静的 GTFS が正しいかも確認してください。"),
    RtRule("E029", ERROR, "A vehicle is more than 200 m from its trip's shape and no DETOUR alert names the trip.", e029, _S,
           fix="Check the trip assignment of the vehicle (a wrong trip_id is the usual cause), or publish a DETOUR alert for the trip.",
           why_ja="車両が便の形状（shapes.txt）から 200 m 以上離れており、その便の迂回（DETOUR）アラートもありません。",
           fix_ja="車両に割り当てた便（trip_id）を確認するか、迂回運行ならその便の DETOUR アラートを配信してください。"),
    RtRule("E030", ERROR, "An alert's informed trip_id belongs to another route than the informed route_id.", e030, _S,
           fix="Name the trip's own route_id (trips.txt), or only the trip.",
           why_ja="アラートの対象便（trip_id）が、対象路線（route_id）とは別の路線の便です。",
           fix_ja="trips.txt にあるその便の route_id を指定するか、便だけを指定してください。"),
    RtRule("E031", ERROR, "An alert's informed_entity.route_id differs from its informed_entity.trip.route_id.", e031,
           fix="Give the same route_id in both places, or only one of them.",
           why_ja="アラートの informed_entity.route_id と informed_entity.trip.route_id が異なります。",
           fix_ja="両方に同じ route_id を入れるか、どちらか一方だけにしてください。"),
    RtRule("E032", ERROR, "An alert has no informed_entity, so no one knows what it is about.", e032,
           fix="Name at least one agency, route, trip or stop the alert applies to.",
           why_ja="アラートに対象（informed_entity）がなく、何についての情報か分かりません。",
           fix_ja="アラートの対象となる事業者・路線・便・停留所を一つ以上指定してください。"),
    RtRule("E033", ERROR, "An alert's informed_entity names nothing (no agency, route, route type, trip or stop).", e033,
           fix="Fill in at least one specifier of each informed_entity.",
           why_ja="アラートの informed_entity に事業者・路線・路線種別・便・停留所のどれも指定されていません。",
           fix_ja="各 informed_entity に少なくとも一つの対象を指定してください。"),
    RtRule("E034", ERROR, "An alert's agency_id is not in the static feed's agency.txt.", e034, _S,
           fix="Use the agency_id of agency.txt.",
           why_ja="アラートの agency_id が静的 GTFS の agency.txt にありません。", fix_ja="agency.txt の agency_id を使ってください。"),
    RtRule("E035", ERROR, "A trip's route_id is not the route of that trip_id in trips.txt.", e035, _S,
           fix="Send the route_id trips.txt gives the trip.",
           why_ja="便の route_id が trips.txt でその trip_id の路線と異なります。", fix_ja="trips.txt にあるその便の route_id を送ってください。"),
    RtRule("E036", ERROR, "Two consecutive stop_time_updates have the same stop_sequence.", e036, fix="Send each stop of a trip once.",
           why_ja="連続する stop_time_update の stop_sequence が同じです。", fix_ja="便の各停留所は一度だけ送ってください。"),
    RtRule("E037", ERROR, "Two consecutive stop_time_updates have the same stop_id.", e037, fix="Send each stop of a trip once.",
           why_ja="連続する stop_time_update の stop_id が同じです。", fix_ja="便の各停留所は一度だけ送ってください。"),
    RtRule("E038", ERROR, "header.gtfs_realtime_version is not a version of the specification (1.0 or 2.0).", e038,
           fix="Set gtfs_realtime_version to 2.0 (or 1.0).",
           why_ja="header.gtfs_realtime_version が仕様のバージョン（1.0 か 2.0）ではありません。",
           fix_ja="gtfs_realtime_version を 2.0（または 1.0）にしてください。"),
    RtRule("E039", ERROR, "A FULL_DATASET feed sets is_deleted on an entity.", e039, fix="Leave entities out of a full dataset instead of deleting them.",
           why_ja="FULL_DATASET のフィードでエンティティに is_deleted が設定されています。",
           fix_ja="全件配信では削除フラグを使わず、そのエンティティを含めないでください。"),
    RtRule("E040", ERROR, "A stop_time_update has neither stop_sequence nor stop_id.", e040, fix="Give every stop_time_update a stop_id (and stop_sequence).",
           why_ja="stop_time_update に stop_sequence も stop_id もありません。", fix_ja="すべての stop_time_update に stop_id（と stop_sequence）を入れてください。"),
    RtRule("E041", ERROR, "A trip update has no stop_time_update and is not CANCELED.", e041, fix="Send at least one stop_time_update, or mark the trip CANCELED.",
           why_ja="trip_update に stop_time_update がなく、運休（CANCELED）でもありません。",
           fix_ja="stop_time_update を一つ以上送るか、運休なら CANCELED にしてください。"),
    RtRule("E042", ERROR, "A NO_DATA stop_time_update has an arrival or departure.", e042, fix="Leave arrival and departure out of NO_DATA updates.",
           why_ja="NO_DATA の stop_time_update に到着・発車の時刻があります。", fix_ja="NO_DATA のときは到着・発車を入れないでください。"),
    RtRule("E043", ERROR, "A stop_time_update (not SKIPPED or NO_DATA) has neither arrival nor departure.", e043,
           fix="Send an arrival or a departure for the stop.",
           why_ja="stop_time_update（SKIPPED・NO_DATA 以外）に到着も発車もありません。", fix_ja="その停留所の到着か発車を送ってください。"),
    RtRule("E044", ERROR, "A stop_time_update's arrival or departure has neither time nor delay.", e044, fix="Give each arrival/departure a time or a delay.",
           why_ja="stop_time_update の到着・発車に時刻（time）も遅延（delay）もありません。", fix_ja="到着・発車には time か delay を入れてください。"),
    RtRule("E045", ERROR, "A stop_time_update's stop_sequence and stop_id do not match the trip's stop_times.txt.", e045, _S,
           fix="Send the stop_sequence and stop_id as in stop_times.txt of the static feed in service.",
           why_ja="stop_time_update の stop_sequence と stop_id の組が、その便の stop_times.txt と一致しません。",
           fix_ja="運行中の静的 GTFS の stop_times.txt と同じ stop_sequence と stop_id を送ってください。"),
    RtRule("E046", ERROR, "A stop_time_update gives only a delay for a stop that has no time in stop_times.txt, so there is nothing to add "
           "the delay to.", e046, _S, fix="Send the predicted time, or give the stop a time in stop_times.txt.",
           why_ja="stop_times.txt に時刻のない停留所について、stop_time_update が遅延（delay）だけを送っています。遅延を足す元の時刻がありません。",
           fix_ja="予測時刻（time）を送るか、stop_times.txt のその停留所に時刻を入れてください。"),
    RtRule("E047", ERROR, "A vehicle position and the trip update of the same trip name different vehicles.", e047, _O,
           fix="Build both feeds from the same vehicle assignment.",
           why_ja="同じ便について、車両位置と trip_update で車両 ID が異なります。",
           fix_ja="車両位置と trip_update を同じ車両割り当てから作成してください。"),
    RtRule("E048", ERROR, "header.timestamp is missing in a gtfs_realtime_version 2.0 feed.", e048, fix="Set header.timestamp.",
           why_ja="gtfs_realtime_version 2.0 のフィードに header.timestamp がありません。", fix_ja="header.timestamp を設定してください。"),
    RtRule("E049", ERROR, "header.incrementality is missing in a gtfs_realtime_version 2.0 feed.", e049, fix="Set header.incrementality (FULL_DATASET).",
           why_ja="gtfs_realtime_version 2.0 のフィードに header.incrementality がありません。",
           fix_ja="header.incrementality（FULL_DATASET）を設定してください。"),
    RtRule("E050", ERROR, "A timestamp is more than a minute after the time the snapshot was fetched.", e050, _N,
           fix="Check the server clock (NTP) and the time zone: timestamps are UTC POSIX seconds.",
           why_ja="タイムスタンプが取得時刻より 1 分以上未来です。",
           fix_ja="サーバーの時計（NTP）とタイムゾーンを確認してください。タイムスタンプは UTC の POSIX 秒です。"),
    RtRule("E051", ERROR, "A stop_time_update's stop_sequence is not in the trip's stop_times.txt.", e051, _S,
           fix="Use stop_sequence values from stop_times.txt of the static feed in service.",
           why_ja="stop_time_update の stop_sequence がその便の stop_times.txt にありません。",
           fix_ja="運行中の静的 GTFS の stop_times.txt の stop_sequence を使ってください。"),
    RtRule("E052", ERROR, "Two vehicle positions have the same vehicle id.", e052, fix="Give each vehicle its own id.",
           why_ja="二つの車両位置が同じ車両 ID を持っています。", fix_ja="車両ごとに別の ID を付けてください。"),
    RtRule("W001", WARNING, "A header, trip update or vehicle position has no timestamp, so a consumer cannot tell how old it is.", w001,
           fix="Set timestamp on the header and on every trip update and vehicle position.",
           why_ja="ヘッダー・trip_update・車両位置にタイムスタンプがなく、情報の新しさが分かりません。",
           fix_ja="ヘッダーとすべての trip_update・車両位置に timestamp を設定してください。"),
    RtRule("W002", WARNING, "A trip update or vehicle position has no vehicle id.", w002, fix="Set vehicle.id.",
           why_ja="trip_update・車両位置に車両 ID（vehicle.id）がありません。", fix_ja="vehicle.id を設定してください。"),
    RtRule("W003", WARNING, "A trip with a vehicle position has no trip update, or a vehicle with a trip update has no position.", w003, _O,
           fix="Publish a trip update for every trip a vehicle runs, and a position for every vehicle with predictions.",
           why_ja="車両位置のある便に trip_update がないか、trip_update のある車両に位置がありません。",
           fix_ja="車両が運行するすべての便の trip_update と、予測のあるすべての車両の位置を配信してください。"),
    RtRule("W004", WARNING, "A vehicle's speed is unrealistic (over 26 m/s, about 60 mph, or negative); speed is in metres per second.", w004,
           fix="Send speed in m/s (not km/h or mph).",
           why_ja="車両の速度が現実的ではありません（秒速 26 m 超、または負）。速度の単位は m/s です。",
           fix_ja="速度は m/s で送ってください（km/h や mph ではありません）。"),
    RtRule("W005", WARNING, "A trip update of a frequency-based trip (exact_times 0) has no vehicle id, so two vehicles on the same run "
           "cannot be told apart.", w005, _S, fix="Set trip_update.vehicle.id.",
           why_ja="頻度ベース（exact_times 0）の便の trip_update に車両 ID がなく、同じ便を走る車両を区別できません。",
           fix_ja="trip_update.vehicle.id を設定してください。"),
    RtRule("W006", WARNING, "A trip descriptor has no trip_id, so it can only be matched to the timetable by route, direction and start time.", w006,
           fix="Set trip.trip_id from the static feed.",
           why_ja="便の記述（trip）に trip_id がなく、時刻表の便と確実に対応付けられません。", fix_ja="静的 GTFS の trip_id を trip.trip_id に設定してください。"),
    RtRule("W007", WARNING, "The feed was refreshed more than 35 seconds after the previous snapshot.", w007, _P,
           fix="Refresh the feed at least every 30 seconds.",
           why_ja="前回のスナップショットから 35 秒以上更新されていません。", fix_ja="30 秒以内の間隔でフィードを更新してください。"),
    RtRule("W008", WARNING, "The header timestamp was more than 65 seconds old when the snapshot was fetched.", w008, _N,
           fix="Check that the producer is running and the feed is not cached.",
           why_ja="取得時点でヘッダーのタイムスタンプが 65 秒以上古くなっています。",
           fix_ja="配信システムが動いているか、フィードがキャッシュされていないか確認してください。"),
    RtRule("W009", WARNING, "A trip descriptor or stop_time_update has no schedule_relationship (one notice per trip or trip update).", w009,
           fix="Set trip.schedule_relationship and stop_time_update.schedule_relationship (SCHEDULED for timetabled trips and stops).",
           why_ja="便の記述（trip）または stop_time_update に schedule_relationship がありません（便・trip_update ごとに一件）。",
           fix_ja="trip.schedule_relationship と stop_time_update.schedule_relationship を設定してください（時刻表どおりなら SCHEDULED）。"),
]

#: The timetable match's notices (raised per hour by noriba/rt_match.py).
MATCH_RULES: list[Rule] = [
    Rule("rt_static_feed_stale", ERROR, "The realtime feed's route ids are in the static feed but its trip ids are not: the static "
         "feed is older than the timetable the vehicles run, so no trip can be matched.", ("file",), stage="realtime",
         fix="Publish the static feed the realtime feed is built from (or the operator's current GTFS).",
         why_ja="リアルタイムの路線 ID は静的 GTFS にありますが、便 ID がほとんどありません。静的 GTFS が古く、便を時刻表と対応付けられません。",
         fix_ja="リアルタイムの元になっている最新の静的 GTFS を公開してください。"),
    Rule("rt_static_feed_unmatched", ERROR, "Most of the realtime feed's route ids are not in the static feed it names.", ("file",),
         stage="realtime", fix="Check static_feed_id in the realtime spec (or --static): it must be the same operator's feed.",
         why_ja="リアルタイムの路線 ID の大半が、指定された静的 GTFS にありません。",
         fix_ja="リアルタイムの spec（または --static）の static_feed_id が同じ事業者の静的 GTFS か確認してください。"),
    Rule("rt_static_feed_missing", WARNING, "No version of the static feed the realtime feed belongs to is published, so nothing can be "
         "matched to the timetable.", ("file",), stage="realtime", fix="Publish the static feed (noriba run / ingest) or name it with --static.",
         why_ja="リアルタイムに対応する静的 GTFS が公開されておらず、時刻表と対応付けられません。",
         fix_ja="静的 GTFS を公開するか（noriba run / ingest）、--static で指定してください。"),
    Rule("rt_static_version_not_in_service", WARNING, "No published version of the static feed is in service on the day; the newest "
         "version was used instead.", ("file",), stage="realtime",
         fix="Publish the static version valid on that day (its calendar must cover the date).",
         why_ja="その日に有効な静的 GTFS の版が公開されていないため、最新の版で対応付けました。",
         fix_ja="その日を運行期間に含む静的 GTFS の版を公開してください。"),
]
#: Documentation entries for the registry (stage 'realtime': raised by :func:`validate`, not by the SQL engine, and never
#: a structure error of a static feed's policy).
RULES: list[Rule] = [r.entry() for r in RT_RULES]


def validate(snapshot: Snapshot, *, previous: Snapshot | None = None, static: StaticIndex | None = None,
             other: Snapshot | None = None, findings: Findings | None = None, rules: list[RtRule] | None = None,
             sample_limit: int | None = None) -> Findings:
    """Return the findings of every realtime rule on one snapshot. Rules whose input is missing are skipped.

    Every finding is counted; with ``sample_limit``, at most that many notices per code are kept in ``findings``
    (memory stays bounded over an hour of snapshots).

    ``other`` is the TripUpdates snapshot of the same moment for a VehiclePositions one (the snapshot itself for a combined feed).
    """
    findings = findings if findings is not None else Findings()
    c = Check(snapshot=snapshot, previous=previous, static=static, other=other)
    have = {"static": static is not None, "previous": previous is not None, "fetched_at": snapshot.fetched_at is not None,
            "other": other is not None}
    _LOCAL.who = {}
    try:
        for rule in rules or RT_RULES:
            if not all(have[n] for n in rule.needs):
                continue
            key = (rule.code, rule.severity)
            for line, fld, value, message in rule.check(c):
                if sample_limit is not None and findings.counts[key] >= sample_limit:
                    findings.counts[key] += 1
                    continue
                findings.add(rule.code, rule.severity, message, file=snapshot.file or None, line=line, field=fld,
                             value=None if value is None else str(value))
    finally:
        _LOCAL.who = None
    return findings
