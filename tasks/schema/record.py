"""The film's record: `manifest.json`, everything needed to reproduce or audit the film.

The same typed record feeds the manifest file, the end report and the dailies page, so none
of them reads another back from disk.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeliveryLoudness(_Record):
    """The final mix against its delivery profile, measured before and after its correction.

    `measured_on` says what the profile judges: the whole programme, or (a dialogue-gated
    profile) the mix while someone speaks. Loudness in LUFS, true peak in dBTP, range in LU.
    """

    profile: str
    target_lufs: float
    tolerance_lu: float
    ceiling_dbtp: float
    measured_on: Literal["programme", "dialogue"]
    outcome: Literal["within", "gain", "gain_and_limit", "cannot"]
    gain_db: float
    limiter_ceiling_dbtp: float | None
    integrated_before_lufs: float
    integrated_after_lufs: float
    dialogue_before_lufs: float | None
    dialogue_after_lufs: float | None
    true_peak_before_dbtp: float
    true_peak_after_dbtp: float
    loudness_range_lu: float
    meets_profile: bool
    reason: str

    @property
    def judged_before_lufs(self) -> float:
        """The loudness the profile judged before the correction."""
        if self.measured_on == "dialogue" and self.dialogue_before_lufs is not None:
            return self.dialogue_before_lufs
        return self.integrated_before_lufs

    @property
    def judged_after_lufs(self) -> float:
        """The loudness the profile judges in the delivered film."""
        if self.measured_on == "dialogue" and self.dialogue_after_lufs is not None:
            return self.dialogue_after_lufs
        return self.integrated_after_lufs


class FilmEntry(_Record):
    file: str
    master: str | None
    duration_s: float
    transitions: str
    score_gain: float
    name: str = ""
    master_kind: str = "none"
    subtitled: str | None = None
    subtitles: list[str] = []
    stems: list[str] = []
    timelines: dict[str, str] = {}
    picture: str = ""


class TemplateEntry(_Record):
    file: str
    sha256: str


class KeyframeEntry(_Record):
    chain: int
    seed: int
    source_image: str | None


class TakeEntry(_Record):
    """One candidate of a sequence with several takes, and its score."""

    take: int
    seed: int
    sha256: str
    verdict: str
    drift: float | None
    lufs: float
    score: float
    parts: dict[str, float | None]


class SequenceEntry(_Record):
    index: int
    name: str = ""
    version: int = 1
    seed: int
    frames: int
    seconds: float
    server: str
    gpu_seconds: float
    cached: bool
    sha256: str
    takes: list[TakeEntry] = []
    kept_take: int = 0
    picked: bool = False


class CueEntry(_Record):
    index: int
    seed: int
    start_s: float
    zone_s: float
    tail_s: float
    section: str
    server: str
    gpu_seconds: float
    cached: bool
    sha256: str


class GpuEntry(_Record):
    prompts: int
    gpu_seconds: float
    per_server: dict[str, int]
    queue_seconds: float = 0.0
    """Seconds prompts waited in servers' queues: not GPU time, but not free either."""


class CacheHits(_Record):
    sequences: int
    cues: int


class StageCost(_Record):
    """One GPU stage: what was estimated before the run, and what it spent."""

    stage: str
    planned_s: float
    """The estimate of the whole stage before any GPU work (nothing assumed cached)."""
    renders: int
    """Prompts this run actually sent for the stage (cached renders send none)."""
    estimated_s: float
    """The estimate of those renders alone: what `spent_s` is compared with."""
    spent_s: float


class CostEntry(_Record):
    """GPU time estimated beside GPU time spent, per stage, and how far off the estimate was."""

    stages: list[StageCost]
    planned_s: float
    estimated_s: float
    spent_s: float
    error_pct: float | None
    """(estimated - spent) / spent of the renders that ran; None when nothing ran."""
    rates: str
    """Where the rates came from: the defaults, or learned from this server's renders."""


class CastEntry(_Record):
    """One cast member's references as delivered (paths inside the film folder)."""

    name: str
    portrait: str | None
    portrait_origin: str
    voice: str | None
    voice_origin: str
    audition: str = ""


class VoiceEntry(_Record):
    """How close one spoken line came to its character's reference voice."""

    sequence: int
    character: str
    line: str
    voice_similarity: float | None
    verdict: str


class Manifest(_Record):
    """What was rendered, on what, from which templates and models, and what it cost."""

    title: str
    animatic: bool
    mode: str
    film: FilmEntry
    servers: list[str]
    templates: dict[str, TemplateEntry]
    models: dict[str, Any]
    keyframes: list[KeyframeEntry]
    sequences: list[SequenceEntry]
    score_source: str
    cues: list[CueEntry]
    timings_s: dict[str, float]
    gpu: GpuEntry
    cache_hits: CacheHits
    loudness: DeliveryLoudness | None = None
    spoken_lines: int = 0
    cost: CostEntry | None = None
    cast: list[CastEntry] = []
    voices: list[VoiceEntry] = []

    def cached(self, sequence: int) -> bool | None:
        """Whether a sequence came from the cache (None: not in this record)."""
        return next((s.cached for s in self.sequences if s.index == sequence), None)
