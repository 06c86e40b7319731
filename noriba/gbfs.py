"""GBFS steps: ingest a folder of captured snapshots, poll a live system respecting ``ttl``, publish, export.

``noriba gbfs ingest PATH --feed ID`` reads any folder of GBFS JSON files (whatever poller wrote
it: file kinds come from names or contents, transforms/gbfs/discover.py). ``noriba gbfs fetch FEED``
follows the spec's ``gbfs.json`` and downloads each listed file when its ``ttl`` has run out (never
more often than ``gbfs.min_interval_s``), with the bounded-download rules of noriba/fetch.py.

Every file is archived as received: the new files of an ingest together in one uncompressed zip
``raw/<feed_id>/<key>.zip`` (names and bytes unchanged; key: the sha256 of its members' names and
sha256s), each live download as it arrives as ``raw/<feed_id>/<sha256>.json``; the files table keeps
each file's own sha256. A file already ingested (same sha256) is skipped, so re-ingesting a folder,
or a poll that brings nothing new, does nothing. New files form one batch in the lake
(``lake/gbfs_<table>/feed_id=<id>/batch=<id>.parquet``, ``gbfs_batches`` written last); the feed is
then published: only the new batch's rows and the mart hours it can change when the warehouse holds
the feed as it was before it, else whole (warehouse/gbfs.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from datetime import datetime, timezone
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from noriba.specs import FeedSpec
from warehouse.workspace import Workspace, safe_id
from transforms.adapters import InputError, Progress
from transforms.gbfs.discover import POLLED, parse_discovery
from transforms.gbfs.parse import SnapshotReader, sort_key
from transforms.gbfs.spec import GbfsOptions, gbfs_options
from transforms.notices import NOTICE_SCHEMA, QUARANTINE_SCHEMA
from warehouse.runstate import feed_lock, in_thread, sweep

if TYPE_CHECKING:
    from warehouse.gbfs import Writer

#: Largest single GBFS file read from a folder when the spec gives no source.max_bytes (a big free-floating system is a few MB).
DEFAULT_MAX_FILE_BYTES = 256 << 20
#: Notices kept per code in one batch (the counts are kept whole in the batch's meta).
SAMPLES_PER_CODE = 200
VERSION_LENGTH = 16


def _say(progress: Progress | None, msg: str) -> None:
    if progress:
        progress(msg)


def _now() -> str:
    """Return the time now (UTC, ISO 8601 to the millisecond: two batches ingested in one second are told apart)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _lake_dir(ws: Workspace, table: str, feed_id: str) -> Path:
    return ws.lake / f"gbfs_{table}" / f"feed_id={feed_id}"


def _write(table: pa.Table, dest: Path) -> None:
    """Write ``table`` to ``dest`` atomically (a temporary file beside it, then a rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:6]}")
    pq.write_table(table, tmp)
    os.replace(tmp, dest)


def known_state(ws: Workspace, feed_id: str) -> dict:
    """Return what earlier batches of the feed hold: file hashes, station ids, vehicle type ids, whether system_information came."""
    from warehouse.gbfs import batch_files, lake_paths

    batches = batch_files(ws, feed_id)
    out = {"sha256": set(), "station_ids": set(), "vehicle_type_ids": None, "system_information": False, "batches": batches,
           "meta": []}
    for table, col in (("files", "sha256"), ("station_information", "station_id"), ("vehicle_types", "vehicle_type_id")):
        paths = lake_paths(ws, table, feed_id, batches)
        if not paths:
            continue
        values = set()
        for p in paths:  # file by file: pq.read_table would import pyarrow.dataset (~0.01 s) for it
            values.update(pq.ParquetFile(p).read(columns=[col]).column(col).to_pylist())
        key = {"files": "sha256", "station_information": "station_ids", "vehicle_types": "vehicle_type_ids"}[table]
        out[key] = values
    out["system_information"] = bool(lake_paths(ws, "system_information", feed_id, batches))
    out["meta"] = _metas(ws, feed_id, batches)
    return out


def _metas(ws: Workspace, feed_id: str, batches: list[str] | None = None, *, skip: set[str] = frozenset()) -> list[dict | None]:
    """Return the meta rows of the feed's complete batches (``batches``, else all of them), in batch id order; None for those
    in ``skip`` (not read)."""
    from warehouse.gbfs import batch_files

    return [None if b in skip else pq.ParquetFile(_lake_dir(ws, "batches", feed_id) / f"batch={b}.parquet").read().to_pylist()[0]
            for b in (batch_files(ws, feed_id) if batches is None else batches)]


def _read_limited(path: Path | str, max_bytes: int) -> bytes:
    """Return the bytes of ``path``. If it holds more than ``max_bytes``, raise InputError (at most max_bytes + 1 are read)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:  # sized by fstat: read(max_bytes + 1) would allocate (and give back) the whole limit for every file
        want = min(os.fstat(fd).st_size, max_bytes) + 1
        data = os.read(fd, want)
        if len(data) == want:  # more than fstat said (the file grows) or than the limit: read on, to the limit at most
            chunks, n = [data], len(data)
            while n <= max_bytes and (more := os.read(fd, max_bytes + 1 - n)):
                chunks.append(more)
                n += len(more)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(f"{path}: larger than source.max_bytes={max_bytes:,} bytes; nothing was kept. "
                         "If a GBFS file really is this big, raise source.max_bytes in the spec",
                         ja=f"{path}: source.max_bytes={max_bytes:,} バイトを超えているため、何も保存していません。"
                            "本当にこの大きさの GBFS ファイルなら、spec の source.max_bytes を上げてください")
    return data


def _json_files(root: Path, *, feed_id: str) -> list[tuple[str, str]]:
    """Return (relative name, path) of the .json files under ``root``, hidden entries skipped, with one directory read per
    folder (os.scandir: no stat per regular file). Links are checked as transforms/paths.folder_files checks them: a
    link to a folder, out of ``root`` or to nothing, a device or a pipe, or an unsafe name raises InputError naming it."""
    import stat as stat_

    from transforms.paths import unsafe_reason

    base = root.resolve()
    out: list[tuple[str, Path]] = []
    stack = [(root, "")]

    def refuse(name: str, why: str) -> InputError:
        return InputError(f"{root / name}: {why} (feed '{feed_id}'); put the snapshot files themselves in the folder",
                          ja=f"{root / name}: 読み込めない項目です（{why}。フィード '{feed_id}'）。スナップショットのファイルそのものを"
                             "フォルダに置いてください")

    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.name.startswith("."):
                continue
            name = prefix + e.name
            if e.is_dir(follow_symlinks=False):
                stack.append((Path(e.path), name + "/"))
                continue
            if e.is_symlink():
                target = Path(e.path).resolve()
                if target.is_dir():
                    raise refuse(name, "it is a link to a folder, which is not followed")
                if not target.is_relative_to(base):
                    raise refuse(name, "it is a link to a file outside the folder")
                if not target.exists():
                    raise refuse(name, "it is a link to nothing")
            if not name.lower().endswith(".json"):
                continue
            if not e.is_file() or (e.is_symlink() and not stat_.S_ISREG(os.stat(e.path).st_mode)):
                raise refuse(name, "it is not a regular file (a device, pipe or socket)")
            if (why := unsafe_reason(name)) is not None:
                raise refuse(name, why)
            out.append((name, e.path))  # the path as text: a Path per snapshot costs more than reading it
    return out


def archive_batch(folder: Path, members: list[tuple[str, bytes, str]]) -> tuple[Path, str]:
    """Return (raw/<feed>/<key>.zip, key) after archiving a batch's files ((name, bytes, sha256)) as received, in one
    uncompressed zip.

    Members keep their names and exact bytes (ZIP_STORED, sorted, fixed timestamps: the same files give the same
    archive); one write per batch instead of one per snapshot, straight to the file. ``key`` is the sha256 of the sorted
    list of (name, sha256 of the file): it names the archive by its content without reading the archive again. Written
    once per content, read-only.
    """
    import zipfile

    ordered = sorted(members, key=lambda m: m[0])
    target, key = archive_target(folder, ordered)
    if not target.exists():
        tmp = folder / f".incoming-{uuid.uuid4().hex[:12]}.tmp"
        try:
            if len(ordered) < 0xFFFF and sum(len(m[1]) for m in ordered) < 1 << 30:
                _write_stored_zip(tmp, ordered)
            else:  # zip64 records: zipfile writes them
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                    for name, data, _ in ordered:
                        zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return target, key


def archive_target(folder: Path, members: list[tuple[str, bytes, str]]) -> tuple[Path, str]:
    """Return (raw/<feed>/<key>.zip, key) that archive_batch writes ``members`` ((name, bytes, sha256)) to, without writing."""
    key = hashlib.sha256("".join(f"{n}\t{s}\n" for n, _, s in sorted(members, key=lambda m: m[0])).encode()).hexdigest()
    return folder / f"{key}.zip", key


def _write_stored_zip(path: Path, members: list[tuple[str, bytes, str]]) -> None:
    """Write ``members`` ((name, bytes, sha256), in order) to a new file ``path`` as an uncompressed zip, byte for byte the
    file zipfile writes for them (ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), ZIP_STORED), without its two header writes
    and seeks per member: headers packed here, the CRCs by ISA-L, everything written with a few writev calls. Only for
    fewer than 65,535 members and under 1 GiB (no zip64 record)."""
    import struct

    from isal.isal_zlib import crc32  # the same CRC-32 as zlib's, ~6x faster (ISA-L)

    dosdate, dostime = (0 << 9) | (1 << 5) | 1, 0  # 1980-01-01 00:00:00
    parts: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for name, data, _ in members:
        try:
            raw, flags = name.encode("ascii"), 0
        except UnicodeEncodeError:
            raw, flags = name.encode("utf-8"), 0x800
        crc, size = crc32(data), len(data)
        header = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, flags, 0, dostime, dosdate, crc, size, size, len(raw), 0) + raw
        central.append(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, flags, 0, dostime, dosdate, crc, size, size,
                                   len(raw), 0, 0, 0, 0, 0o600 << 16, offset) + raw)  # rw------- as zipfile.writestr gives
        parts += (header, data)
        offset += len(header) + size
    directory = b"".join(central)
    parts += (directory, struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), offset, 0))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        step = 1024  # at most IOV_MAX buffers per call
        for i in range(0, len(parts), step):
            chunk = parts[i:i + step]
            left = sum(map(len, chunk))
            while left:
                n = os.writev(fd, chunk)
                left -= n
                while chunk and n >= len(chunk[0]):  # a short write: the rest is written again
                    n -= len(chunk[0])
                    chunk = chunk[1:]
                if chunk and n:
                    chunk = [chunk[0][n:], *chunk[1:]]
    finally:
        os.close(fd)


def snapshot_files(path: Path, *, feed_id: str) -> list[tuple[str, Path | str]]:
    """Return (name, file) of the JSON files of a snapshot folder (or the one file), in reading order.

    Hidden files and files not ending in .json are left out. If an entry is unsafe (a link leading
    out of the folder, a device), raise InputError naming it.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file or folder (feed '{feed_id}')",
                         ja=f"{path}: ファイルまたはフォルダがありません（フィード '{feed_id}'）。パスを確認してください")
    if path.is_file():
        return [(path.name, path)]
    return sorted(_json_files(path, feed_id=feed_id), key=lambda x: sort_key(x[0]))


def ingest(ws: Workspace, feed_id: str, path: Path, *, spec: FeedSpec | None = None, timezone_name: str | None = None,
           progress: Progress | None = None, export: bool = True, specs_dir: Path | None = None, archive: bool = True) -> dict:
    """Return what ingesting a snapshot folder (or one file) did: new files archived, read, checked, in the lake, published.

    ``archive=False`` leaves out the zip of the new files (for a folder already under raw/, such as the archiver's).
    """
    safe_id(feed_id)
    ws.ensure()
    opts = gbfs_options(spec) if spec is not None else GbfsOptions()
    max_bytes = min(spec.source.max_bytes, DEFAULT_MAX_FILE_BYTES) if spec is not None else DEFAULT_MAX_FILE_BYTES
    files = snapshot_files(path, feed_id=feed_id)
    if not files:
        raise InputError(f"{path}: no .json file to read (feed '{feed_id}'); give the folder a poller wrote GBFS snapshots into",
                         ja=f"{path}: 読み込む .json ファイルがありません（フィード '{feed_id}'）。GBFS のスナップショットを"
                            "保存したフォルダを指定してください")
    _say(progress, f"{feed_id}: reading {len(files):,} GBFS file(s) from {path}")
    from warehouse.gbfs import Writer

    with feed_lock(ws, feed_id), Writer(ws) as writer:
        if len(files) <= MAX_BATCH_FILES:  # one batch, most likely: the writer is prepared while its files are read
            writer.start()
        batches = _stage_chunks(ws, feed_id, _chunks(files, max_bytes), source=str(path), opts=opts, spec=spec,
                                timezone_name=timezone_name, progress=progress, specs_dir=specs_dir, archive=archive,
                                writer=writer)
        return _publish_batches(ws, feed_id, batches, opts=opts, progress=progress, export=export, writer=writer)


#: A batch holds at most this many files or bytes (memory bound); a bigger folder is read as several batches.
MAX_BATCH_FILES = 5000
MAX_BATCH_BYTES = 256 << 20


def _chunks(files: list[tuple[str, Path | str]], max_bytes: int):
    """Yield (list of (name, bytes) of consecutive files, whether it is the last list), each list within MAX_BATCH_FILES
    and MAX_BATCH_BYTES."""
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for name, path in files:
        data = _read_limited(path, max_bytes)
        if chunk and (len(chunk) >= MAX_BATCH_FILES or size + len(data) > MAX_BATCH_BYTES):
            yield chunk, False
            chunk, size = [], 0
        chunk.append((name, data))
        size += len(data)
    if chunk:
        yield chunk, True


def _stage_chunks(ws: Workspace, feed_id: str, chunks, *, writer: "Writer | None" = None, **kw) -> list[dict]:
    """Return the staged batches of ``chunks`` ((list of (name, bytes), last?)); only the last keeps its tables in memory
    (memory stays bounded by one batch), to be published from them. ``writer`` (warehouse.gbfs.Writer) is prepared while
    the last batch is staged, and closed while earlier ones are (the publish lock is not held that long)."""
    batches: list[dict] = []
    try:
        for chunk, last in chunks:
            if batches:  # the next batch reads what the lake holds
                _wait_lake(batches)
                batches[-1].pop("tables", None)
            if writer is not None:  # the publish lock is held while the last batch is staged, not while earlier ones are
                writer.start() if last else writer.close()
            batches.append(_stage_batch(ws, feed_id, chunk, **kw))
    except BaseException:
        for b in batches:  # no thread outlives the ingest
            if b.get("lake") is not None:
                b["lake"].exception()
        raise
    return batches


def _ingest_items(ws: Workspace, feed_id: str, items, *, source: str, opts: GbfsOptions, spec: FeedSpec | None,
                  timezone_name: str | None, progress: Progress | None, export: bool, specs_dir: Path | None = None,
                  archive: bool = True) -> dict:
    """Return the result of one batch of ``items`` ((name, bytes)), published. Call under the feed's lock."""
    batch = _stage_batch(ws, feed_id, items, source=source, opts=opts, spec=spec, timezone_name=timezone_name,
                         progress=progress, specs_dir=specs_dir, archive=archive)
    return _publish_batches(ws, feed_id, [batch], opts=opts, progress=progress, export=export)


def _publish_batches(ws: Workspace, feed_id: str, batches: list[dict], *, opts: GbfsOptions, progress: Progress | None,
                     export: bool, writer: "Writer | None" = None) -> dict:
    """Return the result of staged batches: nothing to do when none is new, else the feed published (and exported)."""
    new = [b for b in batches if b["status"] == "batch"]
    skipped = sum(b["skipped"] for b in batches)
    if not new:
        meta = _feed_meta(_metas(ws, feed_id))
        return {"feed_id": feed_id, "status": "unchanged", "feed_version": meta.get("feed_version"), "skipped": skipped,
                "message": f"{feed_id}: no new GBFS file ({skipped:,} already ingested); nothing to do"}
    memory = {b["batch_id"]: b.pop("tables") for b in new if "tables" in b}
    # a batch whose lake files are still being written is published from memory; the commit waits for them
    pending = {b["batch_id"]: (b["meta"], b["lake"]) for b in new if b.get("lake") is not None}
    try:
        out = publish_feed(ws, feed_id, opts=opts, progress=progress, new_batches=[b["batch_id"] for b in new], memory=memory,
                           writer=writer, pending=pending)
    finally:
        _wait_lake(new)  # written (or failed) before anything else happens; a failure was the publish's
    if writer is not None:
        writer.close()  # the lock released and the readers' copy made before the export reads it
    del memory
    notices: dict[str, int] = {}
    for b in new:
        for c, n in b["notices"].items():
            notices[c] = notices.get(c, 0) + n
    n_files, rows_in, ok, q = (sum(b[k] for b in new) for k in ("new_files", "batch_rows_in", "batch_rows_accepted", "batch_rows_quarantined"))
    out.update({"batch_id": new[-1]["batch_id"], "batches": [b["batch_id"] for b in new], "new_files": n_files, "skipped": skipped,
                "batch_rows_in": rows_in, "batch_rows_accepted": ok, "batch_rows_quarantined": q, "notices": notices})
    if export:
        from warehouse.gbfs import export_gbfs

        out["exports"] = export_gbfs(ws, feed_id)
    out["message"] = (f"{feed_id}: version {out['feed_version']}: {n_files:,} new file(s) "
                      f"({rows_in:,} rows in, {ok:,} accepted, {q:,} quarantined); feed total {out['rows_in']:,} rows in")
    return out


def _stage_batch(ws: Workspace, feed_id: str, items, *, source: str, opts: GbfsOptions, spec: FeedSpec | None,
                 timezone_name: str | None, progress: Progress | None, specs_dir: Path | None = None, archive: bool = True) -> dict:
    """Return one batch of the new files of ``items`` ((name, bytes) in reading order), archived and in the lake (not yet
    published). Call under the feed's lock."""
    for table in ("batches", *_TABLE_NAMES):
        sweep(_lake_dir(ws, table, feed_id), ".batch=*.tmp-*")
    state = known_state(ws, feed_id)
    raw = ws.raw_dir(feed_id)
    raw.mkdir(parents=True, exist_ok=True)
    reader = SnapshotReader(opts, known_station_ids=state["station_ids"], known_vehicle_type_ids=state["vehicle_type_ids"],
                            has_system_information=state["system_information"])
    seen = set(state["sha256"])
    new: list[tuple[str, str]] = []
    items = items if isinstance(items, list) else list(items)
    archiving = None
    if not seen and len(items) > 1:  # a first batch: hashed (then archived) in a thread while its station_status files
        hashed: Future = Future()  # are decoded ahead
        archiving = Future() if archive else None
        worker = _in_thread(_hash_then_archive, items, raw, hashed, archiving)
        try:
            reader.prime(items)
        except BaseException:
            worker.exception()
            raise
        shas = hashed.result()
    else:
        shas = _sha256s(items)
    members, skipped = _new_members(items, shas, seen)
    archived = None
    if members and archive:  # written while the batch is parsed, published (the write and the zip's CRC release the GIL)
        if archiving is None:
            archiving = _in_thread(archive_batch, raw, members)
        archived = archive_target(raw, members)[0]
    try:  # no thread outlives the ingest: a failure here waits for the archive's
        for name, data, sha in members:
            reader.add(name, data, sha256=sha)
            new.append((name, sha))
        del members
        if not new:
            return {"status": "unchanged", "skipped": skipped}
        parsed = reader.finish()
        # the system's own time zone; else the one asked for; else the one an earlier batch had (a poll round without
        # system_information.json); else the spec's
        tz = parsed.timezone or timezone_name or _last_tz(state["meta"]) or (spec.timezone if spec is not None else None) or "UTC"
        zone_layer = _zone_layer(opts, ws, specs_dir)
        tables = dict(parsed.tables)
        for t in ("station_information", "vehicle_status"):
            tables[t] = _with_zones(tables[t], zone_layer)
        batch = hashlib.sha256("".join(f"{n}\t{s}\n" for n, s in new).encode()).hexdigest()[:VERSION_LENGTH]
        notices, counts = _sampled_notices(parsed.findings)
        by_sev = {"ERROR": 0, "WARNING": 0, "INFO": 0}
        for (code, sev), n in counts.items():
            by_sev[sev] = by_sev.get(sev, 0) + n
        ts = [t for t in tables["files"].column("snapshot_ts").to_pylist() if t is not None]
        meta = {"batch_id": batch, "feed_id": feed_id, "source": source, "raw_path": str(archived) if archived else None,
                "ingested_at": _now(), "files": len(new), "skipped": skipped, "rows_in": parsed.rows_in, "rows_accepted": parsed.rows_accepted,
                "rows_quarantined": parsed.rows_quarantined, "timezone": tz, "versions": json.dumps(parsed.versions),
                "notice_codes": json.dumps({c: n for (c, _), n in sorted(counts.items())}),
                "errors": by_sev["ERROR"], "warnings": by_sev["WARNING"], "infos": by_sev["INFO"],
                "first_snapshot": min(ts) if ts else None, "last_snapshot": max(ts) if ts else None,
                "zone_layer": zone_layer.layer_id if zone_layer else None,
                "spec": json.dumps({**(spec.metadata() if spec else {}), "gbfs": spec.options if spec else {}}, ensure_ascii=False, default=str)}
        _say(progress, f"{feed_id}: {len(new):,} new file(s), {parsed.rows_in:,} rows; writing the lake")
        quarantine = _table(parsed.findings.quarantine, QUARANTINE_SCHEMA)
        # an empty table is not written: publishing reads the batches' files that exist
        written = {t: table for t, table in (*tables.items(), ("notices", notices), ("quarantine", quarantine)) if table.num_rows or t == "files"}
        lake = _in_thread(_write_lake, ws, feed_id, batch, written, meta, archiving)
    except BaseException:
        if archiving is not None:
            archiving.exception()
        raise
    return {"status": "batch", "batch_id": batch, "new_files": len(new), "skipped": skipped, "batch_rows_in": parsed.rows_in,
            "batch_rows_accepted": parsed.rows_accepted, "batch_rows_quarantined": parsed.rows_quarantined,
            "notices": {c: n for (c, _), n in counts.items()}, "tables": written, "meta": meta, "lake": lake}


def _new_members(items: list[tuple[str, bytes]], shas: list[str], seen: set[str]) -> tuple[list[tuple[str, bytes, str]], int]:
    """Return ((name, bytes, sha256) of the items whose sha256 is not in ``seen`` nor in an earlier item, the number skipped);
    ``seen`` gets the new ones."""
    members: list[tuple[str, bytes, str]] = []
    skipped = 0
    for (name, data), sha in zip(items, shas):
        if sha in seen:
            skipped += 1
            continue
        seen.add(sha)
        members.append((name, data, sha))
    return members, skipped


def _hash_then_archive(items: list[tuple[str, bytes]], raw: Path, hashed: "Future", archiving: "Future | None") -> None:
    """Set ``hashed`` to the items' sha256s, then (``archiving`` given) archive the new ones of a first batch (as
    _new_members keeps them) and set ``archiving`` to what archive_batch returns. A failure is set on what is not set yet."""
    try:
        shas = _sha256s(items)
    except BaseException as exc:  # noqa: BLE001 - raised by whoever waits for the futures
        hashed.set_exception(exc)
        if archiving is not None:
            archiving.set_exception(exc)
        return
    hashed.set_result(shas)
    if archiving is not None:
        try:
            members = _new_members(items, shas, set())[0]
            archiving.set_result(archive_batch(raw, members) if members else None)
        except BaseException as exc:  # noqa: BLE001
            archiving.set_exception(exc)


def _sha256s(items: list[tuple[str, bytes]]) -> list[str]:
    """Return the sha256 (hex) of each item's bytes (hashlib releases the GIL while it hashes)."""
    sha = hashlib.sha256
    return [sha(data).hexdigest() for _, data in items]


def _in_thread(fn, *args) -> "Future":
    """Return the Future of ``fn(*args)`` run in a thread of its own (whoever starts one waits for it before returning)."""
    return in_thread(fn, *args, name="noriba-gbfs-io")


def _write_lake(ws: Workspace, feed_id: str, batch: str, tables: dict[str, pa.Table], meta: dict, archiving) -> None:
    """Write a staged batch's lake files: its tables, then (once its raw archive ``archiving`` is written) its meta row,
    last, which makes the batch complete (a batch is only ever read once complete)."""
    for t, table in tables.items():
        _write(table, _lake_dir(ws, t, feed_id) / f"batch={batch}.parquet")
    if archiving is not None:
        archiving.result()
    _write(pa.Table.from_pylist([meta]), _lake_dir(ws, "batches", feed_id) / f"batch={batch}.parquet")


def _wait_lake(batches: list[dict]) -> None:
    """Wait for the staged batches' lake writes; raise the first one's error."""
    errors = [e for b in batches if b.get("lake") is not None and (e := b["lake"].exception()) is not None]
    for b in batches:
        b["lake"] = None
    if errors:
        raise errors[0]


_TABLE_NAMES = ("station_information", "station_status", "vehicle_status", "system_information", "vehicle_types", "files",
                "notices", "quarantine")


def _newest(metas: list[dict]) -> dict:
    """Return the meta row of the batch ingested last (batch ids are hashes: their order says nothing of time). Of batches
    ingested in the same second (one folder read as several batches), the one whose snapshots end last."""
    return max(metas, key=lambda m: (m.get("ingested_at") or "", m.get("last_snapshot") or 0, m.get("first_snapshot") or 0))


def _last_tz(metas: list[dict]) -> str | None:
    return _newest(metas).get("timezone") if metas else None


def _feed_meta(metas: list[dict]) -> dict:
    """Return the feed's meta row from its batches' rows: totals, notice counts summed, and the version (hash of the batches)."""
    if not metas:
        return {}
    codes: dict[str, int] = {}
    for m in metas:
        for c, n in json.loads(m.get("notice_codes") or "{}").items():
            codes[c] = codes.get(c, 0) + n
    ver = hashlib.sha256("".join(m["batch_id"] for m in metas).encode()).hexdigest()[:VERSION_LENGTH]
    firsts = [m["first_snapshot"] for m in metas if m.get("first_snapshot") is not None]
    lasts = [m["last_snapshot"] for m in metas if m.get("last_snapshot") is not None]
    iso = lambda t: datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds") if t is not None else None  # noqa: E731
    last = _newest(metas)
    return {
        "feed_version": ver, "source_sha256": ver, "source": last["source"], "fetched_at": last["ingested_at"],
        "ingested_at": last["ingested_at"], "files": json.dumps({"batches": len(metas), "files": sum(m["files"] for m in metas)}),
        "rows_in": sum(m["rows_in"] for m in metas), "rows_accepted": sum(m["rows_accepted"] for m in metas),
        "rows_quarantined": sum(m["rows_quarantined"] for m in metas), "errors": sum(m["errors"] for m in metas),
        "warnings": sum(m["warnings"] for m in metas), "infos": sum(m["infos"] for m in metas),
        "notice_codes": json.dumps(codes), "spec": last["spec"], "timezone": last["timezone"],
        "first_snapshot": iso(min(firsts) if firsts else None), "last_snapshot": iso(max(lasts) if lasts else None),
    }


def publish_feed(ws: Workspace, feed_id: str, *, opts: GbfsOptions | None = None, progress: Progress | None = None,
                 new_batches: list[str] | None = None, memory: dict[str, dict] | None = None, writer: "Writer | None" = None,
                 pending: dict[str, tuple[dict, "Future"]] | None = None) -> dict:
    """Return the feed's meta after publishing its lake batches (warehouse/gbfs.py).

    With ``new_batches`` (those just staged), a warehouse holding the feed as it was before them gets only their rows,
    and the marts' rows of the hours they can change; all of them when they bring station_information (names and zones
    of every hour), or the time zone or the spec changed. Otherwise, or without ``new_batches``, the feed is replaced whole.
    ``pending`` ({batch id: (meta row, Future of its lake write)}): staged batches whose lake files are being written,
    published from ``memory``; the commit waits for their lake files.
    """
    from warehouse.gbfs import batch_files, lake_paths, publish_gbfs

    opts = opts or GbfsOptions()
    pending = pending or {}
    memory = memory or {}
    ids = sorted(set(batch_files(ws, feed_id)) | set(pending))
    metas = [pending[b][0] if b in pending else m for b, m in zip(ids, _metas(ws, feed_id, ids, skip=set(pending)))]
    meta = _feed_meta(metas)
    append = None
    fresh = set(new_batches or ())
    old = [m for m in metas if m["batch_id"] not in fresh]
    if fresh and old and len(old) + len(fresh) == len(metas):
        before = _feed_meta(old)
        firsts = [m["first_snapshot"] for m in metas if m["batch_id"] in fresh and m.get("first_snapshot") is not None]
        info = (any("station_information" in memory[b] for b in fresh if b in pending)
                or bool(lake_paths(ws, "station_information", feed_id, sorted(fresh - set(pending)))))
        whole = info or before["timezone"] != meta["timezone"] or before["spec"] != meta["spec"] or not firsts
        append = {"previous_version": before["feed_version"], "batches": sorted(fresh), "marts_from": None if whole else min(firsts)}
    _say(progress, f"{feed_id}: publishing version {meta['feed_version']} and the marts")
    counts = publish_gbfs(ws, feed_id, meta=meta, max_gap_s=opts.max_gap_s, append=append, memory=memory, writer=writer,
                          pending={b: lake for b, (_, lake) in pending.items()})
    return {"feed_id": feed_id, "status": "new", **meta, "published": counts,
            "publish_mode": append.get("published", "whole") if append else "whole",
            "marts_from": append.get("marts_from") if append and append.get("published") == "incremental" else None}


def _zone_layer(opts: GbfsOptions, ws: Workspace, specs_dir: Path | None = None):
    if not opts.zone_layer:
        return None
    from noriba.specs import SpecError, load_trip_specs
    from noriba.trips_pipeline import zone_layer

    specs = {s.id: s for s in load_trip_specs(specs_dir)}
    spec = specs.get(opts.zone_layer)
    if spec is None or spec.kind != "zones":
        raise SpecError([f"gbfs.zones.layer: no zones spec '{opts.zone_layer}' under specs/trips; known: "
                         f"{', '.join(sorted(s for s, v in specs.items() if v.kind == 'zones'))}"])
    return zone_layer(spec, ws=ws)


def _with_zones(table: pa.Table, layer) -> pa.Table:
    """Return ``table`` with zone_layer and zone_id (the zone of each row's lat/lon; null without a layer or outside it)."""
    n = table.num_rows
    if layer is None or n == 0:
        return table.append_column("zone_layer", pa.nulls(n, pa.string())).append_column("zone_id", pa.nulls(n, pa.string()))
    import numpy as np

    lat = table.column("lat").to_numpy(zero_copy_only=False).astype(float)
    lon = table.column("lon").to_numpy(zero_copy_only=False).astype(float)
    ids = layer.assign(lon, lat)
    zone = pa.array([None if z is None else str(z) for z in ids], pa.string())
    layer_col = pa.array(np.where(pa.array(zone).is_null().to_numpy(zero_copy_only=False), None, layer.layer_id), pa.string())
    return table.append_column("zone_layer", layer_col).append_column("zone_id", zone)


def _table(rows: list, schema: pa.Schema) -> pa.Table:
    """Return dataclass rows (Notice, QuarantinedRow) as a table of ``schema``, column by column."""
    return pa.Table.from_arrays([pa.array([getattr(r, f.name) for r in rows], f.type) for f in schema], schema=schema)


def _sampled_notices(findings) -> tuple[pa.Table, dict]:
    """Return (at most SAMPLES_PER_CODE notices per code, the true count per (code, severity))."""
    kept, per = [], {}
    for n in findings.notices:
        per[n.code] = per.get(n.code, 0) + 1
        if per[n.code] <= SAMPLES_PER_CODE:
            kept.append(n)
    return _table(kept, NOTICE_SCHEMA), dict(findings.counts)


# ---------------------------------------------------------------------------------------------------------------------
# Live polling
# ---------------------------------------------------------------------------------------------------------------------

def download(ws: Workspace, feed_id: str, url: str, spec: FeedSpec, *, guard=None) -> tuple[bytes, str]:
    """Return (bytes, sha256) of one GBFS file downloaded within the spec's limits (size, deadline, retries), archived under raw/.

    If it cannot be received, or is a web page instead of JSON, raise InputError.
    """
    import httpx

    from noriba.fetch import _checked_suffix, _client, _Deadline, _incoming, _keep, _one_line, _too_big

    # guard: the one of the system's gbfs.json (fetch_live): a file URL it names may not lead further into the network

    src = spec.source
    deadline = _Deadline(src.deadline_s)
    folder = ws.raw_dir(feed_id)
    last = ""
    with _client(deadline, src.timeout_s, guard=guard) as client:
        for attempt in range(max(1, src.retries)):
            if attempt:
                pause = min(2 ** (attempt - 1) * 0.5, 30.0)
                if deadline.left() <= pause:
                    break
                time.sleep(pause)
            try:
                with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as resp:
                    if resp.status_code in (408, 429, 500, 502, 503, 504):
                        last = f"the server answered HTTP {resp.status_code}"
                        continue
                    if resp.status_code != 200:
                        raise InputError(f"{url}: the server answered HTTP {resp.status_code} (feed '{feed_id}')",
                                         ja=f"{url}: サーバーが HTTP {resp.status_code} を返しました（フィード '{feed_id}'）。"
                                            "URL を確認するか、時間をおいて再実行してください")
                    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                    h = hashlib.sha256()
                    n = 0
                    with _incoming(folder) as f:
                        for chunk in resp.iter_bytes():
                            if deadline.left() <= 0:
                                raise httpx.ReadTimeout("the download deadline has passed")
                            n += len(chunk)
                            if n > src.max_bytes:
                                raise _too_big(url, src.max_bytes, feed_id)
                            h.update(chunk)
                            f.write(chunk)
                        _checked_suffix(f, url, ctype, feed_id=feed_id)  # a web page instead of data is refused
                        target, sha = _keep(f, ".json", h.hexdigest())
                    return target.read_bytes(), sha
            except httpx.HTTPError as exc:
                if deadline.left() <= 0:
                    break
                last = f"{type(exc).__name__}: {_one_line(exc)}"
    if deadline.left() <= 0:
        raise InputError(f"{url}: the download did not finish within source.deadline_s={src.deadline_s:g} seconds (feed '{feed_id}')",
                         ja=f"{url}: source.deadline_s={src.deadline_s:g} 秒以内にダウンロードが終わりませんでした"
                            f"（フィード '{feed_id}'）。時間をおいて再実行してください")
    raise InputError(f"{url}: download failed (feed '{feed_id}'): {last}; check the URL or try again later",
                     ja=f"{url}: ダウンロードに失敗しました（フィード '{feed_id}'、{last}）。URL を確認するか、時間をおいて再実行してください")


def next_due(fetched_at: float, ttl: object, min_interval_s: float) -> float:
    """Return when a file fetched at ``fetched_at`` may be asked again: after its ttl (seconds), never sooner than min_interval_s."""
    t = ttl if type(ttl) is int and ttl >= 0 else 0
    return fetched_at + max(float(t), min_interval_s)


def poll(spec: FeedSpec, ws: Workspace, *, once: bool = False, rounds: int | None = None, progress: Progress | None = None,
         export: bool = True, specs_dir: Path | None = None, clock=time.monotonic, sleep=time.sleep) -> list[dict]:
    """Return the result of each round of polling a live system (gbfs.json, then each listed file when its ttl ran out).

    ``once`` asks every file once; ``rounds`` stops after that many rounds; otherwise it runs until
    interrupted. Each round's new files are ingested and published as one batch.
    """
    if spec.kind != "gbfs" or not spec.source.url:
        raise InputError(f"{spec.id}: `noriba gbfs fetch` needs a spec of kind gbfs with source.url (the system's gbfs.json)",
                         ja=f"{spec.id}: `noriba gbfs fetch` には kind: gbfs で source.url（システムの gbfs.json）のある spec が必要です")
    from noriba.fetch import _Guard

    opts = gbfs_options(spec)
    ws.ensure()
    guard = _Guard()  # gbfs.json's server sets how far in the file URLs it names may lead (SSRF)
    due: dict[str, float] = {}
    urls: dict[str, str] = {}
    results = []
    n = 0
    while True:
        now = clock()
        items: list[tuple[str, bytes]] = []
        stamp = int(time.time())
        if due.get("gbfs", 0) <= now:
            data, sha = download(ws, spec.id, spec.source.url, spec, guard=guard)
            try:
                doc = json.loads(data)
                disc = parse_discovery(doc, language=opts.language)
            except ValueError as exc:
                raise InputError(f"{spec.source.url}: not a GBFS auto-discovery file ({exc}); source.url must be the system's gbfs.json",
                                 ja=f"{spec.source.url}: GBFS の自動検出ファイル（gbfs.json）ではありません（{exc}）。"
                                    "source.url にはシステムの gbfs.json を書いてください") from None
            urls = {k: u for k, u in disc.feeds.items() if k in POLLED}
            due["gbfs"] = next_due(clock(), doc.get("ttl"), opts.min_interval_s)
            items.append((f"gbfs/{stamp}-{sha[:8]}.json", data))
        for kind in POLLED:
            if kind in urls and due.get(kind, 0) <= clock():
                try:
                    data, sha = download(ws, spec.id, urls[kind], spec, guard=guard)
                except InputError as exc:
                    if once or rounds is not None:
                        raise
                    _say(progress, f"{spec.id}: {exc}; asked again in {opts.min_interval_s:g} s")  # a poller keeps going
                    due[kind] = clock() + max(opts.min_interval_s, 1.0)
                    continue
                try:
                    ttl = json.loads(data).get("ttl")
                except (ValueError, AttributeError):
                    ttl = None
                due[kind] = next_due(clock(), ttl, opts.min_interval_s)
                items.append((f"{kind}/{stamp}-{sha[:8]}.json", data))
        _say(progress, f"{spec.id}: round {n + 1}: {len(items)} file(s) downloaded")
        with feed_lock(ws, spec.id):
            results.append(_ingest_items(ws, spec.id, items, source=spec.source.url, opts=opts, spec=spec, timezone_name=None,
                                         progress=progress, export=export, specs_dir=specs_dir,
                                         archive=False))  # each download is archived as it arrives
        n += 1
        if once or (rounds is not None and n >= rounds):
            return results
        wait = min(due.values()) - clock()
        if wait > 0:
            sleep(wait)


def run_gbfs(spec: FeedSpec, ws: Workspace, *, progress: Progress | None = None, export: bool = True) -> dict:
    """Return one run of a gbfs spec: its source folder ingested, or its live system polled once."""
    if spec.source.url:
        out = poll(spec, ws, once=True, progress=progress, export=export)[-1]
    elif spec.source.path is None:
        raise InputError(f"{spec.id}: a gbfs spec needs source.url (gbfs.json) or source.path (a snapshot folder)",
                         ja=f"{spec.id}: gbfs の spec には source.url（gbfs.json）か source.path（スナップショットのフォルダ）が必要です")
    else:
        out = ingest(ws, spec.id, spec.source.path, spec=spec, progress=progress, export=export)
    out["gbfs_exports"] = out.pop("exports", None)  # `noriba run` reports GTFS exports under "exports"
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Polled by the realtime archiver (`noriba rt archive`, noriba/rt.py)
# ---------------------------------------------------------------------------------------------------------------------
#
#   raw/<feed>/archive/.state.json                                       ETag, Last-Modified, sha256 and ttl of each file
#   raw/<feed>/archive/.ingested.json                                    each hour folder's mark when ingest_archive last read it
#   raw/<feed>/archive/<YYYY-MM-DD>/<HH>/<kind>-<HHMMSS>-<sha256>.json   each response that differs from the previous one
#   raw/<feed>/archive/<YYYY-MM-DD>/<HH>/fetches.jsonl                   one JSON line per fetch
#
# A file's name starts with its kind, so `noriba gbfs ingest` (and ingest_archive) reads the folder as it reads any
# poller's; the hidden state file and the .jsonl logs are not snapshots and are not read.

#: Longest wait after failures in a row (the source is asked again however long it is down).
MAX_BACKOFF_S = 300.0


def archive_dir(ws: Workspace, feed_id: str) -> Path:
    """Return raw/<feed>/archive, where the realtime archiver keeps a GBFS system's responses."""
    return ws.raw_dir(safe_id(feed_id)) / "archive"


def live_specs(specs: list[FeedSpec]) -> list[FeedSpec]:
    """Return the specs the archiver polls: kind gbfs with source.url (the system's gbfs.json)."""
    return [s for s in specs if s.kind == "gbfs" and s.source.url]


class ArchivePoller:
    """One live GBFS system, polled inside the realtime archiver's event loop.

    gbfs.json is asked first and again when its ttl has run out (the file URLs are rediscovered from it); each listed file
    of POLLED is asked when its own ttl has run out, never sooner than gbfs.min_interval_s. A response whose bytes differ
    from the previous one of that file is archived as received; ETag and Last-Modified are sent back. Failures back off
    (min_interval × 2^(n-1), at most MAX_BACKOFF_S).
    """

    def __init__(self, ws: Workspace, spec: FeedSpec):
        self.ws, self.spec, self.opts = ws, spec, gbfs_options(spec)
        self.feed_id, self.part = spec.id, "gbfs"  # what noriba.rt's sending to an object-storage home names
        self.unsent: dict[Path, bool] = {}  # object-storage home: {local path: immutable} not yet in the store
        self.log_path: Path | None = None  # the fetch log of the hour of the last fetch
        self.store_down = False
        self.folder = archive_dir(ws, spec.id)
        self.urls: dict[str, str] = {}
        self.due: dict[str, float] = {}
        self.failures: dict[str, int] = {}
        self.stats: dict[str, dict] = {}
        try:
            st = json.loads((self.folder / ".state.json").read_text())
            self.state: dict[str, dict] = st if isinstance(st, dict) else {}
        except (OSError, ValueError):
            self.state = {}

    def _stat(self, kind: str) -> dict:
        return self.stats.setdefault(kind, {"fetches": 0, "changed": 0, "failures": 0})

    async def fetch(self, client, kind: str, url: str, *, conditional: bool = True) -> bytes | None:
        """Return the body of one file fetched now (None if unchanged by ETag/304 or failed); archive it if it changed,
        log the fetch, and set when the file is due again."""
        import asyncio

        import httpx

        from noriba.rt import _log_written, _send, append_line, write_durably

        when = datetime.now(timezone.utc)
        hour = self.folder / when.strftime("%Y-%m-%d") / when.strftime("%H")
        t0 = time.perf_counter()
        st = self.state.get(kind, {})
        rec = {"fetched_at": when.isoformat(timespec="milliseconds"), "part": kind, "url": url, "status": None, "latency_ms": None,
               "bytes": None, "changed": False, "sha256": None, "file": None, "ttl": None, "error": None}
        headers = {"Accept-Encoding": "identity"}
        if conditional and st.get("etag"):
            headers["If-None-Match"] = st["etag"]
        if conditional and st.get("last_modified"):
            headers["If-Modified-Since"] = st["last_modified"]
        stat = self._stat(kind)
        stat["fetches"] += 1
        body = None
        try:
            limit = self.spec.source.max_bytes
            async with client.stream("GET", url, headers=headers, timeout=self.spec.source.timeout_s) as resp:
                rec["status"] = resp.status_code
                if resp.status_code == 304:
                    pass
                elif resp.status_code != 200:
                    raise InputError(f"the server answered HTTP {resp.status_code}", ja=f"サーバーが HTTP {resp.status_code} を返しました")
                else:
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise InputError(f"the server announced {declared} bytes, more than source.max_bytes={limit}",
                                         ja=f"サーバーが {declared} バイトと伝えてきました。source.max_bytes={limit} を超えています")
                    chunks, n = [], 0
                    async for chunk in resp.aiter_bytes():
                        n += len(chunk)
                        if n > limit:
                            raise InputError(f"the response is larger than source.max_bytes={limit} bytes; nothing was kept",
                                             ja=f"応答が source.max_bytes={limit} バイトを超えたため、何も保存していません")
                        chunks.append(chunk)
                    body = b"".join(chunks)
                    etag, modified = resp.headers.get("etag"), resp.headers.get("last-modified")
            if body is not None:
                try:
                    doc = await asyncio.to_thread(json.loads, body)
                except ValueError:
                    raise InputError("the answer is not JSON (a web page or an error text?); nothing was kept",
                                     ja="応答が JSON ではありません（ウェブページかエラーの文章？）。何も保存していません") from None
                ttl = doc.get("ttl") if isinstance(doc, dict) and type(doc.get("ttl")) is int else None
                sha = hashlib.sha256(body).hexdigest()
                rec.update(bytes=len(body), sha256=sha, ttl=ttl)
                if sha != st.get("sha256"):
                    path = hour / f"{kind}-{when:%H%M%S}-{sha}.json"
                    if not path.exists():
                        write_durably(path, body)
                    self.unsent[path] = True
                    rec.update(changed=True, file=path.name)
                    stat["changed"] += 1
                new = {"etag": etag, "last_modified": modified, "sha256": sha, "ttl": ttl}
                if new != self.state.get(kind):
                    self.state[kind] = new
                    write_durably(self.folder / ".state.json", json.dumps(self.state, sort_keys=True).encode())
            else:
                ttl = st.get("ttl")
                rec.update(sha256=st.get("sha256"), ttl=ttl)
        except (httpx.HTTPError, InputError, OSError) as exc:
            text = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            rec["error"] = " ".join(text.split())[:300]
            self.failures[kind] = self.failures.get(kind, 0) + 1
            stat["failures"] = self.failures[kind]
            self.due[kind] = time.monotonic() + min(max(self.opts.min_interval_s, 1.0) * 2 ** (self.failures[kind] - 1), MAX_BACKOFF_S)
            body = None
        else:
            self.failures[kind] = stat["failures"] = 0
            self.due[kind] = next_due(time.monotonic(), ttl, self.opts.min_interval_s)
        rec["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        append_line(hour / "fetches.jsonl", rec)
        _log_written(self, hour / "fetches.jsonl", send_now=rec["changed"])
        await _send(self.ws, self, all_logs=False)  # an object-storage home gets each changed file as it is archived
        return body

    def secrets(self) -> list[str]:
        return []  # a GBFS system is asked without keys

    async def step(self, client) -> None:
        """Ask gbfs.json if due (rediscovering the file URLs), then every listed file that is due."""
        if self.due.get("gbfs", 0) <= time.monotonic():
            # without the file URLs yet (a restart), gbfs.json is asked unconditionally: a 304 would not list them
            body = await self.fetch(client, "gbfs", self.spec.source.url, conditional=bool(self.urls))
            if body is not None:
                try:
                    disc = parse_discovery(json.loads(body), language=self.opts.language)
                    self.urls = {k: u for k, u in disc.feeds.items() if k in POLLED}
                except ValueError as exc:
                    self.failures["gbfs"] = self._stat("gbfs")["failures"] = self.failures.get("gbfs", 0) + 1
                    self.due["gbfs"] = time.monotonic() + max(self.opts.min_interval_s, 1.0)
                    import logging

                    logging.getLogger("noriba.rt").warning("%s: %s is not a GBFS auto-discovery file (%s)", self.spec.id,
                                                           self.spec.source.url, exc)
        for kind in POLLED:
            if kind in self.urls and self.due.get(kind, 0) <= time.monotonic():
                await self.fetch(client, kind, self.urls[kind])

    async def run(self, client, stop, *, once: bool = False) -> None:
        """Poll until ``stop`` is set (``once``: every file once); an object-storage home then gets the fetch logs too."""
        import asyncio

        from noriba.rt import _send

        while not stop.is_set():
            try:
                await self.step(client)
            except Exception as exc:  # noqa: BLE001 (e.g. a full disk: said, tried again; the other feeds go on)
                import logging

                logging.getLogger("noriba.rt").warning("%s: cannot archive: %s: %s", self.spec.id, type(exc).__name__, exc)
                self.due["gbfs"] = time.monotonic() + MAX_BACKOFF_S / 10
            if once:
                break
            wait = min(self.due.values(), default=time.monotonic() + 1) - time.monotonic()
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
            except asyncio.TimeoutError:
                pass
        await _send(self.ws, self, all_logs=True)  # stopped (or once): the current hour's log too

    def result(self) -> dict:
        """Return {feed_id/kind: {fetches, changed, failures}}."""
        return {f"{self.spec.id}/{k}": dict(v) for k, v in self.stats.items()}


#: In raw/<feed>/archive: each hour folder's modification time (ns) when it was last ingested.
INGESTED = ".ingested.json"


def pending_archive_hours(ws: Workspace, feed_id: str) -> dict[str, int]:
    """Return {'YYYY-MM-DD/HH': mark} of the archived hours changed since they were last ingested (a file added to an hour
    changes its folder's modification time, the mark)."""
    import re

    folder = archive_dir(ws, feed_id)
    if not folder.is_dir():
        return {}
    try:
        done = json.loads((folder / INGESTED).read_text())
        done = done if isinstance(done, dict) else {}
    except (OSError, ValueError):
        done = {}
    out = {}
    for d in sorted(folder.iterdir()):
        if not (d.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", d.name)):
            continue
        for h in sorted(d.iterdir()):
            if h.is_dir() and re.fullmatch(r"\d{2}", h.name):
                key, mark = f"{d.name}/{h.name}", h.stat().st_mtime_ns
                if done.get(key) != mark:
                    out[key] = mark
    return out


def ingest_archive(ws: Workspace, feed_id: str, *, spec: FeedSpec | None = None, progress: Progress | None = None,
                   export: bool = True, specs_dir: Path | None = None) -> dict:
    """Return the result of ingesting what the archiver kept for a feed (raw/<feed>/archive) in the hours changed since the
    last call: the hourly step. Files are not archived again (they are under raw/ already); one already ingested is skipped.
    If nothing new was archived, say so (status 'unchanged')."""
    from noriba.rt import write_durably

    safe_id(feed_id)
    folder = archive_dir(ws, feed_id)
    if ws.remote is not None:  # object-storage home: the archive as the archiver sent it (it may run on another machine)
        from warehouse import storage

        storage.pull(ws, folder)
    pending = pending_archive_hours(ws, feed_id)  # marks taken before listing: a file added meanwhile makes its hour pending again
    files = sorted(((f"{key}/{name}", p) for key in pending for name, p in snapshot_files(folder / key, feed_id=feed_id)),
                   key=lambda x: sort_key(x[0]))
    if not files:
        return {"feed_id": feed_id, "status": "unchanged", "message": f"{feed_id}: nothing new archived in {folder}"}
    ws.ensure()
    opts = gbfs_options(spec) if spec is not None else GbfsOptions()
    max_bytes = min(spec.source.max_bytes, DEFAULT_MAX_FILE_BYTES) if spec is not None else DEFAULT_MAX_FILE_BYTES
    _say(progress, f"{feed_id}: reading {len(files):,} archived GBFS file(s) of {len(pending)} hour(s) from {folder}")
    from warehouse.gbfs import Writer

    with feed_lock(ws, feed_id), Writer(ws) as writer:
        if len(files) <= MAX_BATCH_FILES:  # one batch, most likely: the writer is prepared while its files are read
            writer.start()
        batches = _stage_chunks(ws, feed_id, _chunks(files, max_bytes), source=str(folder), opts=opts, spec=spec,
                                timezone_name=None, progress=progress, specs_dir=specs_dir, archive=False, writer=writer)
        out = _publish_batches(ws, feed_id, batches, opts=opts, progress=progress, export=export, writer=writer)
        try:
            done = json.loads((folder / INGESTED).read_text())
            done = done if isinstance(done, dict) else {}
        except (OSError, ValueError):
            done = {}
        write_durably(folder / INGESTED, json.dumps({**done, **pending}, sort_keys=True).encode())
    out["hours"] = sorted(pending)
    return out
