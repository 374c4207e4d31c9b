"""The terminal display of a run: stage lines and one progress bar per render."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


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
        self.progress.console.print(f"[bold]»[/bold] {text}", highlight=False)

    def render_progress(self, label: str, value: int, maximum: int) -> None:
        self.progress.update(self._bar(label), completed=value, total=max(maximum, 1))

    def render_done(self, label: str, detail: str) -> None:
        bar = self._bar(label)
        self.progress.update(bar, completed=1, total=1, detail=detail)
