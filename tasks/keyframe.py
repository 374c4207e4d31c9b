"""The keyframe stage: each chain's start image, the author's own or rendered from its prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import task

from tasks.comfyui.cast_workflows import cast_keyframe_prompt
from tasks.comfyui.workflow import TemplateKind, keyframe_prompt
from tasks.runtime.caching import GPU_TASK_OPTIONS, content_key, keyed_by
from tasks.runtime.studio import Studio, run_on_gpu, single_output, upload_name
from tasks.runtime.task_inputs import whole
from tasks.schema.film_plan import Chain, FilmPlan
from tasks.schema.outcomes import ChainStart
from tasks.schema.refs import MediaRef

CAST_INSTRUCTION = (
    "Place the people of the reference images in this shot, keeping their faces, hair and "
    "clothes exactly:"
)


def keyframe_portraits(studio: Studio, chain: Chain) -> list[MediaRef]:
    """The portraits a chain's keyframe shows: those of the cast on screen that exist."""
    found = (studio.cast.of(name) for name in chain.keyframe.portraits)
    return [c.portrait for c in found if c is not None and c.portrait is not None]


def chain_keyframe_prompt(studio: Studio, plan: FilmPlan, chain: Chain) -> dict[str, Any]:
    assert chain.keyframe.prompt is not None
    portraits = keyframe_portraits(studio, chain)
    if portraits:
        return cast_keyframe_prompt(
            studio.templates[TemplateKind.keyframe_cast],
            prompt=f"{CAST_INSTRUCTION} {chain.keyframe.prompt}",
            portraits=[upload_name(ref) for ref in portraits],
            width=plan.width,
            height=plan.height,
            seed=chain.keyframe.seed,
            models=studio.models,
            output_prefix="reelflow/keyframe",
        )
    return keyframe_prompt(
        studio.templates[TemplateKind.keyframe],
        prompt=chain.keyframe.prompt,
        width=plan.width,
        height=plan.height,
        seed=chain.keyframe.seed,
        models=studio.models,
        output_prefix="reelflow/keyframe",
    )


def _keyframe_key(parameters: dict[str, Any]) -> str:
    return content_key(
        "keyframe",
        chain_keyframe_prompt(parameters["studio"], parameters["plan"], parameters["chain"]),
    )


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
        uploads=keyframe_portraits(studio, chain),
        label=f"keyframe {chain.index}",
        family="image",
        output_s=1.0,
        after_s=sum(plan.sequences[index].seconds for index in chain.sequences),
    )
    image = single_output(result.files, ".png", "keyframe")
    return await studio.store.put(image)


async def store_source_image(studio: Studio, path: Path) -> MediaRef:
    """An author's start image goes into the store as it is."""
    return await studio.store.put(path)


async def make_keyframes(studio: Studio, plan: FilmPlan) -> list[ChainStart]:
    """Each chain's start: the scene's `source_image` as it is, a generated keyframe, or
    nothing (text-to-video). A keyframe that fails stops only its own chain."""
    generate = studio.options.render.keyframes == "generate"

    async def start(chain: Chain) -> ChainStart:
        try:
            if chain.keyframe.source_image is not None:
                image = studio.screenplay.parent / chain.keyframe.source_image
                stored = await store_source_image(studio, image)
                return ChainStart(chain=chain.index, keyframe=stored)
            if generate and chain.keyframe.prompt is not None:
                keyframe = await studio.bind(generate_keyframe)(whole(studio), whole(plan), chain)
                return ChainStart(chain=chain.index, keyframe=keyframe)
        except Exception as error:  # the chain cannot start; the other chains go on
            return ChainStart(chain=chain.index, failure=f"{type(error).__name__}: {error}")
        return ChainStart(chain=chain.index)

    with studio.timer.stage("keyframes"):
        return list(await asyncio.gather(*(start(chain) for chain in plan.chains)))
