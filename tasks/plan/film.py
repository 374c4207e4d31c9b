"""Planning: pure functions from a Screenplay to a FilmPlan. No I/O, no GPU, fast."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from tasks.errors import Problem, ScreenplayError
from tasks.plan.cast import plan_cast, portraits_on_screen
from tasks.plan.cues import plan_cues
from tasks.plan.defaults import Defaults, EstimateRates, PlanRules
from tasks.plan.lint import fix_screenplay, lint_screenplay
from tasks.plan.prompts import negative_prompt, segment_prompt, wrapper_prompt
from tasks.plan.seeds import derive_seed
from tasks.plan.takes import with_takes
from tasks.schema.film_plan import (
    CastMember,
    Chain,
    Change,
    Cue,
    Estimate,
    FilmPlan,
    Keyframe,
    LintWarning,
    PlannedLine,
    Segment,
    Sequence,
)
from tasks.schema.screenplay import Scene, Score, Screenplay

LTX_FRAME_STEP = 8
"""LTX latents cover 8 video frames each, plus the first: lengths are 8n + 1."""

AUDIO_LATENT_RATE = 25
"""LTX's audio codec runs at 25 latent frames per second, not the video's fps."""


def frame_budget(fps: int, max_seconds: float) -> int:
    """The longest 8n+1 sequence that fits in max_seconds (489 at 24 fps for 20.4 s)."""
    limit = math.floor(max_seconds * fps + 1e-9)
    return (limit - 1) // LTX_FRAME_STEP * LTX_FRAME_STEP + 1


def scene_frames(duration_s: float, fps: int) -> int:
    """Whole latent steps covering the scene, never shorter than written."""
    steps = math.ceil(duration_s * fps / LTX_FRAME_STEP - 1e-9)
    return max(1, steps) * LTX_FRAME_STEP


def audio_latent_frames(frames: int, fps: int) -> int:
    """What LTXVEmptyLatentAudio allocates for a sequence of `frames` video frames."""
    return math.ceil(frames / fps * AUDIO_LATENT_RATE)


def plan_film(
    screenplay: Screenplay,
    defaults: Defaults,
    *,
    fix: bool = False,
    rerolls: Mapping[int, int] | None = None,
    scene_limit: int | None = None,
    takes: int = 0,
    picks: Mapping[int, int] | None = None,
    keyframe_rerolls: Mapping[int, int] | None = None,
) -> FilmPlan:
    """Turn a screenplay into the plan every later stage follows.

    `takes` (when not 0) overrides the screenplay's takes of every sequence; `picks` keeps a
    chosen take of a sequence; `rerolls` and `keyframe_rerolls` count the re-rolls of a
    sequence's and a chain's keyframe seed.
    """
    changes: list[Change] = []
    if scene_limit is not None:
        screenplay = screenplay.model_copy(update={"scenes": screenplay.scenes[:scene_limit]})
    if fix:
        screenplay, changes = fix_screenplay(screenplay, defaults.plan)
    render = screenplay.render
    budget = frame_budget(render.fps, render.max_sequence_seconds)
    warnings = lint_screenplay(screenplay, defaults.plan)
    warnings.extend(_title_warnings(screenplay))
    groups = _pack(screenplay.scenes, render.fps, budget)
    sequences = _sequences(screenplay, groups, defaults.plan, rerolls or {})
    sequences = with_takes(screenplay, sequences, takes, picks or {})
    warnings.extend(_tail_warnings(screenplay, sequences))
    cast, sequences = plan_cast(screenplay, sequences, defaults.plan)
    chains = _chains(screenplay, sequences, cast, keyframe_rerolls or {})
    score, score_source = _score_choice(screenplay)
    cues = plan_cues(screenplay, sequences, score, defaults.cues) if score else ()
    return FilmPlan(
        title=screenplay.title,
        fps=render.fps,
        width=render.width,
        height=render.height,
        mode=render.mode,
        frame_budget=budget,
        sequences=tuple(sequences),
        chains=tuple(chains),
        cues=tuple(cues),
        score_source=score_source,
        warnings=tuple(warnings),
        changes=tuple(changes),
        estimate=estimate_gpu_time(sequences, chains, cues, defaults.estimate, render.mode),
        delivery_profile=screenplay.delivery.profile,
        cast=tuple(cast),
    )


def _score_choice(screenplay: Screenplay) -> tuple[Score | None, str]:
    """No `score` key: a neutral default score. `"score": null`: no score at all."""
    if screenplay.score is not None:
        return screenplay.score, "screenplay"
    if screenplay.has_explicit_score_choice:
        return None, "none"
    return Score(), "default"


def _pack(scenes: list[Scene], fps: int, budget: int) -> list[list[tuple[int, int, int]]]:
    """Group (scene, part, frames) in order into sequences that fit the frame budget."""
    usable = budget - 1
    groups: list[list[tuple[int, int, int]]] = []
    used = usable + 1
    for index, scene in enumerate(scenes):
        frames = scene_frames(scene.duration, fps)
        if frames > usable:
            if scene.dialogue:
                raise ScreenplayError(
                    "plan",
                    [
                        Problem(
                            f"scenes[{index}]",
                            f"lasts {scene.duration:g} s; one sequence holds at most "
                            f"{budget / fps:.1f} s at {fps} fps and a spoken line cannot be cut "
                            "between sequences.",
                            "split the scene and its line into two scenes (or plan with --fix).",
                        )
                    ],
                )
            parts = math.ceil(frames / usable)
            share = math.ceil(frames / parts / LTX_FRAME_STEP) * LTX_FRAME_STEP
            for part in range(parts):
                groups.append([(index, part, min(share, usable))])
            used = usable + 1
            continue
        starts_new = scene.is_hard_cut or scene.wants_keyframe or used + frames > usable
        if starts_new or not groups:
            groups.append([])
            used = 0
        groups[-1].append((index, 0, frames))
        used += frames
    return groups


def _sequences(
    screenplay: Screenplay,
    groups: list[list[tuple[int, int, int]]],
    rules: PlanRules,
    rerolls: Mapping[int, int],
) -> list[Sequence]:
    fps = screenplay.render.fps
    negative = negative_prompt(screenplay.negative_prompt, rules)
    sequences: list[Sequence] = []
    chain, position, start_s = -1, 0, 0.0
    for index, group in enumerate(groups):
        first_scene = screenplay.scenes[group[0][0]]
        if index == 0 or (group[0][1] == 0 and first_scene.wants_keyframe):
            chain, position = chain + 1, 0
        else:
            position += 1
        segments = [
            Segment(
                scene_index=scene_index,
                part=part,
                frames=frames + (1 if number == 0 else 0),
                prompt=segment_prompt(screenplay.scenes[scene_index], part),
            )
            for number, (scene_index, part, frames) in enumerate(group)
        ]
        frames = sum(segment.frames for segment in segments)
        wrapper = wrapper_prompt(screenplay, [s.scene_index for s in segments], rules)
        seed = derive_seed(
            screenplay.render.seed,
            wrapper,
            [s.model_dump() for s in segments],
            rerolls.get(index, 0),
        )
        sequences.append(
            Sequence(
                index=index,
                chain=chain,
                position=position,
                segments=tuple(segments),
                frames=frames,
                fps=fps,
                audio_latent_frames=audio_latent_frames(frames, fps),
                wrapper_prompt=wrapper,
                negative_prompt=negative,
                seed=seed,
                start_s=start_s,
                hard_cut_before=index > 0 and group[0][1] == 0 and first_scene.is_hard_cut,
                lines=tuple(_place_lines(screenplay, segments, fps)),
            )
        )
        start_s += frames / fps
    return sequences


def _place_lines(screenplay: Screenplay, segments: list[Segment], fps: int) -> list[PlannedLine]:
    lines, offset = [], 0
    for segment in segments:
        start, end = offset / fps, (offset + segment.frames) / fps
        if segment.part == 0:
            for spoken in screenplay.scenes[segment.scene_index].dialogue:
                lines.append(
                    PlannedLine(
                        scene_index=segment.scene_index,
                        character=spoken.character,
                        line=spoken.line,
                        words=len(spoken.line.split()),
                        start_s=start,
                        end_s=end,
                    )
                )
        offset += segment.frames
    return lines


def _chains(
    screenplay: Screenplay,
    sequences: list[Sequence],
    cast: list[CastMember],
    rerolls: Mapping[int, int],
) -> list[Chain]:
    chains: list[Chain] = []
    for sequence in sequences:
        if sequence.position > 0:
            continue
        members = tuple(s.index for s in sequences if s.chain == sequence.chain)
        scene = screenplay.scenes[sequence.segments[0].scene_index]
        seed = derive_seed(
            screenplay.render.seed, "keyframe", sequence.wrapper_prompt, scene.description
        )
        if rerolls.get(sequence.chain, 0):  # none: the seed every earlier run used
            seed = derive_seed(seed, "reroll", rerolls[sequence.chain])
        keyframe = Keyframe(
            source_image=scene.source_image,
            prompt=None
            if scene.source_image
            else f"{sequence.wrapper_prompt} First frame: {scene.description}",
            seed=seed,
            portraits=()
            if scene.source_image
            else portraits_on_screen(screenplay, sequence.segments[0].scene_index, cast),
        )
        chains.append(Chain(index=sequence.chain, sequences=members, keyframe=keyframe))
    return chains


def _title_warnings(screenplay: Screenplay) -> list[LintWarning]:
    title = screenplay.title.lower()
    fields = {"style": screenplay.style, "setting": screenplay.setting}
    fields.update(
        {f"characters.{name}": look.description for name, look in screenplay.characters.items()}
    )
    return [
        LintWarning(
            code="title-in-prompt",
            location=where,
            message="contains the film's title; the model reads titles aloud as a narrator "
            "title card.",
            fix="reelflow removes it from the wrapper prompt; reword the field to keep its sense.",
        )
        for where, text in fields.items()
        if title in text.lower()
    ]


def _tail_warnings(screenplay: Screenplay, sequences: list[Sequence]) -> list[LintWarning]:
    warnings = []
    for sequence in sequences:
        last = screenplay.scenes[sequence.segments[-1].scene_index]
        if last.dialogue and "after" not in last.description.lower():
            warnings.append(
                LintWarning(
                    code="no-tail",
                    location=f"scenes[{sequence.segments[-1].scene_index}]",
                    message=f"ends sequence {sequence.index} on a spoken line with no action "
                    "after it; the line may clip at the cut.",
                    fix="describe what happens after the line, e.g. 'After speaking she turns "
                    "away'.",
                )
            )
    return warnings


def estimate_gpu_time(
    sequences: list[Sequence],
    chains: list[Chain],
    cues: Iterable[Cue],
    rates: EstimateRates,
    mode: str,
) -> Estimate:
    per_second = rates.relay_fast if mode == "fast" else rates.relay_quality
    generated = [chain for chain in chains if chain.keyframe.source_image is None]
    return Estimate(
        keyframes_s=len(generated) * rates.keyframe_seconds,
        # every take is a full render
        sequences_s=sum(
            s.takes * (rates.relay_startup_seconds + s.seconds * per_second) for s in sequences
        ),
        cues_s=sum(cue.duration_s * rates.cue_per_second for cue in cues),
    )


def revise_sequence(
    sequence: Sequence, segment_seconds: Mapping[int, float], *, attempt: int, budget: int
) -> Sequence | None:
    """The sequence again with longer segments and a new seed, or None if it cannot grow."""
    segments = list(sequence.segments)
    for number, seconds in segment_seconds.items():
        frames = scene_frames(seconds, sequence.fps) + (1 if number == 0 else 0)
        segments[number] = segments[number].model_copy(
            update={"frames": max(frames, segments[number].frames)}
        )
    total = sum(segment.frames for segment in segments)
    if total > budget:
        return None
    offsets, offset = [], 0
    for segment in segments:
        offsets.append(offset)
        offset += segment.frames
    number_of = {seg.scene_index: n for n, seg in enumerate(segments) if seg.part == 0}
    lines = tuple(
        line.model_copy(
            update={
                "start_s": offsets[number_of[line.scene_index]] / sequence.fps,
                "end_s": (
                    offsets[number_of[line.scene_index]]
                    + segments[number_of[line.scene_index]].frames
                )
                / sequence.fps,
            }
        )
        for line in sequence.lines
    )
    return sequence.model_copy(
        update={
            "segments": tuple(segments),
            "frames": total,
            "lines": lines,
            "audio_latent_frames": audio_latent_frames(total, sequence.fps),
            "seed": derive_seed(sequence.seed, "reroll", attempt),
        }
    )


def with_sequences(plan: FilmPlan, revised: Iterable[Sequence]) -> FilmPlan:
    """The plan as rendered: sequences replaced by their revisions, start times recomputed."""
    by_index = {sequence.index: sequence for sequence in revised}
    sequences, start_s = [], 0.0
    for planned in plan.sequences:
        sequence = by_index.get(planned.index, planned).model_copy(update={"start_s": start_s})
        sequences.append(sequence)
        start_s += sequence.seconds
    return plan.model_copy(update={"sequences": tuple(sequences)})
