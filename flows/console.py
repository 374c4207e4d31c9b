"""The terminal display of a run: stage lines and one progress bar per render."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from tasks.schema.outcomes import RenderedCue, SequenceResult


class RichSink:
    """A rich progress display fed by ComfyUI's websocket progress events."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
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
