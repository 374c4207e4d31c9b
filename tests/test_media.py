"""The media module on real ffmpeg output: frames, probing, editing, score, mix, checks."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tasks.media import (
    DiskFull,
    MediaError,
    MediaInvalid,
    assemble_score,
    concat_copy,
    contact_sheet,
    crossfade_concat,
    extract_last_frame,
    first_frame,
    frame_drift,
    integrated_loudness,
    mix_and_encode,
    mix_and_encode_args,
    mute_all,
    mute_range,
    mute_range_args,
    probe,
    read_audio,
    run_ffmpeg,
    verify_decodes,
    verify_film,
)
from tasks.media.mix import assembled_length
from tests.media_factory import make_clip, make_tone, video_packet_digest

RATE = 48000


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def speech_clip(media: Path) -> Path:
    return make_clip(media / "speech.mp4", frames=72, audio="speech")


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float64)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def test_probe_counts_every_frame_and_reports_both_streams(speech_clip: Path) -> None:
    info = probe(speech_clip)
    assert info.video is not None and info.audio is not None
    assert info.video.frames == 72
    assert info.video.fps == 24.0
    assert (info.video.width, info.video.height, info.video.pix_fmt) == (320, 240, "yuv420p")
    assert info.audio.rate == RATE and info.audio.channels == 2
    assert info.audio.duration == pytest.approx(3.0, abs=0.05)


def test_probe_counts_frames_of_a_container_without_a_frame_index(media: Path) -> None:
    mkv = media / "clip.mkv"
    run_ffmpeg(["-i", str(make_clip(media / "for_mkv.mp4", frames=31)), "-c", "copy", str(mkv)])
    info = probe(mkv)
    assert info.video is not None and info.video.frames == 31


def test_last_frame_of_an_unindexed_mkv_is_still_the_final_frame(media: Path) -> None:
    clip = make_clip(media / "red_end_mkv.mp4", frames=40, last_frame_color="red")
    mkv = media / "red_end.mkv"
    run_ffmpeg(["-i", str(clip), "-c", "copy", str(mkv)])
    pixels = _rgb(extract_last_frame(mkv, media / "mkv_carry.png"))
    assert pixels[..., 0].mean() > 240 and pixels[..., 1:].mean() < 15


def test_read_audio_decodes_a_44k_file_to_exactly_48k_and_mono(media: Path) -> None:
    clip = make_clip(media / "cd_rate.mp4", frames=48, audio="sine", audio_rate=44100)
    stereo = read_audio(clip)
    mono = read_audio(clip, mono=True)
    assert stereo.dtype == np.float32 and stereo.shape == (2 * RATE, 2)
    assert mono.shape == (2 * RATE, 1)
    assert read_audio(clip, rate=16000).shape == (32000, 2)


def test_silence_measures_at_the_floor_and_a_short_clip_still_measures() -> None:
    assert integrated_loudness(np.zeros((RATE, 2), dtype=np.float32), RATE) == -70.0
    t = np.arange(int(0.2 * RATE)) / RATE
    blip = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[:, None]
    assert integrated_loudness(blip, RATE) == pytest.approx(-9.0, abs=1.0)


def test_last_frame_is_the_exact_final_frame_where_a_naive_end_seek_is_not(media: Path) -> None:
    clip = make_clip(media / "red_end.mp4", frames=61, last_frame_color="red", gop=250)
    last = extract_last_frame(clip, media / "carry.png")
    pixels = _rgb(last)
    assert pixels[..., 0].mean() > 240 and pixels[..., 1:].mean() < 15
    naive = media / "naive.png"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-sseof",
            "-0.1",
            "-i",
            str(clip),
            "-frames:v",
            "1",
            str(naive),
        ],
        check=True,
    )
    assert _rgb(naive)[..., 1:].mean() > 60, "the naive seek should have missed the red frame"


def test_first_frame_is_the_source_picture(media: Path) -> None:
    clip = make_clip(media / "red_end_first.mp4", frames=30, last_frame_color="red")
    assert first_frame(clip)[..., 1:].mean() > 60


def test_an_extracted_frame_is_readable_by_others_and_no_temp_file_is_left(media: Path) -> None:
    clip = make_clip(media / "red_end_file.mp4", frames=30, last_frame_color="red")
    folder = media / "lasts"
    last = extract_last_frame(clip, folder / "last.png")
    assert [p.name for p in folder.iterdir()] == ["last.png"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert last.stat().st_mode & 0o777 == 0o666 & ~umask, "others must be able to read it"


def test_frame_drift_is_zero_for_the_same_frame_and_sees_a_darker_flatter_one(
    media: Path, speech_clip: Path
) -> None:
    key = media / "key.png"
    Image.fromarray(first_frame(speech_clip)).save(key)
    assert frame_drift(key, key).score == 0.0
    faded = media / "faded.png"
    Image.fromarray((_rgb(key) * 0.5).astype(np.uint8)).save(faded)
    drift = frame_drift(key, faded)
    assert all(shift < -20 for shift in drift.channel_shift)
    assert drift.contrast_ratio == pytest.approx(0.5, abs=0.02)
    assert drift.score > 0.9


def test_contact_sheet_is_a_grid_of_labelled_thumbnails(media: Path, speech_clip: Path) -> None:
    pixels = first_frame(speech_clip)
    path = media / "sheet_src.png"
    Image.fromarray(pixels).save(path)
    frames = [(pixels if i % 2 else path, f"seq {i}") for i in range(5)]  # pixels or a file
    sheet = contact_sheet(frames, media / "sheet.png")
    with Image.open(sheet) as img:
        assert img.size == (3 * 320, 2 * (240 + 22))


def test_concat_copy_adds_up_frames_and_durations_even_with_quotes_in_names(
    media: Path,
) -> None:
    lengths = [48, 31, 72]
    clips = [
        make_clip(media / f"it's seq {i}.mp4", frames=n, audio="speech")
        for i, n in enumerate(lengths)
    ]
    joined = concat_copy(clips, media / "joined.mp4")
    info = probe(joined)
    assert info.video is not None and info.audio is not None
    assert info.video.frames == sum(lengths)
    assert info.video.duration == pytest.approx(sum(lengths) / 24, abs=0.01)
    assert info.audio.duration == pytest.approx(info.video.duration, abs=0.05)
    assert sorted(p.name for p in media.glob(".joined*")) == []


def test_crossfade_concat_shortens_the_film_by_each_overlap(media: Path) -> None:
    clips = [make_clip(media / f"fade{i}.mp4", frames=48, audio="sine") for i in range(3)]
    joined = crossfade_concat(clips, media / "faded.mp4", seconds=0.5)
    info = probe(joined)
    assert info.video is not None and info.audio is not None
    assert info.video.duration == pytest.approx(6.0 - 2 * 0.5, abs=0.05)
    assert info.audio.duration == pytest.approx(info.video.duration, abs=0.05)


def test_score_lasts_exactly_the_film_and_music_ends_where_the_arithmetic_says(
    media: Path,
) -> None:
    cues = [
        make_tone(media / "cue0.flac", seconds=3.0, frequency=220),
        make_tone(media / "cue1.mp3", seconds=4.0, frequency=330, rate=44100),
    ]
    music_s = assembled_length([3.0, 4.0], 2.0)
    score = assemble_score(cues, media / "score.flac", total_s=8.0, fade_out_s=1.0)
    info = probe(score)
    assert info.audio is not None and info.audio.rate == RATE and info.audio.codec == "flac"
    samples = read_audio(score)
    assert samples.shape[0] == 8 * RATE
    assert _rms(samples[: int((music_s - 0.2) * RATE)]) > 0.05
    assert _rms(samples[int((music_s + 0.2) * RATE) :]) < 1e-3


def test_score_fades_out_at_the_end_of_the_film(media: Path) -> None:
    cue = make_tone(media / "long_cue.flac", seconds=10.0)
    samples = read_audio(assemble_score([cue], media / "tail.flac", total_s=6.0, fade_out_s=3.0))
    assert samples.shape[0] == 6 * RATE
    assert _rms(samples[-RATE // 10 :]) < 0.1 * _rms(samples[RATE : 2 * RATE])


@given(
    durations=st.lists(st.floats(min_value=2.0, max_value=240.0), min_size=1, max_size=12),
    extra=st.floats(min_value=2.0, max_value=240.0),
)
def test_assembled_length_is_the_sum_minus_one_crossfade_per_join(
    durations: list[float], extra: float
) -> None:
    total = assembled_length(durations, 2.0)
    assert total == pytest.approx(sum(durations) - 2.0 * (len(durations) - 1))
    assert total >= max(durations) - 1e-9
    assert assembled_length([*durations, extra], 2.0) == pytest.approx(total + extra - 2.0)


def test_a_cue_shorter_than_the_crossfade_cannot_be_chained() -> None:
    with pytest.raises(ValueError, match="crossfade"):
        assembled_length([5.0, 1.0, 5.0], 2.0)


def _atom_order(path: Path) -> list[str]:
    data = path.read_bytes()
    atoms, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        atoms.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        offset += size
    return atoms


def test_mixed_film_is_a_distribution_file_players_accept(media: Path, speech_clip: Path) -> None:
    score = make_tone(media / "bed.flac", seconds=3.0)
    master = media / "film.master.mp4"
    film = mix_and_encode(speech_clip, score, media / "film.mp4", master=master)
    info = verify_film(film, expected_duration_s=3.0)
    assert info.video is not None and info.audio is not None
    assert info.video.pix_fmt == "yuv420p" and info.video.profile == "High"
    assert info.video.level == 40 and info.video.frames == 72
    atoms = _atom_order(film)
    assert atoms.index("moov") < atoms.index("mdat")
    master_video = probe(master).video
    assert master_video is not None and master_video.pix_fmt == "yuv444p10le"


def _band_level(samples: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples[:, 0].astype(np.float64)))
    freqs = np.fft.rfftfreq(samples.shape[0], 1 / RATE)
    return float(spectrum[(freqs > hz - 5) & (freqs < hz + 5)].max())


def test_score_is_audible_under_dialogue_at_a_quarter_of_its_level(
    media: Path, speech_clip: Path
) -> None:
    score = make_tone(media / "hum.flac", seconds=3.0, frequency=1500)
    with_score = read_audio(mix_and_encode(speech_clip, score, media / "with.mp4"))
    without = read_audio(mix_and_encode(speech_clip, None, media / "without.mp4"))
    assert _band_level(with_score, 1500) > 20 * _band_level(without, 1500)
    silent = make_clip(media / "silent.mp4", frames=72, audio="silence")
    bed = read_audio(mix_and_encode(silent, score, media / "bed_only.mp4"))
    source = read_audio(score)
    assert _rms(bed[RATE : 2 * RATE]) == pytest.approx(0.25 * _rms(source), rel=0.05)
    # Dialogue is not halved by amix: the mix keeps it at full level.
    assert _rms(without) == pytest.approx(_rms(read_audio(speech_clip)), rel=0.05)


def test_mix_graph_keeps_dialogue_at_unity_and_never_uses_loudnorm(tmp_path: Path) -> None:
    args = mix_and_encode_args(
        tmp_path / "seq.mp4",
        tmp_path / "score.flac",
        tmp_path / "out.mp4",
        score_gain=0.25,
        duration_s=3.0,
    )
    graph = args[args.index("-filter_complex") + 1]
    assert "normalize=0" in graph and "volume=0.25" in graph and "loudnorm" not in graph
    assert args[args.index("-ar") + 1] == "48000"
    assert args[args.index("-profile:v") + 1] == "high"
    assert args[args.index("-level:v") + 1] == "4.0"


def test_verify_film_rejects_44k_audio(media: Path) -> None:
    clip = make_clip(media / "cd.mp4", frames=24, audio_rate=44100)
    with pytest.raises(MediaInvalid, match="44100 Hz"):
        verify_film(clip, expected_duration_s=1.0)


def test_verify_film_rejects_a_film_without_audio(media: Path) -> None:
    with pytest.raises(MediaInvalid, match="no audio stream"):
        verify_film(
            make_clip(media / "mute.mp4", frames=24, audio="none"), expected_duration_s=None
        )


def test_verify_film_rejects_the_wrong_length(speech_clip: Path) -> None:
    with pytest.raises(MediaInvalid, match=r"expects 4\.000 s"):
        verify_film(speech_clip, expected_duration_s=4.0)


@pytest.mark.parametrize("faststart", [True, False])
def test_verify_film_rejects_a_truncated_mp4(media: Path, faststart: bool) -> None:
    source = make_clip(media / f"whole{faststart}.mp4", frames=96, audio="speech")
    whole = media / f"whole_fs{faststart}.mp4"
    flags = ["-movflags", "+faststart"] if faststart else []
    run_ffmpeg(["-i", str(source), "-c", "copy", *flags, str(whole)])
    verify_film(whole, expected_duration_s=4.0)
    cut = media / f"cut{faststart}.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(MediaInvalid):
        verify_film(cut, expected_duration_s=4.0)
    with pytest.raises(MediaInvalid):
        verify_decodes(cut)


def test_a_decoding_probe_refuses_damaged_bytes_a_plain_probe_misses(media: Path) -> None:
    whole = make_clip(media / "intact.mp4", frames=96, audio="speech")
    assert probe(whole, decode=True).video.frames == 96  # type: ignore[union-attr]
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = bytes(range(256)) * 15 + bytes(160)
    damaged = media / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    assert probe(damaged).video is not None  # the index is intact: a plain probe sees no harm
    with pytest.raises(MediaInvalid, match="does not decode cleanly"):
        probe(damaged, decode=True)
    with pytest.raises(MediaInvalid):
        verify_decodes(damaged)  # a second decoder agrees


def test_mute_range_silences_only_that_range_and_copies_the_video(media: Path) -> None:
    clip = make_clip(media / "hum.mp4", frames=96, audio="sine")
    muted = mute_range(clip, media / "hum_muted.mp4", start_s=1.0, end_s=2.5)
    samples = read_audio(muted)
    assert _rms(samples[int(1.05 * RATE) : int(2.45 * RATE)]) < 1e-4
    assert _rms(samples[: int(0.95 * RATE)]) > 0.05
    assert _rms(samples[int(2.55 * RATE) :]) > 0.05
    assert video_packet_digest(muted) == video_packet_digest(clip)


def test_mute_all_keeps_a_silent_track_of_the_same_length(media: Path) -> None:
    clip = make_clip(media / "noisy.mp4", frames=48, audio="noise")
    muted = mute_all(clip, media / "noisy_muted.mp4")
    info = probe(muted)
    assert info.audio is not None and info.audio.duration == pytest.approx(2.0, abs=0.05)
    assert _rms(read_audio(muted)) < 1e-4
    assert video_packet_digest(muted) == video_packet_digest(clip)


def test_mute_filter_holds_only_numbers_never_the_file_name(tmp_path: Path) -> None:
    src = tmp_path / "scene'],volume=9[x.mp4"
    args = mute_range_args(src, tmp_path / "out.mp4", start_s=1.0, end_s=2.0)
    assert str(src) not in args[args.index("-filter_complex") + 1]


def test_a_full_disk_is_reported_with_its_folder() -> None:
    with pytest.raises(DiskFull, match="disk holding /dev"):
        run_ffmpeg(["-f", "lavfi", "-i", "sine=d=30", "-f", "wav", "/dev/full"])


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; /dev/full covers the mapping")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_film_that_does_not_fit_raises_disk_full_and_leaves_no_partial_file(
    speech_clip: Path, tiny_disk: Path
) -> None:
    with pytest.raises(DiskFull, match=str(tiny_disk)):
        mix_and_encode(speech_clip, None, tiny_disk / "film.mp4")
    assert list(tiny_disk.iterdir()) == []


def test_ffmpeg_failures_carry_ffmpegs_own_message(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="No such file"):
        run_ffmpeg(["-i", str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4")])
