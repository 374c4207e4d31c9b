"""The cast stage: each cast member's portrait and voice, made once before any sequence renders.

A portrait or voice the screenplay gives is stored as it is. A missing portrait is rendered
once (text-to-image: front view, neutral background). A missing voice comes from an
*audition* (`tasks.plan.audition`): a short render of the character saying their first line,
heard by the ASR; their words, cut out by its word timestamps, become the reference every
sequence they lead speaks in. Both are cached by content like any render, so replacing one
file re-renders only what depends on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import task

from tasks import media
from tasks.comfyui.workflow import TemplateKind, keyframe_prompt
from tasks.dialogue.check import scripted_lines, segment_spans
from tasks.dialogue.judge import check_sequence
from tasks.plan.audition import audition_sequence
from tasks.render import render_sequence
from tasks.runtime.caching import GPU_TASK_OPTIONS, content_key, keyed_by
from tasks.runtime.studio import Studio, run_on_gpu, single_output
from tasks.runtime.task_inputs import whole
from tasks.runtime.workers import off_the_critical_path
from tasks.schema.film_plan import CastMember, FilmPlan, Sequence
from tasks.schema.outcomes import Cast, Casting, RenderedSequence, VoiceTake
from tasks.schema.refs import MediaRef

AUDITIONS = 3
"""Takes an audition gets before its best is kept with a warning."""
GOOD_TAKE_S = 1.5
"""A voice reference at least this long identifies its speaker reliably (measured)."""


def portrait_side(plan: FilmPlan) -> int:
    """Portraits are square: the film's shorter side, in whole multiples of 32."""
    return max(256, min(plan.width, plan.height) // 32 * 32)


def portrait_render_prompt(studio: Studio, plan: FilmPlan, member: CastMember) -> dict[str, Any]:
    side = portrait_side(plan)
    return keyframe_prompt(
        studio.templates[TemplateKind.keyframe],
        prompt=member.portrait_prompt,
        width=side,
        height=side,
        seed=member.portrait_seed,
        models=studio.models,
        output_prefix="reelflow/portrait",
    )


def _portrait_key(parameters: dict[str, Any]) -> str:
    prompt = portrait_render_prompt(parameters["studio"], parameters["plan"], parameters["member"])
    return content_key("portrait", prompt)


@task(
    name="cast-portrait",
    task_run_name="portrait-{member.name}",
    cache_policy=keyed_by(_portrait_key),
    **GPU_TASK_OPTIONS,
)
async def generate_portrait(studio: Studio, plan: FilmPlan, member: CastMember) -> MediaRef:
    """A cast member's reference portrait, rendered once from their description."""
    result = await run_on_gpu(
        studio,
        portrait_render_prompt(studio, plan, member),
        uploads=[],
        label=f"portrait {member.name}",
        family="image",
        output_s=1.0,
    )
    return await studio.store.put(single_output(result.files, ".png", f"{member.name}'s portrait"))


def _voice_key(parameters: dict[str, Any]) -> str:
    sequence: Sequence = parameters["sequence"]
    return content_key(
        "voice",
        {
            "video": parameters["rendered"].video,
            "line": sequence.lines[0].line,
            "asr": parameters["studio"].transcriber_name,
        },
    )


@task(
    name="cast-voice",
    task_run_name="voice-{sequence.lines[0].character}",
    cache_policy=keyed_by(_voice_key),
    persist_result=True,
    result_serializer="json",
)
async def cut_voice_reference(
    studio: Studio, sequence: Sequence, rendered: RenderedSequence
) -> VoiceTake:
    """Hear an audition and cut the character's words out of it by the ASR's word times."""
    video = await studio.store.fetch(rendered.video)
    transcript = await off_the_critical_path(studio.transcriber.transcribe, video)
    verdict = check_sequence(
        scripted_lines(sequence),
        transcript,
        silent=False,
        scene_descriptions=list(sequence.segment_prompts),
        title="",
        segment_spans=segment_spans(sequence),
    )
    line = verdict.lines[0]
    if line.span is None:
        return VoiceTake(heard=verdict.heard, kind=line.kind)
    start, end = max(0.0, line.span.start - 0.05), line.span.end + 0.1
    clip = studio.store.scratch / "voices" / f"{rendered.video.sha256}.wav"
    await off_the_critical_path(media.cut_voice, video, clip, start_s=start, end_s=end)
    return VoiceTake(
        voice=await studio.store.put(clip), heard=line.heard, kind=line.kind, seconds=end - start
    )


async def audition(studio: Studio, plan: FilmPlan, member: CastMember) -> VoiceTake:
    """Takes of the character's audition until one is heard as written and long enough."""
    best: VoiceTake | None = None
    for attempt in range(AUDITIONS):
        sequence = audition_sequence(plan, member, attempt)
        rendered = await studio.bind(render_sequence)(whole(studio), whole(plan), sequence, None)
        take = await studio.bind(cut_voice_reference)(whole(studio), sequence, rendered)
        heard_as_written = take.kind in ("ok", "misheard")
        if take.voice is not None and heard_as_written and take.seconds >= GOOD_TAKE_S:
            return take
        if take.voice is not None and (best is None or take.seconds > best.seconds):
            best = take
    studio.events.outcome(
        f"{member.name}: no audition take was heard as written; the voice comes from the "
        "longest one heard",
        warning=True,
    )
    return best or VoiceTake(kind="missing")


async def cast_member(studio: Studio, plan: FilmPlan, member: CastMember) -> Casting:
    folder = studio.screenplay.parent
    if member.portrait is not None:
        portrait, portrait_origin = await studio.store.put(folder / member.portrait), "screenplay"
    else:
        portrait = await studio.bind(generate_portrait)(whole(studio), whole(plan), member)
        portrait_origin = "generated"
    voice, voice_origin, heard = None, "none", ""
    if member.voice is not None:
        voice, voice_origin = await studio.store.put(folder / member.voice), "screenplay"
    elif member.audition is not None:
        take = await audition(studio, plan, member)
        voice, voice_origin, heard = take.voice, "audition" if take.voice else "none", take.heard
    return Casting(
        name=member.name,
        portrait=portrait,
        portrait_origin=portrait_origin,  # type: ignore[arg-type]
        voice=voice,
        voice_origin=voice_origin,  # type: ignore[arg-type]
        audition=heard,
    )


async def cast_characters(studio: Studio, plan: FilmPlan) -> Cast:
    """Every cast member's portrait and voice (at once: the GPU slots queue the renders)."""
    if not plan.cast:
        return studio.cast
    studio.events.stage(f"casting {len(plan.cast)} character(s)")
    with studio.timer.stage("cast"):
        members = await asyncio.gather(*(cast_member(studio, plan, m) for m in plan.cast))
    for casting in members:
        voice = {
            "screenplay": "the screenplay's voice",
            "audition": f'a voice from their audition ("{casting.audition}")',
            "none": "no voice (they do not speak)",
        }[casting.voice_origin]
        studio.events.outcome(f"{casting.name}: a {casting.portrait_origin} portrait, {voice}")
    studio.cast = Cast(members=tuple(members))
    return studio.cast
