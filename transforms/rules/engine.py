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

import atexit
import threading
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


#: Days a feed's calendar.txt rows may expand to, all rows together, for the rules that look at each day a service runs:
#: ~60x the largest real feed seen (yamanashi: 168,369). A hostile calendar.txt (10,000 rows of 0001-01-01..9999-12-31 is
#: 3.6e10 days) would keep those rules computing and spilling for hours; above it they are left out and the rule
#: calendar_too_long_to_expand says so (``params['calendar_days_budget']`` sets it for a run).
CALENDAR_DAYS_BUDGET = 10_000_000
#: The comment every query that expands calendar.txt day by day carries (transforms/rules/calendar.py service_days).
EXPANDS_CALENDAR = "/* expands calendar.txt day by day */"
#: The days calendar.txt's rows expand to, all rows together (rows with both dates, in order).
CALENDAR_DAYS_SQL = ("SELECT coalesce(sum(date_diff('day', start_date, end_date) + 1), 0) FROM calendar "
                     "WHERE start_date IS NOT NULL AND end_date IS NOT NULL AND start_date <= end_date")


@dataclass(frozen=True)
class Context:
    """What a rule may depend on besides the tables: the date it validates for, the profile, settings."""

    validation_date: date
    profile: str = "gtfs"
    present: frozenset[str] = frozenset()  # canonical tables the feed has
    params: dict = field(default_factory=dict)
    #: (table, column) of the columns known to hold no value (all NULL, by the Parquet footers): a scan may leave them out
    empty: frozenset[tuple[str, str]] = frozenset()
    #: whether the feed is read from its files (not held in memory, HOLD_ROWS): a rule may then share one scan of a big
    #: table with others through :meth:`shared` where that would cost a small feed's batched rule a statement of its own
    large: bool = False
    #: (name, SELECT, build) -> relation: set by run_rules to build a table several rules read once per run
    materialise: Callable[..., str] | None = field(default=None, compare=False, repr=False)

    def has(self, table: str) -> bool:
        """Return whether the feed has ``table``. If the tables present are not known (an empty set: outside run_rules),
        then every table counts. A per-column scan leaves out the tables the feed lacks: they are empty, so the answer
        is the same and DuckDB plans less."""
        return not self.present or table in self.present

    def filled(self, table: str, column: str) -> bool:
        """Return whether ``column`` of ``table`` may hold a value. If the footers of its files say every row is NULL
        there (a column the feed's header lacks), then False: a check that finds nothing on NULL need not read it
        (stop_times' 5 empty text columns at Vilnius x16: ~0.2 CPU-s of new_line_in_value alone)."""
        return (table, column) not in self.empty

    def param(self, name: str, default):
        return self.params.get(name, default)

    def shared(self, name: str, sql: str, *, build: Callable[[duckdb.DuckDBPyConnection, str], None] | None = None) -> str:
        """Return a relation holding the rows of ``sql``: a temporary table of this run, built before the first rule that
        asks for ``name`` runs and dropped after the last one (later rules read it instead of scanning stop_times again),
        or the subquery itself outside run_rules. A shared table's query may read other shared tables asked for before it.
        If ``build`` is given, then run_rules calls ``build(cursor, table)`` to create the table instead of running
        ``sql``; it must create the same rows (``sql`` stays their definition, used outside run_rules). A query that
        reads no table (a reference list) must give the same rows every time: its rows are kept per process."""
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
    con, present, _, _ = _open_tables(tables_dir, schema=schema, con=con, files=files, hold=0)
    return con, present


def _open_tables(tables_dir: Path | None, *, schema: Schema | None, con: duckdb.DuckDBPyConnection | None,
                 files: dict[str, list[str]] | None, hold: int,
                 views_after: bool = True, empty: bool = False,
                 ) -> tuple[duckdb.DuckDBPyConnection, frozenset[str], Callable[[], None], frozenset[tuple[str, str]]]:
    """Return what :func:`open_tables` returns, what makes the views again and the empty columns: when the tables present
    hold at most ``hold`` rows in all (their Parquet footers say), each is instead a table in DuckDB's memory under its
    name, read once from its files in the same row order, until that is called; else the views are made and it is
    :func:`_NOT_HELD`. If not ``views_after``, then that only drops the tables. If ``empty``, then the last item holds the
    (table, column) every file of the table leaves NULL on every row (:meth:`Context.filled`); else it is empty."""
    from transforms.canonical import COLUMNS_SCHEMA, COLUMNS_TABLE

    schema = schema or load_schema()
    con = con or duckdb.connect()
    _macros(con)
    sources: dict[str, str] = {}  # table -> SELECT over its Parquet files
    for name in [t.name for t in schema.tables.values()] + [COLUMNS_TABLE]:
        paths = (files or {}).get(name)
        if paths is None and tables_dir is not None and (tables_dir / f"{name}.parquet").exists():
            paths = [str(tables_dir / f"{name}.parquet")]
        if paths:
            plist = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
            sources[name] = f"SELECT * FROM read_parquet({plist}, hive_partitioning=false)"
    present = frozenset(n for n in sources if n != COLUMNS_TABLE)
    rows, nulls = _footers(con, sources, files, tables_dir) if present and (hold > 0 or empty) else (0, frozenset())
    held = sorted(sources) if hold > 0 and present and rows <= hold else []
    made: list[str] = []
    try:
        for name in held:
            try:  # a view of an earlier open_tables on this connection
                con.execute(f"DROP VIEW IF EXISTS {_q(name)}")
            except duckdb.Error:
                pass
            made.append(name)
            con.execute(f"CREATE OR REPLACE TABLE {_q(name)} AS {sources[name]}")
    except BaseException:
        _put_back(con, made, sources)
        raise
    for name, sql in sources.items():
        if name not in made:
            con.execute(f"CREATE OR REPLACE VIEW {_q(name)} AS {sql}")
    for table in schema.tables.values():
        if table.name not in sources:
            cols = ", ".join(f"NULL::{t} AS {_q(c)}" for c, t in table.columns_sql() if c not in ("feed_id", "feed_version"))
            con.execute(f"CREATE OR REPLACE VIEW {_q(table.name)} AS SELECT {cols} WHERE false")
    if COLUMNS_TABLE not in sources:
        sql_type = {pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.bool_(): "BOOLEAN"}
        cols = ", ".join(f"NULL::{sql_type[f.type]} AS {_q(f.name)}" for f in COLUMNS_SCHEMA)
        con.execute(f"CREATE OR REPLACE VIEW {COLUMNS_TABLE} AS SELECT {cols} WHERE false")
    nulls = nulls if empty else frozenset()
    if not made:
        return con, present, _NOT_HELD, nulls
    return con, present, lambda: _put_back(con, made, sources if views_after else None), nulls


def _footers(con: duckdb.DuckDBPyConnection, sources: dict[str, str], files: dict[str, list[str]] | None,
             tables_dir: Path | None) -> tuple[int, frozenset[tuple[str, str]]]:
    """Return the rows of every file behind ``sources`` and the (table, column) NULL on every row of every file of the
    table, from the Parquet footers (a column whose statistics lack a null count counts as holding values). If pyarrow
    does not open a path (a remote one), then the rows are counted through DuckDB and no column is known empty."""
    from transforms.canonical import parquet_nulls

    rows, nulls = 0, set()
    try:
        for name in sources:
            counts: dict[str, int] = {}  # column -> NULLs in the files so far; unknown, or missing from a file: left out
            total = 0
            paths = (files or {}).get(name) or [str(tables_dir / f"{name}.parquet")]
            for k, p in enumerate(paths):
                n_rows, here = parquet_nulls(p)
                total += n_rows
                counts = {c: n for c, n in here.items() if n is not None} if k == 0 else \
                    {c: counts[c] + n for c, n in here.items() if c in counts and n is not None}
            rows += total
            nulls.update((name, c) for c, n in counts.items() if n == total)
    except (OSError, pa.ArrowException):
        return (con.execute("SELECT " + " + ".join(f"(SELECT count(*) FROM ({sql}))" for sql in sources.values())).fetchall()[0][0],
                frozenset())
    return rows, frozenset(nulls)


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

    before = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchall()[0]
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
        if con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] != before[0]:
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
    views_after: bool = True,
) -> RuleRun:
    """Return the findings of every applicable rule over the canonical tables in ``tables_dir``.

    If ``validation_date`` is not given, then today is used; pass the date to make a rerun of
    an old version give the same answer. DuckDB's memory is bounded while the rules run
    (:data:`RULES_MEMORY`); a table several rules share is built before the first of them and
    dropped after the last. The queries run on :data:`RULES_WORKERS` cursors of ``con`` at once;
    the findings come back in the rules' order, the same as on one. A small feed (:data:`HOLD_ROWS`) is read into memory
    first, its cheap rules run a few statements for many (:data:`RULES_BATCHES`) and each query on one DuckDB thread.
    ``con`` has a view under each table's name after (:func:`open_tables`); if not ``views_after``, then a feed held in
    memory leaves none (a caller that reads the files itself saves making them: ~10 ms a small feed).
    """
    from transforms.rules.registry import all_rules

    rules = all_rules() if rules is None else rules
    con, present, release, empty = _open_tables(tables_dir, schema=None, con=con, files=files, hold=_hold_rows(),
                                                views_after=views_after, empty=True)
    held = release is not _NOT_HELD
    try:
        restore = _bound_memory(con, _spill_dir(tables_dir))
    except BaseException:
        release()
        raise
    try:
        threads = None
        try:
            if held and _workers() > 1:
                threads = _one_thread_a_cursor(con)
            return _run(con, present, rules, validation_date=validation_date, profile=profile, params=params,
                        sample_limit=sample_limit, progress=progress, batch=held, empty=empty)
        finally:
            if threads is not None:
                con.execute(f"SET threads = {int(threads)}")
            release()
    finally:
        restore()


#: A feed whose tables hold at most this many rows in all is copied into DuckDB's memory for the rules
#: (NORIBA_RULES_HOLD_ROWS overrides it; 0: never). Each of a small feed's ~140 queries otherwise opens and decodes
#: the Parquet files it reads again; a bigger feed's tables stay on disk, read by the queries within the memory limit.
#: The copies are tables under the views' names, made straight from the files (a query binds a table ~0.15 ms faster
#: than a view over it, and a small feed's queries name ~500 tables); the views are made again after the rules.
HOLD_ROWS = 1_000_000


def _one_thread_a_cursor(con: duckdb.DuckDBPyConnection) -> int:
    """Let each query of the database use one thread (the cursors run side by side); return the previous setting.

    For a feed held in memory: its queries are small, and DuckDB's threads for each of two cursors' queries on two
    cores spent more CPU waking and waiting than they saved (kamacitybus 0.79 against 0.86 CPU-s median, yamanashi 1.84
    against 1.96, with less wall time too; bench/README.md, "Small feeds")."""
    before = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    return before


def _NOT_HELD() -> None:
    """What :func:`_open_tables` returns as its release when it held nothing (the tables stay on disk, read by views)."""


def _env_int(name: str, default: int) -> int:
    """Return the environment variable ``name`` as an integer; ``default`` when it is unset or not an integer."""
    import os

    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _hold_rows() -> int:
    """Return the most rows a feed's tables may hold in all to be copied into memory for the rules (:data:`HOLD_ROWS`)."""
    return _env_int("NORIBA_RULES_HOLD_ROWS", HOLD_ROWS)


def _put_back(con: duckdb.DuckDBPyConnection, held: list[str], sources: dict[str, str] | None) -> None:
    """Drop the tables of ``held`` and make their views over the Parquet files again (``sources``: their SELECTs; None:
    no view)."""
    for n in held:
        con.execute(f"DROP TABLE IF EXISTS {_q(n)}")
        if sources is not None:
            con.execute(f"CREATE OR REPLACE VIEW {_q(n)} AS {sources[n]}")


#: How a rule's findings are ordered before its samples are cut: every column, so the samples kept are the same on every run.
_SAMPLE_ORDER = "file, line NULLS FIRST, field, value, message"
_FOUND_COLUMNS = ("CAST(file AS VARCHAR) AS file, CAST(line AS BIGINT) AS line, CAST(field AS VARCHAR) AS field, "
                  "CAST(value AS VARCHAR) AS value, CAST(message AS VARCHAR) AS message")


#: How many DuckDB cursors run rule queries at once (NORIBA_RULES_WORKERS overrides it). A rule's query is planned on one
#: thread, and most of a small feed's ~140 queries are planning and round trips, so two cursors keep two cores busy where
#: DuckDB's own parallelism idles (bench/README.md, "The rules phase on two cursors").
RULES_WORKERS = 2


def _workers() -> int:
    import os

    return max(1, min(_env_int("NORIBA_RULES_WORKERS", RULES_WORKERS), os.cpu_count() or 1))


#: On a feed held in memory (:data:`HOLD_ROWS`), the cheap rules (no shared table, a query of at most
#: :data:`BATCH_SQL_CHARS` characters: ~100 of a GTFS-JP feed's ~140) run as this many statements per cursor, each a
#: UNION ALL of their queries with the rule's number beside every finding (NORIBA_RULES_BATCH overrides it; 0: each rule
#: alone). Such a rule's own work is well under a statement's planning, scheduling and round trip (~1-2 ms); a longer
#: query (a scan of every column, a join of four tables) costs as much or more inside a batch as alone, so it stays alone.
#: A bigger feed's rules stay one statement each: their samples are cut by a top-N, not by a window over a batch's findings.
#: kamacitybus, one cursor: 102 rules 0.23 CPU-s as one statement against 0.31 one by one (bench/README.md, "Small feeds").
RULES_BATCHES = 1
BATCH_SQL_CHARS = 1300


def _batches_per_cursor() -> int:
    return max(0, _env_int("NORIBA_RULES_BATCH", RULES_BATCHES))


def _units(plans: list[tuple[Rule, str, tuple[str, ...], float]], *, batches: int) -> list[list[int]]:
    """Return the statements to run, each a list of indices into ``plans``: the cheap rules (no shared table, a short query)
    in ``batches`` groups of about the same SQL size, each placed where its first rule was, and every other rule alone;
    every rule alone if ``batches`` is 0."""
    free = [i for i, p in enumerate(plans) if not p[2] and len(p[1]) <= BATCH_SQL_CHARS]
    if batches <= 0 or len(free) < 2:
        return [[i] for i in range(len(plans))]
    size = sum(len(plans[i][1]) for i in free)
    groups: list[list[int]] = [[]]
    acc = 0
    for i in free:  # contiguous groups, cut when a group holds its share of the SQL
        if acc >= size * len(groups) / batches and len(groups) < batches:
            groups.append([])
        groups[-1].append(i)
        acc += len(plans[i][1])
    first = {g[0]: g for g in groups}
    batched = {i for g in groups for i in g}
    return [first[i] if i in first else [i] for i in range(len(plans)) if i in first or i not in batched]


def _pending(units: list[list[int]], uses: list[tuple[str, ...]], built: set[str], *, first_built: bool) -> list[int]:
    """Return the order in which the statements ``units`` (indices into the rules, each rule's shared tables in ``uses``) are
    taken: as they are; if ``first_built``, then those reading a table of ``built`` (made in Python: the stop-time pass)
    first, then those reading another shared table, then the rest, each part in its order."""
    order = list(range(len(units)))
    if first_built:
        order.sort(key=lambda u: (not any(name in built for i in units[u] for name in uses[i]),
                                  not any(uses[i] for i in units[u])))
    return order


def _run(con: duckdb.DuckDBPyConnection, present: frozenset[str], rules, *, validation_date, profile, params, sample_limit,
         progress, batch: bool = False, empty: frozenset[tuple[str, str]] = frozenset()) -> RuleRun:
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
                  materialise=materialise, empty=empty, large=not batch)
    # Every query first (string building only), so that each shared table's readers are known.
    plans: list[tuple[Rule, str, tuple[str, ...], float]] = []
    for rule in rules:
        if not rule.applies(ctx):
            continue
        t0 = time.perf_counter()
        using.clear()
        sql = rule.sql(ctx)
        plans.append((rule, sql, tuple(using), time.perf_counter() - t0))
    if "calendar" in present and any(EXPANDS_CALENDAR in sql for _, sql, _, _ in plans):
        days = con.execute(CALENDAR_DAYS_SQL).fetchall()[0][0]
        if days > int(ctx.param("calendar_days_budget", CALENDAR_DAYS_BUDGET)):  # said by calendar_too_long_to_expand
            plans = [p for p in plans if EXPANDS_CALENDAR not in p[1]]
    readers: dict[str, int] = {}
    for _, _, uses, _ in plans:
        for name in uses:
            readers[name] = readers.get(name, 0) + 1
    workers = min(_workers(), max(1, len(plans)))
    units = _units(plans, batches=_batches_per_cursor() * workers if batch else 0)
    # A shared table is a table of the connection's database (not TEMP: every cursor must see it), built by the cursor that
    # takes the first rule asking for it and dropped when its last reader is done. A cursor takes the first statement left
    # whose shared tables are not being built by another (while one builds the legs of every stop time, the other runs rules
    # that do not read them); the findings are put back in the rules' order. On a feed not held in memory the statements
    # reading a table built in Python come first: the stop-time pass and its readers are the phase's longest chain, so one
    # cursor starts it at once while the other runs every other rule (at ×16 the other cursor otherwise ran out of rules
    # and waited for the pass, which started behind the first rules). The readers of the other shared tables (shape
    # matching's) come next: the other cursor builds them while the pass is still small, not beside the finished 1.1 GB
    # pass under the 1 GB limit, where they spilled (bench/README.md, session 14).
    cond = threading.Condition()
    state: dict[str, str] = {}  # shared table -> 'building' | 'ready'
    pending = _pending(units, [p[2] for p in plans], set(builders), first_built=not batch and workers > 1)
    failed: list[BaseException] = []
    done: list[tuple[int, pa.Table, float] | None] = [None] * len(plans)

    def take() -> tuple[int, list[str]] | None:
        """Return the next statement this cursor may run and the shared tables it must build first; None when none is left."""
        with cond:
            while pending and not failed:
                for k, u in enumerate(pending):
                    uses = [name for i in units[u] for name in plans[i][2]]
                    if all(state.get(name) != "building" for name in uses):
                        del pending[k]
                        mine = list(dict.fromkeys(name for name in uses if name not in state))
                        for name in mine:
                            state[name] = "building"
                        return u, mine
                cond.wait()
            return None

    def run_one(cur: duckdb.DuckDBPyConnection, u: int, build: list[str]) -> None:
        members = units[u]
        t0 = time.perf_counter() - sum(plans[i][3] for i in members)
        for name in build:  # in the order the rule asked for them: a shared table may read an earlier one
            try:
                if name in builders:
                    builders[name](cur, f"_shared_{name}")
                else:
                    _build_shared(cur, name, shared[name])
            except BaseException as exc:  # first, so that no other cursor starts a reader of the missing table
                with cond:
                    failed.append(exc)
                raise
            finally:
                with cond:
                    state[name] = "ready"
                    cond.notify_all()
        if len(members) == 1:
            found = [_findings(cur, plans[members[0]][0], plans[members[0]][1], sample_limit)]
        else:
            found = _findings_batch(cur, [plans[i][:2] for i in members], sample_limit)
        for name in (name for i in members for name in plans[i][2]):
            with cond:
                readers[name] -= 1
                last = readers[name] == 0
            if last:
                cur.execute(f"DROP TABLE IF EXISTS _shared_{name}")
        spent = (time.perf_counter() - t0) / len(members)  # a batch's time shared evenly among its rules
        for i, (n, t) in zip(members, found):
            done[i] = (n, t, spent)
        if progress and spent * len(members) > 2:
            what = f"rule {plans[members[0]][0].code}" if len(members) == 1 else f"{len(members)} rules in one statement"
            progress(f"{what}: {sum(n for n, _ in found):,} findings in {spent * len(members):.1f} s")

    def work(cur: duckdb.DuckDBPyConnection) -> None:
        try:
            while (job := take()) is not None:
                run_one(cur, *job)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            with cond:
                failed.append(exc)
                cond.notify_all()

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
        # and what a builder made beside its table for rules not run (the stop-time pass's side tables)
        for (left,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_shared\\_%' ESCAPE '\\' "
                                   "AND NOT temporary AND database_name = current_database()").fetchall():
            con.execute(f"DROP TABLE IF EXISTS {_q(left)}")
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


#: SELECT -> its columns (name, type) and values column by column, for the shared tables whose query reads no table (the
#: reference lists: time zones, languages, currencies, Japan's holidays), computed once per process: planning their
#: VALUES lists (up to 26k characters) cost ~40 ms a feed. None: the query reads a table of the feed (it fails on an
#: empty database), or gives more rows or other types than kept here, so it runs every time.
_CONSTANT: dict[str, tuple[list[tuple[str, str]], list[list]] | None] = {}
_CONSTANT_MAX_ROWS = 100_000
_CONSTANT_TYPES = frozenset({"VARCHAR", "DATE", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN"})
_CONSTANT_LOCK = threading.Lock()
_EMPTY: list[duckdb.DuckDBPyConnection] = []  # one database with no table for the process (a connection costs ~15 ms)


def _close_empty() -> None:
    """Close the process's empty database at exit, before the interpreter's teardown (duckdb/duckdb#13904)."""
    if not _CONSTANT_LOCK.acquire(timeout=1):  # a daemon thread holds it at exit: leave the database as it is
        return
    try:
        while _EMPTY:
            _EMPTY.pop().close()
    finally:
        _CONSTANT_LOCK.release()


atexit.register(_close_empty)


def _constant_rows(sql: str) -> tuple[list[tuple[str, str]], list[list]] | None:
    """Return the columns and values of ``sql`` when it reads no table (it runs on an empty database), else None; once
    per query text."""
    with _CONSTANT_LOCK:
        if sql not in _CONSTANT:
            if len(_CONSTANT) >= 256:  # different queries of many runs in one long-lived process: start again
                _CONSTANT.clear()
            if not _EMPTY:
                _EMPTY.append(duckdb.connect())
                _EMPTY[0].execute("SET threads = 1")
            try:
                res = _EMPTY[0].execute(sql)
                cols = [(d[0], str(d[1])) for d in res.description]
                rows = res.fetchmany(_CONSTANT_MAX_ROWS + 1)
            except duckdb.Error:
                _CONSTANT[sql] = None
            else:
                simple = all(t in _CONSTANT_TYPES for _, t in cols) and len(rows) <= _CONSTANT_MAX_ROWS
                _CONSTANT[sql] = (cols, [[r[k] for r in rows] for k in range(len(cols))]) if simple else None
        return _CONSTANT[sql]


def _build_shared(cur: duckdb.DuckDBPyConnection, name: str, sql: str) -> None:
    """Make the shared table ``_shared_<name>`` from ``sql``: from its values computed once per process when it reads no
    table (one list per column, unnested side by side: the same rows in the same order and types)."""
    const = _constant_rows(sql)
    if const is None:
        execute_parsed(cur, f"CREATE OR REPLACE TABLE _shared_{name} AS {sql}")
        return
    cols, values = const
    select = ", ".join(f"unnest(${k + 1}::{t}[]) AS {_q(c)}" for k, (c, t) in enumerate(cols))
    cur.execute(f"CREATE OR REPLACE TABLE _shared_{name} AS SELECT {select}", values)


#: Rule statements parsed once per process: {SQL text: parsed statement}. The same rule gives the same text on every feed
#: with the same tables present (and date, profile, settings), and DuckDB's parser costs ~0.4 us a character (a small
#: feed's ~200k characters of rule SQL were ~0.09 CPU-s a feed); a parsed statement runs on any connection, bound there
#: (bench/README.md, "session 12, branch h-small2"). Emptied when it holds PARSED_MAX_CHARS characters of SQL.
_PARSED: dict[str, object] = {}
_PARSED_CHARS = [0]
PARSED_MAX_CHARS = 4_000_000


def execute_parsed(cur: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    """Run one statement on ``cur`` from its text parsed once per process (:data:`_PARSED`); return ``cur``. For
    statements that come back feed after feed with the same text (no parameters)."""
    stmt = _PARSED.get(sql)
    if stmt is None:
        (stmt,) = cur.extract_statements(sql)
        if _PARSED_CHARS[0] + len(sql) > PARSED_MAX_CHARS:
            _PARSED.clear()
            _PARSED_CHARS[0] = 0
        _PARSED[sql] = stmt
        _PARSED_CHARS[0] += len(sql)
    return cur.execute(stmt)


def _findings_batch(con: duckdb.DuckDBPyConnection, items: list[tuple[Rule, str]], sample_limit: int) -> list[tuple[int, pa.Table]]:
    """Return what :func:`_findings` returns for each rule of ``items``, from one statement over all their queries.

    Each rule's count and samples are its own (counted and cut per rule number, in the same order). If the statement
    fails, then the rules run one by one, so that a failing rule raises its own error."""
    body = " UNION ALL ".join(f"SELECT {k} AS _r, {_FOUND_COLUMNS} FROM ({sql})" for k, (_, sql) in enumerate(items))
    try:
        rows = execute_parsed(con, f"SELECT _r, count(*) OVER (PARTITION BY _r) AS _n, file, line, field, value, message FROM ({body}) "
                             f"QUALIFY row_number() OVER (PARTITION BY _r ORDER BY {_SAMPLE_ORDER}) <= {int(sample_limit)} "
                             f"ORDER BY _r, {_SAMPLE_ORDER}").fetchall()
    except duckdb.Error:
        return [_findings(con, rule, sql, sample_limit) for rule, sql in items]
    by_rule: list[list[tuple]] = [[] for _ in items]
    for r in rows:
        by_rule[r[0]].append(r[1:])
    return [_sample_table(rule, found) for (rule, _), found in zip(items, by_rule)]


def _findings(con: duckdb.DuckDBPyConnection, rule: Rule, sql: str, sample_limit: int) -> tuple[int, pa.Table]:
    """Return the number of findings of one rule and up to ``sample_limit`` of them (NOTICE_SCHEMA), in one statement.

    One statement, not a temporary table of the findings and a second query over it: a statement's round trip and
    planning are ~1 ms, and a small feed runs ~140 rules."""
    rows = execute_parsed(con, f"SELECT count(*) OVER () AS _n, file, line, field, value, message FROM (SELECT {_FOUND_COLUMNS} "
                         f"FROM ({sql})) ORDER BY {_SAMPLE_ORDER} LIMIT {int(sample_limit)}").fetchall()
    return _sample_table(rule, rows)


def _sample_table(rule: Rule, rows: list[tuple]) -> tuple[int, pa.Table]:
    """Return the count and the samples (NOTICE_SCHEMA) of one rule's rows (count, file, line, field, value, message)."""
    if not rows:
        return 0, rows_table([], NOTICE_SCHEMA)
    # A few rows (at most sample_limit): Python tuples into Arrow through transforms.arrowrows (pa.array on Python
    # values imports pandas, 0.3 s cold; DuckDB's Arrow path for this cursor's result runs the statement's rows through
    # another statement (DuckDB 2.0) and warns, and the warnings filter is not thread-safe)
    names = NOTICE_SCHEMA.names[2:]
    return rows[0][0], rows_table([{"code": rule.code, "severity": rule.severity, **dict(zip(names, r[1:]))} for r in rows],
                                  NOTICE_SCHEMA)
