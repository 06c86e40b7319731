"""Notifications: outcomes that matter to people, sent to the hooks of a feed spec's ``notify:`` section.

Three events: ``blocked`` (a version its severity policy blocked), ``expiring`` (the last service
day is within ``expiry_days``, default 30) and ``failing`` (the feed failed ``failures`` runs in a
row, default 3). Each is sent once: blocked and expiring once per version, failing once per streak.
Hooks: ``webhook: {url_env: NAME}`` (a JSON POST, e.g. a Slack incoming webhook) and
``email: {to, from, smtp_host, smtp_port, starttls, username_env, password_env}``. Secrets come only
from the environment variables the spec names; they are never logged. A notification that cannot be
sent is logged and never fails the run. State (failure counts, what was sent) is kept per feed in
``NORIBA_HOME/notify_state.json``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import smtplib
import uuid
from contextlib import contextmanager
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

from warehouse.workspace import Workspace

log = logging.getLogger(__name__)

EVENTS = ("blocked", "expiring", "failing")
STATE_FILE = "notify_state.json"
DEFAULT_EXPIRY_DAYS = 30
DEFAULT_FAILURES = 3
TIMEOUT_S = 10.0


@contextmanager
def _state(ws: Workspace):
    """Yield the notification state (a dict per feed id), locked, and write it back atomically."""
    ws.home.mkdir(parents=True, exist_ok=True)
    path = ws.home / STATE_FILE
    with open(ws.home / f".{STATE_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, ValueError):
            log.warning("%s cannot be read; failure counts start again from 0", path)
            state = {}
        state = state if isinstance(state, dict) else {}
        yield state
        tmp = path.with_name(f".{STATE_FILE}.tmp-{uuid.uuid4().hex[:6]}")
        tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


def _wanted(cfg: dict, event: str) -> bool:
    return event in (cfg.get("on") or EVENTS)


#: The events' names in Japanese, for the subject of a Japanese feed's e-mail.
EVENTS_JA = {"blocked": "公開停止", "expiring": "運行期間の終了", "failing": "取得・処理の失敗"}


def japanese(spec) -> bool:
    """Return whether a feed's notifications speak Japanese first: GTFS-JP, the Asia/Tokyo time zone or a prefecture named."""
    return spec.profile == "gtfs-jp" or spec.timezone == "Asia/Tokyo" or bool((spec.municipality or {}).get("prefecture"))


def _say(spec, ja: str, en: str) -> str:
    """Return the message of a notification: for a Japanese feed, the Japanese text, then the English one."""
    return f"{ja}\n{en}" if japanese(spec) else en


def _name(spec) -> str:
    return f"{spec.name}（{spec.id}）" if spec.name and spec.name != spec.id else spec.id


def failure(spec, ws: Workspace, error: BaseException) -> list[str]:
    """Count a failed run of ``spec``; return the events sent. When the count reaches ``failures``, send ``failing``."""
    cfg = spec.notify or {}
    if not cfg:
        return []
    try:
        n = int(cfg.get("failures", DEFAULT_FAILURES))
        with _state(ws) as state:
            feed = state.setdefault(spec.id, {})
            feed["failures"] = feed.get("failures", 0) + 1
            count = feed["failures"]
        if count != n or not _wanted(cfg, "failing"):
            return []
        why = (str(error).strip().splitlines() or [type(error).__name__])[0][:500]
        why_ja = ((getattr(error, "ja", None) or "").strip().splitlines() or [why])[0][:500]
        send(cfg, spec.id, "failing", _say(
            spec, f"{_name(spec)}: データの取得・処理が{count}回続けて失敗しました。提供元のURL・ファイルと最後のエラーを確認してください。"
                  f"最後のエラー: {why_ja}",
            f"{spec.id}: failed {count} times in a row; last error: {why}"), japanese=japanese(spec))
        return ["failing"]
    except Exception as exc:  # noqa: BLE001 - a notification never fails the run
        log.warning("%s: notification not sent: %s", spec.id, exc)
        return []


def outcome(spec, ws: Workspace, staged: dict, *, today: date | None = None) -> list[str]:
    """Record a successful run of ``spec`` (the failure count restarts) and send what its version calls for; return the events sent.

    ``staged`` is what the stage step returned (feed_version, policy_status, blocked_by, staging_dir).
    """
    cfg = spec.notify or {}
    if not cfg:
        return []
    try:
        ver = staged["feed_version"]
        due: list[tuple[str, str, str]] = []  # (event, key sent once, message)
        if staged.get("policy_status") == "blocked" and _wanted(cfg, "blocked"):
            by = ", ".join(f"{k}: {v}" for k, v in (staged.get("blocked_by") or {}).items())
            due.append(("blocked", f"blocked:{ver}", _say(
                spec, f"{_name(spec)}: 新しいバージョン {ver} は品質基準（重大度ポリシー）を満たさないため公開を止めました（{by}）。"
                      "出力・カタログは前のバージョンのままです。検証レポートで問題の箇所を確認し、修正したデータを提出してください。",
                f"{spec.id}: version {ver} is blocked by its severity policy ({by}); it is not exported; see its report")))
        end = _service_end(ws, staged)
        days = int(cfg.get("expiry_days", DEFAULT_EXPIRY_DAYS))
        today = today or date.today()
        if end and _wanted(cfg, "expiring") and end <= today + timedelta(days=days):
            left = (end - today).days
            when = f"expired on {end}" if left < 0 else f"expires on {end} ({left} days left)"
            when_ja = f"{end}に終了しました" if left < 0 else f"{end}に終了します（残り{left}日）"
            due.append(("expiring", f"expiring:{ver}:{end}", _say(
                spec, f"{_name(spec)}: バージョン {ver} の運行期間（calendar）は{when_ja}。"
                      "経路検索などで表示されなくなる前に、次の期間のデータを提出してください。",
                f"{spec.id}: version {ver} {when}; publish a newer feed")))
        with _state(ws) as state:
            feed = state.setdefault(spec.id, {})
            feed["failures"] = 0
            sent = set(feed.get("sent", []))
            due = [d for d in due if d[1] not in sent]
            feed["sent"] = sorted(sent | {d[1] for d in due})[-100:]
        for event, _, msg in due:
            send(cfg, spec.id, event, msg, japanese=japanese(spec))
        return [d[0] for d in due]
    except Exception as exc:  # noqa: BLE001 - a notification never fails the run
        log.warning("%s: notification not sent: %s", spec.id, exc)
        return []


def _service_end(ws: Workspace, staged: dict) -> date | None:
    """Return the last service day of the staged version (from its staging folder or the lake), or None."""
    import pyarrow.parquet as pq

    if staged.get("staging_dir"):
        part = Path(staged["staging_dir"]) / "meta_feed_versions.parquet"
    else:
        part = ws.lake_partition("meta_feed_versions", staged["feed_id"], staged["feed_version"]) / "part-0.parquet"
    if not part.exists():
        return None
    end = pq.read_table(part, columns=["service_end"]).column("service_end").to_pylist()[0]
    return date.fromisoformat(str(end)[:10]) if end else None


def send(cfg: dict, feed_id: str, event: str, message: str, *, japanese: bool = False) -> None:
    """Send ``message`` to every hook of ``cfg`` (``japanese``: the e-mail's subject names the event in Japanese too).
    A hook that fails is logged (without its secrets); the others still run."""
    log.info("%s", message)
    hooks = {"webhook": lambda c: _webhook(c, feed_id, event, message),
             "email": lambda c: _email(c, feed_id, event, message, japanese=japanese)}
    for name, hook in hooks.items():
        if cfg.get(name):
            try:
                hook(cfg[name])
            except Exception as exc:  # noqa: BLE001
                why = str(exc) if isinstance(exc, LookupError) else type(exc).__name__  # other errors may quote the URL
                log.warning("%s: notify.%s failed (%s); the run goes on", feed_id, name, why)


def _env(cfg: dict, key: str, where: str) -> str | None:
    name = cfg.get(key)
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise LookupError(f"{where}.{key}: the environment variable {name} is not set")
    return value


def _webhook(cfg: dict, feed_id: str, event: str, message: str) -> None:
    import httpx

    url = _env(cfg, "url_env", "notify.webhook")
    if not url:
        raise LookupError("notify.webhook.url_env: not given")
    r = httpx.post(url, json={"text": message, "feed_id": feed_id, "event": event}, timeout=TIMEOUT_S)
    r.raise_for_status()


def _email(cfg: dict, feed_id: str, event: str, message: str, *, japanese: bool = False) -> None:
    msg = EmailMessage()
    msg["Subject"] = f"[noriba] {feed_id}: {EVENTS_JA[event]} / {event}" if japanese else f"[noriba] {feed_id}: {event}"
    msg["From"] = cfg.get("from") or "noriba@localhost"
    msg["To"] = ", ".join(cfg["to"])
    msg.set_content(message)
    with smtplib.SMTP(cfg.get("smtp_host", "localhost"), int(cfg.get("smtp_port", 25)), timeout=TIMEOUT_S) as smtp:
        if cfg.get("starttls"):
            smtp.starttls()
        user = _env(cfg, "username_env", "notify.email")
        if user:
            smtp.login(user, _env(cfg, "password_env", "notify.email") or "")
        smtp.send_message(msg)
