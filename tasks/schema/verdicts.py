"""What the dialogue check decides about a rendered sequence: verdicts per line and in all."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

VerdictKind = Literal[
    "ok",
    "unchecked",
    "misheard",
    "truncated",
    "mismatch",
    "missing",
    "silent",
    "narration",
    "word_salad",
    "title_leak",
]


Action = Literal["keep", "keep_with_warning", "rerender", "mute_sequence", "mute_range"]


class ScriptedLine(BaseModel):
    """One line the script expects, in the segment (scene) of the sequence that speaks it."""

    segment: int = Field(ge=0)
    character: str = ""
    line: str


class TimeRange(BaseModel):
    """A stretch of the sequence's timeline, in seconds."""

    start: float
    end: float


class LineVerdict(BaseModel):
    """How one scripted line came out."""

    segment: int
    character: str
    kind: VerdictKind
    expected: str
    heard: str
    wer: float | None
    missing_words: list[str] = Field(default_factory=list)
    span: TimeRange | None = None
    action: Action


class SpeechVerdict(BaseModel):
    """Speech nobody scripted: a leaked title card, narration or word salad."""

    kind: Literal["title_leak", "narration", "word_salad"]
    expected: str = ""
    heard: str
    wer: float | None = None
    overlap: float | None = Field(default=None, description="share of words found in the scene")
    span: TimeRange
    action: Action


class RerenderAdvice(BaseModel):
    """How to render the sequence again: a new seed, and longer segments where lines were cut."""

    attempt: int
    reroll_seed: bool = True
    segment_seconds: dict[int, float] = Field(default_factory=dict)


class SequenceVerdict(BaseModel):
    """Everything the dialogue check decided about one rendered sequence."""

    kind: VerdictKind
    action: Action
    silent: bool
    heard: str
    lines: list[LineVerdict] = Field(default_factory=list)
    speech: list[SpeechVerdict] = Field(default_factory=list)
    mute_ranges: list[TimeRange] = Field(default_factory=list)
    rerender: RerenderAdvice | None = None
    warnings: list[str] = Field(default_factory=list)
