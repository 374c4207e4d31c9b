"""The duration lint and its opt-in fixer: catch too-short dialogue before GPU time is spent."""

from __future__ import annotations

import math
import re

from tasks.plan.defaults import PlanRules
from tasks.schema.film_plan import Change, LintWarning
from tasks.schema.screenplay import DialogueLine, Scene, Screenplay

_CLAUSE_BREAK = re.compile(r"(?<=[.!?;,])\s+")


def word_count(line: str) -> int:
    return len(line.split())


def required_seconds(line: str, rules: PlanRules) -> float:
    """Production rule: words + 2 s, at least 5 s."""
    spoken = word_count(line) * rules.seconds_per_word + rules.dialogue_margin_seconds
    return max(rules.min_dialogue_scene_seconds, spoken)


def lint_screenplay(screenplay: Screenplay, rules: PlanRules) -> list[LintWarning]:
    warnings: list[LintWarning] = []
    for index, scene in enumerate(screenplay.scenes):
        where = f"scenes[{index}]"
        if len(scene.dialogue) > 1:
            warnings.append(
                LintWarning(
                    code="several-lines",
                    location=where,
                    message=f"has {len(scene.dialogue)} spoken lines; the model speaks one line "
                    "per scene reliably.",
                    fix="give each line its own scene (or plan with --fix).",
                )
            )
        needed = sum(required_seconds(spoken.line, rules) for spoken in scene.dialogue)
        for spoken in scene.dialogue:
            if required_seconds(spoken.line, rules) > rules.max_line_seconds:
                warnings.append(
                    LintWarning(
                        code="line-too-long",
                        location=where,
                        message=f"{spoken.character}'s line needs "
                        f"{required_seconds(spoken.line, rules):.0f} s "
                        f"({word_count(spoken.line)} words + 2 s), more than "
                        f"{rules.max_line_seconds:.0f} s.",
                        fix="split the line across two consecutive scenes (or plan with --fix).",
                    )
                )
        if scene.dialogue and scene.duration < needed:
            warnings.append(
                LintWarning(
                    code="too-short",
                    location=where,
                    message=f"lasts {scene.duration:g} s but its dialogue needs {needed:g} s "
                    "(words + 2 s, minimum 5 s); the line would be cut mid-word.",
                    fix=f"set duration to {math.ceil(needed)} (or plan with --fix).",
                )
            )
    return warnings


def fix_screenplay(screenplay: Screenplay, rules: PlanRules) -> tuple[Screenplay, list[Change]]:
    """Split scenes with several or over-long lines and lengthen short dialogue scenes."""
    scenes: list[Scene] = []
    changes: list[Change] = []
    for index, scene in enumerate(screenplay.scenes):
        parts = _split_scene(scene, rules)
        if len(parts) > 1:
            changes.append(
                Change(
                    location=f"scenes[{index}]",
                    description=f"split into {len(parts)} scenes, one line or half-line each",
                )
            )
        for part in parts:
            needed = sum(required_seconds(spoken.line, rules) for spoken in part.dialogue)
            if part.dialogue and part.duration < needed:
                changes.append(
                    Change(
                        location=f"scenes[{index}]",
                        description=f"duration {part.duration:g} s -> {math.ceil(needed)} s "
                        "so the line fits",
                    )
                )
                part = part.model_copy(update={"duration": float(math.ceil(needed))})
            scenes.append(part)
    return screenplay.model_copy(update={"scenes": scenes}), changes


def _split_scene(scene: Scene, rules: PlanRules) -> list[Scene]:
    lines: list[DialogueLine] = []
    for spoken in scene.dialogue:
        lines.extend(_split_to_fit(spoken, rules))
    if len(lines) <= 1:
        return [scene]
    share = scene.duration / len(lines)
    parts = []
    for number, spoken in enumerate(lines):
        parts.append(
            scene.model_copy(
                update={
                    "dialogue": [spoken],
                    "duration": share,
                    "description": scene.description
                    if number == 0
                    else f"Continuing: {scene.description}",
                    "tags": scene.tags
                    if number == 0
                    else [t for t in scene.tags if t not in ("transition", "keyframe")],
                    "relay_break": scene.relay_break if number == 0 else False,
                    "source_image": scene.source_image if number == 0 else None,
                }
            )
        )
    return parts


def _split_to_fit(spoken: DialogueLine, rules: PlanRules) -> list[DialogueLine]:
    """Halve a line again and again until every part fits one scene's budget."""
    if (
        required_seconds(spoken.line, rules) <= rules.max_line_seconds
        or word_count(spoken.line) < 2
    ):
        return [spoken]
    return [part for half in _halve(spoken) for part in _split_to_fit(half, rules)]


def _halve(spoken: DialogueLine) -> list[DialogueLine]:
    """Split a line at the clause break nearest its middle (or the middle word)."""
    words = spoken.line.split()
    breaks = [len(chunk.split()) for chunk in _running_chunks(spoken.line)]
    middle = len(words) / 2
    cut = min(breaks, key=lambda at: abs(at - middle)) if breaks else len(words) // 2
    if cut <= 0 or cut >= len(words):
        cut = len(words) // 2
    first, second = " ".join(words[:cut]), " ".join(words[cut:])
    return [
        DialogueLine(character=spoken.character, line=first),
        DialogueLine(character=spoken.character, line=second),
    ]


def _running_chunks(line: str) -> list[str]:
    pieces = _CLAUSE_BREAK.split(line)
    return [" ".join(pieces[: i + 1]) for i in range(len(pieces) - 1)]
