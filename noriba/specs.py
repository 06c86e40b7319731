"""Feed specs: ``specs/feeds/<feed_id>.yml``, one per feed, validated on load."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from noriba.policy import Policy, parse_policy
from transforms.schema import YAML_LOADER, default_specs_dir

KINDS = ("gtfs", "timetable", "trips", "zones")
PROFILES = ("gtfs", "gtfs-jp")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_KEYS = {"id", "kind", "name", "source", "schedule", "timezone", "encoding", "profile", "operator",
         "municipality", "license", "tags", "description", "policy", "timetable", "publish",
         "trips", "zones"}  # trips/zones: the section of a trips or zones spec (transforms/trips/spec.py)
_SOURCE_KEYS = {"path", "url", "files", "max_bytes", "headers", "timeout_s", "retries"}


class SpecError(Exception):
    """A feed spec is wrong. ``problems`` lists every mistake as 'file: field: what is wrong'."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Source:
    path: Path | None = None
    url: str | None = None
    max_bytes: int = 2 << 30
    timeout_s: float = 60.0
    retries: int = 3
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

    def bad(fieldname: str, msg: str) -> None:
        problems.append(f"{where}: {fieldname}: {msg}")

    if not isinstance(doc, dict):
        raise SpecError([f"{where}: the file must be a YAML mapping (key: value lines)"])
    for k in sorted(set(doc) - _KEYS):
        bad(k, f"unknown key; allowed keys are {', '.join(sorted(_KEYS))}")
    fid = doc.get("id")
    if not isinstance(fid, str) or not ID_PATTERN.match(fid):
        bad("id", f"{fid!r} is not a valid feed id (lowercase letters, digits and '-', starting with a letter or digit)")
    elif expect_id and fid != expect_id:
        bad("id", f"'{fid}' must equal the file name '{expect_id}'")
    kind = doc.get("kind")
    if kind not in KINDS:
        bad("kind", f"{kind!r} is not a known kind; use one of: {', '.join(KINDS)}")
    src = doc.get("source")
    source = Source()
    if not isinstance(src, dict):
        bad("source", "missing; give `source: {path: ...}` or `source: {url: ...}`")
    else:
        for k in sorted(set(src) - _SOURCE_KEYS):
            bad(f"source.{k}", f"unknown key; allowed: {', '.join(sorted(_SOURCE_KEYS))}")
        if sum(bool(src.get(k)) for k in ("path", "url", "files")) != 1:
            bad("source", "give exactly one of `path`, `url` or `files`")
        files: list[tuple[str, Path]] = []
        if src.get("files") is not None:
            if not isinstance(src["files"], dict) or not src["files"]:
                bad("source.files", "must map each file's name in the archive to its path, e.g. {timetable.xls: data/平日.xls}")
            else:
                for name, fp in src["files"].items():
                    if not isinstance(fp, str) or not fp or "/" in str(name) or str(name).startswith("."):
                        bad(f"source.files.{name}", "give a plain file name (no folders) and a path")
                        continue
                    q = Path(fp)
                    files.append((str(name), q if q.is_absolute() else root / q))
        url = src.get("url")
        if url and not re.match(r"^https?://", str(url)):
            bad("source.url", f"{url!r} must start with http:// or https://")
        path = src.get("path")
        p = None
        if path:
            p = Path(str(path))
            p = p if p.is_absolute() else (root / p)
        try:
            max_bytes = int(src.get("max_bytes", 2 << 30))
            retries = int(src.get("retries", 3))
            timeout_s = float(src.get("timeout_s", 60))
        except (TypeError, ValueError):
            bad("source", "max_bytes, retries and timeout_s must be numbers")
            max_bytes, retries, timeout_s = 2 << 30, 3, 60.0
        source = Source(path=p, url=url, max_bytes=max_bytes, retries=retries, timeout_s=timeout_s, files=tuple(files))
    tz = doc.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        bad("timezone", f"{tz!r} is not an IANA time zone such as Asia/Tokyo")
    enc = doc.get("encoding")
    if enc is not None:
        import codecs

        try:
            codecs.lookup(str(enc))
        except LookupError:
            bad("encoding", f"{enc!r} is not an encoding Python knows (try cp932 for Shift_JIS)")
    profile = doc.get("profile", "gtfs")
    if profile not in PROFILES:
        bad("profile", f"{profile!r}; use one of: {', '.join(PROFILES)}")
    schedule = doc.get("schedule")
    if schedule is not None and not isinstance(schedule, str):
        bad("schedule", "must be a cron expression or preset such as '@daily', or null")
    for key in ("municipality", "license"):
        if doc.get(key) is not None and not isinstance(doc.get(key), dict):
            bad(key, "must be a mapping (e.g. name: ..., code: ...)")
    if doc.get("publish") is not None and not isinstance(doc.get("publish"), bool):
        bad("publish", "must be true or false (whether the feed is listed in the public catalog)")
    tags = doc.get("tags", [])
    if not isinstance(tags, list):
        bad("tags", "must be a list such as [demo, hokkaido]")
    policy, policy_problems = parse_policy(doc.get("policy"), where=where)
    problems.extend(policy_problems)
    options = {}
    if kind in ("trips", "zones"):
        from transforms.trips.spec import check_trips, check_zones

        options = doc.get(kind) or {}
        problems.extend((check_trips if kind == "trips" else check_zones)(doc.get(kind), where=where)[1])
    timetable = None
    if kind == "timetable":
        timetable, manifest = _timetable_section(doc.get("timetable"), source, bad)
        source = Source(**{**source.__dict__, "manifest": manifest})
    elif doc.get("timetable") is not None:
        bad("timetable", "only a feed of kind timetable has a `timetable:` section")
    if problems:
        raise SpecError(problems)
    return FeedSpec(
        id=fid, kind=kind, source=source, name=str(doc.get("name") or fid), schedule=schedule,
        timezone=str(tz), encoding=enc, profile=profile, operator=doc.get("operator"),
        municipality=doc.get("municipality") or {}, license=doc.get("license") or {},
        tags=tuple(str(t) for t in tags), policy=policy, options=options, timetable=timetable, publish=doc.get("publish"),
    )


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
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        raise SpecError([f"{path}:{at} not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot be read ({exc}); save it as UTF-8"]) from None
    spec = parse_spec(doc, where=str(path), root=project_root(specs_dir), expect_id=path.stem)
    return FeedSpec(**{**spec.__dict__, "spec_path": path})


def load_specs(specs_dir: Path | None = None) -> list[FeedSpec]:
    """Return every feed spec under ``specs_dir/feeds``. If any is wrong, raise SpecError listing all problems."""
    specs_dir = specs_dir or default_specs_dir()
    problems: list[str] = []
    specs: list[FeedSpec] = []
    for path in sorted((specs_dir / "feeds").glob("*.y*ml")):
        try:
            specs.append(load_spec(path, specs_dir=specs_dir))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return specs
