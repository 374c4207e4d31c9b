"""Per-sequence loudness normalization with a plain gain (never ffmpeg's loudnorm).

LTX renders dialogue with up to ~23 LU spread between sequences; a single gain per
sequence toward -23 LUFS, capped by a -1.5 dBTP true-peak ceiling, evens it out
without the resampling and dropouts loudnorm brings.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from tasks.media import (
    MediaInvalid,
    integrated_loudness,
    read_audio,
    replace_audio,
    true_peak_dbtp,
)
from tasks.media.encode import AUDIO_RATE

# AAC can overshoot the PCM peak it was fed; one corrective pass trims this much extra.
_CODEC_MARGIN_DB = 0.2


class Loudness(BaseModel):
    """A measured sequence: integrated loudness, true peak, duration."""

    integrated_lufs: float
    true_peak_dbtp: float
    duration_s: float


class GainDecision(BaseModel):
    """Whether to change a sequence's level, by how much, and why."""

    apply: bool
    gain_db: float
    reason: str


class NormalizeResult(BaseModel):
    """A normalized sequence file and its loudness before and after."""

    path: Path
    gain_db: float
    reason: str
    before: Loudness
    after: Loudness


def _loudness_of(samples: np.ndarray) -> Loudness:
    return Loudness(
        integrated_lufs=integrated_loudness(samples, AUDIO_RATE),
        true_peak_dbtp=true_peak_dbtp(samples),
        duration_s=samples.shape[0] / AUDIO_RATE,
    )


def measure(path: Path) -> Loudness:
    """Integrated LUFS, 4x-oversampled true peak (dBTP) and duration of `path`'s audio."""
    return _loudness_of(read_audio(path, rate=AUDIO_RATE))


def plan_gain(
    loudness: Loudness,
    *,
    target_lufs: float = -23.0,
    peak_ceiling_dbtp: float = -1.5,
    silence_lufs: float = -50.0,
    min_duration_s: float = 0.4,
) -> GainDecision:
    """The gain that brings `loudness` to `target_lufs` without a peak over the ceiling."""
    if loudness.duration_s < min_duration_s:
        return GainDecision(
            apply=False,
            gain_db=0.0,
            reason=f"too short to measure: {loudness.duration_s:.2f} s < {min_duration_s} s",
        )
    if loudness.integrated_lufs < silence_lufs:
        # Amplifying a near-silent sequence only raises its noise floor.
        return GainDecision(
            apply=False,
            gain_db=0.0,
            reason=(
                f"effectively silent: {loudness.integrated_lufs:.1f} LUFS < {silence_lufs} LUFS"
            ),
        )
    wanted = target_lufs - loudness.integrated_lufs
    headroom = peak_ceiling_dbtp - loudness.true_peak_dbtp
    if wanted > headroom:
        return GainDecision(
            apply=True,
            gain_db=headroom,
            reason=(
                f"{wanted:+.1f} dB wanted, capped at {headroom:+.1f} dB by the"
                f" {peak_ceiling_dbtp} dBTP ceiling"
            ),
        )
    return GainDecision(
        apply=True,
        gain_db=wanted,
        reason=f"{loudness.integrated_lufs:.1f} -> {target_lufs} LUFS",
    )


def _encode_with_gain(src: Path, dest: Path, samples: np.ndarray, gain_db: float) -> None:
    replace_audio(src, dest, samples * np.float32(10.0 ** (gain_db / 20.0)))


def normalize_sequence(
    src: Path, dest: Path, decision: GainDecision, *, peak_ceiling_dbtp: float = -1.5
) -> NormalizeResult:
    """Apply `decision`'s gain to `src`'s audio into `dest`: 48 kHz AAC, video copied."""
    samples = read_audio(src, rate=AUDIO_RATE)
    if not np.all(np.isfinite(samples)):
        raise MediaInvalid(f"{src} audio holds NaN or infinite samples; re-render it")
    before = _loudness_of(samples)
    gain_db = decision.gain_db if decision.apply else 0.0
    _encode_with_gain(src, dest, samples, gain_db)
    after = measure(dest)
    overshoot = after.true_peak_dbtp - peak_ceiling_dbtp
    if decision.apply and math.isfinite(overshoot) and overshoot > 0:
        gain_db -= overshoot + _CODEC_MARGIN_DB
        _encode_with_gain(src, dest, samples, gain_db)
        after = measure(dest)
    return NormalizeResult(
        path=dest, gain_db=gain_db, reason=decision.reason, before=before, after=after
    )
