"""Mezzanine masters: ProRes 422 HQ and DNxHR HQ with 24-bit PCM, frame for frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.media import MediaError, probe, read_audio
from tasks.media.mezzanine import MezzanineKind, encode_mezzanine, mezzanine_args, mezzanine_path
from tests.media_factory import make_clip

FRAMES = 37


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mezzanine")
    return make_clip(root / "FILM_v001.mp4", frames=FRAMES, size=(256, 144), audio="speech")


@pytest.mark.parametrize(
    ("kind", "suffix", "codec", "profile", "pix_fmt"),
    [
        ("prores", ".mov", "prores", "HQ", "yuv422p10le"),
        ("dnxhr", ".mov", "dnxhd", "DNXHR HQ", "yuv422p"),
        ("dnxhr", ".mxf", "dnxhd", "DNXHR HQ", "yuv422p"),
    ],
)
def test_the_master_probes_as_its_codec_with_every_frame_and_pcm_audio(
    kind: MezzanineKind,
    suffix: str,
    codec: str,
    profile: str,
    pix_fmt: str,
    film: Path,
    tmp_path: Path,
) -> None:
    master = encode_mezzanine(film, tmp_path / f"master{suffix}", kind)
    info = probe(master)

    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.profile, info.video.pix_fmt) == (codec, profile, pix_fmt)
    assert info.video.frames == FRAMES
    assert (info.audio.codec, info.audio.rate) == ("pcm_s24le", 48000)
    # The film's sound, sample for sample (24-bit PCM rounds below 1e-6).
    source = read_audio(film)
    delivered = read_audio(master)[: source.shape[0]]
    assert delivered.shape == source.shape
    assert np.max(np.abs(delivered - source)) < 1e-6


def test_a_separate_mix_becomes_the_masters_sound(film: Path, tmp_path: Path) -> None:
    other = make_clip(tmp_path / "mix.mp4", frames=FRAMES, size=(64, 48), audio="sine")
    args = mezzanine_args(film, tmp_path / "m.mov", "prores", audio=other)
    master = encode_mezzanine(film, tmp_path / "m.mov", "prores", audio=other)

    assert args.count("-i") == 2 and args[args.index("-vcodec") + 1] == "prores_ks"
    assert args[args.index("-profile:v") + 1] == "3"
    expected = read_audio(other)
    assert np.max(np.abs(read_audio(master)[: expected.shape[0]] - expected)) < 1e-6


def test_masters_are_named_beside_the_film(film: Path) -> None:
    assert mezzanine_path(film, "prores").name == "FILM_v001_prores.mov"
    assert mezzanine_path(film, "dnxhr").name == "FILM_v001_dnxhr.mov"


def test_a_master_in_the_wrong_container_or_size_is_refused(film: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"a prores master is written as \.mov"):
        encode_mezzanine(film, tmp_path / "m.mxf", "prores")
    tiny = make_clip(tmp_path / "tiny.mp4", frames=5, size=(64, 48))
    with pytest.raises(MediaError, match="DNxHR needs at least 256x120: choose the prores"):
        encode_mezzanine(tiny, tmp_path / "m.mov", "dnxhr")
    assert not (tmp_path / "m.mov").exists()
