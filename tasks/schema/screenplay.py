"""The screenplay: what an author writes, as plain data in the film's own words."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tasks.schema.delivery import DEFAULT_PROFILE, ProfileName

RELAY_SEPARATOR = "|"
"""Prompt Relay joins segment prompts with this character; no prompt may contain it."""

MAX_SCENES = 1000
MAX_SCENE_SECONDS = 600.0

DEFAULT_NEGATIVE_PROMPT = (
    "music, background music, soundtrack, score, instruments, drums, melody, instrumental, "
    "ambient music, deformed, mutilated, extra limbs, malformed face, blurry, low quality, "
    "watermark, subtitles"
)

Text = Annotated[str, Field(min_length=1, max_length=4000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _refuse_separator(text: str) -> str:
    if RELAY_SEPARATOR in text:
        raise PydanticCustomError(
            "relay_separator",
            "contains '|', which Prompt Relay reads as the boundary between segments; "
            "use a comma, a dash or a new sentence instead",
        )
    return text


class DialogueLine(_Strict):
    """One spoken line, said by a character named in the screenplay's `characters`."""

    character: Text
    line: Text

    @field_validator("line")
    @classmethod
    def _no_separator(cls, line: str) -> str:
        return _refuse_separator(line)


class Character(_Strict):
    """Who a character is on screen: the description goes into every prompt they appear in;
    `portrait` (an image) and `voice` (a short clean clip of them speaking) keep them one face
    and one voice across every sequence. Written as a plain description, a character has no
    cast (no portrait, no voice reference), as before casting existed."""

    description: Text
    portrait: str | None = None
    voice: str | None = None
    cast: bool = True


def _described(value: Any) -> Any:
    """A plain description is a character without a cast (as screenplays were written
    before casting existed)."""
    if isinstance(value, str):
        if not value.strip():
            raise PydanticCustomError(
                "string_too_short", "String should have at least 1 character", {"min_length": 1}
            )
        return {"description": value, "cast": False}
    return value


class Scene(_Strict):
    """One beat of the film as the author writes it."""

    description: Text
    duration: float = Field(gt=0, le=MAX_SCENE_SECONDS, strict=True, allow_inf_nan=False)
    characters: list[Text] = Field(default_factory=list)
    dialogue: list[DialogueLine] = Field(default_factory=list)
    tags: list[Text] = Field(default_factory=list)
    relay_break: bool = False
    source_image: str | None = None
    takes: int | None = Field(
        default=None, ge=1, le=8, description="Takes of this scene's sequence (default: render's)"
    )

    @field_validator("description")
    @classmethod
    def _no_separator(cls, description: str) -> str:
        return _refuse_separator(description)

    @property
    def is_hard_cut(self) -> bool:
        return self.relay_break or "transition" in self.tags

    @property
    def wants_keyframe(self) -> bool:
        return self.source_image is not None or "keyframe" in self.tags


class Score(_Strict):
    """The musical identity shared by every cue of the film's score."""

    palette: Text = "warm strings, soft piano, ambient pads"
    key: Text = "C minor"
    bpm: int = Field(default=72, ge=30, le=240)
    theme: Text = "a simple recurring four-note motif"


class RenderSettings(_Strict):
    """How the film is rendered; every field has a sensible default."""

    fps: int = Field(default=24, ge=8, le=60)
    width: int = Field(default=768, ge=256, le=3840, multiple_of=32)
    height: int = Field(default=512, ge=256, le=2160, multiple_of=32)
    mode: Literal["fast", "quality"] = "fast"
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    max_sequence_seconds: float = Field(default=20.4, gt=1, le=60)
    takes: int = Field(
        default=1, ge=1, le=8, description="Candidates rendered per sequence; the best is kept"
    )


class DeliverySettings(_Strict):
    """What the film is delivered to; a run's `--profile` flag overrides it."""

    profile: ProfileName = DEFAULT_PROFILE


class Screenplay(_Strict):
    """A whole film as written: who is in it, how it looks, and its scenes in order."""

    title: Text
    style: Text
    setting: Text
    characters: dict[
        Annotated[str, Field(min_length=1, max_length=80)],
        Annotated[Character, BeforeValidator(_described)],
    ] = Field(default_factory=dict)
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)
    score: Score | None = None
    render: RenderSettings = Field(default_factory=RenderSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @field_validator("characters", mode="before")
    @classmethod
    def _characters_are_described(cls, value: Any) -> Any:
        if isinstance(value, list):
            raise PydanticCustomError(
                "characters_as_list",
                "is a list of names; a name alone does not keep a face the same across "
                'sequences. Write a mapping NAME -> visual description, e.g. {"EDDA": '
                '"an old woman with a long white braid and a navy sweater"}',
            )
        return value

    @field_validator("style", "setting")
    @classmethod
    def _no_separator(cls, text: str) -> str:
        return _refuse_separator(text)

    @model_validator(mode="after")
    def _names_are_known(self) -> Screenplay:
        known = set(self.characters)
        for index, scene in enumerate(self.scenes):
            for name in scene.characters:
                if name not in known:
                    raise _unknown_character(f"scenes[{index}].characters", name, known)
            for line_index, spoken in enumerate(scene.dialogue):
                if spoken.character not in known:
                    location = f"scenes[{index}].dialogue[{line_index}].character"
                    raise _unknown_character(location, spoken.character, known)
        return self

    def description_of(self, name: str) -> str:
        return self.characters[name].description

    @property
    def cast(self) -> dict[str, Character]:
        """The characters given one face and one voice (declared as objects)."""
        return {name: c for name, c in self.characters.items() if c.cast}

    @property
    def has_explicit_score_choice(self) -> bool:
        return "score" in self.model_fields_set


def _unknown_character(location: str, name: str, known: set[str]) -> PydanticCustomError:
    listed = ", ".join(sorted(known)) or "none"
    return PydanticCustomError(
        "unknown_character",
        "names '{name}', who is not in `characters` (listed: {listed})",
        {"location": location, "name": name, "listed": listed},
    )
