"""Websocket clients and ComfyUI's rules for who receives which event."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

# Sent with the server's capabilities in answer to a client's ``feature_flags`` message.
SERVER_FEATURES: dict[str, Any] = {
    "supports_preview_metadata": True,
    "max_upload_size": 104857600,
    "extension": {"manager": {"supports_v4": True}},
    "node_replacements": True,
    "assets": False,
}


class Hub:
    """Connected websockets by client id (``sid``)."""

    def __init__(self) -> None:
        self.sockets: dict[str, web.WebSocketResponse] = {}

    async def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        """Send to ``sid`` only, or to everyone when ``sid`` is None (ComfyUI's send_sync)."""
        message = {"type": event, "data": data}
        targets = list(self.sockets.values()) if sid is None else [self.sockets.get(sid)]
        for socket in targets:
            if socket is None or socket.closed:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.send_json(message)

    async def status(self, queue_remaining: int, sid: str | None = None) -> None:
        """The ``status`` event; the first one a client gets also carries its ``sid``."""
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
        if sid is not None:
            data["sid"] = sid
        await self.send("status", data, sid)

    async def drop_all(self) -> None:
        """Close every client socket, as a proxy or a restarting server would."""
        for socket in list(self.sockets.values()):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.close()
