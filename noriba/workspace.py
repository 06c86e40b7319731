"""The workspace: everything Noriba writes lives under one folder, ``NORIBA_HOME``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    home: Path

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> "Workspace":
        """Return the workspace at ``home``, else ``$NORIBA_HOME``, else ``./noriba-data``."""
        root = Path(home or os.environ.get("NORIBA_HOME") or "noriba-data").resolve()
        return cls(root)

    @property
    def raw(self) -> Path:
        return self.home / "raw"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def staging(self) -> Path:
        return self.home / "staging"

    @property
    def warehouse(self) -> Path:
        return self.home / "noriba.duckdb"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    def ensure(self) -> "Workspace":
        for p in (self.raw, self.lake, self.staging, self.exports, self.reports):
            p.mkdir(parents=True, exist_ok=True)
        return self

    def lake_partition(self, table: str, feed_id: str, feed_version: str) -> Path:
        return self.lake / table / f"feed_id={feed_id}" / f"feed_version={feed_version}"
