"""GPU stages: chain keyframes and Prompt Relay sequence renders, plus carry-forward frames."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from tasks import media
from tasks.comfyui.errors import PreflightFailed, TransientError
from tasks.comfyui.preflight import preflight
from tasks.comfyui.workflow import (
    ModelSet,
    TemplateKind,
    Workflow,
    keyframe_prompt,
    relay_prompt,
)
from tasks.runtime.caching import content_key, keyed_by, retry_if_transient
from tasks.runtime.studio import Studio, run_on_gpu, upload_name
from tasks.schema.film_plan import Chain, FilmPlan, Sequence
from tasks.schema.refs import MediaRef


class CorruptRender(TransientError):
    """The server returned media that does not match what was asked for."""


class RenderedSequence(BaseModel):
    """A finished sequence render in the media store, and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    video: MediaRef
    frames: int
    seconds: float
    seed: int
    server: str
    gpu_seconds: float


def relay_sequence_prompt(
    workflow: Workflow,
    models: ModelSet,
    plan: FilmPlan,
    sequence: Sequence,
    start_image: str | None,
    output_prefix: str = "reelflow/sequence",
) -> dict[str, Any]:
    """A sequence's Prompt Relay prompt from a template (I2V with a start image, else T2V)."""
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
    )


def sequence_prompt(
    studio: Studio, plan: FilmPlan, sequence: Sequence, start: MediaRef | None
) -> dict[str, Any]:
    """The exact ComfyUI prompt for a sequence: also its cache identity."""
    kind = TemplateKind.relay_i2v if start is not None else TemplateKind.relay_t2v
    return relay_sequence_prompt(
        studio.templates[kind],
        studio.models,
        plan,
        sequence,
        upload_name(start) if start is not None else None,
    )


def chain_keyframe_prompt(studio: Studio, plan: FilmPlan, chain: Chain) -> dict[str, Any]:
    assert chain.keyframe.prompt is not None
    return keyframe_prompt(
        studio.templates[TemplateKind.keyframe],
        prompt=chain.keyframe.prompt,
        width=plan.width,
        height=plan.height,
        seed=chain.keyframe.seed,
        models=studio.models,
        output_prefix="reelflow/keyframe",
    )


def _sequence_key(parameters: dict[str, Any]) -> str:
    prompt = sequence_prompt(
        parameters["studio"], parameters["plan"], parameters["sequence"], parameters["start"]
    )
    return content_key("sequence", prompt)


def _keyframe_key(parameters: dict[str, Any]) -> str:
    return content_key(
        "keyframe",
        chain_keyframe_prompt(parameters["studio"], parameters["plan"], parameters["chain"]),
    )


def _carry_key(parameters: dict[str, Any]) -> str:
    return content_key("carry", parameters["video"])


GPU_TASK_OPTIONS: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 8, 30],
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
    "persist_result": True,
    "result_serializer": "json",
    "cache_result_in_memory": False,
}


@task(
    name="generate-keyframe",
    task_run_name="keyframe-chain{chain.index}",
    cache_policy=keyed_by(_keyframe_key),
    **GPU_TASK_OPTIONS,
)
async def generate_keyframe(studio: Studio, plan: FilmPlan, chain: Chain) -> MediaRef:
    """A chain's start image rendered from its keyframe prompt (text-to-image)."""
    result = await run_on_gpu(
        studio,
        chain_keyframe_prompt(studio, plan, chain),
        uploads=[],
        label=f"keyframe {chain.index}",
        family="image",
        output_s=1.0,
    )
    image = _single(result.files, ".png", "keyframe")
    return await studio.store.put(image)


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
        uploads=[start] if start else [],
        label=f"sequence {sequence.index}",
        family="ltx",
        output_s=sequence.seconds,
    )
    studio.stats.fresh_sequences.add(sequence.index)
    video = _single(result.files, ".mp4", f"sequence {sequence.index}")
    await asyncio.to_thread(_verify_sequence, video, sequence, plan)
    return RenderedSequence(
        index=sequence.index,
        video=await studio.store.put(video),
        frames=sequence.frames,
        seconds=sequence.seconds,
        seed=sequence.seed,
        server=result.server,
        gpu_seconds=result.gpu_seconds,
    )


@task(
    name="carry-frame",
    task_run_name="carry-frame-{video.short}",
    cache_policy=keyed_by(_carry_key),
    persist_result=True,
    result_serializer="json",
)
async def carry_frame(studio: Studio, video: MediaRef) -> MediaRef:
    """The exact last frame of a rendered sequence: the next sequence's first frame."""
    source = await studio.store.fetch(video)
    frame = studio.store.scratch / "frames" / f"{video.sha256}.last.png"
    await asyncio.to_thread(media.extract_last_frame, source, frame)
    return await studio.store.put(frame)


async def store_source_image(studio: Studio, path: Path) -> MediaRef:
    """An author's start image goes into the store as it is."""
    return await studio.store.put(path)


def _single(files: list[Path], suffix: str, what: str) -> Path:
    matching = [path for path in files if path.suffix.lower() == suffix]
    if len(matching) != 1:
        raise CorruptRender(
            f"{what}: expected one {suffix} output, the server gave {[path.name for path in files]}"
        )
    return matching[0]


def _verify_sequence(video: Path, sequence: Sequence, plan: FilmPlan) -> None:
    try:
        media.verify_decodes(video)
        info = media.probe(video)
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


PREFLIGHT_START = MediaRef(sha256="0" * 64, suffix=".png", size=0)
"""Stands in for carried frames, which only exist once the film renders."""


def film_prompts(studio: Studio, plan: FilmPlan, *, use_keyframes: bool) -> dict[str, Any]:
    """Every keyframe and sequence prompt of the film, by name, for preflight."""
    prompts: dict[str, Any] = {}
    for chain in plan.chains:
        if chain.keyframe.prompt is not None and use_keyframes:
            prompts[f"keyframe {chain.index}"] = chain_keyframe_prompt(studio, plan, chain)
        for position, index in enumerate(chain.sequences):
            carried = position > 0 or chain.keyframe.source_image is not None or use_keyframes
            start = PREFLIGHT_START if carried else None
            prompts[f"sequence {index}"] = sequence_prompt(
                studio, plan, plan.sequences[index], start
            )
    return prompts


@task(
    name="preflight",
    cache_policy=NO_CACHE,
    retries=4,
    retry_delay_seconds=[1, 2, 5, 10],
    retry_condition_fn=retry_if_transient,
)
async def preflight_servers(studio: Studio, prompts: dict[str, Any]) -> None:
    """Check the film's prompts against every server before any GPU time is spent.

    A server still booting (refused connections) is waited for, like any transient error.
    """
    for server in studio.servers:
        async with server.client() as client:
            report = await preflight(client, prompts)
        if not report.ok:
            raise PreflightFailed([f"{server.url}: {problem}" for problem in report.problems])
