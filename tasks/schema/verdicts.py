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
    "wrong_voice",
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


class CutEvidence(BaseModel):
    """What decides whether a line was cut by its segment's end."""

    gap_s: float = Field(description="segment end minus the line's last heard word's end")
    speech_at_end: bool | None = Field(
        default=None, description="sound at the segment's end is speech; None: not measured"
    )
    tail_heard: bool = Field(description="the line's last words were heard (compared by sound)")


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
    cut: CutEvidence | None = None
    voice_similarity: float | None = Field(
        default=None, description="to the character's reference voice (cast members only)"
    )
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
    """How to render the sequence again: a new seed, and longer segments where lines were cut
    or have less room than the duration rule gives them."""

    attempt: int
    reroll_seed: bool = True
    segment_seconds: dict[int, float] = Field(default_factory=dict)

    def describe(self, seed: int, added_frames: int) -> str:
        """What the re-render changes, once the plan has applied this advice."""
        length = f"{added_frames} frames longer" if added_frames > 0 else "same length"
        return f"new seed {seed}; {length}"


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
