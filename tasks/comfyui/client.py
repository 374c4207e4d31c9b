"""Async client for one ComfyUI server: HTTP via httpx, execution events via its websocket.

Foreign exceptions (httpx, websockets, OS) stop here and leave as ``errors`` types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from tasks.comfyui import protocol as p
from tasks.comfyui.downloads import download_output
from tasks.comfyui.errors import (
    BadRequest,
    ComfyUIError,
    ExecutionFailed,
    Interrupted,
    OutOfMemory,
    PromptLost,
    PromptRejected,
    ProtocolError,
    ServerTimeout,
    ServerUnreachable,
)
from tasks.comfyui.transport import auth_headers, patient_request, server_wait_s

log = logging.getLogger(__name__)

ProgressCallback = Callable[[p.ProgressEvent], None]
_Model = TypeVar("_Model", bound=BaseModel)
_OOM_MARKERS = ("outofmemory", "out of memory", "allocation on device")
# A websocket that stays silent this long makes us ask /history whether we missed the end.
_WS_IDLE_PROBE_S = 15.0
_POLL_MAX_DELAY_S = 5.0
_UNREACHABLE_POLLS_TOLERATED = 5
_LOST_POLLS_TOLERATED = 3


def _execution_error(event: p.ExecutionError | dict[str, Any], prompt_id: str) -> ExecutionFailed:
    data = event.model_dump() if isinstance(event, p.ExecutionError) else event
    fields = {
        "prompt_id": prompt_id,
        "node_id": data.get("node_id"),
        "node_type": data.get("node_type"),
        "exception_type": str(data.get("exception_type", "")),
        "exception_message": str(data.get("exception_message", "")),
    }
    text = f"{fields['exception_type']} {fields['exception_message']}".lower()
    oom = any(marker in text for marker in _OOM_MARKERS)
    return OutOfMemory(**fields) if oom else ExecutionFailed(**fields)


def _parse(model: type[_Model], data: Any, what: str) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(f"{what}: unexpected answer {str(data)[:300]!r}") from exc


class ComfyUIClient:
    """Talks to one ComfyUI server; use as ``async with ComfyUIClient(url) as client``."""

    def __init__(
        self,
        base_url: str,
        *,
        auth_header: str | None = None,
        connect_timeout: float = 5,
        request_timeout: float = 60,
        render_timeout: float = 3600,
        unreachable_wait: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self.connect_timeout = connect_timeout
        self.render_timeout = render_timeout
        self.unreachable_wait = server_wait_s() if unreachable_wait is None else unreachable_wait
        self._headers = auth_headers(auth_header)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
        )

    async def __aenter__(self) -> ComfyUIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- plain HTTP ------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await patient_request(
            self._http, self.base_url, self.unreachable_wait, method, path, **kwargs
        )

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise BadRequest(
                f"{method} {self.base_url}{path}: HTTP {response.status_code} "
                f"{response.text[:500]}",
                status_code=response.status_code,
                body=response.text[:2000],
            )
        try:
            return response.json() if response.content else None
        except ValueError as exc:
            raise ProtocolError(
                f"{method} {self.base_url}{path}: not JSON: {response.text[:300]!r}"
            ) from exc

    async def system_stats(self) -> p.SystemStats:
        return _parse(p.SystemStats, await self._json("GET", "/system_stats"), "/system_stats")

    async def object_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._json("GET", "/object_info")
        return info

    async def queue(self) -> p.QueueState:
        return p.QueueState.from_body(await self._json("GET", "/queue"))

    async def history(self, prompt_id: str) -> p.HistoryEntry | None:
        """The prompt's history entry, or None while the server has none."""
        return p.parse_history(await self._json("GET", f"/history/{prompt_id}"), prompt_id)

    async def interrupt(self, prompt_id: str) -> None:
        """Stop our prompt if it is the one running; others on the GPU are left alone."""
        await self._json("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def delete_queued(self, prompt_id: str) -> None:
        await self._json("POST", "/queue", json={"delete": [prompt_id]})

    async def upload_file(
        self, path: Path, *, name: str | None = None, overwrite: bool = True
    ) -> str:
        """Upload into the server's input folder; returns the name a LoadImage node takes."""
        fields = {"overwrite": "true"} if overwrite else {}
        with path.open("rb") as fh:
            files = {"image": (name or path.name, fh, "application/octet-stream")}
            body = await self._json("POST", "/upload/image", files=files, data=fields)
        uploaded = _parse(p.UploadResponse, body, "/upload/image")
        return f"{uploaded.subfolder}/{uploaded.name}" if uploaded.subfolder else uploaded.name

    async def submit(
        self, prompt: dict[str, Any], *, prompt_id: str | None = None, client_id: str | None = None
    ) -> str:
        """Queue a prompt; returns its id. Rejections raise ``PromptRejected``."""
        body: dict[str, Any] = {"prompt": prompt, "client_id": client_id or self.client_id}
        if prompt_id:
            body["prompt_id"] = prompt_id
        response = await self._request("POST", "/prompt", json=body)
        if response.status_code == 400:
            try:
                error = p.ErrorBody.model_validate(response.json())
            except ValueError as exc:  # pydantic's ValidationError is a ValueError too
                raise BadRequest(
                    f"POST {self.base_url}/prompt: 400 {response.text[:500]}", status_code=400
                ) from exc
            raise PromptRejected(
                error.error.model_dump(),
                {k: v.model_dump() for k, v in error.node_errors.items()},
            )
        if response.status_code >= 400:
            raise BadRequest(
                f"POST {self.base_url}/prompt: HTTP {response.status_code}",
                status_code=response.status_code,
            )
        try:
            accepted = p.PromptResponse.model_validate(response.json())
        except ValueError as exc:
            raise ProtocolError(
                f"POST {self.base_url}/prompt: unexpected answer {response.text[:300]!r}"
            ) from exc
        if accepted.node_errors:
            # ComfyUI queues the valid branches anyway; a half film is worse than none.
            await self._abandon(accepted.prompt_id)
            raise PromptRejected(
                {"type": "prompt_outputs_failed_validation", "message": "Some outputs failed"},
                {k: v.model_dump() for k, v in accepted.node_errors.items()},
                status_code=200,
            )
        return accepted.prompt_id

    # --- running a prompt ------------------------------------------------------------

    async def run(
        self,
        prompt: dict[str, Any],
        *,
        on_progress: ProgressCallback | None = None,
        prompt_id: str | None = None,
        client_id: str | None = None,
        on_submitted: Callable[[str], None] | None = None,
    ) -> p.HistoryEntry:
        """Submit, follow to completion and return the history entry.

        `prompt_id` and `client_id` may be chosen by the caller (to write them down before
        the prompt is sent); `on_submitted` is called once the server accepted it. On
        timeout, cancellation or any failure before the server reports an end, our prompt
        is interrupted and removed from the queue: no ghost jobs.
        """
        prompt_id = prompt_id or str(uuid.uuid4())
        # ComfyUI keeps one socket per client id: concurrent runs each need their own.
        client_id = client_id or uuid.uuid4().hex
        submitted = ended = False
        try:
            async with self._websocket(client_id) as ws, asyncio.timeout(self.render_timeout):
                submitted = True  # the POST may land even if its answer never arrives
                prompt_id = await self.submit(prompt, prompt_id=prompt_id, client_id=client_id)
                if on_submitted is not None:
                    on_submitted(prompt_id)
                entry = await self._follow_to_end(ws, prompt_id, on_progress)
                ended = True
                self._raise_for_status(entry)
                return entry
        except (ExecutionFailed, Interrupted, PromptRejected):
            ended = True  # the server is done with it (or never queued it)
            raise
        except TimeoutError:
            raise self._too_long(prompt_id) from None
        finally:
            if submitted and not ended:
                await self._abandon(prompt_id)

    async def resume(
        self, prompt_id: str, client_id: str, *, on_progress: ProgressCallback | None = None
    ) -> p.HistoryEntry | None:
        """A prompt an earlier client submitted: its entry once it finished well (followed to
        its end while it still runs), or None when the server has no good trace of it."""
        entry = await self.history(prompt_id)
        if entry is None or not entry.finished:
            if entry is None and prompt_id not in (await self.queue()).prompt_ids():
                return None
            ended = False
            try:
                async with (
                    self._websocket(client_id) as ws,
                    asyncio.timeout(self.render_timeout),
                ):
                    entry = await self._follow_to_end(ws, prompt_id, on_progress)
                    ended = True
            except (ExecutionFailed, Interrupted, PromptLost):
                ended = True
                return None
            except TimeoutError:
                raise self._too_long(prompt_id) from None
            finally:
                if not ended:
                    await self._abandon(prompt_id)
        if entry.status is not None and entry.status.status_str == "error":
            return None
        return entry

    async def _follow_to_end(
        self,
        ws: ClientConnection | None,
        prompt_id: str,
        on_progress: ProgressCallback | None,
    ) -> p.HistoryEntry:
        if ws is not None:
            await self._follow(ws, prompt_id, on_progress)
        return await self._poll_until_finished(prompt_id)

    def _too_long(self, prompt_id: str) -> ServerTimeout:
        return ServerTimeout(
            f"prompt {prompt_id} did not finish on {self.base_url} within {self.render_timeout:g} s"
        )

    @contextlib.asynccontextmanager
    async def _websocket(self, client_id: str) -> AsyncIterator[ClientConnection | None]:
        """The event socket, opened before submitting; None (poll instead) if it won't open."""
        url = re.sub(r"^http", "ws", self.base_url) + f"/ws?clientId={client_id}"
        try:
            ws = await connect(
                url,
                additional_headers=self._headers,
                open_timeout=self.connect_timeout,
                # The socket only carries events: never wait long for a polite close.
                close_timeout=1.0,
                max_size=None,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning("websocket %s unavailable (%s); following by polling", url, exc)
            yield None
            return
        try:
            yield ws
        finally:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _follow(
        self, ws: ClientConnection, prompt_id: str, on_progress: ProgressCallback | None
    ) -> None:
        """Read events until ours ends; returns early (to polling) if the socket drops."""
        while True:
            try:
                # Not asyncio.wait_for: on 3.11 it can swallow a cancel when a frame arrives.
                async with asyncio.timeout(_WS_IDLE_PROBE_S):
                    frame = await ws.recv()
            except TimeoutError:
                # Silence: we may have missed the end, or the prompt may be gone; ask.
                entry = await self.history(prompt_id)
                if entry is not None and entry.finished:
                    return
                if entry is None and prompt_id not in (await self.queue()).prompt_ids():
                    return  # the polling loop decides whether it is lost
                continue
            except (ConnectionClosed, OSError) as exc:
                log.warning("websocket dropped during %s (%s); polling history", prompt_id, exc)
                return
            event = p.parse_ws_message(frame)
            if event is None or event.prompt_id != prompt_id:
                continue
            if isinstance(event, p.ExecutionError):
                raise _execution_error(event, prompt_id)
            if isinstance(event, p.ExecutionInterrupted):
                raise Interrupted(f"prompt {prompt_id} was interrupted at node {event.node_id}")
            if isinstance(event, p.ExecutionSuccess) or (
                isinstance(event, p.Executing) and event.node is None
            ):
                return
            if on_progress is not None:
                progress = p.progress_event(event, prompt_id)
                if progress is not None:
                    on_progress(progress)

    async def _poll_until_finished(self, prompt_id: str) -> p.HistoryEntry:
        delay, unreachable, lost = 0.1, 0, 0
        while True:
            try:
                entry = await self.history(prompt_id)
                if entry is not None and entry.finished:
                    return entry
                if entry is None and prompt_id not in (await self.queue()).prompt_ids():
                    lost += 1
                    if lost >= _LOST_POLLS_TOLERATED:
                        raise PromptLost(
                            f"prompt {prompt_id} is in neither the queue nor the history of "
                            f"{self.base_url} (the server restarted?)"
                        )
                else:
                    lost = 0
                unreachable = 0
            except ServerUnreachable:
                unreachable += 1
                if unreachable > _UNREACHABLE_POLLS_TOLERATED:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_DELAY_S)

    @staticmethod
    def _raise_for_status(entry: p.HistoryEntry) -> None:
        if entry.status is None or entry.status.status_str != "error":
            return
        if (data := entry.status_message("execution_error")) is not None:
            raise _execution_error(data, entry.prompt_id)
        if entry.status_message("execution_interrupted") is not None:
            raise Interrupted(f"prompt {entry.prompt_id} was interrupted")
        raise ExecutionFailed(
            prompt_id=entry.prompt_id,
            node_id=None,
            node_type=None,
            exception_type="unknown",
            exception_message="history reports an error without an execution_error message",
        )

    async def _abandon(self, prompt_id: str) -> None:
        """Best effort: drop our prompt from the queue, then stop it if it is running."""
        try:
            async with asyncio.timeout(self.connect_timeout * 2 + 1):
                await self.delete_queued(prompt_id)
                await self.interrupt(prompt_id)
        except (ComfyUIError, TimeoutError) as exc:
            log.warning("could not withdraw prompt %s: %s", prompt_id, exc)

    # --- outputs ---------------------------------------------------------------------

    async def download(self, output: p.OutputFile, dest_dir: Path) -> Path:
        """Stream one output into ``dest_dir`` under its server name, atomically."""
        return await download_output(self._http, self.base_url, output, dest_dir)
