"""Shapes of what a ComfyUI server sends back: HTTP bodies and websocket messages.

Every model tolerates extra keys, because ComfyUI adds fields between releases and a
client that breaks on a new key breaks a whole film.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.comfyui.errors import OutputInvalid

_OUTPUT_TYPES = {"output", "input", "temp"}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorItem(_Open):
    type: str
    message: str = ""
    details: str = ""
    extra_info: dict[str, Any] = Field(default_factory=dict)


class NodeError(_Open):
    errors: list[ErrorItem] = Field(default_factory=list)
    dependent_outputs: list[str] = Field(default_factory=list)
    class_type: str | None = None


class PromptResponse(_Open):
    """Body of a 200 from ``POST /prompt``."""

    prompt_id: str
    number: float = 0
    node_errors: dict[str, NodeError] = Field(default_factory=dict)


class ErrorBody(_Open):
    """Body of a 400 from ``POST /prompt``."""

    error: ErrorItem
    node_errors: dict[str, NodeError] = Field(default_factory=dict)


class UploadResponse(_Open):
    name: str
    subfolder: str = ""
    type: str = "input"


class SystemInfo(_Open):
    os: str = ""
    comfyui_version: str = ""
    python_version: str = ""
    pytorch_version: str = ""


class Device(_Open):
    name: str
    type: str
    vram_total: int = 0
    vram_free: int = 0


class SystemStats(_Open):
    system: SystemInfo
    devices: list[Device] = Field(default_factory=list)


class QueueItem(_Open):
    number: float
    prompt_id: str
    client_id: str | None = None


class QueueState(_Open):
    queue_running: list[QueueItem] = Field(default_factory=list)
    queue_pending: list[QueueItem] = Field(default_factory=list)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> QueueState:
        """Queue entries arrive as ``[number, prompt_id, prompt, extra_data, outputs]`` lists."""

        def items(rows: list[list[Any]]) -> list[QueueItem]:
            return [
                QueueItem(
                    number=row[0],
                    prompt_id=row[1],
                    client_id=(row[3] or {}).get("client_id") if len(row) > 3 else None,
                )
                for row in rows
            ]

        return cls(
            queue_running=items(body.get("queue_running", [])),
            queue_pending=items(body.get("queue_pending", [])),
        )

    def prompt_ids(self) -> set[str]:
        return {item.prompt_id for item in [*self.queue_running, *self.queue_pending]}


class OutputFile(_Open):
    """One file a node wrote, named exactly as the server reported it."""

    filename: str
    subfolder: str = ""
    type: str = "output"
    node_id: str = ""
    kind: str = ""


class HistoryStatus(_Open):
    status_str: str = ""
    completed: bool = False
    messages: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)


class HistoryEntry(_Open):
    """One prompt's entry in ``GET /history/{prompt_id}``."""

    prompt_id: str = ""
    prompt: list[Any] = Field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    status: HistoryStatus | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status is not None and (
            self.status.completed or self.status.status_str in ("success", "error")
        )

    def outputs_files(self) -> list[OutputFile]:
        """Every file under any output key (images, gifs, audio, video, latents...)."""
        files: list[OutputFile] = []
        for node_id, output in self.outputs.items():
            for kind, items in output.items():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, dict) and "filename" in item:
                        files.append(OutputFile(**item, node_id=node_id, kind=kind))
        return files

    def status_message(self, message_type: str) -> dict[str, Any] | None:
        for kind, data in self.status.messages if self.status else []:
            if kind == message_type:
                return data
        return None

    def _stamp_ms(self, *message_types: str) -> int | None:
        for kind in message_types:
            stamp = (self.status_message(kind) or {}).get("timestamp")
            if isinstance(stamp, int | float) and not isinstance(stamp, bool):
                return int(stamp)
        return None

    @property
    def execution_seconds(self) -> float | None:
        """Seconds the server spent executing this prompt, by its own clock.

        From the ``execution_start`` timestamp to the ``execution_success`` (or error, or
        interrupt) one in ``status.messages``: time spent queued behind other prompts is
        not in it. None when the server recorded no such pair.
        """
        start = self._stamp_ms("execution_start")
        end = self._stamp_ms("execution_success", "execution_error", "execution_interrupted")
        return None if start is None or end is None else (end - start) / 1000

    @property
    def queue_seconds(self) -> float | None:
        """Seconds the prompt waited in the server's queue before it started executing.

        From ``extra_data.create_time`` (set when the server accepted the prompt) to the
        ``execution_start`` timestamp; None when either is missing.
        """
        extra = self.prompt[3] if len(self.prompt) > 3 and isinstance(self.prompt[3], dict) else {}
        created, start = extra.get("create_time"), self._stamp_ms("execution_start")
        if not isinstance(created, int | float) or start is None:
            return None
        return max(0.0, (start - created) / 1000)


def parse_history(body: dict[str, Any], prompt_id: str) -> HistoryEntry | None:
    """The entry for ``prompt_id``, or None while the server has not recorded it."""
    raw = body.get(prompt_id)
    if not raw:
        return None
    return HistoryEntry.model_validate({**raw, "prompt_id": prompt_id})


# --- websocket ---------------------------------------------------------------------


class WsEvent(_Open):
    """A text websocket message; ``data`` fields are typed on the subclasses."""

    type: str
    prompt_id: str | None = None


class Status(WsEvent):
    type: Literal["status"] = "status"
    queue_remaining: int = 0
    sid: str | None = None


class ExecutionStart(WsEvent):
    type: Literal["execution_start"] = "execution_start"


class ExecutionCached(WsEvent):
    type: Literal["execution_cached"] = "execution_cached"
    nodes: list[str] = Field(default_factory=list)


class Executing(WsEvent):
    type: Literal["executing"] = "executing"
    node: str | None = None


class Progress(WsEvent):
    type: Literal["progress"] = "progress"
    node: str | None = None
    value: int = 0
    max: int = 1


class ProgressState(WsEvent):
    type: Literal["progress_state"] = "progress_state"
    nodes: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Executed(WsEvent):
    type: Literal["executed"] = "executed"
    node: str
    output: dict[str, Any] = Field(default_factory=dict)


class ExecutionSuccess(WsEvent):
    type: Literal["execution_success"] = "execution_success"


class ExecutionError(WsEvent):
    type: Literal["execution_error"] = "execution_error"
    node_id: str | None = None
    node_type: str | None = None
    exception_type: str = ""
    exception_message: str = ""
    executed: list[str] = Field(default_factory=list)


class ExecutionInterrupted(WsEvent):
    type: Literal["execution_interrupted"] = "execution_interrupted"
    node_id: str | None = None
    node_type: str | None = None


class PreviewImage(WsEvent):
    """Binary event 1 (legacy) or 4 (with metadata): a sampler preview image."""

    type: Literal["preview_image"] = "preview_image"
    event: int
    image_type: str
    node_id: str | None = None
    image: bytes = b""


class ProgressText(WsEvent):
    """Binary event 3: a node's progress text."""

    type: Literal["progress_text"] = "progress_text"
    node_id: str
    text: str


_TEXT_EVENTS: dict[str, type[WsEvent]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        Status,
        ExecutionStart,
        ExecutionCached,
        Executing,
        Progress,
        ProgressState,
        Executed,
        ExecutionSuccess,
        ExecutionError,
        ExecutionInterrupted,
    )
}
_LEGACY_IMAGE_TYPES = {1: "image/jpeg", 2: "image/png"}


def parse_ws_message(frame: str | bytes) -> WsEvent | None:
    """Decode one websocket frame; None for frames we cannot or need not read."""
    if isinstance(frame, bytes):
        return _parse_binary(frame)
    try:
        message = json.loads(frame)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
        return None
    kind = message.get("type", "")
    data = dict(message["data"])
    if kind == "status":
        data["queue_remaining"] = (
            data.get("status", {}).get("exec_info", {}).get("queue_remaining", 0)
        )
    model = _TEXT_EVENTS.get(kind, WsEvent)
    return model.model_validate({**data, "type": kind})


def _parse_binary(frame: bytes) -> WsEvent | None:
    if len(frame) < 8:
        return None
    (event,) = struct.unpack(">I", frame[:4])
    if event == 1:
        (image_type,) = struct.unpack(">I", frame[4:8])
        return PreviewImage(
            event=1, image_type=_LEGACY_IMAGE_TYPES.get(image_type, "unknown"), image=frame[8:]
        )
    if event in (3, 4):
        (length,) = struct.unpack(">I", frame[4:8])
        head = frame[8 : 8 + length]
        if len(head) != length:
            return None
        if event == 3:
            return ProgressText(
                node_id=head.decode("utf-8", "replace"),
                text=frame[8 + length :].decode("utf-8", "replace"),
            )
        try:
            meta = json.loads(head)
        except json.JSONDecodeError:
            return None
        return PreviewImage(
            event=4,
            image_type=str(meta.get("image_type", "unknown")),
            node_id=meta.get("node_id"),
            prompt_id=meta.get("prompt_id"),
            image=frame[8 + length :],
        )
    return None


class ProgressEvent(_Open):
    """What ``ComfyUIClient.run`` reports to its caller while our prompt executes."""

    prompt_id: str
    stage: Literal["started", "cached", "executing", "progress", "preview"]
    node: str | None = None
    value: int = 0
    max: int = 1


def progress_event(event: WsEvent, prompt_id: str) -> ProgressEvent | None:
    """The caller-facing form of an event about our prompt; None for the rest."""
    if isinstance(event, ExecutionStart):
        return ProgressEvent(prompt_id=prompt_id, stage="started")
    if isinstance(event, ExecutionCached):
        return ProgressEvent(prompt_id=prompt_id, stage="cached", value=len(event.nodes))
    if isinstance(event, Executing):
        return ProgressEvent(prompt_id=prompt_id, stage="executing", node=event.node)
    if isinstance(event, Progress):
        return ProgressEvent(
            prompt_id=prompt_id, stage="progress", node=event.node, value=event.value, max=event.max
        )
    return None


def check_output_path(output: OutputFile) -> None:
    """Refuse names that would escape the download folder or the server's folders."""
    for part_name, value in (("filename", output.filename), ("subfolder", output.subfolder)):
        path = PurePosixPath(value.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", value):
            raise OutputInvalid(f"unsafe {part_name} in server output: {value!r}")
    if not output.filename or "/" in output.filename or "\\" in output.filename:
        raise OutputInvalid(f"unsafe filename in server output: {output.filename!r}")
    if output.type not in _OUTPUT_TYPES:
        raise OutputInvalid(f"unknown output type {output.type!r} for {output.filename!r}")
