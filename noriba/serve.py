"""``noriba serve``: serve the catalog (``exports/``) on localhost with Python's http.server.

``/`` redirects to the catalog page; ``/files?pref=<code or name>&target_date=<YYYY-MM-DD>``
answers like the Japanese GTFS data repository's files API, from ``site/files.json``.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from noriba.workspace import Workspace


class CatalogHandler(SimpleHTTPRequestHandler):
    """Static files under exports/, plus ``/`` → the catalog and the ``/files`` listing."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        if parts.path in ("/", ""):
            self.send_response(302)
            self.send_header("Location", "/site/index.html")
            self.end_headers()
            return
        if parts.path.rstrip("/") in ("/files", "/v2/files"):
            self._files(parse_qs(parts.query))
            return
        super().do_GET()

    def _files(self, query: dict) -> None:
        from warehouse.catalog import filter_files

        listing = Path(self.directory) / "site" / "files.json"
        rows = json.loads(listing.read_text(encoding="utf-8"))["body"] if listing.exists() else []
        date = (query.get("target_date") or [None])[0]
        if date and (len(date) != 10 or date[4] != "-" or date[7] != "-"):
            return self._json(400, {"code": 400, "message": "target_date must be YYYY-MM-DD", "body": []})
        body = filter_files(rows, pref=(query.get("pref") or [None])[0], target_date=date)
        self._json(200, {"code": 200, "message": "ok", "body": body})

    def _json(self, status: int, doc: dict) -> None:
        data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def guess_type(self, path):
        p = str(path)
        if p.endswith((".html", ".json", ".csv", ".md", ".txt")):
            base = super().guess_type(path)
            return f"{base}; charset=utf-8" if "charset" not in base else base
        return super().guess_type(path)

    def log_message(self, fmt, *args):  # quiet unless asked
        if getattr(self.server, "verbose", False):
            super().log_message(fmt, *args)


def make_server(ws: Workspace, *, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False) -> ThreadingHTTPServer:
    """Return a server for ``ws.exports`` (port 0 picks a free port), not yet serving."""
    handler = partial(CatalogHandler, directory=str(ws.exports))
    server = ThreadingHTTPServer((host, port), handler)
    server.verbose = verbose
    return server


def serve_in_thread(ws: Workspace, *, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Return a server running in a daemon thread and its base URL (for tests and the demo)."""
    server = make_server(ws, port=port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
