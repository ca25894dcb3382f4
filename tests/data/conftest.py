"""A real HTTP server on 127.0.0.1 for the fetch tests: ranges, 404s and dropped connections.

The download code is tested against actual sockets (no mocked urllib), so resume, mirror fallback and
error messages behave as they would against a real mirror.
"""

from __future__ import annotations

import http.server
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass
class Request:
    path: str
    range: str | None
    status: int


@dataclass
class FileServer:
    """Serves ``root``; ``fail(path, mode, times)`` injects ``"404"`` or ``"drop"`` (half the body, then
    the connection closes) for the next ``times`` requests of ``path`` (``None``: every request)."""

    root: Path
    base: str = ""
    ranges: bool = True  # False: ignore Range headers and always answer 200 with the whole file
    requests: list[Request] = field(default_factory=list)
    _failures: dict[str, list] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def put(self, path: str, data: bytes) -> str:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self.url(path)

    def fail(self, path: str, mode: str, times: int | None = 1) -> None:
        assert mode in ("404", "drop")
        with self._lock:
            self._failures["/" + path.lstrip("/")] = [mode, times]

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def take_failure(self, path: str) -> str | None:
        with self._lock:
            entry = self._failures.get(path)
            if entry is None:
                return None
            mode, times = entry
            if times is not None:
                if times <= 1:
                    del self._failures[path]
                else:
                    entry[1] = times - 1
            return mode

    def paths_requested(self) -> list[str]:
        return [r.path for r in self.requests]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped body is a closed socket
    state: FileServer

    def log_message(self, fmt: str, *args: object) -> None:  # keep test output quiet
        pass

    def _record(self, path: str, status: int) -> None:
        with self.state._lock:
            self.state.requests.append(Request(path, self.headers.get("Range"), status))

    def do_GET(self) -> None:  # http.server's naming
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        failure = self.state.take_failure(path)
        file = (self.state.root / path.lstrip("/")).resolve()
        if failure == "404" or not file.is_file() or self.state.root.resolve() not in file.parents:
            self._record(path, 404)
            self.send_error(404, "Not Found")
            return
        data = file.read_bytes()
        start, status = 0, 200
        match = _RANGE.match(self.headers.get("Range") or "")
        if match and self.state.ranges:
            start = int(match.group(1))
            if start >= len(data):
                self._record(path, 416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self._record(path, status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if failure == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def http_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    """A threaded HTTP server on 127.0.0.1 (random port) serving a fresh temp folder."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "served"
    root.mkdir()
    state = FileServer(root=root)
    handler = type("Handler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 whose port has no listener (connection refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
