"""The `realtime:` section of a `kind: gtfs-rt` spec (specs/feeds/<id>.yml).

Example::

    id: minato-bus-rt
    kind: gtfs-rt
    timezone: Asia/Tokyo
    realtime:
      static: minato-city-bus            # the static feed these trips, routes and stops belong to
      vehicle_positions: https://example.jp/rt/vp.pb
      trip_updates: https://example.jp/rt/tu.pb
      alerts: https://example.jp/rt/alerts.pb   # any of the three; or one `combined:` URL
      poll_s: 20                         # default 20
      headers: {X-Api-Key: {env: ODPT_KEY}}      # values only from environment variables
      params: {acl:consumerKey: {env: ODPT_KEY}} # query parameters, likewise

A secret never appears in a spec: a header or parameter value is ``{env: NAME}``, read from the
environment when the archiver starts, and never written to a log or the archive.
"""

from __future__ import annotations

import os
import re

from transforms.specfile import Map, Number, Text, check_shape, is_under, shown

#: An archived snapshot's file name in raw/<feed>/rt/<UTC date>/<UTC hour>/: the part, the UTC time received, the sha256.
SNAPSHOT_NAME = re.compile(r"(?P<part>[a-z_]+)-(?P<hms>\d{6})-(?P<sha>[0-9a-f]{64})\.pb\Z")


def snapshot_name(part: str, hms: str, sha: str) -> str:
    """Return the archive file name of a snapshot of ``part`` received at ``hms`` (HHMMSS, UTC) with sha256 ``sha``."""
    name = f"{part}-{hms}-{sha}.pb"
    assert SNAPSHOT_NAME.match(name), name
    return name


#: The parts of a realtime feed, each with its own URL (``combined`` = one FeedMessage with everything).
PARTS = ("vehicle_positions", "trip_updates", "alerts", "combined")
DEFAULT_POLL_S = 20.0
#: Largest response kept (bytes); a bigger one is refused and logged. ``max_bytes`` in the section sets it.
DEFAULT_MAX_BYTES = 64 << 20
_ENV_VALUE = Map({"env": Text(expected="the name of an environment variable (the secret itself never goes in a spec)")},
                 expected="{env: NAME}: the name of the environment variable holding the value")
REALTIME_SHAPE = Map({
    "static": Text(), **{p: Text() for p in PARTS},
    "poll_s": Number(lo=1, hi=3600), "timeout_s": Number(lo=1, hi=600), "max_bytes": Number(whole=True, lo=1),
    "max_backoff_polls": Number(whole=True, lo=1, hi=1000),
    "headers": Map(values=_ENV_VALUE), "params": Map(values=_ENV_VALUE),
})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FEED_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")


def check_realtime(section: object) -> tuple[dict | None, list[tuple[str, str]]]:
    """Return (the section with defaults, every problem as (field, message)). If there is a problem, the section is None."""
    if section is None:
        return None, [("realtime", "missing; give at least one URL, e.g. `realtime: {vehicle_positions: https://…, static: FEED_ID}`")]
    problems, dropped, clean = check_shape(section, REALTIME_SHAPE, prefix="realtime")
    clean = clean or {}

    def bad(field: str, msg: str) -> None:
        if not is_under(field, dropped):
            problems.append((field, msg))

    urls = {p: clean[p] for p in PARTS if clean.get(p)}
    if not urls and not any(f"realtime.{p}" in dropped for p in PARTS):
        bad("realtime", "give at least one of vehicle_positions, trip_updates, alerts (URLs), or one combined URL")
    if "combined" in urls and len(urls) > 1:
        bad("realtime.combined", "a combined feed holds every part; give either `combined` or the separate URLs, not both")
    for p, url in urls.items():
        if not re.match(r"https?://", url):
            bad(f"realtime.{p}", f"{shown(url)} must start with http:// or https://")
    static = clean.get("static")
    if static is not None and not _FEED_ID.match(static):
        bad("realtime.static", f"{shown(static)} is not a feed id (lowercase letters, digits and '-')")
    for group in ("headers", "params"):
        for name, value in (clean.get(group) or {}).items():
            env = (value or {}).get("env")
            if not env:
                bad(f"realtime.{group}.{name}", "give {env: NAME}: the name of the environment variable holding the value")
            elif not _ENV_NAME.match(env):
                bad(f"realtime.{group}.{name}.env", f"{shown(env)} is not an environment variable name (letters, digits, '_')")
    if problems:
        return None, problems
    out = {"static": static, "urls": urls, "poll_s": float(clean.get("poll_s", DEFAULT_POLL_S)),
           "timeout_s": float(clean.get("timeout_s", 10)), "max_bytes": int(clean.get("max_bytes", DEFAULT_MAX_BYTES)),
           "max_backoff_polls": int(clean.get("max_backoff_polls", 15)),
           "headers": {k: v["env"] for k, v in (clean.get("headers") or {}).items()},
           "params": {k: v["env"] for k, v in (clean.get("params") or {}).items()}}
    return out, []


def resolve_env(names: dict[str, str], *, feed_id: str, what: str) -> dict[str, str]:
    """Return {name: value} with each value read from the environment variable named. If one is unset, raise KeyError with a message
    naming the variable (never a value)."""
    out = {}
    for key, env in names.items():
        value = os.environ.get(env)
        if value is None:
            raise KeyError(f"feed '{feed_id}': the {what} {key} comes from the environment variable {env}, which is not set; "
                           f"set it (e.g. in docker/.env) and start again")
        out[key] = value
    return out
