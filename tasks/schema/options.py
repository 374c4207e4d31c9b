"""A film run's options: the one place they are written down.

The film flow takes them as its parameters (the Prefect run form shows the essentials first
and the expert groups below), the CLI builds its flags from these fields, the nightly batch
passes them to each film, and the dailies page writes them back out as a command.
A field's `flag` metadata is its CLI spelling where the field name alone is not enough.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.schema.delivery import MasterKind, ProfileName

Mode = Literal["screenplay", "fast", "quality"]
SlotKind = Literal["local", "prefect"]
Gate = Literal["cast", "takes", "final"]
GATES: tuple[Gate, ...] = ("cast", "takes", "final")
"""The gates in the order a run reaches them."""

_PICK = re.compile(r"^\s*(\d+)\s*=\s*(\d+)\s*$")


def parse_pick(entry: str) -> tuple[int, int]:
    """`"2=1"` -> (sequence 2, take 1); ValueError naming the entry if it is not SEQ=TAKE."""
    found = _PICK.match(entry)
    if found is None:
        raise ValueError(f"pick {entry!r} is not SEQ=TAKE; write e.g. 2=1 (sequence 2, take 1)")
    return int(found.group(1)), int(found.group(2))


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RenderOptions(_Options):
    """What to render, and how closely to check it."""

    limit: int = Field(
        0,
        ge=0,
        description="Render only the first N scenes (0: all of them).",
        json_schema_extra={"metavar": "N"},
    )
    rerender: tuple[int, ...] = Field(
        (),
        description="Sequences to re-roll with a new seed (list one twice to re-roll it again).",
        json_schema_extra={"metavar": "SEQ"},
    )
    fix: bool = Field(
        False, description="Lengthen or split scenes that break the dialogue duration rule."
    )
    keyframes: Literal["generate", "t2v"] = Field(
        "generate", description="Start chains from a generated keyframe, or text-to-video."
    )
    dialogue_check: bool = Field(
        True, description="Hear every sequence and re-render or mute by the verdict."
    )
    rerender_keyframe: tuple[int, ...] = Field(
        (),
        description="Chains whose keyframe to re-roll with a new seed (list one twice to "
        "re-roll it again); the chain's sequences follow the new keyframe.",
        json_schema_extra={"metavar": "CHAIN"},
    )
    takes: int = Field(
        0,
        ge=0,
        le=8,
        description="Candidates rendered per sequence, the best-scored one kept (0: as the "
        "screenplay says, else 1).",
        json_schema_extra={"metavar": "N"},
    )
    pick: tuple[str, ...] = Field(
        (),
        description="Keep this take of a sequence instead of the best-scored one, as SEQ=TAKE.",
        json_schema_extra={"metavar": "SEQ=TAKE"},
    )
    gates: tuple[Gate, ...] = Field(
        (),
        description="Stop for a person's decision: cast (keyframes made, before sequences), "
        "takes (every take rendered, before score and mux), final (before delivery).",
    )
    gate_wait: Literal["pause", "suspend"] = Field(
        "pause",
        description="How a gate waits: pause (the run keeps its worker) or suspend (the worker "
        "is freed; on resume the run starts over and finished work comes from the cache; "
        "deployment runs only).",
    )
    gate_timeout: int = Field(
        3600,
        ge=1,
        description="Seconds a gate waits for an answer; then the run ends, finished work kept.",
        json_schema_extra={"metavar": "S"},
    )

    @field_validator("pick")
    @classmethod
    def _picks_are_seq_take(cls, picks: tuple[str, ...]) -> tuple[str, ...]:
        for entry in picks:
            parse_pick(entry)
        return picks

    def picks(self) -> dict[int, int]:
        """Sequence -> picked take (a later entry for the same sequence wins)."""
        return dict(parse_pick(entry) for entry in self.pick)


class DeliveryOptions(_Options):
    """How the film is cut, mixed and delivered."""

    transitions: Literal["cut", "dissolve"] = Field(
        "cut", description="Hard cuts (lossless), or dissolves (refused at dialogue edges)."
    )
    master: MasterKind = Field(
        "none",
        description="Also write a master: yuv444 (H.264 4:4:4 10-bit, for grading), prores "
        "(ProRes 422 HQ) or dnxhr (DNxHR HQ), both with 24-bit 48 kHz PCM; all SDR.",
    )
    score_gain: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Score level under the dialogue (0.25 = -12 dB).",
        json_schema_extra={"metavar": "G"},
    )
    profile: Literal["screenplay", ProfileName] = Field(
        "screenplay",
        description="Loudness the final mix is measured and corrected to: ebu-r128 (-23 LUFS), "
        "streaming (-14), atsc-a85 (-24), apple (-16), dialogue-gated (-27 on the dialogue); "
        "screenplay: as its `delivery.profile` says (ebu-r128 when it says nothing).",
    )
    burn_subtitles: bool = Field(
        False,
        description="Also write the film with its subtitles burnt in, inside the title-safe area.",
    )

    @field_validator("master", mode="before")
    @classmethod
    def _master_was_a_switch(cls, value: Any) -> Any:
        # Saved deployment parameters and batch files from before the choice said true/false.
        if isinstance(value, bool):
            return "yuv444" if value else "none"
        return value


class StudioOptions(_Options):
    """How renders share GPUs with other runs, and which workflows they run."""

    gpu_slots: SlotKind = Field(
        "local",
        description="local: lock files on this host; prefect: global concurrency limits for "
        "workers on several hosts (needs a Prefect server).",
    )
    public_url: str = Field(
        "",
        description="Base URL the output folder is served under (`python -m flows.film serve`), "
        "for links in the Prefect run; empty: $REELFLOW_PUBLIC_URL. A bucket store needs none.",
        json_schema_extra={"metavar": "URL"},
    )
    schedule: Literal["auto", "aware", "unaware"] = Field(
        "auto",
        description="aware: keep each GPU on one model family where that costs no time; "
        "auto: $REELFLOW_SCHEDULE, else aware.",
    )
    workflows: tuple[str, ...] = Field(
        (),
        description="Your own ComfyUI workflows (API exports, nodes titled reelflow.*): a folder, "
        "KIND=FILE for one kind (relay_i2v, relay_t2v, keyframe, cue) or block:NAME; kinds "
        "not given: $REELFLOW_WORKFLOWS, else the built-in config/workflows.",
        json_schema_extra={"metavar": "WHERE"},
    )


class FilmOptions(_Options):
    """Everything a film run can be told besides the screenplay itself."""

    comfyui: tuple[str, ...] = Field(
        (),
        description="ComfyUI servers (URL or block:NAME); none: $REELFLOW_COMFYUI, else the "
        "embedded simulator renders an animatic.",
        json_schema_extra={"metavar": "URL"},
    )
    out: str = Field("renders", description="Output folder; each film gets a folder inside.")
    store: str = Field(
        "",
        description="Media store: a folder, s3://bucket/prefix or block:NAME; empty: "
        "$REELFLOW_STORE, else OUT/.reelflow.",
        json_schema_extra={"metavar": "WHERE"},
    )
    mode: Mode = Field(
        "screenplay", description="fast (distilled) or quality (dev) checkpoints, or as written."
    )
    render: RenderOptions = RenderOptions()
    delivery: DeliveryOptions = DeliveryOptions()
    studio: StudioOptions = StudioOptions()

    @classmethod
    def of(cls, **values: Any) -> FilmOptions:
        """Options from flat field names (`score_gain=0.5`), each placed in its group."""
        document: dict[str, Any] = {}
        groups = {
            sub: name
            for name, field in cls.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
            for sub in field.annotation.model_fields
        }
        for key, value in values.items():
            if key in groups:
                document.setdefault(groups[key], {})[key] = value
            else:
                document[key] = value
        return cls.model_validate(document)

    def with_rerolled(self, sequence: int) -> FilmOptions:
        """These options with one more re-roll of `sequence` (earlier re-rolls kept: dropping
        them would bring their old takes back)."""
        rerolls = tuple(sorted({*self.render.rerender, sequence}))
        return self.model_copy(
            update={"render": self.render.model_copy(update={"rerender": rerolls})}
        )

    def with_picked(self, sequence: int, take: int) -> FilmOptions:
        """These options keeping `take` of `sequence` (any earlier pick of it replaced)."""
        kept = [p for p in self.render.pick if parse_pick(p)[0] != sequence]
        picks = tuple(sorted([*kept, f"{sequence}={take}"], key=parse_pick))
        return self.with_render(pick=picks)

    def with_render(self, **changes: Any) -> FilmOptions:
        """These options with some render fields changed (and checked)."""
        render = RenderOptions.model_validate({**self.render.model_dump(), **changes})
        return self.model_copy(update={"render": render})
