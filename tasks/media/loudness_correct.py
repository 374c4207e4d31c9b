"""Apply a delivery loudness correction to a film: audio re-encoded, picture copied, verified.

The correction is a plain gain, then, only where the gain would push peaks over the
profile's ceiling, ffmpeg's `alimiter` run at 4x the sample rate (192 kHz) so it catches the
peaks between samples too (a true-peak limiter), and back to 48 kHz. Never `loudnorm`: it
resamples and breaks the AAC (see PRODUCTION_NOTES.md). The picture is stream-copied.

The written file is measured again: the encoder and the limiter shift loudness and peaks a
little, so the gain and the limiter's ceiling are corrected from that measurement and the
audio re-encoded from the source (never from the previous attempt), up to four times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ffmpeg
from pydantic import BaseModel, ConfigDict

from tasks.media.audio import read_audio
from tasks.media.encode import AUDIO_AAC, AUDIO_RATE, FASTSTART
from tasks.media.errors import MediaError
from tasks.media.loudness import (
    PEAK_MARGIN_DB,
    DeliveryProfile,
    LoudnessCorrection,
    MixLoudness,
    delivery_profile,
    measure_mix,
    meets_profile,
    plan_correction,
    profile_loudness,
)
from tasks.media.probe import probe
from tasks.media.run import atomic_output, run_ffmpeg
from tasks.runtime.files import copy_atomic
from tasks.schema.record import DeliveryLoudness

LIMITER_RATE = 4 * AUDIO_RATE
MAX_ATTEMPTS = 4
# How close to the target a corrected film must land before it is left alone; tighter than
# every profile's window so a second meter's rounding cannot push it out.
LANDING_LU = 0.2
_MP4_SUFFIXES = (".mp4", ".m4a", ".mov")


class LoudnessResult(BaseModel):
    """A film's delivery loudness: the decision, what was applied, before and after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    profile: str
    decision: LoudnessCorrection
    gain_db: float
    limiter_ceiling_dbtp: float | None
    before: MixLoudness
    after: MixLoudness
    meets_profile: bool
    encodes: int
    reason: str


def correction_filters(audio: Any, *, gain_db: float, limiter_ceiling_dbtp: float | None) -> Any:
    """`audio` (an ffmpeg-python stream) with the gain and, if given, the true-peak limiter."""
    corrected = audio.filter("volume", f"{gain_db:.4f}dB", precision="double")
    if limiter_ceiling_dbtp is not None:
        corrected = (
            corrected.filter("aresample", LIMITER_RATE)
            # level=0: no make-up gain (alimiter would otherwise push the output to the limit);
            # latency=1: the look-ahead delay is removed, so the audio stays in sync.
            .filter(
                "alimiter",
                limit=10.0 ** (limiter_ceiling_dbtp / 20.0),
                level=0,
                latency=1,
                attack=5,
                release=50,
            )
        )
    return corrected.filter("aresample", AUDIO_RATE)


def correct_loudness_args(
    src: Path,
    out: Path,
    *,
    gain_db: float,
    limiter_ceiling_dbtp: float | None,
    audio_encoder: Mapping[str, Any] = AUDIO_AAC,
    has_video: bool = True,
) -> list[str]:
    """ffmpeg arguments: `src`'s audio corrected and re-encoded at 48 kHz, its video copied."""
    source = ffmpeg.input(str(src))
    audio = correction_filters(
        source.audio, gain_db=gain_db, limiter_ceiling_dbtp=limiter_ceiling_dbtp
    )
    streams = [source.video, audio] if has_video else [audio]
    options: dict[str, Any] = {**audio_encoder, "ar": AUDIO_RATE}
    if has_video:
        options["vcodec"] = "copy"
    if out.suffix.lower() in _MP4_SUFFIXES:
        options.update(FASTSTART)
    graph = ffmpeg.output(*streams, str(out), **options)
    args: list[str] = graph.get_args()
    return args


def measure_film(
    path: Path, *, dialogue_regions: Sequence[tuple[float, float]] | None = None
) -> MixLoudness:
    """The delivery measurement of `path`'s audio, decoded at 48 kHz."""
    return measure_mix(
        read_audio(path, rate=AUDIO_RATE), AUDIO_RATE, dialogue_regions=dialogue_regions
    )


def _next_try(
    after: MixLoudness,
    profile: DeliveryProfile,
    gain_db: float,
    ceiling: float | None,
    previous: tuple[float, float] | None,
) -> tuple[float, float | None] | None:
    """The gain and ceiling for another encode, or None when `after` has landed.

    `previous` is the (gain, loudness) of the encode before, if any: under a limiter one
    more dB of gain adds less than one dB of loudness, so the step is scaled by the slope
    the last two encodes showed (a secant step).
    """
    loudness, _ = profile_loudness(after, profile)
    allowed_peak = profile.true_peak_dbtp - PEAK_MARGIN_DB / 3
    miss = profile.target_lufs - loudness
    over = after.true_peak_dbtp - allowed_peak
    if abs(miss) <= min(LANDING_LU, profile.tolerance_lu) and over <= 0:
        return None
    if over > 0:
        # The encoder overshot the limiter (or a gain-only pass overshot the ceiling).
        start = ceiling if ceiling is not None else profile.true_peak_dbtp - PEAK_MARGIN_DB
        ceiling = start - over - 0.1
    slope = 1.0
    if previous is not None and abs(gain_db - previous[0]) > 0.01:
        slope = min(1.0, max(0.2, (loudness - previous[1]) / (gain_db - previous[0])))
    return gain_db + miss / slope, ceiling


def correct_film_loudness(
    src: Path,
    dest: Path,
    profile: DeliveryProfile,
    *,
    dialogue_regions: Sequence[tuple[float, float]] | None = None,
    audio_encoder: Mapping[str, Any] = AUDIO_AAC,
) -> LoudnessResult:
    """Bring `src`'s mix to `profile` into `dest`, measured before and after.

    A film already within the profile, or one that cannot be corrected (silent, or needing
    more gain than its noise floor allows), is copied unchanged and the reason given.
    """
    if dest.resolve() == src.resolve():
        # Every encode reads the untouched source; writing over it would compound the gain.
        raise MediaError(f"write the corrected film to a new path, not over {src}")
    info = probe(src)
    if info.audio is None:
        raise MediaError(f"{src} has no audio stream: there is no mix to measure")
    before = measure_film(src, dialogue_regions=dialogue_regions)
    decision = plan_correction(before, profile)
    if not decision.changes_audio:
        copy_atomic(src, dest)
        return LoudnessResult(
            path=dest,
            profile=profile.name,
            decision=decision,
            gain_db=0.0,
            limiter_ceiling_dbtp=None,
            before=before,
            after=before,
            meets_profile=meets_profile(before, profile),
            encodes=0,
            reason=decision.reason,
        )
    gain_db, ceiling = decision.gain_db, decision.limiter_ceiling_dbtp
    after = before
    encodes = 0
    previous: tuple[float, float] | None = None
    while True:
        with atomic_output(dest) as tmp:
            run_ffmpeg(
                correct_loudness_args(
                    src,
                    tmp,
                    gain_db=gain_db,
                    limiter_ceiling_dbtp=ceiling,
                    audio_encoder=audio_encoder,
                    has_video=info.video is not None,
                )
            )
        encodes += 1
        after = measure_film(dest, dialogue_regions=dialogue_regions)
        retry = _next_try(after, profile, gain_db, ceiling, previous)
        if retry is None or encodes == MAX_ATTEMPTS:
            break
        previous = (gain_db, profile_loudness(after, profile)[0])
        gain_db, ceiling = retry
    meets = meets_profile(after, profile)
    loudness, basis = profile_loudness(after, profile)
    limiter = f", limiter at {ceiling:.1f} dBTP" if ceiling is not None else ""
    verdict = "meets" if meets else "does NOT meet"
    return LoudnessResult(
        path=dest,
        profile=profile.name,
        decision=decision,
        gain_db=gain_db,
        limiter_ceiling_dbtp=ceiling,
        before=before,
        after=after,
        meets_profile=meets,
        encodes=encodes,
        reason=(
            f"{decision.reason}. Applied {gain_db:+.2f} dB{limiter}: now {loudness:.1f} LUFS"
            f" {basis}, {after.true_peak_dbtp:.1f} dBTP, {verdict} {profile.name}"
        ),
    )


def loudness_record(result: LoudnessResult) -> DeliveryLoudness:
    """`result` as the film's record keeps it (manifest, report, review page), rounded."""
    profile = delivery_profile(result.profile)
    _, basis = profile_loudness(result.after, profile)
    return DeliveryLoudness(
        profile=profile.name,
        target_lufs=profile.target_lufs,
        tolerance_lu=profile.tolerance_lu,
        ceiling_dbtp=profile.true_peak_dbtp,
        measured_on="dialogue" if basis == "dialogue" else "programme",
        outcome=result.decision.outcome,
        gain_db=round(result.gain_db, 2),
        limiter_ceiling_dbtp=_rounded(result.limiter_ceiling_dbtp),
        integrated_before_lufs=round(result.before.integrated_lufs, 2),
        integrated_after_lufs=round(result.after.integrated_lufs, 2),
        dialogue_before_lufs=_rounded(result.before.dialogue_lufs),
        dialogue_after_lufs=_rounded(result.after.dialogue_lufs),
        true_peak_before_dbtp=round(result.before.true_peak_dbtp, 2),
        true_peak_after_dbtp=round(result.after.true_peak_dbtp, 2),
        loudness_range_lu=round(result.after.loudness_range_lu, 2),
        meets_profile=result.meets_profile,
        reason=result.reason,
    )


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None
