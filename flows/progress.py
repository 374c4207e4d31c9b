"""How a run reports as it goes: the display the caller installed (the CLI's rich one, or
nothing), plus the Prefect run itself, so a person watching the UI follows the film too."""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.context import FlowRunContext

from tasks.deliver.tables import dialogue_rows, loudness_rows
from tasks.runtime.studio import ProgressSink, QuietSink
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import RenderedCue, SequenceResult

QUIET = QuietSink()
progress_sink: ContextVar[ProgressSink] = ContextVar("progress_sink", default=QUIET)
"""The display of the current caller (the CLI sets a rich one); QuietSink keeps no state."""

PROGRESS_KEY = "film-progress"


class RunProgress:
    """Forwards everything to `display`, and tells the Prefect run: one log line per stage
    outcome (warnings at WARNING), a progress artifact (sequences and cues done of all), and
    the dialogue and loudness tables, updated as each sequence finishes."""

    def __init__(self, display: ProgressSink, plan: FilmPlan, logger: logging.LoggerAdapter[Any]):
        self.display, self.logger = display, logger
        self.total = len(plan.sequences) + len(plan.cues)
        self.sequences: list[SequenceResult] = []
        self.cues = 0
        self._artifact: UUID | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def open(self) -> RunProgress:
        if FlowRunContext.get() is not None:
            self._artifact = await acreate_progress_artifact(
                progress=0.0, key=PROGRESS_KEY, description=self._description()
            )
        return self

    async def close(self) -> None:
        """Wait for every pending update, so the run's artifacts end as the run did."""
        while self._pending:
            await asyncio.gather(*list(self._pending))

    def _description(self) -> str:
        return (
            f"{len(self.sequences)} sequence(s) and {self.cues} cue(s) done, "
            f"{self._done()} of {self.total}"
        )

    def _done(self) -> int:
        return len(self.sequences) + self.cues

    def _publish(self, tables: bool) -> None:
        if self._artifact is None:
            return
        task = asyncio.get_running_loop().create_task(self._update(tables))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _update(self, tables: bool) -> None:
        async with self._lock:  # updates land in order; each carries the latest counts
            assert self._artifact is not None
            share = 100.0 * min(1.0, self._done() / max(self.total, 1))
            await aupdate_progress_artifact(
                self._artifact, progress=share, description=self._description()
            )
            if tables:
                await acreate_table_artifact(
                    key="dialogue-check",
                    table=dialogue_rows(self.sequences),
                    description="Scripted vs heard dialogue, verdicts and actions",
                )
                await acreate_table_artifact(
                    key="loudness",
                    table=loudness_rows(self.sequences),
                    description="Per-sequence loudness before/after normalize",
                )

    def stage(self, text: str) -> None:
        self.display.stage(text)
        self.logger.info(text)

    def render_progress(self, label: str, value: int, maximum: int) -> None:
        self.display.render_progress(label, value, maximum)

    def render_done(self, label: str, detail: str) -> None:
        self.display.render_done(label, detail)

    def outcome(self, text: str, *, warning: bool = False) -> None:
        self.display.outcome(text, warning=warning)
        (self.logger.warning if warning else self.logger.info)(text)

    def sequence_finished(self, result: SequenceResult) -> None:
        self.display.sequence_finished(result)
        self.sequences.append(result)
        self._publish(tables=True)

    def cue_finished(self, cue: RenderedCue) -> None:
        self.display.cue_finished(cue)
        self.cues += 1
        # The score may split a long zone into more cues than the plan counted.
        self.total = max(self.total, self._done())
        self._publish(tables=False)
