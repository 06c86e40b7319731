"""Merge the latest archived GTFS-Realtime snapshots of a merged export's inputs into one feed in the export's ids.

A merged export (noriba/exports.py, warehouse/merge.py) renames ids that collide (``<namespace>:<id>``) and
unifies stops; its ``crosswalk.csv`` (beside ``manifest.json`` in the export's version folder) is the id
map of every source id to its merged id. The realtime inputs of an export are the realtime feeds archived
under ``raw/<feed>/rt/`` (``noriba rt archive`` / ``noriba rt ingest``) whose ``feed.json`` names one of
the export's static feeds. For each part (trip updates, vehicle positions, alerts) the newest snapshot of
each realtime input (its own part, or its combined feed) is read, and its ids rewritten:

- trip_id, route_id, stop_id, agency_id (trip descriptors, stop time updates, vehicle positions, alerts'
  informed entities, ``assigned_stop_id``, ``modified_trip.affected_trip_id``) through the crosswalk;
  an id that is not in the crosswalk, or whose merged id is not in the merged GTFS zip (an extract may
  have cut it), drops its entity (an alert loses only that informed entity; without any left it is
  dropped); every drop is counted by id space, with a few samples, in :class:`Built.status`;
- entity ids become ``<realtime feed>:<id>`` (unique across inputs); ids the realtime feed makes up
  itself (vehicle ids, the trip id of an ADDED or NEW trip, a DUPLICATED trip's new trip id) become
  ``<namespace>:<id>`` when the export merges more than one static feed (so two operators' bus "12"
  stay apart and one operator's TripUpdates and VehiclePositions still name the same vehicle); an
  ADDED or NEW trip is kept, its route and stops mapped like any other.

The header has gtfs_realtime_version 2.0, incrementality FULL_DATASET and the newest header timestamp
of the snapshots used. Built messages are cached per (export version, part, snapshots used): a snapshot's
file name holds its sha256, so a repeated request reads only folder listings.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from transforms.errors import InputError
from transforms.gtfs_rt.spec import SNAPSHOT_NAME
from transforms.paths import UnsafePath, safe_join
from warehouse.workspace import Workspace

#: URL name -> (archived part, FeedEntity field).
KINDS: dict[str, tuple[str, str]] = {
    "trip-updates": ("trip_updates", "trip_update"),
    "vehicle-positions": ("vehicle_positions", "vehicle"),
    "alerts": ("alerts", "alert"),
}
#: Trips the static feed does not have by definition (TripDescriptor.schedule_relationship ADDED, NEW): kept, not dropped.
ADDED = (1, 8)
#: How many archived hour folders of a realtime feed are looked through (newest first) for a part's latest snapshot.
LOOKBACK_HOURS = 48
#: Dropped ids kept as samples per input and id space in the status.
SAMPLES = 5
#: Built messages kept in memory.
CACHE_SIZE = 32
_NAME = SNAPSHOT_NAME  # noriba/rt.py's archive names
_DATE, _HOUR = re.compile(r"\d{4}-\d{2}-\d{2}\Z"), re.compile(r"\d{2}\Z")
_EXPORT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
#: The GTFS files and id columns whose ids must exist in the merged zip, by crosswalk id space.
ZIP_IDS = {"trip": ("trips.txt", "trip_id"), "route": ("routes.txt", "route_id"), "stop": ("stops.txt", "stop_id"),
           "agency": ("agency.txt", "agency_id")}


class NotServed(LookupError):
    """The export has no merged realtime feed to serve; the message says why in one line."""


@dataclass(frozen=True)
class IdMap:
    """The merged export's ids: its inputs' namespaces, the crosswalk, and the ids its GTFS zip holds."""

    export_id: str
    export_version: str
    namespaces: dict[str, str]  # static feed id -> namespace, in merge order
    crosswalk: dict[tuple[str, str], dict[str, str]]  # (space, feed id) -> {source id: merged id}
    present: dict[str, frozenset[str]]  # space -> merged ids in the zip
    zip_path: Path
    _resolved: dict = field(default_factory=dict, repr=False, compare=False)

    def resolved(self, space: str, feed_id: str) -> dict[str, str]:
        """Return {source id: merged id} of one feed's id space, only the merged ids the merged zip holds (built once)."""
        key = (space, feed_id)
        out = self._resolved.get(key)
        if out is None:
            present = self.present.get(space, frozenset())
            out = {s: m for s, m in self.crosswalk.get(key, {}).items() if m in present}
            self._resolved[key] = out
        return out

    def merged(self, space: str, feed_id: str, source: str) -> str | None:
        """Return the merged id of a source id. If it is not in the crosswalk or not in the merged zip, then None."""
        return self.resolved(space, feed_id).get(source)


@dataclass(frozen=True)
class RtInput:
    feed_id: str  # the realtime feed (raw/<feed>/rt)
    static_feed_id: str
    namespace: str


@dataclass
class Built:
    """One merged part: the message, its serialised bytes, and what happened to each input."""

    message: object  # gtfs_realtime_pb2.FeedMessage
    data: bytes
    etag: str  # hex digits of the export version, part and snapshots used (quote it for an ETag header)
    status: dict = field(default_factory=dict)
    _json: bytes | None = field(default=None, repr=False)

    def json(self) -> bytes:
        """Return the message as protobuf JSON (field names as in the .proto), made once."""
        from google.protobuf import json_format

        if self._json is None:
            self._json = json_format.MessageToJson(self.message, preserving_proto_field_name=True, indent=1,
                                                   ensure_ascii=False).encode("utf-8")
        return self._json


# ---------------------------------------------------------------- the export's ids

_ID_MAPS: dict[tuple[str, str, str], IdMap] = {}  # (home, export, version) -> its id map
_LOCK = threading.Lock()


def _export_root(ws: Workspace, export_id: str) -> Path:
    if not isinstance(export_id, str) or not _EXPORT_ID.fullmatch(export_id):
        raise NotServed(f"{export_id!r} is not an export id")
    try:
        root = safe_join(ws.exports, export_id)
    except UnsafePath as exc:
        raise NotServed(f"{export_id!r} is not an export id ({exc})") from None
    return root


def export_version(ws: Workspace, export_id: str) -> tuple[str, Path]:
    """Return the latest version of a built export and its folder. If there is none, raise NotServed."""
    root = _export_root(ws, export_id)
    try:
        latest = json.loads((root / "latest.json").read_text(encoding="utf-8"))
        version, folder = str(latest["export_version"]), safe_join(root, str(latest.get("dir") or latest["export_version"]))
    except (OSError, ValueError, KeyError, TypeError, UnsafePath):
        raise NotServed(f"no built export '{export_id}' (build it with: noriba export {export_id})") from None
    if not (folder / "manifest.json").is_file():
        raise NotServed(f"export '{export_id}' version {version} has no manifest.json; rebuild it (noriba export {export_id} --force)")
    return version, folder


def load_id_map(ws: Workspace, export_id: str) -> IdMap:
    """Return the id map of an export's latest version (cached per version). If it was not built, raise NotServed."""
    version, folder = export_version(ws, export_id)
    with _LOCK:
        cached = _ID_MAPS.get((str(ws.home), export_id, version))
    if cached is not None:
        return cached
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        namespaces = {str(i["feed_id"]): str(i["namespace"]) for i in manifest["inputs"]}
        zip_path = safe_join(folder, str(manifest["files"]["gtfs"]["path"]))
        crosswalk_path = safe_join(folder, str((manifest["files"].get("crosswalk") or {}).get("path") or "crosswalk.csv"))
    except (OSError, ValueError, KeyError, TypeError, UnsafePath) as exc:
        raise NotServed(f"export '{export_id}' version {version}: manifest.json unreadable ({exc}); rebuild it "
                        f"(noriba export {export_id} --force)") from None
    crosswalk: dict[tuple[str, str], dict[str, str]] = {}
    try:
        with crosswalk_path.open(encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                crosswalk.setdefault((r["space"], r["feed_id"]), {})[r["source_id"]] = r["merged_id"]
    except (OSError, KeyError, csv.Error) as exc:
        raise NotServed(f"export '{export_id}' version {version}: no readable crosswalk.csv ({exc}); rebuild it "
                        f"(noriba export {export_id} --force)") from None
    idmap = IdMap(export_id=export_id, export_version=version, namespaces=namespaces, crosswalk=crosswalk,
                  present=zip_ids(zip_path), zip_path=zip_path)
    with _LOCK:
        _ID_MAPS[(str(ws.home), export_id, version)] = idmap
    return idmap


def zip_ids(zip_path: Path) -> dict[str, frozenset[str]]:
    """Return, per id space of ZIP_IDS, the ids a GTFS zip holds (a file it lacks: no ids). If unreadable, raise NotServed."""
    out: dict[str, frozenset[str]] = {}
    try:
        with zipfile.ZipFile(zip_path) as z:
            names = {Path(n).name: n for n in z.namelist()}
            for space, (name, column) in ZIP_IDS.items():
                ids: set[str] = set()
                if name in names:
                    with z.open(names[name]) as fh:
                        for r in csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")):
                            v = (r.get(column) or "").strip()
                            if v:
                                ids.add(v)
                out[space] = frozenset(ids)
    except (OSError, zipfile.BadZipFile, csv.Error, UnicodeDecodeError) as exc:
        raise NotServed(f"{zip_path.name}: the merged GTFS zip is unreadable ({exc}); rebuild the export") from None
    return out


# ---------------------------------------------------------------- the realtime inputs and their snapshots

def realtime_inputs(ws: Workspace, idmap: IdMap) -> list[RtInput]:
    """Return the realtime feeds archived under raw/ whose static feed is one of the export's inputs, in merge order."""
    found: list[RtInput] = []
    if not ws.raw.is_dir():
        return found
    for d in sorted(ws.raw.iterdir()):
        if d.name.startswith("."):
            continue
        try:
            info = safe_join(ws.raw, f"{d.name}/rt/feed.json")  # a link leading out of NORIBA_HOME is no input
        except UnsafePath:
            continue
        if not info.is_file():
            continue
        try:
            static = json.loads(info.read_text(encoding="utf-8")).get("static_feed_id")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(static, str) and static in idmap.namespaces:
            found.append(RtInput(feed_id=d.name, static_feed_id=static, namespace=idmap.namespaces[static]))
    order = list(idmap.namespaces)
    return sorted(found, key=lambda i: (order.index(i.static_feed_id), i.feed_id))


def latest_snapshot(ws: Workspace, feed_id: str, part: str) -> Path | None:
    """Return the newest archived snapshot of a realtime feed holding ``part`` (its own file or a combined one).

    Only the newest LOOKBACK_HOURS hour folders are looked through; None if none holds one.
    """
    base = safe_join(ws.raw, feed_id) / "rt"
    if not base.is_dir():
        return None
    seen = 0
    for day in sorted((d for d in os.listdir(base) if _DATE.fullmatch(d)), reverse=True):
        day_dir = base / day
        if not day_dir.is_dir():
            continue
        for hour in sorted((h for h in os.listdir(day_dir) if _HOUR.fullmatch(h)), reverse=True):
            folder = day_dir / hour
            if not folder.is_dir():
                continue
            seen += 1
            best = None
            for name in os.listdir(folder):
                m = _NAME.match(name)
                if m and m["part"] in (part, "combined") and (best is None or (m["hms"], name) > best):
                    best = (m["hms"], name)
            if best:
                return folder / best[1]
            if seen >= LOOKBACK_HOURS:
                return None
    return None


# ---------------------------------------------------------------- rewriting ids

class _Unmapped(Exception):
    def __init__(self, space: str, value: str):
        super().__init__(space, value)
        self.space, self.value = space, value


class _Rewriter:
    """Rewrite one input's ids in place; raise _Unmapped at the first id that has no merged id."""

    def __init__(self, idmap: IdMap, inp: RtInput, *, prefix_own: bool):
        self.idmap, self.inp, self.prefix_own = idmap, inp, prefix_own
        self.maps = {space: idmap.resolved(space, inp.static_feed_id) for space in ZIP_IDS}
        self.added = 0  # ADDED / NEW trips kept

    def id(self, space: str, value: str) -> str:
        m = self.maps[space].get(value)
        if m is None:
            raise _Unmapped(space, value)
        return m

    def trip(self, t) -> None:
        if t.trip_id:
            if t.schedule_relationship in ADDED:  # a trip the static feed does not have: kept, in the feed's namespace
                m = self.maps["trip"].get(t.trip_id)
                t.trip_id = m if m is not None else self.own(t.trip_id)
                self.added += m is None
            else:
                t.trip_id = self.id("trip", t.trip_id)
        if t.route_id:
            t.route_id = self.id("route", t.route_id)
        if t.HasField("modified_trip") and t.modified_trip.affected_trip_id:
            t.modified_trip.affected_trip_id = self.id("trip", t.modified_trip.affected_trip_id)

    def own(self, value: str) -> str:
        """Return an id the realtime feed made up itself (a vehicle, an added trip) in its feed's namespace when the
        export merges several feeds, else as it is."""
        return f"{self.inp.namespace}:{value}" if self.prefix_own else value

    def vehicle(self, v) -> None:
        if v.id:
            v.id = self.own(v.id)

    def trip_update(self, tu) -> None:
        self.trip(tu.trip)
        if tu.HasField("vehicle"):
            self.vehicle(tu.vehicle)
        stops = self.maps["stop"]
        for stu in tu.stop_time_update:
            sid = stu.stop_id
            if sid:
                m = stops.get(sid)
                if m is None:
                    raise _Unmapped("stop", sid)
                if m != sid:
                    stu.stop_id = m
            if stu.HasField("stop_time_properties") and stu.stop_time_properties.assigned_stop_id:
                stu.stop_time_properties.assigned_stop_id = self.id("stop", stu.stop_time_properties.assigned_stop_id)
        if tu.HasField("trip_properties") and tu.trip_properties.trip_id:  # the new trip of a DUPLICATED one
            tu.trip_properties.trip_id = self.own(tu.trip_properties.trip_id)
        if tu.HasField("trip_properties") and tu.trip_properties.shape_id:
            # a shape of the static feed keeps its merged id; a shape the realtime feed defines itself is left as it is
            m = self.idmap.crosswalk.get(("shape", self.inp.static_feed_id), {}).get(tu.trip_properties.shape_id)
            if m:
                tu.trip_properties.shape_id = m

    def vehicle_position(self, vp) -> None:
        if vp.HasField("trip"):
            self.trip(vp.trip)
        if vp.HasField("vehicle"):
            self.vehicle(vp.vehicle)
        if vp.stop_id:
            vp.stop_id = self.id("stop", vp.stop_id)

    def selector(self, s) -> None:
        if s.agency_id:
            s.agency_id = self.id("agency", s.agency_id)
        if s.route_id:
            s.route_id = self.id("route", s.route_id)
        if s.stop_id:
            s.stop_id = self.id("stop", s.stop_id)
        if s.HasField("trip"):
            self.trip(s.trip)


def _count(drops: dict, space: str, value: str) -> None:
    d = drops.setdefault(space, {"entities": 0, "samples": []})
    d["entities"] += 1
    if value not in d["samples"] and len(d["samples"]) < SAMPLES:
        d["samples"].append(value)


def _merge_input(out, msg, idmap: IdMap, inp: RtInput, entity_field: str, *, prefix_own: bool) -> dict:
    """Append ``msg``'s entities of one kind, rewritten, to ``out``; return {entities_in, entities_out, dropped}."""
    from google.transit import gtfs_realtime_pb2 as pb

    rw = _Rewriter(idmap, inp, prefix_own=prefix_own)
    n_in = n_out = 0
    drops: dict[str, dict] = {}
    selectors_dropped = 0
    selectors_lost: dict[str, dict] = {}
    for e in msg.entity:
        if not e.HasField(entity_field):
            continue
        n_in += 1
        ent = out.entity.add()  # copied once, rewritten in place, taken out again if an id has no merged id
        ent.CopyFrom(e)
        ent.id = f"{inp.feed_id}:{e.id}"
        try:
            if entity_field == "trip_update":
                rw.trip_update(ent.trip_update)
            elif entity_field == "vehicle":
                rw.vehicle_position(ent.vehicle)
            else:
                kept, lost = [], []
                for s in ent.alert.informed_entity:
                    sel = pb.EntitySelector()
                    sel.CopyFrom(s)
                    try:
                        rw.selector(sel)
                        kept.append(sel)
                    except _Unmapped as u:
                        lost.append(u)
                if lost and not kept:
                    raise lost[0]
                for u in lost:  # the alert stays, without the informed entities it cannot name in the export's ids
                    selectors_dropped += 1
                    d = selectors_lost.setdefault(u.space, {"informed_entities": 0, "samples": []})
                    d["informed_entities"] += 1
                    if u.value not in d["samples"] and len(d["samples"]) < SAMPLES:
                        d["samples"].append(u.value)
                del ent.alert.informed_entity[:]
                ent.alert.informed_entity.extend(kept)
        except _Unmapped as u:
            _count(drops, u.space, u.value)
            del out.entity[-1]
            continue
        n_out += 1
    res = {"entities_in": n_in, "entities_out": n_out, "dropped": drops, "added_trips_kept": rw.added}
    if entity_field == "alert":
        res["informed_entities_dropped"] = selectors_dropped
        res["informed_entities_dropped_by_space"] = selectors_lost
    return res


# ---------------------------------------------------------------- building, with a cache

_CACHE: OrderedDict[tuple, Built] = OrderedDict()


def build(ws: Workspace, export_id: str, kind: str) -> Built:
    """Return the merged realtime feed of one kind (a key of KINDS) of an export, from its inputs' latest snapshots.

    If the export was not built, has no realtime input, or none of its inputs has archived anything, raise NotServed.
    """
    from google.protobuf.message import DecodeError
    from google.transit import gtfs_realtime_pb2 as pb

    if kind not in KINDS:
        raise NotServed(f"{kind!r} is not a realtime part; use {', '.join(KINDS)}")
    part, entity_field = KINDS[kind]
    idmap = load_id_map(ws, export_id)
    inputs = realtime_inputs(ws, idmap)
    if not inputs:
        raise NotServed(f"export '{export_id}' has no realtime input: no realtime feed archived under raw/ names one of its "
                        f"feeds ({', '.join(idmap.namespaces)}) as its static feed (noriba rt archive / noriba rt ingest --static)")
    snaps = {i.feed_id: latest_snapshot(ws, i.feed_id, part) for i in inputs}
    others: list[Path] = []  # with no snapshot of this part: the other parts' newest, for the header timestamp
    if not any(snaps.values()):
        others = [p for i in inputs for p_, _ in KINDS.values() if p_ != part for p in [latest_snapshot(ws, i.feed_id, p_)] if p]
        if not others:
            raise NotServed(f"export '{export_id}': its realtime inputs ({', '.join(i.feed_id for i in inputs)}) have nothing "
                            "archived yet")
    key = (str(ws.home), export_id, idmap.export_version, kind, tuple((f, p.name if p else None) for f, p in snaps.items()),
           tuple(p.name for p in others))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    out = pb.FeedMessage()
    out.header.gtfs_realtime_version = "2.0"
    out.header.incrementality = pb.FeedHeader.FULL_DATASET
    stamps: list[int] = []
    prefix_own = len(idmap.namespaces) > 1
    per_input = []
    for inp in inputs:
        path = snaps[inp.feed_id]
        row = {"feed_id": inp.feed_id, "static_feed_id": inp.static_feed_id, "namespace": inp.namespace,
               "snapshot": None, "header_timestamp": None, "entities_in": 0, "entities_out": 0, "dropped": {}}
        if path is None:
            row["note"] = f"nothing of {part} archived in its newest {LOOKBACK_HOURS} hours"
            per_input.append(row)
            continue
        row["snapshot"] = str(path.relative_to(ws.raw))
        msg = pb.FeedMessage()
        try:
            msg.ParseFromString(path.read_bytes())
        except (DecodeError, OSError) as exc:
            row["note"] = f"the snapshot is not a readable FeedMessage ({type(exc).__name__}); left out"
            per_input.append(row)
            continue
        if msg.header.HasField("timestamp"):
            row["header_timestamp"] = msg.header.timestamp
            stamps.append(msg.header.timestamp)
        row.update(_merge_input(out, msg, idmap, inp, entity_field, prefix_own=prefix_own))
        per_input.append(row)
    if not stamps:  # no snapshot of this part: the feed is empty, as of the inputs' newest other snapshot
        from transforms.gtfs_rt.parse import header_timestamp

        for p in others:
            try:
                ts = header_timestamp(p.read_bytes())
            except OSError:
                ts = None
            if ts:
                stamps.append(ts)
    if stamps:
        out.header.timestamp = max(stamps)
    data = out.SerializeToString()
    etag = hashlib.sha256(repr(key[1:]).encode()).hexdigest()[:32]
    status = {"export_id": export_id, "export_version": idmap.export_version, "part": kind,
              "header_timestamp": out.header.timestamp if stamps else None, "entities": len(out.entity),
              "dropped_entities": sum(r["entities_in"] - r["entities_out"] for r in per_input), "inputs": per_input}
    built = Built(message=out, data=data, etag=etag, status=status)
    with _LOCK:
        _CACHE[key] = built
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return built


def status(ws: Workspace, export_id: str) -> dict:
    """Return what each merged part holds and what it dropped (the ``status.json`` sidecar). If nothing is served, raise NotServed."""
    parts = {kind: build(ws, export_id, kind).status for kind in KINDS}
    first = next(iter(parts.values()))
    return {"export_id": export_id, "export_version": first["export_version"],
            "why_dropped": "an entity is left out when one of its trip, route, stop or agency ids has no merged id in this export "
                           "(not in its crosswalk.csv, or cut from its GTFS zip)",
            "parts": {k: {x: v for x, v in s.items() if x not in ("export_id", "export_version", "part")} for k, s in parts.items()}}


def served_exports(ws: Workspace) -> list[str]:
    """Return the built exports that have at least one realtime input (for the demo and the startup line)."""
    out = []
    if not ws.exports.is_dir():
        return out
    for d in sorted(ws.exports.iterdir()):
        if d.name.startswith(".") or not (d / "latest.json").is_file():
            continue
        try:
            if realtime_inputs(ws, load_id_map(ws, d.name)):
                out.append(d.name)
        except (NotServed, InputError):
            continue
    return out


__all__ = ["KINDS", "NotServed", "IdMap", "RtInput", "Built", "load_id_map", "realtime_inputs", "latest_snapshot", "build",
           "status", "served_exports", "zip_ids"]
