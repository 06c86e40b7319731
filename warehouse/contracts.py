"""Run the canonical tables' data contracts (GX suites from transforms/contracts.py) on one published version.

Each table of the version is read from its lake Parquet partition (the source of truth that
publish copies into the warehouse) by one of two routes:

- ``duckdb``: GX's SQL engine on an in-memory DuckDB with one view per table over the Parquet
  partition; every metric is a SQL query pushed down to DuckDB, only aggregates come back
  (needs the workaround in warehouse/gx_duckdb.py). With ``source="warehouse"`` the views read
  the version's rows of the warehouse tables instead (attached read-only, under the publish lock);
- ``pandas``: GX's pandas engine, one batch per table partition (the whole partition: key
  uniqueness cannot be proved batch by batch).

``auto`` is ``duckdb`` (faster and lighter, see bench/README.md). The results go to the warehouse
table quality.expectation_results (the version's earlier results are replaced) and to GX's
results store, from which GX Data Docs (static HTML) are rendered under NORIBA_HOME/reports/data_docs/.

Contracts run on what changed: every stored row carries the fingerprint of what was checked (the
table's contract, the GX version, the route and engine, and the bytes of the lake partition). A table whose
fingerprint already has stored GX results (an earlier run of the feed, of any version) reuses them instead of
running GX again; ``reused_from`` names the GX run (feed@version, its GX run name) that produced them and
whose validation page is in Data Docs. If every table is reused, then GX is not even imported.

Two engines evaluate the suites on the DuckDB route (``engine``, or ``NORIBA_CONTRACTS_ENGINE``):

- ``sql`` (default): warehouse/contracts_sql.py computes each table's expectations in one DuckDB
  query, with GX's arithmetic and result records, without importing GX; an expectation it does not
  support (or a mismatch GX must describe) goes to GX, for that expectation only;
- ``gx``: GX's own SQL engine on every expectation (the reference; slower: its per-expectation
  Python costs ~30 ms an expectation and importing it seconds, see docs/great-expectations.md).

Both write the run's validation results in GX's results store (reports/gx/validations, GX's JSON),
so Data Docs are rendered later from stored results: ``data_docs=True`` renders now,
``"later"`` leaves them for :func:`finish_data_docs` (``noriba docs``, or once at the end of a run).
"""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import logging
import math
import os
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from warehouse.txn import transaction
from warehouse.workspace import Workspace
from transforms.canonical import lit, q
from transforms.contracts import CONTRACT_RULES, build_suite, partition_columns, suite_name, table_contracts
from transforms.schema import Table, load_schema
from warehouse.publish import connect, current_file, publish_lock
from warehouse.runstate import fault_point

ROUTES = ("auto", "duckdb", "pandas")
SOURCES = ("lake", "warehouse")
#: Who evaluates the expectations on the DuckDB route: ``sql`` (contracts_sql, GX only where it must) or ``gx``.
ENGINES = ("auto", "sql", "gx")
ENGINE_ENV = "NORIBA_CONTRACTS_ENGINE"
#: GX result format: SUMMARY keeps counts and up to 20 example bad values for Data Docs.
RESULT_FORMAT = "SUMMARY"
RESULT_COLUMNS = [
    ("feed_id", "VARCHAR"), ("feed_version", "VARCHAR"), ("table_name", "VARCHAR"), ("suite", "VARCHAR"),
    ("rule", "VARCHAR"), ("expectation_type", "VARCHAR"), ("column_name", "VARCHAR"), ("kwargs", "VARCHAR"),
    ("success", "BOOLEAN"), ("element_count", "BIGINT"), ("unexpected_count", "BIGINT"), ("unexpected_percent", "DOUBLE"),
    ("observed_value", "VARCHAR"), ("partial_unexpected", "VARCHAR"), ("exception", "VARCHAR"), ("route", "VARCHAR"),
    ("source", "VARCHAR"), ("run_at", "VARCHAR"), ("fingerprint", "VARCHAR"), ("reused_from", "VARCHAR"),
]
#: Files whose text decides how a contract becomes GX expectations (a change to one re-runs every table).
_CODE = (Path(__file__), Path(__file__).with_name("contracts_sql.py"),
         Path(__file__).resolve().parent.parent / "transforms" / "contracts.py")


def _quiet_gx() -> None:
    """Turn off GX usage statistics and quiet its logger (its progress bars are off in gx_context's config)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


def ensure_contract_tables(con) -> None:
    """Create quality.expectation_results when missing (new columns are added). Call under publish_lock."""
    con.execute("CREATE SCHEMA IF NOT EXISTS quality")
    con.execute(f"CREATE TABLE IF NOT EXISTS quality.expectation_results ({', '.join(f'{q(c)} {t}' for c, t in RESULT_COLUMNS)})")
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'quality' AND table_name = 'expectation_results'").fetchall()}
    for c, t in RESULT_COLUMNS:
        if c not in have:
            con.execute(f"ALTER TABLE quality.expectation_results ADD COLUMN {q(c)} {t}")


def gx_context(ws: Workspace):
    """Return an ephemeral GX context whose validation results and Data Docs live under NORIBA_HOME/reports (offline)."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

    gx_dir = ws.reports.resolve() / "gx"  # GX store backends need absolute paths

    def fs(sub: str) -> dict:
        return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(gx_dir / sub)}

    config = DataContextConfig(
        stores={
            "expectations_store": {"class_name": "ExpectationsStore", "store_backend": fs("expectations")},
            "validation_results_store": {"class_name": "ValidationResultsStore", "store_backend": fs("validations")},
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": {"class_name": "InMemoryStoreBackend"}},
            "validation_definition_store": {"class_name": "ValidationDefinitionStore",
                                            "store_backend": {"class_name": "InMemoryStoreBackend"}},
        },
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        data_docs_sites={"noriba": {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(ws.reports.resolve() / "data_docs")},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def version_tables(ws: Workspace, feed_id: str, feed_version: str) -> list[tuple[Table, object]]:
    """Return (table, Parquet partition file or None) for every table the version has, plus required tables it lacks."""
    out = []
    for t in load_schema().tables.values():
        part = ws.lake_partition(f"gtfs_{t.name}", feed_id, feed_version) / "part-0.parquet"
        if part.exists():
            out.append((t, part))
        elif t.required:
            out.append((t, None))  # validated as an empty table: its has_rows contract fails
    return out


def _view_statements(ws: Workspace, feed_id: str, feed_version: str, tables, *, source: str) -> list[str]:
    """Return the SQL that makes one view per table of the version (lake partition, warehouse rows, or empty when absent)."""
    out = [f"ATTACH {lit(str(current_file(ws)))} AS wh (READ_ONLY)"] if source == "warehouse" else []
    for t, part in tables:
        if part is not None and source == "warehouse":
            body = (f"SELECT * EXCLUDE (feed_id, feed_version) FROM wh.gtfs.{q(t.name)} "
                    f"WHERE feed_id = {lit(feed_id)} AND feed_version = {lit(feed_version)}")
        elif part is not None:
            body = f"SELECT * FROM read_parquet({lit(str(part))}, hive_partitioning=false)"
        else:
            body = "SELECT " + ", ".join(f"CAST(NULL AS {typ}) AS {q(col)}" for col, typ in partition_columns(t)) + " WHERE false"
        out.append(f"CREATE VIEW {q(t.name)} AS {body}")
    return out


@contextmanager
def _duckdb_batches(ctx, ws: Workspace, feed_id: str, feed_version: str, tables, *, source: str):
    """Yield {table: (batch definition, batch parameters)} over DuckDB views of the version's tables; close DuckDB after.

    The views read the lake partitions (``source="lake"``) or the version's rows of the warehouse
    tables (``"warehouse"``, attached read-only: hold the publish lock meanwhile).
    """
    from warehouse.gx_duckdb import dispose_engines, memory_url

    ds = ctx.data_sources.add_sql(f"{feed_id}-duckdb", connection_string=memory_url())
    try:
        with ds.get_engine().connect() as c:
            for sql in _view_statements(ws, feed_id, feed_version, tables, source=source):
                c.exec_driver_sql(sql)
        out = {}
        for t, _ in tables:
            asset = ds.add_table_asset(t.name, table_name=t.name)
            out[t.name] = (asset.add_batch_definition_whole_table("version"), None)
        yield out
    finally:
        dispose_engines(ds)


def read_partition_pandas(table: Table, part):
    """Return one version's partition of ``table`` as a pandas DataFrame with nullable Int32/Float64 and str columns."""
    import pandas as pd
    import pyarrow.parquet as pq

    mapper = {pa.int32(): pd.Int32Dtype(), pa.float64(): pd.Float64Dtype()}.get
    if part is None:
        types = {"INTEGER": pa.int32(), "DOUBLE": pa.float64(), "DATE": pa.date32(), "VARCHAR": pa.string()}
        arrow = pa.schema([(c, types[t]) for c, t in partition_columns(table)]).empty_table()
    else:
        arrow = pq.read_table(part)
    return arrow.to_pandas(types_mapper=mapper)


@contextmanager
def _pandas_batches(ctx, ws: Workspace, feed_id: str, feed_version: str, tables, *, source: str):
    """Yield {table: (batch definition, batch parameters loader)}; each table is read only when validated."""
    ds = ctx.data_sources.add_pandas(f"{feed_id}-pandas")
    out = {}
    for t, part in tables:
        bd = ds.add_dataframe_asset(t.name).add_batch_definition_whole_dataframe("version")
        out[t.name] = (bd, lambda t=t, part=part: {"dataframe": read_partition_pandas(t, part)})
    yield out


def _plain(value):
    """Return a numpy/pandas scalar as the Python value it holds (pandas NA as null, dates and other objects as text)."""
    if hasattr(value, "item"):
        return value.item()
    if type(value).__name__ == "NAType":
        return None
    return str(value)


def _json(value) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=_plain)


def _exception_message(info) -> str | None:
    """Return GX's error message of an expectation that could not be evaluated, else None.

    GX gives either one {raised_exception, exception_message, ...} dict or one such dict per metric.
    """
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    msgs = [str(v.get("exception_message")) for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    return "; ".join(msgs) or None


def _row(*, feed_id: str, feed_version: str, table: str, rule: str | None, expectation_type: str, kwargs: dict,
         success: bool, result: dict, exception: str | None, route: str, source: str, run_at: str) -> dict:
    """Return one quality.expectation_results row (without fingerprint and reused_from) of one expectation's result."""
    column = kwargs.get("column") or (",".join(kwargs["column_list"]) if kwargs.get("column_list") else None)
    return {
        "feed_id": feed_id, "feed_version": feed_version, "table_name": table, "suite": suite_name(table),
        "rule": rule, "expectation_type": expectation_type, "column_name": column, "kwargs": _json(kwargs),
        "success": bool(success), "element_count": result.get("element_count"), "unexpected_count": result.get("unexpected_count"),
        "unexpected_percent": result.get("unexpected_percent"), "observed_value": _json(result.get("observed_value")),
        "partial_unexpected": _json(result.get("partial_unexpected_list")),
        "exception": exception, "route": route, "source": source, "run_at": run_at,
    }


def _gx_row(r, **where) -> dict:
    """Return the row of one GX ExpectationValidationResult ``r``."""
    cfg = r.expectation_config
    return _row(**where, rule=(cfg.meta or {}).get("rule"), expectation_type=cfg.type,
                kwargs={k: v for k, v in cfg.kwargs.items() if k != "batch_id"}, success=bool(r.success),
                result=r.result or {}, exception=_exception_message(r.exception_info))


def _domain_order(contracts) -> list[int]:
    """Return contract indexes in the order GX 1.24 reports them: the column set, compound keys, other table-wide
    expectations, then each column's expectations (columns in suite order, expectations in suite order).
    """
    first: dict = {}
    keys = []
    for i, c in enumerate(contracts):
        if c.kwargs.get("column"):
            keys.append((1, first.setdefault(c.kwargs["column"], i), i))
        else:
            keys.append((0, 0 if c.expectation_type == "expect_table_columns_to_match_set" else 1 if c.kwargs.get("column_list") else 2, i))
    return [i for _, _, i in sorted(keys)]


def _batch_id(feed_id: str, table: str) -> str:
    """Return GX's batch id of a table on the DuckDB route (datasource ``<feed>-duckdb``, asset ``<table>``)."""
    return f"{feed_id}-duckdb-{table}"


def write_gx_result(ws: Workspace, *, feed_id: str, feed_version: str, table: str, run_time: datetime,
                    entries: list[dict]) -> Path:
    """Return the file of one table's validation result after writing it in GX's results store (GX 1.x JSON).

    ``entries`` are GX ExpectationValidationResult dicts. Data Docs render it like a result GX stored
    itself (tests/warehouse/test_contracts_sql.py renders one), so a run of the SQL engine needs no GX.
    """
    bid = _batch_id(feed_id, table)
    ok = sum(1 for e in entries if e["success"])
    stamp = run_time.astimezone(timezone.utc).isoformat()
    doc = {
        "id": None, "success": ok == len(entries), "suite_name": suite_name(table), "suite_parameters": {},
        "statistics": {"evaluated_expectations": len(entries), "successful_expectations": ok,
                       "unsuccessful_expectations": len(entries) - ok,
                       "success_percent": ok / len(entries) * 100 if entries else None},
        "meta": {
            "active_batch_definition": {"batch_identifiers": {}, "data_asset_name": table, "data_connector_name": "fluent",
                                        "datasource_name": f"{feed_id}-duckdb"},
            "batch_markers": {"ge_load_time": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")},
            "batch_parameters": None,
            "batch_spec": {"batch_identifiers": {}, "data_asset_name": table, "schema_name": None, "table_name": table, "type": "table"},
            "checkpoint_id": None, "great_expectations_version": _gx_version(),
            "run_id": {"run_name": f"{feed_id}@{feed_version}", "run_time": stamp},
            "validation_id": str(uuid.uuid4()), "validation_time": stamp,
        },
        "results": entries,
    }
    path = (ws.reports.resolve() / "gx" / "validations" / Path(*suite_name(table).split(".")) / f"{feed_id}@{feed_version}"
            / run_time.strftime("%Y%m%dT%H%M%S.%fZ") / f"{bid}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # not indented: json's indenting encoder is pure Python (~5 ms a table); GX reads the file the same
    tmp.write_text(json.dumps(doc, ensure_ascii=False, default=_plain), encoding="utf-8")
    tmp.replace(path)
    return path


def _sql_entry(c, success: bool, result: dict, *, batch_id: str) -> dict:
    """Return the GX ExpectationValidationResult dict of an expectation the SQL engine evaluated."""
    from warehouse.contracts_sql import gx_kwargs

    return {"success": success, "result": result, "meta": {},
            "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None},
            "expectation_config": {"type": c.expectation_type, "kwargs": {**gx_kwargs(c), "batch_id": batch_id},
                                   "meta": {"rule": c.rule, "why": CONTRACT_RULES[c.rule]}, "id": str(uuid.uuid4()),
                                   "severity": "critical"}}


@lru_cache(maxsize=1)
def _gx_version() -> str:
    from importlib.metadata import version

    return version("great-expectations")


@lru_cache(maxsize=1)
def _code_digest() -> bytes:
    """Return the SHA-256 of the code files that turn contracts into results (read once per process)."""
    h = hashlib.sha256()
    for f in _CODE:
        h.update(f.read_bytes())
    return h.digest()


def table_fingerprint(table: Table, part, *, route: str, engine: str = "gx") -> str:
    """Return the fingerprint of one table's contracts run: its contract, the code and GX version, the route and engine,
    the partition's bytes.

    Two runs with the same fingerprint give the same results (only run_at differs).
    """
    h = hashlib.sha256()
    contracts = [(c.rule, c.expectation_type, c.kwargs) for c in table_contracts(table, engine="sql" if route == "duckdb" else "pandas")]
    h.update(json.dumps([table.name, route, _gx_version(), contracts] + ([engine] if engine != "gx" else []),
                        default=str, sort_keys=True).encode())
    h.update(_code_digest())
    if part is None:
        h.update(b"\0absent")
    else:
        with open(part, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def reusable_results(ws: Workspace, feed_id: str, fingerprints: dict[str, str], *, con=None) -> dict[str, list[dict]]:
    """Return {table: stored result rows} for the tables whose fingerprint has stored results of the feed without errors.

    Rows come from one earlier GX run (the newest) of the fingerprint; ``reused_from`` names it.
    Only the feed's own runs are reused, so that every feed has its own GX validation pages.
    ``con``: the writer's connection the caller holds under the publish lock (else one is opened).
    """
    if not fingerprints or not ws.warehouse.exists():
        return {}
    with ExitStack() as held:
        if con is None:
            held.enter_context(publish_lock(ws))
            con = connect(ws, read_only=True)
            held.callback(con.close)
        if not _has_result_columns(current_file(ws)):  # else this process brought the table to RESULT_COLUMNS already
            have = {r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'quality' "
                "AND table_name = 'expectation_results'").fetchall()}
            if "fingerprint" not in have:
                return {}
        by_fp = {fp: t for t, fp in fingerprints.items()}
        cur = con.execute(
            "SELECT * FROM quality.expectation_results WHERE feed_id = ? AND fingerprint IN (SELECT unnest(?)) "
            "QUALIFY dense_rank() OVER (PARTITION BY fingerprint ORDER BY run_at DESC, feed_id, feed_version) = 1 "
            "AND count(exception) OVER (PARTITION BY fingerprint, feed_id, feed_version, run_at) = 0",
            [feed_id, list(by_fp)])
        names = [d[0] for d in cur.description]
        out: dict[str, list[dict]] = {}
        for r in cur.fetchall():
            row = dict(zip(names, r))
            out.setdefault(by_fp[row["fingerprint"]], []).append(row)
        return out


def has_results(ws: Workspace, feed_id: str, feed_version: str) -> bool:
    """Return True if the warehouse holds contract results of the version (its contracts step finished)."""
    if not ws.warehouse.exists():
        return False
    with publish_lock(ws):
        con = connect(ws, read_only=True)
        try:
            if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'quality' "
                           "AND table_name = 'expectation_results'").fetchall()[0][0]:
                return False
            return bool(con.execute("SELECT count(*) FROM quality.expectation_results WHERE feed_id = ? AND feed_version = ?",
                                    [feed_id, feed_version]).fetchall()[0][0])
        finally:
            con.close()


#: Writer files (path, inode) whose quality.expectation_results this process brought to RESULT_COLUMNS: a run of many
#: feeds checks the catalog once, not once per feed (the columns only ever grow; a replaced file has another inode).
_contract_tables_here: set[tuple[str, int]] = set()


def _has_result_columns(path: Path) -> bool:
    """Return whether this process brought the writer file ``path``'s quality.expectation_results to RESULT_COLUMNS (the
    catalog query it saves costs ~10 ms a feed on a warehouse of many tables)."""
    try:
        return (str(path), path.stat().st_ino) in _contract_tables_here
    except OSError:
        return False


def _ensure_contract_tables_once(con, path: Path) -> None:
    key = (str(path), path.stat().st_ino if path.exists() else -1)
    if key in _contract_tables_here:
        return
    ensure_contract_tables(con)
    if path.exists():
        _contract_tables_here.add((str(path), path.stat().st_ino))


def _insert_results(con, rows: list[dict]) -> None:
    """Insert ``rows`` into quality.expectation_results: one statement reading them as one JSON text (a parameter),
    since binding 20 parameters a row costs ~0.15 s a feed. Rows with a float JSON cannot hold (NaN, ±inf) go as plain
    parameters. Not an Arrow table from Python lists: that would import pandas (seconds)."""
    cols = [c for c, _ in RESULT_COLUMNS]
    floats = [c for c, t in RESULT_COLUMNS if t == "DOUBLE"]
    plain = [r for r in rows if any(isinstance(r[c], float) and not math.isfinite(r[c]) for c in floats)]
    as_json = [r for r in rows if not any(isinstance(r[c], float) and not math.isfinite(r[c]) for c in floats)] if plain else rows
    if as_json:
        shape = json.dumps([{c: t for c, t in RESULT_COLUMNS}])
        con.execute(f"INSERT INTO quality.expectation_results ({', '.join(q(c) for c in cols)}) "
                    f"SELECT {', '.join(f'r.{q(c)}' for c in cols)} FROM (SELECT unnest(from_json(?::JSON, {lit(shape)})) AS r)",
                    [json.dumps([{c: r[c] for c in cols} for r in as_json], ensure_ascii=False, allow_nan=False)])
    one = "(" + ", ".join("?" * len(cols)) + ")"
    for i in range(0, len(plain), 200):
        part = plain[i:i + 200]
        con.execute(f"INSERT INTO quality.expectation_results ({', '.join(q(c) for c in cols)}) VALUES "
                    + ", ".join([one] * len(part)), [r[c] for r in part for c in cols])


def store_results(ws: Workspace, feed_id: str, feed_version: str, rows: list[dict], *, con=None) -> None:
    """Replace the version's rows of quality.expectation_results with ``rows``, in one transaction under the publish lock.

    ``con``: the writer's connection (writable) the caller holds under the publish lock (else one is opened).
    """
    with ExitStack() as held:
        if con is None:
            held.enter_context(publish_lock(ws))
            con = connect(ws)
            held.callback(con.close)
        _ensure_contract_tables_once(con, current_file(ws))
        with transaction(con):
            con.execute("DELETE FROM quality.expectation_results WHERE feed_id = ? AND feed_version = ?", [feed_id, feed_version])
            _insert_results(con, rows)


@contextmanager
def _file_lock(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_data_docs(ws: Workspace, ctx, *, run_name: str | None = None, run_time: datetime | None = None) -> str:
    """Return the path of the Data Docs index after updating the site and the offline index (one builder at a time).

    If ``run_name`` and ``run_time`` are given, then only that run's validation pages, pages not
    rendered yet (runs with data_docs=False) and the suites are rendered (GX otherwise re-renders
    every stored validation: 4.9 s for 106 of them, growing with history, against 1.1 s for one
    version's 8), and the indexes are rebuilt.
    """
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    site = ws.reports / "data_docs" / "validations"
    with _file_lock(ws.reports / ".data_docs.lock"):
        if run_name is None:
            ctx.build_data_docs()
        else:
            keys = [k for k in ctx.validation_results_store.list_keys()
                    if (k.run_id.run_name == run_name and k.run_id.run_time == run_time)
                    or not site.joinpath(*k.to_tuple()).with_name(k.to_tuple()[-1] + ".html").exists()]
            suites = sorted({k.expectation_suite_identifier.name for k in keys})
            if not keys:  # nothing new to render (GX would take an empty list as "everything")
                write_offline_index(ws)
                return str(ws.reports / "data_docs" / "index.html")
            _ensure_suites(ws, ctx, suites)
            ctx.build_data_docs(resource_identifiers=[*keys, *(ExpectationSuiteIdentifier(name=n) for n in suites)])
        write_offline_index(ws)
    return str(ws.reports / "data_docs" / "index.html")


def _ensure_suites(ws: Workspace, ctx, names) -> None:
    """Store the suites ``names`` (gtfs.<table>) that GX's suites store lacks: the SQL engine evaluates them without storing them."""
    tables = load_schema().tables
    for name in names:
        table = name.split(".", 1)[1]
        if table in tables and not (ws.reports / "gx" / "expectations" / Path(*name.split("."))).with_suffix(".json").exists():
            ctx.suites.add_or_update(build_suite(tables[table], engine="sql"))


def write_offline_index(ws: Workspace) -> Path:
    """Return reports/data_docs/offline.html after writing it: every GX validation page, newest first, in plain HTML.

    GX's index.html lists validations with JavaScript loaded from CDNs, so offline it shows an
    empty list; its validation pages are plain HTML and readable offline (unstyled).
    """
    docs = ws.reports / "data_docs"
    store = ws.reports / "gx" / "validations"
    entries = []
    for f in store.rglob("*.json"):
        rel = f.relative_to(store).with_suffix(".html")
        if not (docs / "validations" / rel).exists():
            continue  # validated with data_docs=False: no page yet
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        run = d.get("meta", {}).get("run_id", {})
        st = d.get("statistics", {})
        entries.append((run.get("run_time", ""), run.get("run_name", ""), d.get("suite_name", ""), bool(d.get("success")),
                        st.get("evaluated_expectations", 0), st.get("unsuccessful_expectations", 0), rel.as_posix()))
    entries.sort(key=lambda e: (e[0], e[1], e[2]), reverse=True)
    rows = "\n".join(
        f"<tr class=\"{'ok' if ok else 'bad'}\"><td>{html.escape(rt[:19].replace('T', ' '))}</td><td>{html.escape(rn)}</td>"
        f"<td><a href=\"validations/{html.escape(link)}\">{html.escape(sn)}</a></td><td>{'pass' if ok else 'FAIL'}</td>"
        f"<td>{n}</td><td>{bad}</td></tr>"
        for rt, rn, sn, ok, n, bad, link in entries)
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Noriba data contracts</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
            "tr.bad td{background:#fde2e1}tr.ok td:nth-child(4){color:#176f2c}</style></head><body>"
            "<h1>Data contracts (Great Expectations validations)</h1>"
            "<p>One row per table of each feed version checked (run = feed@version), newest first. "
            "Each link opens GX's page of that validation.</p>"
            "<table><tr><th>run at (UTC)</th><th>run</th><th>suite</th><th>result</th><th>checks</th><th>failed</th></tr>"
            f"{rows}</table></body></html>\n")
    docs.mkdir(parents=True, exist_ok=True)
    out = docs / "offline.html"
    out.write_text(page, encoding="utf-8")
    return out


def _checked_route(ws: Workspace, feed_id: str, feed_version: str, route: str, source: str) -> str:
    """Return the route that ``route`` resolves to. If the route, the source or the version is unknown, then ValueError says so."""
    if route not in ROUTES:
        raise ValueError(f"unknown contracts route {route!r}; expected one of {', '.join(ROUTES)}")
    route = "duckdb" if route == "auto" else route
    if source not in SOURCES or (source == "warehouse" and route != "duckdb"):
        raise ValueError(f"unknown contracts source {source!r} for route {route}; the duckdb route reads "
                         f"{' or '.join(SOURCES)}, the pandas route the lake")
    if not (ws.lake_partition("meta_feed_versions", feed_id, feed_version) / "part-0.parquet").exists():
        raise ValueError(f"{feed_id}: no version {feed_version} in the lake at {ws.lake}; nothing to check")
    return route


def contracts_engine(engine: str = "auto") -> str:
    """Return the engine ``engine`` resolves to: ``auto`` is $NORIBA_CONTRACTS_ENGINE, else ``sql``. If unknown, then ValueError."""
    if engine == "auto":
        engine = os.environ.get(ENGINE_ENV) or "sql"
        where = f"{ENGINE_ENV}={engine!r}"
    else:
        where = repr(engine)
    if engine not in ENGINES or engine == "auto":
        raise ValueError(f"unknown contracts engine {where}; expected sql (DuckDB queries, GX where needed) or gx (GX on every expectation)")
    return engine


#: Rows above which a table's contract counts get a statement of their own (not side by side with the other tables').
ALONE_ROWS = 200_000


def _big_tables(tables, *, source: str) -> set[str]:
    """Return the names of ``tables`` ((table, lake partition or None)) to count alone: above ALONE_ROWS rows (the lake
    files' footers say), or every one when the source is not the lake."""
    import pyarrow.parquet as pq

    if source != "lake":
        return {t.name for t, _ in tables}
    out = set()
    for t, part in tables:
        try:
            if part is not None and pq.ParquetFile(part).metadata.num_rows > ALONE_ROWS:
                out.add(t.name)
        except Exception:  # noqa: BLE001 - unreadable footer: counted alone, where its own error is said
            out.add(t.name)
    return out


def _evaluate_sql(ws: Workspace, feed_id: str, feed_version: str, tables, contracts: dict, *, source: str, progress=None,
                  unique_keys: dict | None = None) -> dict:
    """Return {table: [(success, GX result dict) or None per contract]} of the SQL engine over views of the version's tables."""
    import duckdb

    from warehouse import scratch
    from warehouse.contracts_sql import evaluate_tables

    # the lake's views are TEMP views of a cursor of the process's scratch database (opening a database costs ~15 ms a
    # feed); the warehouse is ATTACHed, which is the whole database's: a database of its own
    con = scratch.cursor() if source == "lake" else duckdb.connect()
    try:
        for sql in _view_statements(ws, feed_id, feed_version, tables, source=source):
            con.execute(sql.replace("CREATE VIEW ", "CREATE TEMP VIEW ", 1) if source == "lake" else sql)
        if progress:
            progress(f"{feed_id}: contracts of {len(tables)} tables (sql)")
        columns: dict[str, dict[str, str]] | None = None
        if source == "lake":  # the TEMP views' columns as DESCRIBE gives them, in one query (a DESCRIBE a view: ~2 ms)
            columns = {}
            for view, col, typ in con.execute("SELECT table_name, column_name, data_type FROM duckdb_columns() "
                                              "WHERE database_name = 'temp' ORDER BY table_name, column_index").fetchall():
                columns.setdefault(view, {})[col] = typ
        answers = evaluate_tables(con, [(t.name, contracts[t.name], dict(partition_columns(t)), (unique_keys or {}).get(t.name))
                                        for t, _ in tables], alone=_big_tables(tables, source=source), columns=columns)
        return {t.name: a for (t, _), a in zip(tables, answers)}
    finally:
        con.close()


def _validate_gx(ws: Workspace, feed_id: str, feed_version: str, tables, todo: dict[str, list[int]], *, route: str,
                 source: str, run_id, progress=None):
    """Return (GX context, {table: GX results}) of GX validating only the expectations ``todo`` names ({table: contract indexes})."""
    from great_expectations import ValidationDefinition

    ctx = gx_context(ws)
    engine = "sql" if route == "duckdb" else "pandas"
    out = {}
    batches = _duckdb_batches if route == "duckdb" else _pandas_batches
    with ExitStack() as stack:
        if source == "warehouse":
            stack.enter_context(publish_lock(ws))  # no publisher may write the file while it is attached
        by_table = stack.enter_context(batches(ctx, ws, feed_id, feed_version, tables, source=source))
        for t, _ in tables:
            if progress:
                progress(f"{feed_id}: contracts of {t.name} ({route}, GX)")
            full = build_suite(t, engine=engine)
            suite = ctx.suites.add_or_update(build_suite(t, engine=engine, only=todo[t.name]))
            bd, params = by_table[t.name]
            vd = ctx.validation_definitions.add(ValidationDefinition(name=f"{feed_id}.{feed_version}.{t.name}", data=bd, suite=suite))
            out[t.name] = vd.run(batch_parameters=params() if params else None, result_format=RESULT_FORMAT, run_id=run_id).results
            if len(todo[t.name]) < len(full.expectations):
                ctx.suites.add_or_update(full)  # the suites store (and Data Docs) keep the whole contract
    return ctx, out


def validate_version(ws: Workspace, feed_id: str, feed_version: str, *, route: str = "auto", progress=None,
                     tables: list[str] | None = None, source: str = "lake", engine: str = "auto",
                     fingerprints: dict[str, str] | None = None, unique_keys: dict | None = None) -> tuple[list[dict], object]:
    """Return (result rows, GX context or None) of the contracts run on one version's tables (or only ``tables``).

    ``source`` is where the DuckDB route reads: the lake partitions (default, no lock) or the
    warehouse (under the publish lock); the pandas route reads the lake. ``engine`` (DuckDB route)
    is ``sql`` (one query per table; GX only for what SQL does not support) or ``gx``; the pandas
    route is always GX. The results go to GX's results store (for Data Docs), not to the
    warehouse. No reuse: every table is evaluated. ``fingerprints`` ({table: table_fingerprint}) saves hashing the
    partitions again when the caller has them. ``unique_keys`` ({table: key columns}): tables whose rows the parse of this
    process deduplicated on that key (transforms.canonical.Canonical.unique_keys), so a uniqueness expectation on exactly
    those columns has no unexpected row without a query.
    """
    route = _checked_route(ws, feed_id, feed_version, route, source)
    engine = contracts_engine(engine) if route == "duckdb" else "gx"
    only = set(tables) if tables is not None else None
    tables = [(t, p) for t, p in version_tables(ws, feed_id, feed_version) if only is None or t.name in only]
    run_at = datetime.now(timezone.utc).replace(microsecond=0)  # = the stored run_at, which finds the run's GX keys
    run_at_s = run_at.isoformat(timespec="seconds")
    contracts = {t.name: table_contracts(t, engine="sql" if route == "duckdb" else "pandas") for t, _ in tables}
    sql = (_evaluate_sql(ws, feed_id, feed_version, tables, contracts, source=source, progress=progress, unique_keys=unique_keys)
           if engine == "sql" else {})
    todo = {t.name: [i for i in range(len(contracts[t.name])) if t.name not in sql or sql[t.name][i] is None] for t, _ in tables}
    todo = {k: v for k, v in todo.items() if v}
    ctx, gx_results = None, {}
    if todo:
        from great_expectations.core.run_identifier import RunIdentifier

        ctx, gx_results = _validate_gx(ws, feed_id, feed_version, [(t, p) for t, p in tables if t.name in todo], todo,
                                       route=route, source=source, run_id=RunIdentifier(run_name=f"{feed_id}@{feed_version}", run_time=run_at),
                                       progress=progress)
    rows: list[dict] = []
    for t, part in tables:
        where = {"feed_id": feed_id, "feed_version": feed_version, "table": t.name, "route": route, "source": source, "run_at": run_at_s}
        fp = ((fingerprints or {}).get(t.name) or table_fingerprint(t, part, route=route, engine=engine)) if source == "lake" else None
        if t.name not in sql:  # GX evaluated the whole table and stored its result
            rows += [{**_gx_row(r, **where), "fingerprint": fp, "reused_from": None} for r in gx_results[t.name]]
            continue
        from warehouse.contracts_sql import gx_kwargs

        by_key = {(r.expectation_config.type, _json({k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"})): r
                  for r in gx_results.get(t.name, [])}
        entries = []
        for i in _domain_order(contracts[t.name]):
            c = contracts[t.name][i]
            if sql[t.name][i] is not None:
                ok, res = sql[t.name][i]
                rows.append({**_row(**where, rule=c.rule, expectation_type=c.expectation_type, kwargs=gx_kwargs(c), success=ok,
                                    result=res, exception=None), "fingerprint": fp, "reused_from": None})
                entries.append(_sql_entry(c, ok, res, batch_id=_batch_id(feed_id, t.name)))
            else:
                r = by_key[(c.expectation_type, _json(gx_kwargs(c)))]
                rows.append({**_gx_row(r, **where), "fingerprint": fp, "reused_from": None})
                entries.append(r.to_json_dict())
        write_gx_result(ws, feed_id=feed_id, feed_version=feed_version, table=t.name, run_time=run_at, entries=entries)
    return rows, ctx


def run_contracts(ws: Workspace, feed_id: str, feed_version: str, *, route: str = "auto", progress=None,
                  data_docs: bool | str = True, source: str = "lake", reuse: bool = True, engine: str = "auto",
                  unique_keys: dict | None = None) -> dict:
    """Return a summary of the contracts run on one published version: suites, expectations, failed, seconds.

    Results replace the version's rows in quality.expectation_results and go to GX's results store.
    If ``data_docs``, then GX Data Docs are rendered under NORIBA_HOME/reports/data_docs/. If
    ``data_docs`` is ``"later"``, then the pages are left for one :func:`finish_data_docs`
    (``noriba docs``, or the end of a run of many feeds: GX's index reads every stored validation,
    and importing GX alone costs seconds). If ``reuse`` (and the source is the lake), then tables
    whose fingerprint has stored results reuse them (``reused`` counts those tables) and only the
    others are evaluated. ``engine`` and ``unique_keys``: see :func:`validate_version`.
    """
    t0 = time.perf_counter()
    resolved = _checked_route(ws, feed_id, feed_version, route, source)
    engine = contracts_engine(engine) if resolved == "duckdb" else "gx"
    tables = version_tables(ws, feed_id, feed_version)
    fingerprints = {t.name: table_fingerprint(t, part, route=resolved, engine=engine) for t, part in tables} if source == "lake" else None
    with ExitStack() as held:
        con = None
        if fingerprints is not None and engine == "sql" and ws.warehouse.exists():
            # the SQL engine reads only the lake and takes a fraction of a second: the reuse lookup and the store share one
            # connection to the writer's file under one hold of the publish lock (opening it costs ~30 ms a feed)
            held.enter_context(publish_lock(ws))
            con = connect(ws)
            held.callback(con.close)
        rows, reused, todo, ctx, run_time = _run_contracts_held(
            ws, feed_id, feed_version, con=con, tables=tables, fingerprints=fingerprints, resolved=resolved, route=route,
            engine=engine, reuse=reuse, source=source, progress=progress, unique_keys=unique_keys)
    index = str(ws.reports / "data_docs" / "index.html")
    if data_docs == "later" or not data_docs:
        docs = index if data_docs else None
    elif todo:
        docs = build_data_docs(ws, ctx or gx_context(ws), run_name=f"{feed_id}@{feed_version}", run_time=run_time)
    else:  # every table reused: render only what earlier runs left without a page
        docs = finish_data_docs(ws) or index
    failed = [r for r in rows if not r["success"]]
    failed_by_table: dict[str, int] = {}
    for r in failed:
        failed_by_table[r["table_name"]] = failed_by_table.get(r["table_name"], 0) + 1
    where = (f"; see {ws.reports / 'data_docs' / 'offline.html'}" if data_docs is True else
             "; see quality.expectation_results (pages: `noriba docs`)" if data_docs else "; see quality.expectation_results")
    detail = ", ".join(f"{t}: {n}" for t, n in sorted(failed_by_table.items()))
    message = (f"{feed_id}@{feed_version}: all {len(rows)} contract checks passed" if not failed else
               f"{feed_id}@{feed_version}: {len(failed)} of {len(rows)} contract checks failed ({detail}){where}")
    return {
        "feed_id": feed_id, "feed_version": feed_version, "route": resolved, "engine": engine, "source": source,
        "message": message, "suites": len({r["suite"] for r in rows}), "expectations": len(rows), "failed": len(failed),
        "errors": sum(1 for r in rows if r["exception"]), "failed_by_table": failed_by_table,
        "data_docs": docs, "reused": len(reused), "gx_imported": ctx is not None, "seconds": round(time.perf_counter() - t0, 3),
    }


def _run_contracts_held(ws: Workspace, feed_id: str, feed_version: str, *, con, tables, fingerprints, resolved: str, route: str,
                        engine: str, reuse: bool, source: str, progress, unique_keys: dict | None = None) -> tuple:
    """Return (rows stored, tables reused, tables evaluated, GX context or None, run time) of run_contracts's evaluation and store."""
    reused: dict[str, list[dict]] = {}
    if reuse and fingerprints is not None:
        reused = reusable_results(ws, feed_id, fingerprints, **({"con": con} if con is not None else {}))
    todo = [t.name for t, _ in tables if t.name not in reused]
    rows, ctx = (validate_version(ws, feed_id, feed_version, route=route, progress=progress, source=source, tables=todo, engine=engine,
                                  fingerprints=fingerprints, unique_keys=unique_keys)
                 if todo else ([], None))
    run_time = datetime.fromisoformat(rows[0]["run_at"]) if rows else None
    run_at_s = rows[0]["run_at"] if rows else datetime.now(timezone.utc).replace(microsecond=0).isoformat(timespec="seconds")
    for t, _ in tables:  # in table order, like a run of GX on every table
        rows += [{**r, "feed_id": feed_id, "feed_version": feed_version, "run_at": run_at_s,
                  "reused_from": r["reused_from"] or f"{r['feed_id']}@{r['feed_version']}"} for r in reused.get(t.name, [])]
    order = {t.name: i for i, (t, _) in enumerate(tables)}
    rows.sort(key=lambda r: order.get(r["table_name"], len(order)))  # stable: GX's order within a table
    fault_point("contracts")  # test hook: a kill here leaves GX's validation files and no stored results
    store_results(ws, feed_id, feed_version, rows, con=con)
    return rows, reused, todo, ctx, run_time


def pending_pages(ws: Workspace) -> list[Path]:
    """Return the stored validation results (GX's JSON store) that have no Data Docs page yet."""
    store = ws.reports / "gx" / "validations"
    site = ws.reports / "data_docs" / "validations"
    if not store.is_dir():
        return []
    return [f for f in store.rglob("*.json") if not (site / f.relative_to(store)).with_suffix(".html").exists()]


def finish_data_docs(ws: Workspace) -> str | None:
    """Return the Data Docs index after rendering the stored validations left without a page (runs with ``data_docs="later"``).

    If no validation is stored, then nothing is built (None); if every one has its page, then GX is not imported.
    """
    if not (ws.reports / "gx" / "validations").is_dir():
        return None
    if not pending_pages(ws) and (ws.reports / "data_docs" / "index.html").exists():
        write_offline_index(ws)
        return str(ws.reports / "data_docs" / "index.html")
    return build_data_docs(ws, gx_context(ws), run_name="", run_time=None)  # matches no run: only the pages not rendered yet
