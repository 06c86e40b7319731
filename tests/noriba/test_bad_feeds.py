"""Every deliberately broken feed either ingests with notices or fails with one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED, shared

pytestmark = pytest.mark.realdata

BAD = sorted(p for p in (SHARED / "gtfs/bad-transitfeed").iterdir() if p.name != "PROVENANCE.txt") if SHARED.exists() else []

#: the notice each folder's name describes (the full rule set is the validation issue's; these are structural)
EXPECTED = {
    "bad_utf8": "non_utf8_bytes",
    "utf16": "non_utf8_encoding",
    "contains_null": "invalid_character",
    "duplicate_stop_sequence": "duplicate_key",
    "duplicate_schedule_id": "duplicate_key",
    "extra_row_cells": "invalid_row_length",
    "missing_row_cells": "invalid_row_length",
    "missing_agency": "missing_required_file",
    "missing_stops": "missing_required_file",
    "missing_routes": "missing_required_file",
    "missing_trips": "missing_required_file",
    "missing_stop_times": "missing_required_file",
    "missing_calendar": "foreign_key_violation",
    "missing_column": "missing_required_column",
    "undefined_stop": "foreign_key_violation",
    "unknown_file": "unknown_file",
    "unrecognized_columns": "unknown_column",
    "empty_file": "empty_file",
    "invalid_route_agency": "foreign_key_violation",
    "bad_date_format": "invalid_date",
}


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_feed_gives_notices_or_one_clear_error(path, tmp_path):
    shared("gtfs/bad-transitfeed")
    proc = subprocess.run(
        [sys.executable, "-m", "noriba.cli", "--home", str(tmp_path / "h"), "ingest", "--quiet", "--no-export", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode in (0, 1, 2), proc.stderr  # 1: published but blocked by policy; 2: not readable
    if proc.returncode == 2:
        errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        assert len(errors) == 1 and str(path.name) in errors[0], proc.stderr
        return
    if path.name in EXPECTED:
        from warehouse.workspace import Workspace
        from warehouse.publish import connect

        con = connect(Workspace(tmp_path / "h"), read_only=True)
        codes = {r[0] for r in con.execute("SELECT DISTINCT code FROM quality.notices").fetchall()}
        con.close()
        assert EXPECTED[path.name] in codes, f"{path.name}: got {sorted(codes)}"
