import subprocess
import sys

import pyarrow as pa

from tests.conftest import ROOT
from transforms.arrowrows import rows_table

SCHEMA = pa.schema([("file", pa.string()), ("line", pa.int64()), ("raw", pa.string()), ("blob", pa.binary())])


def test_rows_keep_their_values_types_and_nulls():
    rows = [{"file": "stops.txt", "line": 2, "raw": '{"stop_name": "髙﨑①"}', "blob": b"\x00\xff"},
            {"file": "trips.txt", "line": None, "raw": None}]  # a missing key is null
    t = rows_table(rows, SCHEMA)
    assert t.schema == SCHEMA
    assert t.to_pylist() == [rows[0], {**rows[1], "blob": None}]


def test_no_rows_give_an_empty_table_of_the_schema():
    t = rows_table([], SCHEMA)
    assert t.num_rows == 0 and t.schema == SCHEMA


def test_schema_is_inferred_from_the_first_row_with_none_as_text():
    t = rows_table([{"n": 3, "ok": True, "x": 1.5, "s": "a", "none": None}])
    assert [str(ty) for ty in t.schema.types] == ["int64", "bool", "double", "string", "string"]


def test_ingesting_a_feed_does_not_import_pandas(tmp_path):
    # pandas costs 0.3 s cold, a third of a small feed's ingest: the read, type, check and lake path must not need it
    code = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from tests.conftest import MINI_FEED, make_spec, write_feed
from warehouse.workspace import Workspace
from noriba import pipeline
ws = Workspace(Path({str(tmp_path / 'home')!r})); ws.ensure()
spec = make_spec("mini", write_feed(Path({str(tmp_path / 'feed')!r}), {{**MINI_FEED, "extra.txt": "a,b\\n1,2\\n"}}))
staged = pipeline.parse_validate(spec, ws, pipeline.fetch(spec, ws))
pipeline.publish_step(ws, pipeline.write_lake(ws, staged))
print("pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
