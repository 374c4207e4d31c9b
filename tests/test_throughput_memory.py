"""Measuring a long film's true peak takes as much memory as a short one's, and gives the
value the whole signal oversampled at once gives."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
from scipy.signal import resample_poly

from tasks.media.audio import true_peak_dbtp

RATE = 48000


def _whole_signal_peak(samples: np.ndarray) -> float:
    upsampled = resample_poly(samples.astype(np.float64), 4, 1, axis=0)
    return 20 * math.log10(max(np.max(np.abs(upsampled)), np.max(np.abs(samples))))


def _intersample_bursts(seconds: float) -> np.ndarray:
    """Quiet noise with short fs/4 bursts whose true peak falls between samples (+3 dB over
    the sampled peak), one straddling every 2^18-sample block edge."""
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal((int(seconds * RATE), 2)) * 0.01).astype(np.float32)
    t = np.arange(64)
    burst = 0.5 * np.sin(np.pi / 2 * t + np.pi / 4)
    for edge in range(1 << 18, samples.shape[0], 1 << 18):
        samples[edge - 32 : edge + 32, 0] = burst
    samples[-64:, 1] = burst * 1.2  # the loudest one at the very end
    return samples


def test_the_true_peak_of_a_long_film_matches_the_whole_signal_one() -> None:
    samples = _intersample_bursts(20.0)
    measured = true_peak_dbtp(samples)
    assert measured == _whole_signal_peak(samples)
    sampled = 20 * math.log10(float(np.max(np.abs(samples))))
    assert measured > sampled + 2.5  # the peak between samples was found


def test_a_peak_between_samples_in_a_quieter_passage_is_still_found() -> None:
    """Blocks are oversampled loudest first and quiet ones skipped: a passage whose samples
    are quieter than another's but whose true peak is higher must still be measured."""
    samples = _intersample_bursts(12.0)
    t = np.arange(RATE) / RATE
    samples[RATE : 2 * RATE, 0] = 0.5 * np.sin(2 * np.pi * 100 * t)  # louder samples, no
    measured = true_peak_dbtp(samples)  # peak between them
    assert measured == _whole_signal_peak(samples)
    # The last burst's samples reach 0.42, its true peak 0.6: found, though the sine's 0.5
    # samples were measured first.
    assert measured > 20 * math.log10(0.5) + 1.0


def _peak_memory(seconds: float) -> int:
    samples = _intersample_bursts(seconds)
    tracemalloc.start()
    true_peak_dbtp(samples)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_measuring_ten_times_more_film_takes_no_more_memory() -> None:
    short, long = _peak_memory(12.0), _peak_memory(120.0)
    # Oversampled whole, 120 s would take ~10x the memory of 12 s (hundreds of MB).
    assert long < 1.5 * short
    assert long < 64 * 2**20
