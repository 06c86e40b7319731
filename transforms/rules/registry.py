"""Every rule Noriba knows, as one explicit list. A module of rules exports ``RULES``; add it here."""

from __future__ import annotations

from functools import lru_cache

from transforms.rules.engine import Rule


@lru_cache(maxsize=1)
def all_rules() -> tuple[Rule, ...]:
    """Return every rule, 'read' rules (raised while reading) and 'sql' rules alike, each code once."""
    from transforms.rules import (
        agency,
        calendar,
        fares,
        feed_info,
        formats,
        gtfs_jp,
        read,
        routes,
        shapes,
        stop_times,
        stops,
        timetable,
        transfers,
        translations,
        trips,
    )

    rules: list[Rule] = []
    for module in (read, formats, agency, stops, routes, trips, stop_times, shapes, calendar, feed_info, fares,
                   transfers, translations, gtfs_jp, timetable):
        rules.extend(module.RULES)
    # MobilityData v8.0.1 notices added in issue 18 (one appended block; other issues append their own).
    from transforms.rules import fares_v2, mobilitydata_v8, pathways, shape_matching, timeframes

    for module in (mobilitydata_v8, shape_matching, pathways, timeframes, fares_v2):
        rules.extend(module.RULES)
    seen: dict[str, Rule] = {}
    for r in rules:
        if r.code in seen and seen[r.code].stage == r.stage and seen[r.code].sql is r.sql:
            raise ValueError(f"rule {r.code} is registered twice")
        seen.setdefault(r.code, r)
    from transforms.rules import flex  # GTFS-Flex (issue 16)

    for r in flex.RULES:
        if r.code in seen and seen[r.code].stage == r.stage and seen[r.code].sql is r.sql:
            raise ValueError(f"rule {r.code} is registered twice")
        seen.setdefault(r.code, r)
    rules.extend(flex.RULES)
    # GTFS-Realtime (issue 15): MobilityData gtfs-realtime-validator's E001…/W001… and the timetable match's codes, raised by
    # noriba/rt_validate.py and noriba/rt_match.py (stage 'read'); the module loads no protobuf.
    from transforms.gtfs_rt.rules import MATCH_RULES
    from transforms.gtfs_rt.rules import RULES as RT_RULES

    for r in (*RT_RULES, *MATCH_RULES):
        if r.code in seen:
            raise ValueError(f"realtime rule {r.code} has the code of another rule")
        seen[r.code] = r
        rules.append(r)
    return tuple(rules)


def rule_codes() -> dict[str, Rule]:
    """Return {code: first rule with that code}, for documentation and policy lookups."""
    out: dict[str, Rule] = {}
    for r in all_rules():
        out.setdefault(r.code, r)
    return out
