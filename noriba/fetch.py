"""Receive a feed's source and archive it, immutably, under ``raw/<feed_id>/``.

Every input is received the same way: streamed into a temporary file in its ``raw/<feed_id>/``
folder (never whole in memory), stopped at ``source.max_bytes``, hashed, and only then moved to
``raw/<feed_id>/<sha256><suffix>``; a failure leaves nothing behind. A download must also end
within ``source.deadline_s`` seconds in all, retries included, however slowly the server sends.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from noriba.specs import Source
from warehouse.workspace import Workspace
from transforms.adapters import InputError

CHUNK = 1 << 20
#: Redirects followed before a download is refused as a redirect loop.
MAX_REDIRECTS = 10
#: Statuses worth asking again after a pause (the server is busy or failing for now).
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
USER_AGENT = "noriba/0.1 (+https://github.com/noriba)"


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


def _sha256_file(path: Path, *, limit: int | None = None, too_big=None) -> str:
    """Return the sha256 of the file. If it holds more than ``limit`` bytes, raise ``too_big()``."""
    h = hashlib.sha256()
    n = 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            n += len(chunk)
            if limit is not None and n > limit:
                raise too_big()
            h.update(chunk)
    return h.hexdigest()


def archive_suffix(name: str, *, default: str = ".bin") -> str:
    """Return the extension of ``name`` for an archived copy. If it is not a short plain extension, return ``default``."""
    suffix = os.path.splitext(name)[1]
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix) else default


def _too_big(where: str, limit: int, feed_id: str, detail: str = "") -> InputError:
    return InputError(f"{where}: larger than source.max_bytes={limit} bytes{detail} (feed '{feed_id}'); nothing was kept. "
                      "If the feed really is this big, raise source.max_bytes in its spec",
                      ja=f"{where}: 上限 source.max_bytes={limit} バイトを超えています{detail}（フィード '{feed_id}'）。何も保存していません。"
                         "本当にこの大きさのデータであれば、フィード定義（spec）の source.max_bytes を引き上げてください")


#: A temporary file untouched this long was left by a run that was killed; the next run of the feed deletes it.
STALE_SECONDS = 24 * 3600


@contextmanager
def _incoming(folder: Path) -> Iterator[BinaryIO]:
    """Yield a new temporary file in ``folder``. On exit it is deleted, unless ``_keep`` moved it into the archive."""
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(".incoming-*.tmp"):
        with suppress(OSError):
            if time.time() - old.lstat().st_mtime > STALE_SECONDS:
                old.unlink()
    f = tempfile.NamedTemporaryFile(prefix=".incoming-", suffix=".tmp", dir=folder, delete=False)  # noqa: SIM115
    try:
        with f:
            yield f
    finally:
        with suppress(FileNotFoundError):
            os.unlink(f.name)
        if made:
            with suppress(OSError):
                folder.rmdir()  # only if still empty: nothing was archived


def _keep(f: BinaryIO, suffix: str, sha: str | None = None) -> tuple[Path, str]:
    """Return (archived path, sha256) after moving the received file to ``<sha256><suffix>`` beside it (once per content)."""
    f.flush()
    tmp = Path(f.name)
    sha = sha or _sha256_file(tmp)
    target = tmp.parent / f"{sha}{suffix}"
    if not target.exists():
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    return target, sha


def archive_file(ws: Workspace, feed_id: str, path: Path, *, max_bytes: int, suffix: str | None = None) -> tuple[Path, str, int]:
    """Return (archived path, sha256, bytes) of a local file copied to raw/<feed_id>/<sha256><suffix>.

    A file already archived is only hashed, not copied again. If it is not a regular file, is bigger
    than ``max_bytes`` or changes while it is read, raise InputError and keep nothing.
    """
    folder = ws.raw_dir(feed_id)
    if not path.is_file():
        raise InputError(f"{path}: not a regular file (feed '{feed_id}', source.path); give a file or a folder",
                         ja=f"{path}: 通常のファイルではありません（フィード '{feed_id}'、source.path）。ファイルかフォルダを指定してください")

    def too_big() -> InputError:
        return _too_big(str(path), max_bytes, feed_id)

    size = path.stat().st_size
    if size > max_bytes:
        raise too_big()
    sha = _sha256_file(path, limit=max_bytes, too_big=too_big)
    target = folder / f"{sha}{suffix or archive_suffix(path.name)}"
    if target.exists():
        return target, sha, size
    with _incoming(folder) as f:
        shutil.copyfile(path, f.name)  # the kernel's copy; the copy is then hashed again (from the page cache)
        if _sha256_file(Path(f.name), limit=max_bytes, too_big=too_big) != sha:
            raise InputError(f"{path}: the file changed while it was being read (feed '{feed_id}'); "
                             "run again once whatever writes it has finished",
                             ja=f"{path}: 読み込み中にファイルが書き換えられました（フィード '{feed_id}'）。"
                                "ファイルの書き込みが終わってから、もう一度実行してください")
        _keep(f, target.suffix, sha)
    return target, sha, size


def _inside(path: Path, root: Path) -> bool:
    """Return whether ``path``, its symbolic links followed, lies inside the folder ``root`` (already resolved)."""
    return path.resolve().is_relative_to(root)


def refuse_links_outside(paths: list[Path], root: Path, *, feed_id: str) -> None:
    """If any of ``paths`` is reached through a linked folder, or leads outside ``root`` (a link, or a '..'
    in a pattern), raise InputError naming it. Linked folders are refused as in a folder feed: a link
    back up the tree would list the same files again and again.
    """
    real_root = root.resolve()
    for p in paths:
        if not _inside(p, real_root):
            raise InputError(f"{p}: leads to {p.resolve()}, outside the source folder {root} (feed '{feed_id}'); "
                             "symbolic links out of the folder are not followed: copy the file into the folder instead",
                             ja=f"{p}: 入力フォルダ {root} の外（{p.resolve()}）を指しています（フィード '{feed_id}'）。"
                                "フォルダの外へのリンクはたどりません。ファイルそのものをフォルダにコピーしてください")
        with suppress(ValueError):
            for parent in p.relative_to(root).parents:
                if parent != Path(".") and (root / parent).is_symlink():
                    raise InputError(f"{p}: reached through {root / parent}, a link to a folder, which is not followed "
                                     f"(feed '{feed_id}'); put the files themselves in the source folder",
                                     ja=f"{p}: フォルダへのリンク {root / parent} を経由しています。フォルダへのリンクはたどりません"
                                        f"（フィード '{feed_id}'）。ファイルそのものを入力フォルダに置いてください")


def _folder_files(folder: Path, *, feed_id: str) -> dict[str, Path]:
    """Return {name in the archive: file} of the files under ``folder``, hidden files skipped.

    The entries transforms/gtfs.py leaves out of a folder feed are refused here, since an archive has no
    notices: a link leading out of ``folder`` or to a folder, a link to nothing, a device, pipe or socket.
    If there is one, raise InputError naming it.
    """
    base = folder.resolve()
    found: dict[str, Path] = {}

    def refuse(p: Path, why: str, why_ja: str) -> InputError:
        return InputError(f"{p}: {why} (feed '{feed_id}'); put the file itself in the feed's folder, or remove this entry",
                          ja=f"{p}: {why_ja}（フィード '{feed_id}'）。ファイルそのものをフィードのフォルダに置くか、この項目を削除してください")

    for dirpath, dirnames, filenames in os.walk(folder):  # does not enter linked folders
        here = Path(dirpath)
        for d in sorted(dirnames):
            if (here / d).is_symlink() and not d.startswith("."):
                raise refuse(here / d, "a link to a folder, which is not followed", "フォルダへのリンクです（たどりません）")
        for f in sorted(filenames):
            p = here / f
            if f.startswith("."):
                continue
            if p.is_symlink() and not _inside(p, base):
                raise refuse(p, f"a link to {p.resolve()}, outside the source folder {folder}",
                             f"入力フォルダ {folder} の外（{p.resolve()}）へのリンクです")
            try:
                mode = p.stat().st_mode
            except OSError:
                raise refuse(p, "a link to nothing", "リンク先がありません") from None
            if not stat.S_ISREG(mode):
                raise refuse(p, "not a regular file (a device, pipe or socket)", "通常のファイルではありません（デバイス、パイプまたはソケット）")
            found[p.relative_to(folder).as_posix()] = p
    return found


def _write_zip(f: BinaryIO, members: dict[str, Path | bytes]) -> None:
    """Write a deterministic zip of {name: file or bytes} to ``f`` (sorted names, fixed timestamps), one chunk at a time."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            data = members[name]
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(data, bytes):
                zf.writestr(info, data)
                continue
            with data.open("rb") as src:
                info.file_size = os.fstat(src.fileno()).st_size  # as writestr sets it: same bytes, same hash
                with zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)


def _archive_zip(ws: Workspace, feed_id: str, members: dict[str, Path | bytes], *, where: str, max_bytes: int) -> tuple[Path, str]:
    """Return (archived path, sha256) of the members zipped. If their files hold more than ``max_bytes``, raise InputError."""
    folder = ws.raw_dir(feed_id)
    files = [p for p in members.values() if isinstance(p, Path)]
    for p in files:
        if not p.is_file():
            raise InputError(f"{p}: not a regular file (feed '{feed_id}'); give files or a folder",
                             ja=f"{p}: 通常のファイルではありません（フィード '{feed_id}'）。ファイルかフォルダを指定してください")
    total = sum(p.stat().st_size for p in files)
    if total > max_bytes:
        raise _too_big(where, max_bytes, feed_id, f" ({total} bytes)")
    with _incoming(folder) as f:
        _write_zip(f, members)
        return _keep(f, ".zip")


def _fetch_bundle(ws: Workspace, feed_id: str, source: Source) -> Fetched:
    """Archive several files (source.files, or a folder or file) plus the kind's manifest as one deterministic zip."""
    members: dict[str, Path | bytes] = {}
    if source.files:
        missing = [f"{p} ({name})" for name, p in source.files if not p.is_file()]
        if missing:
            raise InputError(f"{missing[0]}: no such file (feed '{feed_id}', source.files)"
                             + (f"; {len(missing) - 1} more missing" if len(missing) > 1 else ""),
                             ja=f"{missing[0]}: ファイルがありません（フィード '{feed_id}'、source.files）"
                                + (f"。ほかに {len(missing) - 1} 件ありません" if len(missing) > 1 else "")
                                + "。ファイルを置くか、フィード定義（spec）の source.files を直してください")
        members = dict(source.files)
        where = ", ".join(str(p) for _, p in source.files)
    else:
        path = source.path
        if path is None or not path.exists():
            raise InputError(f"{path}: no such file or folder (feed '{feed_id}', source.path)",
                         ja=f"{path}: ファイルまたはフォルダがありません（フィード '{feed_id}'、source.path）。"
                            "ファイルを置くか、フィード定義（spec）の source.path を直してください")
        members = _folder_files(path, feed_id=feed_id) if path.is_dir() else {path.name: path}
        where = str(path)
    if source.manifest:
        name, text = source.manifest
        members[name] = text.encode("utf-8")
    target, sha = _archive_zip(ws, feed_id, members, where=where, max_bytes=source.max_bytes)
    return Fetched(feed_id, str(target), sha, _now(), where)


def fetch(ws: Workspace, feed_id: str, source: Source) -> Fetched:
    """Return where the feed's input was archived. If it cannot be received, raise InputError."""
    ws.ensure()
    ws.raw_dir(feed_id)  # a hostile id is refused before anything is read
    if source.files or source.manifest:
        return _fetch_bundle(ws, feed_id, source)
    if source.url:
        return _fetch_url(ws, feed_id, source)
    path = source.path
    if path is None or not path.exists():
        raise InputError(f"{path}: no such file or folder (feed '{feed_id}', source.path)",
                         ja=f"{path}: ファイルまたはフォルダがありません（フィード '{feed_id}'、source.path）。"
                            "ファイルを置くか、フィード定義（spec）の source.path を直してください")
    if path.is_dir():
        target, sha = _archive_zip(ws, feed_id, _folder_files(path, feed_id=feed_id), where=str(path), max_bytes=source.max_bytes)
    else:
        target, sha, _ = archive_file(ws, feed_id, path, max_bytes=source.max_bytes)
    return Fetched(feed_id, str(target), sha, _now(), str(path))


# --- downloads ---------------------------------------------------------------------------------

class _Deadline:
    """A moment after which no network wait may last: every connect, read and write gets at most the time left."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def cap(self, timeout: float | None) -> float:
        """Return ``timeout`` shortened to the time left. If none is left, raise httpcore.ReadTimeout."""
        import httpcore

        left = self.left()
        if left <= 0:
            raise httpcore.ReadTimeout("the download deadline has passed")
        return left if timeout is None else min(timeout, left)


#: Address kinds, from the open internet inward. A redirect may not lead further in than the spec's own URL.
_REACH = ("public", "private", "loopback")


def address_kind(ip: str) -> str:
    """Return 'public', 'private' (RFC 1918, ULA, CGNAT), 'loopback', 'link-local' (cloud metadata) or 'reserved'."""
    import ipaddress

    a = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped:
        a = a.ipv4_mapped
    if a.is_loopback:
        return "loopback"
    if a.is_link_local:
        return "link-local"
    if a.is_multicast or a.is_unspecified or a.is_reserved:
        return "reserved"
    if a.is_private or a in ipaddress.ip_network("100.64.0.0/10"):
        return "private"
    return "public"


class _Guard:
    """Where a download may connect: the first connection (the spec's URL) sets how far inside the network it may go.

    A hostile server must not use a redirect to reach what only this machine can reach (SSRF): a redirect from a public
    address to a private or loopback one, or from anywhere to a link-local address (cloud metadata at 169.254.169.254)
    or a reserved one, is refused before any connection is made. The checked address is the one connected to, so a
    name that resolves differently a moment later (DNS rebinding) changes nothing.
    """

    def __init__(self):
        self.first: str | None = None

    def check(self, host: str, port: int) -> str:
        """Return the address to connect to for ``host``. If none is allowed, raise httpcore.ConnectError saying why."""
        import socket

        import httpcore

        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} could not be resolved ({exc})") from None
        return self.choose(host, infos)

    async def acheck(self, host: str, port: int) -> str:
        """Return :meth:`check`'s answer, resolving ``host`` without blocking the event loop."""
        import asyncio
        import socket

        import httpcore

        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} could not be resolved ({exc})") from None
        return self.choose(host, infos)

    def choose(self, host: str, infos: list) -> str:
        """Return the first of ``host``'s resolved addresses (getaddrinfo tuples) this download may connect to.
        If none, raise httpcore.ConnectError saying why."""
        import httpcore

        refused = []
        for *_, sockaddr in infos:
            ip = str(sockaddr[0])
            kind = address_kind(ip)
            if self.first is None:
                if kind == "reserved":
                    refused.append(f"{ip} ({kind})")
                    continue
                self.first = kind
                return ip
            if kind == self.first or (kind in _REACH and self.first in _REACH
                                      and _REACH.index(kind) <= _REACH.index(self.first)):
                return ip
            refused.append(f"{ip} ({kind})")
        raise httpcore.ConnectError(
            f"refused to connect to {host} at {', '.join(refused)}: a redirect may not lead from a "
            f"{self.first or 'public'} address to a {refused[0].split('(')[1].rstrip(')') if refused else 'other'} one")


def _deadline_backend(deadline: _Deadline, guard: _Guard | None = None):
    """Return an httpcore network backend whose every socket wait ends by ``deadline`` and whose connections ``guard`` (a
    new _Guard if none) allows."""
    import httpcore

    guard = guard or _Guard()

    class Stream(httpcore.NetworkStream):
        def __init__(self, stream: httpcore.NetworkStream):
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._stream.read(max_bytes, deadline.cap(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, deadline.cap(timeout))

        def close(self) -> None:
            self._stream.close()

        def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            return Stream(self._stream.start_tls(ssl_context, server_hostname, deadline.cap(timeout)))

        def get_extra_info(self, info: str):
            return self._stream.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self):
            self._backend = httpcore.SyncBackend()

        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            ip = guard.check(host, port)
            return Stream(self._backend.connect_tcp(ip, port, deadline.cap(timeout), local_address, socket_options))

        def connect_unix_socket(self, path, timeout=None, socket_options=None):
            return Stream(self._backend.connect_unix_socket(path, deadline.cap(timeout), socket_options))

        def sleep(self, seconds: float) -> None:
            time.sleep(seconds)

    return Backend()


def guarded_async_client(*, headers: dict | None = None, max_connections: int = 4):
    """Return an httpx.AsyncClient for one long-lived source (a realtime URL, a GBFS system) whose connections _Guard allows.

    The first connection (the spec's own URL) sets how far inside the network the client may go; a redirect, or a URL
    that a fetched document names (GBFS auto-discovery), may not lead further in, nor to a link-local or reserved
    address. One client per source, so that one source's reach never widens another's.
    """
    import httpcore
    import httpx

    guard = _Guard()

    class Backend(httpcore.AsyncNetworkBackend):
        def __init__(self):
            self._backend = httpcore.AnyIOBackend()

        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            ip = await guard.acheck(host, port)
            return await self._backend.connect_tcp(ip, port, timeout, local_address, socket_options)

        async def connect_unix_socket(self, path, timeout=None, socket_options=None):
            return await self._backend.connect_unix_socket(path, timeout, socket_options)

        async def sleep(self, seconds: float) -> None:
            await self._backend.sleep(seconds)

    transport = httpx.AsyncHTTPTransport()
    # as in _client: httpx has no public way to give its transport a network backend
    transport._pool = httpcore.AsyncConnectionPool(ssl_context=httpx.create_ssl_context(), network_backend=Backend(),
                                                   max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(transport=transport, follow_redirects=True, max_redirects=MAX_REDIRECTS,
                             headers={"User-Agent": USER_AGENT, **(headers or {})})


def _client(deadline: _Deadline, timeout_s: float, *, guard: _Guard | None = None):
    """Return an httpx client whose direct connections all end by ``deadline``, following at most MAX_REDIRECTS redirects.
    Give one ``guard`` to the clients of URLs that a first document named (GBFS discovery): they may then not lead further
    into the network than that document's own server."""
    import httpcore
    import httpx

    transport = httpx.HTTPTransport()
    # httpx has no public way to give its transport a network backend; its pool is the httpcore pool it
    # would build, plus ours (tests/noriba/test_fetch.py's header-trickle test fails if this stops working).
    transport._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), network_backend=_deadline_backend(deadline, guard))
    return httpx.Client(transport=transport, timeout=httpx.Timeout(timeout_s), follow_redirects=True,
                        max_redirects=MAX_REDIRECTS, headers={"User-Agent": USER_AGENT})


def _one_line(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _checked_suffix(f: BinaryIO, url: str, ctype: str, *, feed_id: str) -> str:
    """Return the archive suffix of a downloaded file. If it is a web page or a damaged zip, raise InputError."""
    f.seek(0)
    head = f.read(1024)
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(f):
            size = f.seek(0, os.SEEK_END)
            raise InputError(f"{url}: the download is a damaged or incomplete zip ({size} bytes, feed '{feed_id}'); "
                             "try again later, and if it stays so tell the feed's publisher",
                             ja=f"{url}: ダウンロードした zip が壊れているか途中までしかありません（{size} バイト、フィード '{feed_id}'）。"
                                "時間をおいて再実行し、直らなければデータの提供元に連絡してください")
        return ".zip"
    if ctype in ("text/html", "application/xhtml+xml") or _looks_like_html(head):
        raise InputError(f"{url}: the server sent a web page ({ctype or 'HTML'}), not a data file (feed '{feed_id}'); "
                         "the site probably showed an error or login page: open the URL in a browser and check, "
                         "then fix source.url in the feed spec or try again later",
                         ja=f"{url}: サーバーが返したのはデータファイルではなくウェブページ（{ctype or 'HTML'}）です（フィード '{feed_id}'）。"
                            "エラーやログインの画面が出ている可能性があります。ブラウザでURLを開いて確かめ、"
                            "フィード定義（spec）の source.url を直すか、時間をおいて再実行してください")
    import httpx

    return archive_suffix(httpx.URL(url).path)


def _read_state(path: Path, folder: Path) -> dict:
    """Return the saved ETag / Last-Modified of the last download, if its archived file is still there; else {}."""
    try:
        state = json.loads(path.read_text())
        raw = Path(state["raw_path"])
        if raw.parent == folder and raw.is_file() and isinstance(state.get("sha256"), str):
            return state
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return {}


def _write_state(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def _fetch_url(ws: Workspace, feed_id: str, source: Source) -> Fetched:
    """Download with ETag / If-Modified-Since, retries with back-off, a size limit and a deadline for the whole download."""
    import httpx

    url = source.url
    folder = ws.raw_dir(feed_id)
    state_path = folder / "http_state.json"
    state = _read_state(state_path, folder)
    headers = {"Accept-Encoding": "identity"}  # the file as published: no decoding, no compression bombs
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    deadline = _Deadline(source.deadline_s)
    tries = max(1, source.retries)
    last_error = ""
    received = 0
    with _client(deadline, source.timeout_s) as client:
        for attempt in range(tries):
            if attempt:
                pause = min(2 ** (attempt - 1) * 0.5, 30.0)
                if deadline.left() <= pause:
                    break
                time.sleep(pause)
            received = 0
            try:
                with client.stream("GET", url, headers=headers) as resp:
                    if resp.status_code == 304 and state:
                        return Fetched(feed_id, state["raw_path"], state["sha256"], _now(), url, not_modified=True)
                    if resp.status_code in RETRY_STATUSES:
                        last_error = f"the server answered HTTP {resp.status_code}"
                        continue
                    if resp.status_code != 200:
                        raise InputError(f"{url}: the server answered HTTP {resp.status_code} (feed '{feed_id}'); "
                                         "check source.url in the feed spec",
                                         ja=f"{url}: サーバーの応答は HTTP {resp.status_code} でした（フィード '{feed_id}'）。"
                                            "フィード定義（spec）の source.url を確認してください")
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > source.max_bytes:
                        raise _too_big(url, source.max_bytes, feed_id, f" (the server announced {declared} bytes)")
                    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                    with _incoming(folder) as f:
                        for chunk in resp.iter_bytes():  # as they arrive (at most 64 KiB each, before any decoding)
                            if deadline.left() <= 0:  # also through a proxy from the environment, which has no capped backend
                                raise httpx.ReadTimeout("the download deadline has passed")
                            received += len(chunk)
                            if received > source.max_bytes:
                                raise _too_big(url, source.max_bytes, feed_id)
                            f.write(chunk)
                        target, sha = _keep(f, _checked_suffix(f, url, ctype, feed_id=feed_id))
                    _write_state(state_path, {"etag": resp.headers.get("etag"), "last_modified": resp.headers.get("last-modified"),
                                              "raw_path": str(target), "sha256": sha})
                    return Fetched(feed_id, str(target), sha, _now(), url)
            except httpx.TooManyRedirects:
                raise InputError(f"{url}: the server redirects in a loop (more than {MAX_REDIRECTS} redirects, feed '{feed_id}'); "
                                 "check source.url in the feed spec, or tell the feed's publisher",
                                 ja=f"{url}: サーバーの転送（リダイレクト）が {MAX_REDIRECTS} 回を超えて繰り返されます（フィード '{feed_id}'）。"
                                    "フィード定義（spec）の source.url を確認するか、データの提供元に連絡してください") from None
            except httpx.ConnectError as exc:
                if str(exc).startswith("refused to connect"):
                    raise InputError(f"{url}: {_one_line(exc)} (feed '{feed_id}'); if the feed really lives there, put that "
                                     "address in source.url",
                                     ja=f"{url}: 接続を拒否しました: {_one_line(exc)}（フィード '{feed_id}'）。"
                                        "データが本当にそこにあるなら、そのアドレスを source.url に書いてください") from None
                last_error = f"the connection failed (ConnectError: {_one_line(exc)})"
            except httpx.UnsupportedProtocol as exc:
                raise InputError(f"{url}: the server redirected to an address that is not http(s) ({_one_line(exc)}, "
                                 f"feed '{feed_id}'); check source.url in the feed spec",
                                 ja=f"{url}: サーバーが http(s) ではないアドレスへ転送しました（{_one_line(exc)}、フィード '{feed_id}'）。"
                                    "フィード定義（spec）の source.url を確認してください") from None
            except httpx.HTTPError as exc:
                if deadline.left() <= 0:
                    break
                if isinstance(exc, httpx.RemoteProtocolError):
                    last_error = f"the server's answer is incomplete or malformed ({_one_line(exc)})"
                else:
                    last_error = f"the connection failed ({type(exc).__name__}: {_one_line(exc)})"
    if deadline.left() <= 0:
        raise InputError(f"{url}: the download did not finish within source.deadline_s={source.deadline_s:g} seconds "
                         f"(feed '{feed_id}'{f', {received} bytes received' if received else ''}); the server is too slow "
                         "or stalled: try again later, or raise source.deadline_s in the feed spec",
                         ja=f"{url}: ダウンロードが制限時間 source.deadline_s={source.deadline_s:g} 秒以内に終わりませんでした"
                            f"（フィード '{feed_id}'{f'、{received} バイト受信' if received else ''}）。サーバーが遅いか止まっています。"
                            "時間をおいて再実行するか、フィード定義（spec）の source.deadline_s を引き上げてください")
    raise InputError(f"{url}: download failed after {tries} {'try' if tries == 1 else 'tries'} (feed '{feed_id}'): {last_error}; "
                     "check that the URL opens in a browser, or try again later",
                     ja=f"{url}: {tries} 回試みましたがダウンロードできませんでした（フィード '{feed_id}'）: {last_error}。"
                        "ブラウザでURLが開けるか確かめるか、時間をおいて再実行してください")
