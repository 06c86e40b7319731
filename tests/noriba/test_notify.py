"""Notifications (noriba/notify.py): blocked versions, feeds about to expire and repeated failures reach the spec's hooks.

The hooks are real servers on 127.0.0.1: an HTTP catcher for webhooks and a tiny SMTP catcher for e-mail.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from datetime import date, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.conftest import MINI_FEED, make_spec, write_feed

BLOCKED_FEED = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace(",S2,2", ",S9,2")}  # a foreign key violation


def feed_ending(days: int) -> dict[str, str]:
    """Return the mini feed with its service ending ``days`` after today."""
    end = (date.today() + timedelta(days=days)).strftime("%Y%m%d")
    return {**MINI_FEED, "calendar.txt": MINI_FEED["calendar.txt"].replace("20270331", end)}


@pytest.fixture
def webhook():
    """Yield (url, the JSON bodies received) of an HTTP server on 127.0.0.1, stopped after the test."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hooks/T0-secret-token", got
    srv.shutdown()
    srv.server_close()
    t.join(5)


@pytest.fixture
def smtp():
    """Yield (port, the messages received) of a minimal SMTP server on 127.0.0.1, stopped after the test."""
    got: list = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(b"220 catcher\r\n")
            while line := self.rfile.readline():
                cmd = line.strip().upper()
                if cmd.startswith((b"EHLO", b"HELO")):
                    self.wfile.write(b"250 catcher\r\n")
                elif cmd == b"DATA":
                    self.wfile.write(b"354 go on\r\n")
                    data = b""
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data += chunk
                    got.append(message_from_bytes(data))
                    self.wfile.write(b"250 ok\r\n")
                elif cmd == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:  # MAIL FROM, RCPT TO, RSET, NOOP
                    self.wfile.write(b"250 ok\r\n")

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1], got
    srv.shutdown()
    srv.server_close()
    t.join(5)


def email_hook(port: int) -> dict:
    return {"email": {"to": ["ops@example.jp"], "from": "noriba@example.jp", "smtp_host": "127.0.0.1", "smtp_port": port}}


def test_blocked_version_is_posted_once_to_the_webhook_the_spec_names(tmp_path, ws, webhook, monkeypatch):
    from noriba.pipeline import run_feed

    url, got = webhook
    monkeypatch.setenv("NORIBA_TEST_HOOK", url)
    spec = make_spec("my-bus", write_feed(tmp_path / "in", BLOCKED_FEED), notify={"webhook": {"url_env": "NORIBA_TEST_HOOK"}})
    out = run_feed(spec, ws)
    assert out["policy_status"] == "blocked"
    assert [(g["event"], g["feed_id"]) for g in got] == [("blocked", "my-bus")]
    assert out["feed_version"] in got[0]["text"] and "foreign_key_violation" in got[0]["text"]
    run_feed(spec, ws)  # the same version again: already told
    assert len(got) == 1


def test_feed_whose_service_ends_within_expiry_days_is_emailed_once(tmp_path, ws, smtp):
    from noriba.pipeline import run_feed

    port, got = smtp
    far = make_spec("far-bus", write_feed(tmp_path / "far", feed_ending(100)), notify=email_hook(port))
    run_feed(far, ws)
    assert got == []  # 100 days left, more than the default 30
    near = make_spec("near-bus", write_feed(tmp_path / "near", feed_ending(10)), notify=email_hook(port))
    run_feed(near, ws)
    run_feed(near, ws)
    assert [m["Subject"] for m in got] == ["[noriba] near-bus: expiring"]
    assert got[0]["To"] == "ops@example.jp"
    assert "10 days left" in got[0].get_payload()


def test_source_failing_n_times_in_a_row_is_told_once_and_a_success_restarts_the_count(tmp_path, ws, smtp):
    from noriba.pipeline import run_feed

    port, got = smtp
    src = tmp_path / "in"
    spec = make_spec("my-bus", src, notify={**email_hook(port), "failures": 2})
    for n in range(3):
        with pytest.raises(Exception):
            run_feed(spec, ws)
        assert len(got) == (0 if n == 0 else 1), n  # told at the 2nd failure in a row, not again at the 3rd
    assert got[0]["Subject"] == "[noriba] my-bus: failing" and "failed 2 times in a row" in got[0].get_payload()
    write_feed(src, MINI_FEED)
    run_feed(spec, ws)
    assert json.loads((ws.home / "notify_state.json").read_text())["my-bus"]["failures"] == 0


def test_unreachable_hook_or_missing_variable_never_fails_the_run_and_no_secret_is_logged(tmp_path, ws, caplog, monkeypatch):
    import socket

    from noriba.pipeline import run_feed

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("NORIBA_TEST_HOOK", f"http://127.0.0.1:{dead}/hooks/T0-secret-token")
    monkeypatch.delenv("NORIBA_NO_SUCH_VAR", raising=False)
    spec = make_spec("my-bus", write_feed(tmp_path / "in", BLOCKED_FEED),
                     notify={"webhook": {"url_env": "NORIBA_TEST_HOOK"},
                             "email": {"to": ["ops@example.jp"], "smtp_host": "127.0.0.1", "smtp_port": dead,
                                       "username_env": "NORIBA_NO_SUCH_VAR"}})
    with caplog.at_level(logging.INFO, logger="noriba.notify"):
        out = run_feed(spec, ws)
    assert out["policy_status"] == "blocked"  # the run finished
    assert "notify.webhook failed" in caplog.text and "notify.email failed" in caplog.text
    assert "secret-token" not in caplog.text


def test_notify_section_mistakes_are_named_and_a_secret_in_the_spec_is_refused(tmp_path):
    from noriba.specs import SpecError

    with pytest.raises(SpecError) as exc:
        make_spec("my-bus", tmp_path, notify={"webhook": {"url": "https://hooks.slack.com/services/T0/B0/x"},
                                              "on": ["blocked", "sometimes"], "failures": 0,
                                              "email": {"to": "ops@example.jp", "password_env": "hunter 2"}})
    text = "\n".join(exc.value.problems)
    assert "notify.webhook.url: unknown key; did you mean 'url_env'?" in text
    assert "notify.on[1]: 'sometimes' is not an event" in text
    assert "notify.failures: found a number 0; expected a whole number from 1 to 100" in text
    assert "notify.email.to: found text" in text
    assert "notify.email.password_env: 'hunter 2' is not an environment variable name" in text
    assert "hooks.slack.com" not in text


def test_airflow_tasks_count_failures_and_tell_a_blocked_version_to_the_hooks(tmp_path, webhook, monkeypatch):
    import shutil

    from noriba import tasks
    from tests.conftest import ROOT

    url, got = webhook
    monkeypatch.setenv("NORIBA_TEST_HOOK", url)
    src = tmp_path / "in"
    shutil.copytree(ROOT / "specs" / "schemas", tmp_path / "specs" / "schemas")
    (tmp_path / "specs" / "feeds").mkdir(parents=True)
    (tmp_path / "specs" / "feeds" / "my-bus.yml").write_text(
        f"id: my-bus\nkind: gtfs\nsource: {{path: {src}}}\nnotify: {{failures: 2, webhook: {{url_env: NORIBA_TEST_HOOK}}}}\n",
        encoding="utf-8")
    monkeypatch.setenv("NORIBA_SPECS", str(tmp_path / "specs"))
    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    for _ in range(2):  # the source is missing: the fetch task fails twice in a row
        with pytest.raises(Exception):
            tasks.fetch("my-bus")
    assert [g["event"] for g in got] == ["failing"]
    write_feed(src, BLOCKED_FEED)
    staged = tasks.parse_validate("my-bus", tasks.fetch("my-bus"))
    assert [g["event"] for g in got] == ["failing", "blocked"] and staged["feed_version"] in got[1]["text"]


def test_a_japanese_feeds_notifications_say_what_to_do_in_japanese_first(tmp_path, ws, smtp):
    """A municipal officer reads these: for a Japanese feed (GTFS-JP, Asia/Tokyo or a prefecture) the message is in
    Japanese, with the English after it, and the subject names the event in both."""
    from noriba.pipeline import run_feed

    port, got = smtp
    near = make_spec("kita-bus", write_feed(tmp_path / "near", feed_ending(10)), notify=email_hook(port), timezone="Asia/Tokyo",
                     name="北浜町コミュニティバス")
    run_feed(near, ws)
    blocked = make_spec("minami-bus", write_feed(tmp_path / "blocked", BLOCKED_FEED), notify=email_hook(port),
                        timezone="Asia/Tokyo", municipality={"code": "99001", "name": "みなと市", "prefecture": "東京都"})
    run_feed(blocked, ws)
    failing = make_spec("nishi-bus", tmp_path / "nowhere", notify={**email_hook(port), "failures": 1}, timezone="Asia/Tokyo")
    with pytest.raises(Exception):
        run_feed(failing, ws)
    from email.header import decode_header, make_header

    subjects = [str(make_header(decode_header(m["Subject"]))) for m in got]
    assert subjects == ["[noriba] kita-bus: 運行期間の終了 / expiring", "[noriba] minami-bus: 公開停止 / blocked",
                        "[noriba] nishi-bus: 取得・処理の失敗 / failing"]
    texts = [m.get_payload(decode=True).decode("utf-8") for m in got]
    ja, en = texts[0].splitlines()[:2]
    assert ja.startswith("北浜町コミュニティバス（kita-bus）: バージョン ") and "（残り10日）" in ja and "提出してください" in ja
    assert en.startswith("kita-bus: version ") and "10 days left" in en
    assert "公開を止めました" in texts[1] and "foreign_key_violation" in texts[1] and "修正したデータを提出してください" in texts[1]
    assert texts[2].startswith("nishi-bus: データの取得・処理が1回続けて失敗しました") and "failed 1 times in a row" in texts[2]
    # the reason too is said in Japanese on the Japanese line (the missing source folder, and what to fix), English after
    ja, en = texts[2].splitlines()[:2]
    assert f"最後のエラー: {tmp_path / 'nowhere'}: ファイルまたはフォルダがありません" in ja and "source.path を直してください" in ja
    assert "no such file or folder" in en and "ありません" not in en
