"""Hostile HTTP servers on 127.0.0.1 for tests: each misbehaves in one named way.

Use::

    from tests.hostile.http_servers import serve

    with serve("trickle", interval=0.2) as url:
        ...  # fetch url; the server sends one byte every 0.2 s, for ever

``serve(behaviour, **options)`` starts a ThreadingHTTPServer on 127.0.0.1 (a free port) in a
thread, yields the URL of ``/feed.zip`` on it, and stops it on exit (handlers still sending notice
the stop and end). ``BEHAVIOURS`` lists the names; each function's docstring says what it does
and which options it takes. Bodies are generated, never stored.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zipfile
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator


def small_zip(files: dict[str, str] | None = None) -> bytes:
    """Return the bytes of a small zip of {name: text} (a one-file GTFS-like zip by default), the same on every call."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in (files or {"agency.txt": "agency_id,agency_name\nA,みなと交通\n"}).items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), text)  # fixed time: same bytes on every call
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.hits += 1
        BEHAVIOURS[self.server.behaviour](self, **self.server.options)

    def log_message(self, *args) -> None:  # quiet: tests read the client's messages, not the server's log
        pass

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:  # the behaviour broke the connection on purpose
            pass

    def stopped(self) -> bool:
        return self.server.stop.is_set()

    def head(self, status: int = 200, *, length: int | None = None, ctype: str = "application/zip", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: str, options: dict):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour, self.options, self.hits, self.stop = behaviour, options, 0, threading.Event()

    def handle_error(self, request, client_address) -> None:  # a client giving up is expected here
        pass


def ok(h: _Handler, *, body: bytes | None = None, ctype: str = "application/zip") -> None:
    """Answer 200 with ``body`` (a small zip by default) and its true Content-Length."""
    body = small_zip() if body is None else body
    h.head(length=len(body), ctype=ctype)
    h.wfile.write(body)


def status(h: _Handler, *, code: int = 500) -> None:
    """Answer every request with HTTP ``code`` and a short text body."""
    body = f"error {code}\n".encode()
    h.head(code, length=len(body), ctype="text/plain")
    h.wfile.write(body)


def fail_then_ok(h: _Handler, *, failures: int = 1, code: int = 503, body: bytes | None = None) -> None:
    """Answer the first ``failures`` requests with HTTP ``code``, then like ``ok``."""
    if h.server.hits <= failures:
        status(h, code=code)
    else:
        ok(h, body=body)


def etag(h: _Handler, *, tag: str = '"v1"', body: bytes | None = None) -> None:
    """Answer 304 to a request whose If-None-Match is ``tag`` (whatever the client has), else like ``ok`` with that ETag."""
    if h.headers.get("If-None-Match") == tag:
        h.head(304, extra={"ETag": tag})
        return
    body = small_zip() if body is None else body
    h.head(length=len(body), extra={"ETag": tag})
    h.wfile.write(body)


def redirect_loop(h: _Handler) -> None:
    """Redirect /a to /b and everything else to /a, for ever."""
    h.head(302, length=0, ctype="text/plain", extra={"Location": "/b" if h.path == "/a" else "/a"})


def redirect_to(h: _Handler, *, location: str = "http://169.254.169.254/latest/meta-data/") -> None:
    """Redirect every request to ``location`` (by default the cloud metadata address)."""
    h.head(302, length=0, ctype="text/plain", extra={"Location": location})


def trickle(h: _Handler, *, interval: float = 0.2, length: int = 1 << 20) -> None:
    """Announce ``length`` bytes, then send one byte every ``interval`` seconds until stopped or the client leaves."""
    h.head(length=length)
    for _ in range(length):
        if h.stopped():
            return
        h.wfile.write(b"P")
        h.wfile.flush()
        time.sleep(interval)


def trickle_headers(h: _Handler, *, interval: float = 0.2) -> None:
    """Send the status line, then one header byte every ``interval`` seconds, never finishing the headers."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    h.wfile.flush()
    while not h.stopped():
        h.wfile.write(b"a")
        h.wfile.flush()
        time.sleep(interval)


def huge(h: _Handler, *, size: int = 64 << 20, announce: bool = True, chunk: int = 1 << 16) -> None:
    """Send ``size`` generated bytes (CSV-like text), with a true Content-Length if ``announce``, else none (until close)."""
    h.head(length=size if announce else None, ctype="text/csv")
    block = (b"trip_id,stop_id\n" * (chunk // 16 + 1))[:chunk]
    sent = 0
    while sent < size and not h.stopped():
        n = min(chunk, size - sent)
        h.wfile.write(block[:n])
        sent += n


def lying_length(h: _Handler, *, announced: int = 10_000, body: bytes | None = None) -> None:
    """Announce ``announced`` bytes in Content-Length but send ``body`` (a small zip) whatever its size, then close."""
    body = small_zip() if body is None else body
    h.head(length=announced)
    h.wfile.write(body)
    h.wfile.flush()
    h.close_connection = True


def reset(h: _Handler, *, after: int = 4096, length: int = 1 << 20) -> None:
    """Announce ``length`` bytes, send ``after`` of them, then reset the connection (TCP RST)."""
    h.head(length=length)
    h.wfile.write(b"PK\x03\x04" + bytes(after - 4))
    h.wfile.flush()
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()


def html(h: _Handler, *, code: int = 200, ctype: str = "text/html; charset=utf-8") -> None:
    """Answer with an HTML error page (status ``code``, default 200) where a zip was expected."""
    body = "<!DOCTYPE html>\n<html><head><title>メンテナンス中</title></head><body>Service unavailable</body></html>\n".encode()
    h.head(code, length=len(body), ctype=ctype)
    h.wfile.write(body)


#: Behaviour name -> handler (each takes the request handler and the options given to ``serve``).
BEHAVIOURS: dict[str, Callable[..., None]] = {
    "ok": ok, "etag": etag, "status": status, "fail_then_ok": fail_then_ok, "redirect_loop": redirect_loop,
    "redirect_to": redirect_to,
    "trickle": trickle, "trickle_headers": trickle_headers, "huge": huge, "lying_length": lying_length,
    "reset": reset, "html": html,
}


@contextmanager
def serve(behaviour: str, **options) -> Iterator[str]:
    """Yield the URL of a server on 127.0.0.1 that behaves as ``BEHAVIOURS[behaviour]`` with ``options``; stop it on exit."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r}; known: {', '.join(BEHAVIOURS)}")
    server = _Server(behaviour, options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed.zip"
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
