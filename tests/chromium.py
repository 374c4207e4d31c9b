"""Headless Chromium (Debian's `chromium` package) driven over the DevTools protocol.

Only what the review page tests need: open a page, wait for it, evaluate scripts, collect
every console error and failed load, and take a full-page screenshot.

Chromium runs in its own process group: its zygote, renderer, GPU and utility processes keep
writing into the profile after the browser process itself exits, so the profile is removed
only once the whole group is gone.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)
_LISTENING = re.compile(r"DevTools listening on (ws://[^\s]+)")
# Seconds a step of the shutdown may take before the next, harder one.
_GRACE_S = 10.0


def _group_running(group: int) -> bool:
    """Whether a process of this group still runs (zombies have closed their files)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(pgrp) == group and state not in ("Z", "X"):
            return True
    return False


def _group_ended(group: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _group_running(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _remove_tree(path: Path) -> None:
    """Remove a folder; a few retries for stragglers, then leave what cannot go (it is tmp)."""
    for _ in range(5):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.2)
    shutil.rmtree(path, ignore_errors=True)


class BrowserError(Exception):
    """Chromium did not start, or a DevTools command failed."""


class Chromium:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, *, width: int = 1400, height: int = 900, timeout_s: float = 30.0) -> None:
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self.problems: list[str] = []
        # One folder for the profile and for Chromium's own temporary files (its singleton
        # socket), so nothing is left in /tmp however the browser ends.
        self._root = Path(tempfile.mkdtemp(prefix="chromium-"))
        self._browser_url = ""
        self._next_id = 0
        self._process: subprocess.Popen[str] | None = None
        self._socket: ClientConnection | None = None

    def __enter__(self) -> Chromium:
        (self._root / "tmp").mkdir()
        self._process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self._root / 'profile'}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TMPDIR": str(self._root / "tmp")},
            start_new_session=True,
        )
        try:
            self._connect()
        except BaseException:
            self.close()
            raise
        return self

    def _connect(self) -> None:
        self._browser_url = browser_url = self._wait_for_devtools()
        port = browser_url.split(":")[2].split("/")[0]
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(p for p in pages if p["type"] == "page")
        self._socket = connect(page["webSocketDebuggerUrl"], max_size=None)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every Chromium process, then remove the profile they were writing."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        process, self._process = self._process, None
        if process is not None:
            group = process.pid
            self._ask_to_close()
            if not _group_ended(group, _GRACE_S):
                process.terminate()
            if not _group_ended(group, _GRACE_S):
                with suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
                _group_ended(group, _GRACE_S)
            process.wait()
            assert process.stderr is not None
            process.stderr.close()
        _remove_tree(self._root)

    def _ask_to_close(self) -> None:
        """Browser.close: Chromium's own clean shutdown, which also ends its children."""
        if not self._browser_url:
            return
        # A browser that is already gone or wedged is stopped by signals instead.
        with (
            suppress(OSError, TimeoutError, WebSocketException),
            connect(self._browser_url, open_timeout=_GRACE_S) as browser,
        ):
            browser.send(json.dumps({"id": 1, "method": "Browser.close"}))
            browser.recv(timeout=_GRACE_S)

    def _wait_for_devtools(self) -> str:
        assert self._process is not None and self._process.stderr is not None
        deadline = time.monotonic() + self.timeout_s
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            if not line and self._process.poll() is not None:
                break
            seen.append(line)
            found = _LISTENING.search(line)
            if found:
                return found.group(1)
        raise BrowserError("chromium did not open DevTools:\n" + "".join(seen[-20:]))

    def _note(self, event: dict[str, Any]) -> None:
        """Keep every error a person would see in the console, and every failed load."""
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            self.problems.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            self.problems.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.problems.append(f"log: {entry['text']} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.problems.append(f"failed load: {params.get('errorText')}")

    def _receive(self) -> dict[str, Any]:
        assert self._socket is not None
        message: dict[str, Any] = json.loads(self._socket.recv(timeout=self.timeout_s))
        if "method" in message:
            self._note(message)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one DevTools command and return its result."""
        assert self._socket is not None
        self._next_id += 1
        ident = self._next_id
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while True:
            message = self._receive()
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def open(self, page: Path | str) -> None:
        """Navigate to a file (or an http URL) and wait for its load event."""
        url = page if isinstance(page, str) else page.resolve().as_uri()
        self.send("Page.navigate", {"url": url})
        while self._receive().get("method") != "Page.loadEventFired":
            pass

    def evaluate(self, script: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": script, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, dest: Path) -> Path:
        """A PNG of the whole page, not only the window."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": self.width, "height": size["height"], "scale": 1}
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
        )
        dest.write_bytes(base64.b64decode(shot["data"]))
        return dest
