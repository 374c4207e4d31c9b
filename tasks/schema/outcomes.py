"""What each stage made: renders, checks, finished sequences, cues, the cut, the film folder.

Small references and figures only: media bytes stay in the store (`MediaRef`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.schema.delivery import MasterKind
from tasks.schema.film_plan import Cue, FilmPlan, Sequence
from tasks.schema.record import CostEntry, DeliveryLoudness, Manifest
from tasks.schema.refs import MediaRef
from tasks.schema.schedule import ScheduleReport
from tasks.schema.verdicts import SequenceVerdict

Transitions = Literal["cut", "dissolve"]


class RenderedSequence(BaseModel):
    """A finished sequence render in the media store, and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    video: MediaRef
    frames: int
    seconds: float
    seed: int
    server: str
    gpu_seconds: float
    last_frame: MediaRef | None = None
    """Its exact last frame, taken as the render arrived (None in renders cached before
    reelflow took it then: `tasks.render.last_frame_of` takes it on demand)."""


class Loudness(BaseModel):
    """A measured sequence: integrated loudness, true peak, duration."""

    integrated_lufs: float
    true_peak_dbtp: float
    duration_s: float


class FinishedSequence(BaseModel):
    """A sequence ready for the cut: the verdict's edits applied, loudness evened out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    video: MediaRef
    seconds: float
    edits: tuple[str, ...]
    gain_db: float
    gain_reason: str
    before: Loudness
    after: Loudness


class Drift(BaseModel):
    """How a carried frame's colour and contrast moved away from its chain's keyframe."""

    channel_shift: tuple[float, float, float]
    contrast_ratio: float
    score: float


class CarriedFrame(BaseModel):
    """A carried-forward frame and how far it drifted from its chain's keyframe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    into_sequence: int
    frame: MediaRef
    drift: Drift


class Attempt(BaseModel):
    """One render of a sequence and what the dialogue check made of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int
    frames: int
    verdict: SequenceVerdict


class TakeScore(BaseModel):
    """One take's score (0 worst, 1 best) and the parts it is made of (None: not measured).

    `tasks.takes` documents how each part is measured and weighed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    total: float
    dialogue: float | None = None
    voice: float | None = None
    continuity: float | None = None
    loudness: float | None = None


class Take(BaseModel):
    """One candidate render of a sequence, what was measured on it and its score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    take: int
    seed: int
    video: MediaRef
    server: str
    gpu_seconds: float
    verdict: str
    heard: str
    drift: float | None
    lufs: float
    true_peak_dbtp: float
    score: TakeScore


class SequenceResult(BaseModel):
    """A sequence as it ends up in the film: its plan, renders, verdicts and finished file.

    `takes` lists every candidate when more than one was rendered (none: a single take), and
    `kept_take` the one carried forward and cut: the best-scored, or the one `picked` by hand.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: Sequence
    rendered: RenderedSequence
    attempts: tuple[Attempt, ...]
    finished: FinishedSequence
    takes: tuple[Take, ...] = ()
    kept_take: int = 0
    picked: bool = False


class ChainOutcome(BaseModel):
    """What one chain rendered, what it carried, and where it stopped if it failed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: int
    keyframe: MediaRef | None
    sequences: tuple[SequenceResult, ...]
    carried: tuple[CarriedFrame, ...]
    failed_sequence: int | None = None
    failure: str | None = None


class Casting(BaseModel):
    """One cast member's references: the portrait and voice every sequence keeps to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    portrait: MediaRef | None = None
    portrait_origin: Literal["screenplay", "generated", "none"] = "none"
    voice: MediaRef | None = None
    voice_origin: Literal["screenplay", "audition", "none"] = "none"
    audition: str = Field("", description="what the ASR heard in the audition the voice came from")


class VoiceTake(BaseModel):
    """A character's words cut out of an audition: a voice reference, and what was heard."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    voice: MediaRef | None = None
    heard: str = ""
    kind: str = ""
    seconds: float = 0.0


class Cast(BaseModel):
    """The film's cast as made: each member's portrait and voice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: tuple[Casting, ...] = ()

    def of(self, name: str | None) -> Casting | None:
        return next((m for m in self.members if m.name == name), None)

    def voices(self) -> dict[str, MediaRef]:
        return {m.name: m.voice for m in self.members if m.voice is not None}


class ChainStart(BaseModel):
    """A chain's start image (none: text-to-video), or why there is none to start from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: int
    keyframe: MediaRef | None = None
    failure: str | None = None


class Footage(BaseModel):
    """Every chain as rendered, and the plan as it was finally rendered (a re-render that
    needed more room lengthened its sequence)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: FilmPlan
    chains: tuple[ChainOutcome, ...]

    @property
    def sequences(self) -> list[SequenceResult]:
        """Every finished sequence, in film order."""
        return sorted(
            (r for chain in self.chains for r in chain.sequences), key=lambda r: r.sequence.index
        )

    @property
    def clips(self) -> list[MediaRef]:
        """The files cut into the film: each sequence after the check and normalize."""
        return [r.finished.video for r in self.sequences]

    @property
    def measured_seconds(self) -> list[float]:
        return [r.finished.seconds for r in self.sequences]


class RenderedCue(BaseModel):
    """A finished cue render in the media store, and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    audio: MediaRef
    seconds: float
    seed: int
    server: str
    gpu_seconds: float
    cached: bool = False


class ScoreResult(BaseModel):
    """The assembled score, the cues it was built from, and their renders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: MediaRef
    duration_s: float
    cues: tuple[Cue, ...]
    renders: tuple[RenderedCue, ...]


class SpokenLine(BaseModel):
    """A scripted line where the delivered film speaks it: the script's words, film seconds.

    timed_by: `asr` (the span the dialogue check heard the line's words at) or `plan` (the
    line's planned window, where nobody listened: the dialogue check was off).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int
    speaker: str
    text: str
    start_s: float
    end_s: float
    timed_by: Literal["asr", "plan"]


class FilmFile(BaseModel):
    """The verified distribution film at its delivery loudness, and what was made beside it:
    the master, the dialogue and music stems, the copy with burnt-in subtitles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    master: Path | None
    duration_s: float
    sequence_seconds: tuple[float, ...]
    transitions: Transitions
    score_gain: float
    scored: bool
    master_kind: MasterKind = "none"
    loudness: DeliveryLoudness | None = None
    lines: tuple[SpokenLine, ...] = ()
    dialogue_stem: Path | None = None
    music_stem: Path | None = None
    subtitled: Path | None = None
    picture: str = ""
    """Whether the picture was stream-copied from the sequences or re-encoded, and why."""


class CutFilm(BaseModel):
    """The verified film (and what was made beside it) in the media store, and what was cut."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    film: MediaRef
    master: MediaRef | None
    file: FilmFile
    dialogue_stem: MediaRef | None = None
    music_stem: MediaRef | None = None
    subtitled: MediaRef | None = None


class Deliverables(BaseModel):
    """Where each deliverable of one film was written, under which names.

    `name` is the film's own (`TITLE_v001`), `sequence_names` each sequence file's
    (`TITLE_SEQ0010_v001`); `timelines` holds every timeline format by key (`otio`, `fcpxml`,
    `xml`, `edl`), `timeline` the OpenTimelineIO one of them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    folder: Path
    cut: FilmFile
    name: str
    film: Path
    master: Path | None
    score: Path | None
    sequences: tuple[Path, ...]
    sequence_names: tuple[str, ...]
    timeline: Path
    timelines: dict[str, Path]
    subtitles: dict[str, Path]
    subtitled: Path | None
    dialogue_stem: Path | None
    music_stem: Path | None
    contact_sheet: Path
    manifest: Path
    record: Manifest
    report: Path


class Shared(BaseModel):
    """Where the film can be opened from anywhere, if anywhere."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    film: str | None = None
    review: str | None = None
    contact_sheet: str | None = None
    keyframes: tuple[str, ...] = ()
    files: dict[str, str] = Field(
        default_factory=dict, description="path in the film folder -> a link that opens it"
    )
    note: str = ""


class FilmResult(BaseModel):
    """What a film run produced and what it cost: the flow's result and the end report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    folder: str
    film: str
    review: str
    plan: FilmPlan
    score: ScoreResult | None
    schedule: ScheduleReport
    duration_s: float
    animatic: bool
    chains: tuple[ChainOutcome, ...]
    prompts: int
    gpu_seconds: float
    shared: Shared = Shared()
    loudness: DeliveryLoudness | None = None
    cost: CostEntry | None = None
