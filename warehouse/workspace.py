"""The workspace: everything Noriba writes lives under one folder, ``NORIBA_HOME``.

``NORIBA_HOME`` may also be an ``s3://bucket/prefix`` (or ``gs://``) URL: then raw/, lake/ and exports/
live in that object store and ``home`` is the local working folder (``NORIBA_CACHE``) that holds the
warehouse and a copy of the objects in use (see warehouse/storage.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from transforms.errors import InputError

if TYPE_CHECKING:
    from warehouse.storage import Remote

#: A feed or source id as used in a folder name: one path component, no leading dot, no separators.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def safe_id(feed_id: object) -> str:
    """Return ``feed_id``. If it could not be used as one folder name under the workspace, raise InputError."""
    if not isinstance(feed_id, str) or not SAFE_ID.fullmatch(feed_id):
        raise InputError(f"{feed_id!r} is not a safe feed id: use letters, digits, '-', '_' or '.', "
                         "starting with a letter or digit, at most 128 characters")
    return feed_id


@dataclass(frozen=True)
class Workspace:
    home: Path
    #: the object store holding raw/, lake/ and exports/ when NORIBA_HOME is a URL; None for a local home
    remote: "Remote | None" = None

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> "Workspace":
        """Return the workspace at ``home``, else ``$NORIBA_HOME``, else ``./noriba-data``.

        If that is an ``s3://`` or ``gs://`` URL, then the workspace's folder is its working folder
        (``$NORIBA_CACHE``, default under ~/.cache/noriba) and the store is checked once; if it cannot
        be used (no credentials, no answer, no bucket), then raise InputError saying what to do.
        """
        given = home or os.environ.get("NORIBA_HOME") or "noriba-data"
        from warehouse.storage import is_url

        if is_url(given):
            from warehouse.storage import Remote, cache_for, check

            remote = Remote.parse(given)
            check(remote)
            return cls(cache_for(remote), remote)
        return cls(Path(given).resolve())

    @property
    def location(self) -> str:
        """Return NORIBA_HOME as given: the URL of an object-store home, else the folder."""
        return self.remote.url if self.remote else str(self.home)

    @property
    def raw(self) -> Path:
        return self.home / "raw"

    def raw_dir(self, feed_id: str) -> Path:
        """Return ``raw/<feed_id>``. If the id is not a safe folder name, raise InputError."""
        return self.raw / safe_id(feed_id)

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
        return self.lake / table / f"feed_id={safe_id(feed_id)}" / f"feed_version={feed_version}"
