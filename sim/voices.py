"""Who speaks with which espeak-ng voice in a render: the palette and the casting rule.

LTX invents a voice on every render unless ``LTXVReferenceAudio`` gives it one, so the
simulator does the same:

* **Palette.** Six espeak-ng voices that do not sound alike (the team measured them with a
  speaker-embedding model): ``PALETTE``, spoken as ``espeak-ng -v en+f1 -p 60 -s 165``.
* **No reference.** Each speaking character takes a voice drawn from the palette by a
  generator seeded with the render's seed and the character's name (``voice_order``):
  the same seed gives the same voices, another seed usually another voice. Within one
  render, speakers (in order of their first line) take the first voice of their own
  order that no earlier speaker took, so two characters of one render never share a voice
  (with more than six speakers, voices repeat).
* **With a reference.** The sequence's dominant speaker (``sim.lines.dominant_speaker``)
  speaks with the reference's voice; the others keep their seeded voice unless it is
  the reference's, in which case they take their next one.

``legacy_voice`` is the fixed per-name voice of earlier versions; the simulator's faults
(narration, word salad, a title card) still speak with it, as does ``soundtrack`` when it
is given no casting (the labelled dialogue set renders that way).
"""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import soundfile

SAMPLE_RATE = 48_000
WORDS_PER_MINUTE = 165
_LEGACY_VARIANTS = ("m1", "m3", "m7", "f1", "f2", "f3", "f4", "m2", "f5", "m4")


class SpeechError(RuntimeError):
    """espeak-ng could not synthesise a line."""


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: the voice name (``en+f1``) and its pitch (0-99)."""

    name: str
    pitch: int

    @property
    def label(self) -> str:
        """How the log and the tests name it: ``en+f1 -p 60``."""
        return f"{self.name} -p {self.pitch}"


PALETTE: tuple[Voice, ...] = (
    Voice("en+f1", 60),
    Voice("en+f3", 55),
    Voice("en+f4", 30),
    Voice("en+m1", 40),
    Voice("en+m2", 70),
    Voice("en+m7", 35),
)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def legacy_voice(speaker: str) -> Voice:
    """The fixed voice earlier versions gave a name (used for the simulated faults)."""
    key = _stable_int(speaker.upper())
    return Voice(f"en-us+{_LEGACY_VARIANTS[key % len(_LEGACY_VARIANTS)]}", 25 + (key >> 8) % 50)


def voice_order(seed: int, speaker: str) -> list[Voice]:
    """The palette in the order a render with ``seed`` offers it to ``speaker``."""
    rng = random.Random(_stable_int(f"{seed}\x00{speaker}"))
    order = list(PALETTE)
    rng.shuffle(order)
    return order


def cast_voices(
    speakers: Iterable[str],
    seed: int,
    reference: Voice | None = None,
    dominant: str | None = None,
) -> dict[str, Voice]:
    """Each speaker's voice in one render (speakers in order of their first line)."""
    cast: dict[str, Voice] = {}
    taken: set[Voice] = set()
    if reference is not None and dominant is not None:
        cast[dominant] = reference
        taken.add(reference)
    for speaker in speakers:
        if speaker in cast:
            continue
        order = voice_order(seed, speaker)
        cast[speaker] = next((v for v in order if v not in taken), order[0])
        taken.add(cast[speaker])
    return cast


def synthesise(text: str, voice: Voice) -> np.ndarray:
    """Mono float32 speech at 48 kHz, peak-normalised to 1.0."""
    # Text goes through stdin, never argv, so nothing in it can be read as an option.
    args = ["espeak-ng", "--stdout", "-v", voice.name, "-p", str(voice.pitch)]
    args += ["-s", str(WORDS_PER_MINUTE), "--stdin"]
    result = subprocess.run(args, input=text.encode(), capture_output=True, check=False)
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
