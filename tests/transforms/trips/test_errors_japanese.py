"""Trip logs come from towns as much as from cities: every unreadable-input error of the trips readers has a Japanese text,
which the CLI shows first for a Japanese source (tests/noriba/test_cli_errors.py)."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

MODULES = ("transforms/trips/readers.py", "transforms/trips/stage.py", "transforms/trips/zones.py", "noriba/trips_pipeline.py")


@pytest.mark.parametrize("module", MODULES)
def test_every_input_error_of_the_trips_readers_has_a_japanese_text(module):
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "InputError"]
    assert calls, module
    missing = [n.lineno for n in calls if not any(k.arg == "ja" for k in n.keywords)]
    assert missing == [], f"{module}: InputError without ja= at lines {missing}"


def test_a_missing_pickup_column_is_said_in_japanese_with_the_columns_the_file_has():
    from types import SimpleNamespace

    from transforms.errors import InputError
    from transforms.trips.spec import check_trips
    from transforms.trips.stage import _check_columns

    opts, problems = check_trips({"files": ["*.csv"], "mode": "on_demand", "columns": {"pickup_time": ["乗車日時", "pickup_at"]}}, where="test")
    assert problems == [] and opts is not None
    f = SimpleNamespace(label="予約記録.csv", header_line=3, header_hint=5)
    with pytest.raises(InputError) as err:
        _check_columns([f], {}, ["予約番号", "降車日時"], opts)
    assert err.value.ja == ("予約記録.csv: 3 行目: 見出しに 乗車日時、pickup_at（trips.columns.pickup_time）のどの列もありません。"
                            "見出しにある列: 予約番号, 降車日時。予約記録.csv の 5 行目に spec の列名があります: "
                            "trips.header_row: 5（または auto）を指定してください")
    assert "none of the columns 乗車日時, pickup_at (trips.columns.pickup_time) is in the header" in str(err.value)
