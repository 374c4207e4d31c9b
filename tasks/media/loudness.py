"""Delivery loudness of the final mix: named profiles, the measurement, the correction to make.

Per-sequence normalization balances the dialogue; the score on top and the silent
sequences then move the programme's loudness, so the delivered mix is measured as a whole
and corrected to the profile it is delivered to. This module is the pure part: what a
profile asks, what the mix measures, and the decision (`plan_correction`) of what to do.
`tasks.media.loudness_correct` applies a decision to a film file.

Measurements are BS.1770-4 (pyloudnorm): integrated loudness, EBU Tech 3342 loudness range
and a 4x-oversampled true peak. A dialogue-gated profile measures the mix only while
someone speaks: the caller passes the film-time spans of the spoken lines.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import pyloudnorm
from pydantic import BaseModel, ConfigDict

from tasks.errors import ReelflowError
from tasks.media.audio import SILENCE_FLOOR_LUFS, integrated_loudness, true_peak_dbtp

# A digital-silence true peak, reported as a number (24-bit PCM's floor) rather than -inf.
SILENT_PEAK_DBTP = -144.0
# More gain than this raises the noise floor of whatever was recorded by as much.
MAX_GAIN_DB = 24.0
# What the correction leaves below a profile's ceiling, as its own meter reads it, so a
# meter with another oversampling filter (ffmpeg's ebur128) still reads under the ceiling.
PEAK_MARGIN_DB = 0.3
_LRA_WINDOW_S = 3.0
_LRA_HOP_S = 0.1


class DeliveryProfileError(ReelflowError):
    """The named delivery profile does not exist."""


class DeliveryProfile(BaseModel):
    """What a broadcaster or platform accepts: integrated loudness and a true-peak ceiling."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    target_lufs: float
    tolerance_lu: float
    true_peak_dbtp: float
    dialogue_gated: bool = False


PROFILES: dict[str, DeliveryProfile] = {
    profile.name: profile
    for profile in (
        DeliveryProfile(
            name="ebu-r128",
            description="EBU R128 broadcast (Europe)",
            target_lufs=-23.0,
            tolerance_lu=0.5,
            true_peak_dbtp=-1.0,
        ),
        # Streaming platforms publish a target, not a window; +-1 LU is what their own
        # normalization leaves untouched in practice.
        DeliveryProfile(
            name="streaming",
            description="Streaming (YouTube/Spotify-like)",
            target_lufs=-14.0,
            tolerance_lu=1.0,
            true_peak_dbtp=-1.0,
        ),
        DeliveryProfile(
            name="atsc-a85",
            description="ATSC A/85 broadcast (US)",
            target_lufs=-24.0,
            tolerance_lu=2.0,
            true_peak_dbtp=-2.0,
        ),
        DeliveryProfile(
            name="apple",
            description="Apple-like streaming",
            target_lufs=-16.0,
            tolerance_lu=1.0,
            true_peak_dbtp=-1.0,
        ),
        DeliveryProfile(
            name="dialogue-gated",
            description="Dialogue-gated platform spec (loudness measured on dialogue only)",
            target_lufs=-27.0,
            tolerance_lu=2.0,
            true_peak_dbtp=-2.0,
            dialogue_gated=True,
        ),
    )
}


def delivery_profile(name: str) -> DeliveryProfile:
    """The profile called `name`; an unknown name is refused with the list of known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise DeliveryProfileError(
            f"unknown delivery profile {name!r}; choose one of: {known}"
        ) from None


class MixLoudness(BaseModel):
    """The final mix as measured: loudness, loudness range, true peak, dialogue loudness."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    dialogue_lufs: float | None
    duration_s: float


def loudness_range(samples: np.ndarray, rate: int) -> float:
    """EBU Tech 3342 loudness range (LU) of (n, channels) samples; 0 when too short or silent.

    Short-term loudness (3 s windows every 0.1 s), gated at -70 LUFS and 20 LU under their
    mean, then the spread from the 10th to the 95th percentile. pyloudnorm's own
    `loudness_range` pads 1.5 s of silence onto the end, which widens the range of a short
    film by more than 1 LU against other meters, so only its K-weighted windows are used here.
    """
    if samples.shape[0] < _LRA_WINDOW_S * rate or not np.any(samples):
        return 0.0
    meter = pyloudnorm.Meter(
        rate, block_size=_LRA_WINDOW_S, overlap=1.0 - _LRA_HOP_S / _LRA_WINDOW_S
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meter.integrated_loudness(samples.astype(np.float64))
    short_term = np.asarray(meter.blockwise_loudness, dtype=np.float64)
    short_term = short_term[short_term >= SILENCE_FLOOR_LUFS]
    if short_term.size == 0:
        return 0.0
    relative_gate = 10.0 * math.log10(float(np.mean(10.0 ** (short_term / 10.0)))) - 20.0
    short_term = short_term[short_term >= relative_gate]
    return float(np.percentile(short_term, 95) - np.percentile(short_term, 10))


def dialogue_samples(
    samples: np.ndarray, rate: int, regions: Sequence[tuple[float, float]]
) -> np.ndarray:
    """The samples inside `regions` (film seconds), joined in order."""
    spans = []
    for start_s, end_s in sorted(regions):
        begin = max(0, round(start_s * rate))
        end = min(samples.shape[0], round(end_s * rate))
        if end > begin:
            spans.append(samples[begin:end])
    if not spans:
        return samples[:0]
    return np.concatenate(spans)


def measure_mix(
    samples: np.ndarray,
    rate: int,
    *,
    dialogue_regions: Sequence[tuple[float, float]] | None = None,
) -> MixLoudness:
    """Measure (n, channels) mix samples; `dialogue_regions` are the spoken spans, if known.

    The true peak (oversampling, which frees the interpreter) is measured on a second thread
    while the loudness meters run: half the time on two cores.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="true-peak") as beside:
        oversampled = beside.submit(true_peak_dbtp, samples)
        dialogue = None
        if dialogue_regions:
            spoken = dialogue_samples(samples, rate, dialogue_regions)
            if spoken.shape[0]:
                dialogue = integrated_loudness(spoken, rate)
        integrated = integrated_loudness(samples, rate)
        spread = loudness_range(samples, rate)
        peak = oversampled.result()
    return MixLoudness(
        integrated_lufs=integrated,
        loudness_range_lu=spread,
        true_peak_dbtp=peak if math.isfinite(peak) else SILENT_PEAK_DBTP,
        dialogue_lufs=dialogue,
        duration_s=samples.shape[0] / rate,
    )


class LoudnessCorrection(BaseModel):
    """What to do to a mix to meet a profile, and why.

    outcome: `within` (meets it already: leave the file alone), `gain` (one plain gain),
    `gain_and_limit` (the gain, then a true-peak limiter at `limiter_ceiling_dbtp`), or
    `cannot` (no gain can honestly make this mix meet the profile; `reason` says why).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["within", "gain", "gain_and_limit", "cannot"]
    gain_db: float
    limiter_ceiling_dbtp: float | None
    measured_lufs: float
    reason: str

    @property
    def changes_audio(self) -> bool:
        return self.outcome in ("gain", "gain_and_limit")


def profile_loudness(measured: MixLoudness, profile: DeliveryProfile) -> tuple[float, str]:
    """The loudness `profile` judges `measured` by, and what it was measured on."""
    spoken = measured.dialogue_lufs
    if profile.dialogue_gated and spoken is not None and spoken > SILENCE_FLOOR_LUFS:
        return spoken, "dialogue"
    return measured.integrated_lufs, "programme"


def meets_profile(measured: MixLoudness, profile: DeliveryProfile) -> bool:
    """True when `measured` is inside the profile's loudness window and under its ceiling."""
    loudness, _ = profile_loudness(measured, profile)
    return (
        loudness > SILENCE_FLOOR_LUFS
        and abs(loudness - profile.target_lufs) <= profile.tolerance_lu
        and measured.true_peak_dbtp <= profile.true_peak_dbtp
    )


def plan_correction(
    measured: MixLoudness,
    profile: DeliveryProfile,
    *,
    max_gain_db: float = MAX_GAIN_DB,
    peak_margin_db: float = PEAK_MARGIN_DB,
) -> LoudnessCorrection:
    """The gain (and limiter, only where the gain would break the ceiling) that meets `profile`.

    A dialogue-gated profile judges the dialogue's loudness; a film with no spoken regions
    is judged on the whole programme (and the reason says so).
    """
    loudness, basis = profile_loudness(measured, profile)
    gated_note = (
        " (no dialogue to gate on: measured on the whole programme)"
        if profile.dialogue_gated and basis == "programme"
        else ""
    )
    target = f"{profile.target_lufs:g} LUFS ({profile.name})"
    if loudness <= SILENCE_FLOOR_LUFS:
        return LoudnessCorrection(
            outcome="cannot",
            gain_db=0.0,
            limiter_ceiling_dbtp=None,
            measured_lufs=loudness,
            reason=(
                f"the film's audio is silent (below {SILENCE_FLOOR_LUFS:g} LUFS): no gain can"
                f" bring it to {target}; check that its sequences have sound"
            ),
        )
    if meets_profile(measured, profile):
        return LoudnessCorrection(
            outcome="within",
            gain_db=0.0,
            limiter_ceiling_dbtp=None,
            measured_lufs=loudness,
            reason=(
                f"{loudness:.1f} LUFS {basis}, {measured.true_peak_dbtp:.1f} dBTP: within"
                f" {target} +-{profile.tolerance_lu:g} LU{gated_note}; left as it is"
            ),
        )
    gain = profile.target_lufs - loudness
    if gain > max_gain_db:
        return LoudnessCorrection(
            outcome="cannot",
            gain_db=0.0,
            limiter_ceiling_dbtp=None,
            measured_lufs=loudness,
            reason=(
                f"the mix measures {loudness:.1f} LUFS {basis}{gated_note}: reaching {target}"
                f" needs {gain:+.1f} dB, more than the {max_gain_db:g} dB that keeps its noise"
                " floor inaudible; check for muted or near-silent sequences"
            ),
        )
    ceiling = profile.true_peak_dbtp - peak_margin_db
    peak_after = measured.true_peak_dbtp + gain
    if peak_after <= ceiling:
        return LoudnessCorrection(
            outcome="gain",
            gain_db=gain,
            limiter_ceiling_dbtp=None,
            measured_lufs=loudness,
            reason=f"{loudness:.1f} LUFS {basis} -> {target}: {gain:+.1f} dB{gated_note}",
        )
    return LoudnessCorrection(
        outcome="gain_and_limit",
        gain_db=gain,
        limiter_ceiling_dbtp=ceiling,
        measured_lufs=loudness,
        reason=(
            f"{loudness:.1f} LUFS {basis} -> {target}: {gain:+.1f} dB{gated_note}; peaks"
            f" would reach {peak_after:.1f} dBTP, so a true-peak limiter holds them at"
            f" {ceiling:.1f} dBTP ({peak_after - ceiling:.1f} dB of limiting)"
        ),
    )
