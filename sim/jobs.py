"""Queued and finished prompts, and the JSON shapes ComfyUI gives them.

A ``Job`` lives in the pending heap, then runs, then becomes a history entry; the
``/queue``, ``/history`` and ``/api/jobs`` routes are views over the same records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

JobStatus = Literal["pending", "in_progress", "completed", "failed", "cancelled"]
JOB_STATUSES: tuple[str, ...] = ("pending", "in_progress", "completed", "failed", "cancelled")


def now_ms() -> int:
    """Unix time in milliseconds, the unit of every ComfyUI timestamp."""
    return int(time.time() * 1000)


@dataclass
class Job:
    """One submitted prompt and everything that happened to it."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: list[str]
    status: JobStatus = "pending"
    start_ms: int | None = None
    end_ms: int | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[list[Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    interrupted: bool = False

    @property
    def client_id(self) -> str | None:
        """The websocket client that submitted the prompt, if any."""
        value = self.extra_data.get("client_id")
        return str(value) if value is not None else None

    @property
    def create_ms(self) -> int:
        """When the prompt was accepted."""
        return int(self.extra_data.get("create_time", 0))

    def queue_item(self) -> list[Any]:
        """The ``[number, id, prompt, extra_data, outputs]`` tuple of ``/queue`` and history."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs_to_execute]

    def history_entry(self) -> dict[str, Any]:
        """The value under this prompt's id in ``GET /history``."""
        finished_ok = self.status == "completed"
        return {
            "prompt": self.queue_item(),
            "outputs": self.outputs,
            "status": {
                "status_str": "success" if finished_ok else "error",
                "completed": finished_ok,
                "messages": self.messages,
            },
            "meta": {
                node: {
                    "node_id": node,
                    "display_node": node,
                    "parent_node": None,
                    "real_node_id": node,
                }
                for node in self.outputs
            },
        }

    def _preview(self) -> dict[str, Any] | None:
        for node, output in self.outputs.items():
            for media_type in ("images", "video", "audio"):
                items = output.get(media_type) or []
                for item in items:
                    if isinstance(item, dict) and "filename" in item:
                        return {**item, "nodeId": node, "mediaType": media_type}
        return None

    def job_summary(self) -> dict[str, Any]:
        """One row of ``GET /api/jobs``."""
        row: dict[str, Any] = {
            "id": self.prompt_id,
            "status": self.status,
            "priority": self.number,
            "create_time": self.create_ms,
        }
        if self.start_ms is not None and self.status not in ("pending", "in_progress"):
            row["execution_start_time"] = self.start_ms
            row["execution_end_time"] = self.end_ms
        if self.status == "failed" and self.error is not None:
            row["execution_error"] = self.error
        row["outputs_count"] = sum(
            1
            for out in self.outputs.values()
            for items in out.values()
            if isinstance(items, list)
            for item in items
            if isinstance(item, dict)
        )
        preview = self._preview()
        if preview is not None:
            row["preview_output"] = preview
        workflow = self.extra_data.get("extra_pnginfo", {}).get("workflow", {})
        if isinstance(workflow, dict) and "id" in workflow:
            row["workflow_id"] = workflow["id"]
        return row

    def job_detail(self) -> dict[str, Any]:
        """``GET /api/jobs/{id}``: the summary plus outputs, status and the workflow."""
        row = self.job_summary()
        if self.status in ("pending", "in_progress"):
            return row
        row["outputs"] = self.outputs
        row["execution_status"] = self.history_entry()["status"]
        row["workflow"] = {"prompt": self.prompt, "extra_data": self.extra_data}
        return row
