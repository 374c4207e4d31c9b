"""What the voice encoder hears: 16 kHz speech, level-normalised, silences shortened, as
40-band mel power frames cut into overlapping 1.6 s partials.

The numbers are the encoder's training front end (Resemblyzer's hparams): 25 ms Hann
window, 10 ms hop, 40 Slaney mel bands from 0 to 8 kHz of the power spectrum, partials of
160 frames at 1.3 per second.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.ndimage import binary_dilation
from scipy.signal import resample_poly

RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIALS_PER_SECOND = 1.3
TARGET_DBFS = -30.0

# Silence trimming on 30 ms windows: a window is voiced when its level is within
# VOICED_RANGE_DB of the loudest window; the flags are smoothed over 8 windows and
# voiced runs dilated by 6 windows, so pauses shorter than ~0.2 s between words stay.
VAD_WINDOW = 480
VOICED_RANGE_DB = 35.0
VAD_SMOOTHING = 8
VAD_MAX_SILENCE = 6


def to_model_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono float32 at 16 kHz; a (n, channels) array is averaged to mono first."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    samples = np.asarray(samples, dtype=np.float32)
    if rate != RATE:
        common = gcd(rate, RATE)
        samples = resample_poly(samples, RATE // common, rate // common).astype(np.float32)
    return samples


def normalize_level(samples: np.ndarray) -> np.ndarray:
    """Speech at -30 dBFS RMS: the mel input is power, so a level change would move the
    embedding; the pipeline's lines differ by up to 20 dB between renders."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    if rms == 0.0:
        return samples
    return (samples * (10 ** (TARGET_DBFS / 20) / rms)).astype(np.float32)


def _moving_average(flags: np.ndarray, width: int) -> np.ndarray:
    padded = np.concatenate([np.zeros((width - 1) // 2), flags, np.zeros(width // 2)])
    sums = np.cumsum(padded, dtype=float)
    sums[width:] = sums[width:] - sums[:-width]
    return sums[width - 1 :] / width


def trim_silences(samples: np.ndarray) -> np.ndarray:
    """The speech with long silences removed (room tone between lines says nothing of a voice)."""
    usable = len(samples) - len(samples) % VAD_WINDOW
    if usable == 0:
        return samples
    windows = samples[:usable].reshape(-1, VAD_WINDOW).astype(np.float64)
    level_db = 10 * np.log10(np.mean(np.square(windows), axis=1) + 1e-12)
    voiced = (level_db > level_db.max() - VOICED_RANGE_DB).astype(float)
    mask = np.round(_moving_average(voiced, VAD_SMOOTHING)).astype(bool)
    mask = binary_dilation(mask, np.ones(VAD_MAX_SILENCE + 1))
    if not mask.any():
        return samples[:usable]
    return samples[:usable][np.repeat(mask, VAD_WINDOW)]


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # Slaney's scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above.
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3.0 / 200.0
    log_step = np.log(6.4) / 27.0
    above = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step
    return np.where(hz >= 1000.0, above, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * 200.0 / 3.0
    log_step = np.log(6.4) / 27.0
    above = 1000.0 * np.exp(log_step * (mel - 15.0))
    return np.where(mel >= 15.0, above, linear)


def mel_filterbank() -> np.ndarray:
    """(40, 201) triangular filters, each scaled to unit area (Slaney normalisation)."""
    fft_hz = np.linspace(0.0, RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), N_MELS + 2))
    widths = np.diff(edges)
    rising = (fft_hz[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - fft_hz[None, :]) / widths[1:, None]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return bank.astype(np.float32)


_FILTERBANK = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def mel_frames(samples: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power spectrogram; frame t is centred on sample t * 160."""
    padded = np.pad(samples.astype(np.float32), N_FFT // 2)
    count = 1 + len(samples) // HOP
    starts = np.arange(count) * HOP
    frames = padded[starts[:, None] + np.arange(N_FFT)[None, :]] * _WINDOW
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return (power.astype(np.float32) @ _FILTERBANK.T).astype(np.float32)


def partials(mels: np.ndarray) -> list[np.ndarray]:
    """Windows of 160 mel frames at 1.3 per second covering every frame.

    The encoder's training front end zero-pads a short clip or a short last window, and the
    LSTM's final state then describes trailing silence: 1.0-1.6 s lines scored 0.1 lower
    against their own voice. Here a clip shorter than a window is one shorter window, and
    the last window is moved back to end on the last frame instead of running past it.
    """
    count = len(mels)
    if count <= PARTIAL_FRAMES:
        return [mels]
    step = round(RATE / PARTIALS_PER_SECOND / HOP)
    starts = list(range(0, count - PARTIAL_FRAMES + 1, step))
    if starts[-1] + PARTIAL_FRAMES < count:
        starts.append(count - PARTIAL_FRAMES)
    return [mels[s : s + PARTIAL_FRAMES] for s in starts]
