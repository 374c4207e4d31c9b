"""Prefect blocks describing the ComfyUI servers a film renders on.

Constructing a block needs no Prefect API; ``.save()`` and ``.load()`` do.
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import urlsplit

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from tasks.comfyui.client import ComfyUIClient


class ComfyUIServer(Block):
    """One ComfyUI server; its GPU slots become a Prefect global concurrency limit."""

    _block_type_name: ClassVar[str] = "ComfyUI Server"
    _block_type_slug: ClassVar[str] = "reelflow-comfyui-server"
    _description: ClassVar[str] = "A ComfyUI server that reelflow renders on."

    url: str = Field(description="Base URL, e.g. http://gpu-box-1:8188")
    gpu_slots: int = Field(1, ge=1, description="Prompts it runs at once: one per GPU.")
    auth_header: SecretStr | None = Field(
        None,
        description="'Header-Name: value', or a bare value sent as Authorization.",
    )
    connect_timeout: float = Field(5.0, gt=0)
    request_timeout: float = Field(60.0, gt=0)
    render_timeout: float = Field(3600.0, gt=0, description="Longest one prompt may run.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL with a host: {value!r}")
        return value.rstrip("/")

    @property
    def concurrency_limit_name(self) -> str:
        """``comfyui-<host>-<port>``: the same server always maps to the same limit."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = re.sub(r"[^a-z0-9]+", "-", (parts.hostname or "").lower()).strip("-")
        return f"comfyui-{host}-{port}"

    def client(self) -> ComfyUIClient:
        """A new client; use it as ``async with server.client() as client``."""
        return ComfyUIClient(
            self.url,
            auth_header=self.auth_header.get_secret_value() if self.auth_header else None,
            connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
            render_timeout=self.render_timeout,
        )


class ComfyUIPool(Block):
    """Several ComfyUI servers; a render takes whichever has a free GPU slot."""

    _block_type_name: ClassVar[str] = "ComfyUI Pool"
    _block_type_slug: ClassVar[str] = "reelflow-comfyui-pool"
    _description: ClassVar[str] = "A pool of ComfyUI servers that reelflow spreads renders over."

    servers: list[ComfyUIServer] = Field(min_length=1)

    @classmethod
    def from_urls(cls, urls: list[str], *, gpu_slots: int = 1) -> ComfyUIPool:
        return cls(servers=[ComfyUIServer(url=url, gpu_slots=gpu_slots) for url in urls])

    @property
    def gpu_slots(self) -> int:
        return sum(server.gpu_slots for server in self.servers)

    @field_validator("servers")
    @classmethod
    def _distinct(cls, servers: list[ComfyUIServer]) -> list[ComfyUIServer]:
        names = [server.concurrency_limit_name for server in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"the same server is listed twice: {names}")
        return servers
