"""A Hugging Face Hub stand-in on 127.0.0.1 for the tests: the real ``huggingface_hub`` client talks to it.

It answers what the client asks for (read in ``huggingface_hub/file_download.py`` and ``hf_api.py`` 2.4):

- ``HEAD``/``GET /{org}/{name}/resolve/{revision}/{file}``: ``ETag``, ``X-Repo-Commit`` and
  ``Content-Length`` (``get_hf_file_metadata`` refuses an answer without the first two), ``Range``
  reads (a safetensors header); a missing repository is 401 ``X-Error-Code: RepoNotFound`` (as the
  Hub answers without a token), a gated one 401 ``GatedRepo``, a missing file 404 ``EntryNotFound``
  (with ``X-Repo-Commit``: the client caches the absence), an unknown revision 404 ``RevisionNotFound``;
- ``GET /api/models/{org}/{name}/tree/{revision}``: the file listing (``list_repo_tree``).

``mode`` "error" answers 500 to everything, "hang" accepts and never answers (until :meth:`close`,
at most :data:`HANG_S` seconds). Every request is counted in ``requests``. Loopback only.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_S = 30.0


class HubStub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.gated: set[str] = set()
        self.refusal = 401
        """The status of a missing or gated repository: 401 without a token (the Hub's answer), 403/404 with one."""
        self.mode = "ok"
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                stub._answer(self, body=False)

            def do_GET(self) -> None:
                stub._answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, repo: str, files: dict[str, bytes]) -> str:
        """Publish ``files`` as ``repo``; returns its commit (40 hex digits)."""
        self.repos[repo] = files
        self.commits[repo] = hashlib.sha1(repo.encode()).hexdigest()
        return self.commits[repo]

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ answers
    def _send(self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes,
              send_body: bool) -> None:
        h.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            h.send_header(k, v)
        h.end_headers()
        if send_body:
            h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, send_body: bool,
               commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": code, "Content-Type": "application/json"}
        if commit is not None:
            headers["X-Repo-Commit"] = commit
        self._send(h, status, headers, json.dumps({"error": code}).encode(), send_body)

    def _answer(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        with self._lock:
            self.requests.append((h.command, h.path))
        if self.mode == "hang":
            self._release.wait(HANG_S)
            return
        if self.mode == "error":
            self._send(h, 500, {}, b"Internal Server Error", body)
            return
        path = h.path.split("?")[0]
        tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        match = tree or resolve
        if match is None:
            self._error(h, 404, "NotFound", body)
            return
        repo, revision = match.group(1), match.group(2)
        if repo not in self.repos:
            self._error(h, self.refusal, "RepoNotFound", body)
            return
        if repo in self.gated:
            self._error(h, self.refusal, "GatedRepo", body)
            return
        commit = self.commits[repo]
        if revision not in ("main", commit):
            self._error(h, 404, "RevisionNotFound", body)
            return
        files = self.repos[repo]
        if tree is not None:
            listing = [{"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                       for n, b in files.items()]
            self._send(h, 200, {"Content-Type": "application/json"}, json.dumps(listing).encode(), body)
            return
        assert resolve is not None
        name = resolve.group(3)
        if name not in files:
            self._error(h, 404, "EntryNotFound", body, commit)
            return
        data = files[name]
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": commit}
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range", "") or "")
        if ranged and body:
            start, end = int(ranged.group(1)), min(int(ranged.group(2) or len(data) - 1), len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            self._send(h, 206, headers, data[start:end + 1], body)
            return
        self._send(h, 200, headers, data, body)
