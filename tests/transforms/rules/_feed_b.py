"""Helpers for the rule tests of part B: build canonical tables from a tiny feed or a real zip, run rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from transforms.canonical import canonicalize
from transforms.gtfs import GtfsAdapter
from transforms.rules.engine import Rule, RuleRun, run_rules
from transforms.schema import load_schema
from tests.conftest import MINI_FEED, write_feed

#: The date tiny feeds are validated for: MINI_FEED's calendar runs 2026-04-01..2027-03-31.
DAY = date(2026, 6, 1)


def feed(**changes: str | None) -> dict[str, str]:
    """Return MINI_FEED with files replaced (name without .txt as keyword); None removes a file."""
    files = dict(MINI_FEED)
    for stem, text in changes.items():
        name = f"{stem}.txt"
        if text is None:
            files.pop(name, None)
        else:
            files[name] = text
    return files


def tables(tmp_path: Path, files: dict[str, str] | Path, *, profile: str = "gtfs"):
    """Return (tables folder, read findings) after typing ``files`` (a {name: text} dict, a folder or a zip)."""
    if isinstance(files, dict):
        src = write_feed(tmp_path / "feed", files)
    else:
        src = files
    text = GtfsAdapter().read(src)
    out = tmp_path / "tables"
    canonicalize(text, schema=load_schema(), out_dir=out, profile=profile)
    return out, text.findings


def run(tmp_path: Path, files: dict[str, str] | Path, rules: list[Rule], *, profile: str = "gtfs",
        day: date = DAY, params: dict | None = None) -> RuleRun:
    """Return the findings of ``rules`` over ``files`` validated on ``day``."""
    out, _ = tables(tmp_path, files, profile=profile)
    return run_rules(out, rules=rules, validation_date=day, profile=profile, params=params, sample_limit=10_000)


def codes(result: RuleRun) -> set[str]:
    """Return the codes found."""
    return {code for code, _ in result.counts}


def found(result: RuleRun, code: str) -> list[dict]:
    """Return the sampled notices of ``code`` as dicts."""
    return [n for n in result.notices.to_pylist() if n["code"] == code]


def rule(rules: list[Rule], code: str) -> list[Rule]:
    """Return the rules of ``rules`` with ``code`` (a one-rule list to pass to run)."""
    picked = [r for r in rules if r.code == code]
    assert picked, f"no rule {code}"
    return picked


def largest_operator_rows(con, sql: str, profile: Path) -> int:
    """Return the most rows any operator of ``sql`` put out when run on ``con`` (DuckDB's JSON profile, written to
    ``profile``): a query that forms pairs of rows shows it here whatever the machine's speed."""
    import json

    con.execute("PRAGMA enable_profiling='json'")
    con.execute(f"PRAGMA profiling_output='{profile}'")
    con.execute(sql).fetchall()
    con.execute("PRAGMA disable_profiling")

    def biggest(node) -> int:  # DuckDB 2's profile: "intermediate_rows"; 1.x: "operator_cardinality"
        if isinstance(node, list):
            return max((biggest(c) for c in node), default=0)
        own = int(node.get("intermediate_rows") or node.get("operator_cardinality") or 0)
        return max(own, biggest(node.get("children") or []), biggest(node.get("operator") or []))

    return biggest(json.loads(profile.read_text()))


def rule_statement(tmp_path: Path, files: dict[str, str], rules: list[Rule], code: str):
    """Return (a connection holding the feed ``files``' tables and the shared tables rule ``code`` asks for, built at
    once, the rule's statement over them)."""
    from transforms.rules import engine

    out, _ = tables(tmp_path, files)
    con, present = engine.open_tables(out)

    def materialise(name, sql, build=None):
        (build or (lambda cur, table: engine._build_shared(cur, name, sql)))(con, f"_shared_{name}")
        return f"_shared_{name}"

    ctx = engine.Context(validation_date=DAY, profile="gtfs", present=present, materialise=materialise)
    (picked,) = rule(rules, code)
    return con, picked.sql(ctx)
