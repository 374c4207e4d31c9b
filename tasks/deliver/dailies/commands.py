"""The exact command (and Prefect deployment parameters) that re-rolls one sequence.

The review page changes nothing itself: it writes out what to run, repeating the run's own
options (every field that differs from its default) so that the only difference is the
re-rolled sequence's seed.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasks.schema.options import FilmOptions

DEPLOYMENT = "film/film"


class Rerender(BaseModel):
    """How to re-roll one sequence: on the command line or as a deployment run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int
    command: str
    parameters: dict[str, Any]
    deployment_command: str
    already_rerolled: bool


def _words(name: str, value: Any, default: Any, *, always: bool = False) -> list[str]:
    """One field as CLI words, the way `flows.flags` spells it; nothing for a default."""
    flag = "--" + name.replace("_", "-")
    if value == default and not always:
        return []
    if isinstance(value, bool):
        return [flag] if value else [f"--no-{name.replace('_', '-')}"]
    if isinstance(value, tuple):
        return [word for item in value for word in (flag, str(item))]
    return [flag, str(value)]


def option_words(options: FilmOptions, always: frozenset[str] = frozenset()) -> list[str]:
    """Every non-default option (and those named in `always`) as command-line words, in the
    model's field order."""
    words: list[str] = []
    defaults = FilmOptions()
    for name in FilmOptions.model_fields:
        value, default = getattr(options, name), getattr(defaults, name)
        if isinstance(value, BaseModel):
            for sub in type(value).model_fields:
                words += _words(sub, getattr(value, sub), getattr(default, sub))
        else:
            words += _words(name, value, default, always=name in always)
    return words


def rerender_parameters(screenplay: Path, options: FilmOptions, sequence: int) -> dict[str, Any]:
    """Flow parameters for the deployment: the screenplay and the options that differ."""
    chosen = options.with_rerolled(sequence)
    return {
        "screenplay": screenplay.as_posix(),
        "options": chosen.model_dump(mode="json", exclude_defaults=True),
    }


def rerender_command(screenplay: Path, options: FilmOptions, sequence: int) -> str:
    """`python -m flows.film SCREENPLAY ... --rerender N`, quoted for a POSIX shell."""
    chosen = options.with_rerolled(sequence)
    # `--out` always: the command is run from wherever the reader stands.
    words = option_words(chosen, always=frozenset({"out"}))
    return shlex.join(["python", "-m", "flows.film", screenplay.as_posix(), *words])


def rerender_for(screenplay: Path, options: FilmOptions, sequence: int) -> Rerender:
    """Both forms of the re-roll of `sequence`."""
    parameters = rerender_parameters(screenplay, options, sequence)
    return Rerender(
        sequence=sequence,
        command=rerender_command(screenplay, options, sequence),
        parameters=parameters,
        deployment_command=shlex.join(
            ["prefect", "deployment", "run", DEPLOYMENT, "--params", json.dumps(parameters)]
        ),
        already_rerolled=sequence in options.render.rerender,
    )
