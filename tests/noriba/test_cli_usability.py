"""What a new user trips on at the command line: help for every option, known ids listed, ids from generic file names."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import pytest

from noriba.cli import build_parser, main
from tests.conftest import MINI_FEED, ROOT


def _actions(parser: argparse.ArgumentParser, where: str = "noriba"):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                yield from _actions(sub, f"{where} {name}")
        elif not isinstance(a, argparse._HelpAction):
            yield where, a


def test_every_option_and_positional_of_every_command_has_help():
    missing = [f"{where} {'/'.join(a.option_strings) or a.dest}" for where, a in _actions(build_parser())
               if not (a.help or "").strip()]
    assert list(_actions(build_parser()))  # the walk reaches the sub-commands' arguments
    assert not missing, f"arguments without help=: {missing}"


def test_every_subcommand_has_help_in_the_command_list():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listed = {c.dest for c in sub._choices_actions}
    assert set(sub.choices) == listed, f"sub-commands missing from `noriba --help`: {set(sub.choices) - listed}"


def _known_ids() -> list[str]:
    from noriba.specs import load_specs

    return [s.id for s in load_specs(ROOT / "specs")]


def test_validate_of_an_unknown_target_lists_the_known_feed_ids(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc = main(["--home", str(tmp_path / "h"), "validate", "no-such-feed", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no-such-feed" in err and "known" in err
    assert all(i in err for i in _known_ids())


def test_validate_without_a_target_says_what_to_give_and_lists_the_known_feed_ids(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc = main(["--home", str(tmp_path / "h"), "validate", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "path" in err and all(i in err for i in _known_ids())
    assert "Traceback" not in err


def _zip_feed(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, text in MINI_FEED.items():
            z.writestr(name, text)
    return path


@pytest.mark.parametrize("name", ["gtfs.zip", "GTFS.zip", "feed.zip", "google_transit.zip", "gtfs/"])
def test_a_generically_named_input_takes_its_id_from_its_folder(tmp_path, name):
    from noriba.cli import _derived_id

    assert _derived_id(str(tmp_path / "Minato Bus (2026)" / name), is_url=False) == "minato-bus-2026"
    assert _derived_id(f"https://example.jp/opendata/Minato_Bus/{name}?v=2", is_url=True) == "minato-bus"


def test_ingest_of_gtfs_zip_publishes_it_under_its_folders_name(tmp_path, capsys):
    src = _zip_feed(tmp_path / "in" / "Minato Bus (2026)" / "gtfs.zip")
    rc = main(["--home", str(tmp_path / "h"), "ingest", str(src), "--no-export", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.startswith("minato-bus-2026: version "), err


def test_ingest_of_a_named_zip_keeps_the_file_name_as_id(tmp_path, capsys):
    src = _zip_feed(tmp_path / "in" / "downloads" / "Kita Coast.zip")
    rc = main(["--home", str(tmp_path / "h"), "ingest", str(src), "--no-export", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.startswith("kita-coast: version "), err


def test_ingest_of_a_generic_name_with_an_unusable_folder_name_still_gets_a_safe_id(tmp_path, capsys):
    src = _zip_feed(tmp_path / "in" / "..." / "gtfs.zip")
    rc = main(["--home", str(tmp_path / "h"), "ingest", str(src), "--no-export", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    fid = err.split(":", 1)[0]
    assert fid and fid not in ("", ".", "..") and all(c.isalnum() or c == "-" for c in fid), err


def test_run_of_a_realtime_or_trip_spec_names_the_command_that_runs_it(tmp_path, capsys, monkeypatch):
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    (specs / "trips").mkdir()
    (specs / "feeds" / "town-bus-rt.yml").write_text(
        "id: town-bus-rt\nkind: gtfs-rt\ntimezone: Asia/Tokyo\n"
        "realtime: {static: town-bus, vehicle_positions: 'http://127.0.0.1:9/vp.pb'}\n", encoding="utf-8")
    (specs / "trips" / "town-taxi.yml").write_bytes((ROOT / "specs" / "trips" / "minato-taxi.yml").read_bytes().replace(
        b"id: minato-taxi", b"id: town-taxi"))
    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    for fid, expect in (("town-bus-rt", "`noriba rt archive town-bus-rt`"), ("town-taxi", "`noriba trips town-taxi`"),
                        ("town-bus-r", "did you mean 'town-bus-rt'?")):
        assert main(["run", "--specs", str(specs), fid]) != 0
        err = capsys.readouterr().err
        assert expect in err, err
        assert "Traceback" not in err
