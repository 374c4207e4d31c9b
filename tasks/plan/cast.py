"""The cast in the plan: who gets a portrait and a voice made, whose portraits a keyframe shows,
and whose voice each sequence speaks in. Pure decisions, like the frame budget.

A voice reference is one speaker's identity, and LTX's ID-LoRA node (`LTXVReferenceAudio`)
takes one per render: a sequence speaks in the reference voice of its *dominant speaker*,
the character with the most words in it (ties: who speaks first). Other speakers of the same
sequence keep whatever voice the model gives them; the voice check reports their similarity,
but re-rendering cannot fix it, so only the dominant speaker's mismatch asks for a new seed.
The simulator follows the same documented rule (sim/lines.py).

A cast member without a voice file gets one from an *audition*: a short render of them
saying their first line, made before any sequence; their words are cut out of it by the ASR's
word timestamps. Deterministic (seeded from the film's seed and the name), cached like any
render, and no sequence is ever rendered in a voice that is later replaced.
"""

from __future__ import annotations

import math

from tasks.plan.defaults import PlanRules
from tasks.plan.lint import required_seconds
from tasks.plan.seeds import derive_seed
from tasks.schema.film_plan import Audition, CastMember, Sequence
from tasks.schema.screenplay import Screenplay

PORTRAIT_FRAMING = (
    "Head and shoulders portrait, facing the camera, neutral grey background, "
    "soft even studio light, no text"
)
MAX_PORTRAITS = 3
"""TextEncodeQwenImageEditPlus takes up to three reference images."""


def dominant_speaker(sequence: Sequence) -> str | None:
    """The character with the most words in the sequence (first to speak wins a tie)."""
    words: dict[str, int] = {}
    for line in sequence.lines:
        words[line.character] = words.get(line.character, 0) + line.words
    return max(words, key=lambda name: words[name]) if words else None


def portrait_prompt(screenplay: Screenplay, name: str) -> str:
    """A text-to-image prompt for a character's reference portrait (never the film's title)."""
    return f"{PORTRAIT_FRAMING}. {screenplay.description_of(name)}. {screenplay.style}"


def plan_cast(
    screenplay: Screenplay, sequences: list[Sequence], rules: PlanRules
) -> tuple[list[CastMember], list[Sequence]]:
    """The cast members, and the sequences with the cast member whose voice each speaks in."""
    first_line: dict[str, str] = {}
    for sequence in sequences:
        for line in sequence.lines:
            first_line.setdefault(line.character, line.line)
    cast = [
        CastMember(
            name=name,
            description=character.description,
            portrait=character.portrait,
            voice=character.voice,
            portrait_prompt=portrait_prompt(screenplay, name),
            portrait_seed=derive_seed(screenplay.render.seed, "portrait", character.description),
            audition=Audition(
                line=first_line[name],
                seconds=_audition_seconds(first_line[name], rules, screenplay.render.fps),
                seed=derive_seed(screenplay.render.seed, "audition", name, first_line[name]),
            )
            if character.voice is None and name in first_line
            else None,
        )
        for name, character in screenplay.cast.items()
    ]
    voiced = {member.name for member in cast if member.voice or member.audition}
    return cast, [
        sequence.model_copy(update={"voice_of": speaker})
        if (speaker := dominant_speaker(sequence)) in voiced
        else sequence
        for sequence in sequences
    ]


def _audition_seconds(line: str, rules: PlanRules, fps: int) -> float:
    """The dialogue rule's room for the line, in whole latent steps (8n+1 frames)."""
    frames = 8 * math.ceil(required_seconds(line, rules) * fps / 8) + 1
    return frames / fps


def portraits_on_screen(
    screenplay: Screenplay, scene_index: int, cast: list[CastMember]
) -> tuple[str, ...]:
    """The cast members on screen in a scene (named in it, or speaking), at most three, in the
    order the scene names them: whose portraits a keyframe of that scene shows."""
    scene = screenplay.scenes[scene_index]
    members = {member.name for member in cast}
    on_screen = dict.fromkeys([*scene.characters, *(line.character for line in scene.dialogue)])
    return tuple(name for name in on_screen if name in members)[:MAX_PORTRAITS]
