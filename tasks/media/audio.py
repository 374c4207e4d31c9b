"""Audio samples and loudness: decode to numpy, integrated LUFS, true peak."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import av
import numpy as np
import pyloudnorm
from scipy.signal import firwin, resample_poly

from tasks.media.errors import MediaError, MediaInvalid

# EBU R128's absolute gate: anything quieter is reported as this floor, never -inf,
# so loudness values stay finite numbers in JSON reports.
SILENCE_FLOOR_LUFS = -70.0
_BS1770_BLOCK_S = 0.4
_TRUE_PEAK_OVERSAMPLING = 4
_TRUE_PEAK_BLOCK = 1 << 14
"""Samples oversampled at once (~0.34 s at 48 kHz)."""
_TRUE_PEAK_MARGIN = 64
"""Samples read past each block's ends: more than the filter reaches (10 at 4x)."""
_TRUE_PEAK_FILTER = firwin(
    20 * _TRUE_PEAK_OVERSAMPLING + 1, 1 / _TRUE_PEAK_OVERSAMPLING, window=("kaiser", 5.0)
)
"""scipy's own default for `resample_poly` at 4x, named so its gain can be bounded."""
_TRUE_PEAK_GAIN = (
    max(
        float(np.sum(np.abs(_TRUE_PEAK_FILTER[phase::_TRUE_PEAK_OVERSAMPLING])))
        for phase in range(_TRUE_PEAK_OVERSAMPLING)
    )
    * _TRUE_PEAK_OVERSAMPLING
)
"""No oversampled value exceeds the largest input sample the filter reaches times this."""


def read_audio(path: Path, *, rate: int = 48000, mono: bool = False) -> np.ndarray:
    """Decode the first audio stream of `path` to float32 samples at exactly `rate`.

    Returns shape (n, channels); the source's channel count unless `mono`.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaInvalid(f"{path} has no audio stream")
            stream = container.streams.audio[0]
            declared_s = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None and stream.time_base is not None
                else None
            )
            layout = "mono" if mono else stream.codec_context.layout.name
            resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
            chunks: list[np.ndarray] = []
            for frame in container.decode(stream):
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    except av.FFmpegError as exc:
        raise MediaError(f"cannot decode audio of {path}: {exc}") from exc
    channels = 1 if mono else stream.codec_context.channels
    if not chunks:
        return np.zeros((0, channels), dtype=np.float32)
    # Packed float frames come back as (1, samples * channels), interleaved.
    samples = np.concatenate([c.reshape(-1) for c in chunks]).reshape(-1, channels)
    if declared_s is not None:
        # AAC's last frame is padded past the container's declared end; drop the padding
        # so every decode-process-encode pass keeps the stream's length.
        samples = samples[: round(declared_s * rate)]
    return samples.astype(np.float32)


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness (LUFS, BS.1770) of (n, channels) samples; silence gives -70."""
    if samples.shape[0] == 0 or not np.any(samples):
        return SILENCE_FLOOR_LUFS
    # pyloudnorm needs one full gating block; a shorter clip is measured as one block.
    block_s = min(_BS1770_BLOCK_S, samples.shape[0] / rate)
    meter = pyloudnorm.Meter(rate, block_size=block_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loudness = float(meter.integrated_loudness(samples.astype(np.float64)))
    if not math.isfinite(loudness):
        return SILENCE_FLOOR_LUFS
    return max(loudness, SILENCE_FLOOR_LUFS)


def true_peak_dbtp(samples: np.ndarray) -> float:
    """True peak (dBTP) with 4x oversampling, as BS.1770-4 estimates inter-sample peaks.

    Oversampled a block at a time, loudest block first: memory stays flat however long the
    film, and a block whose samples (with the margin the filter reaches) times the filter's
    gain bound cannot beat the peak found so far is never oversampled, so quiet passages cost
    nothing. Each block reads a margin past its ends wider than the resampling filter, so
    every oversampled value is the one the whole signal gives.
    """
    frames = samples.shape[0]
    if frames == 0 or not np.any(samples):
        return -math.inf
    spans = []
    for start in range(0, frames, _TRUE_PEAK_BLOCK):
        end = min(frames, start + _TRUE_PEAK_BLOCK)
        low, high = max(0, start - _TRUE_PEAK_MARGIN), min(frames, end + _TRUE_PEAK_MARGIN)
        spans.append((float(np.max(np.abs(samples[low:high]))), start, end, low, high))
    peak = max(reach for reach, *_ in spans)
    for reach, start, end, low, high in sorted(spans, reverse=True):
        if reach * _TRUE_PEAK_GAIN <= peak:
            break  # every block left is quieter still
        upsampled = resample_poly(
            samples[low:high].astype(np.float64),
            _TRUE_PEAK_OVERSAMPLING,
            1,
            axis=0,
            window=_TRUE_PEAK_FILTER,
        )
        kept = upsampled[
            (start - low) * _TRUE_PEAK_OVERSAMPLING : (end - low) * _TRUE_PEAK_OVERSAMPLING
        ]
        peak = max(peak, float(np.max(np.abs(kept))))
    return 20.0 * math.log10(peak)
