"""The animatic's soundtrack: scripted dialogue spoken by espeak-ng inside its segment.

Like LTX, each line starts shortly after its segment begins and is cut off hard at the
segment's end when it does not fit; each render's speech level carries a seeded offset.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile

from sim.graph import Segment

SAMPLE_RATE = 48_000
LINE_START_S = 0.3
LEVEL_SPREAD_DB = 20.0
ROOM_TONE_DBFS = -66.0
# The line may escape its own quotes and backslashes with a backslash, as reelflow writes it.
_LINE = re.compile(r"([A-Z][A-Z0-9'\-]*(?: [A-Z][A-Z0-9'\-]*)*) says [\"“]((?:[^\"”\\]|\\.)+)[\"”]")
_ESCAPED = re.compile(r"\\(.)")
_VOICES = ("m1", "m3", "m7", "f1", "f2", "f3", "f4", "m2", "f5", "m4")
_SALAD = (
    "lantern", "copper", "sideways", "orbit", "marmalade", "quietly", "basalt", "velvet",
    "tangent", "umbrella", "meridian", "gravel", "often", "paper", "thistle", "neon",
)  # fmt: skip


class SpeechError(RuntimeError):
    """espeak-ng could not synthesise a line."""


@dataclass(frozen=True)
class Line:
    """One spoken line: who says what."""

    speaker: str
    text: str


def dialogue_lines(segment_prompt: str) -> list[Line]:
    """Every ``NAME says "line"`` in a segment prompt, in order."""
    return [
        Line(m.group(1), _ESCAPED.sub(r"\1", m.group(2)).strip())
        for m in _LINE.finditer(segment_prompt)
    ]


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def voice_for(speaker: str) -> tuple[str, int]:
    """A deterministic espeak-ng voice variant and pitch for a character name."""
    key = _stable_int(speaker.upper())
    return f"en-us+{_VOICES[key % len(_VOICES)]}", 25 + (key >> 8) % 50


def speak(text: str, speaker: str) -> np.ndarray:
    """Mono float32 speech at 48 kHz, peak-normalised to 1.0."""
    voice, pitch = voice_for(speaker)
    # Text goes through stdin, never argv, so nothing in it can be read as an option.
    result = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-p", str(pitch), "-s", "165", "--stdin"],
        input=text.encode(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout:
        raise SpeechError(result.stderr.decode(errors="replace").strip() or "no audio")
    samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    count = round(len(samples) * SAMPLE_RATE / rate)
    resampled = np.interp(
        np.linspace(0, len(samples) - 1, count), np.arange(len(samples)), samples
    ).astype(np.float32)
    peak = float(np.max(np.abs(resampled))) or 1.0
    return resampled / peak


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
) -> np.ndarray:
    """Stereo float32 at 48 kHz lasting exactly ``total_frames / fps``."""
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
            clip = speak(line.text, line.speaker) * gain
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
