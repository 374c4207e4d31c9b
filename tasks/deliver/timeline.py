"""The film as a timeline: OpenTimelineIO, one clip per sequence, scene and line markers."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from pathlib import Path

import opentimelineio as otio  # type: ignore[import-untyped]

from tasks import media
from tasks.deliver.names import sequence_label
from tasks.schema.film_plan import FilmPlan, Sequence


def build_timeline(plan: FilmPlan, clips: Seq[Path], score: Path | None) -> otio.schema.Timeline:
    """One video clip per sequence (markers at scene starts and lines), the score as audio."""
    rate = float(plan.fps)
    timeline = otio.schema.Timeline(name=plan.title)
    timeline.global_start_time = otio.opentime.RationalTime(0, rate)
    video = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
    total_frames = 0
    for sequence, clip in zip(plan.sequences, clips, strict=True):
        frames = _frame_count(clip)
        total_frames += frames
        available = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate)
        )
        item = otio.schema.Clip(
            name=sequence_label(sequence),
            media_reference=otio.schema.ExternalReference(
                target_url=clip.resolve().as_uri(), available_range=available
            ),
            source_range=available,
            metadata={"reelflow": {"sequence": sequence.index, "seed": sequence.seed}},
        )
        item.markers.extend(_markers(sequence, rate))
        video.append(item)
    timeline.tracks.append(video)
    if score is not None:
        music = otio.schema.Track(name="Score", kind=otio.schema.TrackKind.Audio)
        span = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(total_frames, rate)
        )
        music.append(
            otio.schema.Clip(
                name="score",
                media_reference=otio.schema.ExternalReference(
                    target_url=score.resolve().as_uri(), available_range=span
                ),
                source_range=span,
            )
        )
        timeline.tracks.append(music)
    return timeline


def write_timeline(plan: FilmPlan, clips: Seq[Path], score: Path | None, dest: Path) -> Path:
    """`timeline.otio`, written atomically."""
    timeline = build_timeline(plan, clips, score)
    with media.atomic_output(dest) as tmp:
        otio.adapters.write_to_file(timeline, str(tmp))
    return dest


def _frame_count(clip: Path) -> int:
    video = media.probe(clip).video
    if video is None:
        raise media.MediaInvalid(f"{clip} has no video stream")
    return video.frames


def _markers(sequence: Sequence, rate: float) -> list[otio.schema.Marker]:
    markers = []
    offset = 0
    for segment in sequence.segments:
        if segment.part == 0:
            markers.append(
                otio.schema.Marker(
                    name=f"scene {segment.scene_index}",
                    marked_range=otio.opentime.TimeRange(
                        otio.opentime.RationalTime(offset, rate),
                        otio.opentime.RationalTime(0, rate),
                    ),
                    color=otio.schema.MarkerColor.GREEN,
                )
            )
        offset += segment.frames
    for line in sequence.lines:
        start = round(line.start_s * rate)
        markers.append(
            otio.schema.Marker(
                name=f'{line.character}: "{line.line}"',
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, rate),
                    otio.opentime.RationalTime(round(line.end_s * rate) - start, rate),
                ),
                color=otio.schema.MarkerColor.YELLOW,
                metadata={"reelflow": {"scene": line.scene_index, "words": line.words}},
            )
        )
    return markers
