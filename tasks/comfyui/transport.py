"""The HTTP layer under the ComfyUI client: headers, error mapping, patience with a server
that cannot be reached (a GPU box restarting takes minutes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx

from tasks.comfyui.errors import (
    ProtocolError,
    ServerDown,
    ServerError,
    ServerTimeout,
    ServerUnreachable,
)

log = logging.getLogger("tasks.comfyui.client")

_HEADER_LINE = re.compile(r"^([A-Za-z0-9-]+):\s*(.+)$")
SERVER_WAIT_ENV = "REELFLOW_SERVER_WAIT_S"
DEFAULT_SERVER_WAIT_S = 300.0
"""How long an unreachable server is tried again (backoff up to 30 s) before a run gives up:
a GPU server restart often takes minutes."""
_RETRY_MAX_DELAY_S = 30.0


def server_wait_s() -> float:
    """Seconds an unreachable server is waited for ($REELFLOW_SERVER_WAIT_S, default 300)."""
    try:
        return max(0.0, float(os.environ.get(SERVER_WAIT_ENV, DEFAULT_SERVER_WAIT_S)))
    except ValueError:
        return DEFAULT_SERVER_WAIT_S


def auth_headers(auth_header: str | None) -> dict[str, str]:
    """``"Name: value"`` sets that header; a bare value is sent as ``Authorization``."""
    if not auth_header:
        return {}
    match = _HEADER_LINE.match(auth_header)
    if match:
        return {match.group(1): match.group(2)}
    return {"Authorization": auth_header}


class NotConnected(ServerUnreachable):
    """The connection was never made, so the request was never sent: safe to send again."""


def reason(exc: BaseException) -> str:
    """A transport failure in a few words."""
    text = str(exc).strip()
    if "refused" in text.lower():
        return "connection refused"
    return text or type(exc).__name__


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Translate transport exceptions into the ComfyUI error tree."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise NotConnected(f"{what}: {reason(exc)}") from exc
    except httpx.TimeoutException as exc:
        raise ServerTimeout(f"{what}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise ServerUnreachable(f"{what}: {type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise ProtocolError(f"{what}: {type(exc).__name__}: {exc}") from exc


async def patient_request(
    http: httpx.AsyncClient, base_url: str, wait_s: float, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """One request; a server that cannot be reached is tried again with backoff for up to
    `wait_s` seconds (only while no connection was made, so nothing is ever sent twice)."""
    waited, delay = 0.0, 1.0
    while True:
        try:
            with mapped(f"{method} {base_url}{path}"):
                response = await http.request(method, path, **kwargs)
            break
        except NotConnected as exc:
            why = reason(exc.__cause__ or exc)
            if waited >= wait_s:
                raise ServerDown(
                    f"ComfyUI server {base_url} is unreachable ({why}); tried for {waited:.0f} s. "
                    f"Check that it is running and reachable from here (${SERVER_WAIT_ENV} sets "
                    "how long to keep trying)."
                ) from exc
            if waited == 0:
                log.warning(
                    "ComfyUI server %s is unreachable (%s); trying again for up to %.0f s",
                    base_url,
                    why,
                    wait_s,
                )
            pause = min(delay, wait_s - waited)
            await asyncio.sleep(pause)
            waited += pause
            delay = min(delay * 2, _RETRY_MAX_DELAY_S)
    if response.status_code >= 500:
        raise ServerError(
            f"{method} {base_url}{path}: server error {response.status_code}",
            status_code=response.status_code,
            body=response.text[:2000],
        )
    return response
