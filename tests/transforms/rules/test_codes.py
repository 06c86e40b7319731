"""codes.tsv, the light list of notice codes that spec checking reads, matches the rule registry."""

import subprocess
import sys

from transforms.rules import codes


def test_code_list_matches_the_rule_registry():
    assert codes.PATH.read_text(encoding="utf-8") == codes.render(), (
        "transforms/rules/codes.tsv is out of date: run `python -m transforms.rules.codes`")


def test_policy_naming_a_code_loads_no_duckdb():
    code = (
        "import sys\n"
        "from warehouse.policy import parse_policy\n"
        "p, problems = parse_policy({'allow': ['unused_trip', 'unused_trp']}, where='f.yml')\n"
        "assert p.allow == ('unused_trip',), p\n"
        "assert \"did you mean 'unused_trip'\" in problems[0], problems\n"
        "heavy = sorted(m for m in ('duckdb', 'pyarrow', 'pandas') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
