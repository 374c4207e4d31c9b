"""Where a run reports progress. The CLI installs a rich display; a deployment logs."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class ProgressSink(Protocol):
    def stage(self, text: str) -> None: ...

    def render_progress(self, label: str, value: int, maximum: int) -> None: ...

    def render_done(self, label: str, detail: str) -> None: ...


class QuietSink:
    """Reports nothing; Prefect's own logs and artifacts tell the story."""

    def stage(self, text: str) -> None:
        return None

    def render_progress(self, label: str, value: int, maximum: int) -> None:
        return None

    def render_done(self, label: str, detail: str) -> None:
        return None


QUIET = QuietSink()
progress_sink: ContextVar[ProgressSink] = ContextVar("progress_sink", default=QUIET)
