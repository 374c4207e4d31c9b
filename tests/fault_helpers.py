"""Fault injection the simulator cannot do itself: a misbehaving proxy, a TCP outage, a full disk.

Everything here runs real sockets and real processes; nothing replaces reelflow's own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sim.embedded import free_loopback_port
from tasks.schema.outcomes import FilmResult
from tests.film_helpers import render

_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding", "host"}


class LoopThread:
    """An asyncio loop in a daemon thread, for servers that live beside a blocking test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


@dataclass
class ProxyTricks:
    """How the proxy lies: truncate mp4 bodies, rewrite output file names in /history."""

    truncate_mp4_views: int = 0
    filename_rewrite: Callable[[str], str] | None = None
    subfolder_rewrite: str | None = None
    truncated: list[str] = field(default_factory=list)


class ComfyProxy:
    """An HTTP + websocket proxy in front of a simulator that damages selected answers."""

    def __init__(self, upstream: str, tricks: ProxyTricks) -> None:
        self.upstream = upstream.rstrip("/")
        self.tricks = tricks
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = LoopThread()
        self._runner: web.AppRunner | None = None
        self._sockets: set[aiohttp.ClientWebSocketResponse] = set()
        self._loop.call(self._start())

    async def _start(self) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/ws"):
            return await self._websocket(request)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body or None,
            headers=headers,
        ) as answer:
            payload = await answer.read()
            kind = answer.headers.get("Content-Type", "")
        payload = self._damage(request, payload, kind)
        reply_headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
        return web.Response(status=answer.status, body=payload, headers=reply_headers)

    def _damage(self, request: web.Request, payload: bytes, kind: str) -> bytes:
        tricks = self.tricks
        name = request.query.get("filename", "")
        if request.path.endswith("/view") and name.endswith(".mp4") and tricks.truncate_mp4_views:
            tricks.truncate_mp4_views -= 1
            tricks.truncated.append(name)
            # Half the bytes with a matching Content-Length: only verification can notice.
            return payload[: len(payload) // 2]
        if (
            "/history/" in request.path
            and "json" in kind
            and (tricks.filename_rewrite or tricks.subfolder_rewrite is not None)
        ):
            document = json.loads(payload)
            for entry in document.values():
                for output in entry.get("outputs", {}).values():
                    for items in output.values():
                        for item in items if isinstance(items, list) else []:
                            if isinstance(item, dict) and "filename" in item:
                                if tricks.filename_rewrite:
                                    item["filename"] = tricks.filename_rewrite(item["filename"])
                                if tricks.subfolder_rewrite is not None:
                                    item["subfolder"] = tricks.subfolder_rewrite
            return json.dumps(document).encode()
        return payload

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)
        target = self.upstream.replace("http", "ws", 1) + request.path_qs
        async with self._session.ws_connect(target) as upstream:
            self._sockets.add(upstream)

            async def pump_up() -> None:
                async for message in downstream:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        await upstream.send_str(message.data)

            forward = asyncio.create_task(pump_up())
            async for message in upstream:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await downstream.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await downstream.send_bytes(message.data)
            forward.cancel()
            self._sockets.discard(upstream)
        await downstream.close()
        return downstream

    async def _stop(self) -> None:
        for socket in list(self._sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self._session.close()

    def close(self) -> None:
        self._loop.call(self._stop())
        self._loop.close()


class TcpOutage:
    """A TCP relay to `upstream_port` that can go down (connections refused) and come back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = LoopThread()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.up()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._links.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._links.difference_update((writer, up_writer))

    async def _up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()  # kept-alive connections die too, as in a real outage
        self._links.clear()

    def up(self) -> None:
        self._loop.call(self._up())

    def down(self) -> None:
        self._loop.call(self._down())

    def close(self) -> None:
        self.down()
        self._loop.close()


class FilmThread:
    """A film rendering in a background thread, so the test can break things meanwhile."""

    def __init__(self, screenplay: Path, out: Path, servers: list[str], **options: Any) -> None:
        self.result: FilmResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(screenplay, out, servers, options), daemon=True
        )
        self._thread.start()

    def _run(self, screenplay: Path, out: Path, servers: list[str], options: Any) -> None:
        try:
            self.result = render(screenplay, out, servers, **options)
        except BaseException as failure:  # handed to the test thread, which asserts on it
            self.error = failure

    def join(self, timeout: float = 180) -> FilmThread:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the film run hung"
        return self


def wait_until(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.05)


@contextlib.contextmanager
def small_tmpfs(folder: Path, size_kib: int) -> Iterator[Path | None]:
    """A tmpfs of `size_kib` mounted on `folder`, or None where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
