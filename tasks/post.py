"""Per-sequence post-production: hear the dialogue, apply the verdict's edits, even the level.

Always on the per-sequence files, never on the assembled film.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from prefect import task
from pydantic import BaseModel, ConfigDict

from tasks import media
from tasks.dialogue import DialoguePolicy, ScriptedLine, SequenceVerdict, check_sequence, is_silent
from tasks.normalize import Loudness, measure, normalize_sequence, plan_gain
from tasks.render import RenderedSequence
from tasks.runtime.caching import content_key, keyed_by
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan, Sequence
from tasks.schema.refs import MediaRef

T = TypeVar("T")

AUDIO_RATE = 48_000

# Post work (ASR, loudness) runs one job at a time beside the GPU-feeding path, so that
# downloads, carry frames and submissions are never starved of the CPU.
_POST_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reelflow-post")


async def _off_the_critical_path(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(
        _POST_WORKER, functools.partial(function, *args, **kwargs)
    )


class FinishedSequence(BaseModel):
    """A sequence ready for the cut: the verdict's edits applied, loudness evened out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    video: MediaRef
    seconds: float
    edits: tuple[str, ...]
    gain_db: float
    gain_reason: str
    before: Loudness
    after: Loudness


def scripted_lines(sequence: Sequence) -> list[ScriptedLine]:
    """The sequence's lines, each tagged with the segment (scene part) that speaks it."""
    segment_of = {
        seg.scene_index: number for number, seg in enumerate(sequence.segments) if seg.part == 0
    }
    return [
        ScriptedLine(segment=segment_of[line.scene_index], character=line.character, line=line.line)
        for line in sequence.lines
    ]


def segment_spans(sequence: Sequence) -> list[tuple[float, float]]:
    spans, offset = [], 0
    for segment in sequence.segments:
        spans.append((offset / sequence.fps, (offset + segment.frames) / sequence.fps))
        offset += segment.frames
    return spans


def _check_key(parameters: dict[str, Any]) -> str:
    sequence: Sequence = parameters["sequence"]
    return content_key(
        "dialogue",
        {
            "video": parameters["rendered"].video,
            "lines": sequence.lines,
            "segments": segment_spans(sequence),
            "prompts": sequence.segment_prompts,
            "title": parameters["plan"].title,
            "attempt": parameters["attempt"],
            "policy": parameters["policy"],
            "asr": parameters["studio"].transcriber_name,
        },
    )


@task(
    name="check-dialogue",
    task_run_name="check-dialogue-seq{sequence.index}",
    cache_policy=keyed_by(_check_key),
    persist_result=True,
    result_serializer="json",
)
async def check_dialogue(
    studio: Studio,
    plan: FilmPlan,
    sequence: Sequence,
    rendered: RenderedSequence,
    attempt: int,
    policy: DialoguePolicy,
) -> SequenceVerdict:
    """Transcribe the sequence and judge each scripted line (and any unscripted speech)."""
    video = await studio.store.fetch(rendered.video)
    samples = await _off_the_critical_path(media.read_audio, video, rate=AUDIO_RATE)
    silent = is_silent(samples, AUDIO_RATE, threshold_lufs=policy.silence_lufs)
    transcript = await _off_the_critical_path(studio.transcriber.transcribe, video)
    return check_sequence(
        scripted_lines(sequence),
        transcript,
        silent=silent,
        scene_descriptions=list(sequence.segment_prompts),
        title=plan.title,
        segment_spans=segment_spans(sequence),
        attempt=attempt,
        policy=policy,
    )


def _finish_key(parameters: dict[str, Any]) -> str:
    verdict: SequenceVerdict = parameters["verdict"]
    return content_key(
        "finish",
        {
            "video": parameters["rendered"].video,
            "action": verdict.action,
            "mute": verdict.mute_ranges,
            "target": parameters["target_lufs"],
        },
    )


@task(
    name="finish-sequence",
    task_run_name="finish-seq{rendered.index}",
    cache_policy=keyed_by(_finish_key),
    persist_result=True,
    result_serializer="json",
)
async def finish_sequence(
    studio: Studio,
    rendered: RenderedSequence,
    verdict: SequenceVerdict,
    target_lufs: float = -23.0,
) -> FinishedSequence:
    """Mute what the verdict says to mute, then normalize loudness with a plain gain."""
    source = await studio.store.fetch(rendered.video)
    work = studio.store.scratch / "post" / rendered.video.sha256
    work.mkdir(parents=True, exist_ok=True)
    edited, edits = await _off_the_critical_path(_apply_edits, source, work, verdict)
    decision = plan_gain(await _off_the_critical_path(measure, edited), target_lufs=target_lufs)
    result = await _off_the_critical_path(
        normalize_sequence, edited, work / "normalized.mp4", decision
    )
    info = await _off_the_critical_path(media.probe, result.path)
    return FinishedSequence(
        index=rendered.index,
        video=await studio.store.put(result.path),
        seconds=info.video.duration if info.video else rendered.seconds,
        edits=tuple(edits),
        gain_db=result.gain_db,
        gain_reason=result.reason,
        before=result.before,
        after=result.after,
    )


def _apply_edits(source: Path, work: Path, verdict: SequenceVerdict) -> tuple[Path, list[str]]:
    if verdict.action == "mute_sequence":
        return media.mute_all(source, work / "muted.mp4"), ["muted the whole sequence"]
    current, edits = source, []
    for number, span in enumerate(verdict.mute_ranges):
        current = media.mute_range(
            current, work / f"muted{number}.mp4", start_s=span.start, end_s=span.end
        )
        edits.append(f"muted {span.start:.2f}-{span.end:.2f} s")
    return current, edits
