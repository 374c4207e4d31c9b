"""What the review page shows, gathered from the run's results (no HTML here)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tasks.deliver.dailies.commands import Choice, Rerender, pick_for
from tasks.deliver.tables import final_action
from tasks.deliver.takes import take_frame, take_video
from tasks.schema.film_plan import Change, Cue, LintWarning
from tasks.schema.outcomes import CarriedFrame, SequenceResult, Take
from tasks.schema.record import DeliveryLoudness, Manifest

# Where each verdict kind sits on the page's traffic light.
GOOD_KINDS = frozenset({"ok", "narration", "silent"})
WARN_KINDS = frozenset({"misheard", "title_leak"})


def relative_url(path: Path, folder: Path) -> str:
    """`path` as a URL relative to `folder`: the page opens from disk or from a bucket."""
    relative = os.path.relpath(path.resolve(), folder.resolve())
    return quote(Path(relative).as_posix())


def tone(kind: str) -> str:
    """The badge class of a verdict kind: good, warn or bad."""
    if kind in GOOD_KINDS:
        return "good"
    return "warn" if kind in WARN_KINDS else "bad"


@dataclass(frozen=True)
class TakeView:
    """One take of a sequence as the page shows it: its file, its score, the run keeping it."""

    take: Take
    kept: bool
    picked: bool
    video: str
    last_frame: str
    pick: Choice | None
    """The run that keeps this take instead (None: it is the one kept)."""


@dataclass(frozen=True)
class SequenceView:
    """One sequence as the page shows it: media links, verdicts, loudness, the re-roll."""

    result: SequenceResult
    label: str
    name: str
    film_start_s: float
    video: str
    first_frame: str
    last_frame: str
    loudness_chart: str
    cached: bool | None
    carried: CarriedFrame | None
    rerender: Rerender

    @property
    def index(self) -> int:
        return self.result.sequence.index

    @property
    def kind(self) -> str:
        return self.result.attempts[-1].verdict.kind

    @property
    def takes(self) -> tuple[TakeView, ...]:
        """Every take side by side (none when the sequence had one); their files are in the
        film folder's `takes/` (`tasks.deliver.takes`), beside this page."""
        result, rerender = self.result, self.rerender
        return tuple(
            TakeView(
                take=take,
                kept=take.take == result.kept_take,
                picked=take.take == result.kept_take and result.picked,
                video=quote(take_video(self.index, take)),
                last_frame=quote(take_frame(self.index, take)),
                pick=None
                if take.take == result.kept_take
                else pick_for(Path(rerender.screenplay), rerender.run, self.index, take.take),
            )
            for take in result.takes
        )

    @property
    def action(self) -> str:
        """What was done about the dialogue, in words, re-renders first."""
        final = final_action(self.result.attempts[-1].verdict.action)
        renders = len(self.result.attempts)
        if renders == 1:
            return final
        kinds = " → ".join(a.verdict.kind for a in self.result.attempts)
        times = "once" if renders == 2 else f"{renders - 1} times"
        return f"re-rendered {times} ({kinds}), then {final}"


@dataclass(frozen=True)
class FilmView:
    """The whole page's content."""

    title: str
    animatic: bool
    film: str
    name: str
    subtitles: str | None
    loudness: DeliveryLoudness | None
    duration_s: float
    sequences: tuple[SequenceView, ...]
    warnings: tuple[LintWarning, ...]
    changes: tuple[Change, ...]
    cues: tuple[Cue, ...]
    timeline_chart: str
    loudness_chart: str
    downloads: tuple[tuple[str, str, str], ...]
    record: Manifest


def clock(seconds: float) -> str:
    """`m:ss.s`, the way an editor reads a timecode at a glance."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:04.1f}"
