"""The film folder an editor takes away: film, master, score, timeline, contact sheet, records.

<folder>/<title>.mp4            distribution film (written by the mux stage)
<folder>/<title>_master.mp4     optional grading master (4:4:4 10-bit, still SDR)
<folder>/score.flac             the assembled score, 48 kHz
<folder>/sequences/seqNNN.mp4   each sequence exactly as cut into the film
<folder>/timeline.otio          OpenTimelineIO: one clip per sequence, markers, score track
<folder>/contact_sheet.png      first frame of every sequence, labelled
<folder>/manifest.json          seeds, template hashes, servers, models, timings, cache hits
<folder>/report.md              a short summary linking all of the above
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Collection, Mapping
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

import opentimelineio as otio  # type: ignore[import-untyped]
from prefect.artifacts import acreate_markdown_artifact
from prefect.context import FlowRunContext

from tasks import media
from tasks.mux import master_path
from tasks.runtime.files import copy_atomic, write_atomic
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan, Sequence
from tasks.schema.outcomes import Deliverables, FilmFile, Footage, RenderedSequence, ScoreResult
from tasks.schema.refs import MediaRef

REPORT_ARTIFACT_KEY = "film-report"
_UNSAFE_IN_NAMES = re.compile(r'[\x00-\x1f/\\:*?"<>|]+')




def film_path(folder: Path, title: str) -> Path:
    """`<folder>/<title>.mp4`, with characters no file system accepts replaced."""
    name = _UNSAFE_IN_NAMES.sub("_", title).strip(" .") or "film"
    return folder / f"{name}.mp4"


def film_folder(out: Path, title: str) -> Path:
    """`OUT/<title as a slug>`: one folder per film."""
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "film"
    return out / slug


async def deliver_film(
    studio: Studio, footage: Footage, score: ScoreResult | None, film: FilmFile
) -> Deliverables:
    """The film folder an editor takes away: film, master, score, sequences, timeline,
    contact sheet, manifest and report."""
    plan, sequences = footage.plan, footage.sequences
    return await write_film_folder(
        studio,
        plan,
        film_folder(Path(studio.options.out), plan.title),
        film=film,
        sequences=footage.clips,
        renders=[r.rendered for r in sequences],
        score=score,
        animatic=studio.animatic,
        timings=studio.timer.seconds,
        cached_sequences=[
            r.sequence.index
            for r in sequences
            if r.sequence.index not in studio.stats.fresh_sequences
        ],
    )


def sequence_label(sequence: Sequence) -> str:
    """`seq N · scenes a-b` (or `scene a`), as on the contact sheet."""
    scenes = sequence.scene_indices
    span = f"scene {scenes[0]}" if len(scenes) == 1 else f"scenes {scenes[0]}-{scenes[-1]}"
    return f"seq {sequence.index} · {span}"


async def write_film_folder(
    studio: Studio,
    plan: FilmPlan,
    folder: Path,
    *,
    film: FilmFile,
    sequences: Seq[MediaRef],
    renders: Seq[RenderedSequence],
    score: ScoreResult | None,
    animatic: bool,
    timings: Mapping[str, float],
    cached_sequences: Collection[int] = (),
) -> Deliverables:
    """Write every deliverable beside the muxed film; publish the report as a Prefect artifact.

    `sequences` are the files cut into the film (normalized), `renders` the GPU renders they
    came from (seeds, servers, GPU time); `cached_sequences` the indices served from cache.
    """
    folder.mkdir(parents=True, exist_ok=True)
    film_file = film_path(folder, plan.title)
    if film.path.resolve() != film_file.resolve():
        await asyncio.to_thread(copy_atomic, film.path, film_file)
    master = None
    if film.master is not None:
        master = master_path(film_file)
        if film.master.resolve() != master.resolve():
            await asyncio.to_thread(copy_atomic, film.master, master)
    clips = []
    for sequence, ref in zip(plan.sequences, sequences, strict=True):
        local = await studio.store.fetch(ref)
        target = folder / "sequences" / f"seq{sequence.index:03d}.mp4"
        clips.append(await asyncio.to_thread(copy_atomic, local, target))
    score_file = None
    if score is not None:
        score_file = await asyncio.to_thread(
            copy_atomic, await studio.store.fetch(score.score), folder / "score.flac"
        )
    sheet = await asyncio.to_thread(
        write_contact_sheet, plan, clips, folder / "contact_sheet.png", studio.store.scratch
    )
    timeline = await asyncio.to_thread(
        write_timeline, plan, clips, score_file, folder / "timeline.otio"
    )
    manifest = manifest_document(
        studio, plan, film, renders, score, animatic, timings, set(cached_sequences)
    )
    manifest_file = folder / "manifest.json"
    await asyncio.to_thread(
        write_atomic, manifest_file, json.dumps(manifest, indent=2).encode("utf-8")
    )
    delivered = Deliverables(
        folder=folder,
        cut=film,
        film=film_file,
        master=master,
        score=score_file,
        sequences=tuple(clips),
        timeline=timeline,
        contact_sheet=sheet,
        manifest=manifest_file,
        report=folder / "report.md",
    )
    report = report_markdown(plan, film, delivered, manifest, relative_to=folder)
    await asyncio.to_thread(write_atomic, delivered.report, report.encode("utf-8"))
    if FlowRunContext.get() is not None:
        await acreate_markdown_artifact(
            key=REPORT_ARTIFACT_KEY,
            markdown=report_markdown(plan, film, delivered, manifest, relative_to=None),
            description=f"Deliverables of {plan.title}",
        )
    return delivered


def write_contact_sheet(plan: FilmPlan, clips: Seq[Path], dest: Path, scratch: Path) -> Path:
    """The first frame of every sequence in a labelled grid."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sheet-", dir=scratch) as work:
        frames = [
            (
                media.extract_first_frame(clip, Path(work) / f"{sequence.index}.png"),
                sequence_label(sequence),
            )
            for sequence, clip in zip(plan.sequences, clips, strict=True)
        ]
        return media.contact_sheet(frames, dest)


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


def manifest_document(
    studio: Studio,
    plan: FilmPlan,
    film: FilmFile,
    renders: Seq[RenderedSequence],
    score: ScoreResult | None,
    animatic: bool,
    timings: Mapping[str, float],
    cached_sequences: set[int],
) -> dict[str, Any]:
    """Everything needed to reproduce or audit the film, as plain JSON."""
    cues = score.renders if score is not None else ()
    return {
        "title": plan.title,
        "animatic": animatic,
        "mode": plan.mode,
        "film": {
            "file": film_path(Path(), plan.title).name,
            "master": master_path(film_path(Path(), plan.title)).name if film.master else None,
            "duration_s": round(film.duration_s, 3),
            "transitions": film.transitions,
            "score_gain": film.score_gain,
        },
        "servers": [server.url for server in studio.servers],
        "templates": {
            kind.value: {"file": workflow.origin, "sha256": workflow.template_hash}
            for kind, workflow in studio.templates.items()
        },
        "models": studio.models.model_dump(mode="json"),
        "keyframes": [
            {"chain": c.index, "seed": c.keyframe.seed, "source_image": c.keyframe.source_image}
            for c in plan.chains
        ],
        "sequences": [
            {
                "index": r.index,
                "seed": r.seed,
                "frames": r.frames,
                "seconds": r.seconds,
                "server": r.server,
                "gpu_seconds": round(r.gpu_seconds, 3),
                "cached": r.index in cached_sequences,
                "sha256": r.video.sha256,
            }
            for r in renders
        ],
        "score_source": plan.score_source,
        "cues": [
            {
                **cue.model_dump(include={"index", "seed", "start_s", "zone_s", "tail_s"}),
                "section": cue.section,
                "server": rendered.server,
                "gpu_seconds": round(rendered.gpu_seconds, 3),
                "cached": rendered.cached,
                "sha256": rendered.audio.sha256,
            }
            for cue, rendered in zip(score.cues if score else (), cues, strict=True)
        ],
        "timings_s": {stage: round(seconds, 3) for stage, seconds in timings.items()},
        "gpu": {
            "prompts": studio.stats.prompts,
            "gpu_seconds": round(studio.stats.gpu_seconds, 3),
            "per_server": dict(studio.stats.per_server),
        },
        "cache_hits": {
            "sequences": len(cached_sequences),
            "cues": sum(1 for rendered in cues if rendered.cached),
        },
    }


def report_markdown(
    plan: FilmPlan,
    film: FilmFile,
    delivered: Deliverables,
    manifest: Mapping[str, Any],
    *,
    relative_to: Path | None,
) -> str:
    """A short summary linking every deliverable (relative links inside the folder)."""

    def link(label: str, path: Path) -> str:
        target = path.relative_to(relative_to).as_posix() if relative_to else str(path)
        return f"- [{label}](<{target}>)"

    banner = (
        "> **Animatic**: rendered by the embedded simulator, not by a GPU model.\n\n"
        if manifest["animatic"]
        else ""
    )
    links = [link("Film", delivered.film)]
    if delivered.master is not None:
        links.append(link("Grading master (yuv444p10le, SDR: not HDR)", delivered.master))
    if delivered.score is not None:
        links.append(link("Score (48 kHz FLAC)", delivered.score))
    links += [
        link("Timeline (OpenTimelineIO)", delivered.timeline),
        link("Contact sheet", delivered.contact_sheet),
        link("Manifest", delivered.manifest),
        *(link(f"Sequence {n}", path) for n, path in enumerate(delivered.sequences)),
    ]
    hits = manifest["cache_hits"]
    timings = ", ".join(f"{stage} {s:.1f} s" for stage, s in manifest["timings_s"].items())
    return (
        f"# {plan.title}\n\n{banner}"
        f"{film.duration_s:.2f} s, {len(plan.sequences)} sequences joined by "
        f"{'hard cuts' if film.transitions == 'cut' else 'dissolves'}, "
        f"{len(manifest['cues'])} score cues ({plan.score_source} score) at "
        f"{film.score_gain:g} under the dialogue.\n\n"
        f"GPU: {manifest['gpu']['prompts']} prompts, {manifest['gpu']['gpu_seconds']:.1f} s; "
        f"from cache: {hits['sequences']} sequences, {hits['cues']} cues.\n"
        f"Timings: {timings or 'not recorded'}.\n\n" + "\n".join(links) + "\n"
    )
