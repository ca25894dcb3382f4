"""Headless Chromium driven over the DevTools protocol on a pipe: no driver, no extra package.

``chromium --remote-debugging-pipe`` reads protocol messages (JSON, each ended by a NUL byte) on file
descriptor 3 and writes replies and events on descriptor 4. This module starts Debian's Chromium that way
(with the flags this machine needs: no sandbox as root, no background networking, which a closed network
refuses), opens pages, evaluates JavaScript in them and waits, with a deadline, for rendered content.
Chromium runs in its own process group, so its helper processes are stopped with it, by its PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGES = "chromium"  # Debian's package (README "Development")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1600,1000",
)


def executable() -> str | None:
    """Debian's Chromium, or None if it is not installed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _above_four(fd: int) -> int:
    """The same pipe end on a descriptor ≥ 10, so that moving it to 3 or 4 cannot clobber the other."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class ProtocolError(RuntimeError):
    pass


@dataclass
class Page:
    """One tab, attached with its own session."""

    browser: Chromium
    session: str
    target: str

    def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        return self.browser.call(method, params, session=self.session, timeout=timeout)

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise ProtocolError(f"navigating to {url}: {result['errorText']}")

    def evaluate(self, expression: str, context_id: int | None = None) -> Any:
        """The value of a JavaScript expression (promises awaited); exceptions raise ProtocolError."""
        params: dict[str, Any] = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context_id is not None:
            params["contextId"] = context_id
        result = self.call("Runtime.evaluate", params)
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression[:80]!r}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str, context_id: int | None = None) -> Any:
        """Poll ``expression`` until it is truthy; after ``timeout`` s fail, showing what the page says."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression, context_id)
            except ProtocolError:
                value = None  # the page is still loading, or the element not there yet
            if value:
                return value
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText.slice(0, 1500) : ''")
                raise TimeoutError(f"{what} did not appear within {timeout:.0f} s; the page shows:\n{text}")
            time.sleep(0.25)

    def frame_context(self, url_prefix: str) -> int:
        """An execution context inside the child frame whose URL starts with ``url_prefix`` (an iframe)."""
        tree = self.call("Page.getFrameTree")["frameTree"]
        frames = [tree]
        while frames:
            frame = frames.pop()
            if frame["frame"].get("url", "").startswith(url_prefix):
                world = self.call("Page.createIsolatedWorld", {"frameId": frame["frame"]["id"]})
                return int(world["executionContextId"])
            frames.extend(frame.get("childFrames", []))
        raise ProtocolError(f"no frame with a URL starting {url_prefix!r}")

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))


class Chromium:
    """A headless browser process; use as a context manager so that it is always stopped."""

    def __init__(self, workdir: Path, exe: str | None = None) -> None:
        exe = exe or executable()
        if exe is None:
            raise FileNotFoundError(f"Chromium is not installed (Debian package: {PACKAGES})")
        self.log_path = workdir / "chromium.log"
        profile = workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        to_chrome_r, from_chrome_w = _above_four(to_chrome_r), _above_four(from_chrome_w)
        # bash (dash takes single-digit descriptors only) puts our pipe ends on descriptors 3 and 4, then
        # becomes Chromium's launcher, which execs Chromium: one PID throughout
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                ["/bin/bash", "-c", script, exe, *FLAGS, f"--user-data-dir={profile}",
                 "--remote-debugging-pipe", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(to_chrome_r, from_chrome_w),
                start_new_session=True,
            )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0

    # -- protocol --------------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise ProtocolError(f"Chromium closed the pipe; see {self.log_path}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") != self._next_id:
                continue  # an event, or a late reply to an earlier call
            if "error" in reply:
                raise ProtocolError(f"{method}: {reply['error'].get('message')}")
            return reply.get("result", {})

    def new_page(self, url: str = "about:blank") -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.call("Page.enable")
        page.call("Runtime.enable")
        if url != "about:blank":
            page.navigate(url)
        return page

    # -- lifetime --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Ask Chromium to quit; after 10 s stop its process group by its PID."""
        try:
            if self.proc.poll() is None:
                self.call("Browser.close", timeout=5)
        except (OSError, TimeoutError, ProtocolError):
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # helpers (renderer, zygote) that outlived it
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
