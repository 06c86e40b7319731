"""Receive a feed's source and archive it, immutably, under ``raw/<feed_id>/``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from noriba.specs import FeedSpec, Source
from noriba.workspace import Workspace
from transforms.adapters import InputError


@dataclass
class Fetched:
    feed_id: str
    raw_path: str
    source_sha256: str
    fetched_at: str
    source: str
    not_modified: bool = False  # the server answered 304, nothing was downloaded

    def to_dict(self) -> dict:
        return asdict(self)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _zip_folder(folder: Path) -> bytes:
    """Return a deterministic zip of ``folder`` (sorted names, fixed timestamps), so its hash is stable."""
    return _zip_members({p.relative_to(folder).as_posix(): p.read_bytes
                         for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")})


def _zip_members(members: dict) -> bytes:
    """Return a deterministic zip of {name: bytes or reader} (sorted names, fixed timestamps)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            data = members[name]
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data if isinstance(data, bytes) else data())
    return buf.getvalue()


def _fetch_bundle(ws: Workspace, feed_id: str, source: Source) -> Fetched:
    """Archive several files (source.files, or a folder or file) plus the kind's manifest as one deterministic zip."""
    members: dict = {}
    if source.files:
        missing = [f"{p} ({name})" for name, p in source.files if not p.is_file()]
        if missing:
            raise InputError(f"{missing[0]}: no such file (feed '{feed_id}', source.files)"
                             + (f"; {len(missing) - 1} more missing" if len(missing) > 1 else ""))
        members = {name: p.read_bytes for name, p in source.files}
        where = ", ".join(str(p) for _, p in source.files)
    else:
        path = source.path
        if path is None or not path.exists():
            raise InputError(f"{path}: no such file or folder (feed '{feed_id}', source.path)")
        if path.is_dir():
            members = {p.relative_to(path).as_posix(): p.read_bytes
                       for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith(".")}
        else:
            members = {path.name: path.read_bytes}
        where = str(path)
    total = sum(p.stat().st_size for _, p in source.files) if source.files else 0
    if total > source.max_bytes:
        raise InputError(f"{where}: {total} bytes, over the feed's limit source.max_bytes={source.max_bytes}")
    if source.manifest:
        name, text = source.manifest
        members[name] = text.encode("utf-8")
    target, sha = _archive(ws, feed_id, None, _zip_members(members), ".zip")
    return Fetched(feed_id, str(target), sha, _now(), where)


def _archive(ws: Workspace, feed_id: str, data_path: Path | None, data: bytes | None, suffix: str) -> tuple[Path, str]:
    """Return (archived path, sha256) after storing the input once under raw/<feed_id>/<sha256><suffix>."""
    folder = ws.raw / feed_id
    folder.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(data).hexdigest() if data is not None else _sha256_file(data_path)
    target = folder / f"{sha}{suffix}"
    if not target.exists():
        tmp = folder / f".{sha}.tmp{os.getpid()}"
        if data is not None:
            tmp.write_bytes(data)
        else:
            shutil.copyfile(data_path, tmp)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    return target, sha


def fetch(ws: Workspace, feed_id: str, source: Source) -> Fetched:
    """Return where the feed's input was archived. If it cannot be received, raise InputError."""
    ws.ensure()
    if source.files or source.manifest:
        return _fetch_bundle(ws, feed_id, source)
    if source.url:
        return _fetch_url(ws, feed_id, source)
    path = source.path
    if path is None or not path.exists():
        raise InputError(f"{path}: no such file or folder (feed '{feed_id}', source.path)")
    if path.is_dir():
        target, sha = _archive(ws, feed_id, None, _zip_folder(path), ".zip")
    else:
        size = path.stat().st_size
        if size > source.max_bytes:
            raise InputError(f"{path}: {size} bytes, over the feed's limit source.max_bytes={source.max_bytes}")
        target, sha = _archive(ws, feed_id, path, None, "".join(path.suffixes[-1:]) or ".bin")
    return Fetched(feed_id, str(target), sha, _now(), str(path))


def _fetch_url(ws: Workspace, feed_id: str, source: Source) -> Fetched:
    """Download with ETag / If-Modified-Since, retries with back-off, and a size limit."""
    import httpx

    state_path = ws.raw / feed_id / "http_state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    headers = {"User-Agent": "noriba/0.1 (+https://github.com/noriba)"}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    last_error = ""
    for attempt in range(max(1, source.retries)):
        try:
            with httpx.stream("GET", source.url, headers=headers, timeout=source.timeout_s, follow_redirects=True) as resp:
                if resp.status_code == 304 and state.get("raw_path") and Path(state["raw_path"]).exists():
                    return Fetched(feed_id, state["raw_path"], state["sha256"], _now(), source.url, not_modified=True)
                if resp.status_code >= 500 or resp.status_code == 429:
                    last_error = f"server answered HTTP {resp.status_code}"
                    raise httpx.TransportError(last_error)
                if resp.status_code != 200:
                    raise InputError(f"{source.url}: server answered HTTP {resp.status_code}; check the URL in the feed spec")
                declared = int(resp.headers.get("content-length") or 0)
                if declared > source.max_bytes:
                    raise InputError(f"{source.url}: {declared} bytes announced, over source.max_bytes={source.max_bytes}")
                buf = bytearray()
                for chunk in resp.iter_bytes():
                    buf += chunk
                    if len(buf) > source.max_bytes:
                        raise InputError(f"{source.url}: more than source.max_bytes={source.max_bytes} bytes; download stopped")
                suffix = ".zip" if bytes(buf[:4]) == b"PK\x03\x04" else (Path(httpx.URL(source.url).path).suffix or ".bin")
                target, sha = _archive(ws, feed_id, None, bytes(buf), suffix)
                state = {"etag": resp.headers.get("etag"), "last_modified": resp.headers.get("last-modified"),
                         "raw_path": str(target), "sha256": sha}
                state_path.write_text(json.dumps(state))
                return Fetched(feed_id, str(target), sha, _now(), source.url)
        except httpx.HTTPError as exc:
            last_error = str(exc) or type(exc).__name__
            time.sleep(min(2 ** attempt, 30) * 0.5)
    raise InputError(f"{source.url}: download failed after {source.retries} tries ({last_error})")
