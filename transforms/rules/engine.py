"""The rule engine: every validation rule is one :class:`Rule`, run set-based in DuckDB.

A rule is a code (MobilityData gtfs-validator's name where one exists), a severity, a one-line
``why`` that is also its documentation, the fields it reports, and a SQL query over the
canonical tables of one feed version. The query selects ``file, line, field, value, message``
for every finding; the engine adds code and severity, counts every finding and keeps up to
``sample_limit`` of them per code.

Tables are visible to the query under their GTFS names (``stops``, ``stop_times``...). A table
the feed does not have is an empty view with the right columns, so a rule never fails because
an optional file is absent; use ``needs`` to skip a rule when its input is missing.

The view ``_columns`` lists every column of every file's header (file, table_name, column,
position, line, known, likely_field), also for a file with a header and no rows: a rule about
columns (a misspelled name, a column the file has but leaves empty) reads the header there,
never infers it from the rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from transforms.arrowrows import rows_table
from transforms.notices import ERROR, INFO, NOTICE_SCHEMA, SEVERITIES, WARNING
from transforms.schema import Schema, load_schema

__all__ = ["ERROR", "WARNING", "INFO", "Rule", "Context", "RuleRun", "run_rules", "open_tables"]

#: Stages: 'read' rules are raised while files are read and typed (transforms.gtfs,
#: transforms.csvread, transforms.canonical) and are listed here for documentation and
#: policy; 'sql' rules run in this engine over the canonical tables.
STAGES = ("read", "sql", "realtime")  # realtime: GTFS-Realtime rules, raised by transforms/gtfs_rt/rules.validate


@dataclass(frozen=True)
class Context:
    """What a rule may depend on besides the tables: the date it validates for, the profile, settings."""

    validation_date: date
    profile: str = "gtfs"
    present: frozenset[str] = frozenset()  # canonical tables the feed has
    params: dict = field(default_factory=dict)
    #: (name, SELECT, build) -> relation: set by run_rules to build a table several rules read once per run
    materialise: Callable[..., str] | None = field(default=None, compare=False, repr=False)

    def has(self, table: str) -> bool:
        """Return whether the feed has ``table``. If the tables present are not known (an empty set: outside run_rules),
        then every table counts. A per-column scan leaves out the tables the feed lacks: they are empty, so the answer
        is the same and DuckDB plans less."""
        return not self.present or table in self.present

    def param(self, name: str, default):
        return self.params.get(name, default)

    def shared(self, name: str, sql: str, *, build: Callable[[duckdb.DuckDBPyConnection, str], None] | None = None) -> str:
        """Return a relation holding the rows of ``sql``: a temporary table of this run, built before the first rule that
        asks for ``name`` runs and dropped after the last one (later rules read it instead of scanning stop_times again),
        or the subquery itself outside run_rules. A shared table's query may read other shared tables asked for before it.
        If ``build`` is given, then run_rules calls ``build(cursor, table)`` to create the table instead of running
        ``sql``; it must create the same rows (``sql`` stays their definition, used outside run_rules)."""
        if not self.materialise:
            return f"({sql})"
        return self.materialise(name, sql) if build is None else self.materialise(name, sql, build)

    @property
    def today(self) -> str:
        """Return the validation date as a SQL DATE literal."""
        return f"DATE '{self.validation_date.isoformat()}'"


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    why: str  # one line: what is wrong and why it matters; shown in reports as the rule's documentation
    fields: tuple[str, ...] = ()  # fields the notice reports (file, field, ...), for the documentation
    sql: Callable[[Context], str] | None = None  # SELECT file, line, field, value, message ...
    needs: tuple[str, ...] = ()  # canonical tables that must be present, else the rule is skipped
    profile: str = "gtfs"  # 'gtfs-jp': only for GTFS-JP feeds
    stage: str = "sql"
    fix: str = ""  # how to fix it, for the report (optional; ``why`` is used when empty)
    fix_ja: str = ""  # the same in Japanese, for Japanese feeds' reports
    why_ja: str = ""

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.code}: severity must be one of {SEVERITIES}")
        if self.stage not in STAGES:
            raise ValueError(f"rule {self.code}: stage must be one of {STAGES}")
        if self.stage == "sql" and self.sql is None:
            raise ValueError(f"rule {self.code}: a 'sql' rule needs a query")

    def applies(self, ctx: Context) -> bool:
        if self.stage != "sql":
            return False
        if self.profile == "gtfs-jp" and ctx.profile != "gtfs-jp":
            return False
        return all(t in ctx.present for t in self.needs)


@dataclass
class RuleRun:
    notices: pa.Table  # samples, NOTICE_SCHEMA, at most sample_limit per code
    counts: dict[tuple[str, str], int]  # (code, severity) -> number of findings
    seconds: dict[str, float]  # rule code -> wall time


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def open_tables(tables_dir: Path, *, schema: Schema | None = None, con: duckdb.DuckDBPyConnection | None = None,
                files: dict[str, list[str]] | None = None) -> tuple[duckdb.DuckDBPyConnection, frozenset[str]]:
    """Return a connection where every canonical table is a view under its GTFS name, and the tables present.

    ``tables_dir/<table>.parquet`` is read when it exists; ``files`` may instead give a list of
    Parquet paths per table (a lake partition). Absent tables are empty views with typed columns.
    The header columns are the view ``_columns`` (``tables_dir/_columns.parquet`` or
    ``files['_columns']``; an empty view when neither exists).
    """
    from transforms.canonical import COLUMNS_SCHEMA, COLUMNS_TABLE

    schema = schema or load_schema()
    con = con or duckdb.connect()
    _macros(con)
    present = set()
    for table in schema.tables.values():
        paths = (files or {}).get(table.name)
        if paths is None and tables_dir is not None and (tables_dir / f"{table.name}.parquet").exists():
            paths = [str(tables_dir / f"{table.name}.parquet")]
        if paths:
            plist = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
            con.execute(f"CREATE OR REPLACE VIEW {_q(table.name)} AS SELECT * FROM read_parquet({plist}, hive_partitioning=false)")
            present.add(table.name)
        else:
            cols = ", ".join(f"NULL::{t} AS {_q(c)}" for c, t in table.columns_sql() if c not in ("feed_id", "feed_version"))
            con.execute(f"CREATE OR REPLACE VIEW {_q(table.name)} AS SELECT {cols} WHERE false")
    paths = (files or {}).get(COLUMNS_TABLE)
    if paths is None and tables_dir is not None and (tables_dir / f"{COLUMNS_TABLE}.parquet").exists():
        paths = [str(tables_dir / f"{COLUMNS_TABLE}.parquet")]
    if paths:
        plist = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
        con.execute(f"CREATE OR REPLACE VIEW {COLUMNS_TABLE} AS SELECT * FROM read_parquet({plist}, hive_partitioning=false)")
    else:
        sql_type = {pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.bool_(): "BOOLEAN"}
        cols = ", ".join(f"NULL::{sql_type[f.type]} AS {_q(f.name)}" for f in COLUMNS_SCHEMA)
        con.execute(f"CREATE OR REPLACE VIEW {COLUMNS_TABLE} AS SELECT {cols} WHERE false")
    return con, frozenset(present)


def _zones_overlap(a: bytes | None, b: bytes | None) -> bool | None:
    """Return whether two WKB zones overlap (DE-9IM 'overlaps', as JTS and MobilityData's validator use it)."""
    if a is None or b is None:
        return None
    import shapely

    return bool(shapely.from_wkb(a).overlaps(shapely.from_wkb(b)))


def _macros(con: duckdb.DuckDBPyConnection, *, udfs_only: bool = False) -> None:
    """Define the SQL helpers rules share. If ``udfs_only``, then only the Python functions, which belong to one cursor
    (the macros belong to the database and every cursor sees them)."""
    try:  # GTFS-Flex zones (transforms/rules/flex.py); registered once per connection
        con.create_function("zones_overlap", _zones_overlap, ["BLOB", "BLOB"], "BOOLEAN", side_effects=False)
    except duckdb.Error:
        pass
    if udfs_only:
        return
    con.execute(
        "CREATE OR REPLACE MACRO haversine_m(lat1, lon1, lat2, lon2) AS "
        "2 * 6371008.8 * asin(sqrt(pow(sin(radians(lat2 - lat1) / 2), 2) + "
        "cos(radians(lat1)) * cos(radians(lat2)) * pow(sin(radians(lon2 - lon1) / 2), 2)))"
    )
    con.execute(
        "CREATE OR REPLACE MACRO gtfs_time(s) AS CASE WHEN s IS NULL THEN NULL ELSE "
        "lpad(CAST(s // 3600 AS VARCHAR), 2, '0') || ':' || lpad(CAST((s % 3600) // 60 AS VARCHAR), 2, '0') || ':' || "
        "lpad(CAST(s % 60 AS VARCHAR), 2, '0') END"
    )


#: DuckDB's memory for the rule set (SET memory_limit): beyond it, joins, sorts and the shared tables spill to a
#: folder beside the tables, so a 7M-row feed validates in bounded memory. NORIBA_RULES_MEMORY overrides it ('2GB').
#: Vilnius ×16 `noriba validate` (bench/README.md): 1GB 53 s and 1.9 GB peak, 600MB 57 s and 1.48 GB, 400MB 68 s and 1.28 GB
#: (session 8, when the feed's text was still held). Since the text is released before the rules and two cursors share
#: the limit, run_rules ×16 at 600MB spilled ~4 CPU-s more than at 1GB (35.0 against 30.5 CPU-s, peak 0.80 against
#: 1.20 GB for run_rules alone; bench/README.md, session 10), so the limit is 1GB.
RULES_MEMORY = "1GB"


def _spill_dir(tables_dir: Path | None) -> Path:
    """Return the folder DuckDB may spill to: beside the tables (inside the workspace), else a new temporary folder."""
    import tempfile

    if tables_dir is not None:
        return tables_dir.parent / "_rules_spill"
    return Path(tempfile.mkdtemp(prefix="noriba-rules-spill-"))


def _bound_memory(con: duckdb.DuckDBPyConnection, spill: Path) -> Callable[[], None]:
    """Set DuckDB's memory limit and spill folder for the rules; return what puts the previous settings back."""
    import os

    before = con.sql("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchall()[0]
    limit = os.environ.get("NORIBA_RULES_MEMORY", RULES_MEMORY)
    con.execute(f"SET memory_limit = '{limit.replace(chr(39), '')}'")
    try:  # DuckDB refuses another spill folder once the connection has spilled; it then keeps its own
        spill.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
        moved = True
    except duckdb.Error:
        moved = False

    def restore() -> None:
        import shutil

        con.execute("RESET memory_limit")  # the default exactly (its printed form is rounded)
        if con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] != before[0]:
            con.execute(f"SET memory_limit = '{before[0]}'")
        if moved:
            try:
                con.execute(f"SET temp_directory = '{before[1].replace(chr(39), chr(39) * 2)}'")
            except duckdb.Error:  # it has spilled there and keeps it: the folder goes with the staging folder
                return
        shutil.rmtree(spill, ignore_errors=True)

    return restore


def run_rules(
    tables_dir: Path | None,
    *,
    validation_date: date | None = None,
    profile: str = "gtfs",
    rules: list[Rule] | None = None,
    params: dict | None = None,
    sample_limit: int = 1000,
    con: duckdb.DuckDBPyConnection | None = None,
    files: dict[str, list[str]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RuleRun:
    """Return the findings of every applicable rule over the canonical tables in ``tables_dir``.

    If ``validation_date`` is not given, then today is used; pass the date to make a rerun of
    an old version give the same answer. DuckDB's memory is bounded while the rules run
    (:data:`RULES_MEMORY`); a table several rules share is built before the first of them and
    dropped after the last. The queries run on :data:`RULES_WORKERS` cursors of ``con`` at once;
    the findings come back in the rules' order, the same as on one.
    """
    from transforms.rules.registry import all_rules

    rules = all_rules() if rules is None else rules
    con, present = open_tables(tables_dir, con=con, files=files)
    restore = _bound_memory(con, _spill_dir(tables_dir))
    try:
        release = _hold_small(con, present)
        try:
            return _run(con, present, rules, validation_date=validation_date, profile=profile, params=params,
                        sample_limit=sample_limit, progress=progress)
        finally:
            release()
    finally:
        restore()


#: A feed whose tables hold at most this many rows in all is copied into DuckDB's memory for the rules
#: (NORIBA_RULES_HOLD_ROWS overrides it; 0: never). Each of a small feed's ~140 queries otherwise opens and decodes
#: the Parquet files it reads again; a bigger feed's tables stay on disk, read by the queries within the memory limit.
HOLD_ROWS = 1_000_000


def _hold_small(con: duckdb.DuckDBPyConnection, present: frozenset[str]) -> Callable[[], None]:
    """Copy the tables into the database when the feed is small (:data:`HOLD_ROWS`); return what puts the views back.

    Each view then reads its copy, in the same row order; the copies are dropped and the views point at the
    Parquet files again when the rules are done."""
    import os

    from transforms.canonical import COLUMNS_TABLE

    try:
        limit = int(os.environ.get("NORIBA_RULES_HOLD_ROWS", HOLD_ROWS))
    except ValueError:
        limit = HOLD_ROWS
    names = sorted(present) + [COLUMNS_TABLE]
    if limit <= 0 or not present:
        return lambda: None
    rows = con.execute(" + ".join(f"(SELECT count(*) FROM {_q(n)})" for n in names).join(("SELECT ", ""))).fetchall()[0][0]
    if rows > limit:
        return lambda: None
    views = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND view_name IN "
                             f"({', '.join(_sql_str(n) for n in names)})").fetchall())
    held = []
    try:
        for n in names:
            if n not in views:
                continue
            con.execute(f"CREATE OR REPLACE TABLE {_q('_rules_held_' + n)} AS SELECT * FROM {_q(n)}")
            held.append(n)
            con.execute(f"CREATE OR REPLACE VIEW {_q(n)} AS SELECT * FROM {_q('_rules_held_' + n)}")
    except BaseException:
        _put_back(con, held, views)
        raise
    return lambda: _put_back(con, held, views)


def _put_back(con: duckdb.DuckDBPyConnection, held: list[str], views: dict[str, str]) -> None:
    """Point the views of ``held`` at what they read before (``views``: their CREATE VIEW) and drop the copies."""
    for n in held:
        con.execute(views[n].replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
        con.execute(f"DROP TABLE IF EXISTS {_q('_rules_held_' + n)}")


#: How a rule's findings are ordered before its samples are cut: every column, so the samples kept are the same on every run.
_SAMPLE_ORDER = "file, line NULLS FIRST, field, value, message"
_FOUND_COLUMNS = ("CAST(file AS VARCHAR) AS file, CAST(line AS BIGINT) AS line, CAST(field AS VARCHAR) AS field, "
                  "CAST(value AS VARCHAR) AS value, CAST(message AS VARCHAR) AS message")


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


#: How many DuckDB cursors run rule queries at once (NORIBA_RULES_WORKERS overrides it). A rule's query is planned on one
#: thread, and most of a small feed's ~140 queries are planning and round trips, so two cursors keep two cores busy where
#: DuckDB's own parallelism idles (bench/README.md, "The rules phase on two cursors").
RULES_WORKERS = 2


def _workers() -> int:
    import os

    try:
        n = int(os.environ.get("NORIBA_RULES_WORKERS", RULES_WORKERS))
    except ValueError:
        n = RULES_WORKERS
    return max(1, min(n, os.cpu_count() or 1))


def _run(con: duckdb.DuckDBPyConnection, present: frozenset[str], rules, *, validation_date, profile, params, sample_limit,
         progress) -> RuleRun:
    import threading

    shared: dict[str, str] = {}  # name -> SELECT
    builders: dict[str, Callable[[duckdb.DuckDBPyConnection, str], None]] = {}  # name -> what builds it instead
    using: list[str] = []  # the shared tables the rule whose query is being built asks for

    def materialise(name: str, sql: str, build: Callable[[duckdb.DuckDBPyConnection, str], None] | None = None) -> str:
        shared.setdefault(name, sql)
        if build is not None:
            builders.setdefault(name, build)
        if name not in using:
            using.append(name)
        return f"_shared_{name}"

    ctx = Context(validation_date=validation_date or date.today(), profile=profile, present=present, params=params or {},
                  materialise=materialise)
    # Every query first (string building only), so that each shared table's readers are known.
    plans: list[tuple[Rule, str, tuple[str, ...], float]] = []
    for rule in rules:
        if not rule.applies(ctx):
            continue
        t0 = time.perf_counter()
        using.clear()
        sql = rule.sql(ctx)
        plans.append((rule, sql, tuple(using), time.perf_counter() - t0))
    readers: dict[str, int] = {}
    for _, _, uses, _ in plans:
        for name in uses:
            readers[name] = readers.get(name, 0) + 1
    # A shared table is a table of the connection's database (not TEMP: every cursor must see it), built by the cursor that
    # takes the first rule asking for it and dropped when its last reader is done. A cursor takes the first rule left whose
    # shared tables are not being built by another (while one builds the legs of every stop time, the other runs rules
    # that do not read them); the findings are put back in the rules' order.
    cond = threading.Condition()
    state: dict[str, str] = {}  # shared table -> 'building' | 'ready'
    pending = list(range(len(plans)))
    failed: list[BaseException] = []
    done: list[tuple[int, pa.Table, float] | None] = [None] * len(plans)

    def take() -> tuple[int, list[str]] | None:
        """Return the next rule this cursor may run and the shared tables it must build first; None when none is left."""
        with cond:
            while pending and not failed:
                for k, i in enumerate(pending):
                    uses = plans[i][2]
                    if all(state.get(name) != "building" for name in uses):
                        del pending[k]
                        mine = [name for name in uses if name not in state]
                        for name in mine:
                            state[name] = "building"
                        return i, mine
                cond.wait()
            return None

    def run_one(cur: duckdb.DuckDBPyConnection, i: int, build: list[str]) -> None:
        rule, sql, uses, spent = plans[i]
        t0 = time.perf_counter() - spent
        for name in build:  # in the order the rule asked for them: a shared table may read an earlier one
            try:
                if name in builders:
                    builders[name](cur, f"_shared_{name}")
                else:
                    cur.execute(f"CREATE OR REPLACE TABLE _shared_{name} AS {shared[name]}")
            except BaseException as exc:  # first, so that no other cursor starts a reader of the missing table
                with cond:
                    failed.append(exc)
                raise
            finally:
                with cond:
                    state[name] = "ready"
                    cond.notify_all()
        n, t = _findings(cur, rule, sql, sample_limit)
        for name in uses:
            with cond:
                readers[name] -= 1
                last = readers[name] == 0
            if last:
                cur.execute(f"DROP TABLE IF EXISTS _shared_{name}")
        done[i] = (n, t, time.perf_counter() - t0)
        if progress and done[i][2] > 2:
            progress(f"rule {rule.code}: {n:,} findings in {done[i][2]:.1f} s")

    def work(cur: duckdb.DuckDBPyConnection) -> None:
        try:
            while (job := take()) is not None:
                run_one(cur, *job)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            with cond:
                failed.append(exc)
                cond.notify_all()

    workers = min(_workers(), max(1, len(plans)))
    cursors = [con] + [con.cursor() for _ in range(workers - 1)]
    try:
        for cur in cursors[1:]:
            _macros(cur, udfs_only=True)
        threads = [threading.Thread(target=work, args=(cur,), name=f"noriba-rules-{k}") for k, cur in enumerate(cursors[1:], 1)]
        for th in threads:
            th.start()
        work(con)
        for th in threads:
            th.join()
    finally:
        for cur in cursors[1:]:
            cur.close()
        for name in state:
            con.execute(f"DROP TABLE IF EXISTS _shared_{name}")
    if failed:
        raise failed[0]
    tables: list[pa.Table] = []
    counts: dict[tuple[str, str], int] = {}
    seconds: dict[str, float] = {}
    for (rule, _, _, _), (n, t, spent) in zip(plans, done):  # in the rules' order, whichever cursor ran them
        if n:
            counts[(rule.code, rule.severity)] = counts.get((rule.code, rule.severity), 0) + n
            tables.append(t)
        seconds[rule.code] = seconds.get(rule.code, 0.0) + spent
    notices = pa.concat_tables(tables) if tables else rows_table([], NOTICE_SCHEMA)  # (empty_table imports pandas)
    return RuleRun(notices=notices, counts=counts, seconds=seconds)


def _findings(con: duckdb.DuckDBPyConnection, rule: Rule, sql: str, sample_limit: int) -> tuple[int, pa.Table]:
    """Return the number of findings of one rule and up to ``sample_limit`` of them (NOTICE_SCHEMA), in one statement.

    One statement, not a temporary table of the findings and a second query over it: a statement's round trip and
    planning are ~1 ms, and a small feed runs ~140 rules."""
    rows = con.execute(f"SELECT count(*) OVER () AS _n, file, line, field, value, message FROM (SELECT {_FOUND_COLUMNS} "
                       f"FROM ({sql})) ORDER BY {_SAMPLE_ORDER} LIMIT {int(sample_limit)}").fetchall()
    if not rows:
        return 0, rows_table([], NOTICE_SCHEMA)
    # A few rows (at most sample_limit): Python tuples into Arrow through transforms.arrowrows (pa.array on Python
    # values imports pandas, 0.3 s cold; DuckDB's Arrow path for this cursor's result runs the statement's rows through
    # another statement (DuckDB 2.0) and warns, and the warnings filter is not thread-safe)
    names = NOTICE_SCHEMA.names[2:]
    return rows[0][0], rows_table([{"code": rule.code, "severity": rule.severity, **dict(zip(names, r[1:]))} for r in rows],
                                  NOTICE_SCHEMA)
