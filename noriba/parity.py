"""Parity with a peer: compare Noriba's findings with Google FeedValidator's (GTFS-JP extension) on the 2019 corpus.

The peer's output for each corpus feed is ``expected/<feed>/log.txt``. FeedValidator prints its
*schedule-level* problems there (duplicate route names, stops too close, unused stops, fast
travel, service gaps...), wrapped at 78 columns, one problem after the other; its per-row
problems went to an HTML report that the corpus does not hold, and the log only counts them in
its last line ("ERROR: 3 errors and 603 warnings found"). See docs/validation-parity.md.

This module:

* parses every log into :class:`PeerFinding` s of a known :class:`PeerClass` (every line is
  accounted for: header, finding, or count summary; anything else is an unparsed line);
* validates every corpus feed with Noriba (read → canonical tables → rules), resolving each
  notice's file and line to the ids of that row, cached on disk;
* matches the peer's findings to ours per class and reports recall (feed-level and
  count-level) and what we report that the peer does not.

``python -m noriba.parity`` prints the tables; ``--write-doc docs/validation-parity.md``
regenerates the figures section of the parity document.

The second peer is gtfs-guru (MobilityData gtfs-validator v8.0.1's notice codes): ``--guru`` runs both
tools on the corpus, gtfs/world and gtfs/flex at the same date and compares them per (feed, code)
(:func:`run_guru_parity`, :data:`GURU_EXCLUDED`, :data:`GURU_EXPLAINED`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "gtfs" / "jp" / "corpus-2019"

#: The date FeedValidator validated the corpus on, as far as its logs show it (docs/validation-parity.md,
#: "Validation date"; :func:`date_evidence`): the earliest date no feed's first service day is after
#: (no "first date of service is in the future" warning), with three feeds "will soon expire" and the
#: others not.
VALIDATION_DATE = date(2019, 5, 1)  # inside 2019-04-29..05-18, the only dates that reproduce every service gap the peer printed

#: Notices kept per code when we validate; large enough that no finding of a matched code is cut.
SAMPLE_LIMIT = 10_000_000

#: Bump when what is cached per feed changes shape.
CACHE_FORMAT = 3


# --------------------------------------------------------------------------------------------
# The peer's problem classes
# --------------------------------------------------------------------------------------------


def _wrapped(pattern: str) -> re.Pattern:
    """Return ``pattern`` compiled so that each space also matches a line break (FeedValidator wraps at spaces)."""
    return re.compile(pattern.replace(" ", "[ \\n]"), re.S)


#: A stop or station name as FeedValidator prints it unquoted: any text, but never across an "(ID ".
#: A name that starts a message is on that message's first line (a name of 78 characters or more
#: does not occur), so an unknown line before it is never swallowed; a later name may be wrapped.
_NAME_FIRST = r"(?:(?!\(ID )[^\n]){1,200}?".replace(" ", "_SP_")  # _SP_: protected from _wrapped()
_NAME = r"(?:(?!\(ID )[^\n]){1,200}?(?:\n(?:(?!\(ID )[^\n]){0,200}?){0,2}?".replace(" ", "_SP_")


def _rx(pattern: str) -> re.Pattern:
    return re.compile(_wrapped(pattern).pattern.replace("_SP_", " "), re.S)


@dataclass(frozen=True)
class PeerClass:
    """One kind of problem FeedValidator prints to its log, and what it corresponds to in Noriba.

    ``match`` says when one of our notices reports the same thing (see :func:`_matches`):
    'pair' (one notice names both ids), 'group' (each id named by some notice), 'one' (names the
    first id), 'all' (one notice names every id), 'trip_stops' (names the trip and one of the two
    stop names), 'dates' (a date of the notice lies in the peer's range), 'feed' (any notice of
    the codes in the same feed).
    """

    key: str
    label: str
    peer_type: str  # FeedValidator's problem type (transitfeed.problems class)
    peer_severity: str
    regex: re.Pattern
    codes: tuple[str, ...]  # our notice codes that report the same problem
    match: str
    ids: tuple[str, ...] = ()  # regex groups holding the entity ids, in order
    names: tuple[str, ...] = ()  # regex groups holding stop names
    dates: tuple[str, ...] = ()  # regex groups holding dates (YYYY-MM-DD)
    split: str | None = None  # regex group holding a comma separated list: one finding per item
    checks: str = ""  # what the peer checks, from its source, for the doc


PEER_CLASSES: tuple[PeerClass, ...] = (
    PeerClass(
        key="duplicate_route_name",
        label="The same route_short_name + route_long_name on two routes",
        peer_type="InvalidValue(route_long_name), Schedule.ValidateRouteNames",
        peer_severity="WARNING",
        regex=_rx(r"(?: ?column route_long_name )?Invalid value (?P<value>.*?) in field route_long_name "
                  r"The same combination of route_short_name and route_long_name shouldn't be used for more than one "
                  r"route, as it is for the for the two routes with IDs \"(?P<route_a>[^\"]*)\" and \"(?P<route_b>[^\"]*)\"\."),
        codes=("duplicate_route_name",),
        match="group",
        ids=("route_a", "route_b"),
        checks="any two routes whose (route_short_name, route_long_name), lower-cased and stripped, are equal; "
               "agency and route_type are not compared; one finding per route after the first of its name",
    ),
    PeerClass(
        key="stops_too_close",
        label="Two stops (location_type 0) less than 2 m apart",
        peer_type="StopsTooClose, Schedule.ValidateNearbyStops",
        peer_severity="WARNING",
        regex=_rx(r"The stops \"(?P<name_a>[^\"]*)\" \(ID (?P<stop_a>[^)]*)\) and \"(?P<name_b>[^\"]*)\" \(ID (?P<stop_b>[^)]*)\) "
                  r"are (?P<dist>[\d.]+)m apart and probably represent the same location\."),
        codes=("stops_too_close",),
        match="pair",
        ids=("stop_a", "stop_b"),
        checks="every pair of stops with location_type 0 less than 2 m apart (equirectangular approximation)",
    ),
    PeerClass(
        key="stations_too_close",
        label="Two stations (location_type 1) less than 2 m apart",
        peer_type="StationsTooClose, Schedule.ValidateNearbyStops",
        peer_severity="WARNING",
        regex=_rx(r"The stations \"(?P<name_a>[^\"]*)\" \(ID (?P<stop_a>[^)]*)\) and \"(?P<name_b>[^\"]*)\" \(ID (?P<stop_b>[^)]*)\) "
                  r"are (?P<dist>[\d.]+)m apart and probably represent the same location\."),
        codes=("stops_too_close",),
        match="pair",
        ids=("stop_a", "stop_b"),
        checks="every pair of stations (location_type 1) less than 2 m apart",
    ),
    PeerClass(
        key="different_station_too_close",
        label="A stop less than 2 m from a station that is not its parent",
        peer_type="DifferentStationTooClose, Schedule.ValidateNearbyStops",
        peer_severity="WARNING",
        regex=_rx(r"The parent_station of stop \"(?P<name_a>[^\"]*)\" \(ID (?P<stop_a>[^)]*)\) is not station "
                  r"\"(?P<name_b>[^\"]*)\" \(ID (?P<stop_b>[^)]*)\) but they are only (?P<dist>[\d.]+)m apart\."),
        codes=("stops_too_close",),
        match="pair",
        ids=("stop_a", "stop_b"),
        checks="a stop and a station less than 2 m apart where the station is not the stop's parent_station",
    ),
    PeerClass(
        key="stop_too_far_from_parent_station",
        label="A stop more than 100 m from its parent station",
        peer_type="StopTooFarFromParentStation, Schedule.ValidateStops",
        peer_severity="WARNING",
        regex=_rx(rf"(?P<name_a>{_NAME_FIRST}) \(ID (?P<stop_a>[^)]*)\) is too far from its parent station "
                  rf"(?P<name_b>{_NAME}) \(ID (?P<stop_b>[^)]*)\) : (?P<dist>[\d.]+) meters\."),
        codes=("stop_too_far_from_parent_station",),
        match="one",
        ids=("stop_a", "stop_b"),
        checks="a stop whose parent_station is more than 100 m away (warning; more than 1000 m is an error)",
    ),
    PeerClass(
        key="too_fast_travel",
        label="Travel between consecutive stops faster than the route type allows",
        peer_type="TooFastTravel, Trip.ValidateStopTimesSequenceHasIncreasingTimeAndDistance",
        peer_severity="WARNING",
        regex=_rx(r"High speed travel detected in trip (?P<trip>[^\s:]+(?::[^\s:]+)*?): (?P<from_name>.+?) to (?P<to_name>.+?)\. "
                  r"(?P<dist>\d+) meters in (?P<secs>\d+) seconds\.(?: \((?P<kmh>\d+) km/h\)\.)?"),
        codes=("fast_travel_between_consecutive_stops", "fast_travel_between_far_stops", "too_fast_travel"),
        match="trip_stops",
        ids=("trip",),
        names=("from_name", "to_name"),
        checks="between consecutive timed stops, speed above the route type's maximum (bus 100 km/h, ferry 80, "
               "rail 300); a 0 s hop only if the departure is not on a whole minute or the distance exceeds one minute at that speed",
    ),
    PeerClass(
        key="unused_stop",
        label="A stop (location_type 0) no trip uses",
        peer_type="UnusedStop, Schedule.ValidateStops",
        peer_severity="WARNING",
        regex=_rx(rf"(?P<name_a>{_NAME_FIRST}) \(ID (?P<stop_a>[^)]*)\) isn't used in any trips"),
        codes=("stop_without_stop_time",),
        match="one",
        ids=("stop_a",),
        checks="a stop with location_type 0 that no stop_times row refers to",
    ),
    PeerClass(
        key="same_time_stop_times",
        label="More than 5 consecutive stop times with the same time",
        peer_type="TooManyConsecutiveStopTimesWithSameTime, Loader",
        peer_severity="WARNING",
        regex=_rx(r"Trip (?P<trip>\S+) has (?P<n>\d+) consecutive stop times all with the same arrival/departure time: "
                  r"(?P<time>\d+:\d\d:\d\d)\."),
        codes=("too_many_consecutive_stop_times_with_same_time",),
        match="one",
        ids=("trip",),
        checks="a run of more than 5 consecutive stop_times of a trip whose arrival equals departure equals the previous departure",
    ),
    PeerClass(
        key="service_gap",
        label="13 or more consecutive days without any scheduled service",
        peer_type="TooManyDaysWithoutService, Schedule.ValidateServiceGaps",
        peer_severity="WARNING",
        regex=_rx(r"There are (?P<n>\d+) consecutive days, from (?P<date_from>\d{4}-\d\d-\d\d) to (?P<date_to>\d{4}-\d\d-\d\d), "
                  r"without any scheduled service\. Please ensure this is intentional\."),
        codes=("consecutive_days_without_service",),
        match="dates",
        dates=("date_from", "date_to"),
        checks="runs of at least 13 days with no trip, searched from max(first service day, validation date - 12) "
               "to min(last service day, validation date + 1 year)",
    ),
    PeerClass(
        key="no_service_exceptions",
        label="A year-long weekly calendar with no single-day exception",
        peer_type="NoServiceExceptions, Schedule.ValidateServiceExceptions",
        peer_severity="WARNING",
        regex=_rx(r"All services are defined on a weekly basis from (?P<date_from>\d{4}-\d\d-\d\d) to (?P<date_to>\d{4}-\d\d-\d\d) "
                  r"with no single day variations\. If there are exceptions such as holiday service dates please ensure "
                  r"they are listed in calendar_dates\.txt"),
        codes=("missing_service_exceptions",),
        match="feed",
        dates=("date_from", "date_to"),
        checks="service spans at least 182 days and no service_id has a calendar_dates exception",
    ),
    PeerClass(
        key="expiration_date",
        label="The feed expires within 60 days of the validation date",
        peer_type="ExpirationDate, Schedule.ValidateFeedStartAndExpirationDates",
        peer_severity="WARNING",
        regex=_rx(r"This feed (?P<how>will soon expire, on|expired on) (?P<date>[A-Z][a-z]+ \d\d, \d{4})(?: \((?P<origin>[^)]*)\))?"),
        codes=("feed_expiration_date60_days", "feed_expiration_date30_days", "feed_expiration_date7_days"),
        match="feed",
        checks="the last service day (feed_end_date of feed_info.txt when given) is less than 60 days after the validation date",
    ),
    PeerClass(
        key="single_stop_trip",
        label="A trip with only one stop time",
        peer_type="OtherProblem, Schedule.ValidateTripStopTimes",
        peer_severity="WARNING",
        regex=_rx(r"The trip with the trip_id \"(?P<trip>[^\"]*)\" only has one stop on it; it should have at least one more "
                  r"stop so that the riders can leave!"),
        codes=("unusable_trip",),
        match="one",
        ids=("trip",),
        checks="a trip with exactly one stop_times row",
    ),
    PeerClass(
        key="unused_shape",
        label="A shape no trip uses",
        peer_type="OtherProblem, Schedule.ValidateUnusedShapes",
        peer_severity="WARNING",
        regex=_rx(r"The shapes with the following shape_ids aren't used by any trips: (?P<shapes>(?:[^\s,]+, )*[^\s,]+)"),
        codes=("unused_shape",),
        match="one",
        ids=("shape",),
        split="shapes",
        checks="shape_ids of shapes.txt that no trip refers to (one message lists them all; counted here one finding per shape)",
    ),
    PeerClass(
        key="non_increasing_shape_dist",
        label="stop_times.shape_dist_traveled not increasing along a trip",
        peer_type="InvalidValue(stoptimes.shape_dist_traveled), Trip.ValidateStopTimesSequenceHasIncreasingTimeAndDistance",
        peer_severity="WARNING (equal) / ERROR (smaller)",
        regex=_rx(r"(?: ?column stoptimes\.shape_dist_traveled )?Invalid value (?P<value>\S+) in field stoptimes\.shape_dist_traveled "
                  r"For the trip (?P<trip>\S+) the stop (?P<stop>\S+) has shape_dist_traveled=(?P<dist>\S+), which should be "
                  r"larger than the previous ones\. In this case, the previous distance was (?P<prev>\S+)\."),
        codes=("decreasing_or_equal_stop_time_distance",),
        match="all",
        ids=("trip", "stop"),
        checks="a stop time whose shape_dist_traveled is not greater than the previous one of its trip",
    ),
)

CLASSES = {c.key: c for c in PEER_CLASSES}

#: Classes left out of the recall criterion, each with the reason (docs/validation-parity.md quotes the
#: specification that shows the peer is wrong). Empty: no class is excluded.
EXCLUDED: dict[str, str] = {}

#: Why we report a code the peer's log has no class for. The default reason is DEFAULT_UNMAPPED_REASON.
UNMAPPED_REASONS: dict[str, str] = {
    "unknown_column": "FeedValidator reports unknown columns per file in its HTML report only (UnrecognizedColumn); "
                      "for GTFS-JP it knows the JP columns, so most of ours are columns of neither standard",
    "unknown_file": "FeedValidator reports unknown files in its HTML report only (UnknownFile)",
    "mixed_bom": "Noriba-only information: FeedValidator reads each file with or without a BOM and says nothing",
    "missing_recommended_file": "MobilityData recommends feed_info.txt (GTFS-JP requires agency_jp.txt); FeedValidator "
                                "has no such check",
    "missing_recommended_field": "MobilityData recommendation (e.g. feed_contact_email); FeedValidator has no such check",
    "leading_or_trailing_whitespaces": "FeedValidator strips values silently",
    "invalid_url": "FeedValidator checks URLs row by row; those problems are in its HTML report, not the log",
    "foreign_key_violation": "FeedValidator reports unknown references row by row (InvalidValue) in its HTML report only",
    "duplicate_key": "FeedValidator reports duplicate ids row by row (DuplicateID) in its HTML report only",
    "missing_required_field": "FeedValidator reports empty required values row by row (MissingValue) in its HTML report only",
    "route_short_name_too_long": "FeedValidator's own check (more than 6 characters) is row-level, HTML report only",
    "route_long_name_contains_short_name": "FeedValidator's own check is row-level, HTML report only",
    "route_color_contrast": "FeedValidator's own check (InvalidValue route_color) is row-level, HTML report only",
    "same_name_and_description_for_route": "FeedValidator's own check (route_desc) is row-level, HTML report only",
}
DEFAULT_UNMAPPED_REASON = ("no class of the peer's log: FeedValidator either has no such check or reports it per row, "
                           "in the HTML report the corpus does not hold (the log only counts those)")


# --------------------------------------------------------------------------------------------
# Parsing the peer's logs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerFinding:
    feed: str  # the corpus folder name, e.g. 'gtfs.1024.tatebayashishi_com'
    cls: str  # PeerClass.key
    line: int  # first line of the message in log.txt (1-based)
    text: str  # the message, line breaks joined with spaces
    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()


@dataclass
class PeerLog:
    feed: str
    zip_name: str = ""
    extension: str = ""
    html_errors: int = 0  # counted in the last line, itemised only in the HTML report
    html_warnings: int = 0
    ok: bool = False  # 'feed validated successfully'
    findings: list[PeerFinding] = field(default_factory=list)
    unparsed: list[tuple[int, str]] = field(default_factory=list)
    lines: int = 0
    lines_accounted: int = 0


_HEADER = re.compile(r"validating inputs/(?P<zip>.+)")
_EXTENSION = re.compile(r"FeedValidator extension used: (?P<ext>.+)")
_SUMMARY = re.compile(r"ERROR: (?:(?P<e>\d+) errors?)?(?: and )?(?:(?P<w>\d+) warnings?)? found")
_OK = "feed validated successfully"


def _flat(s: str) -> str:
    return s.replace("\n", " ")


def parse_log(text: str, feed: str) -> PeerLog:
    """Return the findings of one FeedValidator log. Lines that are no known message are kept in ``unparsed``."""
    out = PeerLog(feed=feed)
    lines = text.splitlines()
    out.lines = len(lines)
    body_start, body_end = 0, len(lines)
    if lines and (m := _HEADER.fullmatch(lines[0])):
        out.zip_name = m["zip"]
        body_start = 1
        if len(lines) > 1 and (m := _EXTENSION.fullmatch(lines[1])):
            out.extension = m["ext"]
            body_start = 2
    if body_end > body_start:
        last = lines[-1]
        if last == _OK:
            out.ok, body_end = True, body_end - 1
        elif (m := _SUMMARY.fullmatch(last)) and (m["e"] or m["w"]):
            out.html_errors, out.html_warnings = int(m["e"] or 0), int(m["w"] or 0)
            body_end -= 1
    out.lines_accounted = body_start + (len(lines) - body_end)
    body = lines[body_start:body_end]
    joined = "\n".join(body)
    starts = []
    pos = 0
    for ln in body:
        starts.append(pos)
        pos += len(ln) + 1
    i = 0
    while i < len(body):
        at = starts[i]
        found = None  # the shortest complete message starting on this line: a name pattern may span lines
        for cls in PEER_CLASSES:
            m = cls.regex.match(joined, at)
            if m and (m.end() == len(joined) or joined[m.end()] == "\n") and (found is None or m.end() < found[1].end()):
                found = (cls, m)
        if not found:
            out.unparsed.append((body_start + i + 1, body[i]))
            out.lines_accounted += 1
            i += 1
            continue
        cls, m = found
        n_lines = joined.count("\n", at, m.end()) + 1
        line_no = body_start + i + 1
        message = _flat(m.group(0))
        names = tuple(_flat(m[g]).strip() for g in cls.names)
        dates = tuple(m[g] for g in cls.dates)
        if cls.split:
            for item in re.split(r",\s+", m[cls.split].strip()):
                out.findings.append(PeerFinding(feed, cls.key, line_no, message, ids=(item,), names=names, dates=dates))
        else:
            out.findings.append(PeerFinding(feed, cls.key, line_no, message, ids=tuple(_flat(m[g]) for g in cls.ids),
                                            names=names, dates=dates))
        out.lines_accounted += n_lines
        i += n_lines
    return out


def corpus_feeds(corpus: Path = CORPUS) -> list[tuple[str, Path, Path]]:
    """Return (feed folder name, zip path, log path) of every corpus feed, from INDEX.csv and expected/summary.csv."""
    import csv

    with open(corpus / "expected" / "summary.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        out.append((r["output_dir"], corpus / "feeds" / r["feed_zip"], corpus / "expected" / r["output_dir"] / "log.txt"))
    return out


def parse_corpus(corpus: Path = CORPUS) -> dict[str, PeerLog]:
    """Return {feed: parsed log} for every corpus feed."""
    return {feed: parse_log(log.read_text(encoding="utf-8"), feed) for feed, _zip, log in corpus_feeds(corpus)}


def feed_date_range(zip_path: Path) -> tuple[date | None, date | None]:
    """Return the first and last service day as FeedValidator takes them: feed_info's dates when given, else calendars."""
    import csv
    import io
    import zipfile

    def rows(zf, name):
        for n in zf.namelist():
            if n.rsplit("/", 1)[-1] == name:
                return list(csv.DictReader(io.StringIO(zf.read(n).decode("utf-8-sig", "replace"))))
        return []

    def day(s):
        s = (s or "").strip()
        return date(int(s[:4]), int(s[4:6]), int(s[6:8])) if len(s) == 8 and s.isdigit() else None

    with zipfile.ZipFile(zip_path) as zf:
        info = rows(zf, "feed_info.txt")
        cal, dates = rows(zf, "calendar.txt"), rows(zf, "calendar_dates.txt")
    starts = [d for d in [day(r.get("start_date")) for r in cal] + [day(r.get("date")) for r in dates] if d]
    ends = [d for d in [day(r.get("end_date")) for r in cal] + [day(r.get("date")) for r in dates] if d]
    first, last = (min(starts) if starts else None), (max(ends) if ends else None)
    if info:
        first = day(info[0].get("feed_start_date")) or first
        last = day(info[0].get("feed_end_date")) or last
    return first, last


def date_evidence(corpus: Path = CORPUS, logs: dict[str, PeerLog] | None = None) -> tuple[date, date, list[str]]:
    """Return the earliest and latest validation date consistent with the peer's logs, and why.

    FeedValidator warns "This feed will soon expire" when the last service day is less than 60 days
    after the validation date, and "The first date of service is in the future" when the first
    service day is after it (transitfeed Schedule.ValidateFeedStartAndExpirationDates).
    """
    from datetime import timedelta

    logs = logs or parse_corpus(corpus)
    lo, hi = date.min, date.max
    why_lo, why_hi = "", ""
    for feed, zip_path, _log in corpus_feeds(corpus):
        first, last = feed_date_range(zip_path)
        warned = any(f.cls == "expiration_date" for f in logs[feed].findings)
        if first and first > lo:
            lo, why_lo = first, f"{feed} starts on {first} and the peer does not say it starts in the future"
        if last and warned and last - timedelta(days=59) > lo:
            lo, why_lo = last - timedelta(days=59), f"{feed} ends on {last} and the peer says it will soon expire"
        if last and not warned and last - timedelta(days=60) < hi:
            hi, why_hi = last - timedelta(days=60), f"{feed} ends on {last} and the peer does not say it will soon expire"
    return lo, hi, [why_lo, why_hi]


# --------------------------------------------------------------------------------------------
# Our side: validate a corpus feed, resolve each notice to the ids of its row
# --------------------------------------------------------------------------------------------

#: Columns whose values name the entity of a row (ids and the names FeedValidator prints).
_ENTITY_COLUMNS = ("stop_id", "stop_name", "parent_station", "route_id", "route_short_name", "route_long_name",
                   "trip_id", "service_id", "shape_id", "agency_id", "block_id", "from_stop_id", "to_stop_id",
                   "fare_id", "zone_id", "office_id", "jp_parent_route_id")


@dataclass
class OurNotice:
    code: str
    severity: str
    file: str | None
    line: int | None
    field: str | None
    value: str | None
    message: str
    ids: tuple[str, ...] = ()  # entity values of the row at file:line (stop_times rows add the stop's name)

    def text(self) -> str:
        return f"{self.value or ''}\n{self.message or ''}"


@dataclass
class OurResult:
    feed: str
    notices: list[OurNotice]
    counts: dict[str, int]  # code -> total findings (samples may be fewer only past SAMPLE_LIMIT)
    seconds: float
    validation_date: str
    error: str | None = None  # the feed could not be read at all


def _code_digest() -> str:
    """Return a digest of the code that decides our findings (transforms/, the schema, this module)."""
    h = hashlib.sha256(f"{CACHE_FORMAT}:{SAMPLE_LIMIT}".encode())
    files = sorted((ROOT / "transforms").rglob("*.py")) + sorted((ROOT / "specs" / "schemas").glob("*.yml"))
    for p in files:
        h.update(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def cache_dir() -> Path:
    """Return the folder of cached results: $NORIBA_PARITY_CACHE, else <tmp>/noriba-parity."""
    return Path(os.environ.get("NORIBA_PARITY_CACHE") or Path(tempfile.gettempdir()) / "noriba-parity")


def validate_ours(zip_path: Path, feed: str, *, validation_date: date = VALIDATION_DATE) -> OurResult:
    """Return Noriba's findings on one feed, as the pipeline makes them (read → canonical → rules), with row ids."""
    import duckdb

    from transforms.adapters import InputError
    from transforms.canonical import canonicalize
    from transforms.gtfs import GtfsAdapter
    from transforms.rules.engine import run_rules
    from transforms.schema import load_schema

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="noriba-parity-"))
    try:
        try:
            text_feed = GtfsAdapter().read(zip_path)
        except InputError as exc:
            return OurResult(feed, [], {}, time.perf_counter() - t0, validation_date.isoformat(), error=str(exc))
        schema = load_schema()
        tables = work / "gtfs"
        con = duckdb.connect()
        profile = "gtfs-jp" if any(n.endswith("_jp.txt") for n in text_feed.files) else "gtfs"
        canonicalize(text_feed, schema=schema, out_dir=tables, profile=profile, con=con)
        ruled = run_rules(tables, validation_date=validation_date, profile=profile, con=con, sample_limit=SAMPLE_LIMIT)
        text_feed.findings.add_table(ruled.notices, ruled.counts)
        rows = text_feed.findings.notices_table().to_pylist()
        ids = _resolve_rows(con, schema, tables, rows)
        notices = [OurNotice(r["code"], r["severity"], r["file"], r["line"], r["field"], r["value"], r["message"] or "",
                             ids.get((r["file"], r["line"]), ())) for r in rows]
        counts: Counter = Counter()
        for (code, _sev), n in text_feed.findings.counts.items():
            counts[code] += n
        con.close()
        return OurResult(feed, notices, dict(counts), time.perf_counter() - t0, validation_date.isoformat())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _resolve_rows(con, schema, tables: Path, rows: list[dict]) -> dict[tuple[str, int], tuple[str, ...]]:
    """Return {(file, line): entity values of that row} for every notice that names a file and line."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        if r["file"] and r["line"] is not None:
            wanted[r["file"]].add(int(r["line"]))
    out: dict[tuple[str, int], tuple[str, ...]] = {}
    stops = tables / "stops.parquet"
    for file, lines in wanted.items():
        table = schema.by_file(file)
        path = tables / f"{table.name}.parquet" if table else None
        if path is None or not path.exists():
            continue
        cols = [c for c in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning=false)").fetchall()]
        names = [c[0] for c in cols if c[0] in _ENTITY_COLUMNS]
        if not names:
            continue
        select = ", ".join(f't."{c}"::VARCHAR' for c in names)
        join = ""
        if table.name == "stop_times" and stops.exists():
            select += ", s.stop_name::VARCHAR"
            join = f"LEFT JOIN read_parquet('{stops}', hive_partitioning=false) s ON s.stop_id = t.stop_id"
        con.execute("CREATE OR REPLACE TEMP TABLE _want(line BIGINT)")
        con.executemany("INSERT INTO _want VALUES (?)", [(x,) for x in sorted(lines)])
        got = con.sql(f"SELECT t._line, {select} FROM read_parquet('{path}', hive_partitioning=false) t {join} "
                      f"WHERE t._line IN (SELECT line FROM _want)").fetchall()
        for line, *vals in got:
            out[(file, int(line))] = tuple(v for v in vals if v not in (None, ""))
    return out


def _result_to_json(r: OurResult) -> dict:
    return {"feed": r.feed, "counts": r.counts, "seconds": r.seconds, "validation_date": r.validation_date,
            "error": r.error,
            "notices": [[n.code, n.severity, n.file, n.line, n.field, n.value, n.message, list(n.ids)] for n in r.notices]}


def _result_from_json(d: dict) -> OurResult:
    notices = [OurNotice(c, s, f, ln, fl, v, m, tuple(ids)) for c, s, f, ln, fl, v, m, ids in d["notices"]]
    return OurResult(d["feed"], notices, d["counts"], d["seconds"], d["validation_date"], d.get("error"))


def _input_digest(path: Path) -> str:
    """Return a short digest of a feed: the zip's bytes, or every file's name and bytes in a folder feed."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(x for x in path.rglob("*") if x.is_file()):
            h.update(p.relative_to(path).as_posix().encode() + b"\0" + p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def ours_cached(zip_path: Path, feed: str, *, validation_date: date = VALIDATION_DATE, digest: str | None = None,
                refresh: bool = False) -> tuple[OurResult, bool]:
    """Return (our result for the feed, whether it came from the cache). The cache key covers the zip, the date and the code."""
    digest = digest or _code_digest()
    zsha = _input_digest(zip_path)
    path = cache_dir() / digest[:16] / f"{zsha}-{validation_date.isoformat()}.json"
    if path.exists() and not refresh:
        return _result_from_json(json.loads(path.read_text(encoding="utf-8"))), True
    res = validate_ours(zip_path, feed, validation_date=validation_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(_result_to_json(res), ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return res, False


def validate_corpus(corpus: Path = CORPUS, *, validation_date: date = VALIDATION_DATE, refresh: bool = False,
                    progress=None, jobs: int | None = None) -> dict[str, OurResult]:
    """Return {feed: our result} for every corpus feed, from the cache where the code and inputs are unchanged.

    Feeds not cached are validated in ``jobs`` processes (default: up to 2).
    """
    from concurrent.futures import ProcessPoolExecutor

    from noriba.forking import pool_context

    digest = _code_digest()
    feeds = corpus_feeds(corpus)
    jobs = jobs or min(2, os.cpu_count() or 1)
    out: dict[str, OurResult] = {}
    args = [(zip_path, feed) for feed, zip_path, _log in feeds]
    if jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=pool_context()) as pool:
            futures = [pool.submit(ours_cached, z, f, validation_date=validation_date, digest=digest, refresh=refresh)
                       for z, f in args]
            done = [fu.result() for fu in futures]
    else:
        done = [ours_cached(z, f, validation_date=validation_date, digest=digest, refresh=refresh) for z, f in args]
    for i, ((_z, feed), (res, cached)) in enumerate(zip(args, done), 1):
        out[feed] = res
        if progress and not cached:
            progress(f"[{i}/{len(feeds)}] {feed}: {sum(res.counts.values()):,} findings in {res.seconds:.1f} s")
    return out


# --------------------------------------------------------------------------------------------
# Matching and recall
# --------------------------------------------------------------------------------------------

_SPLIT = re.compile(r"[\s\"'()（）「」『』\[\]{},;、。=]+")
_QUOTED = re.compile(r"\"([^\"]*)\"|「([^」]*)」|'([^']*)'")
_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d\d)-?(\d\d)(?!\d)")


def _norm(s: str) -> str:
    """Return a name without any white space (FeedValidator's line wrapping and full-width spaces vary)."""
    return re.sub(r"\s+", "", s or "")


def notice_keys(n: OurNotice) -> set[str]:
    """Return every id or name one of our notices names: its row's entity values, and the tokens and quoted parts of its text."""
    keys = set(n.ids) | {_norm(i) for i in n.ids}
    text = n.text()
    for tok in _SPLIT.split(text):
        tok = tok.rstrip(".:")
        if tok:
            keys.add(tok)
            if ":" in tok:  # 'trip:T1' style
                keys.update(p for p in tok.split(":") if p)
    for groups in _QUOTED.findall(text):
        for g in groups:
            if g:
                keys.add(g)
                keys.add(_norm(g))
    return keys


def notice_dates(n: OurNotice) -> list[date]:
    out = []
    for y, m, d in _DATE.findall(n.text()):
        try:
            out.append(date(int(y), int(m), int(d)))
        except ValueError:
            continue
    return out


def _finding_keys(f: PeerFinding) -> set[str]:
    return set(f.ids) | {_norm(x) for x in f.names}


def matches(cls: PeerClass, f: PeerFinding, n: OurNotice, keys: set[str]) -> bool:
    """Return whether our notice ``n`` (with ``keys`` = notice_keys(n)) reports the peer's finding ``f``.

    The code must be one of the class's codes; then, by the class's ``match``: 'one' names the first
    id; 'pair' and 'all' name every id; 'group' names either id (the finding is matched when each of
    its ids is named by some notice, see :func:`finding_matched`); 'trip_stops' names the trip and
    one of the two stop names; 'dates' has a date inside the peer's range, or a range overlapping
    it; 'feed' is any notice in the same feed.
    """
    if n.code not in cls.codes:
        return False
    if cls.match == "one":
        return f.ids[0] in keys
    if cls.match in ("pair", "all"):
        return all(x in keys for x in f.ids)
    if cls.match == "group":
        return any(x in keys for x in f.ids)
    if cls.match == "trip_stops":
        return f.ids[0] in keys and any(_norm(x) in keys or x in keys for x in f.names)
    if cls.match == "dates":
        lo, hi = date.fromisoformat(f.dates[0]), date.fromisoformat(f.dates[1])
        ds = notice_dates(n)
        if not ds:
            return False
        if any(lo <= d <= hi for d in ds):
            return True
        return len(ds) >= 2 and min(ds) <= hi and max(ds) >= lo
    if cls.match == "feed":
        return True
    raise ValueError(f"unknown match mode {cls.match}")


def finding_matched(cls: PeerClass, f: PeerFinding, notices: list[tuple[OurNotice, set[str]]]) -> bool:
    """Return whether any of our notices (of the same feed) reports the peer's finding ``f``."""
    if cls.match == "group":
        return all(any(x in keys for n, keys in notices if n.code in cls.codes) for x in f.ids)
    return any(matches(cls, f, n, keys) for n, keys in notices)


@dataclass
class ClassRecall:
    key: str
    peer_feeds: int = 0
    matched_feeds: int = 0
    peer_findings: int = 0
    matched_findings: int = 0
    missed: list[PeerFinding] = field(default_factory=list)
    missed_feeds: list[str] = field(default_factory=list)

    @property
    def feed_recall(self) -> float:
        return self.matched_feeds / self.peer_feeds if self.peer_feeds else 1.0

    @property
    def count_recall(self) -> float:
        return self.matched_findings / self.peer_findings if self.peer_findings else 1.0


@dataclass
class CodeExtra:
    code: str
    classes: tuple[str, ...]
    ours: int = 0  # our findings of this code on the corpus
    matched: int = 0  # of them, reporting one of the peer's findings
    feeds: int = 0  # feeds where we report the code
    feeds_without_peer: int = 0  # ... where the peer reports none of its classes
    examples: list[tuple[str, OurNotice]] = field(default_factory=list)

    @property
    def extra(self) -> int:
        return self.ours - self.matched


@dataclass
class Comparison:
    validation_date: str
    feeds: int
    recalls: dict[str, ClassRecall]
    extras: dict[str, CodeExtra]  # codes mapped to a peer class
    unmapped: dict[str, tuple[int, int, str]]  # code -> (findings, feeds, severity)
    registered: set[str]
    peer_html: tuple[int, int, int, int]  # feeds with HTML-only errors, with warnings; totals of each
    ours_severity: dict[str, tuple[int, int]]  # severity -> (findings, feeds)
    unreadable: dict[str, str]
    seconds: float  # our validation time summed over the feeds (as measured when each result was made)
    unparsed: int

    def failing(self) -> list[str]:
        """Return the classes under 95% recall (feed-level or count-level) that are not excluded."""
        return [k for k, r in self.recalls.items()
                if k not in EXCLUDED and (r.feed_recall < 0.95 or r.count_recall < 0.95)]


def _registered_codes() -> set[str]:
    from transforms.rules.registry import rule_codes

    return set(rule_codes())


def compare(logs: dict[str, PeerLog], ours: dict[str, OurResult]) -> Comparison:
    """Return per class recall of the peer's findings, and what we report beyond them."""
    recalls = {c.key: ClassRecall(c.key) for c in PEER_CLASSES}
    mapped: dict[str, list[str]] = defaultdict(list)
    for c in PEER_CLASSES:
        for code in c.codes:
            mapped[code].append(c.key)
    extras = {code: CodeExtra(code, tuple(keys)) for code, keys in mapped.items()}
    unmapped_n: Counter = Counter()
    unmapped_feeds: Counter = Counter()
    unmapped_sev: dict[str, str] = {}
    sev_n: Counter = Counter()
    sev_feeds: Counter = Counter()
    unreadable = {}
    for feed, log in logs.items():
        res = ours.get(feed)
        if res is None:
            continue
        if res.error:
            unreadable[feed] = res.error
        keyed = [(n, notice_keys(n)) for n in res.notices if n.code in mapped]
        by_class: dict[str, list[PeerFinding]] = defaultdict(list)
        for f in log.findings:
            by_class[f.cls].append(f)
        codes_here = {n.code for n in res.notices} | set(res.counts)
        for key, found in by_class.items():
            cls = CLASSES[key]
            r = recalls[key]
            r.peer_feeds += 1
            if codes_here & set(cls.codes):
                r.matched_feeds += 1
            else:
                r.missed_feeds.append(feed)
            cand = [(n, k) for n, k in keyed if n.code in cls.codes]
            index: dict[str, list[int]] = defaultdict(list)
            for i, (_n, k) in enumerate(cand):
                for x in k:
                    index[x].append(i)
            for f in found:
                r.peer_findings += 1
                if cls.match in ("dates", "feed"):
                    pool = cand
                else:
                    idx = sorted({i for x in _finding_keys(f) for i in index.get(x, ())})
                    pool = [cand[i] for i in idx]
                if finding_matched(cls, f, pool):
                    r.matched_findings += 1
                else:
                    r.missed.append(f)
        # our side: each notice of a mapped code is matched when it reports some peer finding of its classes
        peer_keys: dict[str, list[PeerFinding]] = defaultdict(list)
        for f in log.findings:
            for x in _finding_keys(f):
                peer_keys[x].append(f)
        seen_codes = set()
        for n, k in keyed:
            e = extras[n.code]
            e.ours += 1
            seen_codes.add(n.code)
            classes = [CLASSES[c] for c in e.classes]
            if any(cls.match in ("dates", "feed") for cls in classes):
                pool = [f for f in log.findings if f.cls in e.classes]
            else:
                pool = list({id(f): f for x in k for f in peer_keys.get(x, ())}.values())
            if any(matches(CLASSES[f.cls], f, n, k) for f in pool if f.cls in e.classes):
                e.matched += 1
            elif len(e.examples) < 6:
                e.examples.append((feed, n))
        for code in seen_codes:
            extras[code].feeds += 1
            if not any(f.cls in extras[code].classes for f in log.findings):
                extras[code].feeds_without_peer += 1
        # counts beyond the samples (none while SAMPLE_LIMIT is not reached) and unmapped codes
        for code, total in res.counts.items():
            if code in mapped:
                kept = sum(1 for n, _k in keyed if n.code == code)
                extras[code].ours += max(0, total - kept)
            else:
                unmapped_n[code] += total
                unmapped_feeds[code] += 1
        sevs: Counter = Counter()
        for n in res.notices:
            unmapped_sev.setdefault(n.code, n.severity)
            sevs[n.severity] += 1
        for s, c in sevs.items():
            sev_n[s] += c
            sev_feeds[s] += 1
    html = (sum(1 for lg in logs.values() if lg.html_errors), sum(1 for lg in logs.values() if lg.html_warnings),
            sum(lg.html_errors for lg in logs.values()), sum(lg.html_warnings for lg in logs.values()))
    vd = {r.validation_date for r in ours.values()}
    return Comparison(
        validation_date=", ".join(sorted(vd)),
        feeds=len([f for f in logs if f in ours]),
        recalls=recalls,
        extras=extras,
        unmapped={c: (unmapped_n[c], unmapped_feeds[c], unmapped_sev.get(c, "?")) for c in unmapped_n},
        registered=_registered_codes(),
        peer_html=html,
        ours_severity={s: (sev_n[s], sev_feeds[s]) for s in sev_n},
        unreadable=unreadable,
        seconds=sum(r.seconds for r in ours.values()),
        unparsed=sum(len(lg.unparsed) for lg in logs.values()),
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

DOC_START = "<!-- parity:figures:start (generated by `python -m noriba.parity --write-doc`; do not edit by hand) -->"
DOC_END = "<!-- parity:figures:end -->"


MATCH_TEXT = {
    "one": "a notice names the first id",
    "pair": "one notice names both ids",
    "group": "each of the two ids is named by some notice",
    "all": "one notice names every id",
    "trip_stops": "one notice names the trip and one of the two stop names",
    "dates": "a notice has a date in the peer's range (or a range overlapping it)",
    "feed": "any notice of the codes in the feed",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _short(f: PeerFinding) -> str:
    return f"{f.feed}:{f.line} {f.text[:110]}".replace("|", "\\|")


def _notice_short(feed: str, n: OurNotice) -> str:
    where = f"{n.file or ''}:{n.line}" if n.line is not None else (n.file or "")
    return f"{feed} {where} {n.message[:100]}".replace("|", "\\|").replace("\n", " ")


def render(c: Comparison, *, head: str | None = None) -> str:
    """Return the figures of a comparison as Markdown (the generated section of docs/validation-parity.md)."""
    out = []
    out.append(head or f"Generated {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')} "
                       f"from commit {_git_head()} on {c.feeds} corpus feeds, validation date {c.validation_date}.")
    out.append("")
    out.append(f"Peer log lines not parsed into a finding, header or count: **{c.unparsed}**. "
               f"Feeds we could not read at all: **{len(c.unreadable)}**"
               + (f" ({', '.join(sorted(c.unreadable))})" if c.unreadable else "") + ".")
    out.append("")
    out.append("### The peer's classes and how they are matched")
    out.append("")
    out.append("| peer class | FeedValidator problem type | what it checks (transitfeed source) | matching | our codes |")
    out.append("|---|---|---|---|---|")
    for cls in PEER_CLASSES:
        out.append(f"| `{cls.key}` | {cls.peer_type} | {cls.checks} | {MATCH_TEXT[cls.match]} | "
                   + ", ".join(f"`{x}`" for x in cls.codes) + " |")
    out.append("")
    out.append("### Recall per class")
    out.append("")
    out.append("| peer class | peer severity | feeds | feeds matched | feed recall | findings | matched | count recall | our codes | status |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for cls in PEER_CLASSES:
        r = c.recalls[cls.key]
        codes = ", ".join(f"`{x}`" + ("" if x in c.registered else " (not registered)") for x in cls.codes)
        if cls.key in EXCLUDED:
            status = "excluded"
        elif r.feed_recall >= 0.95 and r.count_recall >= 0.95:
            status = "ok"
        else:
            status = "**under 95%**"
        out.append(f"| `{cls.key}` {cls.label} | {cls.peer_severity} | {r.peer_feeds} | {r.matched_feeds} | {_pct(r.feed_recall)} | "
                   f"{r.peer_findings} | {r.matched_findings} | {_pct(r.count_recall)} | {codes} | {status} |")
    tot_f = sum(r.peer_findings for r in c.recalls.values())
    tot_m = sum(r.matched_findings for r in c.recalls.values())
    out.append(f"| **all classes** | | | | | {tot_f} | {tot_m} | {_pct(tot_m / tot_f if tot_f else 1)} | | |")
    out.append("")
    fails = c.failing()
    out.append(f"Classes under 95%: **{len(fails)}** of {len(PEER_CLASSES)}" + (f" ({', '.join(fails)})." if fails else "."))
    out.append("")
    missed = [(k, r) for k, r in c.recalls.items() if r.missed]
    if missed:
        out.append("### Peer findings we miss (first five per class)")
        out.append("")
        for k, r in missed:
            feeds = Counter(f.feed for f in r.missed)
            out.append(f"- `{k}`: {len(r.missed)} missed in {len(feeds)} feed(s) "
                       f"({', '.join(f'{f} {n}' for f, n in feeds.most_common(4))}{', ...' if len(feeds) > 4 else ''})")
            for f in r.missed[:5]:
                out.append(f"  - {_short(f)}")
        out.append("")
    out.append("### What we report that the peer does not: codes mapped to a peer class")
    out.append("")
    out.append("| our code | registered | peer classes | our findings | matching a peer finding | not in the peer's log | feeds | feeds where the peer has none of its classes |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|")
    for code, e in sorted(c.extras.items()):
        out.append(f"| `{code}` | {'yes' if code in c.registered else 'no'} | {', '.join(e.classes)} | {e.ours} | {e.matched} | "
                   f"{e.extra} | {e.feeds} | {e.feeds_without_peer} |")
    out.append("")
    ex = [(code, e) for code, e in sorted(c.extras.items()) if e.examples]
    if ex:
        out.append("Examples of those not in the peer's log:")
        out.append("")
        for code, e in ex:
            out.append(f"- `{code}`: " + "; ".join(_notice_short(f, n) for f, n in e.examples[:3]))
        out.append("")
    out.append("### What we report that the peer's log has no class for")
    out.append("")
    out.append("| our code | severity | findings | feeds | why the peer's log does not have it |")
    out.append("|---|---|---:|---:|---|")
    for code, (n, feeds, sev) in sorted(c.unmapped.items(), key=lambda kv: (-kv[1][0], kv[0])):
        out.append(f"| `{code}` | {sev} | {n} | {feeds} | {UNMAPPED_REASONS.get(code, DEFAULT_UNMAPPED_REASON)} |")
    out.append("")
    fe, fw, te, tw = c.peer_html
    out.append(f"Problems the peer only counted (HTML report, not in the corpus): {te} errors in {fe} feeds, "
               f"{tw} warnings in {fw} feeds. Ours, all codes: "
               + ", ".join(f"{s} {n} in {feeds} feeds" for s, (n, feeds) in sorted(c.ours_severity.items())) + ".")
    out.append("")
    out.append(f"Our validation time, summed over the feeds: {c.seconds:.0f} s (single process, read + type + rules).")
    return "\n".join(out)


def _git_head() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def write_doc(path: Path, figures: str) -> None:
    """Replace the generated section of the parity document with ``figures`` (the rest is hand-written)."""
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Validation parity\n\n{DOC_START}\n{DOC_END}\n"
    if DOC_START not in text or DOC_END not in text:
        raise SystemExit(f"{path}: markers {DOC_START!r} and {DOC_END!r} not found")
    before, rest = text.split(DOC_START, 1)
    _old, after = rest.split(DOC_END, 1)
    path.write_text(f"{before}{DOC_START}\n{figures}\n{DOC_END}{after}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--guru" in argv:
        return main_guru(argv)
    ap = argparse.ArgumentParser(prog="python -m noriba.parity",
                                 description="Compare Noriba's validation with FeedValidator's on the GTFS-JP 2019 corpus.")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--write-doc", type=Path, metavar="MD", help="regenerate the figures section of this document")
    ap.add_argument("--refresh", action="store_true", help="validate every feed again, ignoring the cache")
    ap.add_argument("--date", type=date.fromisoformat, default=VALIDATION_DATE, help="validation date (default %(default)s)")
    args = ap.parse_args(argv)
    if not (args.corpus / "expected").exists():
        print(f"error: no corpus at {args.corpus} (expected/ and feeds/ folders)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    logs = parse_corpus(args.corpus)
    ours = validate_corpus(args.corpus, validation_date=args.date, refresh=args.refresh,
                           progress=lambda m: print(m, file=sys.stderr))
    comp = compare(logs, ours)
    figures = render(comp)
    print(figures)
    print(f"\n(wall time {time.perf_counter() - t0:.1f} s; cache {cache_dir()})", file=sys.stderr)
    if args.write_doc:
        write_doc(args.write_doc, figures)
        print(f"wrote {args.write_doc}", file=sys.stderr)
    return 1 if comp.failing() else 0



# --------------------------------------------------------------------------------------------
# Parity with gtfs-guru (MobilityData gtfs-validator v8.0.1's notice codes), per (feed, code)
# --------------------------------------------------------------------------------------------

GTFS_DATA = ROOT.parent / "shared" / "data" / "gtfs"

_FLEX = "GTFS-Flex / GeoJSON: the Flex issue owns these rules (Noriba reads no locations.geojson, booking_rules or location_groups yet)"
_FLEX_CODES = (
    "duplicate_geo_json_key", "duplicate_geography_id", "forbidden_arrival_or_departure_time", "forbidden_continuous_pickup_drop_off",
    "forbidden_drop_off_type", "forbidden_geography_id", "forbidden_pickup_type", "forbidden_prior_day_booking_field_value",
    "forbidden_prior_notice_start_day", "forbidden_prior_notice_start_time", "forbidden_real_time_booking_field_value",
    "forbidden_same_day_booking_field_value", "forbidden_shape_dist_traveled", "geo_json_duplicated_element",
    "geo_json_unknown_element", "invalid_geometry", "invalid_pickup_drop_off_window", "invalid_prior_notice_duration_min",
    "malformed_json", "missing_pickup_drop_off_booking_rule_id", "missing_pickup_or_drop_off_window",
    "missing_prior_day_booking_field_value", "missing_prior_notice_duration_min", "missing_prior_notice_last_day",
    "missing_prior_notice_last_time", "missing_prior_notice_start_time", "missing_required_element", "missing_stop_times_record",
    "overlapping_zone_and_pickup_drop_off_window", "prior_notice_last_day_after_start_day", "unsupported_feature_type",
    "unsupported_geo_json_type", "unsupported_geometry_type",
)
_GTFS_JP_FILES = ("GTFS-JP files and columns (agency_jp.txt, office_jp.txt, routes_jp.txt, pattern_jp.txt; jp_parent_route_id, "
                  "jp_trip_desc, jp_trip_desc_symbol, jp_office_id, jp_pattern_id) are defined by the GTFS-JP specification, which "
                  "Noriba applies to GTFS-JP feeds; gtfs-guru knows GTFS only")
_OLD_TRANSLATIONS = ("GTFS-JP 1st edition translations.txt (trans_id, lang, translation): Noriba reads it and reports "
                     "old_style_translations; gtfs-guru reads GTFS's layout and misses table_name, field_name, language "
                     "(missing_required_column) and calls trans_id, lang unknown (unknown_column)")
_CASELESS = ("names in a script without letter case (kana, kanji, Hebrew) cannot be mixed case; MobilityData splits the value "
             "at non-letters and flags every two-word name without an upper-and-lower-case word, so a Japanese name of two "
             "words is flagged; Noriba leaves words without cased letters out")
_FLEX_FEED = "a Flex feed: the finding is on Flex files or columns (location groups, booking rules, pickup/drop-off windows)"

#: gtfs-guru's findings not counted in the recall, each with the reason (docs/validation-parity.md, "gtfs-guru").
#: A key is a code (every feed), ``code@prefix`` (the feeds whose name starts with the prefix) or ``code@+ours``
#: (the feeds where Noriba reports the code ``ours``).
GURU_EXCLUDED: dict[str, str] = {
    **{code: _FLEX for code in _FLEX_CODES},
    "unknown_file@jp/": _GTFS_JP_FILES,
    "unknown_column@jp/": _GTFS_JP_FILES + "; and " + _OLD_TRANSLATIONS,
    "missing_required_column@+old_style_translations": _OLD_TRANSLATIONS,
    "mixed_case_recommended_field@jp/": _CASELESS,
    "mixed_case_recommended_field@world/partridge-fixtures/israel-public-transportation-route-2126": _CASELESS,
    "duplicate_key@flex/de-uckermark-rufbus": _FLEX_FEED + " (location_groups.txt repeats location_group_id by design)",
    "non_ascii_or_non_printable_char@flex/de-uckermark-rufbus": _FLEX_FEED + " (pickup_booking_rule_id values)",
    "invalid_float@flex/us-otp-fixtures/lincoln-county-flex.gtfs": _FLEX_FEED + " (safe_duration_offset, a draft Flex column)",
    "invalid_integer@flex/us-otp-fixtures/lincoln-county-flex.gtfs": _FLEX_FEED + " (booking_rules.txt prior_notice_duration_min)",
    "unsorted_stop_times@flex/us-otp-fixtures/aspen-flex-on-demand.gtfs": _FLEX_FEED + " (stop_times of zones without times)",
    "decreasing_or_equal_stop_time_distance@flex/us-otp-fixtures/aspen-flex-on-demand.gtfs": _FLEX_FEED + " (zone stop_times)",
}

#: Why a code differs between the two tools where it does (only Noriba, only gtfs-guru, or other counts).
#: docs/validation-parity.md ("gtfs-guru: differences explained") says the same with the references.
GURU_EXPLAINED: dict[str, str] = {
    # gtfs-guru reports it where we do not (counted misses, or excluded above)
    "unknown_file": "only gtfs-guru on GTFS-JP feeds: the *_jp.txt files are GTFS-JP's (excluded); elsewhere the same",
    "unknown_column": "only gtfs-guru on GTFS-JP feeds: jp_* columns and old-style translations (excluded); "
                      "Noriba's misspelled_column is counted as unknown_column",
    "missing_required_column": "only gtfs-guru on feeds with GTFS-JP 1st edition translations.txt (excluded)",
    "mixed_case_recommended_field": "only gtfs-guru on names in scripts without letter case (excluded); the same on the others",
    "trip_headsign_matches_intermediate_stop": "only gtfs-guru on loop trips whose last stop has the headsign's name (a "
        "trip that starts at one 益野西 platform and ends at another): the headsign is right, Noriba does not report it; "
        "only Noriba in 7 feeds, likely because gtfs-guru stops checking at the first circular trip (its source says it "
        "reproduces MobilityData v8.0.1, which returns from the whole check there)",
    "unexpected_enum_value": "only gtfs-guru for Google's extended route types (700 bus service, 715 demand and response, "
        "800 trolleybus, 1501 communal taxi), which Noriba accepts: they are documented by Google Transit and used in "
        "Japanese feeds; GTFS itself lists 0-7, 11, 12",
    "decreasing_or_equal_stop_time_distance": "only gtfs-guru where two stop_times rows of a trip repeat a stop_sequence: "
        "Noriba quarantines the repeated row (duplicate_key, reported by both) and so never compares it",
    "trip_coverage_not_active_for_next7_days": "the majority service window (MobilityData's DateTripsValidator) since this "
        "change; before it Noriba used every trip's dates",
    "unsorted_stop_times": "only gtfs-guru on one Flex feed (excluded)",
    "duplicate_key": "only gtfs-guru on a Flex file (excluded); counts: gtfs-guru reports each repeated row, Noriba each repeated key",
    "invalid_float": "only gtfs-guru on a Flex draft column (excluded)",
    "invalid_integer": "only gtfs-guru on a Flex file (excluded)",
    "invalid_character": "the same feed: Noriba's non_utf8_bytes is counted as invalid_character (same count)",
    "non_ascii_or_non_printable_char": "Noriba reports an id once per value where it is defined, gtfs-guru every row that "
        "uses it (stop_times.trip_id...), hence the counts; only Noriba on GTFS-JP id columns (jp_parent_route_id) gtfs-guru "
        "does not read; only gtfs-guru on Flex booking rule ids (excluded)",
    "missing_recommended_field": "Noriba's missing_feed_info_dates is counted here; only Noriba: fare_attributes.agency_id "
        "missing where the feed has one agency",
    "route_long_name_contains_short_name": "Noriba's route_short_and_long_name_equal is counted here; only Noriba where "
        "the long name begins with the short name followed by a full-width bracket (２５０号線[1041], Aコース（…）): "
        "MobilityData only counts a space, '-', '(' or ')' after it",
    # only Noriba (or other counts)
    "big_gap_in_service": "only Noriba on services defined only in calendar_dates.txt, where gtfs-guru reports no gap",
    "expired_calendar": "only Noriba on services defined only in calendar_dates.txt: MobilityData's ExpiredCalendarValidator "
        "takes the service's row from calendar.txt, although its notice 'takes into account the calendar_dates.txt file "
        "as well as the calendar.txt file'",
    "feed_expiration_date7_days": "without feed_end_date Noriba takes the last calendar date (as FeedValidator); "
        "MobilityData reads feed_info.feed_end_date only",
    "future_feed": "without feed_start_date Noriba takes the first calendar date (as FeedValidator); gtfs-guru reads "
        "feed_info.feed_start_date only (and reports future_calendar, which both report)",
    "feed_valid_beyond_total_service_window": "Noriba reports any day of feed_info's period outside the dates trips run; "
        "gtfs-guru only a period 'valid 14 days beyond its total service window' (its notice)",
    "fast_travel_between_consecutive_stops": "only Noriba on region-nord-v2, whose stop_times put stops 22.5 km apart 60 s "
        "apart (675 km/h); gtfs-guru reports no fast travel there (not investigated: its stops.txt is not UTF-8); "
        "counts differ in the feeds both flag (830 against 436 notices), not investigated",
    "fast_travel_between_far_stops": "the same feed as fast_travel_between_consecutive_stops",
    "foreign_key_violation": "only Noriba on GTFS-JP files (agency_jp.txt, routes_jp.txt) whose ids are not in "
        "agency.txt / routes.txt, files gtfs-guru does not read; counts: Noriba reports every row",
    "invalid_language_code": "feed_lang 'deu': BCP 47 uses the two-letter ISO 639-1 code (de) where one exists",
    "invalid_phone_number": "'503-238-RIDE': Noriba accepts digits, spaces and + - ( ) . only; gtfs-guru accepts it",
    "invalid_row_length": "PROVENANCE.txt in a folder feed (a note beside the data): Noriba reads every .txt of the folder",
    "empty_row": "blank lines Noriba skips and reports (in translations.txt and a folder feed's PROVENANCE.txt); "
        "gtfs-guru reports none there",
    "leading_or_trailing_whitespaces": "Noriba checks every text and id value; gtfs-guru only some text fields "
        "(stop_headsign, route_desc, route names), not ids such as agency_id '5070001002430 ' nor trip_headsign",
    "missing_trip_edge": "a Flex feed whose zone stop_times have no times",
    "stop_too_far_from_shape": "only Noriba on two Caltrain feeds where San Jose Diridon is 102 m from the shape by "
        "Noriba's local flat projection and within 100 m by gtfs-guru: a case at the threshold",
    "stop_without_stop_time": "a Flex feed whose stops are used through location groups",
    "unusable_trip": "a Flex feed whose trips call at one zone",
    "unused_parent_station": "FeedValidator's finding kept under its own code; gtfs-guru reports the same stations "
        "as unused_station, and so does Noriba",
    "unused_route": "routes without trips: gtfs-guru has the code (not a MobilityData v8.0.1 one) but, by its notice "
        "schema, 'the thorough validator mode reports this warning'; the sweep runs its default mode",
    "stop_has_too_many_matches_for_shape": "same feeds; counts differ (Noriba 4, gtfs-guru 7), not investigated",
    "service_extends_far_in_the_future": "same feeds; counts differ (Noriba 66, gtfs-guru 59), not investigated",
}

#: Codes we name differently from gtfs-guru: ours -> theirs (the same finding under another name).
GURU_ALIASES: dict[str, str] = {
    "misspelled_column": "unknown_column",  # an unknown column that looks like a known one: MobilityData's unknown_column
    "non_utf8_bytes": "invalid_character",  # bytes not valid UTF-8 (the replacement character in gtfs-guru's values)
    "route_short_and_long_name_equal": "route_long_name_contains_short_name",  # equal names: MobilityData's "contains"
    "missing_feed_info_dates": "missing_recommended_field",  # feed_start_date and feed_end_date both missing
}


def guru_excluded(code: str, feed: str, ours_codes: dict[str, list[str]] | None = None) -> str | None:
    """Return why gtfs-guru's ``code`` on ``feed`` is not counted in the recall, or None when it is."""
    if code in GURU_EXCLUDED:
        return GURU_EXCLUDED[code]
    for key, reason in GURU_EXCLUDED.items():
        c, _, cond = key.partition("@")
        if not cond or c != code:
            continue
        if cond.startswith("+") and cond[1:] in (ours_codes or {}).get(feed, ()):
            return reason
        if not cond.startswith("+") and feed.startswith(cond):
            return reason
    return None


def guru_codes() -> set[str]:
    """Return every notice code gtfs-guru knows."""
    import gtfs_guru

    return set(gtfs_guru.notice_codes())


def guru_feeds(data: Path = GTFS_DATA) -> list[tuple[str, Path]]:
    """Return (name, path) of every feed of the parity sweep: the 2019 corpus, gtfs/world/* and gtfs/flex/*.

    A feed is a ``.zip`` or a folder holding ``.txt`` files; names are paths under ``data``.
    """
    out: list[tuple[str, Path]] = []
    corpus = data / "jp" / "corpus-2019" / "feeds"
    if corpus.is_dir():
        out += [(f"jp/corpus-2019/{z.stem}", z) for z in sorted(corpus.glob("*.zip"))]
    for group in ("world", "flex"):
        base = data / group
        if not base.is_dir():
            continue
        for top in sorted(p for p in base.iterdir() if p.is_dir()):
            for cand in [top, *sorted(top.iterdir())]:
                if cand.is_dir() and any(cand.glob("*.txt")) and any(x.name != "PROVENANCE.txt" for x in cand.glob("*.txt")):
                    if cand == top and not (top / "stops.txt").exists() and not (top / "agency.txt").exists():
                        continue
                    out.append((cand.relative_to(data).as_posix(), cand))
                elif cand.is_file() and cand.suffix == ".zip":
                    out.append((cand.relative_to(data).as_posix(), cand))
    return out


def guru_counts(path: Path, validation_date: date) -> dict[str, int]:
    """Return gtfs-guru's {code: number of notices} for one feed, validated as of ``validation_date``."""
    return guru_run(path, validation_date)[0]


def guru_run(path: Path, validation_date: date) -> tuple[dict[str, int], float]:
    """Return gtfs-guru's {code: number of notices} for one feed as of ``validation_date``, and its validation time."""
    import gtfs_guru

    t0 = time.perf_counter()
    result = gtfs_guru.validate(str(path), date=validation_date.isoformat())
    seconds = time.perf_counter() - t0
    return {n["code"]: int(n["totalNotices"]) for n in result.to_dict()["notices"]}, seconds


def guru_cached(path: Path, validation_date: date, *, refresh: bool = False) -> dict[str, int]:
    """Return :func:`guru_counts`, cached on disk by the feed's bytes, the date and gtfs-guru's version."""
    return guru_cached_run(path, validation_date, refresh=refresh)[0]


def guru_cached_run(path: Path, validation_date: date, *, refresh: bool = False) -> tuple[dict[str, int], float]:
    """Return :func:`guru_run` (counts, seconds as measured when it ran), cached like :func:`guru_cached`."""
    import gtfs_guru

    key = f"guru-{gtfs_guru.__version__}-2/{_input_digest(path)}-{validation_date.isoformat()}.json"
    cached = cache_dir() / key
    if cached.exists() and not refresh:
        d = json.loads(cached.read_text(encoding="utf-8"))
        return d["counts"], d["seconds"]
    counts, seconds = guru_run(path, validation_date)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"counts": counts, "seconds": seconds}), encoding="utf-8")
    os.replace(tmp, cached)
    return counts, seconds


@dataclass
class GuruCode:
    """One notice code across the sweep: feeds where both report it, only we, only gtfs-guru; and counts."""

    code: str
    both: list[str] = field(default_factory=list)
    only_ours: list[str] = field(default_factory=list)
    only_theirs: list[str] = field(default_factory=list)
    same_count: int = 0  # feeds of ``both`` where the numbers of notices are equal
    ours_total: int = 0
    theirs_total: int = 0


@dataclass
class GuruComparison:
    validation_date: str
    feeds: list[str]
    codes: dict[str, GuruCode]
    unreadable: dict[str, str]
    seconds_ours: float
    seconds_theirs: float
    ours_codes: dict[str, list[str]] = field(default_factory=dict)  # feed -> our codes before aliasing

    def pairs(self, *, counted_only: bool) -> tuple[int, int]:
        """Return (their (feed, code) pairs we also report, their pairs), over counted codes only when asked."""
        hit = total = 0
        for c in self.codes.values():
            both = [f for f in c.both if not (counted_only and guru_excluded(c.code, f, self.ours_codes))]
            theirs = [f for f in c.only_theirs if not (counted_only and guru_excluded(c.code, f, self.ours_codes))]
            hit += len(both)
            total += len(both) + len(theirs)
        return hit, total

    def recall(self, *, counted_only: bool = True) -> float:
        hit, total = self.pairs(counted_only=counted_only)
        return hit / total if total else 1.0


def compare_guru(ours: dict[str, OurResult], theirs: dict[str, dict[str, int]]) -> GuruComparison:
    """Return the per-code comparison of our counts with gtfs-guru's, feed by feed (codes under our aliases merged)."""
    codes: dict[str, GuruCode] = {}
    unreadable = {}
    ours_codes: dict[str, list[str]] = {}
    for feed in sorted(theirs):
        mine: Counter = Counter()
        res = ours.get(feed)
        if res is not None:
            if res.error:
                unreadable[feed] = res.error
            ours_codes[feed] = sorted(res.counts)
            for code, n in res.counts.items():
                mine[GURU_ALIASES.get(code, code)] += n
        for code in set(mine) | set(theirs[feed]):
            c = codes.setdefault(code, GuruCode(code))
            a, b = mine.get(code, 0), theirs[feed].get(code, 0)
            c.ours_total += a
            c.theirs_total += b
            if a and b:
                c.both.append(feed)
                c.same_count += a == b
            elif a:
                c.only_ours.append(feed)
            elif b:
                c.only_theirs.append(feed)
    seconds = sum(r.seconds for r in ours.values())
    return GuruComparison("", sorted(theirs), codes, unreadable, seconds, 0.0, ours_codes)


def run_guru_parity(*, validation_date: date = VALIDATION_DATE, data: Path = GTFS_DATA, refresh: bool = False,
                    jobs: int | None = None, progress=None) -> GuruComparison:
    """Validate every sweep feed with both tools as of ``validation_date`` and return the comparison."""
    from concurrent.futures import ProcessPoolExecutor

    from noriba.forking import pool_context

    feeds = guru_feeds(data)
    digest = _code_digest()
    jobs = jobs or min(2, os.cpu_count() or 1)
    runs = {name: guru_cached_run(path, validation_date, refresh=refresh) for name, path in feeds}
    theirs = {name: counts for name, (counts, _s) in runs.items()}
    t_theirs = sum(s for _c, s in runs.values())
    if jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=pool_context()) as pool:
            futs = {name: pool.submit(ours_cached, path, name, validation_date=validation_date, digest=digest,
                                      refresh=refresh) for name, path in feeds}
            done = {name: fu.result() for name, fu in futs.items()}
    else:
        done = {name: ours_cached(path, name, validation_date=validation_date, digest=digest, refresh=refresh)
                for name, path in feeds}
    ours = {}
    for name, (res, cached) in done.items():
        ours[name] = res
        if progress and not cached:
            progress(f"{name}: {sum(res.counts.values()):,} findings in {res.seconds:.1f} s")
    comp = compare_guru(ours, theirs)
    comp.validation_date = validation_date.isoformat()
    comp.seconds_theirs = t_theirs
    return comp


def render_guru(c: GuruComparison) -> str:
    """Return the gtfs-guru comparison as Markdown: recall, one row per code, then the feeds behind each difference."""
    hit, total = c.pairs(counted_only=True)
    raw_hit, raw_total = c.pairs(counted_only=False)
    peer = guru_codes()
    out = [f"Validation date {c.validation_date} for both tools; {len(c.feeds)} feeds (87 of the 2019 GTFS-JP corpus, "
           f"{sum(f.startswith('world/') for f in c.feeds)} of gtfs/world, {sum(f.startswith('flex/') for f in c.feeds)} of gtfs/flex); "
           f"Validation time summed over the feeds, as measured when each result was made (one process each, on a shared "
           f"2-core machine): Noriba {c.seconds_ours:.0f} s (read, type, every rule), gtfs-guru {c.seconds_theirs:.1f} s.", "",
           f"- recall of gtfs-guru's (feed, code) pairs, counted pairs: **{hit}/{total} = {_pct(hit / total if total else 1)}**",
           f"- the same over every pair (Flex/GeoJSON and the excluded GTFS-JP pairs included): {raw_hit}/{raw_total} = "
           f"{_pct(raw_hit / raw_total if raw_total else 1)}",
           f"- feeds we could not read: {len(c.unreadable)}", "",
           "Columns: feeds where both report the code, only Noriba, only gtfs-guru; of the feeds where both do, those with "
           "the same number of notices; the notices summed over the feeds; and the reason when gtfs-guru's pairs are not "
           "counted (see the table below it). Codes gtfs-guru does not have are listed after it.", "",
           "| code | both | only Noriba | only gtfs-guru | same count | Noriba notices | gtfs-guru notices | not counted |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
    ours_only_codes = []
    for code in sorted(c.codes):
        g = c.codes[code]
        if code not in peer and not g.theirs_total:
            ours_only_codes.append(g)
            continue
        excl = sorted({k for k in GURU_EXCLUDED if k == code or k.startswith(code + "@")})
        out.append(f"| `{code}` | {len(g.both)} | {len(g.only_ours)} | {len(g.only_theirs)} | {g.same_count} | "
                   f"{g.ours_total:,} | {g.theirs_total:,} | {', '.join(excl)} |")
    out += ["", f"Noriba's own codes (not in gtfs-guru), feeds and notices: "
            + ", ".join(f"`{g.code}` {len(g.only_ours)}/{g.ours_total:,}" for g in ours_only_codes) + ".", "",
            "Feeds behind each counted difference (gtfs-guru reports the code, Noriba does not):", ""]
    for code in sorted(c.codes):
        g = c.codes[code]
        missed = [f for f in g.only_theirs if not guru_excluded(code, f, c.ours_codes)]
        if missed:
            out.append(f"- `{code}`: {', '.join(missed)}")
    return "\n".join(out)


GURU_DOC_START = "<!-- parity:guru:start (generated by `python -m noriba.parity --guru --write-doc`; do not edit by hand) -->"
GURU_DOC_END = "<!-- parity:guru:end -->"


def write_guru_doc(path: Path, figures: str) -> None:
    """Replace the generated gtfs-guru section of the parity document (appended when the markers are absent)."""
    text = path.read_text(encoding="utf-8")
    if GURU_DOC_START not in text:
        text = text.rstrip("\n") + f"\n\n{GURU_DOC_START}\n{GURU_DOC_END}\n"
    before, rest = text.split(GURU_DOC_START, 1)
    _old, after = rest.split(GURU_DOC_END, 1)
    path.write_text(f"{before}{GURU_DOC_START}\n{figures}\n{GURU_DOC_END}{after}", encoding="utf-8")


def main_guru(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m noriba.parity --guru",
                                 description="Compare Noriba's validation with gtfs-guru's, per (feed, notice code).")
    ap.add_argument("--guru", action="store_true")
    ap.add_argument("--write-doc", type=Path, metavar="MD")
    ap.add_argument("--refresh", action="store_true")
    ap.add_argument("--date", type=date.fromisoformat, default=VALIDATION_DATE)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    comp = run_guru_parity(validation_date=args.date, refresh=args.refresh, progress=lambda m: print(m, file=sys.stderr))
    figures = render_guru(comp)
    print(figures)
    print(f"\n(wall time {time.perf_counter() - t0:.1f} s; cache {cache_dir()})", file=sys.stderr)
    if args.write_doc:
        write_guru_doc(args.write_doc, figures)
    return 0 if comp.recall() >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
