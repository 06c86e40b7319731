"""Names from an input become paths only when transforms/paths.py says they are safe."""

from __future__ import annotations

import random

import pytest

from transforms.paths import MAX_PART_BYTES, UnsafePath, _PLAIN, _reason, safe_join, unsafe_reason


@pytest.mark.parametrize("name, why", [
    ("../x", "climbs out"), ("a/../b", "climbs out"), ("a\\..\\b", "climbs out"), ("/etc/passwd", "absolute"),
    ("\\\\server\\share", "absolute"), ("C:evil", "absolute"), ("a\x00b", "control character"), ("a\nb", "control character"),
    ("", "empty"), ("a" * (MAX_PART_BYTES + 1), "longer than"), ("d/" + "é" * 128, "longer than"),
])
def test_unsafe_names_are_refused_with_why(name, why):
    assert why in unsafe_reason(name)


def test_plain_names_skip_no_check_the_full_checks_would_make():
    rng = random.Random(7)
    alphabet = "ab_-.Z9/"
    names = ["station_status/1644883200.json", "a" * MAX_PART_BYTES, "x/" + "b" * MAX_PART_BYTES, "-", "_", "a.b.c", "a..b"]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(20000)]
    plain = [n for n in names if _PLAIN.fullmatch(n)]
    assert len(plain) > 1000  # the fast path is taken
    assert [n for n in plain if _reason(n) is not None] == []  # and only for names every check accepts
    assert all(unsafe_reason(n) == _reason(n) for n in names)  # the same answer for every name


def test_a_name_leading_out_through_a_link_is_refused(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="through a link"):
        safe_join(tmp_path / "root", "out/secret.json")
    assert safe_join(tmp_path / "root", "in/ok.json") == tmp_path / "root" / "in" / "ok.json"
