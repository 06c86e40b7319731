"""The ``gbfs:`` section of a feed spec of kind ``gbfs`` (specs/feeds/<id>.yml).

```yaml
id: boulder-bcycle
kind: gbfs
source: {url: https://gbfs.example.org/boulder/gbfs.json}   # live; or {path: folder of captured snapshots}
timezone: America/Denver          # used when the system publishes no system_information.json
gbfs:
  version: "1.1"                  # for files that carry no `version` (1.0/1.1 systems often omit it)
  language: en                    # which language's feed list of gbfs.json to follow (default: the first)
  zones: {layer: boulder-zones}   # a zones spec under specs/trips: vehicles and stations per zone
  schema_check: sample            # all | sample (first, last and every sample_every-th snapshot of a series)
  sample_every: 100
  max_gap_s: 300                  # a state lasts until the next snapshot, at most this long
  min_interval_s: 10              # live polling: never ask a file more often, whatever its ttl
```
``check_gbfs`` returns the options with defaults and every mistake as 'file: field: what is wrong'.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.specfile import Map, Number, Text, check_shape, is_under, shown

#: GBFS versions Noriba reads (files declare one of these in `version`).
VERSIONS = ("1.0", "1.1", "2.0", "2.1", "2.2", "2.3", "3.0")
SCHEMA_CHECKS = ("all", "sample")
GBFS_SHAPE = Map({
    "version": Text(numbers=True, expected='a GBFS version in quotes, such as "2.3"'),
    "language": Text(),
    "zones": Map({"layer": Text()}),
    "schema_check": Text(),
    "sample_every": Number(whole=True, lo=1, hi=100_000),
    "max_gap_s": Number(whole=True, lo=1, hi=86_400),
    "min_interval_s": Number(lo=0, hi=86_400),
})


@dataclass(frozen=True)
class GbfsOptions:
    """The parsed ``gbfs:`` section (defaults filled in)."""

    version: str | None = None
    language: str | None = None
    zone_layer: str | None = None
    schema_check: str = "sample"
    sample_every: int = 100
    max_gap_s: int = 300
    min_interval_s: float = 10.0


def check_gbfs(section: object, *, where: str) -> tuple[GbfsOptions | None, list[str]]:
    """Return the parsed ``gbfs:`` section (an absent section is all defaults) and every problem in it."""
    if section is None:
        return GbfsOptions(), []
    problems: list[str] = []
    if not isinstance(section, dict):
        return None, [f"{where}: gbfs: expected a mapping (key: value), e.g. gbfs: {{version: \"2.3\"}}"]
    shape_problems, dropped, section = check_shape(section, GBFS_SHAPE, prefix="gbfs")
    problems.extend(f"{where}: {f}: {msg}" for f, msg in shape_problems)

    def bad(f: str, msg: str) -> None:
        if not is_under(f"gbfs.{f}", dropped):
            problems.append(f"{where}: gbfs.{f}: {msg}")

    version = section.get("version")
    if version is not None:
        version = str(version)
        if version not in VERSIONS:
            bad("version", f"{shown(version)} is not a GBFS version; use one of: {', '.join(VERSIONS)} (in quotes)")
    check = section.get("schema_check", "sample")
    if check not in SCHEMA_CHECKS:
        bad("schema_check", f"{shown(check)}; use all or sample")
    layer = (section.get("zones") or {}).get("layer")
    if section.get("zones") is not None and not layer:
        bad("zones.layer", "give the id of a zones spec under specs/trips")
    if problems:
        return None, problems
    return GbfsOptions(version=version, language=section.get("language"), zone_layer=layer, schema_check=check,
                       sample_every=section.get("sample_every", 100), max_gap_s=section.get("max_gap_s", 300),
                       min_interval_s=float(section.get("min_interval_s", 10))), []


def gbfs_options(spec) -> GbfsOptions:
    """Return the options of a checked FeedSpec of kind gbfs."""
    opts, problems = check_gbfs(spec.options or None, where=str(spec.spec_path or spec.id))
    assert opts is not None, problems
    return opts
