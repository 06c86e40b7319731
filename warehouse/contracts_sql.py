"""Evaluate the contracts' GX expectations as DuckDB SQL, one aggregate query per table, without importing GX.

The expectation suites stay Great Expectations' (transforms/contracts.py builds them); this module
computes, for the expectation types in SUPPORTED, what GX 1.24's SQL engine computes with result
format SUMMARY: ``success`` and the result dict (element_count, unexpected_count,
unexpected_percent, missing counts, the first 20 unexpected values, or observed_value), with
GX's arithmetic (``_format_map_output``: percentages over non-null rows, nulls ignored except
by not_null, vacuous success on an empty table or an all-null column).

All counts of one table come from one SELECT over its view (the uniqueness counts are scalar
subqueries of it), and the SELECTs of a version's small tables are one statement; only an
expectation that fails costs one more query, for its example values, shaped like GX's so that
DuckDB returns them in the same order. An expectation this module cannot
answer exactly (an unsupported type, a column that is missing or not of its contract type, a
column set or a type that does not match: the cases where GX reports an error or a mismatch
detail) is left as ``None`` for GX to evaluate; tests/warehouse/test_contracts_sql.py runs both
engines on real feeds and broken partitions and asserts the same records.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from transforms.sql import lit, q
from transforms.contracts import Contract

#: GX result format SUMMARY keeps this many example unexpected values.
PARTIAL_COUNT = 20

#: Expectation types evaluated in SQL → what the SQL computes (anything else goes to GX).
SUPPORTED = {
    "expect_table_columns_to_match_set": "DESCRIBE of the view; a mismatch goes to GX (its details)",
    "expect_column_values_to_be_of_type": "DESCRIBE of the view; a missing column or another type goes to GX",
    "expect_table_row_count_to_be_between": "count(*)",
    "expect_column_values_to_not_be_null": "count(*) FILTER (WHERE col IS NULL)",
    "expect_column_values_to_be_unique": "rows of non-null values that occur twice or more (GROUP BY … HAVING)",
    "expect_compound_columns_to_be_unique": "rows without a null in the key whose key occurs twice or more "
                                            "(over rows whose key is not all null)",
    "expect_column_values_to_be_between": "count(*) FILTER (WHERE col IS NOT NULL AND NOT (col >= min AND col <= max))",
    "expect_column_values_to_be_in_set": "count(*) FILTER (WHERE col IS NOT NULL AND NOT (col IN (…)))",
}

#: Kwargs GX drops from an expectation's stored configuration when they hold their default.
_DEFAULTS = {"exact_match": True}


def gx_kwargs(c: Contract) -> dict:
    """Return the kwargs GX stores for contract ``c``: None and default values dropped, between bounds as GX coerces them.

    GX's pydantic models turn numeric between bounds into floats and keep dates (written as ISO text).
    """
    out = {}
    for k, v in c.kwargs.items():
        if v is None or _DEFAULTS.get(k, object()) == v:
            continue
        if c.expectation_type == "expect_column_values_to_be_between" and k in ("min_value", "max_value") \
                and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = float(v)
        out[k] = v
    return out


def _sql_value(v) -> str:
    if isinstance(v, dt.date):
        return f"DATE {lit(v.isoformat())}"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return lit(str(v))
    return repr(v)


def _between(col: str, kw: dict) -> str:
    parts = []
    if kw.get("min_value") is not None:
        parts.append(f"{q(col)} >= {_sql_value(kw['min_value'])}")
    if kw.get("max_value") is not None:
        parts.append(f"{q(col)} <= {_sql_value(kw['max_value'])}")
    return " AND ".join(parts) or "true"


def _condition(c: Contract) -> str:
    """Return the SQL of GX's expected-row condition of a column map expectation (nulls are filtered apart)."""
    col = c.kwargs["column"]
    if c.expectation_type == "expect_column_values_to_be_between":
        return _between(col, c.kwargs)
    return f"{q(col)} IN ({', '.join(_sql_value(v) for v in c.kwargs['value_set'])})"


def _all_null(cols: list[str]) -> str:
    return " AND ".join(f"{q(c)} IS NULL" for c in cols)


def _no_null(cols: list[str]) -> str:
    return " AND ".join(f"{q(c)} IS NOT NULL" for c in cols)


def _supported(c: Contract, have: dict[str, str], want: dict[str, str]) -> bool:
    """Return True if SQL answers ``c`` exactly: its type is supported and every column it reads is there with its contract type."""
    t = c.expectation_type
    if t not in SUPPORTED:
        return False
    if t == "expect_table_columns_to_match_set":
        return set(have) == set(c.kwargs["column_set"]) and c.kwargs.get("exact_match", True)
    if t == "expect_column_values_to_be_of_type":
        return have.get(c.kwargs["column"]) == c.kwargs["type_"]
    cols = c.kwargs.get("column_list") or ([c.kwargs["column"]] if "column" in c.kwargs else [])
    return all(col in have and have[col] == want.get(col) for col in cols)


def _map_result(n: int, nonnull: int | None, unexpected: int | None, values: list) -> tuple[bool, dict]:
    """Return (success, SUMMARY result) of a map expectation, as GX's ``_format_map_output`` computes them.

    On an empty table ``unexpected`` is None (GX's count is a SQL SUM) and the expectation passes vacuously.
    """
    if nonnull is None:  # not_null: GX passes no non-null count
        success = n == 0 or unexpected == 0
    else:
        success = n == 0 or nonnull == 0 or unexpected == 0
    pct_total = unexpected / n * 100 if n > 0 else None
    res = {"element_count": n, "unexpected_count": unexpected}
    if nonnull is None:
        res["unexpected_percent"] = pct_total
    else:
        missing = n - nonnull
        pct = (unexpected / nonnull * 100 if nonnull > 0 else None) if n > 0 else None
        res["unexpected_percent"] = pct
    res["partial_unexpected_list"] = values[:PARTIAL_COUNT]
    if nonnull is not None:
        res.update({"missing_count": missing, "missing_percent": missing / n * 100 if n > 0 else None,
                    "unexpected_percent_total": pct_total, "unexpected_percent_nonmissing": res["unexpected_percent"]})
    flat = [tuple(v.values()) if isinstance(v, dict) else v for v in values]
    try:
        res["partial_unexpected_counts"] = [{"value": k, "count": m} for k, m in sorted(
            Counter(flat).most_common(PARTIAL_COUNT), key=lambda x: (-x[1], x[0]))]
    except TypeError:  # e.g. None beside values: GX says the same
        res["partial_unexpected_counts"] = [{"error": "partial_exception_counts requires a hashable type"}]
    return success, res


def evaluate_table(con, view: str, contracts: list[Contract], column_types: dict[str, str], *,
                   unique_key: tuple[str, ...] | list[str] | None = None) -> list[tuple[bool, dict] | None]:
    """Return (success, GX SUMMARY result dict) per contract of one table's view, or None where GX must evaluate it.

    ``column_types`` is the contract's {column: DuckDB type}; ``con`` a DuckDB connection that has ``view``. If
    ``unique_key`` (columns) is given, then no two rows without a NULL in those columns share their values (the parse
    deduplicated them): a uniqueness expectation on exactly those columns counts no duplicate without its GROUP BY
    (seconds on millions of stop times).
    """
    return evaluate_tables(con, [(view, contracts, column_types, unique_key)])[0]


def evaluate_tables(con, items: list[tuple[str, list[Contract], dict[str, str], tuple[str, ...] | list[str] | None]], *,
                    alone: frozenset[str] | set[str] = frozenset(), columns: dict[str, dict[str, str]] | None = None
                    ) -> list[list[tuple[bool, dict] | None]]:
    """Return :func:`evaluate_table`'s answer for each (view, contracts, column_types, unique_key) of ``items``.

    The counts of every table not in ``alone`` come from one statement (a row per view: its counts as one list): a
    statement's round trip and planning are a few milliseconds, a small feed has ~10 tables and the corpus ~90 feeds.
    Views in ``alone`` (big tables: their uniqueness GROUP BYs are not to run side by side) get a statement each. If the
    shared statement fails, then each table's query runs alone, so that the failing one raises its own error.
    ``columns`` ({view: {column: DuckDB type}}, as DESCRIBE gives them) saves a DESCRIBE a view.
    """
    from transforms.rules.engine import execute_parsed  # the same statements feed after feed: parsed once per process

    plans = []
    for view, contracts, column_types, unique_key in items:
        have = (columns or {}).get(view)
        if have is None:
            have = {r[0]: r[1] for r in execute_parsed(con, f"DESCRIBE SELECT * FROM {q(view)}").fetchall()}
        plans.append((have, *_count_plan(view, contracts, have, column_types, unique_key)))
    rows: list[tuple | None] = [None] * len(items)
    together = [k for k, (view, *_) in enumerate(items) if view not in alone]
    if len(together) > 1:
        # a row per table (its counts as one list), not the tables side by side: a cross product of ~10 subqueries costs
        # DuckDB's join planner more than the statements it saves
        parts = " UNION ALL ".join(f"SELECT {k} AS _t, [{', '.join(f'({x})::BIGINT' for x in plans[k][2])}] AS _c "
                                   f"FROM {q(items[k][0])}" for k in together)
        try:
            for k, counts in execute_parsed(con, parts).fetchall():
                rows[k] = tuple(counts)
        except Exception:  # noqa: BLE001 - each table alone below raises its own error
            pass
    for k, ((view, *_), p) in enumerate(zip(items, plans)):
        if rows[k] is None:
            rows[k] = execute_parsed(con, f"SELECT {', '.join(p[2])} FROM {q(view)}").fetchall()[0]
    return [_answers(con, view, contracts, p, row) for (view, contracts, _, _), p, row in zip(items, plans, rows)]


def _count_plan(view: str, contracts: list[Contract], have: dict[str, str], column_types: dict[str, str],
                unique_key) -> tuple[list[bool], list[str], dict[int, int], dict[str, int], dict[int, int]]:
    """Return (supported per contract, the SELECT list of one table's counts, contract → its count's column,
    column → its null count's column, compound key → its not-all-null count's column)."""
    ok = [_supported(c, have, column_types) for c in contracts]
    select = ["count(*)"]
    slot: dict[int, int] = {}  # contract index → column of the SELECT holding its unexpected count
    nulls: dict[str, int] = {}  # column → column of the SELECT holding its null count
    filtered: dict[int, int] = {}  # compound key: rows not all null

    def add(expr: str) -> int:
        select.append(expr)
        return len(select) - 1

    for i, c in enumerate(contracts):
        if not ok[i]:
            continue
        t = c.expectation_type
        col = c.kwargs.get("column")
        if col is not None and t != "expect_column_values_to_be_of_type" and col not in nulls:
            nulls[col] = add(f"count(*) FILTER (WHERE {q(col)} IS NULL)")
        if t == "expect_column_values_to_not_be_null":
            slot[i] = nulls[col]
        elif t in ("expect_column_values_to_be_between", "expect_column_values_to_be_in_set"):
            slot[i] = add(f"count(*) FILTER (WHERE {q(col)} IS NOT NULL AND NOT ({_condition(c)}))")
        elif t == "expect_column_values_to_be_unique" and unique_key is not None and list(unique_key) == [col]:
            slot[i] = add("0")
        elif t == "expect_column_values_to_be_unique":
            slot[i] = add(f"(SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {q(view)} WHERE {q(col)} IS NOT NULL "
                          f"GROUP BY {q(col)} HAVING count(*) >= 2))")
        elif t == "expect_compound_columns_to_be_unique":
            # rows count unless every key value is null (GX's ignore_row_if default); a row with a null in its key
            # is never a duplicate (GX matches keys with SQL equality, where NULL equals nothing)
            cols = c.kwargs["column_list"]
            filtered[i] = add(f"count(*) FILTER (WHERE NOT ({_all_null(cols)}))")
            if unique_key is not None and list(unique_key) == list(cols):
                slot[i] = add("0")
                continue
            slot[i] = add(f"(SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {q(view)} WHERE {_no_null(cols)} "
                          f"GROUP BY {', '.join(q(x) for x in cols)} HAVING count(*) >= 2))")
    return ok, select, slot, nulls, filtered


def _answers(con, view: str, contracts: list[Contract], plan, row: tuple) -> list[tuple[bool, dict] | None]:
    """Return (success, GX result dict) or None per contract of one table from its counts ``row`` (its ``plan``)."""
    have, ok, _, slot, nulls, filtered = plan
    n = int(row[0])
    out: list[tuple[bool, dict] | None] = []
    for i, c in enumerate(contracts):
        if not ok[i]:
            out.append(None)
            continue
        t = c.expectation_type
        if t == "expect_table_columns_to_match_set":
            out.append((True, {"observed_value": sorted(have)}))
        elif t == "expect_column_values_to_be_of_type":
            out.append((True, {"observed_value": have[c.kwargs["column"]]}))
        elif t == "expect_table_row_count_to_be_between":
            lo, hi = c.kwargs.get("min_value"), c.kwargs.get("max_value")
            out.append(((lo is None or n >= lo) and (hi is None or n <= hi), {"observed_value": n}))
        else:
            # On no rows GX's count of a condition is a SQL SUM, so NULL; uniqueness counts through a window: 0
            unexpected = int(row[slot[i]]) if n or t in ("expect_column_values_to_be_unique",
                                                         "expect_compound_columns_to_be_unique") else None
            col = c.kwargs.get("column")
            if t == "expect_column_values_to_not_be_null":
                nonnull = None
            elif t == "expect_compound_columns_to_be_unique":
                nonnull = int(row[filtered[i]])
            else:
                nonnull = n - int(row[nulls[col]])
            values = _unexpected_values(con, view, c) if unexpected else []
            out.append(_map_result(n, nonnull, unexpected, values))
    return out


def _unexpected_values(con, view: str, c: Contract) -> list:
    """Return up to 20 unexpected values of a failed expectation, by a query shaped like GX's (same rows, same order)."""
    t = c.expectation_type
    lim = f"LIMIT {PARTIAL_COUNT}"
    if t == "expect_compound_columns_to_be_unique":
        cols = c.kwargs["column_list"]
        sel = ", ".join(q(x) for x in cols)
        cur = con.execute(f"SELECT {sel} FROM (SELECT *, count(*) OVER (PARTITION BY {sel}) AS _num_rows FROM {q(view)}) "
                          f"WHERE {_no_null(cols)} AND NOT (_num_rows < 2) {lim}")
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    col = q(c.kwargs["column"])
    if t == "expect_column_values_to_not_be_null":
        sql = f"SELECT {col} FROM {q(view)} WHERE {col} IS NULL {lim}"
    elif t == "expect_column_values_to_be_unique":
        sql = (f"SELECT {col} FROM (SELECT {col}, count(*) OVER (PARTITION BY {col}) AS _num_rows FROM {q(view)}) "
               f"WHERE {col} IS NOT NULL AND NOT (_num_rows < 2) {lim}")
    else:
        sql = f"SELECT {col} FROM {q(view)} WHERE {col} IS NOT NULL AND NOT ({_condition(c)}) {lim}"
    return [r[0] for r in con.execute(sql).fetchall()]
