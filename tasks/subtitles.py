"""Subtitles of the film: SRT and WebVTT with the screenplay's words at the spoken times.

A cue is one scripted line: the script's words (not what the ASR heard), timed in film
seconds from the ASR's word timestamps (the caller maps those to film time). Each cue is
wrapped to at most 42 characters a line and 2 lines, the broadcast norm; a line too long for
two rows is shown as consecutive cues that share its time in proportion to their length.

Speakers: WebVTT carries the name in a voice tag (`<v ANA>`), which players show or style
and which is not counted in the line width. SRT has no such field, so the name opens the
cue's first row as `ANA: ` (the usual convention of subtitles for the hard of hearing);
`speaker_names=False` leaves it out.

SRT is written with the `srt` library, WebVTT with `webvtt-py`; both escape nothing that
reelflow has to hand-format except WebVTT's three reserved characters (& < >).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import srt
import webvtt
from pydantic import BaseModel, ConfigDict

from tasks.errors import ReelflowError
from tasks.runtime.files import write_atomic
from tasks.schema.outcomes import SpokenLine

MAX_LINE_CHARS = 42
MAX_LINES = 2
_VTT_RESERVED = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


class SubtitleError(ReelflowError):
    """The cues cannot be written as subtitles."""


class SubtitleCue(BaseModel):
    """One scripted line at its place in the film: seconds from the film's first frame."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_s: float
    end_s: float
    speaker: str
    text: str


CueLike = SubtitleCue | tuple[float, float, str, str]


def subtitle_cues(cues: Iterable[CueLike]) -> list[SubtitleCue]:
    """`cues` as checked SubtitleCues in film order; a bad cue is named with its fix."""
    checked = []
    for number, cue in enumerate(cues, start=1):
        if not isinstance(cue, SubtitleCue):
            start_s, end_s, speaker, text = cue
            cue = SubtitleCue(start_s=start_s, end_s=end_s, speaker=speaker, text=text)
        if not cue.text.strip():
            raise SubtitleError(f"cue {number} has no words; drop it or give it its line")
        if cue.start_s < 0 or cue.end_s <= cue.start_s:
            raise SubtitleError(
                f"cue {number} ({cue.text[:30]!r}) runs from {cue.start_s:.3f} s to"
                f" {cue.end_s:.3f} s; a cue must start at 0 s or later and end after it starts"
            )
        checked.append(cue)
    return sorted(checked, key=lambda c: (c.start_s, c.end_s))


def subtitle_cues_of(lines: Iterable[SpokenLine]) -> list[SubtitleCue]:
    """The film's spoken lines (`tasks.spoken_lines`) as cues: speaker, script words, times."""
    return subtitle_cues(
        SubtitleCue(start_s=line.start_s, end_s=line.end_s, speaker=line.speaker, text=line.text)
        for line in lines
    )


def _balanced(words: str, width: int) -> list[str]:
    """`words` on one row if it fits, else two rows as even as the word breaks allow."""
    if len(words) <= width:
        return [words]
    tokens = words.split(" ")
    best: list[str] | None = None
    for cut in range(1, len(tokens)):
        top, bottom = " ".join(tokens[:cut]), " ".join(tokens[cut:])
        if (
            len(top) <= width
            and len(bottom) <= width
            and (best is None or max(len(top), len(bottom)) < max(map(len, best)))
        ):
            best = [top, bottom]
    return best if best is not None else textwrap.wrap(words, width)


def wrap_cue_text(
    text: str, *, width: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES
) -> list[list[str]]:
    """`text` as screens of at most `max_lines` rows of at most `width` characters."""
    rows = textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)
    screens = [rows[i : i + max_lines] for i in range(0, len(rows), max_lines)]
    # Rows filled greedily leave a long top and a stub below; even them out per screen.
    return [_balanced(" ".join(screen), width) if max_lines == 2 else screen for screen in screens]


def _timed_screens(
    cue: SubtitleCue, screens: Sequence[Sequence[str]]
) -> list[tuple[float, float, list[str]]]:
    """Share the cue's span among its screens in proportion to their characters."""
    sizes = [sum(len(row) for row in screen) for screen in screens]
    total = sum(sizes)
    timed = []
    start = cue.start_s
    for size, screen in zip(sizes, screens, strict=True):
        end = start + (cue.end_s - cue.start_s) * size / total
        timed.append((start, end, list(screen)))
        start = end
    timed[-1] = (timed[-1][0], cue.end_s, timed[-1][2])
    return timed


def srt_document(cues: Iterable[CueLike], *, speaker_names: bool = True) -> str:
    """The cues as an SRT file's text (speaker as a `NAME: ` prefix)."""
    items = []
    for cue in subtitle_cues(cues):
        # A row holding "-->" reads as a timing line to some SRT parsers.
        words = cue.text.replace("-->", "->")
        shown = f"{cue.speaker}: {words}" if speaker_names and cue.speaker else words
        for start, end, rows in _timed_screens(cue, wrap_cue_text(shown)):
            items.append(
                srt.Subtitle(
                    index=len(items) + 1,
                    start=timedelta(milliseconds=round(start * 1000)),
                    end=timedelta(milliseconds=round(end * 1000)),
                    content="\n".join(rows),
                )
            )
    text: str = srt.compose(items, reindex=False)
    return text


def _vtt_escaped(text: str) -> str:
    return "".join(_VTT_RESERVED.get(char, char) for char in text)


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def vtt_document(cues: Iterable[CueLike], *, speaker_names: bool = True) -> str:
    """The cues as a WebVTT file's text (speaker as a `<v NAME>` voice tag)."""
    captions = []
    for cue in subtitle_cues(cues):
        voice = f"<v {_vtt_escaped(cue.speaker)}>" if speaker_names and cue.speaker else ""
        for start, end, rows in _timed_screens(cue, wrap_cue_text(cue.text)):
            lines = [_vtt_escaped(row) for row in rows]
            lines[0] = voice + lines[0]
            captions.append(
                webvtt.Caption(
                    start=_vtt_time(start),
                    end=_vtt_time(end),
                    text=lines,
                    identifier=str(len(captions) + 1),
                )
            )
    text: str = webvtt.WebVTT(captions=captions).content
    return text


def write_subtitles(
    cues: Iterable[CueLike], folder: Path, stem: str, *, speaker_names: bool = True
) -> dict[str, Path]:
    """Write `<folder>/<stem>.srt` and `<stem>.vtt`; returns them by key (`srt`, `vtt`)."""
    checked = subtitle_cues(cues)
    return {
        "srt": write_atomic(
            folder / f"{stem}.srt",
            srt_document(checked, speaker_names=speaker_names).encode("utf-8"),
        ),
        "vtt": write_atomic(
            folder / f"{stem}.vtt",
            vtt_document(checked, speaker_names=speaker_names).encode("utf-8"),
        ),
    }
