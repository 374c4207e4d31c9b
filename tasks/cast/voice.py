"""Whose voice is this? Speaker embeddings for the cast's voice check, on the CPU.

The model is the GE2E voice encoder whose weights ship inside the `resemblyzer` wheel
(`resemblyzer/pretrained.pt`, 17 MB). Only that file is used: it is checked against a
pinned sha256, read without torch (`tasks.cast.checkpoint`) and run in numpy
(`tasks.cast.voice_encoder`), so nothing is downloaded and torch is never imported.

A line's voice matches its character when the cosine similarity of the two embeddings
reaches `SAME_VOICE_THRESHOLD`; `bench/voice_check.py` measures the cost per line.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.cast.checkpoint import CheckpointError, load_legacy_checkpoint
from tasks.cast.voice_encoder import SpeakerEncoder
from tasks.cast.voice_features import (
    RATE,
    mel_frames,
    normalize_level,
    partials,
    to_model_rate,
    trim_silences,
)
from tasks.errors import ReelflowError
from tasks.media import read_audio
from tasks.runtime.store import file_sha256

MODEL_PACKAGE = "resemblyzer"
# The wheel's declared dependencies (torch, librosa, webrtcvad) are not used: only its
# weights file is, so it is installed without them.
MODEL_PACKAGE_PIN = "resemblyzer==0.1.4"
INSTALL_HINT = f"pip install --no-deps --force-reinstall {MODEL_PACKAGE_PIN}"
WEIGHTS_FILE = "pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"

SAME_VOICE_THRESHOLD = 0.80
"""Cosine similarity at or above which a line is in its character's voice.

Calibrated by `python -m bench.voice_check --calibrate` on 12 espeak-ng voices (the
simulator's) x 4 lines against a 5 s reference per voice. Same voice: every line of 1.2 s
or more scored >= 0.81 (clean, AAC at 48 kHz, or cut by ASR word times); ~1 s cuts dipped to
0.77 (2 of 48 under the threshold). Different variants: median 0.68, 11 % at or above it,
all from voices that share a timbre (f1/f2/f5, m1/m3/m4). Near twins (one variant at
another pitch; f5, whose formants are f2's) mostly pass: the check tells timbres apart,
not pitches.
"""

MIN_SPEECH_S = 0.3
"""Less speech than this (after trimming silences) says too little about a voice."""


class VoiceCheckError(ReelflowError):
    """The voice check could not compare two voices."""


class VoiceModelInvalid(VoiceCheckError):
    """The speaker-embedding model is missing or its weights differ from the pinned file."""


class VoiceClipInvalid(VoiceCheckError):
    """An audio clip holds too little speech to tell whose voice it is."""


class VoiceMatch(BaseModel):
    """The verdict on one spoken line against its character's reference voice."""

    model_config = ConfigDict(frozen=True)

    similarity: float = Field(ge=-1.0, le=1.0)
    threshold: float
    verdict: Literal["same_voice", "wrong_voice"]


def bundled_weights() -> Path:
    """Where the pinned voice encoder weights are installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise VoiceModelInvalid(f"the voice-check model is not installed: {INSTALL_HINT}")
    return Path(spec.origin).parent / WEIGHTS_FILE


def verify_weights(path: Path) -> None:
    """Refuse a weights file that is not byte-identical to the pinned one."""
    if not path.is_file():
        raise VoiceModelInvalid(f"voice-check model file {path} is missing: {INSTALL_HINT}")
    digest = file_sha256(path)
    if digest != WEIGHTS_SHA256:
        raise VoiceModelInvalid(
            f"voice-check model file {path} has sha256 {digest}, expected {WEIGHTS_SHA256}: "
            f"the file was changed or damaged; reinstall it: {INSTALL_HINT}"
        )


_encoders: dict[Path, SpeakerEncoder] = {}
_encoders_lock = threading.Lock()


def load_voice_encoder(weights: Path | None = None) -> SpeakerEncoder:
    """The verified encoder for `weights` (default: the bundled file), loaded once per process."""
    path = (weights or bundled_weights()).resolve()
    with _encoders_lock:
        if path not in _encoders:
            verify_weights(path)
            try:
                state = load_legacy_checkpoint(path)["model_state"]
                _encoders[path] = SpeakerEncoder.from_state(state)
            except (CheckpointError, KeyError) as exc:
                raise VoiceModelInvalid(
                    f"voice-check model file {path} cannot be read ({exc}): {INSTALL_HINT}"
                ) from exc
        return _encoders[path]


def embed(samples: np.ndarray, rate: int, *, weights: Path | None = None) -> np.ndarray:
    """The unit-length 256-d embedding of the voice in `samples` (mono or (n, channels))."""
    speech = to_model_rate(np.asarray(samples), rate)
    if not np.all(np.isfinite(speech)):
        raise VoiceClipInvalid("the audio holds NaN or infinite samples; decode it again")
    speech = trim_silences(normalize_level(speech))
    if len(speech) < MIN_SPEECH_S * RATE or not np.any(speech):
        raise VoiceClipInvalid(
            f"the audio holds {len(speech) / RATE:.2f} s of speech, fewer than "
            f"{MIN_SPEECH_S} s; give a longer clip of the character speaking"
        )
    encoder = load_voice_encoder(weights)
    windows = partials(mel_frames(speech))
    # Equal-length windows run as one batch; a clip shorter than a window is its own.
    per_partial = encoder.embed_partials(np.stack(windows))
    mean = per_partial.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm == 0.0:
        raise VoiceClipInvalid("the encoder found no voice in the audio; give a clip of speech")
    return (mean / norm).astype(np.float32)


def embed_file(path: Path, *, weights: Path | None = None) -> np.ndarray:
    """The embedding of the voice in an audio or video file's first audio stream."""
    try:
        return embed(read_audio(path, rate=RATE, mono=True), RATE, weights=weights)
    except VoiceClipInvalid as exc:
        raise VoiceClipInvalid(f"{path}: {exc}") from exc


@functools.lru_cache(maxsize=64)
def reference_embedding(sha256: str, path: Path) -> np.ndarray:
    """The embedding of a stored reference voice (content `sha256`), computed once a process:
    every line of every sequence a cast member speaks is compared with it."""
    return embed_file(path)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (1.0: the same direction)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        raise VoiceCheckError("cannot compare an all-zero embedding")
    # Clamped: float32 rounding can put identical embeddings a hair above 1.
    return min(1.0, max(-1.0, float(np.dot(a, b) / norm)))


def match_voice(
    line: np.ndarray, reference: np.ndarray, threshold: float = SAME_VOICE_THRESHOLD
) -> VoiceMatch:
    """The verdict on a line's embedding against its character's reference embedding."""
    score = similarity(line, reference)
    verdict: Literal["same_voice", "wrong_voice"] = (
        "same_voice" if score >= threshold else "wrong_voice"
    )
    return VoiceMatch(similarity=score, threshold=threshold, verdict=verdict)
