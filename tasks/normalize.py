"""Per-sequence loudness normalization with a plain gain (never ffmpeg's loudnorm).

LTX renders dialogue with up to ~23 LU spread between sequences; a single gain per
sequence toward -23 LUFS, capped by a -1.5 dBTP true-peak ceiling, evens it out
without the resampling and dropouts loudnorm brings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from pydantic import BaseModel

from tasks import media
from tasks.media import (
    MediaInvalid,
    integrated_loudness,
    read_audio,
    replace_audio,
    true_peak_dbtp,
)
from tasks.media.encode import AUDIO_RATE
from tasks.runtime.caching import content_key, keyed_by
from tasks.runtime.studio import Studio
from tasks.runtime.workers import off_the_critical_path
from tasks.schema.outcomes import FinishedSequence, Loudness, RenderedSequence
from tasks.schema.verdicts import SequenceVerdict

# AAC can overshoot the PCM peak it was fed; one corrective pass trims this much extra.
_CODEC_MARGIN_DB = 0.2
NEGLIGIBLE_DB = 0.05
"""A gain this small changes nothing anyone hears or meters (profiles allow +-0.5 LU): the
sequence is left as rendered rather than given another AAC generation."""


class GainDecision(BaseModel):
    """Whether to change a sequence's level, by how much, and why."""

    apply: bool
    gain_db: float
    reason: str


class NormalizeResult(BaseModel):
    """A normalized sequence file and its loudness before and after; `path` is the source
    itself when its level and audio format needed no change."""

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
    capped = wanted > headroom
    gain = headroom if capped else wanted
    if capped:
        reason = (
            f"{wanted:+.1f} dB wanted, capped at {headroom:+.1f} dB by the"
            f" {peak_ceiling_dbtp} dBTP ceiling"
        )
    else:
        reason = f"{loudness.integrated_lufs:.1f} -> {target_lufs} LUFS"
    if abs(gain) < NEGLIGIBLE_DB:
        # Another AAC generation for an inaudible change: left as rendered.
        return GainDecision(apply=False, gain_db=0.0, reason=f"{reason}: no change needed")
    return GainDecision(apply=True, gain_db=gain, reason=reason)


def _encode_with_gain(src: Path, dest: Path, samples: np.ndarray, gain_db: float) -> None:
    replace_audio(src, dest, samples * np.float32(10.0 ** (gain_db / 20.0)))


def _finite_audio(src: Path) -> np.ndarray:
    samples = read_audio(src, rate=AUDIO_RATE)
    if not np.all(np.isfinite(samples)):
        raise MediaInvalid(f"{src} audio holds NaN or infinite samples; re-render it")
    return samples


def apply_gain(
    src: Path, dest: Path, decision: GainDecision, *, peak_ceiling_dbtp: float = -1.5
) -> NormalizeResult:
    """Apply `decision`'s gain to `src`'s audio into `dest`: 48 kHz AAC, video copied."""
    samples = _finite_audio(src)
    return _with_gain(src, dest, samples, _loudness_of(samples), decision, peak_ceiling_dbtp)


def normalize_file(src: Path, dest: Path, *, target_lufs: float) -> NormalizeResult:
    """Measure `src` (decoded once), plan its gain toward `target_lufs` and apply it."""
    samples = _finite_audio(src)
    before = _loudness_of(samples)
    decision = plan_gain(before, target_lufs=target_lufs)
    return _with_gain(src, dest, samples, before, decision, -1.5)


def _with_gain(
    src: Path,
    dest: Path,
    samples: np.ndarray,
    before: Loudness,
    decision: GainDecision,
    peak_ceiling_dbtp: float,
) -> NormalizeResult:
    if not decision.apply and _delivered_as_is(src):
        return NormalizeResult(
            path=src, gain_db=0.0, reason=decision.reason, before=before, after=before
        )
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


def _delivered_as_is(src: Path) -> bool:
    """True when `src`'s sound is already what an encode would make of it (48 kHz AAC)."""
    sound = media.probe(src).audio
    return sound is not None and sound.codec == "aac" and sound.rate == AUDIO_RATE


def _normalize_key(parameters: dict[str, Any]) -> str:
    verdict: SequenceVerdict = parameters["verdict"]
    return content_key(
        "finish",  # the stage's earlier name: renaming it would void every cached result
        {
            "video": parameters["rendered"].video,
            "action": verdict.action,
            "mute": verdict.mute_ranges,
            "target": parameters["target_lufs"],
        },
    )


@task(
    name="normalize",
    task_run_name="normalize-seq{rendered.index}",
    cache_policy=keyed_by(_normalize_key),
    persist_result=True,
    result_serializer="json",
)
async def normalize_sequence(
    studio: Studio,
    rendered: RenderedSequence,
    verdict: SequenceVerdict,
    target_lufs: float = -23.0,
) -> FinishedSequence:
    """Mute what the verdict says to mute, then normalize loudness with a plain gain."""
    source = await studio.store.fetch(rendered.video)
    work = studio.store.scratch / "post" / rendered.video.sha256
    work.mkdir(parents=True, exist_ok=True)
    edited, edits = await off_the_critical_path(_apply_edits, source, work, verdict)
    result = await off_the_critical_path(
        normalize_file, edited, work / "normalized.mp4", target_lufs=target_lufs
    )
    info = await off_the_critical_path(media.probe, result.path)
    return FinishedSequence(
        index=rendered.index,
        video=await studio.store.put(result.path),
        seconds=info.video.duration if info.video else rendered.seconds,
        edits=tuple(edits),
        gain_db=result.gain_db,
        gain_reason=result.reason,
        before=result.before,
        after=result.after,
    )


def _apply_edits(source: Path, work: Path, verdict: SequenceVerdict) -> tuple[Path, list[str]]:
    if verdict.action == "mute_sequence":
        return media.mute_all(source, work / "muted.mp4"), ["muted the whole sequence"]
    current, edits = source, []
    for number, span in enumerate(verdict.mute_ranges):
        current = media.mute_range(
            current, work / f"muted{number}.mp4", start_s=span.start, end_s=span.end
        )
        edits.append(f"muted {span.start:.2f}-{span.end:.2f} s")
    return current, edits
