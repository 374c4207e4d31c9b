"""The exact command (and Prefect deployment parameters) that re-rolls one sequence, or keeps
another of its takes.

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


class Choice(BaseModel):
    """One run to start: as a command line, as deployment parameters, as `prefect` command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: str
    parameters: dict[str, Any]
    deployment_command: str


class Rerender(BaseModel):
    """How to re-roll one sequence: on the command line or as a deployment run.

    `screenplay` and `run` (the run's own options) are kept so the page can write out other
    runs of the same film, such as picking one of the sequence's takes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int
    command: str
    parameters: dict[str, Any]
    deployment_command: str
    already_rerolled: bool
    screenplay: str = ""
    run: FilmOptions = FilmOptions()


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


def run_parameters(screenplay: Path, options: FilmOptions) -> dict[str, Any]:
    """Flow parameters for the deployment: the screenplay and the options that differ."""
    return {
        "screenplay": screenplay.as_posix(),
        "options": options.model_dump(mode="json", exclude_defaults=True),
    }


def film_command(screenplay: Path, options: FilmOptions) -> str:
    """`python -m flows.film SCREENPLAY ...` with these options, quoted for a POSIX shell."""
    # `--out` always: the command is run from wherever the reader stands.
    words = option_words(options, always=frozenset({"out"}))
    return shlex.join(["python", "-m", "flows.film", screenplay.as_posix(), *words])


def choice(screenplay: Path, options: FilmOptions) -> Choice:
    """The run of `screenplay` with `options` in all three forms."""
    parameters = run_parameters(screenplay, options)
    return Choice(
        command=film_command(screenplay, options),
        parameters=parameters,
        deployment_command=shlex.join(
            ["prefect", "deployment", "run", DEPLOYMENT, "--params", json.dumps(parameters)]
        ),
    )


def rerender_parameters(screenplay: Path, options: FilmOptions, sequence: int) -> dict[str, Any]:
    """Flow parameters for the deployment: the screenplay and the options that differ."""
    return run_parameters(screenplay, options.with_rerolled(sequence))


def rerender_command(screenplay: Path, options: FilmOptions, sequence: int) -> str:
    """`python -m flows.film SCREENPLAY ... --rerender N`, quoted for a POSIX shell."""
    return film_command(screenplay, options.with_rerolled(sequence))


def rerender_for(screenplay: Path, options: FilmOptions, sequence: int) -> Rerender:
    """Both forms of the re-roll of `sequence`."""
    rerolled = choice(screenplay, options.with_rerolled(sequence))
    return Rerender(
        sequence=sequence,
        **rerolled.model_dump(),
        already_rerolled=sequence in options.render.rerender,
        screenplay=screenplay.as_posix(),
        run=options,
    )


def pick_for(screenplay: Path, options: FilmOptions, sequence: int, take: int) -> Choice:
    """The run that keeps `take` of `sequence` (`--pick SEQ=TAKE`): only what follows the
    sequence in its chain renders again; every take is in the cache."""
    return choice(screenplay, options.with_picked(sequence, take))
