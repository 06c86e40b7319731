"""``noriba serve``: serve the catalog (``exports/``) on localhost with Python's http.server.

- ``/`` redirects to the catalog page ``/site/index.html``;
- ``/catalog.json`` and ``/files.json`` are the site's machine-readable listings;
- ``/files?pref=<01–47 or name>&target_date=<YYYY-MM-DD>`` answers like the Japanese GTFS data
  repository's files API (a bad code or date is a 400 with a JSON message saying what is expected);
- every other path is a file under ``exports/``: folders are never listed (404), hidden files are
  not served, and a feed left out of the catalog (no licence, not published) is not downloadable.
  ``gtfs/<feed>/latest.zip`` and ``<export>/latest.zip`` are the stable URLs of the current files;
- ``/rt/<export>/trip-updates.pb``, ``vehicle-positions.pb``, ``alerts.pb`` (and ``.json``) are a merged export's
  GTFS-Realtime feed in the export's ids, from its realtime inputs' latest archived snapshots
  (warehouse/rt_merge.py); ``/rt/<export>/status.json`` says what each part holds and what was dropped. An export
  that was not built or has no realtime input is a 404 with a one-line message.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from warehouse.workspace import Workspace

#: Listings served at the root, from the site folder.
ROOT_FILES = {"/catalog.json": "site/catalog.json", "/files.json": "site/files.json"}
#: Folders of exports/ holding one subfolder per feed: only the feeds in the catalog are served.
PER_FEED = ("gtfs", "parquet")


def endpoints(base: str) -> str:
    """Return the one-line list of what the server answers, for its startup line."""
    return (f"catalog {base}/site/index.html · {base}/catalog.json · {base}/files.json · "
            f"{base}/files?pref=01&target_date=YYYY-MM-DD · latest files {base}/gtfs/<feed>/latest.zip, {base}/<export>/latest.zip"
            f" · merged realtime {base}/rt/<export>/trip-updates.pb (vehicle-positions, alerts; .pb or .json; status.json)")


class CatalogHandler(SimpleHTTPRequestHandler):
    """Static files under exports/, plus ``/`` → the catalog, the root listings and the ``/files`` API."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self._route():
            super().do_GET()

    def do_HEAD(self):  # noqa: N802
        if self._route():
            super().do_HEAD()

    def _route(self) -> bool:
        """Answer the request here and return False, or return True to let the static file handler answer."""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path in ("/", ""):
            self.send_response(302)
            self.send_header("Location", "/site/index.html")
            self.end_headers()
            return False
        if path.rstrip("/") in ("/files", "/v2/files"):
            self._files(parse_qs(parts.query))
            return False
        if path.startswith("/rt/"):
            self._realtime(path[len("/rt/"):])
            return False
        if path in ROOT_FILES:
            self.path = "/" + ROOT_FILES[path]
            return True
        if not self._allowed(path):
            self.send_error(404, "Not found")
            return False
        return True

    def _allowed(self, path: str) -> bool:
        """Return whether a static path may be served: no hidden file, and per-feed files only of catalogued feeds."""
        segs = [s for s in path.split("/") if s]
        if any(s.startswith(".") for s in segs):
            return False
        if len(segs) >= 2 and segs[0] in PER_FEED:
            return segs[1] in self._public_feeds()
        return True

    def _public_feeds(self) -> set[str]:
        cat = Path(self.directory) / "site" / "catalog.json"
        try:
            sources = json.loads(cat.read_text(encoding="utf-8"))["sources"]
        except (OSError, ValueError, KeyError):
            return set()
        return {s["noriba"]["id"] for s in sources if s.get("noriba", {}).get("kind") == "feed"}

    def list_directory(self, path):
        """Never list a folder: answer 404 (a folder with an index.html still serves that page)."""
        self.send_error(404, "Not found")
        return None

    def _files(self, query: dict) -> None:
        from warehouse.catalog import filter_files

        listing = Path(self.directory) / "site" / "files.json"
        rows = json.loads(listing.read_text(encoding="utf-8"))["body"] if listing.exists() else []
        try:
            body = filter_files(rows, pref=(query.get("pref") or [None])[0], target_date=(query.get("target_date") or [None])[0])
        except ValueError as exc:  # a bad prefecture code or date: say what is expected
            return self._json(400, {"code": 400, "message": str(exc), "body": []})
        self._json(200, {"code": 200, "message": "ok", "body": body})

    def _realtime(self, rest: str) -> None:
        """Answer ``/rt/<export>/<part>.pb|.json`` or ``/rt/<export>/status.json``; a 404 or 500 is one line of text."""
        from warehouse import rt_merge

        export_id, _, name = rest.partition("/")
        stem, dot, ext = name.rpartition(".")
        try:
            if name == "status.json":
                doc = rt_merge.status(self.server.ws, export_id)
                return self._json(200, doc)
            if not dot or ext not in ("pb", "json") or stem not in rt_merge.KINDS or not export_id:
                return self._text(404, f"no such realtime file: /rt/{rest}; use /rt/<export>/trip-updates.pb, "
                                       "vehicle-positions.pb, alerts.pb (or .json), or status.json")
            built = rt_merge.build(self.server.ws, export_id, stem)
        except rt_merge.NotServed as exc:
            return self._text(404, str(exc))
        except Exception as exc:  # noqa: BLE001 (one line, never a traceback)
            return self._text(500, f"/rt/{rest}: could not build the merged realtime feed: {type(exc).__name__}: {exc}")
        etag = f'"{built.etag}-{ext}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return None
        data = built.data if ext == "pb" else built.json()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf" if ext == "pb" else "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return None

    def _text(self, status: int, line: str) -> None:
        data = (" ".join(line.split()) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, status: int, doc: dict) -> None:
        data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
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
    server.ws = ws  # the realtime feeds are read from raw/
    return server


def serve_in_thread(ws: Workspace, *, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Return a server running in a daemon thread and its base URL (for tests and the demo)."""
    server = make_server(ws, port=port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
