"""Every real feed beside the project ingests end to end, loses no row, and round-trips its text."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import SHARED, make_spec, shared

#: its module fixture ingests all 87 corpus feeds and the world feeds (~4.5 minutes on 2 cores): twice the suite's per-test limit
pytestmark = [pytest.mark.realdata, pytest.mark.slow, pytest.mark.timeout(1800)]


def _corpus() -> list[Path]:
    return sorted((SHARED / "gtfs/jp/corpus-2019/feeds").glob("*.zip")) if SHARED.exists() else []


def _world() -> list[Path]:
    if not SHARED.exists():
        return []
    w = SHARED / "gtfs/world"
    return sorted(w.glob("*/*.zip")) + sorted(p for p in (w / "partridge-fixtures").iterdir() if p.is_dir()) + [
        SHARED / "gtfs/jp" / n for n in ("kyoto-ksu-shuttle-v3", "mlit-sample-rinkobus", "muroran-donan-2017", "muroran-donan-2020")
    ]


def _feed_id(path: Path) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")[:60]


def _members(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    with zipfile.ZipFile(path) as zf:
        out = {}
        for i in zf.infolist():
            if not i.is_dir():
                out[i.filename.rsplit("/", 1)[-1]] = zf.read(i.filename)
        return out


def _independent_text(raw: bytes) -> str:
    """Decode like a careful person would: BOM-aware UTF-8, then CP932, then UTF-8 with Latin-1 bytes."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp932")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def _records(raw: bytes) -> list[list[str]]:
    """Return the non-blank CSV records of a file, header first, read with Python's csv module."""
    return [r for r in csv.reader(io.StringIO(_independent_text(raw), newline="")) if r]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    shared("gtfs")
    ws = Workspace(tmp_path_factory.mktemp("real") / "home").ensure()
    results = {}
    for path in _corpus() + _world():
        # nothing blocks: these tests follow every feed through to its export, errors and all
        spec = make_spec(_feed_id(path), path, policy={"block": []})
        results[path] = run_feed(spec, ws, contracts=False)  # contracts are tested in tests/warehouse/test_contracts.py
    return ws, results


def _meta(ws, feed_id, version):
    import duckdb

    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        files = con.execute("SELECT files FROM meta.feed_versions WHERE feed_id = ? AND feed_version = ?", [feed_id, version]).fetchall()[0][0]
        quarantined = dict(con.execute(
            "SELECT file, count(*) FROM quality.quarantine WHERE feed_id = ? AND feed_version = ? GROUP BY file", [feed_id, version]).fetchall())
        return json.loads(files), quarantined, con.execute(
            "SELECT code, count(*) FROM quality.notices WHERE feed_id = ? AND feed_version = ? GROUP BY code", [feed_id, version]).fetchall()
    finally:
        con.close()


def test_all_87_corpus_feeds_and_world_feeds_ingest(ingested):
    ws, results = ingested
    assert len([p for p in results if "corpus-2019" in str(p)]) == 87
    assert all(r["status"] in ("new", "published") for r in results.values())


def test_rows_in_equal_accepted_plus_quarantined_for_every_file(ingested):
    ws, results = ingested
    checked = 0
    for path, r in results.items():
        files, quarantined, _ = _meta(ws, r["feed_id"], r["feed_version"])
        members = _members(path)
        for name, info in files.items():
            records = _records(members[name])
            rows_in = max(len(records) - 1, 0)
            assert info["rows_in"] == rows_in, f"{path.name}/{name}: counted {rows_in} rows, pipeline saw {info['rows_in']}"
            assert info["rows_in"] == info["accepted"] + info["quarantined"], f"{path.name}/{name}"
            assert quarantined.get(name, 0) == info["quarantined"], f"{path.name}/{name}: quarantine table disagrees"
            checked += 1
    assert checked > 900


def _text_columns(table_name: str) -> set[str]:
    from transforms.schema import load_schema

    t = load_schema().tables.get(table_name[:-4])
    return {f.name for f in t.fields if f.sql_type == "VARCHAR"} if t else set()


def test_japanese_text_round_trips_byte_for_byte_through_the_export(ingested):
    """Every text value of every accepted row comes back identical in the exported zip."""
    ws, results = ingested
    compared = 0
    for path, r in results.items():
        if "/jp/" not in str(path):
            continue
        files, _, _ = _meta(ws, r["feed_id"], r["feed_version"])
        members = _members(path)
        with zipfile.ZipFile(r["exports"]["gtfs_zip"]) as zf:
            exported = {n: zf.read(n) for n in zf.namelist()}
        for name, info in files.items():
            if not info["known"] or info["quarantined"]:
                continue
            if not info["header"]:  # an empty file (no header) is reported and not re-exported
                assert name not in exported
                continue
            src = _records(members[name])
            out = [row for row in csv.reader(io.StringIO(exported[name].decode("utf-8"), newline="")) if row]
            src_header = [h.strip().lstrip("\ufeff") for h in src[0]]
            for col in _text_columns(name) & set(src_header):
                i, j = src_header.index(col), out[0].index(col)
                assert [row[i] for row in src[1:]] == [row[j] for row in out[1:]], f"{path.name}/{name}/{col}"
                compared += 1
    assert compared > 1000


def test_trondheim_latin1_mixed_bom_and_empty_feeds_give_notices_not_failures(ingested):
    ws, results = ingested
    by_name = {p.name: r for p, r in results.items()}
    _, _, codes = _meta(ws, by_name["region-nord-v2"]["feed_id"], by_name["region-nord-v2"]["feed_version"])
    assert dict(codes).get("non_utf8_bytes", 0) > 0
    mixed = [r for p, r in results.items() if "corpus-2019" in str(p)]
    assert any(dict(_meta(ws, r["feed_id"], r["feed_version"])[2]).get("mixed_bom") for r in mixed)
    _, _, codes = _meta(ws, by_name["empty"]["feed_id"], by_name["empty"]["feed_version"])
    assert "empty_file" in dict(codes) or "missing_required_file" in dict(codes)
