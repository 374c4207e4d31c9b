"""The film plan: sequences, chains, cues and warnings, as plain data (the render contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.schema.delivery import DEFAULT_PROFILE, ProfileName


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlannedLine(_Data):
    """A scripted line placed in time inside its sequence."""

    scene_index: int
    character: str
    line: str
    words: int
    start_s: float
    end_s: float


class Segment(_Data):
    """One scene's part of a sequence: its own prompt over a run of video frames."""

    scene_index: int
    part: int = 0
    frames: int
    prompt: str


class Keyframe(_Data):
    """The start image of a chain: the author's image, or one generated from a prompt (with
    the portraits of the cast on screen in its first scene, when there are any)."""

    source_image: str | None = None
    prompt: str | None = None
    seed: int
    portraits: tuple[str, ...] = ()


class Audition(_Data):
    """A short render of one character saying their first line: their voice reference."""

    line: str
    seconds: float
    seed: int


class CastMember(_Data):
    """One character given one face and one voice for the whole film."""

    name: str
    description: str
    portrait: str | None = Field(None, description="the author's portrait file, if any")
    voice: str | None = Field(None, description="the author's voice clip, if any")
    portrait_prompt: str
    portrait_seed: int
    audition: Audition | None = Field(None, description="how a voice is made, if none given")


class Sequence(_Data):
    """One Prompt Relay pass: joint audio and video for one or more scenes."""

    index: int
    chain: int
    position: int
    segments: tuple[Segment, ...]
    frames: int
    fps: int
    audio_latent_frames: int
    wrapper_prompt: str
    negative_prompt: str
    seed: int
    start_s: float
    hard_cut_before: bool
    lines: tuple[PlannedLine, ...]
    voice_of: str | None = None
    """The cast member whose reference voice this sequence speaks in (its dominant speaker)."""
    takes: int = 1
    """Candidates rendered (take 0 with `seed`, take k with a seed derived from it)."""
    pick: int | None = None
    """The take a person chose to keep; None: the best-scored one."""

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    @property
    def scene_indices(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(segment.scene_index for segment in self.segments))

    @property
    def segment_prompts(self) -> tuple[str, ...]:
        return tuple(segment.prompt for segment in self.segments)

    @property
    def segment_frames(self) -> tuple[int, ...]:
        return tuple(segment.frames for segment in self.segments)


class Chain(_Data):
    """Sequences linked by carry-forward: rendered strictly in order from one keyframe."""

    index: int
    sequences: tuple[int, ...]
    keyframe: Keyframe


class Cue(_Data):
    """One generated piece of score covering a zone of the film, plus a crossfade tail."""

    index: int
    first_scene: int
    start_s: float
    zone_s: float
    tail_s: float
    seed: int
    beat: str
    dynamics: str
    section: str
    palette: str
    key: str
    bpm: int
    theme: str

    @property
    def duration_s(self) -> float:
        return self.zone_s + self.tail_s

    @property
    def end_s(self) -> float:
        return self.start_s + self.zone_s


class LintWarning(_Data):
    """A production rule the screenplay breaks, with where and how to fix it."""

    code: str
    location: str
    message: str
    fix: str


class Change(_Data):
    """What the opt-in fixer changed in the screenplay."""

    location: str
    description: str


class Estimate(_Data):
    """Expected GPU time, from configurable rates."""

    keyframes_s: float
    sequences_s: float
    cues_s: float

    @property
    def total_s(self) -> float:
        return self.keyframes_s + self.sequences_s + self.cues_s


class FilmPlan(_Data):
    """Everything the renderer will do, decided before any GPU second is spent."""

    title: str
    fps: int
    width: int
    height: int
    mode: Literal["fast", "quality"]
    frame_budget: int
    sequences: tuple[Sequence, ...]
    chains: tuple[Chain, ...]
    cues: tuple[Cue, ...]
    score_source: Literal["screenplay", "default", "none"]
    warnings: tuple[LintWarning, ...]
    changes: tuple[Change, ...]
    estimate: Estimate
    cast: tuple[CastMember, ...] = ()

    def member(self, name: str) -> CastMember | None:
        return next((m for m in self.cast if m.name == name), None)

    delivery_profile: ProfileName = DEFAULT_PROFILE

    @property
    def duration_s(self) -> float:
        return sum(sequence.seconds for sequence in self.sequences)

    def seconds_after(self, sequence: Sequence) -> float:
        """Output seconds its chain renders after `sequence` (the work waiting behind it)."""
        following = self.chains[sequence.chain].sequences[sequence.position + 1 :]
        return sum(self.sequences[index].seconds for index in following)
