"""Timelines: the cut as FCPXML, FCP 7 XML and CMX3600 EDL, each read back through OTIO."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import opentimelineio as otio
import pytest

from tasks.deliver.names import deliverable_name, sequence_number
from tasks.deliver.timeline import build_timeline
from tasks.schema.film_plan import FilmPlan
from tasks.timelines import edl_timeline, reel_name, write_timelines
from tests.media_factory import make_clip, make_tone
from tests.test_score import harbour_plan


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> tuple[FilmPlan, Path, list[Path]]:
    """The harbour plan's sequences as files named by the scheme, and its real timeline."""
    folder = tmp_path_factory.mktemp("timelines")
    plan = harbour_plan()
    (folder / "sequences").mkdir()
    clips = [
        make_clip(
            folder / "sequences" / f"{deliverable_name(plan.title, sequence_number(s.index))}.mp4",
            frames=s.frames,
            fps=s.fps,
            size=(64, 48),
            audio="sine",
        )
        for s in plan.sequences
    ]
    return plan, folder, clips


@pytest.fixture(scope="module")
def written(delivered: tuple[FilmPlan, Path, list[Path]]) -> dict[str, Path]:
    plan, folder, clips = delivered
    score = make_tone(folder / "score.flac", seconds=sum(s.seconds for s in plan.sequences))
    timeline = build_timeline(plan, clips, score)
    return write_timelines(timeline, folder, deliverable_name(plan.title))


def _picture_clips(path: Path) -> list[otio.schema.Clip]:
    timeline = otio.adapters.read_from_file(str(path))
    [picture] = timeline.video_tracks()
    return list(picture.find_clips())


def _file_of(clip: otio.schema.Clip, folder: Path) -> Path:
    url = clip.media_reference.target_url
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else (folder / url).resolve()


@pytest.mark.parametrize("key", ["otio", "fcpxml", "xml", "edl"])
def test_each_format_reads_back_with_one_clip_per_sequence_to_the_frame(
    key: str, delivered: tuple[FilmPlan, Path, list[Path]], written: dict[str, Path]
) -> None:
    plan, folder, clips = delivered
    path = written[key]
    read = _picture_clips(path)

    assert path.name == f"HARBOUR_A_TEST_REEL_v001{path.suffix}"
    assert len(read) == len(plan.sequences)
    for clip, sequence, file in zip(read, plan.sequences, clips, strict=True):
        duration = clip.duration()
        assert duration.rate == sequence.fps
        assert duration.value == sequence.frames
        assert _file_of(clip, folder) == file.resolve()


def test_the_edl_names_each_sequence_file_by_reel_and_clip_name(
    delivered: tuple[FilmPlan, Path, list[Path]], written: dict[str, Path]
) -> None:
    _, _, clips = delivered
    text = written["edl"].read_text(encoding="utf-8")
    read = _picture_clips(written["edl"])

    assert [c.metadata["cmx_3600"]["reel"] for c in read] == ["SEQ0010", "SEQ0020", "SEQ0030"]
    assert [c.name for c in read] == [f.stem for f in clips]
    for clip in clips:
        assert f"* FROM CLIP NAME:  {clip.stem}" in text
        assert f"* FROM CLIP: sequences/{clip.name}" in text
    # Every event line holds its reel in CMX3600's 8-character field.
    events = [line for line in text.splitlines() if line[:3].isdigit()]
    assert [line.split()[1] for line in events] == ["SEQ0010", "SEQ0020", "SEQ0030"]


def test_the_score_is_on_an_audio_track_of_the_xml_formats(written: dict[str, Path]) -> None:
    for key in ("otio", "fcpxml", "xml"):
        timeline = otio.adapters.read_from_file(str(written[key]))
        audio = [c.name for t in timeline.audio_tracks() for c in t.find_clips()]
        assert "score" in audio, key


def test_reels_fit_eight_characters_and_never_repeat() -> None:
    assert reel_name("HARBOUR_SEQ0120_v003", 4) == "SEQ0120"
    assert reel_name("some other file", 4) == "R005"

    rate = 24
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for name in ("A_SEQ0010_v001", "A_SEQ0010_v002", "unnamed"):
        span = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(10, rate)
        )
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=otio.schema.ExternalReference(target_url=f"/x/{name}.mp4"),
                source_range=span,
            )
        )
    timeline = otio.schema.Timeline(tracks=[track])
    reels = [
        c.metadata["cmx_3600"]["reel"] for c in edl_timeline(timeline, Path("/x")).find_clips()
    ]
    assert reels == ["SEQ0010", "R002", "R003"]
    assert all(len(reel) <= 8 for reel in reels)
