"""The severity policy: what blocks a version, what is only reported, and how a spec says so."""

from __future__ import annotations

import pytest

from warehouse import policy as policy_mod
from warehouse.policy import BLOCKED, PASS, Policy, parse_policy
from transforms.rules.engine import Rule


@pytest.fixture
def registry(monkeypatch):
    """A rule registry with one read-stage ERROR, one SQL ERROR and one SQL WARNING."""
    rules = {
        "foreign_key_violation": Rule("foreign_key_violation", "ERROR", "ref", stage="read"),
        "test_sql_error": Rule("test_sql_error", "ERROR", "sql error", sql=lambda ctx: "SELECT 1"),
        "test_sql_warning": Rule("test_sql_warning", "WARNING", "sql warning", sql=lambda ctx: "SELECT 1"),
    }
    monkeypatch.setattr(policy_mod, "_rules", lambda: {c: (r.severity, r.stage) for c, r in rules.items()})
    return rules


def test_severities_match_the_notices_module():
    from transforms.notices import SEVERITIES

    assert policy_mod.SEVERITIES == SEVERITIES


def test_default_policy_blocks_structure_errors_only(registry):
    default = Policy()
    assert default.evaluate({("test_sql_error", "ERROR"): 4, ("test_sql_warning", "WARNING"): 9}).status == PASS
    verdict = default.evaluate({("foreign_key_violation", "ERROR"): 3, ("test_sql_error", "ERROR"): 4})
    assert verdict.status == BLOCKED and verdict.blocked_by == {"foreign_key_violation": 3}
    assert verdict.reason() == "foreign_key_violation ×3"


def test_an_error_code_without_a_rule_entry_counts_as_structure(registry):
    assert Policy().evaluate({("not_documented_yet", "ERROR"): 1}).blocked_by == {"not_documented_yet": 1}
    assert Policy().evaluate({("not_documented_yet", "WARNING"): 1}).status == PASS


def test_block_error_blocks_every_error_and_allow_wins(registry):
    strict = Policy(block=("ERROR",), allow=("foreign_key_violation",))
    verdict = strict.evaluate({("foreign_key_violation", "ERROR"): 3, ("test_sql_error", "ERROR"): 4,
                               ("test_sql_warning", "WARNING"): 1})
    assert verdict.blocked_by == {"test_sql_error": 4}


def test_block_codes_block_whatever_their_severity(registry):
    verdict = Policy(block=(), block_codes=("test_sql_warning",)).evaluate(
        {("test_sql_warning", "WARNING"): 2, ("foreign_key_violation", "ERROR"): 5})
    assert verdict.blocked_by == {"test_sql_warning": 2}


def test_spec_policy_is_parsed_and_normalised(registry):
    pol, problems = parse_policy({"block": ["error", "structure"], "allow": ["test_sql_error"], "block_codes": "test_sql_warning"},
                                 where="specs/feeds/x.yml")
    assert problems == []
    assert pol == Policy(block=("ERROR", "structure"), allow=("test_sql_error",), block_codes=("test_sql_warning",))


def test_every_policy_mistake_is_reported_with_file_and_field(tmp_path, registry):
    from noriba.specs import SpecError, load_spec

    (tmp_path / "feeds").mkdir()
    spec = tmp_path / "feeds" / "my-bus.yml"
    spec.write_text(
        "id: my-bus\nkind: gtfs\nsource: {path: x}\n"
        "policy:\n  block: [FATAL]\n  allow: [foreign_key_violaton, test_sql_error]\n  block_codes: [test_sql_error]\n  warn: [x]\n",
        encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(spec, specs_dir=tmp_path)
    problems = exc.value.problems
    assert all(p.startswith(f"{spec}: policy") for p in problems)
    text = "\n".join(problems)
    assert "policy.block: 'FATAL' is not one of structure, ERROR, WARNING, INFO" in text
    assert "policy.allow: 'foreign_key_violaton' is not a notice code Noriba knows; did you mean 'foreign_key_violation'?" in text
    assert "'test_sql_error' is in both allow and block_codes" in text
    assert "policy.warn: unknown key" in text
    assert len(problems) == 4


def test_a_spec_without_policy_gets_the_default():
    from tests.conftest import make_spec

    assert make_spec("x", "somewhere").policy == Policy()


def test_specs_readme_lists_exactly_the_codes_structure_blocks_on():
    import re

    from warehouse.policy import structure_codes
    from tests.conftest import ROOT

    text = (ROOT / "specs" / "README.md").read_text(encoding="utf-8")
    section = text.split("## Severity policy", 1)[1].split("- `block: [ERROR]`", 1)[0]
    documented = set(re.findall(r"`([a-z][a-z0-9_]+)`", section)) - {"structure", "read", "policy", "block_codes", "allow"}
    assert documented == set(structure_codes())


def test_pass_label_names_the_errors_the_policy_lets_through():
    from warehouse.policy import pass_label

    assert pass_label(0, lang="ja") == "合格" and pass_label(0, lang="en") == "PASS"
    assert pass_label(1, lang="ja") == "公開可（エラー 1 件は公開を止めない設定です）"
    assert pass_label(1_234, lang="en") == "PUBLISHABLE (1,234 errors do not block under this feed's policy)"
