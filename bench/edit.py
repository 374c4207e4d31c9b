"""edit: change one scene's text; sequences re-rendered vs the minimal set (goal: equal).

The minimal set comes from the two plans: a sequence must render again when its own
prompt content changed, when its chain's keyframe changed, or when an earlier sequence of
its chain renders again (its carried first frame changes). Nothing else.

    .venv/bin/python -m bench.edit [--chains 3] [--length 3] [--scene 4]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import common
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.screenplay_file import load_screenplay
from tasks.schema.film_plan import FilmPlan

OWN_CONTENT = {"index", "chain", "position", "start_s", "hard_cut_before"}
"""Sequence fields that place it in the film without changing what the GPU renders."""


def plan_of(screenplay: Path) -> FilmPlan:
    return plan_film(load_screenplay(screenplay), load_defaults())


def minimal_rerenders(before: FilmPlan, after: FilmPlan) -> dict[str, list[int]]:
    """Sequences and keyframes (by chain) that an edit must render again, from the plans."""
    sequences: list[int] = []
    keyframes: list[int] = []
    for chain_before, chain_after in zip(before.chains, after.chains, strict=True):
        stale = chain_before.keyframe != chain_after.keyframe
        if stale and chain_after.keyframe.prompt is not None:
            keyframes.append(chain_after.index)
        for index in chain_after.sequences:
            own_before = before.sequences[index].model_dump(exclude=OWN_CONTENT)
            own_after = after.sequences[index].model_dump(exclude=OWN_CONTENT)
            stale = stale or own_before != own_after
            if stale:
                sequences.append(index)
    return {"sequences": sequences, "keyframes": keyframes}


def measure(folder: Path, chains: int, length: int, scene: int) -> dict[str, Any]:
    scenes = common.film_scenes([length] * chains, 5.0)
    with common.prefect_api(), common.simulators(1, 0.2, folder) as sims:
        url = sims[0].url
        screenplay = common.write_screenplay(folder, scenes)
        before = plan_of(screenplay)
        common.run_film(screenplay, folder / "out", [url])
        done = len(common.executions(url))
        scenes[scene]["description"] = "A squall hits the harbour; Ana shields her eyes."
        screenplay = common.write_screenplay(folder, scenes)
        after = plan_of(screenplay)
        edited = common.run_film(screenplay, folder / "out", [url])
        fresh = common.executions(url)[done:]
    minimal = minimal_rerenders(before, after)
    rendered = {
        "sequences": sum(1 for e in fresh if e.kind == "sequence"),
        "keyframes": sum(1 for e in fresh if e.kind == "keyframe"),
    }
    equal = rendered["sequences"] == len(minimal["sequences"]) and rendered["keyframes"] == len(
        minimal["keyframes"]
    )
    return {
        "rerendered": rendered,
        "minimal": {key: len(value) for key, value in minimal.items()},
        "minimal_set": minimal,
        "prompts_in_edit_run": edited.result.prompts,
        "edit_wall_s": round(edited.wall_s, 3),
        "edited_scene": scene,
        "verdict": "met" if equal else "MISSED",
    }


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument("--chains", type=int, default=3)
    arguments.add_argument("--length", type=int, default=3, help="sequences per chain")
    arguments.add_argument("--scene", type=int, default=4, help="which scene to edit")
    options = arguments.parse_args()
    with common.workdir(options.workdir, "edit") as folder:
        figure = measure(folder, options.chains, options.length, options.scene)
    path = common.write_result("edit", figure, {})
    print(f"minimal set: {json.dumps(figure['minimal_set'])}")
    print(f"results: {path}")
    print(
        f"edit: scene {figure['edited_scene']} changed; re-rendered "
        f"{figure['rerendered']['sequences']} sequences + {figure['rerendered']['keyframes']} "
        f"keyframes, minimal {figure['minimal']['sequences']} + {figure['minimal']['keyframes']} "
        f"(goal: equal: {figure['verdict']}; counts, any GPU rate; load "
        f"{common.load_average()})"
    )


if __name__ == "__main__":
    main()
