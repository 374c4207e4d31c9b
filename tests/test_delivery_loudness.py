"""Delivery loudness: each profile met as measured by two independent meters.

pyloudnorm (reelflow's own meter) decides and verifies; ffmpeg's `ebur128` filter, a
separate BS.1770 implementation with its own true-peak oversampling, checks the result.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tasks.media import MediaError, probe, read_audio
from tasks.media.loudness import (
    PROFILES,
    DeliveryProfileError,
    MixLoudness,
    delivery_profile,
    plan_correction,
)
from tasks.media.loudness_correct import (
    correct_film_loudness,
    correct_loudness_args,
    measure_film,
)
from tasks.media.mezzanine import AUDIO_PCM_24, encode_mezzanine
from tasks.schema.delivery import DEFAULT_PROFILE, PROFILE_NAMES
from tests.loudness_meters import ebur128
from tests.media_factory import make_clip, speech_wav, video_packet_digest

SECONDS = 8.0
LINE = "Make him follow you in, and keep the lamp burning until morning. The boat is late."
# The spoken line lasts about 4.5 s from the start of the film.
SPOKEN = [(0.0, 4.6)]


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True
    )


def make_film(dest: Path, audio_graph: str, *, speech: Path | None = None) -> Path:
    """A tiny grey picture for SECONDS with stereo AAC audio made by `audio_graph`.

    The graph reads [1:a] (speech, when given) and [tone] (a 220 Hz sine, the "score").
    """
    inputs = ["-f", "lavfi", "-i", f"color=gray:size=64x48:rate=24:duration={SECONDS}"]
    if speech is not None:
        inputs += ["-i", str(speech)]
    tone = f"sine=frequency=220:sample_rate=48000:duration={SECONDS}[tone];"
    _ffmpeg(
        *inputs,
        "-filter_complex",
        tone + audio_graph + ",aformat=channel_layouts=stereo,apad,atrim=0:8[a]",
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-ar",
        "48000",
        str(dest),
    )
    return dest


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loudness")
    line = speech_wav(root / "line.wav", LINE)
    return {
        # The line, then the score alone under it: about -34 LUFS, the score 20 dB down.
        "quiet_mix": make_film(
            root / "quiet_mix.mp4",
            "[1:a]volume=-12dB,apad[d];[tone]volume=-20dB[m];[d][m]amix=inputs=2:normalize=0",
            speech=line,
        ),
        # Digital silence but for 1.5 s of speech in the middle.
        "one_section": make_film(
            root / "one_section.mp4",
            "[1:a]atrim=0:1.5,volume=-15dB,adelay=3000:all=1[d];[tone]volume=0[m];"
            "[d][m]amix=inputs=2:normalize=0",
            speech=line,
        ),
        "silent": make_film(root / "silent.mp4", "[tone]volume=0"),
        # Real sound at about -62 LUFS: reaching -23 LUFS would lift its noise floor 39 dB.
        "whisper": make_film(root / "whisper.mp4", "[tone]volume=-40dB"),
        # Already at about -23 LUFS with peaks far below -1 dBTP.
        "on_target": make_film(root / "on_target.mp4", "[tone]volume=-1dB"),
    }


@pytest.mark.parametrize("name", list(PROFILES))
def test_each_profile_is_met_by_both_meters(
    name: str, films: dict[str, Path], tmp_path: Path
) -> None:
    profile = PROFILES[name]
    src = films["quiet_mix"]
    result = correct_film_loudness(src, tmp_path / f"{name}.mp4", profile, dialogue_regions=SPOKEN)
    regions = SPOKEN if profile.dialogue_gated else ()
    ours = result.after.dialogue_lufs if profile.dialogue_gated else result.after.integrated_lufs
    theirs = ebur128(result.path, regions)
    peak = ebur128(result.path)

    assert result.decision.changes_audio and result.encodes >= 1
    assert result.meets_profile, result.reason
    assert abs(theirs.integrated - profile.target_lufs) <= profile.tolerance_lu
    assert ours is not None and abs(ours - theirs.integrated) <= 0.2
    assert peak.true_peak <= profile.true_peak_dbtp
    # Audio only: the picture is the source's packets, the audio 48 kHz and as long as before.
    assert video_packet_digest(result.path) == video_packet_digest(src)
    after = probe(result.path).audio
    assert after is not None and after.rate == 48000
    assert read_audio(result.path).shape == read_audio(src).shape


def test_the_limiter_acts_only_where_the_gain_would_break_the_ceiling(
    films: dict[str, Path],
) -> None:
    measured = measure_film(films["quiet_mix"])
    gentle = plan_correction(measured, PROFILES["ebu-r128"])
    loud = plan_correction(measured, PROFILES["streaming"])

    assert gentle.outcome == "gain" and gentle.limiter_ceiling_dbtp is None
    assert measured.true_peak_dbtp + gentle.gain_db < PROFILES["ebu-r128"].true_peak_dbtp
    assert loud.outcome == "gain_and_limit"
    assert measured.true_peak_dbtp + loud.gain_db > PROFILES["streaming"].true_peak_dbtp
    assert loud.limiter_ceiling_dbtp is not None
    assert loud.limiter_ceiling_dbtp < PROFILES["streaming"].true_peak_dbtp


def test_the_correction_reencodes_audio_only_at_48_khz_without_loudnorm(tmp_path: Path) -> None:
    plain = correct_loudness_args(
        Path("film.mp4"), tmp_path / "out.mp4", gain_db=3.0, limiter_ceiling_dbtp=None
    )
    limited = correct_loudness_args(
        Path("film.mp4"), tmp_path / "out.mp4", gain_db=9.0, limiter_ceiling_dbtp=-1.3
    )
    for args in (plain, limited):
        assert args[args.index("-vcodec") + 1] == "copy"
        assert args[args.index("-ar") + 1] == "48000"
        assert not any("loudnorm" in arg for arg in args)
    graph = limited[limited.index("-filter_complex") + 1]
    assert "alimiter" not in plain[plain.index("-filter_complex") + 1]
    # Limited at 4x the rate (true peaks), then back to 48 kHz.
    assert graph.index("aresample=192000") < graph.index("alimiter") < graph.rindex("48000")


def test_a_film_silent_but_for_one_short_section_still_meets_the_profile(
    films: dict[str, Path], tmp_path: Path
) -> None:
    profile = PROFILES["ebu-r128"]
    result = correct_film_loudness(films["one_section"], tmp_path / "one.mp4", profile)
    theirs = ebur128(result.path)

    assert result.meets_profile, result.reason
    assert abs(theirs.integrated - profile.target_lufs) <= profile.tolerance_lu
    assert abs(result.after.integrated_lufs - theirs.integrated) <= 0.2
    assert theirs.true_peak <= profile.true_peak_dbtp


def test_a_silent_film_is_delivered_unchanged_with_the_reason(
    films: dict[str, Path], tmp_path: Path
) -> None:
    result = correct_film_loudness(films["silent"], tmp_path / "s.mp4", PROFILES["ebu-r128"])

    assert result.decision.outcome == "cannot" and not result.meets_profile
    assert "silent" in result.reason and "check that its sequences have sound" in result.reason
    assert result.encodes == 0
    assert result.path.read_bytes() == films["silent"].read_bytes()


def test_a_film_needing_more_gain_than_its_noise_floor_allows_is_refused(
    films: dict[str, Path], tmp_path: Path
) -> None:
    result = correct_film_loudness(films["whisper"], tmp_path / "w.mp4", PROFILES["ebu-r128"])

    assert result.decision.outcome == "cannot" and result.encodes == 0
    assert "noise" in result.reason and "more than the 24 dB" in result.reason


def test_a_film_already_within_its_profile_is_not_reencoded(
    films: dict[str, Path], tmp_path: Path
) -> None:
    src = films["on_target"]
    result = correct_film_loudness(src, tmp_path / "t.mp4", PROFILES["ebu-r128"])

    assert result.decision.outcome == "within" and result.meets_profile
    assert result.encodes == 0
    assert result.path.read_bytes() == src.read_bytes()
    assert abs(ebur128(src).integrated + 23.0) <= 0.5


def test_the_loudness_range_agrees_with_ebur128(films: dict[str, Path]) -> None:
    assert (
        abs(measure_film(films["quiet_mix"]).loudness_range_lu - ebur128(films["quiet_mix"]).lra)
        <= 0.5
    )


def test_a_dialogue_gated_profile_without_dialogue_is_judged_on_the_whole_programme() -> None:
    measured = MixLoudness(
        integrated_lufs=-35.0,
        loudness_range_lu=5.0,
        true_peak_dbtp=-20.0,
        dialogue_lufs=None,
        duration_s=10.0,
    )
    decision = plan_correction(measured, PROFILES["dialogue-gated"])

    assert decision.outcome == "gain" and decision.gain_db == pytest.approx(8.0)
    assert "no dialogue to gate on" in decision.reason


def test_an_unknown_profile_is_refused_with_the_known_names() -> None:
    with pytest.raises(DeliveryProfileError, match="choose one of: ebu-r128, streaming"):
        delivery_profile("ebu-r129")


def test_a_pcm_master_is_corrected_and_stays_pcm(films: dict[str, Path], tmp_path: Path) -> None:
    master = encode_mezzanine(films["quiet_mix"], tmp_path / "master.mov", "prores")
    result = correct_film_loudness(
        master, tmp_path / "fixed.mov", PROFILES["ebu-r128"], audio_encoder=AUDIO_PCM_24
    )
    info = probe(result.path)

    assert result.meets_profile, result.reason
    assert abs(ebur128(result.path).integrated + 23.0) <= 0.5
    assert info.audio is not None and (info.audio.codec, info.audio.rate) == ("pcm_s24le", 48000)
    assert info.video is not None and info.video.codec == "prores"
    assert video_packet_digest(result.path) == video_packet_digest(master)


def test_a_film_without_sound_or_written_over_itself_is_refused(
    films: dict[str, Path], tmp_path: Path
) -> None:
    mute = make_clip(tmp_path / "mute.mp4", frames=12, size=(64, 48), audio="none")
    with pytest.raises(MediaError, match="has no audio stream: there is no mix to measure"):
        correct_film_loudness(mute, tmp_path / "out.mp4", PROFILES["ebu-r128"])
    with pytest.raises(MediaError, match="write the corrected film to a new path"):
        correct_film_loudness(films["quiet_mix"], films["quiet_mix"], PROFILES["ebu-r128"])


def test_the_profiles_a_screenplay_or_flag_may_name_are_exactly_the_defined_ones() -> None:
    assert set(PROFILE_NAMES) == set(PROFILES)
    assert DEFAULT_PROFILE in PROFILES
