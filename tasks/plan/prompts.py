"""The words a plan sends to the models: segment and wrapper prompts, the negative prompt."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tasks.plan.defaults import PlanRules
from tasks.schema.screenplay import Scene, Screenplay


def quoted(line: str) -> str:
    """A line in double quotes, its own quotes and backslashes escaped: the quote ends where
    the line ends, for the model and for any reader of the prompt."""
    return '"' + line.replace("\\", "\\\\").replace('"', '\\"') + '"'


def segment_prompt(scene: Scene, part: int = 0) -> str:
    """The scene's description, then each line as NAME says "line" (quotes escaped)."""
    said = [f"{spoken.character} says {quoted(spoken.line)}" for spoken in scene.dialogue]
    text = (
        " ".join([scene.description.rstrip(".") + ".", *said])
        if part == 0
        else f"Continuing: {scene.description}"
    )
    return text


def wrapper_prompt(screenplay: Screenplay, scene_indices: Iterable[int], rules: PlanRules) -> str:
    """Style + setting + the looks of the characters present; never the film's title."""
    present: dict[str, None] = {}
    for index in scene_indices:
        scene = screenplay.scenes[index]
        present.update(dict.fromkeys(scene.characters))
        present.update(dict.fromkeys(spoken.character for spoken in scene.dialogue))
    looks = [f"{name}: {screenplay.description_of(name)}." for name in present]
    parts = [
        f"{screenplay.style.rstrip('.')}.",
        f"Setting: {screenplay.setting.rstrip('.')}.",
        *looks,
        rules.no_music_clause,
    ]
    return _without_title(" ".join(parts), screenplay.title)


def _without_title(text: str, title: str) -> str:
    return re.sub(re.escape(title), "", text, flags=re.IGNORECASE).replace("  ", " ").strip()


def negative_prompt(authored: str, rules: PlanRules) -> str:
    terms = [term.strip() for term in authored.split(",") if term.strip()]
    seen = {term.lower() for term in terms}
    for term in (*rules.negative_music_terms, *rules.negative_defect_terms):
        if term.lower() not in seen:
            terms.append(term)
            seen.add(term.lower())
    return ", ".join(terms)
