"""The cut keeps the sequences' own picture when it already meets the distribution profile:
joined by stream copy, only the sound encoded; a sequence that differs makes it re-encode once,
and the film says which."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.embedded import RunningSimulator
from tasks import media
from tasks.media.passthrough import (
    PictureSignature,
    decide_picture,
    distribution_misses,
    probe_picture,
)
from tasks.mux import mux_to_file
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import FilmFile
from tasks.schema.refs import MediaRef
from tests.media_factory import make_tone
from tests.test_score import harbour_plan, offline_studio, render_sequences, start_sim

SIM_PICTURE = PictureSignature(
    codec="h264",
    profile="High",
    level=13,
    pix_fmt="yuv420p",
    width=256,
    height=256,
    frame_rate="24",
    time_base="1/12288",
    extradata_sha256="ab" * 32,
)


def test_matching_sequences_are_copied_and_a_low_level_is_only_relabelled() -> None:
    decision = decide_picture([SIM_PICTURE] * 3)
    assert decision.joinable and decision.copied
    assert "level marked 4.0" in decision.note
    at_40 = SIM_PICTURE.model_copy(update={"level": 40})
    assert "level marked" not in decide_picture([at_40, at_40]).note


def test_a_sequence_with_other_parameters_makes_the_picture_re_encode_and_is_named() -> None:
    other = SIM_PICTURE.model_copy(update={"pix_fmt": "yuv444p", "extradata_sha256": "cd" * 32})
    decision = decide_picture([SIM_PICTURE, SIM_PICTURE, other])
    assert not decision.joinable and not decision.copied
    assert "sequence 2 differs" in decision.note
    assert "pixel format yuv444p vs yuv420p" in decision.note


def test_sequences_outside_the_profile_join_by_copy_but_re_encode_the_picture() -> None:
    high_level = SIM_PICTURE.model_copy(update={"level": 51})
    decision = decide_picture([high_level, high_level])
    assert decision.joinable and not decision.copied
    assert "level 5.1, above 4.0" in decision.note
    assert distribution_misses("hevc", "Main", 40, "yuv420p10le") == [
        "codec hevc, not h264",
        "profile Main, not High",
        "pixel format yuv420p10le, not yuv420p",
    ]


# --- real cuts of a simulator film -----------------------------------------------------


def _frame_hashes(path: Path) -> list[str]:
    """MD5 of every decoded picture: equal lists mean pixel-identical pictures."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in done.stdout.splitlines() if line[:1] != "#"]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_sim() as running:
        yield running


@pytest.fixture(scope="module")
def footage(
    sim: RunningSimulator, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Studio, FilmPlan, list[MediaRef], MediaRef, Path]:
    root = tmp_path_factory.mktemp("cut")
    studio = offline_studio(sim.url, root)
    plan = harbour_plan()
    clips = [r.video for r in render_sequences(studio, plan)]
    score = asyncio.run(
        studio.store.put(make_tone(root / "tone.flac", seconds=plan.duration_s + 1.0))
    )
    return studio, plan, clips, score, root / "out"


def _mux(
    footage: tuple[Studio, FilmPlan, list[MediaRef], MediaRef, Path],
    name: str,
    clips: list[MediaRef] | None = None,
) -> FilmFile:
    studio, plan, refs, score, out = footage
    return asyncio.run(mux_to_file(studio, plan, clips or refs, score, out / name))


def test_every_frame_of_the_film_is_pixel_identical_to_its_sequence(
    footage: tuple[Studio, FilmPlan, list[MediaRef], MediaRef, Path],
) -> None:
    studio, plan, clips, _, _ = footage
    film = _mux(footage, "Copied.mp4")
    assert film.picture.startswith("stream-copied from the sequences")
    sequences = [asyncio.run(studio.store.fetch(ref)) for ref in clips]
    # Any re-encode (even at crf 18) changes pixels; a stream copy changes none.
    assert _frame_hashes(film.path) == [h for s in sequences for h in _frame_hashes(s)]
    info = media.verify_film(film.path, expected_duration_s=plan.duration_s)
    media.check_distribution(film.path, info)
    assert info.audio is not None and info.audio.codec == "aac"


def test_a_sequence_encoded_otherwise_re_encodes_the_film_once_and_still_plays(
    footage: tuple[Studio, FilmPlan, list[MediaRef], MediaRef, Path],
) -> None:
    studio, plan, clips, _, out = footage
    out.mkdir(parents=True, exist_ok=True)
    second = asyncio.run(studio.store.fetch(clips[1]))
    odd = out / "odd.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(second), "-c:v", "libx264", "-preset",
         "ultrafast", "-pix_fmt", "yuv444p", "-c:a", "copy", str(odd)],
        check=True,
    )  # fmt: skip
    probed = probe_picture(odd)
    assert probed is not None and probed.signature.pix_fmt == "yuv444p"
    mixed = [clips[0], asyncio.run(studio.store.put(odd)), clips[2]]
    film = _mux(footage, "Re-encoded.mp4", mixed)
    assert film.picture.startswith("re-encoded: sequence 1 differs from sequence 0")
    info = media.verify_film(film.path, expected_duration_s=plan.duration_s)
    media.check_distribution(film.path, info)
    assert info.video is not None and info.video.frames == sum(s.frames for s in plan.sequences)
