"""The cue map: where the score changes, and the arithmetic that makes cues add up."""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq
from dataclasses import dataclass

from tasks.plan.defaults import CueRules
from tasks.plan.seeds import derive_seed
from tasks.schema.film_plan import Cue, Sequence
from tasks.schema.screenplay import Score, Screenplay

PIVOT_WEIGHTS = {"climax": 3.0, "pivot": 3.0, "hard_cut": 2.5, "entrance": 2.0, "scene": 0.5}


@dataclass(frozen=True)
class Pivot:
    """A scene start where the score may turn, and how strongly it invites a turn."""

    scene_index: int
    time_s: float
    weight: float


def cue_count(film_s: float, rules: CueRules) -> int:
    """Fewer cues sound like wallpaper, more are jittery: 5-10 for a feature, fewer if short."""
    count = math.ceil(film_s / rules.seconds_per_cue)
    if film_s >= rules.feature_seconds:
        count = max(count, rules.min_cues_feature)
    return max(1, min(rules.max_cues, count))


def scene_starts(screenplay: Screenplay, sequences: Seq[Sequence]) -> dict[int, float]:
    """Film time at which each scene's first segment begins."""
    starts: dict[int, float] = {}
    for sequence in sequences:
        offset = sequence.start_s
        for segment in sequence.segments:
            starts.setdefault(segment.scene_index, offset)
            offset += segment.frames / sequence.fps
    return starts


def find_pivots(screenplay: Screenplay, starts: dict[int, float]) -> list[Pivot]:
    pivots, seen = [], set[str]()
    for index in sorted(starts):
        if index == 0:
            seen.update(screenplay.scenes[0].characters)
            continue
        scene = screenplay.scenes[index]
        present = set(scene.characters) | {line.character for line in scene.dialogue}
        weight = PIVOT_WEIGHTS["scene"]
        if scene.is_hard_cut:
            weight = max(weight, PIVOT_WEIGHTS["hard_cut"])
        if present - seen:
            weight = max(weight, PIVOT_WEIGHTS["entrance"])
        for tag in ("climax", "pivot"):
            if tag in scene.tags:
                weight = max(weight, PIVOT_WEIGHTS[tag])
        seen |= present
        pivots.append(Pivot(index, starts[index], weight))
    return pivots


def choose_boundaries(
    pivots: list[Pivot], film_s: float, count: int, min_zone_s: float
) -> list[Pivot]:
    """Pick count-1 pivots near the even split points, preferring strong pivots."""
    chosen: list[Pivot] = []
    spacing = film_s / count
    for number in range(1, count):
        ideal = number * spacing
        last = chosen[-1].time_s if chosen else 0.0
        candidates = [
            p
            for p in pivots
            if p.time_s - last >= min_zone_s and film_s - p.time_s >= min_zone_s and p not in chosen
        ]
        if not candidates:
            break
        chosen.append(
            max(candidates, key=lambda p: p.weight - 2.0 * abs(p.time_s - ideal) / spacing)
        )
    return sorted(chosen, key=lambda p: p.time_s)


def split_zone(zone_s: float, limit_s: float) -> list[float]:
    """Zones longer than one generation allows are cut into equal parts that fit."""
    parts = max(1, math.ceil(zone_s / limit_s))
    return [zone_s / parts] * parts


def plan_cues(
    screenplay: Screenplay, sequences: Seq[Sequence], score: Score, rules: CueRules
) -> list[Cue]:
    film_s = sum(sequence.seconds for sequence in sequences)
    starts = scene_starts(screenplay, sequences)
    boundaries = choose_boundaries(
        find_pivots(screenplay, starts), film_s, cue_count(film_s, rules), rules.min_zone_seconds
    )
    edges = [(0, 0.0), *((p.scene_index, p.time_s) for p in boundaries)]
    zones: list[tuple[int, float, float]] = []
    for number, (scene_index, start) in enumerate(edges):
        end = edges[number + 1][1] if number + 1 < len(edges) else film_s
        offset = start
        for part in split_zone(end - start, rules.max_generation_seconds - rules.tail_seconds):
            zones.append((scene_index, offset, part))
            offset += part
    base_seed = _score_seed(screenplay, score)
    cues = []
    for number, (scene_index, start, zone) in enumerate(zones):
        last = number == len(zones) - 1
        section, dynamics = _arc(number, len(zones))
        cues.append(
            Cue(
                index=number,
                first_scene=scene_index,
                start_s=start,
                zone_s=zone,
                tail_s=0.0 if last else rules.tail_seconds,
                seed=base_seed + number,
                beat=_beat(screenplay.scenes[scene_index].description),
                dynamics=dynamics,
                section=section,
                palette=score.palette,
                key=score.key,
                bpm=score.bpm,
                theme=score.theme,
            )
        )
    return cues


def _score_seed(screenplay: Screenplay, score: Score) -> int:
    return derive_seed(screenplay.render.seed, "score", score.model_dump()) % 1_000_000_000


def _arc(number: int, total: int) -> tuple[str, str]:
    """One theme developing across the film: introduce, build, peak, resolve."""
    if total == 1:
        return "intro-outro", "quiet statement of the theme, swelling gently, then resolving"
    if number == 0:
        return "intro", "sparse and quiet, the theme stated once"
    if number == total - 1:
        return "outro", "the theme resolved, thinning out to silence"
    position = number / (total - 1)
    if position >= 0.6:
        return "climax", "fullest texture, the theme at its strongest"
    return "development", "building, the theme developed with more voices"


def _beat(description: str) -> str:
    first = description.split(".")[0].strip()
    return first if len(first) <= 120 else first[:117] + "..."
