"""The one workaround that lets Great Expectations' SQL engine run on DuckDB. Nothing else in Noriba knows about it.

GX 1.x runs SQL through SQLAlchemy, which needs a DuckDB dialect. Three problems, measured with
great-expectations 1.24.1, SQLAlchemy 2.1 and duckdb 2.0 (tests/warehouse/test_contracts.py
pins them, so a GX or library upgrade that changes either shows up as a failing test):

1. No dialect: duckdb-engine is not in the lock (``duckdb:///`` URLs raise NoSuchModuleError).
   NoribaDuckDBDialect below is a minimal one: PostgreSQL's SQL compiler (DuckDB speaks that
   dialect), the duckdb module as DBAPI (qmark parameters), reflection through
   information_schema, and commit/rollback that tolerate DuckDB's autocommit.
2. GX closes the connection before it fetches: SqlAlchemyExecutionEngine.execute_query returns
   the result of ``with engine.connect() as c: c.execute(q)``, and the rows are read after the
   connection went back to the pool. A closed DuckDB connection drops its result set ("No open
   result set"). The dialect therefore uses a StaticPool: one DuckDB connection per engine that
   a return to the pool never closes. Callers dispose the engines when done (dispose_engines).

3. A GX SQL datasource builds two engines (its own for asset checks, and its execution engine's),
   so a plain ``:memory:`` database would be two databases: memory_url names one, which every
   connection of the process shares.

GX does not know the dialect name "duckdb" (GXSqlDialect.OTHER): type checks fall back to the
top-level SQLAlchemy types (INTEGER, DOUBLE, DATE, VARCHAR), which is what reflection returns.
"""

from __future__ import annotations

import types
import uuid

import duckdb
from sqlalchemy import pool
from sqlalchemy import types as sat
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine.default import DefaultDialect

#: SQLAlchemy URL scheme of the dialect (``duckdb+noriba:///path`` or ``duckdb+noriba:///:memory:name``).
SCHEME = "duckdb+noriba"

#: DuckDB type name → SQLAlchemy type reported by reflection (anything else reflects as NullType).
REFLECTED_TYPES = {
    "INTEGER": sat.INTEGER, "BIGINT": sat.BIGINT, "SMALLINT": sat.SMALLINT, "DOUBLE": sat.DOUBLE, "FLOAT": sat.FLOAT,
    "DATE": sat.DATE, "TIMESTAMP": sat.TIMESTAMP, "VARCHAR": sat.VARCHAR, "BOOLEAN": sat.BOOLEAN, "BLOB": sat.LargeBinary,
}


def _dbapi() -> types.ModuleType:
    """Return the duckdb module's PEP 249 surface as a module (duckdb lacks InterfaceError)."""
    mod = types.ModuleType("noriba_duckdb_dbapi")
    for name in ("Warning", "Error", "DatabaseError", "DataError", "OperationalError", "IntegrityError",
                 "InternalError", "ProgrammingError", "NotSupportedError"):
        setattr(mod, name, getattr(duckdb, name))
    mod.InterfaceError = duckdb.Error
    mod.paramstyle, mod.apilevel, mod.threadsafety = "qmark", "2.0", 1
    mod.connect = duckdb.connect
    mod.__version__ = duckdb.__version__
    return mod


class NoribaDuckDBDialect(PGDialect):
    """Minimal SQLAlchemy dialect for DuckDB, enough for GX's SQL metrics and reflection."""

    name = "duckdb"
    driver = "noriba"
    supports_statement_cache = False
    default_paramstyle = "qmark"
    supports_sane_rowcount = False
    supports_server_side_cursors = False

    @classmethod
    def import_dbapi(cls):
        return _dbapi()

    @classmethod
    def get_pool_class(cls, url):
        return pool.StaticPool  # workaround 2: never close the connection GX has not finished reading

    def create_connect_args(self, url):
        return [url.database or ":memory:"], {}

    def initialize(self, connection):
        DefaultDialect.initialize(self, connection)  # skip PostgreSQL's server probes

    def _get_server_version_info(self, connection):
        return (14, 0)

    def _get_default_schema_name(self, connection):
        return "main"

    def get_isolation_level(self, dbapi_connection):
        return "SERIALIZABLE"

    def get_default_isolation_level(self, dbapi_conn):
        return "SERIALIZABLE"

    def set_isolation_level(self, dbapi_connection, level):
        pass

    def do_rollback(self, dbapi_connection):
        try:
            dbapi_connection.rollback()
        except duckdb.TransactionException:  # DuckDB autocommits: often no transaction to roll back
            pass

    def do_commit(self, dbapi_connection):
        try:
            dbapi_connection.commit()
        except duckdb.TransactionException:
            pass

    def do_ping(self, dbapi_connection):
        return True

    def _columns(self, connection, table_name, schema):
        return connection.exec_driver_sql(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            (schema or "main", table_name)).fetchall()

    def get_columns(self, connection, table_name, schema=None, **kw):
        return [{"name": n, "type": REFLECTED_TYPES.get(t, sat.NullType)(), "nullable": nullable == "YES", "default": None}
                for n, t, nullable in self._columns(connection, table_name, schema)]

    def has_table(self, connection, table_name, schema=None, **kw):
        return bool(self._columns(connection, table_name, schema))

    def _relations(self, connection, schema, kind):
        return [r[0] for r in connection.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = ? ORDER BY 1",
            (schema or "main", kind)).fetchall()]

    def get_table_names(self, connection, schema=None, **kw):
        return self._relations(connection, schema, "BASE TABLE")

    def get_view_names(self, connection, schema=None, **kw):
        return self._relations(connection, schema, "VIEW")

    def get_schema_names(self, connection, **kw):
        return [r[0] for r in connection.exec_driver_sql("SELECT DISTINCT schema_name FROM information_schema.schemata ORDER BY 1").fetchall()]

    def get_pk_constraint(self, connection, table_name, schema=None, **kw):
        return {"constrained_columns": [], "name": None}

    def get_foreign_keys(self, connection, table_name, schema=None, **kw):
        return []

    def get_indexes(self, connection, table_name, schema=None, **kw):
        return []


registry.register(SCHEME.replace("+", "."), __name__, "NoribaDuckDBDialect")


def memory_url() -> str:
    """Return the URL of a fresh named in-memory DuckDB database, shared by every connection of this process that opens it."""
    return f"{SCHEME}:///:memory:noriba_gx_{uuid.uuid4().hex[:12]}"


def file_url(path) -> str:
    """Return the URL of a DuckDB database file."""
    return f"{SCHEME}:///{path}"


def dispose_engines(datasource) -> None:
    """Close the DuckDB connections held by a GX SQL datasource (its own engine and its execution engine's)."""
    engines = [datasource.get_engine()]
    ee = getattr(datasource, "_execution_engine", None)
    if ee is not None:
        engines.append(ee.engine)
    for e in engines:
        e.dispose()
