"""The film's record: `manifest.json`, everything needed to reproduce or audit the film.

The same typed record feeds the manifest file, the end report and the dailies page, so none
of them reads another back from disk.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FilmEntry(_Record):
    file: str
    master: str | None
    duration_s: float
    transitions: str
    score_gain: float


class TemplateEntry(_Record):
    file: str
    sha256: str


class KeyframeEntry(_Record):
    chain: int
    seed: int
    source_image: str | None


class SequenceEntry(_Record):
    index: int
    seed: int
    frames: int
    seconds: float
    server: str
    gpu_seconds: float
    cached: bool
    sha256: str


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


class CacheHits(_Record):
    sequences: int
    cues: int


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

    def cached(self, sequence: int) -> bool | None:
        """Whether a sequence came from the cache (None: not in this record)."""
        return next((s.cached for s in self.sequences if s.index == sequence), None)
