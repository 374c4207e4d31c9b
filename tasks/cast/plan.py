"""Who needs a face and a voice made, and how to ask for them: pure decisions over the plan.

A voice reference is one speaker's identity, and LTX's ID-LoRA node (`LTXVReferenceAudio`)
takes one per render: a sequence speaks in the reference voice of its *dominant speaker*,
the character with the most words in it (ties: who speaks first). Other speakers of the same
sequence keep whatever voice the model gives them; the voice check reports their similarity
but re-rendering cannot fix it, so only the dominant speaker's mismatch asks for a new seed.
The simulator follows the same documented rule (sim/speech.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tasks.plan.seeds import derive_seed
from tasks.schema.film_plan import FilmPlan, Sequence
from tasks.schema.screenplay import Screenplay

PORTRAIT_FRAMING = (
    "head and shoulders portrait, facing the camera, neutral grey background, "
    "soft even studio light, no text"
)
AUDITION_SECONDS = 6.0
"""An audition render: long enough for one clean line (the dialogue rule), short on the GPU."""


class Audition(BaseModel):
    """A short render of one character saying one of their lines: their voice reference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    character: str
    line: str
    description: str
    seed: int


def dominant_speaker(sequence: Sequence) -> str | None:
    """The character with the most words in the sequence (first to speak wins a tie)."""
    words: dict[str, int] = {}
    for line in sequence.lines:
        words[line.character] = words.get(line.character, 0) + line.words
    return max(words, key=lambda name: words[name]) if words else None


def portrait_prompt(screenplay: Screenplay, name: str) -> str:
    """A text-to-image prompt for a character's reference portrait (never the film's title)."""
    return f"{screenplay.style}. {screenplay.description_of(name)}. {PORTRAIT_FRAMING}"


def auditions(screenplay: Screenplay, plan: FilmPlan) -> list[Audition]:
    """One audition for each cast character who speaks and has no voice file: their first
    line in the film, in their own words, seeded from the film's seed and their name."""
    first_line: dict[str, str] = {}
    for sequence in plan.sequences:
        for line in sequence.lines:
            first_line.setdefault(line.character, line.line)
    return [
        Audition(
            character=name,
            line=first_line[name],
            description=screenplay.description_of(name),
            seed=derive_seed(screenplay.render.seed, "audition", name),
        )
        for name, character in screenplay.cast.items()
        if character.voice is None and name in first_line
    ]
