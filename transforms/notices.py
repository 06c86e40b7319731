"""Notices: what validation found, one row per finding, in the shape of MobilityData's gtfs-validator."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from transforms.arrowrows import rows_table

ERROR = "ERROR"
WARNING = "WARNING"
INFO = "INFO"
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass
class Notice:
    code: str
    severity: str
    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    value: str | None = None

    def render(self) -> str:
        """Return the notice as one line a person can act on: where, what, which rule."""
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f" [{self.field}]"
        return f"{self.severity:<7} {where}: {self.message} ({self.code})".replace(" : ", ": ")


NOTICE_SCHEMA = pa.schema(
    [
        ("code", pa.string()),
        ("severity", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("field", pa.string()),
        ("value", pa.string()),
        ("message", pa.string()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("code", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)


@dataclass
class QuarantinedRow:
    file: str
    line: int | None
    code: str
    reason: str
    raw: str


@dataclass
class Findings:
    """Collect notices and quarantined rows while a feed is read."""

    notices: list[Notice] = field(default_factory=list)
    quarantine: list[QuarantinedRow] = field(default_factory=list)
    #: notice tables produced set-based (DuckDB/Arrow), already in NOTICE_SCHEMA
    notice_tables: list[pa.Table] = field(default_factory=list)
    quarantine_tables: list[pa.Table] = field(default_factory=list)
    #: (code, severity) -> number of findings, including those not kept as samples
    counts: Counter = field(default_factory=Counter)

    def add(self, code: str, severity: str, message: str, **where) -> None:
        self.notices.append(Notice(code=code, severity=severity, message=message, **where))
        self.counts[(code, severity)] += 1

    def add_table(self, samples: pa.Table, counts: dict[tuple[str, str], int]) -> None:
        """Add notice samples found set-based, with the total count per (code, severity)."""
        if samples.num_rows:
            self.notice_tables.append(samples.select(NOTICE_SCHEMA.names).cast(NOTICE_SCHEMA))
        self.counts.update(counts)

    def quarantine_row(self, file: str, line: int | None, code: str, reason: str, raw: str) -> None:
        self.quarantine.append(QuarantinedRow(file, line, code, reason, raw))

    def notices_table(self) -> pa.Table:
        rows = rows_table([asdict(n) for n in self.notices], NOTICE_SCHEMA)
        return pa.concat_tables([rows, *(t.select(NOTICE_SCHEMA.names).cast(NOTICE_SCHEMA) for t in self.notice_tables)])

    def quarantine_table(self) -> pa.Table:
        rows = rows_table([asdict(q) for q in self.quarantine], QUARANTINE_SCHEMA)
        return pa.concat_tables(
            [rows, *(t.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA) for t in self.quarantine_tables)]
        )
