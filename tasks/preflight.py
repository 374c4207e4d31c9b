"""Preflight: every prompt the film will send, checked against every server before any GPU work."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.comfyui.errors import PreflightFailed
from tasks.comfyui.preflight import preflight
from tasks.keyframe import chain_keyframe_prompt
from tasks.render import sequence_prompt
from tasks.runtime.caching import retry_if_transient
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.refs import MediaRef

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
    task_run_name="preflight",
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
