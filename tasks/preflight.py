"""Preflight: every prompt the film will send, checked against every server before any GPU work."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.cast.stage import portrait_render_prompt
from tasks.comfyui.preflight import PreflightReport, preflight
from tasks.keyframe import chain_keyframe_prompt
from tasks.plan.audition import audition_sequence
from tasks.plan.film import revise_sequence
from tasks.render import sequence_prompt
from tasks.runtime.caching import retry_if_transient
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan, Sequence
from tasks.schema.outcomes import Cast, Casting
from tasks.schema.refs import MediaRef
from tasks.score import cue_render_prompt

PREFLIGHT_START = MediaRef(sha256="0" * 64, suffix=".png", size=0)
"""Stands in for carried frames, which only exist once the film renders."""
PREFLIGHT_PORTRAIT = MediaRef(sha256="1" * 64, suffix=".png", size=0)
PREFLIGHT_VOICE = MediaRef(sha256="2" * 64, suffix=".wav", size=0)
"""Stand in for the cast's portraits and voices, which the cast stage makes after preflight."""


def _cast_to_come(plan: FilmPlan) -> Cast:
    """The cast as it will be: a portrait for every member, a voice for those who get one."""
    return Cast(
        members=tuple(
            Casting(
                name=member.name,
                portrait=PREFLIGHT_PORTRAIT,
                voice=PREFLIGHT_VOICE if member.voice or member.audition else None,
            )
            for member in plan.cast
        )
    )


def film_prompts(studio: Studio, plan: FilmPlan, *, use_keyframes: bool) -> dict[str, Any]:
    """Every kind of prompt the film can send, by stage name, for preflight.

    The cast's portraits and auditions; keyframes (with the portraits of the cast on
    screen); each sequence as it will start (image-to-video from a keyframe or carried frame,
    else text-to-video; in its speaker's voice when cast); the longest dialogue re-render
    each sequence may need; and the score cues. Stages that share a problem are reported
    together, so listing every one costs the user nothing.
    """
    prompts: dict[str, Any] = {}
    studio = replace(studio, cast=_cast_to_come(plan))
    for member in plan.cast:
        if member.portrait is None:
            prompts[f"portrait {member.name}"] = portrait_render_prompt(studio, plan, member)
        if member.audition is not None:
            audition = audition_sequence(plan, member)
            prompts[f"audition {member.name}"] = sequence_prompt(studio, plan, audition, None)
    rerenders = studio.options.render.dialogue_check
    for chain in plan.chains:
        if chain.keyframe.prompt is not None and use_keyframes:
            prompts[f"keyframe {chain.index}"] = chain_keyframe_prompt(studio, plan, chain)
        for position, index in enumerate(chain.sequences):
            carried = position > 0 or chain.keyframe.source_image is not None or use_keyframes
            start = PREFLIGHT_START if carried else None
            sequence = plan.sequences[index]
            prompts[f"sequence {index}"] = sequence_prompt(studio, plan, sequence, start)
            longest = longest_rerender(sequence, plan.frame_budget) if rerenders else None
            if longest is not None:
                prompts[f"re-render {index}"] = sequence_prompt(studio, plan, longest, start)
    for cue in plan.cues:
        prompts[f"score cue {cue.index}"] = cue_render_prompt(studio, cue)
    return prompts


def longest_rerender(sequence: Sequence, budget: int) -> Sequence | None:
    """The sequence as a dialogue re-render may send it at most: new seed, last scene grown
    to the frame budget (None when it is there already)."""
    last = len(sequence.segments) - 1
    frames = budget - sum(segment.frames for segment in sequence.segments[:-1])
    if frames <= sequence.segments[-1].frames:
        return None
    # The first segment of a sequence carries LTX's extra frame (8n + 1 in all).
    seconds = (frames - (1 if last == 0 else 0)) / sequence.fps
    return revise_sequence(sequence, {last: seconds}, attempt=1, budget=budget)


@task(
    name="preflight",
    task_run_name="preflight",
    cache_policy=NO_CACHE,
    retries=4,
    retry_delay_seconds=[1, 2, 5, 10],
    retry_condition_fn=retry_if_transient,
)
async def preflight_servers(studio: Studio, prompts: dict[str, Any]) -> dict[str, PreflightReport]:
    """What each server lacks of the film's prompts, by server URL.

    A server still booting (refused connections) is waited for, like any transient error.
    What the servers lack is the answer, not a failure of this task: the run reports it once.
    """
    reports = {}
    for server in studio.servers:
        async with server.client() as client:
            reports[server.url] = await preflight(client, prompts)
    return reports
