"""The film as a timeline: OpenTimelineIO, one clip per sequence, scene and line markers.

Each clip is named as its delivered sequence file (`TITLE_SEQ0010_v001`), the timeline as
the film (`TITLE_v001`); `tasks.timelines` writes it in every editor's format.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from pathlib import Path

import opentimelineio as otio  # type: ignore[import-untyped]

from tasks import media
from tasks.deliver.names import sequence_label
from tasks.schema.film_plan import FilmPlan, Sequence
from tasks.timelines import write_timelines


def build_timeline(
    plan: FilmPlan, clips: Seq[Path], score: Path | None, *, name: str | None = None
) -> otio.schema.Timeline:
    """One video clip per sequence (markers at scene starts and lines), the score as audio;
    `name` the timeline's (default: the film's title)."""
    rate = float(plan.fps)
    timeline = otio.schema.Timeline(name=name or plan.title)
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
            name=clip.stem,
            media_reference=otio.schema.ExternalReference(
                target_url=clip.resolve().as_uri(), available_range=available
            ),
            source_range=available,
            metadata={
                "reelflow": {
                    "sequence": sequence.index,
                    "seed": sequence.seed,
                    "label": sequence_label(sequence),
                }
            },
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


def write_film_timelines(
    plan: FilmPlan, clips: Seq[Path], score: Path | None, folder: Path, name: str
) -> dict[str, Path]:
    """`<folder>/<name>.otio`, `.fcpxml`, `.xml` and `.edl`, by key (`tasks.timelines`)."""
    return write_timelines(build_timeline(plan, clips, score, name=name), folder, name)


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
