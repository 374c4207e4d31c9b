"""Score cues: prompts from the cue map, zones retimed to the rendered film, cue renders, assembly.

The plan times cues from the *planned* sequence lengths; the score is composed against the
*measured* ones, so every cue boundary lands on the scene it was planned for even when a
render came out a little longer or shorter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

from prefect import task

from tasks import media
from tasks.comfyui.errors import TransientError
from tasks.comfyui.workflow import MAX_CUE_SECONDS, TemplateKind, cue_prompt
from tasks.errors import ReelflowError
from tasks.media.mix import assembled_length
from tasks.plan.cues import split_zone
from tasks.runtime.caching import GPU_TASK_OPTIONS, content_key, keyed_by
from tasks.runtime.studio import Studio, run_on_gpu
from tasks.schema.film_plan import Cue, FilmPlan
from tasks.schema.outcomes import Footage, RenderedCue, ScoreResult

CUE_TAIL_S = 2.0
"""Each cue but the last runs this far past its zone, into the next cue's crossfade."""

SCORE_FADE_OUT_S = 3.0
CUE_LENGTH_TOLERANCE_S = 0.25
_AUDIO_SUFFIXES = (".mp3", ".flac", ".opus", ".ogg", ".wav")


class ScoreError(ReelflowError):
    """The score cannot be composed from what was given."""


class CorruptCue(TransientError):
    """The server returned a cue that is missing, damaged or the wrong length."""


def cue_tags(cue: Cue) -> str:
    """ACE-Step tags: the shared palette, tonic and tempo in every cue, then this zone's part."""
    return ", ".join(
        [
            "instrumental cinematic film score",
            cue.palette,
            f"in {cue.key}",
            f"{cue.bpm} bpm",
            f"section: {cue.section}",
            f"recurring theme: {cue.theme}",
            cue.dynamics,
            f"underscoring: {cue.beat}",
        ]
    )


def cue_render_prompt(studio: Studio, cue: Cue) -> dict[str, Any]:
    """The exact ComfyUI prompt for a cue: also its cache identity."""
    return cue_prompt(
        studio.templates[TemplateKind.cue],
        tags=cue_tags(cue),
        bpm=cue.bpm,
        keyscale=cue.key,
        seconds=cue.duration_s,
        seed=cue.seed,
        models=studio.models,
        output_prefix="reelflow/cue",
    )


def measured_scene_starts(plan: FilmPlan, measured_seconds: Seq[float]) -> dict[int, float]:
    """Film time of each scene's start in the rendered film.

    Sequences start where the measured ones before them end; inside a sequence a scene keeps
    its planned share of the sequence, stretched to the sequence's measured length.
    """
    if len(measured_seconds) != len(plan.sequences):
        raise ScoreError(
            f"{len(measured_seconds)} measured durations for {len(plan.sequences)} sequences"
        )
    starts: dict[int, float] = {}
    film_time = 0.0
    for sequence, measured in zip(plan.sequences, measured_seconds, strict=True):
        if measured <= 0:
            raise ScoreError(f"sequence {sequence.index} measured {measured} s long")
        stretch = measured / sequence.seconds
        offset = 0
        for segment in sequence.segments:
            starts.setdefault(segment.scene_index, film_time + offset / sequence.fps * stretch)
            offset += segment.frames
        film_time += measured
    return starts


def retime_cues(
    plan: FilmPlan,
    measured_seconds: Seq[float],
    *,
    tail_s: float = CUE_TAIL_S,
    max_cue_s: float = MAX_CUE_SECONDS,
) -> list[Cue]:
    """The plan's cues with zones following the measured sequences.

    Each planned zone (the cues sharing a `first_scene`) starts at its scene's measured
    start and ends where the next zone starts, or at the measured end of the film; zones
    that no longer fit one generation are split again. Seeds stay sequential.
    """
    if not plan.cues:
        return []
    starts = measured_scene_starts(plan, measured_seconds)
    film_end = sum(measured_seconds)
    zones: list[list[Cue]] = []
    for cue in plan.cues:
        if zones and zones[-1][0].first_scene == cue.first_scene:
            zones[-1].append(cue)
        else:
            zones.append([cue])
    edges = [starts[zone[0].first_scene] for zone in zones] + [film_end]
    parts: list[tuple[Cue, float, float]] = []
    for number, zone in enumerate(zones):
        begin, end = edges[number], edges[number + 1]
        if end - begin <= tail_s:
            raise ScoreError(
                f"the cue zone from scene {zone[0].first_scene} lasts {end - begin:.2f} s in the "
                f"rendered film, not longer than the {tail_s:g} s crossfade"
            )
        offset = begin
        for piece, length in enumerate(split_zone(end - begin, max_cue_s - tail_s)):
            parts.append((zone[min(piece, len(zone) - 1)], offset, length))
            offset += length
    base_seed = plan.cues[0].seed
    return [
        template.model_copy(
            update={
                "index": number,
                "start_s": start,
                "zone_s": length,
                "tail_s": 0.0 if number == len(parts) - 1 else tail_s,
                "seed": base_seed + number,
            }
        )
        for number, (template, start, length) in enumerate(parts)
    ]


def _cue_key(parameters: dict[str, Any]) -> str:
    return content_key("cue", cue_render_prompt(parameters["studio"], parameters["cue"]))


@task(
    name="render-cue",
    task_run_name="render-cue{cue.index}",
    cache_policy=keyed_by(_cue_key),
    **GPU_TASK_OPTIONS,
)
async def render_cue(studio: Studio, cue: Cue) -> RenderedCue:
    """One ACE-Step generation: the cue's zone plus its crossfade tail."""
    result = await run_on_gpu(
        studio,
        cue_render_prompt(studio, cue),
        uploads=[],
        label=f"score cue {cue.index}",
        family="ace_step",
        output_s=cue.duration_s,
    )
    # SaveAudioMP3 numbers its files itself: take whatever name the history entry reported.
    audio = [path for path in result.files if path.suffix.lower() in _AUDIO_SUFFIXES]
    if len(audio) != 1:
        raise CorruptCue(
            f"cue {cue.index}: expected one audio output, the server gave "
            f"{[path.name for path in result.files]}"
        )
    await asyncio.to_thread(_verify_cue, audio[0], cue)
    return RenderedCue(
        index=cue.index,
        audio=await studio.store.put(audio[0]),
        seconds=cue.duration_s,
        seed=cue.seed,
        server=result.server,
        gpu_seconds=result.gpu_seconds,
    )


def _verify_cue(path: Path, cue: Cue) -> None:
    try:
        media.verify_decodes(path)
        info = media.probe(path)
    except media.MediaError as bad:
        raise CorruptCue(f"cue {cue.index}: the rendered file is damaged: {bad}") from bad
    if info.audio is None:
        raise CorruptCue(f"cue {cue.index}: the rendered file has no audio")
    if abs(info.audio.duration - cue.duration_s) > CUE_LENGTH_TOLERANCE_S:
        raise CorruptCue(
            f"cue {cue.index}: {info.audio.duration:.2f} s of music for a "
            f"{cue.duration_s:.2f} s cue"
        )


async def _render_counting_cache(studio: Studio, cue: Cue) -> RenderedCue:
    # Prefect's overloads type an async task's return_state call as a State, not a coroutine.
    state = await studio.bind(render_cue)(studio, cue, return_state=True)  # type: ignore[misc]
    rendered: RenderedCue = await state.aresult()
    # Prefect names a state served from the cache "Cached": no GPU second was spent.
    rendered = rendered.model_copy(update={"cached": state.name == "Cached"})
    origin = "from the cache" if rendered.cached else f"on {rendered.server}"
    studio.events.outcome(f"cue {cue.index} ({cue.section}): {cue.duration_s:.1f} s {origin}")
    studio.events.cue_finished(rendered)
    return rendered


async def compose_score(studio: Studio, footage: Footage) -> ScoreResult | None:
    """The film's score: the plan's cues retimed to the rendered sequences, rendered and
    crossfaded. None for a film without cues (its screenplay says `"score": null`)."""
    studio.events.stage("composing the score")
    with studio.timer.stage("score"):
        return await render_score(studio, footage.plan, footage.measured_seconds)


async def render_score(
    studio: Studio, plan: FilmPlan, measured_seconds: Seq[float]
) -> ScoreResult | None:
    """Render every cue at once (the GPU slots queue them) and crossfade them into the score.

    Returns None for a film without cues (its screenplay says `"score": null`).
    """
    cues = retime_cues(plan, measured_seconds)
    if not cues:
        return None
    renders = await asyncio.gather(*(_render_counting_cache(studio, cue) for cue in cues))
    local = [await studio.store.fetch(rendered.audio) for rendered in renders]
    film_s = sum(measured_seconds)
    if abs(assembled_length([c.duration_s for c in cues], CUE_TAIL_S) - film_s) > 1e-6:
        raise ScoreError(f"cues {[c.duration_s for c in cues]} do not add up to {film_s:.3f} s")
    name = content_key("score", [r.audio.sha256 for r in renders] + [film_s])
    dest = studio.store.scratch / "score" / f"{name}.flac"
    await asyncio.to_thread(
        media.assemble_score,
        local,
        dest,
        crossfade_s=CUE_TAIL_S,
        total_s=film_s,
        fade_out_s=SCORE_FADE_OUT_S,
    )
    return ScoreResult(
        score=await studio.store.put(dest),
        duration_s=film_s,
        cues=tuple(cues),
        renders=tuple(renders),
    )
