"""`noriba spec suggest`: a timetable workbook gets its blocks, anything else goes to the trips suggester."""

from __future__ import annotations

from tests.transforms.timetable.test_layouts import STACKED, xlsx


def test_cli_prints_the_suggestion_and_names_a_missing_trips_suggester(tmp_path, capsys):
    import importlib.util

    from noriba.cli import main

    (tmp_path / "平日.xlsx").write_bytes(xlsx(STACKED))
    assert main(["spec", "suggest", str(tmp_path / "平日.xlsx")]) == 0
    assert "block 2: stops A11:A14" in capsys.readouterr().out
    (tmp_path / "trips.csv").write_text("pickup,dropoff\n2026-04-01 08:00,2026-04-01 08:30\n", encoding="utf-8")
    rc = main(["spec", "suggest", str(tmp_path / "trips.csv")])
    if importlib.util.find_spec("transforms.trips.suggest") is None:  # the trips helper's module, wired after merge
        assert rc == 2 and "--kind timetable" in capsys.readouterr().err
    else:
        assert rc == 0
    assert main(["spec", "suggest", "--kind", "timetable", str(tmp_path / "trips.csv")]) == 0
    assert "No timetable block was found" in capsys.readouterr().out
