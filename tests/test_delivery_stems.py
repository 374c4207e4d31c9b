"""Stems: 24-bit 48 kHz WAVs, as long as the picture, that add up to the film's mix.

What is compared, honestly: the distribution film's audio is AAC (lossy), so the exact
check is against a PCM mix of the same sources made by ffmpeg's own `amix` (the filter the
film's mix uses, rendered to float PCM instead of AAC); the film file itself is compared
within the error of its AAC encode.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tasks.media import mix_and_encode, probe, read_audio
from tasks.media.stems import Stems, write_stems
from tests.media_factory import make_clip, make_tone

GAIN = 0.25
FRAMES = 61  # 2.541666 s at 24 fps: not a whole number of AAC frames
LSB_24 = 2.0**-23


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stems")
    cut = make_clip(root / "cut.mp4", frames=FRAMES, size=(96, 64), audio="speech")
    # Shorter than the picture: the music stem must be padded with silence to its length.
    score = make_tone(root / "score.flac", seconds=2.0, frequency=330)
    return cut, score


@pytest.fixture(scope="module")
def stems(sources: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Stems:
    cut, score = sources
    return write_stems(cut, score, tmp_path_factory.mktemp("out"), "HARBOUR_v001", score_gain=GAIN)


def _pcm_mix(cut: Path, score: Path, dest: Path, seconds: float) -> np.ndarray:
    """Dialogue + score x GAIN through ffmpeg's amix (normalize=0), as 32-bit float PCM."""
    graph = (
        f"[0:a]aresample=48000,apad=whole_dur={seconds},atrim=duration={seconds}[d];"
        f"[1:a]aresample=48000,volume={GAIN},apad=whole_dur={seconds},atrim=duration={seconds}[m];"
        "[d][m]amix=inputs=2:duration=longest:normalize=0"
    )
    subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
            *("-i", str(cut), "-i", str(score), "-filter_complex", graph),
            *("-c:a", "pcm_f32le", str(dest)),
        ],
        check=True,
    )
    samples, _ = soundfile.read(dest, dtype="float64")
    return np.asarray(samples)


def _stem(path: Path | None) -> np.ndarray:
    assert path is not None
    samples, _ = soundfile.read(path, dtype="float64")
    return np.asarray(samples)


def test_stems_are_24_bit_48_khz_and_exactly_as_long_as_the_picture(
    sources: tuple[Path, Path], stems: Stems
) -> None:
    picture = probe(sources[0]).video
    assert picture is not None
    for path in (stems.dialogue, stems.music):
        assert path is not None
        info = soundfile.info(str(path))
        assert (info.samplerate, info.subtype, info.channels) == (48000, "PCM_24", 2)
        assert info.frames == stems.samples == round(picture.duration * 48000)
    assert stems.dialogue.name == "HARBOUR_v001_DX.wav"
    assert stems.music is not None and stems.music.name == "HARBOUR_v001_MX.wav"


def test_dialogue_plus_music_is_the_mix_within_24_bit_rounding(
    sources: tuple[Path, Path], stems: Stems, tmp_path: Path
) -> None:
    cut, score = sources
    mix = _pcm_mix(cut, score, tmp_path / "mix.wav", stems.samples / 48000)
    summed = _stem(stems.dialogue) + _stem(stems.music)

    assert summed.shape == mix.shape
    assert np.max(np.abs(summed - mix)) <= 2 * LSB_24
    # Not trivially equal: the music stem is the score at the mix gain, then silence.
    tone, _ = soundfile.read(score, dtype="float64")
    music = _stem(stems.music)
    assert np.max(np.abs(music[: tone.shape[0]] - GAIN * tone)) <= LSB_24
    assert not music[tone.shape[0] :].any()


def test_a_delivery_gain_scales_both_stems_alike(
    sources: tuple[Path, Path], stems: Stems, tmp_path: Path
) -> None:
    cut, score = sources
    louder = write_stems(cut, score, tmp_path, "LOUDER_v001", score_gain=GAIN, gain_db=6.0)
    factor = 10 ** (6.0 / 20)
    for quiet, loud in ((stems.dialogue, louder.dialogue), (stems.music, louder.music)):
        assert np.max(np.abs(_stem(loud) - factor * _stem(quiet))) <= 4 * LSB_24


def test_a_film_without_a_score_gets_only_a_dialogue_stem(
    sources: tuple[Path, Path], tmp_path: Path
) -> None:
    only = write_stems(sources[0], None, tmp_path, "DRY_v001", score_gain=GAIN)

    assert only.music is None and only.dialogue.is_file()
    assert not (tmp_path / "DRY_v001_MX.wav").exists()


def test_the_stems_sum_to_the_films_own_aac_mix(
    sources: tuple[Path, Path], stems: Stems, tmp_path: Path
) -> None:
    cut, score = sources
    film = mix_and_encode(cut, score, tmp_path / "film.mp4", score_gain=GAIN)
    aac = read_audio(film).astype(np.float64)
    summed = (_stem(stems.dialogue) + _stem(stems.music))[: aac.shape[0]]

    residual = np.sqrt(np.mean((aac - summed) ** 2)) / np.sqrt(np.mean(summed**2))
    assert 20 * np.log10(residual) < -20.0  # AAC at 192 kb/s: well under 1% error power
