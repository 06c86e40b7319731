"""Reference lists pinned in transforms/rules/reference.json: the same as the libraries give, read without importing them."""

import subprocess
import sys

from transforms.rules import reference


def test_pinned_reference_lists_are_what_babel_and_holidays_give():
    # if this fails after a library upgrade: python -m transforms.rules.reference, and review the difference
    assert reference.PATH.read_text(encoding="utf-8") == reference.text(reference.render())


def test_japanese_holiday_names_are_byte_exact_japanese():
    days = dict(reference.japanese_holidays())
    assert days["2019-05-01"] == "天皇の即位の日" and days["2020-07-24"] == "スポーツの日"
    assert reference.currencies()["JPY"] == 0 and "ja" in reference.languages()


def test_the_rules_read_the_lists_without_importing_babel_or_holidays():
    code = ("import sys; from transforms.rules import formats, gtfs_jp; formats.languages(); formats.currencies(); "
            "gtfs_jp.japanese_holidays(); print(any(m.split('.')[0] in ('babel', 'holidays') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
