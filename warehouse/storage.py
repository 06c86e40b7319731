"""NORIBA_HOME on object storage: an ``s3://bucket/prefix`` (or ``gs://``) URL, through pyarrow's file systems.

The object store is then the durable home of ``raw/``, ``lake/`` and ``exports/``; a local working
folder (``NORIBA_CACHE``, default ``~/.cache/noriba/<hash of the URL>``) holds the rest (the DuckDB
warehouse, staging, reports, locks) and a copy of the objects in use. Every step works on that folder
as it does on a local home; the pipeline pulls what it reads (a feed's version metadata, a version's
partitions) before, and pushes what it writes after. So another machine with the same NORIBA_HOME
sees the same lake and publishes the same warehouse from it; DuckDB never reads the store itself.

Objects keep the folder layout (``lake/<table>/feed_id=<id>/feed_version=<v>/part-0.parquet``), so a
Hive-style reader (Spark, Trino) reads the lake in place. Each object is written whole (one PUT):
raw archives once (their name is their sha256), a lake partition replaced whole, the version's
``meta_feed_versions`` partition last: as in a local lake, it is the commit point of a version.

A local copy is current when its size and modification time equal the object's: the time is set from
the object after every download and upload, so nothing but the files themselves is tracked. Keys are
made only from paths under the working folder, relative, no '..' (transforms/paths.py), and keys
listed in the store that would not make such a path are skipped, so nothing leads out of the prefix
or out of the folder. Credentials and endpoint come from the standard variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL,
AWS_REGION; for gs://, Google's default credentials or STORAGE_EMULATOR_HOST) and never appear in
messages.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from transforms.errors import InputError
from transforms.paths import unsafe_reason

if TYPE_CHECKING:
    import pyarrow.fs

    from warehouse.workspace import Workspace

#: The folders of NORIBA_HOME that live in the object store; everything else stays in the working folder.
DURABLE = ("raw", "lake", "exports")
META_TABLE = "meta_feed_versions"
CHUNK = 1 << 20

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
#: Any one of these lets the AWS SDK find credentials (keys, a profile, web identity, a container role).
_AWS_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


class StorageError(InputError):
    """NORIBA_HOME's object store cannot be used; the message says which URL, why and what to do, in one line."""


def is_url(home: str | os.PathLike | None) -> bool:
    """Return True if ``home`` is written as a URL (``scheme://…``) rather than a folder."""
    return isinstance(home, str) and bool(_SCHEME.match(home))


@dataclass(frozen=True)
class Remote:
    """Where NORIBA_HOME's durable folders live: ``<scheme>://<bucket>/<prefix>``."""

    scheme: str
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> "Remote":
        """Return the remote of ``url``. If it is not an ``s3://bucket[/prefix]`` or ``gs://`` URL, raise StorageError."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("s3", "gs"):
            raise StorageError(f"NORIBA_HOME={url.split('?')[0]}: only a folder, an s3:// or a gs:// URL is understood; "
                               "give e.g. s3://my-bucket/noriba")
        prefix = parts.path.strip("/")
        if parts.query or parts.fragment or parts.username or parts.password or not _BUCKET.fullmatch(parts.netloc or ""):
            raise StorageError(f"NORIBA_HOME={scheme}://{parts.hostname or ''}: give the bucket and a prefix only, e.g. "
                               f"{scheme}://my-bucket/noriba (no credentials, port, query or fragment: credentials come from "
                               "the environment)")
        if prefix and (unsafe_reason(prefix) or any(p in ("", ".") for p in prefix.split("/"))):
            raise StorageError(f"NORIBA_HOME={scheme}://{parts.netloc}/{prefix}: the prefix is not a plain path "
                               "(empty, '.' or '..' parts, or control characters); give e.g. "
                               f"{scheme}://{parts.netloc}/noriba")
        return cls(scheme, parts.netloc, prefix)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def key(self, rel: str) -> str:
        """Return the file system path (``bucket/prefix/rel``) of ``rel``, a path relative to NORIBA_HOME.

        If ``rel`` would lead out of the prefix, or is not under one of the durable folders, raise StorageError.
        """
        if unsafe_reason(rel) or "\\" in rel or any(p in ("", ".") for p in rel.split("/")) or rel.split("/")[0] not in DURABLE:
            raise StorageError(f"{self.url}: refused to make an object key of {rel!r}: not a plain path under "
                               f"{', '.join(DURABLE)}")
        return "/".join(p for p in (self.bucket, self.prefix, rel) if p)

    def location(self, rel: str) -> str:
        """Return the URL of ``rel`` (a path relative to NORIBA_HOME), for messages and metadata."""
        return f"{self.url}/{rel}"

    @cached_property
    def fs(self) -> "pyarrow.fs.FileSystem":
        """Return the pyarrow file system of the store, configured from the environment. If none can be, raise StorageError."""
        return _filesystem(self)

    def default_cache(self) -> Path:
        """Return the default working folder of this remote: ``$XDG_CACHE_HOME/noriba/<bucket>-<hash of the URL>``."""
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return base / "noriba" / f"{self.bucket}-{hashlib.sha256(self.url.encode()).hexdigest()[:12]}"


def _filesystem(remote: Remote):
    import pyarrow.fs as pafs

    env = os.environ
    if remote.scheme == "gs":
        from datetime import timedelta

        opts = {"retry_time_limit": timedelta(seconds=30)}  # the default retries for many minutes before failing
        emulator = env.get("STORAGE_EMULATOR_HOST")
        if emulator:
            split = urlsplit(emulator if "://" in emulator else f"http://{emulator}")
            return pafs.GcsFileSystem(anonymous=True, endpoint_override=split.netloc, scheme=split.scheme or "http", **opts)
        return pafs.GcsFileSystem(**opts)  # Google's application default credentials
    if not any(env.get(v) for v in _AWS_CREDENTIALS):
        raise StorageError(f"NORIBA_HOME={remote.url}: no credentials for the object store; set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and AWS_ENDPOINT_URL for a store other than AWS S3")
    opts: dict = {"region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                  "connect_timeout": 5, "request_timeout": 60,
                  "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3)}
    if env.get("AWS_ACCESS_KEY_ID"):
        if not env.get("AWS_SECRET_ACCESS_KEY"):
            raise StorageError(f"NORIBA_HOME={remote.url}: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both")
        opts.update(access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
                    session_token=env.get("AWS_SESSION_TOKEN") or None)
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        split = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if split.scheme not in ("http", "https") or not split.netloc or split.username or split.password:
            raise StorageError(f"AWS_ENDPOINT_URL: give the store's address as http(s)://host:port, e.g. http://127.0.0.1:9000")
        opts.update(endpoint_override=split.netloc, scheme=split.scheme)
    return pafs.S3FileSystem(**opts)


def _why(exc: BaseException) -> str:
    """Return the first useful words of a store error, without request ids."""
    text = re.sub(r"\s*\(Request ID:[^)]*\)", "", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return text[:300]


_checked: set[str] = set()


def check(remote: Remote) -> None:
    """Make sure the store answers and the bucket exists (once per process). If not, raise StorageError."""
    if remote.url in _checked:
        return
    import pyarrow.fs as pafs

    try:
        info = remote.fs.get_file_info(remote.bucket)
    except OSError as exc:
        hint = "AWS_ENDPOINT_URL" if remote.scheme == "s3" else "STORAGE_EMULATOR_HOST or GOOGLE_APPLICATION_CREDENTIALS"
        raise StorageError(f"NORIBA_HOME={remote.url}: the object store did not answer ({_why(exc)}); "
                           f"check {hint}, the credentials and the network") from None
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"NORIBA_HOME={remote.url}: there is no bucket {remote.bucket} (or these credentials may not see it); "
                           "create it or give an existing one")
    _checked.add(remote.url)


def cache_for(remote: Remote) -> Path:
    """Return the working folder of ``remote``: ``$NORIBA_CACHE``, else its default under ~/.cache/noriba."""
    given = os.environ.get("NORIBA_CACHE")
    if given and is_url(given):
        raise StorageError(f"NORIBA_CACHE={given}: the working folder must be a local folder")
    return Path(given or remote.default_cache()).resolve()


# --- the copies: pull what a step reads, push what it writes -------------------------------------------------------

def _rel(ws: "Workspace", path: Path) -> str | None:
    """Return ``path`` relative to the working folder if it is a durable file (under raw/, lake/, exports/, no hidden part)."""
    try:
        rel = Path(path).resolve().relative_to(ws.home).as_posix()
    except ValueError:
        return None
    parts = rel.split("/")
    if parts[0] not in DURABLE or len(parts) < 2 or any(p.startswith(".") for p in parts):
        return None
    return rel


def _current(local: Path, info) -> bool:
    try:
        st = local.stat()
    except FileNotFoundError:
        return False
    return st.st_size == info.size and st.st_mtime_ns == info.mtime_ns


def _stamp(local: Path, info) -> None:
    os.utime(local, ns=(info.mtime_ns, info.mtime_ns))


def _store_error(ws: "Workspace", what: str, exc: OSError) -> StorageError:
    return StorageError(f"{ws.remote.url}: could not {what} ({_why(exc)}); run the command again once the store answers")


def _upload(ws: "Workspace", local: Path, key: str) -> None:
    fs = ws.remote.fs
    try:
        with open(local, "rb") as src, fs.open_output_stream(key) as dst:
            while block := src.read(CHUNK):
                dst.write(block)
        _stamp(local, fs.get_file_info(key))
    except OSError as exc:
        raise _store_error(ws, f"write {ws.remote.bucket}/{key.split('/', 1)[1]}", exc) from None


def _download(ws: "Workspace", key: str, local: Path, info) -> None:
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.dl-{uuid.uuid4().hex[:8]}")
    try:
        with ws.remote.fs.open_input_stream(key) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        _stamp(tmp, info)
        os.replace(tmp, local)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _store_error(ws, f"read {key.split('/', 1)[1]}", exc) from None


def _infos(ws: "Workspace", keys: list[str]) -> list:
    try:
        return ws.remote.fs.get_file_info(keys)
    except OSError as exc:
        raise _store_error(ws, "look up objects", exc) from None


def push(ws: "Workspace", paths: list[Path], *, immutable: bool = False) -> int:
    """Return how many of the local files ``paths`` were uploaded, in order, each one not already current in the store.

    If ``immutable`` (raw archives, named by content), then an object of the same size is taken as
    the same and only its time is copied. On a local NORIBA_HOME, do nothing.
    """
    if ws.remote is None:
        return 0
    pairs = [(Path(p), ws.remote.key(rel)) for p in paths if (rel := _rel(ws, Path(p))) and Path(p).is_file()]
    sent = 0
    for (local, key), info in zip(pairs, _infos(ws, [k for _, k in pairs])):
        if info.is_file and (_current(local, info) or (immutable and info.size == local.stat().st_size)):
            if immutable and not _current(local, info):
                _stamp(local, info)
            continue
        _upload(ws, local, key)
        sent += 1
    return sent


def _listing(ws: "Workspace", folder: Path) -> dict[str, object]:
    """Return {path relative to NORIBA_HOME: file info} of the objects under ``folder``; keys that would not make a
    plain path under the working folder are left out."""
    import pyarrow.fs as pafs

    rel = _rel(ws, folder / "x")
    if rel is None:
        return {}
    base = ws.remote.key(rel.rsplit("/", 1)[0])
    try:
        infos = ws.remote.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise _store_error(ws, f"list {rel.rsplit('/', 1)[0]}", exc) from None
    root = "/".join(p for p in (ws.remote.bucket, ws.remote.prefix) if p) + "/"
    out = {}
    for info in infos:
        if not info.is_file or not info.path.startswith(root):
            continue
        name = info.path[len(root):]
        parts = name.split("/")
        if unsafe_reason(name) or "\\" in name or any(p in ("", ".") or p.startswith(".") for p in parts):
            continue
        out[name] = info
    return out


def pull(ws: "Workspace", folder: Path) -> int:
    """Return how many objects under ``folder`` (a durable folder of the working folder) were downloaded because the
    local copy was missing or not current. On a local NORIBA_HOME, do nothing."""
    if ws.remote is None:
        return 0
    got = 0
    for rel, info in _listing(ws, folder).items():
        local = ws.home / rel
        if not _current(local, info):
            _download(ws, ws.remote.key(rel), local, info)
            got += 1
    return got


def push_tree(ws: "Workspace", folder: Path) -> int:
    """Return how many files under ``folder`` were uploaded because the store had no current copy (hidden names, the
    temporary files of a step, are skipped). Nothing is deleted in the store. On a local NORIBA_HOME, do nothing."""
    if ws.remote is None or not folder.is_dir():
        return 0
    have = _listing(ws, folder)
    todo = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            local = Path(dirpath) / f
            rel = _rel(ws, local)
            if rel is None or local.is_symlink():
                continue
            info = have.get(rel)
            if info is None or not _current(local, info):
                todo.append((local, rel))
    # a lake's meta tables last: they say a version is whole
    for local, rel in sorted(todo, key=lambda x: (x[1].startswith(("lake/meta_", "lake/trips_meta/")), x[1])):
        _upload(ws, local, ws.remote.key(rel))
    return len(todo)


def _version_parts(ws: "Workspace", tables: list[str], feed_id: str, feed_version: str) -> list[Path]:
    """Return the partition files of a version in ``tables``, the meta table last (the commit point)."""
    tables = sorted(t for t in tables if t != META_TABLE) + ([META_TABLE] if META_TABLE in tables else [])
    return [ws.lake_partition(t, feed_id, feed_version) / "part-0.parquet" for t in tables]


def push_version(ws: "Workspace", feed_id: str, feed_version: str) -> int:
    """Return how many partitions of a lake version were uploaded, its meta partition last.

    If the store's meta partition is the local one, then the version is there whole and nothing is sent.
    On a local NORIBA_HOME, do nothing.
    """
    if ws.remote is None or not ws.lake.is_dir():
        return 0
    parts = [p for p in _version_parts(ws, [d.name for d in ws.lake.iterdir() if d.is_dir()], feed_id, feed_version)
             if p.is_file()]
    if not parts or parts[-1].parent.parent.parent.name != META_TABLE:
        return 0
    meta = parts[-1]
    (info,) = _infos(ws, [ws.remote.key(_rel(ws, meta))])
    if info.is_file and _current(meta, info):
        return 0
    return push(ws, parts)


def pull_version(ws: "Workspace", feed_id: str, feed_version: str) -> int:
    """Return how many partitions of a lake version were downloaded (those missing or not current locally).

    On a local NORIBA_HOME, do nothing.
    """
    import pyarrow.fs as pafs

    if ws.remote is None:
        return 0
    try:
        tables = [i.base_name for i in ws.remote.fs.get_file_info(
            pafs.FileSelector(ws.remote.key("lake"), recursive=False, allow_not_found=True)) if i.type == pafs.FileType.Directory]
    except OSError as exc:
        raise _store_error(ws, "list lake", exc) from None
    parts = _version_parts(ws, [t for t in tables if not unsafe_reason(t) and not t.startswith(".")], feed_id, feed_version)
    keys = [ws.remote.key(_rel(ws, p)) for p in parts]
    got = 0
    for local, key, info in zip(parts, keys, _infos(ws, keys)):
        if info.is_file and not _current(local, info):
            _download(ws, key, local, info)
            got += 1
    return got


def pull_files(ws: "Workspace", paths: list[Path]) -> int:
    """Return how many of the files ``paths`` (of the working folder) were downloaded because they were missing or
    not current, e.g. a raw archive another machine fetched. On a local NORIBA_HOME, do nothing."""
    if ws.remote is None:
        return 0
    pairs = [(Path(p), ws.remote.key(rel)) for p in paths if (rel := _rel(ws, Path(p)))]
    got = 0
    for (local, key), info in zip(pairs, _infos(ws, [k for _, k in pairs])):
        if info.is_file and not _current(local, info):
            _download(ws, key, local, info)
            got += 1
    return got


def location(ws: "Workspace", path: str | Path) -> str:
    """Return where ``path`` (a file of the working folder) lives for good: its object URL on a remote home, else the path."""
    if ws.remote is not None and (rel := _rel(ws, Path(path))):
        return ws.remote.location(rel)
    return str(path)


def sync_up(ws: "Workspace") -> int:
    """Return how many files of raw/, lake/ and exports/ were uploaded because the store had no current copy.

    The catch-all after a command: the steps push what they write, this sends anything else (trips,
    reports for municipalities, the catalog site). On a local NORIBA_HOME, do nothing.
    """
    if ws.remote is None:
        return 0
    return sum(push_tree(ws, ws.home / d) for d in DURABLE)
