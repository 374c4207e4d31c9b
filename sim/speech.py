"""The animatic's soundtrack: scripted dialogue spoken by espeak-ng inside its segment.

Like LTX, each line starts shortly after its segment begins and is cut off hard at the
segment's end when it does not fit; each render's speech level carries a seeded offset.
Who speaks with which voice is the caller's casting (``sim.voices.cast_voices``); without
one, each name keeps the fixed voice of earlier versions (``sim.voices.legacy_voice``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim.graph import Segment
from sim.lines import Line, dialogue_lines
from sim.voices import SAMPLE_RATE, SpeechError, Voice, legacy_voice, synthesise

__all__ = [
    "LINE_START_S", "SAMPLE_RATE", "Line", "SoundtrackFaults", "SpeechError", "dialogue_lines",
    "soundtrack", "speak", "speech_gain_db", "voice_for",
]  # fmt: skip

LINE_START_S = 0.3
LEVEL_SPREAD_DB = 20.0
ROOM_TONE_DBFS = -66.0
_SALAD = (
    "lantern", "copper", "sideways", "orbit", "marmalade", "quietly", "basalt", "velvet",
    "tangent", "umbrella", "meridian", "gravel", "often", "paper", "thistle", "neon",
)  # fmt: skip


def voice_for(speaker: str) -> tuple[str, int]:
    """The fixed espeak-ng voice variant and pitch earlier versions gave a name."""
    voice = legacy_voice(speaker)
    return voice.name, voice.pitch


def speak(text: str, speaker: str, voice: Voice | None = None) -> np.ndarray:
    """Mono float32 speech at 48 kHz, peak-normalised to 1.0 (``speaker``'s fixed voice
    unless ``voice`` is given)."""
    return synthesise(text, voice or legacy_voice(speaker))


def speech_gain_db(seed: int) -> float:
    """The seeded per-render level offset (0 to -20 dB), like LTX's loudness spread."""
    return -LEVEL_SPREAD_DB * random.Random(seed ^ 0x5EED).random()


def _place(track: np.ndarray, clip: np.ndarray, start: int, end: int) -> None:
    end = min(end, len(track))
    if start >= end:
        return
    usable = clip[: end - start]
    track[start : start + len(usable)] += usable


@dataclass(frozen=True)
class SoundtrackFaults:
    """Which model misbehaviours to imitate in this render."""

    narration: bool = False
    word_salad: bool = False
    title_card: str | None = None


def soundtrack(
    segments: tuple[Segment, ...],
    fps: float,
    total_frames: int,
    seed: int,
    faults: SoundtrackFaults | None = None,
    voices: Mapping[str, Voice] | None = None,
) -> np.ndarray:
    """Stereo float32 at 48 kHz lasting exactly ``total_frames / fps``; ``voices`` casts
    the speakers (a speaker it leaves out keeps its fixed voice)."""
    voices = voices or {}
    faults = faults or SoundtrackFaults()
    length = round(total_frames / fps * SAMPLE_RATE)
    rng = np.random.default_rng(seed & 0xFFFFFFFF)
    track = rng.normal(0.0, 10 ** (ROOM_TONE_DBFS / 20), length).astype(np.float32)
    gain = 10 ** ((-3.0 + speech_gain_db(seed)) / 20)
    cursor = 0
    for index, segment in enumerate(segments):
        begin = round(cursor / fps * SAMPLE_RATE)
        cursor += segment.frames
        end = min(round(cursor / fps * SAMPLE_RATE), length)
        start = begin + round(LINE_START_S * SAMPLE_RATE)
        lines = dialogue_lines(segment.prompt)
        for line in lines:
            clip = speak(line.text, line.speaker, voices.get(line.speaker)) * gain
            _place(track, clip, start, end)
            start += len(clip) + round(0.25 * SAMPLE_RATE)
        if lines:
            continue
        if faults.word_salad:
            words = random.Random(seed + index).sample(_SALAD, 6)
            _place(track, speak(" ".join(words), "NARRATOR") * gain, start, end)
        elif faults.narration:
            text = " ".join(segment.prompt.split()[:14])
            _place(track, speak(text, "NARRATOR") * gain, start, end)
    if faults.title_card:
        clip = speak(faults.title_card, "NARRATOR") * gain
        _place(track, clip, round(0.05 * SAMPLE_RATE), length)
    np.clip(track, -1.0, 1.0, out=track)
    return np.stack([track, track], axis=1)
