"""GTFS-Realtime: the archiver, ingest of captured snapshots, and the hourly parse into the lake and the warehouse.

Layout in the workspace (``NORIBA_HOME``); dates and hours are UTC, of the fetch (of the header
timestamp for an ingested file)::

    raw/<feed>/rt/feed.json                                  static feed id, time zone, URLs (no secrets)
    raw/<feed>/rt/state-<part>.json                          ETag, Last-Modified, sha256 of the last response
    raw/<feed>/rt/<YYYY-MM-DD>/<HH>/<part>-<HHMMSS>-<sha256>.pb   each response that differs from the previous one
    raw/<feed>/rt/<YYYY-MM-DD>/<HH>/fetches.jsonl            one JSON line per fetch (fsync'd)
    lake/<table>/feed_id=<feed>/date=<YYYY-MM-DD>/hour=<HH>/part-0.parquet   (tables: transforms/gtfs_rt/parse.py)

Every file is written to a dot-temp beside it, fsync'd, renamed, and its folder fsync'd, so a
crash never leaves a half snapshot; an hour's lake partitions are replaced whole on rerun. The
warehouse has them in schema ``rt`` (``rt.vehicle_positions``, ``rt.trip_updates``,
``rt.stop_time_updates``, ``rt.alerts``, ``rt.alert_entities``, ``rt.fetches``, ``rt.snapshots``,
``rt.quarantine``: the lake table without its ``rt_`` prefix, plus ``feed_id``, ``date``,
``hour``) and ``rt.feeds`` (feed_id, static_feed_id, timezone), published under the single-writer
lock of warehouse/publish.py.

The archiver polls GBFS systems too (specs of kind gbfs with source.url): noriba/gbfs.py
``ArchivePoller`` (each file when its ttl has run out, under ``raw/<feed>/archive/``), scheduled in
the same event loop; ``noriba.gbfs.ingest_archive`` ingests what it kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from warehouse.workspace import Workspace, safe_id
from transforms.errors import InputError
from transforms.gtfs_rt.spec import DEFAULT_MAX_BYTES, SNAPSHOT_NAME, resolve_env, snapshot_name

log = logging.getLogger("noriba.rt")
USER_AGENT = "noriba-rt/0.1 (+https://github.com/noriba)"
_NAME = SNAPSHOT_NAME
_HOUR = re.compile(r"(\d{4}-\d{2}-\d{2})T?(\d{2})\Z")


# ---------------------------------------------------------------- durable files

def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``: a dot-temp beside it, fsync, rename, fsync the folder. A crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def append_line(path: Path, record: dict) -> None:
    """Append ``record`` as one JSON line to ``path`` (O_APPEND, fsync'd)."""
    made = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if made:
        _fsync_dir(path.parent)


def rt_dir(ws: Workspace, feed_id: str) -> Path:
    return ws.raw_dir(feed_id) / "rt"


def archived_hour(ws: Workspace, feed_id: str, hour_key: str) -> tuple[str, str, Path]:
    """Return (date, hour, folder) of an archived hour named 'YYYY-MM-DDTHH' (UTC). If the name is not an hour, or nothing
    is archived for it, then raise InputError saying so."""
    m = _HOUR.match(hour_key or "")
    if not m:
        raise InputError(f"{hour_key!r} is not an hour; write it as YYYY-MM-DDTHH, e.g. 2026-12-06T09 (UTC)",
                         ja=f"{hour_key!r} は時刻（時）の形ではありません。YYYY-MM-DDTHH（例: 2026-12-06T09、UTC）で書いてください")
    date, hour = m.groups()
    folder = rt_dir(ws, feed_id) / date / hour
    if not folder.is_dir():
        raise InputError(f"feed '{feed_id}' has nothing archived for {date}T{hour} UTC ({folder})",
                         ja=f"フィード '{feed_id}' には {date}T{hour} UTC の保存データがありません（{folder}）")
    return date, hour, folder


def hour_dir(ws: Workspace, feed_id: str, when: datetime) -> Path:
    """Return raw/<feed>/rt/<YYYY-MM-DD>/<HH> for the UTC hour of ``when``."""
    when = when.astimezone(timezone.utc)
    return rt_dir(ws, feed_id) / when.strftime("%Y-%m-%d") / when.strftime("%H")


def max_bytes_for(realtime: dict | None) -> int:
    """Return the largest response kept: the spec's max_bytes (default 64 MiB), at most NORIBA_MAX_FILE_BYTES."""
    from transforms.gtfs import limits

    return min(int((realtime or {}).get("max_bytes", DEFAULT_MAX_BYTES)), limits()[0])


def write_feed_info(ws: Workspace, feed_id: str, *, static: str | None, tz: str | None, urls: dict | None = None) -> None:
    """Record the feed's static feed id, time zone and URLs in raw/<feed>/rt/feed.json (kept values that are not given)."""
    path = rt_dir(ws, feed_id) / "feed.json"
    info = read_feed_info(ws, feed_id)
    new = {**info, **{k: v for k, v in (("static_feed_id", static), ("timezone", tz), ("urls", urls)) if v}}
    if new != info or not path.exists():
        write_durably(path, json.dumps(new, ensure_ascii=False, sort_keys=True).encode())


def read_feed_info(ws: Workspace, feed_id: str) -> dict:
    try:
        info = json.loads((rt_dir(ws, feed_id) / "feed.json").read_text())
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def archive_snapshot(ws: Workspace, feed_id: str, part: str, data: bytes, when: datetime, sha: str) -> Path:
    """Return the path of the snapshot archived durably under its UTC hour (once: an existing copy is left as is)."""
    path = hour_dir(ws, feed_id, when) / snapshot_name(part, f"{when.astimezone(timezone.utc):%H%M%S}", sha)
    if not path.exists():
        write_durably(path, data)
    return path


# ---------------------------------------------------------------- archiver

@dataclass
class _Poll:
    """One URL of one realtime feed, and what the archiver remembers of it."""

    feed_id: str
    part: str
    url: str
    poll_s: float
    timeout_s: float
    max_bytes: int
    max_backoff_s: float
    headers: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)  # etag, last_modified, sha256
    failures: int = 0
    fetches: int = 0
    changed: int = 0
    log_path: Path | None = None  # the fetch log of the hour of the last fetch
    unsent: dict = field(default_factory=dict)  # object-storage home: {local path: immutable} not yet in the store
    store_down: bool = False

    def secrets(self) -> list[str]:
        return [v for v in (*self.headers.values(), *self.params.values()) if v]


def _polls(ws: Workspace, spec) -> list[_Poll]:
    """Return the URLs of a gtfs-rt spec to poll. If a header or parameter's environment variable is unset, raise InputError."""
    rt = spec.realtime
    try:
        headers = resolve_env(rt["headers"], feed_id=spec.id, what="header")
        params = resolve_env(rt["params"], feed_id=spec.id, what="query parameter")
    except KeyError as exc:
        raise InputError(exc.args[0]) from None
    write_feed_info(ws, spec.id, static=rt.get("static"), tz=spec.timezone, urls=rt["urls"])
    out = []
    for part, url in rt["urls"].items():
        p = _Poll(spec.id, part, url, rt["poll_s"], rt["timeout_s"], max_bytes_for(rt),
                  rt["poll_s"] * rt["max_backoff_polls"], headers, params)
        try:
            st = json.loads((rt_dir(ws, spec.id) / f"state-{part}.json").read_text())
            p.state = st if isinstance(st, dict) else {}
        except (OSError, ValueError):
            pass
        out.append(p)
    return out


def _clean(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return " ".join(text.split())[:300]


async def _fetch(ws: Workspace, client, p: _Poll) -> dict:
    """Fetch one URL once; archive the body if it differs from the previous one; append the fetch to the hour's log. Return the record."""
    import httpx

    from transforms.gtfs_rt.parse import header_timestamp

    when = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    rec = {"fetched_at": when.isoformat(timespec="milliseconds"), "part": p.part, "url": p.url, "status": None,
           "latency_ms": None, "bytes": None, "header_timestamp": None, "changed": False, "sha256": None, "file": None, "error": None}
    headers = {**p.headers}
    if p.state.get("etag"):
        headers["If-None-Match"] = p.state["etag"]
    if p.state.get("last_modified"):
        headers["If-Modified-Since"] = p.state["last_modified"]
    try:
        # a redirect would carry the API-key headers to wherever it points: with keys, redirects are not followed
        async with client.stream("GET", p.url, headers=headers, params=p.params or None, timeout=p.timeout_s,
                                 follow_redirects=not p.secrets()) as resp:
            rec["status"] = resp.status_code
            if resp.is_redirect:
                raise InputError(f"the server redirects (HTTP {resp.status_code}); with API keys from the environment, redirects are "
                                 "not followed, so the keys go nowhere else: put the URL it redirects to in the spec",
                                 ja=f"サーバーが転送（HTTP {resp.status_code}）を返しました。API キーをほかへ送らないよう転送はたどりません。"
                                    "転送先の URL を spec に書いてください")
            if resp.status_code == 200:
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > p.max_bytes:
                    raise InputError(f"the server announced {declared} bytes, more than max_bytes={p.max_bytes}",
                                     ja=f"サーバーが {declared} バイトと伝えてきました。max_bytes={p.max_bytes} を超えています")
                chunks, n = [], 0
                async for chunk in resp.aiter_bytes():
                    n += len(chunk)
                    if n > p.max_bytes:
                        raise InputError(f"the response is larger than max_bytes={p.max_bytes} bytes; nothing was kept",
                                         ja=f"応答が max_bytes={p.max_bytes} バイトを超えたため、何も保存していません")
                    chunks.append(chunk)
                body = b"".join(chunks)
                etag, modified = resp.headers.get("etag"), resp.headers.get("last-modified")
            elif resp.status_code == 304:
                body = None
            else:
                raise InputError(f"the server answered HTTP {resp.status_code}", ja=f"サーバーが HTTP {resp.status_code} を返しました")
    except (httpx.HTTPError, InputError, OSError) as exc:
        rec["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        if isinstance(exc, InputError):
            text = str(exc)
        elif isinstance(exc, httpx.TimeoutException):
            text = f"{type(exc).__name__}: no answer within timeout_s={p.timeout_s:g} s"
        else:
            text = f"{type(exc).__name__}: {exc}"
        rec["error"] = _clean(text, p.secrets())
        p.failures += 1
        append_line(hour_dir(ws, p.feed_id, when) / "fetches.jsonl", rec)
        return rec
    rec["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    p.failures = 0
    if body is not None:
        sha = hashlib.sha256(body).hexdigest()
        rec.update(bytes=len(body), sha256=sha, header_timestamp=header_timestamp(body))
        if sha != p.state.get("sha256"):
            path = archive_snapshot(ws, p.feed_id, p.part, body, when, sha)
            rec.update(changed=True, file=path.name)
            p.changed += 1
            p.unsent[path] = True
        new_state = {"etag": etag, "last_modified": modified, "sha256": sha}
        if new_state != p.state:
            p.state = new_state
            write_durably(rt_dir(ws, p.feed_id) / f"state-{p.part}.json", json.dumps(new_state).encode())
    else:
        rec.update(sha256=p.state.get("sha256"))
    log_path = hour_dir(ws, p.feed_id, when) / "fetches.jsonl"
    append_line(log_path, rec)
    _log_written(p, log_path, send_now=rec["changed"])
    return rec


def _log_written(p: _Poll, log_path: Path, *, send_now: bool) -> None:
    """Queue the fetch logs to send to an object-storage home: an hour's log when the hour is over, and the current one
    with each changed snapshot (the store then has every snapshot and, at worst, the current hour's log up to the last
    change)."""
    if p.log_path is not None and p.log_path != log_path:
        p.unsent[p.log_path] = False
    p.log_path = log_path
    if send_now:
        p.unsent[log_path] = False


async def _send(ws: Workspace, p: _Poll, *, all_logs: bool = False) -> None:
    """Send what the poll archived to an object-storage home (``all_logs``: the current hour's log too). If the store
    fails, say so once and keep the list: it is sent with the next fetch (the local copies are durable meanwhile). On a
    local home there is nothing to send: the list is emptied (a long-running archiver would otherwise keep every path)."""
    if ws.remote is None:
        p.unsent.clear()
        return
    if all_logs and p.log_path is not None:
        p.unsent[p.log_path] = False
    if not p.unsent:
        return
    from warehouse import storage

    todo = dict(p.unsent)

    def send() -> None:
        storage.push(ws, [f for f, immutable in todo.items() if immutable], immutable=True)  # snapshots first, then the logs
        storage.push(ws, [f for f, immutable in todo.items() if not immutable])

    try:
        await asyncio.to_thread(send)
    except Exception as exc:  # noqa: BLE001 (the store is down: tried again with the next fetch)
        if not p.store_down:
            log.warning("%s/%s: cannot send the archive to %s: %s; kept here and sent again with the next fetch",
                        p.feed_id, p.part, ws.remote.url, _clean(str(exc), p.secrets()))
        p.store_down = True
        return
    if p.store_down:
        log.warning("%s/%s: the object store answers again; the archive kept meanwhile was sent", p.feed_id, p.part)
    p.store_down = False
    for f in todo:
        p.unsent.pop(f, None)


def next_delay(p: _Poll, elapsed: float) -> float:
    """Return seconds to wait before the next fetch: the rest of the poll interval; after failures, a back-off of
    poll × 2^(failures-1), capped at poll × max_backoff_polls (the source is polled again however long it is down)."""
    if p.failures:
        return min(p.poll_s * 2 ** (p.failures - 1), p.max_backoff_s)
    return max(0.0, p.poll_s - elapsed)


async def _run_poll(ws: Workspace, client, p: _Poll, stop: asyncio.Event, *, once: bool, offset: float = 0.0) -> None:
    was_down = False
    if offset and not once:  # the URLs are spread over the poll interval, not all fetched at the same instant
        try:
            await asyncio.wait_for(stop.wait(), timeout=offset)
        except asyncio.TimeoutError:
            pass
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            rec = await _fetch(ws, client, p)
        except Exception as exc:  # noqa: BLE001 (e.g. a full disk: said, and tried again with back-off; the other feeds go on)
            p.failures += 1
            rec = {"error": _clean(f"cannot archive: {type(exc).__name__}: {exc}", p.secrets())}
        p.fetches += 1
        await _send(ws, p, all_logs=once)
        if rec["error"] and not was_down:
            log.warning("%s/%s: %s; polling again with back-off", p.feed_id, p.part, rec["error"])
        elif not rec["error"] and was_down:
            log.warning("%s/%s: the source answers again", p.feed_id, p.part)
        was_down = bool(rec["error"])
        if once:
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=next_delay(p, time.monotonic() - t0))
        except asyncio.TimeoutError:
            pass
    await _send(ws, p, all_logs=True)  # stopped (SIGTERM, --for): the current hour's log too


def _spec_key(spec) -> str:
    """Return what the archiver polls a spec by: a changed key restarts the spec's polls."""
    return repr((spec.kind, spec.id, spec.source, spec.timezone, spec.realtime, spec.options))


@dataclass
class _Running:
    """The polls of one spec in the archiver: stopped on their own when the spec changes or goes."""

    key: str
    stop: asyncio.Event
    clients: contextlib.AsyncExitStack
    tasks: list = field(default_factory=list)
    polls: list = field(default_factory=list)
    gbfs: list = field(default_factory=list)

    def result(self) -> dict:
        out = {f"{p.feed_id}/{p.part}": {"fetches": p.fetches, "changed": p.changed, "failures": p.failures} for p in self.polls}
        for g in self.gbfs:
            out.update(g.result())
        return out


async def archive_async(ws: Workspace, specs: list, *, duration_s: float | None = None, once: bool = False,
                        reload=None, reload_s: float = 60.0) -> dict:
    """Poll every URL of ``specs`` concurrently until ``duration_s`` has passed, SIGTERM/SIGINT, or (``once``) one fetch each.

    Specs of kind gbfs with source.url are polled too, each file when its ttl has run out (noriba/gbfs.py ArchivePoller).
    If ``reload`` (a function returning the specs) is given, it is called every ``reload_s`` seconds: a new spec starts
    being polled, a changed one is restarted and a removed one stopped (each after its fetch in flight, its fetch log sent),
    without stopping the others; if it fails, the archiver says so and goes on with the specs it has.

    Return {feed_id/part: {fetches, changed, failures}}.
    """
    from noriba.fetch import guarded_async_client
    from noriba.gbfs import ArchivePoller, live_specs

    ws.ensure()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    running: dict[str, _Running] = {}
    done: dict[str, dict] = {}

    async def start(spec, offset_of) -> None:
        # one client per URL and per GBFS system, each guarded (noriba.fetch._Guard): a redirect, or a file URL that a GBFS
        # gbfs.json names, may not lead further into the network than the spec's own URL, nor to cloud metadata (SSRF)
        r = _Running(_spec_key(spec), asyncio.Event(), contextlib.AsyncExitStack())

        async def client():
            return await r.clients.enter_async_context(guarded_async_client(headers={"User-Agent": USER_AGENT}))

        if spec.kind == "gbfs":
            r.gbfs = [ArchivePoller(ws, s) for s in live_specs([spec])]  # each file when its ttl has run out (noriba/gbfs.py)
            r.tasks = [asyncio.create_task(g.run(await client(), r.stop, once=once)) for g in r.gbfs]
        else:
            r.polls = _polls(ws, spec)
            if ws.remote is not None:  # object-storage home: what the hourly parse needs to know of the feed, wherever it runs
                from warehouse import storage

                await asyncio.to_thread(storage.push, ws, [rt_dir(ws, spec.id) / "feed.json"])
            r.tasks = [asyncio.create_task(_run_poll(ws, await client(), p, r.stop, once=once, offset=offset_of(p)))
                       for p in r.polls]
        running[spec.id] = r

    async def halt(spec_id: str) -> None:
        r = running.pop(spec_id)
        r.stop.set()
        try:
            await asyncio.gather(*r.tasks)
        finally:
            await r.clients.aclose()
            done.update(r.result())

    async def apply(new: list) -> None:
        wanted = {s.id: s for s in new}
        for sid in [sid for sid, r in running.items() if sid not in wanted or r.key != _spec_key(wanted[sid])]:
            log.warning("%s: its spec %s; its polls stop", sid, "changed" if sid in wanted else "is gone")
            await halt(sid)
        for sid, spec in wanted.items():
            if sid not in running:
                try:
                    await start(spec, lambda p: 0.0)
                except InputError as exc:  # e.g. its key's environment variable is unset: said; the other feeds go on
                    log.warning("%s: not archived: %s", sid, " ".join(str(exc).split())[:300])
                    continue
                log.warning("%s: archiving it from now on", sid)

    def offsets(polls_total: int):
        seen = iter(range(polls_total))  # the URLs are spread over the poll interval, not all fetched at the same instant
        return lambda p: p.poll_s * next(seen) / max(polls_total, 1)

    try:
        first = offsets(sum(len(s.realtime["urls"]) for s in specs if s.kind != "gbfs" and s.realtime))
        for spec in specs:
            await start(spec, first)
        if once:
            await asyncio.gather(*(t for r in running.values() for t in r.tasks))
        else:
            if duration_s is not None:
                loop.call_later(duration_s, stop.set)
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=reload_s if reload is not None else None)
                except asyncio.TimeoutError:
                    try:
                        new = await asyncio.to_thread(reload)
                    except Exception as exc:  # noqa: BLE001 (a spec being edited: said, and read again next time)
                        log.warning("cannot read the specs again (%s); archiving as before", " ".join(str(exc).split())[:300])
                        continue
                    await apply(new)
    finally:
        stop.set()
        for sid in list(running):
            await halt(sid)
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    return done


def archive(ws: Workspace, specs: list, *, duration_s: float | None = None, once: bool = False, reload=None,
            reload_s: float = 60.0) -> dict:
    """Run :func:`archive_async` (see there) in a new event loop."""
    return asyncio.run(archive_async(ws, specs, duration_s=duration_s, once=once, reload=reload, reload_s=reload_s))


# ---------------------------------------------------------------- ingest

#: Files in a folder given to ingest that are documentation or static feeds, not snapshots (a file named alone is always read).
NOT_SNAPSHOTS = (".txt", ".md", ".json", ".zip", ".csv", ".html", ".yml", ".yaml")


def _snapshot_files(paths: list[Path]) -> list[Path]:
    """Return the files under ``paths``: each file given, and the regular files in each folder walked (hidden entries and
    documentation or static feeds, NOT_SNAPSHOTS, skipped), sorted per folder."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")
                        and not f.lower().endswith(NOT_SNAPSHOTS) and (Path(dirpath) / f).is_file()]
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder; give protobuf snapshot files or folders holding them",
                             ja=f"{p}: ファイルまたはフォルダがありません。protobuf のスナップショットか、それを入れたフォルダを指定してください")
    return out


def ingest(ws: Workspace, feed_id: str, paths: list[Path], *, static: str | None = None, tz: str | None = None,
           max_bytes: int | None = None) -> dict:
    """Archive captured snapshots (files or folders of them) as if fetched, under the UTC hour of their header timestamp
    (of the file's modification time when it has none); return {files, archived, hours}.

    Each file is logged in its hour's fetch log (``source_file``: its name). A file that is not a readable FeedMessage
    is still archived: the parse step quarantines it with its reason. If a file is larger than the limit, raise InputError.
    """
    from transforms.gtfs_rt.parse import content_part, header_timestamp

    safe_id(feed_id)
    ws.ensure()
    limit = max_bytes or max_bytes_for(None)
    write_feed_info(ws, feed_id, static=static, tz=tz)
    files = _snapshot_files(paths)
    hours: set[tuple[str, str]] = set()
    archived = 0
    for f in files:
        if f.stat().st_size > limit:
            raise InputError(f"{f}: larger than {limit} bytes (NORIBA_MAX_FILE_BYTES / max_bytes); a realtime snapshot is "
                             "a few MB at most: check that this is a GTFS-Realtime file",
                             ja=f"{f}: {limit} バイト（NORIBA_MAX_FILE_BYTES / max_bytes）を超えています。リアルタイムの"
                                "スナップショットは大きくても数 MB です。GTFS-Realtime のファイルか確認してください")
        data = f.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        ts = header_timestamp(data)
        when = (datetime.fromtimestamp(ts, timezone.utc) if ts and 0 < ts < 4102444800
                else datetime.fromtimestamp(f.stat().st_mtime, timezone.utc))
        part = content_part(data)
        folder = hour_dir(ws, feed_id, when)
        already = folder.is_dir() and any(folder.glob(f"{part}-*-{sha}.pb"))
        path = archive_snapshot(ws, feed_id, part, data, when, sha)
        archived += not already
        append_line(folder / "fetches.jsonl", {
            "fetched_at": when.isoformat(timespec="milliseconds"), "part": part, "url": None, "source_file": f.name,
            "status": None, "latency_ms": None, "bytes": len(data), "header_timestamp": ts, "changed": not already,
            "sha256": sha, "file": path.name, "error": None})
        hours.add((when.strftime("%Y-%m-%d"), when.strftime("%H")))
    return {"feed_id": feed_id, "files": len(files), "archived": archived, "hours": sorted(f"{d}T{h}" for d, h in hours)}


# ---------------------------------------------------------------- parse to the lake

def raw_hours(ws: Workspace, feed_id: str) -> list[str]:
    """Return every archived hour of a feed, as 'YYYY-MM-DDTHH', oldest first."""
    base = rt_dir(ws, feed_id)
    if not base.is_dir():
        return []
    return sorted(f"{d.name}T{h.name}" for d in base.iterdir() if d.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", d.name)
                  for h in d.iterdir() if h.is_dir() and re.fullmatch(r"\d{2}", h.name))


def _partition(ws: Workspace, table: str, feed_id: str, date: str, hour: str) -> Path:
    return ws.lake / table / f"feed_id={safe_id(feed_id)}" / f"date={date}" / f"hour={hour}"


def _hour_mark(folder: Path) -> float:
    """Return the newest modification time of an hour's raw folder and its fetch log."""
    marks = [folder.stat().st_mtime]
    log_path = folder / "fetches.jsonl"
    if log_path.exists():
        marks.append(log_path.stat().st_mtime)
    return max(marks)


#: In an hour's rt_snapshots partition: the raw folder's mark (_hour_mark) seen before it was parsed.
RAW_MARK = "_raw_mark.json"


def pending_hours(ws: Workspace, feed_id: str) -> list[str]:
    """Return the archived hours not parsed since their raw folder last changed (a snapshot or fetch added while an hour
    was being parsed makes it pending again)."""
    out = []
    for key in raw_hours(ws, feed_id):
        date, hour = key.split("T")
        try:
            seen = float(json.loads((_partition(ws, "rt_snapshots", feed_id, date, hour) / RAW_MARK).read_text())["mark"])
        except (OSError, ValueError, KeyError, TypeError):
            seen = None
        if seen is None or seen < _hour_mark(rt_dir(ws, feed_id) / date / hour):
            out.append(key)
    return out


# zstd level 3: the hour's stop_time_updates write in about half the CPU of level 9 for 10 % more bytes (bench/README.md,
# realtime: 24.9 MB against 22.7 MB for the New York bus hour, 6.4 % of the raw protobuf)
_PARQUET = {"compression": "zstd", "compression_level": 3}
_ROW_GROUP = 1 << 20
# Min/max statistics of rt_stop_time_updates only for the times and stop_sequence: those of its text columns cost a third
# of the write and prune nothing (every row group holds most trips and stops of the hour)
_STU_STATS = ["header_timestamp", "last_header_timestamp", "stop_sequence", "arrival_time", "departure_time"]


def parse_hour(ws: Workspace, feed_id: str, hour_key: str) -> dict:
    """Turn one archived hour ('YYYY-MM-DDTHH', UTC) into its lake partitions, replacing them whole; return rows per table.

    Snapshots are read one at a time in fetch order, each part as its own sequence (transforms/gtfs_rt/parse.py);
    stop_time_updates that can no longer change are written as row groups as they accumulate, so memory holds about
    one row group of them, not the hour's.
    """
    import pyarrow.parquet as pq

    from transforms.gtfs_rt.parse import LAKE_TABLES, SCHEMAS, HourParser, fetches_table, gc_paused

    date, hour, folder = archived_hour(ws, feed_id, hour_key)
    mark = _hour_mark(folder)  # before listing: whatever arrives from now on makes the hour pending again
    names = sorted((f for f in os.listdir(folder) if _NAME.match(f)), key=lambda n: (_NAME.match(n)["part"], n.split("-")[-2], n))
    stu_target = _partition(ws, "rt_stop_time_updates", feed_id, date, hour)
    stu_tmp = stu_target.with_name(f".{stu_target.name}.{os.getpid()}.tmp")
    shutil.rmtree(stu_tmp, ignore_errors=True)
    stu_tmp.mkdir(parents=True)
    writer = pq.ParquetWriter(stu_tmp / "part-0.parquet", SCHEMAS["rt_stop_time_updates"], **_PARQUET, write_statistics=_STU_STATS)
    try:
        parser = HourParser(sink=lambda t: writer.write_table(t, row_group_size=_ROW_GROUP))
        with gc_paused():  # no reference cycles: the collector would only walk the hour's live rows again and again
            for name in names:
                data = (folder / name).read_bytes()
                parser.add(data, part=_NAME.match(name)["part"], file=name, sha256=_NAME.match(name)["sha"])
                del data
            tables = parser.finish()
        rest = tables.pop("rt_stop_time_updates")
        writer.write_table(rest, row_group_size=_ROW_GROUP)
        parser.stu_written += rest.num_rows
        writer.close()
    except BaseException:
        writer.close()
        shutil.rmtree(stu_tmp, ignore_errors=True)
        raise
    records = []
    log_path = folder / "fetches.jsonl"
    if log_path.exists():
        with log_path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    r = json.loads(line)
                except ValueError:  # a line cut by a crash: the rest of the log is still read
                    continue
                if isinstance(r, dict):
                    records.append(r)
    tables["rt_fetches"] = fetches_table(records)
    counts = {}
    for name in LAKE_TABLES:
        target = _partition(ws, name, feed_id, date, hour)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        if name == "rt_stop_time_updates":  # written above, row group by row group
            counts[name] = parser.stu_written
        else:
            t = tables[name]
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            pq.write_table(t, tmp / "part-0.parquet", row_group_size=_ROW_GROUP, **_PARQUET)
            counts[name] = t.num_rows
        if name == "rt_snapshots":
            (tmp / RAW_MARK).write_text(json.dumps({"mark": mark}))
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(ws.lake)
    rows = {t: int(sum(r[i] for r in parser.snapshots)) for i, t in
            zip(range(7, 17, 2), ("rt_vehicle_positions", "rt_trip_updates", "rt_stop_time_updates", "rt_alerts", "rt_alert_entities"))}
    return {"feed_id": feed_id, "hour": f"{date}T{hour}", "snapshots": len(parser.snapshots), "quarantined": len(parser.quarantine),
            "stored": counts, "rows_in_snapshots": rows}


# ---------------------------------------------------------------- warehouse

def publish_hours(ws: Workspace, feed_id: str, hour_keys: list[str]) -> dict:
    """Load the lake partitions of these hours into schema ``rt`` (each hour's rows replace its earlier copy), in one
    transaction under the publish lock; record the feed in ``rt.feeds``. Return rows published per table."""
    import pyarrow as pa

    from transforms.gtfs_rt.parse import LAKE_TABLES, SCHEMAS
    from transforms.sql import lit, q
    from warehouse.publish import connect, publish_lock
    from warehouse.txn import transaction

    from warehouse import storage

    # object-storage home: the hours' partitions and the feed's record, wherever they were parsed and archived
    storage.pull_files(ws, [rt_dir(ws, feed_id) / "feed.json"] + [
        _partition(ws, name, feed_id, *key.split("T")) / "part-0.parquet" for key in hour_keys for name in LAKE_TABLES])
    info = read_feed_info(ws, feed_id)
    counts: dict[str, int] = {}
    with publish_lock(ws), connect(ws) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS rt")
        con.execute("CREATE TABLE IF NOT EXISTS rt.feeds (feed_id VARCHAR, static_feed_id VARCHAR, timezone VARCHAR, "
                    "published_at VARCHAR)")
        for name in LAKE_TABLES:
            con.register("rt_empty", pa.Table.from_pylist([], schema=SCHEMAS[name]))
            con.execute(f"CREATE TABLE IF NOT EXISTS rt.{q(name.removeprefix('rt_'))} AS SELECT ''::VARCHAR AS feed_id, "
                        "DATE '2000-01-01' AS date, 0::INTEGER AS hour, * FROM rt_empty LIMIT 0")
            con.unregister("rt_empty")
        with transaction(con):
            for key in hour_keys:
                date, hour = key.split("T")
                for name in LAKE_TABLES:
                    target = f"rt.{q(name.removeprefix('rt_'))}"
                    con.execute(f"DELETE FROM {target} WHERE feed_id = ? AND date = ?::DATE AND hour = ?", [feed_id, date, int(hour)])
                    part = _partition(ws, name, feed_id, date, hour) / "part-0.parquet"
                    if not part.exists():
                        continue
                    n = con.execute(f"INSERT INTO {target} BY NAME SELECT ?::VARCHAR AS feed_id, ?::DATE AS date, "
                                    f"?::INTEGER AS hour, * FROM read_parquet({lit(str(part))}, hive_partitioning=false)",
                                    [feed_id, date, int(hour)]).fetchall()[0][0]
                    counts[name] = counts.get(name, 0) + n
            con.execute("DELETE FROM rt.feeds WHERE feed_id = ?", [feed_id])
            con.execute("INSERT INTO rt.feeds VALUES (?, ?, ?, ?)", [feed_id, info.get("static_feed_id"), info.get("timezone"),
                                                                  datetime.now(timezone.utc).isoformat(timespec="seconds")])
    return {"feed_id": feed_id, "hours": hour_keys, "published": counts}


def parse_feed(ws: Workspace, feed_id: str, *, hours: list[str] | None = None, publish: bool = True) -> dict:
    """Parse the given hours of a feed (default: every pending one) into the lake, then publish them; return what was done."""
    from transforms.gtfs_rt.parse import LAKE_TABLES
    from warehouse import storage

    # object-storage home: the archive as the archiver sent it (a working folder that has not parsed an hour yet, e.g. a
    # new worker, parses it once more: the same rows), and the hours' partitions sent back, rt_snapshots (the mark) last
    storage.pull(ws, rt_dir(ws, feed_id))
    todo = hours if hours is not None else pending_hours(ws, feed_id)
    done = []
    for h in todo:
        done.append(parse_hour(ws, feed_id, h))
        date, hour = done[-1]["hour"].split("T")
        storage.push(ws, [_partition(ws, t, feed_id, date, hour) / f for t in sorted(LAKE_TABLES, key=lambda t: t == "rt_snapshots")
                          for f in ("part-0.parquet", RAW_MARK)])
    out = {"feed_id": feed_id, "hours": [d["hour"] for d in done], "parsed": done}
    if publish and done:
        out["published"] = publish_hours(ws, feed_id, out["hours"])["published"]
    return out

