"""Reference lists the rules compare values with, read from ``reference.json`` beside this module.

ISO 639 language codes and ISO 4217 currencies come from babel, Japan's national holidays from ``holidays``;
importing those libraries and computing 51 years of holidays in Japanese cost more than the whole rule set of a
small feed (bench/README.md, "The rules phase on two cursors"). ``reference.json`` is generated from the libraries
(``python -m transforms.rules.reference``) and a test fails when the two differ, so the answers are the libraries'.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).with_name("reference.json")


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(PATH.read_text(encoding="utf-8"))


def languages() -> tuple[str, ...]:
    """Return the known ISO 639 language codes (2 or 3 letters), lower case, plus 'mul' and 'und', sorted."""
    return tuple(_data()["languages"])


def currencies() -> dict[str, int]:
    """Return {ISO 4217 code: number of decimal places}, sorted by code."""
    return dict(_data()["currencies"])


def japanese_holidays() -> tuple[tuple[str, str], ...]:
    """Return (YYYY-MM-DD, name in Japanese) of every national holiday of Japan, 2000-2050, sorted."""
    return tuple((d, name) for d, name in _data()["jp_holidays"])


def render() -> dict:
    """Return the lists as the libraries give them now (imports babel and holidays)."""
    import holidays
    from babel import Locale
    from babel.numbers import get_currency_precision, list_currencies

    codes = {k.lower() for k in Locale("en").languages if k.isalpha() and 2 <= len(k) <= 3}
    days = holidays.Japan(years=range(2000, 2051), language="ja")
    return {
        "languages": sorted(codes | {"mul", "und"}),
        "currencies": {c: get_currency_precision(c) for c in sorted(list_currencies()) if len(c) == 3 and c.isalpha() and c.isupper()},
        "jp_holidays": sorted([d.isoformat(), name] for d, name in days.items()),
    }


def text(data: dict) -> str:
    """Return reference.json's text for ``data``."""
    return json.dumps(data, ensure_ascii=False, indent=0) + "\n"


if __name__ == "__main__":
    PATH.write_text(text(render()), encoding="utf-8")
    print(f"wrote {PATH}")
