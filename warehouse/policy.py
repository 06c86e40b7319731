"""Severity policy: which notices block a feed version from becoming the latest, and which are only reported.

A blocked version is still written to the lake and published (so people can inspect it), but
``gtfs_latest`` keeps serving the newest version that passed and no export is built from it.

The spec key ``policy`` takes three lists, all optional::

    policy:
      block: [structure]        # default. Items: structure | ERROR | WARNING | INFO
      block_codes: [unused_trip]  # these codes block too, whatever their severity
      allow: [leading_or_trailing_whitespaces]  # these codes never block (only reported)

``structure`` means the ERRORs of the 'read' stage: the feed's files, columns, values, keys and
references cannot be read as GTFS (missing_required_file, missing_required_column,
missing_required_field, invalid_time, duplicate_key, foreign_key_violation, invalid_row_length,
...). An ERROR code Noriba has no rule entry for counts as structure (fail safe). ``ERROR``
blocks on every ERROR, including those of the SQL rules (e.g. a trip's stop times going back
in time). A code in ``allow`` never blocks; ``block_codes`` wins over a severity but a code may
not be in both lists.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass

#: transforms.notices.SEVERITIES, repeated so that loading specs (in the DAG file) imports no pyarrow
SEVERITIES = ("ERROR", "WARNING", "INFO")
ERROR = SEVERITIES[0]

STRUCTURE = "structure"
BLOCK_ITEMS = (STRUCTURE, *SEVERITIES)
PASS, BLOCKED = "pass", "blocked"
_KEYS = ("block", "block_codes", "allow")
#: Where the severity policy is explained; reports and the CLI point here.
POLICY_DOC = "specs/README.md#severity-policy"


def _rules() -> dict[str, tuple[str, str]]:
    """Return {code: (severity, stage)} of every rule, without loading the rules (DAG files load specs)."""
    from transforms.rules.codes import known_codes

    return known_codes()


def structure_codes() -> frozenset[str]:
    """Return the codes ``structure`` blocks on: every ERROR rule of the 'read' stage."""
    return frozenset(c for c, (severity, stage) in _rules().items() if severity == ERROR and stage == "read")


@dataclass(frozen=True)
class Policy:
    block: tuple[str, ...] = (STRUCTURE,)
    block_codes: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"block": list(self.block), "block_codes": list(self.block_codes), "allow": list(self.allow)}

    def blocks(self, code: str, severity: str) -> bool:
        """Return whether a finding of ``code`` at ``severity`` blocks the version."""
        if code in self.allow:
            return False
        if code in self.block_codes or severity in self.block:
            return True
        if STRUCTURE in self.block and severity == ERROR:
            known = _rules().get(code)
            return known is None or known[1] == "read"
        return False

    def evaluate(self, counts: Mapping[tuple[str, str], int]) -> "Verdict":
        """Return the verdict for notice totals {(code, severity): count}."""
        blocked: dict[str, int] = {}
        for (code, severity), n in counts.items():
            if n and self.blocks(code, severity):
                blocked[code] = blocked.get(code, 0) + n
        ordered = dict(sorted(blocked.items(), key=lambda kv: (-kv[1], kv[0])))
        return Verdict(status=BLOCKED if ordered else PASS, blocked_by=ordered, policy=self)


@dataclass(frozen=True)
class Verdict:
    status: str  # 'pass' | 'blocked'
    blocked_by: dict[str, int]  # code -> findings that blocked, most first
    policy: Policy

    @property
    def blocked(self) -> bool:
        return self.status == BLOCKED

    def reason(self) -> str:
        """Return one line naming the blocking codes, or '' when the version passed."""
        return blocking_reason(self.blocked_by)


def pass_label(errors: int, *, lang: str) -> str:
    """Return the short verdict of a version that passed: 'PASS' / '合格' if it has no ERROR.

    If ERRORs were found but the policy lets them through, then say that instead, so a page that
    also shows the errors does not call the version a plain pass.
    """
    if not errors:
        return "合格" if lang == "ja" else "PASS"
    if lang == "ja":
        return f"公開可（エラー {errors:,} 件は公開を止めない設定です）"
    return f"PUBLISHABLE ({errors:,} error{'s do' if errors != 1 else ' does'} not block under this feed's policy)"


def blocking_reason(blocked_by: Mapping[str, int] | None, *, limit: int = 5) -> str:
    """Return 'code ×n, code ×n, …' for the codes that blocked a version ('' if none)."""
    if not blocked_by:
        return ""
    items = list(blocked_by.items())
    text = ", ".join(f"{c} ×{n:,}" for c, n in items[:limit])
    if len(items) > limit:
        text += f" and {len(items) - limit} more"
    return text


def parse_policy(doc: object, *, where: str) -> tuple[Policy, list[str]]:
    """Return the Policy in a spec's ``policy`` value and every problem found as 'file: field: what is wrong'."""
    problems: list[str] = []
    if doc is None:
        return Policy(), problems
    if not isinstance(doc, dict):
        return Policy(), [f"{where}: policy: must be a mapping such as `policy: {{block: [ERROR], allow: [unused_trip]}}`"]
    for k in sorted(set(map(str, doc)) - set(_KEYS)):
        problems.append(f"{where}: policy.{k}: unknown key; allowed keys are {', '.join(_KEYS)}")
    known: dict | None = None  # the code list, read only when codes are named
    lists: dict[str, tuple[str, ...]] = {}
    for key in _KEYS:
        value = doc.get(key, [STRUCTURE] if key == "block" else [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}: policy.{key}: must be a list of names such as [{'ERROR' if key == 'block' else 'unused_trip'}]")
            lists[key] = ()
            continue
        items = []
        for v in value:
            if key == "block":
                norm = v if v == STRUCTURE else v.upper()
                if norm not in BLOCK_ITEMS:
                    problems.append(f"{where}: policy.block: {v!r} is not one of {', '.join(BLOCK_ITEMS)}")
                    continue
                v = norm
            elif v not in (known := known if known is not None else _rules()):
                near = difflib.get_close_matches(v, list(known), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else "; see the codes in report.json or `noriba validate`"
                problems.append(f"{where}: policy.{key}: {v!r} is not a notice code Noriba knows{hint}")
                continue
            items.append(v)
        lists[key] = tuple(dict.fromkeys(items))
    both = sorted(set(lists.get("allow", ())) & set(lists.get("block_codes", ())))
    for code in both:
        problems.append(f"{where}: policy: {code!r} is in both allow and block_codes; keep it in one")
    return Policy(block=lists.get("block", (STRUCTURE,)), block_codes=lists.get("block_codes", ()),
                  allow=lists.get("allow", ())), problems


def policy_from_json(text: str | None) -> Policy:
    """Return the Policy stored with a feed version (the default one if none was stored)."""
    if not text:
        return Policy()
    d = json.loads(text)
    return Policy(block=tuple(d.get("block", (STRUCTURE,))), block_codes=tuple(d.get("block_codes", ())),
                  allow=tuple(d.get("allow", ())))
