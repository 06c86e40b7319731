"""Helpers for trip tests: stage authored files through a spec section, return the staged result and tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest


def stage_files(tmp_path: Path, files: dict[str, bytes], section: dict, *, timezone: str = "Asia/Tokyo", encoding=None,
                zones=None, municipalities=None, municipality_name=None):
    """Return (Staged, connection with views fct / quarantine) after staging ``files`` through the ``trips:`` section."""
    from transforms.trips.spec import check_trips
    from transforms.trips.stage import stage_source

    src = tmp_path / "src"
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    opts, problems = check_trips({"files": list(files), **section}, where="test.yml")
    assert not problems, problems
    out = tmp_path / "out"
    staged = stage_source(sorted(src / n for n in files), root=src, opts=opts, source_id="t", feed_version="v", timezone=timezone,
                          out_dir=out, encoding=encoding, zones=zones, municipalities=municipalities,
                          municipality_name=municipality_name)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    parts = list((out / "fct_trips").glob("month=*/*.parquet"))
    if parts:
        con.execute(f"CREATE VIEW fct AS SELECT * FROM read_parquet('{out}/fct_trips/month=*/*.parquet', hive_partitioning=false)")
    con.execute(f"CREATE VIEW quarantine AS SELECT * FROM read_parquet('{out}/quarantine.parquet')")
    return staged, con


@pytest.fixture
def stage(tmp_path):
    def run(files, section, **kw):
        return stage_files(tmp_path, files, section, **kw)
    return run
