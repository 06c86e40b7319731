"""The ``timetable`` source kind: timetable workbooks + stop list + fare table → GTFS-JP text tables.

The archived input is a zip (or folder) holding the files the spec names and the spec's
``timetable:`` section as ``noriba-timetable.json`` (written by noriba.fetch), so one raw
archive reproduces its feed. Each output table is written as the CSV it will be exported
as; its line numbers are those of that CSV (header = line 1, first row = line 2). That is
the synthetic line numbering of this kind: stable for the same input, since rows come out in
a fixed order (workbooks in spec order, sheets in workbook order, trips left to right or top
to bottom). Where a row came from in the spreadsheet is given in notices and quarantine as
Excel notation, e.g. ``timetable_weekday.xls 100110!F7``.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from transforms.adapters import InputError, Progress, TextFeed, TextFile
from transforms.csvread import read_csv_text
from transforms.gtfs import _members, normalised_sha256
from transforms.notices import ERROR, INFO, WARNING
from transforms.timetable.calendar import CalendarPlan, Exception_, Service, calendar_rows
from transforms.timetable.config import MANIFEST, _date, check_config, layout_for
from transforms.timetable.fares import RouteTable, fare_id_for, read_route_table
from transforms.timetable.layout import LayoutError, SheetTimetable, find_blocks, read_block, uncovered
from transforms.timetable.odpt import read_odpt_patterns
from transforms.timetable.stops import (
    Stop, StopMatcher, normalise_name, read_gtfs_stops, read_p11_stops, read_table_stops,
)
from transforms.timetable.times import BAD, TIME, format_seconds
from transforms.timetable.workbook import Sheet, column_index, parse_cell, read_workbook

STOP_TIMES = "stop_times.txt"


@dataclass
class Trip:
    trip_id: str
    route_id: str
    service_id: str
    direction: str
    notes: str
    headsign: str
    where: str  # e.g. 'timetable.xls 平日!F'
    times: list[tuple[str, int, int, str]]  # (stop_id, arrival s, departure s, cell ref)


@dataclass
class Built:
    """Everything collected while reading, before it is written as text tables."""

    routes: dict[str, dict] = field(default_factory=dict)
    trips: list[Trip] = field(default_factory=list)
    used_stops: set[str] = field(default_factory=set)
    fare_tables: dict[str, RouteTable] = field(default_factory=dict)  # route_id -> triangle
    time_cells: int = 0  # every time cell read in the selected sheets (accepted + quarantined)
    quarantined_cells: int = 0
    merged_cells: int = 0  # a stop on two rows in a row: two cells, one stop time
    sheets_read: int = 0


def _pattern_key(name: str) -> str:
    """Return a pattern stop name for alignment: normalised, a trailing pole number dropped (東通2 → 東通)."""
    import re

    key = normalise_name(name)
    stripped = re.sub(r"(?<![丁目番号])\d{1,2}(?:・\d{1,2})*$", "", key)
    return stripped or key


def align(names: list[str], pattern: list[str]) -> list[int | None]:
    """Return for each timetable name the index of the pattern stop it aligns to (in order), or None.

    Longest common subsequence over normalised names; a pattern name may carry a pole number.
    """
    a = [normalise_name(n) for n in names]
    b = [_pattern_key(n) for n in pattern]
    b_full = [normalise_name(n) for n in pattern]
    eq = [[(x == y or x == z) for y, z in zip(b, b_full)] for x in a]
    n, m = len(a), len(b)
    dp = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            dp[i][j] = dp[i + 1][j + 1] + 1 if eq[i][j] else max(dp[i + 1][j], dp[i][j + 1])
    out: list[int | None] = [None] * n
    i = j = 0
    while i < n and j < m:
        if eq[i][j] and dp[i][j] == dp[i + 1][j + 1] + 1:
            out[i] = j
            i, j = i + 1, j + 1
        elif dp[i + 1][j] >= dp[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


class _Reader:
    def __init__(self, cfg: dict, members: dict, encoding: str | None, progress: Progress | None):
        self.cfg = cfg
        self.members = members
        self.encoding = encoding
        self.progress = progress
        self.feed = TextFeed()
        self.built = Built()
        self.services = self._services()

    # ---- helpers -------------------------------------------------------------------------
    def say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)

    def add(self, code: str, severity: str, message: str, **where) -> None:
        self.feed.findings.add(code, severity, message, **where)

    def data(self, name: str) -> bytes:
        return self.members[name]()

    def _services(self) -> CalendarPlan:
        cal = self.cfg["calendar"]
        services = [Service(sid, tuple(s.get("days", [])), s.get("holidays", "as_day")) for sid, s in cal["services"].items()]
        exceptions = []
        for e in cal.get("exceptions", []) or []:
            if "date" in e:
                days = [_date(e["date"])]
            else:
                a, b = _date(e["from"]), _date(e["to"])
                days = [a + dt.timedelta(days=k) for k in range((b - a).days + 1)]
            exceptions += [Exception_(e["service"], d, e["type"] == "added", e.get("note", "")) for d in days]
        return CalendarPlan(_date(cal["start"]), _date(cal["end"]), services, exceptions)

    # ---- stops and patterns ----------------------------------------------------------------
    def load_stops(self) -> None:
        sc = self.cfg["stops"]
        name = sc["file"]
        fmt = sc.get("format", "gtfs")
        enc = sc.get("encoding")
        self.say(f"reading stop list {name}")
        if fmt == "gtfs":
            self.stops = read_gtfs_stops(self.data(name), name, encoding=enc)
        elif fmt == "p11":
            self.stops = read_p11_stops(self.data(name), name, encoding=enc, columns=sc.get("columns"))
        else:
            self.stops = read_table_stops(self.data(name), name, columns=sc["columns"], encoding=enc, crs=sc.get("crs", "wgs84"))
        if not self.stops.stops:
            raise InputError(f"{name}: the stop list has no stops", ja=f"{name}: 停留所一覧に停留所がありません")
        self.matcher = StopMatcher(self.stops)
        self.patterns: dict[str, tuple[str, list[str], list[str]]] = {}  # key -> (where, names, ids)
        pc = sc.get("patterns")
        if pc:
            self.say(f"reading stop patterns {pc['file']}")
            if pc.get("format", "sheets") == "odpt":
                pats, poles = read_odpt_patterns(self.data(pc["file"]), pc["file"])
                key = pc.get("key", "title")
                for p in pats:
                    k = {"title": p.title, "id": p.pattern_id, "route": p.route}.get(key, p.title)
                    self.patterns.setdefault(k, (f"{pc['file']} {p.pattern_id}", [s.name for s in p.stops], [s.stop_id for s in p.stops]))
            else:
                sheets, _ = read_workbook(self.data(pc["file"]), pc["file"])
                for sh in sheets:
                    t = read_route_table(sh, name_col=column_index(pc["name_column"]),
                                         id_col=column_index(pc["stop_id_column"]) if pc.get("stop_id_column") else None,
                                         first_row=int(pc.get("first_row", 1)) - 1)
                    if t.names:
                        self.patterns[sh.name] = (f"{pc['file']} {sh.name}", t.names, t.stop_ids)

    def _pick_child(self, stop: Stop, pole: str) -> tuple[Stop | None, list[str]]:
        """Return the platform of a station for a pole number, or (None, candidates) when it cannot be told."""
        children = self.stops.children(stop.stop_id)
        if not children:
            return stop, []
        tmpl = self.cfg["stops"].get("pole_child")
        if pole and pole.isdigit() and int(pole) > 0:
            n = int(pole)
            if tmpl:
                sid = tmpl.format(parent=stop.stop_id, number=n, letter=chr(64 + n) if n <= 26 else str(n))
                if sid in self.stops.stops:
                    return self.stops.stops[sid], []
            for c in children:
                if c.platform and c.platform.isdigit() and int(c.platform) == n:
                    return c, []
        if len(children) == 1:
            return children[0], []
        return None, [f"{c.name} ({c.stop_id})" for c in children[:6]]

    def resolve(self, tt: SheetTimetable, pattern_keys: list[str], fname: str) -> list[str | None]:
        """Return the stop id of each stop row; report every row that cannot be resolved, with candidates."""
        ids: list[str | None] = [None] * len(tt.stops)
        for key in pattern_keys:
            if key in self.patterns:
                pwhere, pnames, pids = self.patterns[key]
                for i, j in enumerate(align([s.name for s in tt.stops], pnames)):
                    if j is not None and pids[j]:
                        if pids[j] not in self.stops.stops:
                            self.add("timetable_stop_not_in_stop_list", ERROR,
                                     f"{pwhere}: stop id '{pids[j]}' ({pnames[j]}) for {fname} {tt.stops[i].name_ref} "
                                     f"is not in {self.stops.file}", file=self.stops.file, value=pids[j])
                            continue
                        ids[i] = pids[j]
                break
        sheet = tt.sheet.name
        for o in self.cfg["stops"].get("overrides", []) or []:
            for i, row in enumerate(tt.stops):
                if ids[i] is None and str(o.get("sheet", sheet)) == sheet and normalise_name(o["name"]) == normalise_name(row.name) \
                        and (o.get("pole") is None or str(o["pole"]) == row.pole):
                    if o["stop_id"] in self.stops.stops:
                        ids[i] = o["stop_id"]
                    else:
                        self.add("timetable_stop_not_in_stop_list", ERROR,
                                 f"stops.overrides: stop id '{o['stop_id']}' for '{o['name']}' is not in {self.stops.file}",
                                 file=self.stops.file, value=o["stop_id"])
        for i, row in enumerate(tt.stops):
            if ids[i] is not None:
                continue
            m = self.matcher.match(row.name)
            stop, cands = (m.stop, m.candidates)
            if stop is not None:
                stop, cands = self._pick_child(stop, row.pole)
            if stop is None:
                what = "matches several stops" if (m.how == "ambiguous" or m.stop is not None) else "matches no stop"
                pole = f" (pole {row.pole})" if row.pole else ""
                self.add("timetable_stop_not_matched", ERROR,
                         f"{row.name_ref}: stop name '{row.name}'{pole} {what} in {self.stops.file}; "
                         f"closest: {', '.join(cands) or 'none'}. Its times are quarantined; correct the name, add the stop, "
                         f"or declare it in stops.overrides",
                         file=fname, value=row.name)
                continue
            ids[i] = stop.stop_id
        return ids

    # ---- sheets -> trips ----------------------------------------------------------------
    def _sheet_selected(self, name: str) -> bool:
        sc = self.cfg.get("sheets", {})
        inc = [str(p) for p in sc.get("include", [])]
        exc = [str(p) for p in sc.get("exclude", [])]
        if inc and not any(fnmatch.fnmatchcase(name, p) for p in inc):
            return False
        return not any(fnmatch.fnmatchcase(name, p) for p in exc)

    def _sheet_rules(self, name: str, wb: dict) -> tuple[str | None, str]:
        service, direction = wb.get("service"), wb.get("direction")
        for rule in self.cfg.get("sheets", {}).get("rules", []) or []:
            if fnmatch.fnmatchcase(name, str(rule["match"])):
                if rule.get("service") is not None:
                    service = rule["service"]
                if rule.get("direction") is not None:
                    direction = rule["direction"]
        return service, "" if direction is None else str(direction)

    def read_workbooks(self) -> None:
        """Read every workbook. If some cannot be read at all, read the others first, then raise InputError naming each."""
        rc = self.cfg.get("route", {})
        failed: list[str] = []
        for wb in self.cfg["workbooks"]:
            fname = wb["file"]
            self.say(f"reading timetable {fname}")
            try:
                sheets, notices = read_workbook(self.data(fname), fname, encoding=wb.get("encoding") or self.encoding)
            except InputError as exc:
                failed.append((str(exc), getattr(exc, "ja", None) or str(exc)))
                continue
            self.feed.findings.notices.extend(notices)
            for n in notices:
                self.feed.findings.counts[(n.code, n.severity)] += 1
            chosen = [s for s in sheets if self._sheet_selected(s.name)]
            if not chosen:
                self.add("timetable_no_sheet_selected", ERROR,
                         f"{fname}: no sheet matches sheets.include/exclude; its sheets are {', '.join(s.name for s in sheets[:20])}",
                         file=fname)
            for sh in chosen:
                self.read_one_sheet(fname, sh, wb, rc)
        if failed:
            ok = len(self.cfg["workbooks"]) - len(failed)
            raise InputError(f"{len(failed)} of {len(self.cfg['workbooks'])} workbooks could not be read "
                             f"({ok} read without that problem): " + "; ".join(en for en, _ in failed),
                             ja=f"{len(self.cfg['workbooks'])} 個のブックのうち {len(failed)} 個が読み込めませんでした"
                                f"（{ok} 個はこの問題なく読めました）: " + "／".join(ja for _, ja in failed))

    def read_one_sheet(self, fname: str, sh: Sheet, wb: dict, rc: dict) -> None:
        service, direction = self._sheet_rules(sh.name, wb)
        if service is None:
            self.add("timetable_no_service", ERROR, f"sheet {sh.name}: no service for this sheet (workbooks[].service or sheets.rules)",
                     file=fname)
            return
        layout = layout_for(self.cfg, fname, sh.name)
        try:
            grid, rows_layout, blocks = find_blocks(sh, layout)
            tts = [read_block(sh, grid, rows_layout, bl, self.cfg.get("markers")) for bl in blocks]
        except LayoutError as exc:
            self.add("timetable_layout_does_not_fit", ERROR,
                     f"{fname} sheet {sh.name}{' ' + exc.cell if exc.cell else ''}: the layout does not fit ({exc}); "
                     f"change {exc.field} in the spec (or add a layouts entry for this workbook/sheet)", file=fname, value=exc.field)
            return
        except (ValueError, KeyError) as exc:
            self.add("timetable_layout_does_not_fit", ERROR,
                     f"{fname} sheet {sh.name}: the layout does not fit ({exc}); change layout in the spec "
                     f"(or add a layouts entry for this workbook/sheet)", file=fname, value="layout")
            return
        for where, n in uncovered(sh, grid, rows_layout, blocks):
            self.add("timetable_cells_outside_layout", WARNING,
                     f"{fname} {where}: {n} time-like cells outside every block of the layout, so they were not read; "
                     f"add a block for them (layout.blocks, or layout.repeat with a marker) or, if they are no timetable, "
                     f"leave them (`noriba spec suggest {fname}` shows the blocks it finds)", file=fname, value=where)
        if not any(tt.trips or tt.loose_times for tt in tts):
            self.add("timetable_sheet_without_trips", INFO, f"sheet {sh.name}: no trip times found; sheet skipped", file=fname)
            return
        many = len(tts) > 1
        counted = False
        for tt in tts:
            if not tt.trips and not tt.loose_times:
                if many:
                    self.add("timetable_sheet_without_trips", INFO,
                             f"sheet {sh.name} block {tt.block.number} ({tt.block.how}): no trip times found; block skipped", file=fname)
                continue
            if not tt.stops:
                bl = tt.block
                what = f"sheet {sh.name}" + (f" block {bl.number} ({bl.how})" if many else "")
                key = bl.how if bl.how.startswith("layout") else "layout"
                names = "stop_row or first_stop_column" if rows_layout else "stop_column or first_stop_row"
                self.add("timetable_sheet_without_stops", ERROR,
                         f"{fname} {what}: times found but no stop names from {tt.ref(bl.first, bl.stop_col)} on; "
                         f"change {key}.{names.replace(' or ', f' or {key}.')} in the spec", file=fname)
                continue
            if not counted:
                self.built.sheets_read += 1
                counted = True
            self.read_block_trips(fname, sh, tt, service, direction, rc)

    def _route(self, route_id: str, sh: Sheet, rc: dict, origin: str, destination: str, short_name: str | None = None) -> None:
        b = self.built
        if route_id in b.routes:
            return
        long_name = rc.get("long_name", "")
        if rc.get("long_name_cell"):
            r, c = parse_cell(rc["long_name_cell"])
            v = sh.value(r, c)
            long_name = str(v).strip() if v is not None else long_name
        b.routes[route_id] = {"long_name": str(long_name).format(sheet=sh.name),
                              "short_name": short_name if short_name is not None else str(rc.get("short_name", "")).format(sheet=sh.name),
                              "origin": origin, "destination": destination, "sheet": sh.name}

    def read_block_trips(self, fname: str, sh: Sheet, tt: SheetTimetable, service: str, direction: str, rc: dict) -> None:
        b = self.built
        template = tt.block.route if tt.block is not None and tt.block.route is not None else str(rc.get("id", "{sheet}"))
        block_route = template.format(sheet=sh.name, file=Path(fname).stem)
        by_header = tt.block is not None and "route" in tt.block.header
        if not by_header:
            self._route(block_route, sh, rc, tt.stops[0].name, tt.stops[-1].name)
        ids = self.resolve(tt, [sh.name, block_route], fname)
        wrap = self.cfg.get("midnight_wrap", True)
        counter = Counter(t.route_id + "\0" + t.service_id for t in b.trips)
        footnotes = self.cfg.get("footnotes", {})
        for trip in tt.trips:
            route_id = block_route
            if by_header:
                if trip.route:
                    route_id = trip.route
                else:
                    hdr = tt.ref(tt.block.header["route"], trip.col)
                    self.add("timetable_trip_without_route", WARNING,
                             f"{fname} {hdr}: the route header cell of this trip is empty, so it goes to route '{block_route}' "
                             f"(route.id); write its 系統/路線 in {hdr}", file=fname, value=hdr)
            svc = service
            for mark, f in footnotes.items():
                if mark and mark in trip.notes:
                    svc = f["service"]
            times: list[tuple[str, int, int, str]] = []
            names: list[str] = []
            cells_here = 0
            problem = None
            quarantined_here = []
            prev = None
            for i, stop in enumerate(tt.stops):
                arr_c, dep_c = trip.cells[stop.arr_row], trip.cells[stop.dep_row]
                ref = tt.ref(stop.dep_row, trip.col)
                kinds = {arr_c.kind, dep_c.kind}
                if BAD in kinds:
                    bad_row = stop.arr_row if arr_c.kind == BAD else stop.dep_row
                    bad_ref = tt.ref(bad_row, trip.col)
                    self.add("timetable_invalid_time", ERROR,
                             f"{bad_ref}: {trip.raw[bad_row]!r} cannot be read; expected {arr_c.expected or dep_c.expected}",
                             file=fname, value=str(trip.raw[bad_row])[:100])
                    cells_here += 1
                    quarantined_here.append((bad_ref, "timetable_invalid_time", f"unreadable time {trip.raw[bad_row]!r}", str(trip.raw[bad_row])))
                    continue
                if TIME not in kinds:
                    continue  # passes without stopping, does not run here, or blank
                arr = arr_c.seconds if arr_c.kind == TIME else dep_c.seconds
                dep = dep_c.seconds if dep_c.kind == TIME else arr
                # the cell each time came from: on a stop with 着 and 発 rows, the arrival is the 着 cell
                arr_ref = tt.ref(stop.arr_row if arr_c.kind == TIME else stop.dep_row, trip.col)
                dep_ref = tt.ref(stop.dep_row if dep_c.kind == TIME else stop.arr_row, trip.col)
                cells_here += 1
                if ids[i] is None:
                    quarantined_here.append((ref, "timetable_stop_not_matched", f"stop '{stop.name}' not matched", format_seconds(dep)))
                    continue
                if prev is not None:
                    while wrap and arr < prev[1] and prev[1] - arr > 12 * 3600:
                        arr += 86400
                        dep += 86400
                    if dep < arr and arr - dep > 12 * 3600:
                        dep += 86400
                    if arr < prev[1] and problem is None:
                        problem = (arr_ref, f"{format_seconds(arr)} at {arr_ref} ({stop.name}) is earlier than {format_seconds(prev[1])} at {prev[2]}")
                if dep < arr and problem is None:
                    problem = (dep_ref, f"departure {format_seconds(dep)} at {dep_ref} ({stop.name}) is earlier than its "
                                        f"arrival {format_seconds(arr)} at {arr_ref}")
                if times and times[-1][0] == ids[i]:
                    self.built.merged_cells += 1
                    # the same stop on two rows in a row (arrival and departure at a terminal): one stop time
                    times[-1] = (ids[i], times[-1][1], max(dep, times[-1][2]), times[-1][3])
                else:
                    times.append((ids[i], arr, dep, ref))
                    names.append(stop.name)
                prev = (ids[i], dep, dep_ref)
            b.time_cells += cells_here
            for ref, code, reason, raw in quarantined_here:
                self.feed.findings.quarantine_row(fname, None, code, f"{ref}: {reason}", raw)
                b.quarantined_cells += 1
            col_ref = tt.ref(tt.stops[0].arr_row, trip.col)
            if problem is not None:
                self.add("timetable_backwards_trip", ERROR,
                         f"{problem[0]}: times go backwards ({problem[1]}); the trip in {col_ref.rstrip('0123456789')} "
                         f"is quarantined, not reordered", file=fname)
                raw = "; ".join(f"{r}={format_seconds(a)}" for _, a, _, r in times)
                for _, a, _, r in times:
                    self.feed.findings.quarantine_row(fname, None, "timetable_backwards_trip",
                                                      f"{r}: trip {col_ref.rstrip('0123456789')} goes backwards at {problem[0]}", raw)
                b.quarantined_cells += len(times)
                continue
            if len(times) < 2:
                if times:
                    self.add("timetable_trip_too_short", WARNING,
                             f"{col_ref}: trip has only one readable stop time; quarantined", file=fname)
                    for _, a, _, r in times:
                        self.feed.findings.quarantine_row(fname, None, "timetable_trip_too_short", f"{r}: one-stop trip", format_seconds(a))
                    b.quarantined_cells += len(times)
                continue
            if by_header:
                self._route(route_id, sh, rc, names[0], names[-1], short_name=trip.route or None)
            key = route_id + "\0" + svc
            counter[key] += 1
            trip_id = self.cfg.get("trip_id", "{route}_{service}_{n}").format(
                route=route_id, service=svc, n=counter[key], sheet=sh.name, number=trip.number or counter[key])
            b.trips.append(Trip(trip_id, route_id, svc, direction, trip.notes, trip.headsign, col_ref, times))
            b.used_stops.update(s for s, _, _, _ in times)

    # ---- fares ---------------------------------------------------------------------------
    def read_fares(self) -> None:
        fc = self.cfg.get("fares") or {}
        tri = fc.get("triangle")
        if not tri:
            return
        self.say(f"reading fare table {tri['file']}")
        sheets, _ = read_workbook(self.data(tri["file"]), tri["file"])
        rc = self.cfg.get("route", {})
        for sh in sheets:
            t = read_route_table(sh, name_col=column_index(tri["name_column"]),
                                 id_col=column_index(tri["stop_id_column"]) if tri.get("stop_id_column") else None,
                                 first_row=int(tri.get("first_row", 1)) - 1,
                                 first_fare_col=column_index(tri["first_fare_column"]))
            for ref, v in t.bad_cells:
                self.add("timetable_invalid_fare", ERROR, f"{ref}: fare {v!r} is not a number of yen", file=tri["file"])
            route_id = str(rc.get("id", "{sheet}")).format(sheet=sh.name, file="")
            if route_id not in self.built.routes:
                continue
            self.built.fare_tables[route_id] = t

    # ---- output --------------------------------------------------------------------------
    def table(self, name: str, header: list[str], rows: list[list[str]]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        data = buf.getvalue().encode("utf-8")
        self.feed.files[name] = TextFile(name, read_csv_text(data), "utf-8", normalised_sha256(data))

    def write_tables(self) -> None:
        cfg, b = self.cfg, self.built
        ag = cfg["agency"]
        tz = ag.get("timezone", "Asia/Tokyo")
        self.table("agency.txt", ["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang", "agency_phone",
                                  "agency_fare_url", "agency_email"],
                   [[str(ag["id"]), ag["name"], ag["url"], tz, ag.get("lang", "ja"), str(ag.get("phone", "")),
                     ag.get("fare_url", ""), ag.get("email", "")]])
        self.table("agency_jp.txt", ["agency_id", "agency_official_name", "agency_zip_number", "agency_address",
                                     "agency_president_pos", "agency_president_name"],
                   [[str(ag["id"]), ag.get("official_name", ag["name"]), str(ag.get("zip_number", "")), ag.get("address", ""),
                     ag.get("president_pos", ""), ag.get("president_name", "")]])
        if cfg.get("offices"):
            self.table("office_jp.txt", ["office_id", "office_name", "office_url", "office_phone"],
                       [[str(o["id"]), o["name"], o.get("url", ""), str(o.get("phone", ""))] for o in cfg["offices"]])
        # fares first: they decide which stops carry a zone
        fare_rows, fare_prices = self._fare_rows()
        zones_needed = {r[2] for r in fare_rows} | {r[3] for r in fare_rows}
        # stops: the used ones and their stations
        used = set(b.used_stops)
        parents = {self.stops.stops[s].parent for s in used if self.stops.stops[s].parent}
        rows = []
        for sid in sorted(used | {p for p in parents if p in self.stops.stops}):
            s = self.stops.stops[sid]
            zone = s.zone_id or (sid if sid in zones_needed else "")
            loc = "1" if sid in parents and sid not in used else (s.location_type if s.location_type in ("0", "") else "0")
            rows.append([sid, s.code, s.name, s.desc, "" if s.lat is None else f"{s.lat}", "" if s.lon is None else f"{s.lon}",
                         zone if loc != "1" else "", loc, s.parent if s.parent in self.stops.stops else "", s.platform])
            if s.lat is None or s.lon is None:
                self.add("timetable_stop_without_coordinates", ERROR,
                         f"{self.stops.file}: stop '{s.name}' ({sid}) has no coordinates; add them to the stop list",
                         file=self.stops.file, value=sid)
        self.table("stops.txt", ["stop_id", "stop_code", "stop_name", "stop_desc", "stop_lat", "stop_lon", "zone_id",
                                 "location_type", "parent_station", "platform_code"], rows)
        rc = cfg.get("route", {})
        self.table("routes.txt", ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type", "route_color",
                                  "route_text_color"],
                   [[rid, str(ag["id"]), r["short_name"], r["long_name"] or f"{r['origin']}～{r['destination']}",
                     str(rc.get("type", 3)), str(rc.get("color", "")), str(rc.get("text_color", ""))]
                    for rid, r in b.routes.items()])
        start = _date(cfg["calendar"]["start"]).strftime("%Y%m%d")
        self.table("routes_jp.txt", ["route_id", "route_update_date", "origin_stop", "via_stop", "destination_stop"],
                   [[rid, start, r["origin"], "", r["destination"]] for rid, r in b.routes.items()])
        office = str(rc.get("office", ""))
        self.table("trips.txt", ["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "jp_trip_desc",
                                 "jp_office_id"],
                   [[t.route_id, t.service_id, t.trip_id, t.headsign, t.direction, t.notes, office] for t in b.trips])
        st = []
        for t in b.trips:
            for seq, (sid, arr, dep, _ref) in enumerate(t.times, 1):
                st.append([t.trip_id, format_seconds(arr), format_seconds(dep), sid, str(seq)])
        self.table(STOP_TIMES, ["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"], st)
        used_services = {t.service_id for t in b.trips}
        cal, dates = calendar_rows(self.services)
        self.table("calendar.txt", ["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
                                    "start_date", "end_date"], cal)
        self.table("calendar_dates.txt", ["service_id", "date", "exception_type"], dates)
        for s in self.services.services:
            if s.service_id not in used_services:
                self.add("timetable_unused_service", INFO, f"service '{s.service_id}' has no trips", file="calendar.txt")
        if fare_rows:
            fc = cfg.get("fares") or {}
            self.table("fare_attributes.txt", ["fare_id", "price", "currency_type", "payment_method", "transfers", "agency_id"],
                       [[fid, str(int(p) if float(p).is_integer() else p), fc.get("currency", "JPY"), str(fc.get("payment_method", 0)),
                         str(fc.get("transfers", 0)), str(ag["id"])] for fid, p in sorted(fare_prices.items())])
            self.table("fare_rules.txt", ["fare_id", "route_id", "origin_id", "destination_id"], fare_rows)
        feed = cfg.get("feed", {})
        self.table("feed_info.txt", ["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date", "feed_end_date",
                                     "feed_version", "feed_contact_email", "feed_contact_url"],
                   [[feed.get("publisher_name", ag["name"]), feed.get("publisher_url", ag["url"]), feed.get("lang", "ja"),
                     start, _date(cfg["calendar"]["end"]).strftime("%Y%m%d"), str(feed.get("version", "")),
                     str(feed.get("contact_email", "")), str(feed.get("contact_url", ""))]])
        tr = []
        for lang, key in (("ja-Hrkt", "kana"), ("en", "english")):
            if ag.get(key):
                tr.append(["agency", "agency_name", lang, ag[key], "", "", ag["name"]])
        seen = set()
        for row in rows:
            s = self.stops.stops[row[0]]
            for lang, val in (("ja-Hrkt", s.kana), ("en", s.english)):
                if val and (s.name, lang) not in seen:
                    seen.add((s.name, lang))
                    tr.append(["stops", "stop_name", lang, val, "", "", s.name])
        if tr:
            self.table("translations.txt", ["table_name", "field_name", "language", "translation", "record_id", "record_sub_id",
                                            "field_value"], tr)

    def _fare_rows(self) -> tuple[list[list[str]], dict[str, float]]:
        fc = self.cfg.get("fares") or {}
        rows: list[list[str]] = []
        prices: dict[str, float] = {}
        zone = {sid: (s.zone_id or sid) for sid, s in self.stops.stops.items()}
        tmpl = (fc.get("triangle") or {}).get("fare_id", "fare_{price}")
        for route_id, t in sorted(self.built.fare_tables.items()):
            ids = t.stop_ids
            if not any(ids):  # names only: resolve each through the stop list
                ids = [(self.matcher.match(n).stop.stop_id if self.matcher.match(n).stop else "") for n in t.names]
            seen: dict[tuple[str, str], str] = {}
            for (j, i), price in sorted(t.fares.items()):
                o, d = ids[j], ids[i]
                if not o or not d or o not in zone or d not in zone:
                    self.add("timetable_fare_stop_unknown", WARNING,
                             f"sheet {t.sheet}: fare between '{t.names[j]}' and '{t.names[i]}' names a stop not in the stop list; skipped",
                             file=t.file)
                    continue
                fid = fare_id_for(price, tmpl)
                key = (zone[o], zone[d])
                if key in seen:
                    if seen[key] != fid:
                        self.add("timetable_fare_conflict", WARNING,
                                 f"sheet {t.sheet}: two fares ({seen[key]}, {fid}) between zones {key[0]} and {key[1]}; the first is kept",
                                 file=t.file)
                    continue
                seen[key] = fid
                prices[fid] = price
                rows.append([fid, route_id, key[0], key[1]])
        flat = fc.get("flat")
        if flat:
            fid = str(flat.get("fare_id", fare_id_for(flat["price"], "flat_{price}")))
            prices[fid] = flat["price"]
            for rid in self.built.routes:
                if rid not in self.built.fare_tables:
                    rows.append([fid, rid, "", ""])
        return rows, prices


class TimetableAdapter:
    kind = "timetable"

    def read(self, source: Path, *, encoding: str | None = None, progress: Progress | None = None) -> TextFeed:
        """Return the GTFS-JP text tables of the timetable input at ``source`` (zip or folder with noriba-timetable.json).

        If the input or its section cannot be read at all, raise InputError saying where.
        """
        members = _members(Path(source))
        if MANIFEST not in members:
            raise InputError(f"{source}: no {MANIFEST} inside; a timetable input is archived from a spec of kind timetable "
                             "(noriba run <feed id>)")
        try:
            cfg = json.loads(members[MANIFEST]().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{source}!{MANIFEST}: not valid JSON ({exc})") from None
        problems = check_config(cfg, files=set(members) - {MANIFEST})
        if problems:
            raise InputError("; ".join(f"{f}: {m}" for f, m in problems))
        r = _Reader(cfg, members, encoding, progress)
        r.load_stops()
        r.read_workbooks()
        if not r.built.trips:
            r.add("timetable_no_trips", ERROR, "no trip was read from the timetables; check sheets and layout")
        r.read_fares()
        r.write_tables()
        b = r.built
        st = r.feed.files[STOP_TIMES].csv.table.num_rows
        r.add("timetable_read_summary", INFO,
              f"{b.time_cells:,} time cells in {b.sheets_read} sheets: {st:,} stop times in {len(b.trips):,} trips, "
              f"{b.merged_cells:,} merged (a stop on two rows), {b.quarantined_cells:,} quarantined")
        return r.feed
