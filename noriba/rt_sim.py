"""A GTFS-Realtime simulator for the demo region: it replays a static timetable with seeded, realistic delays.

Per trip an initial delay is drawn (most within −1..+3 min, a tail of late trips up to +10 min); it drifts
segment by segment and buses dwell at stops (never leaving a timepoint early by more than 30 s). From that
the simulator builds, at any simulated instant, a VehiclePositions and a TripUpdates ``FeedMessage`` whose
header timestamp is the simulated time; the actual arrival and departure of every trip at every stop is the
ground truth (:meth:`Simulator.ground_truth`).

Two ways to feed the archiver:

* :func:`write_snapshots` / :func:`archive_simulated`: snapshots every simulated 20 s written as files and
  archived with :func:`noriba.rt.ingest`, which files them under the hour of their *header* timestamp, i.e.
  simulated time. This is the robust path for the demo (the polling archiver files by wall-clock fetch time).
* :class:`SimServer`: an HTTP server on 127.0.0.1 (``/vehicle-positions.pb``, ``/trip-updates.pb``) on a fast
  clock (simulated time = start + speed × elapsed wall time), with ETag / 304, usable by ``noriba rt archive``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
import threading
import time
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

from google.transit import gtfs_realtime_pb2 as pb

from transforms.errors import InputError

STEP_S = 20
#: A vehicle is shown laying over at its origin this long before its departure, and at its terminus this long after arriving.
LAYOVER_S, AFTER_S = 120, 60
_TABLES = ("trips", "routes", "stop_times", "stops", "shapes", "calendar", "calendar_dates", "agency")


# ---------------------------------------------------------------- static feed

def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp932")


def read_static(path: Path) -> dict[str, list[dict]]:
    """Return the tables the simulator needs from a GTFS zip or folder (UTF-8, else Shift_JIS). If none, raise InputError."""
    path = Path(path)
    raws: dict[str, bytes] = {}
    if path.is_dir():
        for t in _TABLES:
            f = path / f"{t}.txt"
            if f.is_file():
                raws[t] = f.read_bytes()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = {Path(n).name: n for n in z.namelist()}
            for t in _TABLES:
                if f"{t}.txt" in names:
                    raws[t] = z.read(names[f"{t}.txt"])
    else:
        raise InputError(f"{path}: not a GTFS zip or folder; give the static feed the simulator replays")
    if "trips" not in raws or "stop_times" not in raws or "stops" not in raws:
        raise InputError(f"{path}: trips.txt, stop_times.txt and stops.txt are needed to simulate a feed")
    return {t: [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(io.StringIO(_decode(raw)))]
            for t, raw in raws.items()}


def _secs(text: str) -> int | None:
    parts = (text or "").split(":")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2])
    return None


def services_on(tables: dict, day: date) -> set[str]:
    """Return the service_ids running on ``day`` (calendar.txt, then calendar_dates.txt exceptions)."""
    ymd = day.strftime("%Y%m%d")
    wd = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[day.weekday()]
    out = {c["service_id"] for c in tables.get("calendar", []) if c.get(wd) == "1" and c.get("start_date", "") <= ymd <= c.get("end_date", "")}
    for d in tables.get("calendar_dates", []):
        if d.get("date") == ymd:
            (out.add if d.get("exception_type") == "1" else out.discard)(d["service_id"])
    return out


def _dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    k = math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot((a[0] - b[0]) * 111_320.0, (a[1] - b[1]) * 111_320.0 * k)


# ---------------------------------------------------------------- the model

@dataclass
class StopEvent:
    stop_sequence: int
    stop_id: str
    scheduled_arrival: int  # POSIX seconds
    scheduled_departure: int
    arrival: int = 0  # actual, POSIX seconds
    departure: int = 0
    dist: float = 0.0  # metres along the trip's path
    lat: float = 0.0
    lon: float = 0.0


@dataclass
class SimTrip:
    trip_id: str
    route_id: str
    direction_id: int | None
    vehicle_id: str
    events: list[StopEvent]
    path: list[tuple[float, float, float]]  # (cumulative metres, lat, lon)


def draw_initial_delay(rng: random.Random) -> int:
    """Return a trip's delay at its first stop in seconds: 85% within −1..+3 min (centred on +30 s), 15% late, up to +10 min."""
    if rng.random() < 0.85:
        return int(max(-60, min(180, rng.gauss(30, 60))))
    return int(rng.uniform(180, 600))


class Simulator:
    """The actual run of every trip of a static feed on one service date, drawn from ``seed``."""

    def __init__(self, tables: dict, service_date: date, *, seed: int = 1, tz: str = "Asia/Tokyo", min_dwell_s: int = 20):
        self.service_date = service_date
        self.seed = seed
        self.min_dwell_s = min_dwell_s
        zone = ZoneInfo(tz)
        # GTFS times count from noon minus 12 h of the service date
        noon = datetime(service_date.year, service_date.month, service_date.day, 12, tzinfo=zone)
        self.base = int(noon.timestamp()) - 12 * 3600
        rng = random.Random(seed)
        stops = {s["stop_id"]: (float(s["stop_lat"]), float(s["stop_lon"])) for s in tables["stops"]
                 if s.get("stop_lat") and s.get("stop_lon")}
        shapes: dict[str, list] = {}
        for r in tables.get("shapes", []):
            shapes.setdefault(r["shape_id"], []).append((float(r["shape_pt_sequence"]), float(r["shape_pt_lat"]), float(r["shape_pt_lon"])))
        by_trip: dict[str, list[dict]] = {}
        for st in tables["stop_times"]:
            by_trip.setdefault(st["trip_id"], []).append(st)
        running = services_on(tables, service_date)
        self.trips: list[SimTrip] = []
        for t in sorted(tables["trips"], key=lambda t: t["trip_id"]):
            sts = sorted(by_trip.get(t["trip_id"], []), key=lambda s: int(s["stop_sequence"]))
            if t.get("service_id") not in running or len(sts) < 2:
                continue
            events = []
            for s in sts:
                a, d = _secs(s.get("arrival_time", "")), _secs(s.get("departure_time", ""))
                a, d = (a if a is not None else d), (d if d is not None else a)
                if a is None:
                    continue  # an untimed stop: no ground truth for it
                events.append(StopEvent(int(s["stop_sequence"]), s["stop_id"], self.base + a, self.base + d))
            if len(events) < 2 or any(e.stop_id not in stops for e in events):
                continue
            path = self._path(events, stops, sorted(shapes.get(t.get("shape_id", ""), [])))
            d = (t.get("direction_id") or "").strip()
            trip = SimTrip(t["trip_id"], t.get("route_id", ""), int(d) if d.isdigit() else None,
                           f"minato-{len(self.trips) + 1:03d}", events, path)
            self._run(trip, rng, min_dwell_s)
            self.trips.append(trip)
        self.trips.sort(key=lambda tr: (tr.events[0].departure, tr.trip_id))

    @staticmethod
    def _path(events: list[StopEvent], stops: dict, shape: list) -> list[tuple[float, float, float]]:
        """Return the trip's path (the shape, else the stops in order) with cumulative metres; set each event's ``dist``."""
        pts = [(p[1], p[2]) for p in shape] or [stops[e.stop_id] for e in events]
        path, total = [], 0.0
        for i, p in enumerate(pts):
            if i:
                total += _dist_m(pts[i - 1], p)
            path.append((total, p[0], p[1]))
        j = 0
        for e in events:  # each stop at the nearest path vertex at or after the previous stop's
            pos = stops[e.stop_id]
            e.lat, e.lon = pos
            best = min(range(j, len(path)), key=lambda k: _dist_m(pos, path[k][1:]))
            j = best
            e.dist = path[best][0]
        return path

    @staticmethod
    def _run(trip: SimTrip, rng: random.Random, min_dwell_s: int) -> None:
        """Draw the trip's actual arrival and departure at every stop."""
        ev = trip.events
        delay = draw_initial_delay(rng)
        ev[0].departure = ev[0].scheduled_departure + delay
        ev[0].arrival = min(ev[0].departure, ev[0].scheduled_arrival + max(delay, 0))  # at the origin: there by its departure
        for prev, e in zip(ev, ev[1:]):
            run = max(30, e.scheduled_arrival - prev.scheduled_departure)
            drift = rng.gauss(0.03, 0.08) * run + rng.gauss(0, 10)  # traffic: a little slower than planned on average
            e.arrival = int(prev.departure + max(0.6 * run, run + drift))
            dwell = max(min_dwell_s if e is not ev[-1] else 0, e.scheduled_departure - e.scheduled_arrival) + int(rng.uniform(0, 20))
            e.departure = max(e.arrival + dwell, e.scheduled_departure - 30)  # a bus does not leave well before its time
            if e is ev[-1]:
                e.departure = e.arrival

    # ------------------------------------------------------------ ground truth

    def ground_truth(self) -> list[dict]:
        """Return one row per trip and stop: scheduled and actual arrival/departure (POSIX seconds) and the delays in seconds."""
        return [{"trip_id": t.trip_id, "route_id": t.route_id, "service_date": self.service_date.isoformat(),
                 "stop_sequence": e.stop_sequence, "stop_id": e.stop_id, "vehicle_id": t.vehicle_id,
                 "scheduled_arrival": e.scheduled_arrival, "scheduled_departure": e.scheduled_departure,
                 "actual_arrival": e.arrival, "actual_departure": e.departure,
                 "arrival_delay_s": e.arrival - e.scheduled_arrival, "departure_delay_s": e.departure - e.scheduled_departure}
                for t in self.trips for e in t.events]

    def span(self) -> tuple[int, int]:
        """Return (first departure, last arrival) of the day, POSIX seconds."""
        return min(t.events[0].departure for t in self.trips), max(t.events[-1].arrival for t in self.trips)

    # ------------------------------------------------------------ feeds

    def _header(self, msg: pb.FeedMessage, now: int) -> None:
        msg.header.gtfs_realtime_version = "2.0"
        msg.header.incrementality = pb.FeedHeader.FULL_DATASET
        msg.header.timestamp = now

    def _active(self, now: int) -> list[SimTrip]:
        # a vehicle shows from 2 min before its first departure (laying over at the origin) to 1 min after it reached the last stop
        return [t for t in self.trips if t.events[0].departure - LAYOVER_S <= now <= t.events[-1].arrival + AFTER_S]

    def _where(self, t: SimTrip, now: int) -> tuple[int, int, float]:
        """Return (index of the current / next stop, status, metres along the path) of a trip at ``now``."""
        ev = t.events
        if now <= ev[0].departure:
            return 0, pb.VehiclePosition.STOPPED_AT, ev[0].dist
        for i in range(1, len(ev)):
            prev, e = ev[i - 1], ev[i]
            if now < e.arrival:
                frac = (now - prev.departure) / max(1, e.arrival - prev.departure)
                dist = prev.dist + frac * (e.dist - prev.dist)
                status = pb.VehiclePosition.INCOMING_AT if e.arrival - now <= 30 else pb.VehiclePosition.IN_TRANSIT_TO
                return i, status, dist
            if now <= e.departure:
                return i, pb.VehiclePosition.STOPPED_AT, e.dist
        return len(ev) - 1, pb.VehiclePosition.STOPPED_AT, ev[-1].dist

    @staticmethod
    def _point(t: SimTrip, dist: float) -> tuple[float, float]:
        p = t.path
        for a, b in zip(p, p[1:]):
            if dist <= b[0]:
                f = 0.0 if b[0] == a[0] else (dist - a[0]) / (b[0] - a[0])
                return a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])
        return p[-1][1], p[-1][2]

    def _trip_descriptor(self, td: pb.TripDescriptor, t: SimTrip) -> None:
        td.trip_id = t.trip_id
        td.route_id = t.route_id
        if t.direction_id is not None:
            td.direction_id = t.direction_id
        td.start_date = self.service_date.strftime("%Y%m%d")
        td.start_time = _hms(t.events[0].scheduled_departure - self.base)
        td.schedule_relationship = pb.TripDescriptor.SCHEDULED

    def vehicle_positions(self, now: int) -> pb.FeedMessage:
        """Return the VehiclePositions FeedMessage at simulated time ``now`` (POSIX seconds)."""
        msg = pb.FeedMessage()
        self._header(msg, now)
        for t in self._active(now):
            i, status, dist = self._where(t, now)
            e = msg.entity.add()
            e.id = f"vp-{t.vehicle_id}"
            v = e.vehicle
            self._trip_descriptor(v.trip, t)
            v.vehicle.id = t.vehicle_id
            v.vehicle.label = t.vehicle_id
            if status == pb.VehiclePosition.STOPPED_AT:  # at the stop itself (the path's nearest vertex may lie beside it)
                v.position.latitude, v.position.longitude = t.events[i].lat, t.events[i].lon
            else:
                v.position.latitude, v.position.longitude = self._point(t, dist)
            v.current_stop_sequence = t.events[i].stop_sequence
            v.stop_id = t.events[i].stop_id
            v.current_status = status
            v.timestamp = now
        return msg

    def predictions(self, t: SimTrip, now: int) -> list[tuple[StopEvent, int, int | None]]:
        """Return (stop, predicted arrival, predicted departure or None at the terminus) for the current stop and those ahead,
        as a realtime system would predict them at ``now``: from the vehicle's progress along its path, the scheduled run
        times and dwells ahead, never leaving a stop more than 30 s early. Predictions converge on the truth as the bus nears."""
        i, status, dist = self._where(t, now)
        ev, last = t.events, len(t.events) - 1
        dwell = self.min_dwell_s

        def leave(k: int, arr: int) -> int | None:
            if k == last:
                return None
            return max(arr + max(dwell, ev[k].scheduled_departure - ev[k].scheduled_arrival), ev[k].scheduled_departure - 30)

        if i == 0:  # laying over at the origin
            arr = dep = max(now, ev[0].scheduled_departure)
        elif status == pb.VehiclePosition.STOPPED_AT:
            arr = ev[i].arrival
            dep = None if i == last else max(now, leave(i, arr))
        else:
            prev, e = ev[i - 1], ev[i]
            left = 1.0 - (dist - prev.dist) / (e.dist - prev.dist) if e.dist > prev.dist else 1.0 - (now - prev.departure) / max(
                1, e.scheduled_arrival - prev.scheduled_departure)
            arr = int(now + max(0.0, left) * max(30, e.scheduled_arrival - prev.scheduled_departure))
            dep = leave(i, arr)
        out = [(ev[i], arr, dep)]
        for k in range(i + 1, last + 1):
            arr = out[-1][2] + max(30, ev[k].scheduled_arrival - ev[k - 1].scheduled_departure)
            out.append((ev[k], arr, leave(k, arr)))
        return out

    def trip_updates(self, now: int) -> pb.FeedMessage:
        """Return the TripUpdates FeedMessage at ``now``: for each trip under way, predictions for the current stop and those ahead."""
        msg = pb.FeedMessage()
        self._header(msg, now)
        for t in self._active(now):
            ahead = self.predictions(t, now)
            e = msg.entity.add()
            e.id = f"tu-{t.vehicle_id}"
            tu = e.trip_update
            self._trip_descriptor(tu.trip, t)
            tu.vehicle.id = t.vehicle_id
            tu.vehicle.label = t.vehicle_id
            tu.timestamp = now
            tu.delay = ahead[0][1] - ahead[0][0].scheduled_arrival
            for ev, arr, dep in ahead:
                stu = tu.stop_time_update.add()
                stu.stop_sequence = ev.stop_sequence
                stu.stop_id = ev.stop_id
                stu.arrival.time, stu.arrival.delay = arr, arr - ev.scheduled_arrival
                if dep is not None:
                    stu.departure.time, stu.departure.delay = dep, dep - ev.scheduled_departure
                stu.schedule_relationship = pb.TripUpdate.StopTimeUpdate.SCHEDULED
        return msg


def _hms(s: int) -> str:
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def on_time_share(truth: list[dict], *, early_s: int = 60, late_s: int = 300, key: str = "arrival_delay_s") -> float:
    """Return the share (0..1) of ground-truth rows whose ``key`` delay is within ``early_s`` early and ``late_s`` late."""
    rows = [r[key] for r in truth if r.get(key) is not None]
    return sum(-early_s <= d <= late_s for d in rows) / len(rows) if rows else float("nan")


def resolve_static(ws, static: str) -> Path:
    """Return the GTFS zip or folder ``static`` names: a path, else the newest published export of that static feed id."""
    p = Path(static)
    if p.exists():
        return p
    zips = sorted((ws.exports / "gtfs" / static).glob(f"{static}_*.zip"), key=lambda z: z.stat().st_mtime) \
        if (ws.exports / "gtfs" / static).is_dir() else []
    if not zips:
        raise InputError(f"{static}: neither a GTFS zip or folder nor a published static feed id in {ws.home}; "
                         "run `noriba demo` (or `noriba run FEED`) first, or give the path of a GTFS zip")
    return zips[-1]


def simulator(static: Path, service_date: date | str, *, seed: int = 1, tz: str = "Asia/Tokyo") -> Simulator:
    """Return the simulator of a static GTFS zip or folder on ``service_date``. If no trip runs that day, raise InputError."""
    try:
        day = date.fromisoformat(service_date) if isinstance(service_date, str) else service_date
    except ValueError:
        raise InputError(f"--date {service_date!r}: write the service date as YYYY-MM-DD, e.g. 2026-12-07") from None
    tables = read_static(Path(static))
    try:
        sim = Simulator(tables, day, seed=seed, tz=tz)
    except KeyError as exc:
        raise InputError(f"{static}: a column the simulator needs is missing: {exc.args[0]} (trips, stops, stop_times, "
                         "shapes and calendar as in GTFS); validate the feed with `noriba validate` first") from None
    except ValueError as exc:
        raise InputError(f"{static}: a value the simulator cannot read ({exc}); validate the feed with `noriba validate` "
                         "first") from None
    if not sim.trips:
        raise InputError(f"{static}: no trip runs on {day.isoformat()} (calendar.txt / calendar_dates.txt); pick a day of service")
    return sim


# ---------------------------------------------------------------- snapshots to files, and into the archive

def local_hours(sim: Simulator, hours: tuple[int, int], tz: str = "Asia/Tokyo") -> tuple[int, int]:
    """Return (start, end) POSIX seconds of local hours ``hours`` (e.g. (6, 10) = 06:00–10:00) of the service date."""
    d = sim.service_date
    start = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)) + timedelta(hours=hours[0])
    end = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)) + timedelta(hours=hours[1])
    return int(start.timestamp()), int(end.timestamp())


def write_snapshots(sim: Simulator, out: Path, start: int, end: int, *, step_s: int = STEP_S) -> list[Path]:
    """Write a VehiclePositions and a TripUpdates snapshot every ``step_s`` simulated seconds from ``start`` to ``end``
    (inclusive) into ``out``; return the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for now in range(start, end + 1, step_s):
        for name, msg in (("vehicle-positions", sim.vehicle_positions(now)), ("trip-updates", sim.trip_updates(now))):
            f = out / f"{name}-{now}.pb"
            f.write_bytes(msg.SerializeToString())
            files.append(f)
    return files


def archive_simulated(ws, feed_id: str, sim: Simulator, start: int, end: int, *, static_feed_id: str | None = None,
                      tz: str = "Asia/Tokyo", step_s: int = STEP_S, parse: bool = True) -> dict:
    """Archive simulated snapshots from ``start`` to ``end`` with noriba.rt.ingest (filed by their header timestamp, the
    simulated time), then parse and publish them; return the ingest result (and the parse result under ``parsed``)."""
    import tempfile

    from noriba import rt

    with tempfile.TemporaryDirectory(prefix="noriba-rtsim-") as tmp:
        write_snapshots(sim, Path(tmp), start, end, step_s=step_s)
        result = rt.ingest(ws, feed_id, [Path(tmp)], static=static_feed_id, tz=tz)
    if parse:
        result["parsed"] = rt.parse_feed(ws, feed_id, hours=result["hours"])
    return result


# ---------------------------------------------------------------- the server on a fast clock

class SimServer:
    """Serve the simulator on 127.0.0.1: ``/vehicle-positions.pb`` and ``/trip-updates.pb`` at simulated time
    ``start + speed × elapsed wall seconds``, snapped to ``step_s`` (so a poll within one step gets a 304 on its ETag).
    Use as a context manager, or call :meth:`stop`."""

    def __init__(self, sim: Simulator, *, start: int, speed: float = 360.0, step_s: int = STEP_S, port: int = 0):
        self.sim, self.start, self.speed, self.step_s = sim, start, speed, step_s
        self._wall0 = time.monotonic()
        self._cache: dict[tuple[str, int], tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                kind = {"/vehicle-positions.pb": "vp", "/trip-updates.pb": "tu"}.get(self.path.split("?")[0])
                if kind is None:
                    self.send_error(404, "try /vehicle-positions.pb or /trip-updates.pb")
                    return
                body, etag = server.body(kind)
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="noriba-rtsim", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def now(self) -> int:
        """Return the simulated time now, snapped down to the step (POSIX seconds)."""
        t = self.start + self.speed * (time.monotonic() - self._wall0)
        return int(t // self.step_s * self.step_s)

    def body(self, kind: str) -> tuple[bytes, str]:
        """Return (the serialized feed, its ETag) at the current simulated step."""
        now = self.now()
        with self._lock:
            if (kind, now) not in self._cache:
                msg = self.sim.vehicle_positions(now) if kind == "vp" else self.sim.trip_updates(now)
                data = msg.SerializeToString()
                self._cache = {k: v for k, v in self._cache.items() if k[1] == now}
                self._cache[(kind, now)] = (data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
            return self._cache[(kind, now)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "SimServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- for `noriba demo`

def service_day(tables: dict, *, on_or_before: date | None = None) -> date:
    """Return the latest weekday (Monday–Friday) on or before ``on_or_before`` (default today) with service; else the latest
    day with any service in the 400 days before it. If there is none, raise InputError."""
    day = on_or_before or date.today()
    for want_weekday in (True, False):
        for back in range(400):
            d = day - timedelta(days=back)
            if (d.weekday() < 5 or not want_weekday) and services_on(tables, d):
                return d
    raise InputError("the static feed has no service in the 400 days before " + day.isoformat())


def demo_feed(ws, *, static_feed_id: str = "minato-city-bus", feed_id: str = "minato-bus-rt", day: date | None = None,
              hours: tuple[int, int] = (6, 10), seed: int = 1, tz: str = "Asia/Tokyo") -> dict:
    """Archive, parse and publish ``hours`` of the simulated realtime feed of a published static feed; return the ingest
    result with ``service_date``, ``truth`` (Simulator.ground_truth rows of the trips in those hours) and ``on_time_share``."""
    static = resolve_static(ws, static_feed_id)
    tables = read_static(static)
    day = day or service_day(tables)
    sim = Simulator(tables, day, seed=seed, tz=tz)
    if not sim.trips:
        raise InputError(f"{static}: no trip runs on {day.isoformat()}")
    start, end = local_hours(sim, hours, tz)
    result = archive_simulated(ws, feed_id, sim, start, end, static_feed_id=static_feed_id, tz=tz)
    truth = [r for r in sim.ground_truth() if start <= r["actual_arrival"] <= end]
    return {**result, "service_date": day.isoformat(), "truth": truth, "on_time_share": on_time_share(truth)}
