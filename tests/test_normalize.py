"""Loudness normalization on real renders: even levels, safe peaks, video untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from tasks.media import MediaInvalid, probe
from tasks.normalize import apply_gain, measure, plan_gain
from tasks.schema.outcomes import Loudness
from tests.media_factory import make_clip, video_packet_digest

CEILING = -1.5


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("normalize")


def test_sequences_rendered_20_db_apart_end_within_1_lu(media: Path) -> None:
    results = []
    for gain in (-24.0, -14.0, -4.0):
        clip = make_clip(media / f"seq{gain}.mp4", frames=96, audio="speech", gain_db=gain)
        results.append(apply_gain(clip, media / f"seq{gain}.norm.mp4", plan_gain(measure(clip))))
    noisy = make_clip(media / "rain.mp4", frames=96, audio="noise", gain_db=-6.0)
    results.append(apply_gain(noisy, media / "rain.norm.mp4", plan_gain(measure(noisy))))
    before = [r.before.integrated_lufs for r in results]
    after = [r.after.integrated_lufs for r in results]
    assert max(before) - min(before) > 19.0
    assert max(after) - min(after) < 1.0
    assert all(abs(level + 23.0) < 1.0 for level in after)
    assert all(r.after.true_peak_dbtp <= CEILING for r in results)


def test_a_silent_sequence_is_left_alone_and_the_report_says_why(media: Path) -> None:
    clip = make_clip(media / "quiet.mp4", frames=48, audio="silence")
    decision = plan_gain(measure(clip))
    assert not decision.apply and decision.gain_db == 0.0
    assert "silent" in decision.reason and "-70.0 LUFS" in decision.reason
    result = apply_gain(clip, media / "quiet.norm.mp4", decision)
    assert result.after.integrated_lufs == -70.0


def test_a_sequence_needing_no_gain_keeps_its_rendered_sound_without_another_encode(
    media: Path,
) -> None:
    clip = make_clip(media / "speech.mp4", frames=96, audio="speech", gain_db=-14.0)
    once = apply_gain(clip, media / "speech.norm.mp4", plan_gain(measure(clip)))
    assert once.path != clip and once.gain_db != 0.0
    # Normalizing the normalized file again: nothing to change, so it is the file itself.
    again = plan_gain(measure(once.path))
    assert not again.apply and "no change needed" in again.reason
    kept = apply_gain(once.path, media / "speech.norm2.mp4", again)
    assert kept.path == once.path and not (media / "speech.norm2.mp4").exists()
    assert kept.after == kept.before and abs(kept.after.integrated_lufs + 23.0) < 0.1
    # A silent render in 48 kHz AAC is kept as it is; at 44.1 kHz it is still made 48 kHz.
    quiet = make_clip(media / "hush.mp4", frames=48, audio="silence")
    assert apply_gain(quiet, media / "hush.norm.mp4", plan_gain(measure(quiet))).path == quiet
    cd = make_clip(media / "hush44.mp4", frames=48, audio="silence", audio_rate=44100)
    made = apply_gain(cd, media / "hush44.norm.mp4", plan_gain(measure(cd))).path
    sound = probe(made).audio
    assert made != cd and sound is not None and sound.rate == 48000


def test_a_faint_hiss_below_minus_50_lufs_is_not_amplified(media: Path) -> None:
    clip = make_clip(media / "hiss.mp4", frames=48, audio="noise", gain_db=-45.0)
    decision = plan_gain(measure(clip))
    assert not decision.apply and "effectively silent" in decision.reason


def test_a_clip_too_short_to_measure_is_skipped_with_its_length() -> None:
    decision = plan_gain(Loudness(integrated_lufs=-30.0, true_peak_dbtp=-10.0, duration_s=0.3))
    assert not decision.apply and "0.30 s" in decision.reason


def test_gain_is_capped_so_a_peaky_quiet_sequence_stays_under_the_ceiling(media: Path) -> None:
    # A sine is all peak: reaching -23 LUFS from far below would push it over the ceiling.
    loudness = Loudness(integrated_lufs=-40.0, true_peak_dbtp=-8.0, duration_s=5.0)
    decision = plan_gain(loudness)
    assert decision.gain_db == pytest.approx(6.5)
    assert "capped" in decision.reason
    clip = make_clip(media / "peaky.mp4", frames=72, audio="noise", gain_db=-3.0)
    result = apply_gain(clip, media / "peaky.norm.mp4", plan_gain(measure(clip), target_lufs=-6.0))
    assert result.after.true_peak_dbtp <= CEILING
    assert "capped" in result.reason


def test_normalizing_copies_the_video_and_forces_48k_audio(media: Path) -> None:
    clip = make_clip(media / "cd.mp4", frames=72, audio="speech", gain_db=-12.0, audio_rate=44100)
    result = apply_gain(clip, media / "cd.norm.mp4", plan_gain(measure(clip)))
    info = probe(result.path)
    assert info.audio is not None and info.video is not None
    assert info.audio.rate == 48000 and info.audio.codec == "aac"
    assert info.video.frames == 72
    assert abs(info.audio.duration - info.video.duration) < 0.05
    assert video_packet_digest(result.path) == video_packet_digest(clip)


def test_audio_with_nan_samples_is_refused_before_encoding(media: Path) -> None:
    broken = media / "broken.wav"
    samples = np.full((48000, 2), 0.1, dtype=np.float32)
    samples[1000] = np.nan
    soundfile.write(broken, samples, 48000, subtype="FLOAT")
    decision = plan_gain(Loudness(integrated_lufs=-20.0, true_peak_dbtp=-10.0, duration_s=1.0))
    with pytest.raises(MediaInvalid, match="NaN"):
        apply_gain(broken, media / "broken.m4a", decision)
    assert not (media / "broken.m4a").exists()
