"""`noriba rt ingest` and `noriba rt parse`: every real capture goes to the raw archive, the lake and schema rt, rows reconciled."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq

from noriba import rt
from noriba.cli import main
from tests.transforms.gtfs_rt.test_parse import captures, protobuf_rows
from transforms.gtfs_rt.parse import ROW_TABLES

TABLES = {t: t.removeprefix("rt_") for t in ROW_TABLES}


def _warehouse_rows(ws, feed_id: str) -> dict[str, int]:
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        return {t: int(con.execute(f"SELECT coalesce(sum(snapshots), 0) FROM rt.{name} WHERE feed_id = ?", [feed_id]).fetchall()[0][0])
                for t, name in TABLES.items()}
    finally:
        con.close()


def test_every_capture_ingests_with_rows_reconciled_in_the_warehouse(ws, capsys):
    for i, path in enumerate(captures()):
        fid = f"cap-{i}"
        assert main(["--home", str(ws.home), "rt", "ingest", str(path), "--feed", fid, "--static", "some-static"]) == 0
        want = protobuf_rows(path.read_bytes())
        assert _warehouse_rows(ws, fid) == want, path.name
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM rt.quarantine").fetchall() == [(0,)]
    assert con.execute("SELECT count(DISTINCT feed_id), min(static_feed_id) FROM rt.feeds").fetchall() == [(len(captures()), "some-static")]
    assert con.execute("SELECT count(*) FROM rt.snapshots").fetchall() == [(len(captures()),)]
    assert con.execute("SELECT count(*), count(header_timestamp) FROM rt.fetches").fetchall()[0][0] == len(captures())


def test_a_folder_ingests_its_snapshots_and_quarantines_a_file_that_is_not_one(ws, tmp_path):
    folder = tmp_path / "caps"
    folder.mkdir()
    src = [p for p in captures() if p.parent.name == "nyct-subway-2019"][:4]
    for p in src:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.pb").write_bytes(src[0].read_bytes()[:-7])
    (folder / "notes.txt").write_text("not a snapshot")  # documentation in the folder is skipped
    res = rt.ingest(ws, "nyct", [folder])
    assert res["files"] == 5
    out = rt.parse_feed(ws, "nyct")
    assert sum(h["quarantined"] for h in out["parsed"]) == 1
    want = {t: sum(protobuf_rows(p.read_bytes())[t] for p in src) for t in ROW_TABLES}
    assert _warehouse_rows(ws, "nyct") == want
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    (reason,) = con.execute("SELECT reason FROM rt.quarantine WHERE feed_id = 'nyct'").fetchone()
    assert "truncated" in reason or "damaged" in reason


def test_a_rerun_replaces_the_hour_whole(ws):
    path = next(p for p in captures() if p.name == "feed_1_weekday.protobuf")
    rt.ingest(ws, "nyct", [path])
    first = rt.parse_feed(ws, "nyct")
    assert rt.pending_hours(ws, "nyct") == []
    assert rt.parse_feed(ws, "nyct")["hours"] == []  # nothing new
    again = rt.parse_feed(ws, "nyct", hours=first["hours"])
    assert again["published"] == first["published"]
    assert _warehouse_rows(ws, "nyct") == protobuf_rows(path.read_bytes())
    date, hour = first["hours"][0].split("T")
    part = ws.lake / "rt_stop_time_updates" / "feed_id=nyct" / f"date={date}" / f"hour={hour}"
    assert [p.name for p in part.iterdir()] == ["part-0.parquet"]
    assert not [p for p in part.parent.iterdir() if p.name.startswith(".")]
    assert pq.read_table(part / "part-0.parquet").num_rows == protobuf_rows(path.read_bytes())["rt_stop_time_updates"]


def test_ingest_of_the_same_file_twice_archives_it_once(ws):
    path = next(p for p in captures() if p.name == "septa.pbf")
    assert rt.ingest(ws, "septa", [path])["archived"] == 1
    assert rt.ingest(ws, "septa", [path])["archived"] == 0


def test_cli_names_a_missing_path_and_a_bad_hour(ws, capsys):
    assert main(["--home", str(ws.home), "rt", "ingest", "/nonexistent/x.pb", "--feed", "x"]) == 2
    assert "/nonexistent/x.pb: no such file or folder" in capsys.readouterr().err
    path = next(p for p in captures() if p.name == "septa.pbf")
    assert main(["--home", str(ws.home), "rt", "ingest", str(path), "--feed", "septa", "--no-parse"]) == 0
    assert main(["--home", str(ws.home), "rt", "parse", "septa", "--hour", "yesterday"]) == 2
    assert "is not an hour; write it as YYYY-MM-DDTHH" in capsys.readouterr().err
    assert main(["--home", str(ws.home), "rt", "parse"]) == 0
    assert "1 snapshot(s), 0 quarantined" in capsys.readouterr().err


def test_a_snapshot_archived_while_its_hour_is_parsed_makes_the_hour_pending_again(ws, monkeypatch):
    paths = [p for p in captures() if p.name in ("feed_1_weekday.protobuf", "feed_2_weekday.protobuf")]
    rt.ingest(ws, "nyct", paths[:1])
    real = rt._hour_mark
    calls = []

    def mark_then_archive(folder):
        calls.append(folder)
        m = real(folder)
        if len(calls) == 1:  # parse_hour took its mark; a fetch lands right after
            import os
            import time

            time.sleep(0.01)
            os.utime(folder)
        return m

    monkeypatch.setattr(rt, "_hour_mark", mark_then_archive)
    first = rt.parse_feed(ws, "nyct")
    monkeypatch.setattr(rt, "_hour_mark", real)
    assert rt.pending_hours(ws, "nyct") == first["hours"]
