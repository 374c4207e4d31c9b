"""Which palette voice a reference clip speaks with: the simulator's ear for ``LTXVReferenceAudio``.

The real model copies the timbre of the reference clip it is given; the simulator can only
speak with its palette (``sim.voices.PALETTE``), so it recognises which palette voice the
clip sounds like, with plain signal processing in numpy:

* once per process, each palette voice speaks a fixed calibration text (about 25 s); its
  speech frames (16 kHz, 32 ms Hann window, 10 ms hop, 40 mel bands from 60 Hz to 7.6 kHz)
  become 19 mel-cepstral coefficients, clustered into a 32-word codebook (k-means), and its
  median pitch is measured (YIN, 60-450 Hz);
* a clip is scored against each voice by how far its speech frames lie from that voice's
  codebook (log of the mean squared distance to the nearest word) plus the distance between
  the median pitches (in log Hz); the lowest score wins.

Level does not matter (no energy coefficient; frames are picked relative to the clip's
loudest), nor AAC at 48 kHz (nothing above 7.6 kHz is used). A clip without a pitch,
without speech's changing spectrum (``SPEECH_SPREAD``), or whose best score is above
``GOOD_MATCH`` matches no palette voice well (a real person, a buzz, noise): the nearest
voice is used anyway and ``VoiceMatch.close`` is False, which the render logs.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import cache
from math import gcd
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from sim.media_io import load_audio
from sim.voices import PALETTE, SAMPLE_RATE, Voice, synthesise

RATE = 16_000
N_FFT = 512
HOP = 160
N_MELS = 40
N_CEPSTRA = 19
CODEWORDS = 32
SPEECH_RANGE_DB = 35.0
PITCH_WEIGHT = 1.0
PITCH_FRAME = 640
PITCH_LAGS = (RATE // 450, RATE // 60)
YIN_THRESHOLD = 0.15
MAX_SECONDS = 30.0
GOOD_MATCH = 4.8
"""Palette clips of 1 s or more, as renders carry them, scored 3.5 to 4.7. Other espeak-ng
voices scored 4.2 to 5.4: most of them (28 of 32) pass for the palette voice they resemble,
as a person would hear it; a buzz or noise never does (bench/sim_voice_match.py)."""
SPEECH_SPREAD = 50.0
"""Speech changes its spectrum from sound to sound: the summed variance of a clip's cepstra
was 165 or more on every 1 s palette clip measured, 0.5 on a steady buzz, 9 on noise."""
CALIBRATION = (
    "The quick brown fox jumps over the lazy dog while seven wise owls watch from the old "
    "barn. Nobody comes to the island in November, not even the mail boat. A bright morning "
    "light fell across the kitchen table, and somebody was singing upstairs. Should we wait "
    "for the others, or go on ahead through the valley before it gets dark? Pack my box with "
    "five dozen liquor jugs, then hurry home; the show starts at nine."
)


@dataclass(frozen=True)
class VoiceMatch:
    """The palette voice a clip sounds like, its score, and whether it is a close match."""

    voice: Voice
    score: float
    scores: tuple[float, ...]
    pitch_hz: float | None
    spread: float

    @property
    def close(self) -> bool:
        """Whether the clip really sounds like ``voice`` (else it is only the nearest)."""
        speech = self.pitch_hz is not None and self.spread >= SPEECH_SPREAD
        return speech and self.score <= GOOD_MATCH


def _fast_length(count: int, step: int) -> int:
    """The smallest multiple of ``step`` from ``count`` whose quotient has no prime above 5
    (the FFT of a length with a large prime factor is many times slower)."""
    quotient = -(-count // step)
    while True:
        rest = quotient
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return quotient * step
        quotient += 1


def resample(samples: np.ndarray, rate: int, target: int = RATE) -> np.ndarray:
    """Band-limited resampling by the FFT (mono float)."""
    if rate == target or len(samples) == 0:
        return samples.astype(np.float64)
    step = rate // gcd(rate, target)
    padded = _fast_length(len(samples), step)
    count = padded // step * (target // gcd(rate, target))
    spectrum = np.fft.rfft(samples.astype(np.float64), padded)
    bins = count // 2 + 1
    kept = np.zeros(bins, dtype=complex)
    kept[: min(bins, len(spectrum))] = spectrum[:bins]
    resampled = np.fft.irfft(kept, count) * (count / padded)
    return resampled[: round(len(samples) * target / rate)]


def _mel_bank() -> np.ndarray:
    def to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (mel / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(np.array(60.0)), to_mel(np.array(7600.0)), N_MELS + 2))
    bins = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0.0, np.minimum(rising, falling))


def _dct_matrix() -> np.ndarray:
    # Orthonormal DCT-II rows 1..N_CEPSTRA (row 0, the level, is left out on purpose).
    k = np.arange(1, N_CEPSTRA + 1)[:, None]
    n = np.arange(N_MELS)[None, :]
    return np.sqrt(2.0 / N_MELS) * np.cos(np.pi * k * (2 * n + 1) / (2 * N_MELS))


_BANK = _mel_bank()
_DCT = _dct_matrix()
_WINDOW = np.hanning(N_FFT)


def cepstra(speech: np.ndarray) -> np.ndarray:
    """(frames, 19) mel cepstra of the frames within 35 dB of the loudest one."""
    if len(speech) < N_FFT:
        speech = np.pad(speech, (0, N_FFT - len(speech)))
    count = 1 + (len(speech) - N_FFT) // HOP
    frames = speech[np.arange(count)[:, None] * HOP + np.arange(N_FFT)[None, :]] * _WINDOW
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    level = 10 * np.log10(power.sum(axis=1) + 1e-12)
    loud = power[level > level.max() - SPEECH_RANGE_DB]
    return np.log(loud @ _BANK.T + 1e-9) @ _DCT.T  # type: ignore[no-any-return]


def median_pitch(speech: np.ndarray) -> float | None:
    """Median fundamental frequency (YIN) of the voiced frames, in Hz; None if unvoiced."""
    low, high = PITCH_LAGS
    span = PITCH_FRAME + high
    count = 1 + (len(speech) - span) // HOP
    if count < 3:
        return None
    frames = speech[np.arange(count)[:, None] * HOP + np.arange(span)[None, :]]
    energy = (frames[:, :PITCH_FRAME] ** 2).sum(axis=1)
    frames = frames[energy > energy.max() * 1e-3]
    size = 1 << (span + PITCH_FRAME).bit_length()  # no wrap-around for lags up to ``high``
    head = np.fft.rfft(frames[:, :PITCH_FRAME], size, axis=1)
    cross = np.fft.irfft(np.fft.rfft(frames, size, axis=1) * np.conj(head), size, axis=1)
    sums = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(high + 1)
    shifted = sums[:, lags + PITCH_FRAME] - sums[:, lags]
    difference = sums[:, PITCH_FRAME][:, None] + shifted - 2 * cross[:, : high + 1]
    running = np.cumsum(difference[:, 1:], axis=1)
    normalised = difference[:, 1:] * lags[1:] / np.maximum(running, 1e-12)
    window = normalised[:, low - 1 :]
    below = window < YIN_THRESHOLD
    voiced = below.any(axis=1)
    window, lag = window[voiced], below[voiced].argmax(axis=1)
    # From the first lag under the threshold, walk down to the bottom of that dip.
    rows = np.arange(len(lag))
    last = window.shape[1] - 1
    while True:
        ahead = np.minimum(lag + 1, last)
        step = (lag < last) & (window[rows, ahead] < window[rows, lag])
        if not step.any():
            break
        lag = lag + step
    return float(np.median(RATE / (lag + low))) if len(lag) >= 3 else None


def _codebook(points: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = points[rng.choice(len(points), CODEWORDS, replace=False)].copy()
    for _ in range(25):
        nearest = _distances(points, centres).argmin(axis=1)
        members = (nearest[:, None] == np.arange(CODEWORDS)[None, :]).astype(np.float64)
        counts = members.sum(axis=0)
        filled = counts > 0
        centres[filled] = (members.T @ points)[filled] / counts[filled, None]
    return centres


def _distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return (  # type: ignore[no-any-return]
        (points**2).sum(axis=1)[:, None] - 2 * points @ centres.T + (centres**2).sum(axis=1)
    )


@dataclass(frozen=True)
class _Model:
    codebook: np.ndarray
    log_pitch: float


# Many small matrix products: on two busy cores, BLAS worker threads only get in each
# other's way (calibration took 12 s with them, 4 s on one thread). The limit is
# process-wide while held, so the voice work takes turns under one lock.
_lock = threading.Lock()


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


@cache
def _models() -> tuple[_Model, ...]:
    models = []
    for voice in PALETTE:
        speech = resample(synthesise(CALIBRATION, voice), SAMPLE_RATE)
        pitch = median_pitch(speech)
        models.append(_Model(_codebook(cepstra(speech)), float(np.log(pitch or 150.0))))
    return tuple(models)


def calibrated() -> tuple[_Model, ...]:
    """The palette's codebooks and pitches (made on first use, once per process)."""
    with _lock, _blas().limit(limits=1, user_api="blas"):
        return _models()


def identify(samples: np.ndarray, rate: int) -> VoiceMatch:
    """The palette voice that mono ``samples`` at ``rate`` sound most like."""
    models = calibrated()
    with _lock, _blas().limit(limits=1, user_api="blas"):
        return _identify(samples[: int(MAX_SECONDS * rate)], rate, models)


def _identify(samples: np.ndarray, rate: int, models: tuple[_Model, ...]) -> VoiceMatch:
    speech = resample(samples, rate)
    frames = cepstra(speech)
    pitch = median_pitch(speech)
    scores = []
    for model in models:
        distortion = float(np.maximum(_distances(frames, model.codebook).min(axis=1), 0).mean())
        score = float(np.log(distortion + 1e-9))
        if pitch is not None:
            score += PITCH_WEIGHT * abs(np.log(pitch) - model.log_pitch)
        scores.append(score)
    best = int(np.argmin(scores))
    spread = float(frames.var(axis=0).sum())
    return VoiceMatch(PALETTE[best], scores[best], tuple(scores), pitch, spread)


_known: dict[str, VoiceMatch] = {}


def identify_file(path: Path) -> VoiceMatch:
    """``identify`` of an audio file's first channel mix (cached by the file's content)."""
    key = hashlib.sha256(path.read_bytes()).hexdigest()
    if key not in _known:
        audio = load_audio(path)
        _known[key] = identify(audio.samples.mean(axis=0), audio.rate)
    return _known[key]
