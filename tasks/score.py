"""Score cues: prompts from the cue map, zones retimed to the rendered film, cue renders, assembly.

The plan times cues from the *planned* sequence lengths; the score is composed against the
*measured* ones, so every cue boundary lands on the scene it was planned for even when a
render came out a little longer or shorter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
from tasks.runtime.studio import ProgressSink, Studio, run_on_gpu
from tasks.runtime.task_inputs import whole
from tasks.schema.film_plan import Cue, FilmPlan
from tasks.schema.outcomes import Footage, RenderedCue, ScoreResult, SequenceResult
from tasks.schema.schedule import SCORE_FAMILY

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


def planned_seconds(plan: FilmPlan) -> list[float]:
    """Each sequence's length as the rendered file will measure: its planned frames at its
    rate, to the microsecond `media.probe` reports. A render always has exactly its planned frames,
    so only a re-render that changes a sequence's frames makes the measured lengths differ."""
    return [round(sequence.frames / sequence.fps, 6) for sequence in plan.sequences]


def cue_key(studio: Studio, cue: Cue) -> str:
    """The cue's cache key: the exact prompt, so two cues with one key are one render."""
    return content_key("cue", cue_render_prompt(studio, cue))


def _cue_key(parameters: dict[str, Any]) -> str:
    return cue_key(parameters["studio"], parameters["cue"])


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
        family=SCORE_FAMILY,
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
        info = media.probe(path, decode=True)
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
    state = await studio.bind(render_cue)(whole(studio), cue, return_state=True)  # type: ignore[misc]
    rendered: RenderedCue = await state.aresult()
    # Prefect names a state served from the cache "Cached": no GPU second was spent.
    rendered = rendered.model_copy(update={"cached": state.name == "Cached"})
    origin = "from the cache" if rendered.cached else f"on {rendered.server}"
    studio.events.outcome(f"cue {cue.index} ({cue.section}): {cue.duration_s:.1f} s {origin}")
    studio.events.cue_finished(rendered)
    return rendered


class ScoreAhead:
    """The film's cues, rendered from the planned lengths while the chains render.

    Cue renders ask for a GPU once the chains no longer need every slot: when fewer chains
    are still to start their last sequence than the film has GPU slots to itself (on one
    GPU: once the last sequence runs), so the cues take slots the chains would leave idle;
    asking sooner would only make a server swap models in a carry-forward gap. A server
    another run was seen using is not the film's to fill: among other films the cues wait
    for the last sequences, as on one GPU. `compose_score` takes the renders whose prompt
    still matches the film as rendered and renders the rest.
    """

    def __init__(self, studio: Studio, plan: FilmPlan) -> None:
        self.studio = studio
        self.renders: dict[str, asyncio.Task[RenderedCue]] = {}
        self._released = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        try:
            cues = retime_cues(plan, planned_seconds(plan))
        except ScoreError:  # compose_score says why, against the measured lengths
            cues = []
        if not cues:
            return
        # The last sequence of every chain that has not started on a GPU yet.
        self._last_to_start = {c.sequences[-1] for c in plan.chains if c.sequences}
        self._fewer = asyncio.Event()  # set when a chain starts its last sequence
        studio.events = _RenderWatch(studio.events, self._started)
        studio.on_close.append(self.discard)
        self._watch = asyncio.create_task(self._release_once_slots_spare())
        for cue in cues:
            self.renders[cue_key(studio, cue)] = asyncio.create_task(self._render(cue))

    def _started(self, sequence: int) -> None:
        if sequence in self._last_to_start:
            self._last_to_start.discard(sequence)
            self._fewer.set()

    async def _release_once_slots_spare(self) -> None:
        # Only a chain starting its last sequence makes the answer yes: slots seen shared
        # stay shared.
        studio = self.studio
        while True:
            self._fewer.clear()
            own = await studio.scheduler.own_slots(studio.servers)
            if len(self._last_to_start) < max(1, own):
                self.release()
                return
            await self._fewer.wait()

    async def _render(self, cue: Cue) -> RenderedCue:
        await self._released.wait()
        return await _render_counting_cache(self.studio, cue)

    def release(self) -> None:
        """Let every cue that still waits ask for a GPU now."""
        self._released.set()

    def take(self, cue: Cue) -> asyncio.Task[RenderedCue] | None:
        """The render started for `cue`'s exact prompt, if any (each one is taken once)."""
        self.release()  # the chains are done
        return self.renders.pop(cue_key(self.studio, cue), None)

    async def discard(self) -> None:
        """Withdraw the renders no cue of the film as rendered needs."""
        pending = [*self.renders.values(), *([self._watch] if self._watch else [])]
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.renders.clear()


class _RenderWatch:
    """The run's progress sink, telling the score which sequences have started on a GPU."""

    def __init__(self, sink: ProgressSink, started: Callable[[int], None]) -> None:
        self._sink, self._started = sink, started

    def _sequence(self, label: str) -> None:
        # Sequence renders are labelled `sequence N` (tasks.render), progress and return alike.
        number = label.removeprefix("sequence ")
        if number != label and number.isdigit():
            self._started(int(number))

    def render_progress(self, label: str, value: int, maximum: int) -> None:
        self._sink.render_progress(label, value, maximum)
        self._sequence(label)

    def render_done(self, label: str, detail: str) -> None:
        self._sink.render_done(label, detail)
        self._sequence(label)

    def sequence_finished(self, result: SequenceResult) -> None:
        self._sink.sequence_finished(result)
        self._started(result.sequence.index)

    def stage(self, text: str) -> None:
        self._sink.stage(text)

    def outcome(self, text: str, *, warning: bool = False) -> None:
        self._sink.outcome(text, warning=warning)

    def cue_finished(self, cue: RenderedCue) -> None:
        self._sink.cue_finished(cue)

    def __getattr__(self, name: str) -> Any:  # whatever else the run's sink offers
        return getattr(self._sink, name)


def start_score(studio: Studio, plan: FilmPlan) -> ScoreAhead:
    """Queue the film's cue renders now, from the planned sequence lengths (see ScoreAhead)."""
    return ScoreAhead(studio, plan)


async def compose_score(
    studio: Studio, footage: Footage, ahead: ScoreAhead | None = None
) -> ScoreResult | None:
    """The film's score: the plan's cues retimed to the rendered sequences, rendered (or taken
    from `ahead`) and crossfaded. None for a film without cues (`"score": null`)."""
    studio.events.stage("composing the score")
    with studio.timer.stage("score"):
        return await render_score(studio, footage.plan, footage.measured_seconds, ahead)


async def render_score(
    studio: Studio,
    plan: FilmPlan,
    measured_seconds: Seq[float],
    ahead: ScoreAhead | None = None,
) -> ScoreResult | None:
    """Render every cue at once (the GPU slots queue them) and crossfade them into the score.

    A cue `ahead` already rendered (or is rendering) with the same prompt is taken as it is;
    only cues whose zone changed length render again. Returns None for a film without cues.
    """
    cues = retime_cues(plan, measured_seconds)
    started = [ahead.take(cue) if ahead is not None else None for cue in cues]
    if ahead is not None:
        await ahead.discard()
    if not cues:
        return None
    renders = await asyncio.gather(
        *(
            task if task is not None else _render_counting_cache(studio, cue)
            for cue, task in zip(cues, started, strict=True)
        )
    )
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
