"""The terminal display of a run: stage lines, one progress bar per render, terse logs."""

from __future__ import annotations

import logging

from prefect.logging.handlers import PrefectConsoleHandler
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from tasks.schema.outcomes import RenderedCue, SequenceResult


class RichSink:
    """A rich progress display fed by ComfyUI's websocket progress events.

    Stage lines and labels may carry text from the screenplay: they are printed as plain
    text, never read as rich markup.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.bars: dict[str, TaskID] = {}

    def __enter__(self) -> RichSink:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def _bar(self, label: str) -> TaskID:
        if label not in self.bars:
            self.bars[label] = self.progress.add_task(label, total=1, detail="")
        return self.bars[label]

    def stage(self, text: str) -> None:
        # Text, not markup: a scene or line may hold brackets that rich would read as tags.
        self.progress.console.print(Text.assemble(("» ", "bold"), text), highlight=False)

    def render_progress(self, label: str, value: int, maximum: int) -> None:
        self.progress.update(self._bar(label), completed=value, total=max(maximum, 1))

    def render_done(self, label: str, detail: str) -> None:
        bar = self._bar(label)
        self.progress.update(bar, completed=1, total=1, detail=detail)

    def outcome(self, text: str, *, warning: bool = False) -> None:
        if warning:  # the rest is in the end report; a warning is worth seeing at once
            self.progress.console.print(Text(f"  ! {text}", style="yellow"), highlight=False)

    def sequence_finished(self, result: SequenceResult) -> None:
        return None

    def cue_finished(self, cue: RenderedCue) -> None:
        return None


class _WithoutTraceback(logging.Formatter):
    """Formats as `inner` does, leaving out tracebacks (they stay in the Prefect log)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def terse_prefect_console() -> None:
    """Prefect's terminal log lines without tracebacks: a person reads one line per problem;
    the full traceback is still sent to the Prefect API, where the run's page shows it."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(
                handler.formatter, _WithoutTraceback
            ):
                handler.setFormatter(_WithoutTraceback(handler.formatter))
