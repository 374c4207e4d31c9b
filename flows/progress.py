"""How a run reports as it goes: the display the caller installed (the CLI's rich one, or
nothing), plus the Prefect run itself, so a person watching the UI follows the film too."""

from __future__ import annotations

import asyncio
import logging
import math
import time
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


TABLES_EVERY_S = 10.0
"""The dialogue and loudness tables hold every finished sequence: re-published per sequence,
a long film would send O(n^2) rows. They go out at most this often, and once more at the end."""


class RunProgress:
    """Forwards everything to `display`, and tells the Prefect run: one log line per stage
    outcome (warnings at WARNING), a progress artifact (sequences and cues done of all), and
    the dialogue and loudness tables, updated as sequences finish.

    One update is in flight at a time, each carrying the latest counts: events that arrive
    meanwhile are folded into the next one, so a burst (a cached re-run) costs a few calls."""

    def __init__(self, display: ProgressSink, plan: FilmPlan, logger: logging.LoggerAdapter[Any]):
        self.display, self.logger = display, logger
        self.total = len(plan.sequences) + len(plan.cues)
        self.sequences: list[SequenceResult] = []
        self.cues = 0
        self._artifact: UUID | None = None
        self._updater: asyncio.Task[None] | None = None
        self._changed = False
        self._tables_due = False
        self._tables_at = -math.inf

    async def open(self) -> RunProgress:
        if FlowRunContext.get() is not None:
            self._artifact = await acreate_progress_artifact(
                progress=0.0, key=PROGRESS_KEY, description=self._description()
            )
        return self

    async def close(self) -> None:
        """Publish the last counts and tables, so the run's artifacts end as the run did."""
        if self._updater is not None:
            await self._updater
        if self._artifact is not None and (self._changed or self._tables_due):
            self._changed = self._tables_due = False
            await self._update(tables=True)

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
        self._changed = True
        self._tables_due = self._tables_due or tables
        if self._updater is None or self._updater.done():
            self._updater = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._changed:
            self._changed = False
            tables = self._tables_due and time.monotonic() - self._tables_at >= TABLES_EVERY_S
            if tables:
                self._tables_due, self._tables_at = False, time.monotonic()
            await self._update(tables)

    async def _update(self, tables: bool) -> None:
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
