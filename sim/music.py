"""The animatic's score cue: a seeded bed of the key's tonic triad pulsed at the tempo."""

from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from sim.graph import MusicSpec
from sim.speech import SAMPLE_RATE

_NOTES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_CODECS: dict[str, list[str]] = {
    "mp3": ["-c:a", "libmp3lame", "-q:a", "2"],
    "flac": ["-c:a", "flac"],
    "opus": ["-c:a", "libopus", "-b:a", "128k"],
}


class MusicError(RuntimeError):
    """The cue could not be encoded."""


def tonic_triad(keyscale: str) -> tuple[float, float, float]:
    """Frequencies (Hz, around A3) of the root, third and fifth of e.g. ``"E minor"``."""
    parts = keyscale.strip().split()
    name = parts[0] if parts else "C"
    semitone = _NOTES.get(name[:1].upper(), 0)
    semitone += name[1:].count("#") - name[1:].count("b")
    minor = len(parts) > 1 and parts[1].lower().startswith("min")
    root = 220.0 * 2 ** ((semitone - 9) / 12)
    third = root * 2 ** ((3 if minor else 4) / 12)
    return root, third, root * 2 ** (7 / 12)


def music_bed(spec: MusicSpec) -> np.ndarray:
    """Stereo float32 of exactly ``spec.seconds`` at 48 kHz."""
    count = round(spec.seconds * SAMPLE_RATE)
    t = np.arange(count, dtype=np.float64) / SAMPLE_RATE
    rng = random.Random(spec.seed)
    root, third, fifth = tonic_triad(spec.keyscale)
    pad = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f in (root / 2, third, fifth))
    beat = 60.0 / max(spec.bpm, 1)
    phase = (t % beat) / beat
    pulse = np.exp(-6.0 * phase)
    # A seeded arpeggio over the triad, one note per beat, as a triangle wave.
    notes = [root, third, fifth, root * 2]
    pattern = [rng.choice(notes) for _ in range(8)]
    step = (t // beat).astype(np.int64) % len(pattern)
    freq = np.asarray(pattern)[step]
    triangle = 2 * np.abs(2 * ((freq * t) % 1.0) - 1) - 1
    left = 0.12 * pad + 0.25 * triangle * pulse
    right = 0.12 * pad + 0.22 * triangle * np.roll(pulse, int(0.01 * SAMPLE_RATE))
    fade = np.minimum(1.0, np.minimum(t / 0.05, (spec.seconds - t) / 0.05))
    return (np.stack([left, right], axis=1) * fade[:, None]).astype(np.float32)


def render_music(spec: MusicSpec, out: Path) -> None:
    """Encode the bed to ``out`` (mp3, flac or opus by ``spec.extension``), 48 kHz stereo."""
    with tempfile.TemporaryDirectory(prefix="cue-") as scratch:
        wav = Path(scratch) / "bed.wav"
        soundfile.write(wav, music_bed(spec), SAMPLE_RATE, subtype="PCM_16")
        codec = _CODECS.get(spec.extension, _CODECS["flac"])
        args = ["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-i", str(wav), *codec]
        args += ["-ar", str(SAMPLE_RATE), "-ac", "2", str(out)]
        result = subprocess.run(args, capture_output=True, check=False)
        if result.returncode != 0:
            raise MusicError(result.stderr.decode(errors="replace")[-2000:])
