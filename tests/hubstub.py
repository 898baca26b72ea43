"""A Hugging Face Hub stand-in on 127.0.0.1 for the tests: the real ``huggingface_hub`` client talks to it.

It answers what the client asks for (read in ``huggingface_hub/file_download.py`` and ``hf_api.py`` 2.4):

- ``HEAD``/``GET /{org}/{name}/resolve/{revision}/{file}``: ``ETag``, ``X-Repo-Commit`` and
  ``Content-Length`` (``get_hf_file_metadata`` refuses an answer without the first two), ``Range``
  reads (a safetensors header); a missing repository is 401 ``X-Error-Code: RepoNotFound`` (as the
  Hub answers without a token), a gated one 401 ``GatedRepo``, a missing file 404 ``EntryNotFound``
  (with ``X-Repo-Commit``: the client caches the absence), an unknown revision 404 ``RevisionNotFound``;
- ``GET /api/models/{org}/{name}/tree/{revision}``: the file listing (``list_repo_tree``).

``mode`` "error" answers 500 to everything, "hang" accepts and never answers (until :meth:`close`,
at most :data:`HANG_S` seconds). ``behaviour[repo]`` gives one repository a hostile way of answering
(:data:`BEHAVIOURS`: slowly, 500, a body cut short, a lying Content-Length, a redirect loop, a body
dripped a byte at a time, any revision accepted), for the subprocess fuzz. Every request is counted in
``requests``. Loopback only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_S = 30.0
SLOW_S = 8.0
"""How long a "slow" repository waits before it answers (past the fuzz's 3 s ATTNCLI_HUB_TIMEOUT)."""
DRIP_S = 0.2
"""Seconds between two bytes of a "drip" repository's body."""
BEHAVIOURS = ("ok", "slow", "hang", "error", "truncated", "short_length", "long_length", "redirect_loop",
              "redirect_away", "drip", "any_revision")
"""How a repository may answer: "truncated" sends half the body under the full Content-Length and
closes; "short_length"/"long_length" announce half/twice the length; "redirect_loop" sends every request
back to itself, "redirect_away" to a closed port; "any_revision" answers any revision (``../x`` too)."""


class HubStub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.gated: set[str] = set()
        self.behaviour: dict[str, str] = {}
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
                with contextlib.suppress(OSError):  # NOTE: a client that gave up and closed
                    stub._answer(self, body=False)

            def do_GET(self) -> None:
                with contextlib.suppress(OSError):
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
              send_body: bool, how: str = "ok") -> None:
        length = {"short_length": len(body) // 2, "long_length": len(body) * 2}.get(how, len(body))
        h.send_response(status)
        for k, v in {**headers, "Content-Length": str(length)}.items():
            h.send_header(k, v)
        h.end_headers()
        if not send_body:
            return
        if how == "truncated":
            h.wfile.write(body[:len(body) // 2])
            h.close_connection = True
        elif how == "drip":
            for i in range(len(body)):
                if self._release.wait(DRIP_S):
                    return
                h.wfile.write(body[i:i + 1])
                h.wfile.flush()
        else:
            h.wfile.write(body)
        if how in ("long_length", "short_length"):
            h.close_connection = True

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
        how = self.behaviour.get(repo, "ok")
        if how in ("slow", "hang") and self._release.wait(SLOW_S if how == "slow" else HANG_S):
            return
        if how == "error":
            self._send(h, 500, {}, b"Internal Server Error", body)
            return
        if how.startswith("redirect"):
            target = h.path if how == "redirect_loop" else "http://127.0.0.1:9" + h.path
            self._send(h, 302, {"Location": target}, b"", body)
            return
        if repo not in self.repos:
            self._error(h, self.refusal, "RepoNotFound", body)
            return
        if repo in self.gated:
            self._error(h, self.refusal, "GatedRepo", body)
            return
        commit = self.commits[repo]
        if revision not in ("main", commit) and how != "any_revision":
            self._error(h, 404, "RevisionNotFound", body)
            return
        files = self.repos[repo]
        if tree is not None:
            listing = [{"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                       for n, b in files.items()]
            self._send(h, 200, {"Content-Type": "application/json"}, json.dumps(listing).encode(), body, how)
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
            self._send(h, 206, headers, data[start:end + 1], body, how)
            return
        self._send(h, 200, headers, data, body, how)
