"""Feed specs: ``specs/feeds/<feed_id>.yml``, one per feed, validated on load.

Trips and zones specs (``specs/trips/<id>.yml``) are feed specs too: their kind's own section is
checked by transforms/trips/spec.py; a bike/scooter system (kind ``gbfs``) has its ``gbfs:`` section checked by
transforms/gbfs/spec.py; an on-demand service declared without GTFS (kind ``ondemand``) has its
``ondemand:`` section checked by transforms/ondemand/spec.py and needs no ``source:``. Every file is read by the shared safe loader
(transforms/specfile.py: size, alias and depth limits) and every key at every depth is checked.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warehouse.policy import Policy, parse_policy
from transforms.schedule import ONCE_PRESETS, schedule_problem
from transforms.schema import default_specs_dir
from transforms.specfile import (ID_PATTERN, Anything, Flag, ListOf, Map, Null, Number, OneOf, SpecError, Text, check_shape, field_of,
                                 is_under, load_yaml, shown)

__all__ = ["SpecError", "FeedSpec", "Source", "load_rt_specs", "load_spec", "load_specs", "load_trip_specs", "parse_spec"]

KINDS = ("gtfs", "timetable", "trips", "zones", "gbfs", "gtfs-rt", "ondemand")
#: Realtime feeds (transforms/gtfs_rt/spec.py) are polled by `noriba rt archive`, not run as static feeds.
REALTIME_KINDS = ("gtfs-rt",)
PROFILES = ("gtfs", "gtfs-jp")
_QUOTED = 'text in quotes, such as "01205" (unquoted digits are read as a number)'
SOURCE_SHAPE = Map({
    "path": Text(), "url": Text(), "files": Map(values=Text(), expected="a mapping of file name: path"),
    "max_bytes": Number(whole=True, lo=1), "headers": Map(values=Text()), "timeout_s": Number(lo=1, hi=3600),
    "retries": Number(whole=True, lo=1, hi=10),
    "deadline_s": Number(lo=1, hi=86400),  # the whole download, retries included (noriba/fetch.py)
})
NOTIFY_EVENTS = ("blocked", "expiring", "failing")
_ENV = Text(expected="the name of an environment variable (the secret itself never goes in a spec)")
#: The `notify:` section (noriba/notify.py): which outcomes, and the hooks they go to.
NOTIFY_SHAPE = Map({
    "on": ListOf(Text()),  # values: NOTIFY_EVENTS
    "expiry_days": Number(whole=True, lo=1, hi=366), "failures": Number(whole=True, lo=1, hi=100),
    "webhook": Map({"url_env": _ENV}),
    "email": Map({"to": ListOf(Text()), "from": Text(), "smtp_host": Text(), "smtp_port": Number(whole=True, lo=1, hi=65535),
                  "starttls": Flag(), "username_env": _ENV, "password_env": _ENV}),
})
#: Every key of a feed spec, with the type of its value. The kind's own section is checked by its kind.
FEED_SHAPE = Map({
    "id": Text(), "kind": Text(), "name": Text(), "source": SOURCE_SHAPE,
    "schedule": OneOf(Text(), Null(), expected="a cron expression or preset such as '@daily', or null"),
    "timezone": Text(), "encoding": Text(), "profile": Text(), "operator": Text(), "description": Text(),
    "municipality": Map({"name": Text(), "code": Text(expected=_QUOTED), "prefecture": Text(),
                         "prefecture_code": Text(expected=_QUOTED), "name_en": Text()}),
    "license": Map({"id": Text(), "attribution": Text(), "url": Text(), "text": Text()}),
    "tags": ListOf(Text()),
    "policy": Map({"block": Anything(), "block_codes": Anything(), "allow": Anything()}),  # values: warehouse.policy
    "publish": OneOf(Flag(), Null(), expected="true or false (whether the feed is listed in the public catalog)"),
    "timetable": Anything(), "trips": Anything(), "zones": Anything(), "gbfs": Anything(), "realtime": Anything(),
    # (each checked by its kind)
    "ondemand": Anything(),  # an on-demand service declared without GTFS (transforms/ondemand/spec.py)
    "notify": NOTIFY_SHAPE,
})


@dataclass(frozen=True)
class Source:
    path: Path | None = None
    url: str | None = None
    max_bytes: int = 2 << 30
    timeout_s: float = 60.0
    retries: int = 3
    #: seconds a whole download may take, retries included (timeout_s bounds each wait for the server)
    deadline_s: float = 900.0
    #: several local files archived together as one zip: (name inside the archive, path)
    files: tuple[tuple[str, Path], ...] = ()
    #: (name, text) of a kind's settings archived with the input, e.g. the timetable section as JSON
    manifest: tuple[str, str] | None = None

    def describe(self) -> str:
        if self.files:
            return ", ".join(str(p) for _, p in self.files)
        return self.url or str(self.path)


@dataclass(frozen=True)
class FeedSpec:
    id: str
    kind: str
    source: Source
    name: str = ""
    schedule: str | None = None
    timezone: str = "UTC"
    encoding: str | None = None
    profile: str = "gtfs"
    operator: str | None = None
    municipality: dict = field(default_factory=dict)
    license: dict = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    spec_path: Path | None = None
    policy: Policy = Policy()
    options: dict = field(default_factory=dict)  # the kind's own section (trips: / zones:), checked by its kind
    timetable: dict | None = None  # the `timetable:` section of a kind: timetable spec, defaults filled
    publish: bool | None = None  # in the public catalog: True/False as asked; None = when it has a licence
    notify: dict = field(default_factory=dict)  # the `notify:` section (noriba/notify.py); empty = no notifications
    realtime: dict | None = None  # the `realtime:` section of a gtfs-rt spec, defaults filled (transforms/gtfs_rt/spec.py)
    root: Path | None = None  # the project folder the spec's relative paths start from

    def metadata(self) -> dict:
        """Return the spec's descriptive fields, as stored with each feed version."""
        return {
            "name": self.name, "operator": self.operator, "municipality": self.municipality,
            "license": self.license, "tags": list(self.tags), "timezone": self.timezone, "publish": self.publish,
        }


def project_root(specs_dir: Path) -> Path:
    return specs_dir.resolve().parent


def parse_spec(doc: object, *, where: str, root: Path, expect_id: str | None = None) -> FeedSpec:
    """Return the FeedSpec in ``doc``. If anything is wrong, raise SpecError listing every problem."""
    problems: list[str] = []

    if not isinstance(doc, dict):
        raise SpecError([f"{where}: the file must be a YAML mapping (key: value lines)"])
    shape_problems, dropped, doc = check_shape(doc, FEED_SHAPE)
    problems.extend(f"{where}: {f}: {msg}" for f, msg in shape_problems)

    def bad(fieldname: str, msg: str) -> None:
        if not is_under(fieldname, dropped):  # a value of the wrong type is reported once, by the shape check
            problems.append(f"{where}: {fieldname}: {msg}")

    fid = doc.get("id")
    if not isinstance(fid, str) or not ID_PATTERN.match(fid):
        bad("id", f"{shown(fid)} is not a valid feed id (lowercase letters, digits and '-', starting with a letter or digit)")
    elif expect_id and fid != expect_id:
        bad("id", f"'{fid}' must equal the file name '{expect_id}'")
    kind = doc.get("kind")
    if kind not in KINDS:
        bad("kind", f"{shown(kind)} is not a known kind; use one of: {', '.join(KINDS)}")
    src = doc.get("source")
    source = Source()
    if kind in REALTIME_KINDS:
        if src is not None:
            bad("source", "a gtfs-rt feed gives its URLs under `realtime:` (vehicle_positions, trip_updates, alerts or combined); "
                          "to load snapshots captured elsewhere use `noriba rt ingest PATH --feed ID`")
    elif src is None and kind == "ondemand":  # the spec itself is the input: the feed is built from it
        pass
    elif not isinstance(src, dict):
        bad("source", "missing; give `source: {path: ...}` or `source: {url: ...}`")
    else:
        given = [k for k in ("path", "url", "files") if src.get(k) or f"source.{k}" in dropped]
        if len(given) != 1:
            bad("source", "give exactly one of `path`, `url` or `files`")
        files: list[tuple[str, Path]] = []
        if src.get("files") is not None:
            if not src["files"]:
                bad("source.files", "must map each file's name in the archive to its path, e.g. {timetable.xls: data/平日.xls}")
            for name, fp in src["files"].items():
                if not fp or "/" in str(name) or "\\" in str(name) or str(name).startswith("."):
                    bad(f"source.files.{name}", "give a plain file name (no folders) and a path")
                    continue
                q = Path(fp)
                files.append((str(name), q if q.is_absolute() else root / q))
        url = src.get("url")
        if url and not re.match(r"https?://", url):
            bad("source.url", f"{shown(url)} must start with http:// or https://")
        path = src.get("path")
        p = None
        if path:
            p = Path(path)
            p = p if p.is_absolute() else (root / p)
        source = Source(path=p, url=url, max_bytes=src.get("max_bytes", 2 << 30), retries=src.get("retries", 3),
                        timeout_s=float(src.get("timeout_s", 60)), deadline_s=float(src.get("deadline_s", 900)), files=tuple(files))
    tz = doc.get("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        bad("timezone", f"{shown(tz)} is not an IANA time zone such as Asia/Tokyo")
    enc = doc.get("encoding")
    if enc is not None:
        try:
            codecs.lookup(enc)
        except (LookupError, ValueError):
            bad("encoding", f"{shown(enc)} is not an encoding Python knows (try cp932 for Shift_JIS)")
    profile = doc.get("profile", "gtfs")
    if profile not in PROFILES:
        bad("profile", f"{shown(profile)}; use one of: {', '.join(PROFILES)}")
    schedule = doc.get("schedule")
    if (why := schedule_problem(schedule)) is not None:
        bad("schedule", why)
    tags = doc.get("tags", [])
    policy, policy_problems = parse_policy(doc.get("policy"), where=where)
    problems.extend(p for p in policy_problems if not is_under(field_of(p, where), dropped))
    notify = doc.get("notify") or {}
    for fieldname, msg in _notify_problems(notify):
        bad(fieldname, msg)
    options = {}
    if kind in ("trips", "zones"):
        from transforms.trips.spec import check_trips, check_zones, layers

        options = doc.get(kind) or {}
        problems.extend((check_trips if kind == "trips" else check_zones)(doc.get(kind), where=where)[1])
        if kind == "trips" and schedule in ONCE_PRESETS and isinstance(options, dict) and layers(options):
            bad("schedule", f"{schedule!r}: a trips source on zone layers runs when a layer changes, or on a clock "
                            "schedule (a cron expression or a preset such as '@daily'); use one of those or null")
    if kind == "gbfs":  # bike and scooter sharing (transforms/gbfs/spec.py)
        from transforms.gbfs.spec import check_gbfs

        options = doc.get("gbfs") or {}
        problems.extend(check_gbfs(doc.get("gbfs"), where=where)[1])
    if kind == "ondemand":  # an on-demand service from its leaflet (transforms/ondemand/spec.py)
        from transforms.ondemand.area import district_names
        from transforms.ondemand.spec import check_ondemand

        options = doc.get("ondemand") or {}
        if src is not None and "source" not in dropped:
            bad("source", "an on-demand spec is its own input; remove `source:` (the area file goes in ondemand.area.geojson)")
        from transforms.ondemand.service import is_japanese

        prefecture = isinstance(doc.get("municipality"), dict) and bool(doc["municipality"].get("prefecture"))
        checked, found = check_ondemand(doc.get("ondemand"), where=where, root=root,
                                        layer_names=lambda layer: district_names(layer, root.resolve()),
                                        japanese=is_japanese(timezone=tz, profile=profile) or prefecture)
        problems.extend(found)
        for i, h in enumerate((checked or {}).get("hours") or []):  # values of the wrong type are already left out
            if h.get("days") == "holidays" and not is_japanese(timezone=tz, profile=profile):
                bad(f"ondemand.hours[{i}].days", "holidays: the public holidays are known for Japan (timezone: Asia/Tokyo); "
                                                 "elsewhere list the days instead")
    for other in ("trips", "zones", "gbfs", "ondemand"):
        if other != kind and doc.get(other) is not None:
            bad(other, f"only a spec of kind {other} has a `{other}:` section")
    timetable = None
    if kind == "timetable":
        timetable, manifest = _timetable_section(doc.get("timetable"), source, bad)
        source = Source(**{**source.__dict__, "manifest": manifest})
    elif doc.get("timetable") is not None:
        bad("timetable", "only a feed of kind timetable has a `timetable:` section")
    realtime = None
    if kind in REALTIME_KINDS:
        from transforms.gtfs_rt.spec import check_realtime

        realtime, rt_problems = check_realtime(doc.get("realtime"))
        for fieldname, msg in rt_problems:
            bad(fieldname, msg)
    elif doc.get("realtime") is not None:
        bad("realtime", "only a feed of kind gtfs-rt has a `realtime:` section")
    if problems:
        raise SpecError(problems)
    return FeedSpec(
        id=fid, kind=kind, source=source, name=doc.get("name") or fid, schedule=schedule,
        timezone=tz, encoding=enc, profile=profile, operator=doc.get("operator"),
        municipality=doc.get("municipality") or {}, license=doc.get("license") or {},
        tags=tuple(tags), policy=policy, options=options, timetable=timetable, publish=doc.get("publish"),
        notify=notify, realtime=realtime, root=root,
    )


def _notify_problems(notify: dict) -> list[tuple[str, str]]:
    """Return (field, message) for each mistake of a `notify:` section whose value types are already checked."""
    out = []
    if notify and not (notify.get("webhook") or notify.get("email")):
        out.append(("notify", "give a hook: `webhook: {url_env: NAME}` or `email: {to: [...], smtp_host: ...}`"))
    for i, ev in enumerate(notify.get("on") or []):
        if ev not in NOTIFY_EVENTS:
            out.append((f"notify.on[{i}]", f"{shown(ev)} is not an event; use some of: {', '.join(NOTIFY_EVENTS)}"))
    hooks = [("webhook", notify.get("webhook") or {}), ("email", notify.get("email") or {})]
    for hook, keys in ((h, [k for k in c if k.endswith("_env")]) for h, c in hooks):
        for k in keys:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", dict(hooks)[hook][k]):
                out.append((f"notify.{hook}.{k}", f"{shown(dict(hooks)[hook][k])} is not an environment variable name "
                                                  "(letters, digits, '_'); put the secret in that variable, not in the spec"))
    if notify.get("webhook") and not notify["webhook"].get("url_env"):
        out.append(("notify.webhook.url_env", "missing; name the environment variable that holds the webhook URL"))
    if notify.get("email") and not notify["email"].get("to"):
        out.append(("notify.email.to", "missing; give a list of addresses"))
    return out


def _timetable_section(section: object, source: Source, bad) -> tuple[dict | None, tuple[str, str] | None]:
    """Return (the timetable section with defaults, its archived manifest). Each mistake is reported through ``bad``."""
    import json

    from transforms.timetable.config import MANIFEST, check_config, with_defaults

    names = None
    if source.url:
        bad("source.url", "a timetable feed reads local files; give source.path (a folder) or source.files")
    if source.files:
        names = {n for n, _ in source.files}
    elif source.path is not None and source.path.is_dir():
        names = {p.relative_to(source.path).as_posix() for p in source.path.rglob("*") if p.is_file()}
    elif source.path is not None and source.path.is_file():
        names = {source.path.name}
    problems = check_config(section, files=names)
    for fieldname, msg in problems:
        bad(fieldname, msg)
    if problems:
        return None, None
    cfg = with_defaults(section)
    return cfg, (MANIFEST, json.dumps(cfg, ensure_ascii=False, sort_keys=True, indent=1))


def load_spec(path: Path, *, specs_dir: Path | None = None) -> FeedSpec:
    """Return the feed spec in ``path``. If it is not valid, raise SpecError naming the file and fields."""
    specs_dir = specs_dir or path.resolve().parent.parent
    doc = load_yaml(path)
    spec = parse_spec(doc, where=str(path), root=project_root(specs_dir), expect_id=path.stem)
    return FeedSpec(**{**spec.__dict__, "spec_path": path})


def load_each(folder: str, specs_dir: Path | None = None, *, realtime: bool = False) -> tuple[list[FeedSpec], list[str]]:
    """Return (the valid specs under ``specs_dir/<folder>``, every problem of the others). One bad file costs only itself.

    Realtime specs (kind gtfs-rt) are left out, unless ``realtime``: then only they are returned.
    """
    specs_dir = specs_dir or default_specs_dir()
    problems: list[str] = []
    specs: list[FeedSpec] = []
    for path in sorted((specs_dir / folder).glob("*.y*ml")):
        try:
            spec = load_spec(path, specs_dir=specs_dir)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        if (spec.kind in REALTIME_KINDS) == realtime:
            specs.append(spec)
    return specs, problems


def load_specs(specs_dir: Path | None = None) -> list[FeedSpec]:
    """Return every static feed spec under ``specs_dir/feeds`` (gtfs-rt specs: load_rt_specs). If any is wrong, raise SpecError listing all problems."""
    specs, problems = load_each("feeds", specs_dir)
    if problems:
        raise SpecError(problems)
    return specs


def load_trip_specs(specs_dir: Path | None = None) -> list[FeedSpec]:
    """Return every spec under ``specs_dir/trips`` (kinds trips and zones). If any is wrong, raise SpecError listing all problems."""
    specs, problems = load_each("trips", specs_dir)
    if problems:
        raise SpecError(problems)
    return specs


def load_rt_specs(specs_dir: Path | None = None) -> tuple[list[FeedSpec], list[str]]:
    """Return (every valid gtfs-rt spec under ``specs_dir/feeds``, every problem of the spec files that could not be read)."""
    return load_each("feeds", specs_dir, realtime=True)
