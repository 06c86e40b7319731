"""The notice codes Noriba's rules emit, readable without loading the rules.

Spec checking names codes (a feed's ``policy: {allow: [...]}``), and specs are loaded where Airflow
parses DAG files, which must stay light: the rule registry imports DuckDB and pyarrow. ``codes.tsv``
beside this module lists every rule's code, severity and stage; it is generated from the registry
(``python -m transforms.rules.codes``) and a test fails when the two differ.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).with_name("codes.tsv")
HEADER = "code\tseverity\tstage"


@lru_cache(maxsize=1)
def known_codes() -> dict[str, tuple[str, str]]:
    """Return {code: (severity, stage)} of every rule, read from codes.tsv."""
    out: dict[str, tuple[str, str]] = {}
    for line in PATH.read_text(encoding="utf-8").splitlines()[1:]:
        if line:
            code, severity, stage = line.split("\t")
            out[code] = (severity, stage)
    return out


def render() -> str:
    """Return codes.tsv's text as the rule registry gives it (imports the registry)."""
    from transforms.rules.registry import rule_codes

    rows = sorted((c, r.severity, r.stage) for c, r in rule_codes().items())
    return "\n".join([HEADER, *("\t".join(r) for r in rows)]) + "\n"


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH} ({len(known_codes.__wrapped__())} codes)")
