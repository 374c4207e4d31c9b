"""The exact command (and Prefect deployment parameters) that re-rolls one sequence.

The review page changes nothing itself: it writes out what to run, repeating the run's own
options so that the only difference is the re-rolled sequence's seed.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

DEPLOYMENT = "film/film"


class RunOptions(BaseModel):
    """The film run's options (the flow's parameters besides the screenplay)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    comfyui: tuple[str, ...] = ()
    out: str = "renders"
    store: str | None = None
    mode: Literal["fast", "quality"] | None = None
    limit: int | None = None
    rerender: tuple[int, ...] = ()
    fix: bool = False
    keyframes: Literal["generate", "t2v"] = "generate"
    transitions: Literal["cut", "dissolve"] = "cut"
    master: bool = False
    score_gain: float = 0.25
    dialogue_check: bool = True


class Rerender(BaseModel):
    """How to re-roll one sequence: on the command line or as a deployment run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int
    command: str
    parameters: dict[str, Any]
    deployment_command: str
    already_rerolled: bool


def _rerolled(options: RunOptions, sequence: int) -> list[int]:
    # The run's earlier re-rolls stay in: leaving them out would bring their old takes back.
    return sorted({*options.rerender, sequence})


def rerender_parameters(screenplay: Path, options: RunOptions, sequence: int) -> dict[str, Any]:
    """Flow parameters for the deployment: the screenplay, the re-rolls, every non-default."""
    defaults = RunOptions()
    parameters: dict[str, Any] = {"screenplay": screenplay.as_posix()}
    for name in RunOptions.model_fields:
        value = getattr(options, name)
        if name != "rerender" and value != getattr(defaults, name):
            parameters[name] = list(value) if isinstance(value, tuple) else value
    parameters["rerender"] = _rerolled(options, sequence)
    return parameters


def rerender_command(screenplay: Path, options: RunOptions, sequence: int) -> str:
    """`python -m flows.film SCREENPLAY ... --rerender N`, quoted for a POSIX shell."""
    words = ["python", "-m", "flows.film", screenplay.as_posix()]
    for url in options.comfyui:
        words += ["--comfyui", url]
    words += ["--out", options.out]
    if options.store is not None:
        words += ["--store", options.store]
    if options.mode is not None:
        words += ["--mode", options.mode]
    if options.limit is not None:
        words += ["--limit", str(options.limit)]
    if options.fix:
        words.append("--fix")
    if options.keyframes != "generate":
        words += ["--keyframes", options.keyframes]
    if options.transitions != "cut":
        words += ["--transitions", options.transitions]
    if options.master:
        words.append("--master")
    if options.score_gain != RunOptions().score_gain:
        words += ["--score-gain", f"{options.score_gain:g}"]
    if not options.dialogue_check:
        words.append("--no-dialogue-check")
    for index in _rerolled(options, sequence):
        words += ["--rerender", str(index)]
    return shlex.join(words)


def rerender_for(screenplay: Path, options: RunOptions, sequence: int) -> Rerender:
    """Both forms of the re-roll of `sequence`."""
    parameters = rerender_parameters(screenplay, options, sequence)
    return Rerender(
        sequence=sequence,
        command=rerender_command(screenplay, options, sequence),
        parameters=parameters,
        deployment_command=shlex.join(
            ["prefect", "deployment", "run", DEPLOYMENT, "--params", json.dumps(parameters)]
        ),
        already_rerolled=sequence in options.rerender,
    )
