"""GPU stages: chain keyframes and Prompt Relay sequence renders, plus carry-forward frames."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import task

from tasks import media
from tasks.comfyui.models import ModelSet
from tasks.comfyui.workflow import TemplateKind, Workflow, relay_prompt
from tasks.runtime.caching import GPU_TASK_OPTIONS, content_key, keyed_by
from tasks.runtime.studio import CorruptRender, Studio, run_on_gpu, single_output, upload_name
from tasks.runtime.task_inputs import whole
from tasks.schema.film_plan import FilmPlan, Sequence
from tasks.schema.outcomes import RenderedSequence
from tasks.schema.refs import MediaRef


def relay_sequence_prompt(
    workflow: Workflow,
    models: ModelSet,
    plan: FilmPlan,
    sequence: Sequence,
    start_image: str | None,
    output_prefix: str = "reelflow/sequence",
    voice: str | None = None,
) -> dict[str, Any]:
    """A sequence's Prompt Relay prompt from a template (I2V with a start image, else T2V;
    in the uploaded reference `voice`, when given)."""
    return relay_prompt(
        workflow,
        global_prompt=sequence.wrapper_prompt,
        segment_prompts=list(sequence.segment_prompts),
        segment_frames=list(sequence.segment_frames),
        width=plan.width,
        height=plan.height,
        frames=sequence.frames,
        fps=sequence.fps,
        seed=sequence.seed,
        negative=sequence.negative_prompt,
        start_image=start_image,
        models=models,
        output_prefix=output_prefix,
        voice=voice,
    )


def sequence_voice(studio: Studio, sequence: Sequence) -> MediaRef | None:
    """The reference voice a sequence speaks in: its dominant speaker's, when cast."""
    casting = studio.cast.of(sequence.voice_of)
    return casting.voice if casting is not None else None


def sequence_prompt(
    studio: Studio, plan: FilmPlan, sequence: Sequence, start: MediaRef | None
) -> dict[str, Any]:
    """The exact ComfyUI prompt for a sequence: also its cache identity."""
    voice = sequence_voice(studio, sequence)
    kinds = {
        (True, False): TemplateKind.relay_i2v,
        (False, False): TemplateKind.relay_t2v,
        (True, True): TemplateKind.relay_i2v_voice,
        (False, True): TemplateKind.relay_t2v_voice,
    }
    return relay_sequence_prompt(
        studio.templates[kinds[(start is not None, voice is not None)]],
        studio.models,
        plan,
        sequence,
        upload_name(start) if start is not None else None,
        voice=upload_name(voice) if voice is not None else None,
    )


def _sequence_key(parameters: dict[str, Any]) -> str:
    prompt = sequence_prompt(
        parameters["studio"], parameters["plan"], parameters["sequence"], parameters["start"]
    )
    return content_key("sequence", prompt)


def _carry_key(parameters: dict[str, Any]) -> str:
    return content_key("carry", parameters["rendered"].video)


@task(
    name="render-sequence",
    task_run_name="render-seq{sequence.index}",
    cache_policy=keyed_by(_sequence_key),
    **GPU_TASK_OPTIONS,
)
async def render_sequence(
    studio: Studio, plan: FilmPlan, sequence: Sequence, start: MediaRef | None
) -> RenderedSequence:
    """One Prompt Relay pass: joint audio and video for the sequence's scenes."""
    prompt = sequence_prompt(studio, plan, sequence, start)
    result = await run_on_gpu(
        studio,
        prompt,
        uploads=[ref for ref in (start, sequence_voice(studio, sequence)) if ref is not None],
        label=f"sequence {sequence.index}",
        family="ltx",
        output_s=sequence.seconds,
        after_s=plan.seconds_after(sequence),
        chain=sequence.chain,
    )
    studio.stats.fresh_sequences.add(sequence.index)
    video = single_output(result.files, ".mp4", f"sequence {sequence.index}")
    # The next sequence starts from the last frame: it is taken while the file is checked.
    frame = video.with_suffix(".last.png")
    await asyncio.gather(
        asyncio.to_thread(_verify_sequence, video, sequence, plan),
        asyncio.to_thread(media.extract_last_frame, video, frame),
    )
    return RenderedSequence(
        index=sequence.index,
        video=await studio.store.put(video),
        frames=sequence.frames,
        seconds=sequence.seconds,
        seed=sequence.seed,
        server=result.server,
        gpu_seconds=result.gpu_seconds,
        last_frame=await studio.store.put(frame),
    )


async def last_frame_of(studio: Studio, rendered: RenderedSequence) -> MediaRef:
    """The exact last frame of a rendered sequence: the next sequence's first frame."""
    if rendered.last_frame is not None:
        return rendered.last_frame
    return await studio.bind(carry_frame)(whole(studio), rendered)


@task(
    name="carry-frame",
    task_run_name="carry-frame-seq{rendered.index}",
    cache_policy=keyed_by(_carry_key),
    persist_result=True,
    result_serializer="json",
)
async def carry_frame(studio: Studio, rendered: RenderedSequence) -> MediaRef:
    """The exact last frame of a rendered sequence: the next sequence's first frame."""
    video = rendered.video
    source = await studio.store.fetch(video)
    frame = studio.store.scratch / "frames" / f"{video.sha256}.last.png"
    await asyncio.to_thread(media.extract_last_frame, source, frame)
    return await studio.store.put(frame)


def _verify_sequence(video: Path, sequence: Sequence, plan: FilmPlan) -> None:
    try:
        info = media.probe(video, decode=True)
    except media.MediaError as bad:
        raise CorruptRender(
            f"sequence {sequence.index}: the rendered file is damaged: {bad}"
        ) from bad
    problems = []
    if info.video is None or info.video.frames != sequence.frames:
        got = info.video.frames if info.video else "no video"
        problems.append(f"{got} frames instead of {sequence.frames}")
    if info.video is not None and (info.video.width, info.video.height) != (
        plan.width,
        plan.height,
    ):
        problems.append(
            f"{info.video.width}x{info.video.height} instead of {plan.width}x{plan.height}"
        )
    if info.audio is None:
        problems.append("no audio stream")
    if problems:
        raise CorruptRender(f"sequence {sequence.index}: {', '.join(problems)}")
