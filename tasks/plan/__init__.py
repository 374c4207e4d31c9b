"""The plan stage: read and check a screenplay, then decide every sequence, chain and cue
before any GPU time is spent. Pure functions over `tasks.schema`; no GPU, no store.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.screenplay_file import load_screenplay
from tasks.runtime.bucket import download
from tasks.schema.film_plan import FilmPlan
from tasks.schema.options import FilmOptions


def screenplay_file(screenplay: str, options: FilmOptions) -> Path:
    """The screenplay as a local file: a path on the worker as it is, an `s3://` object
    downloaded into OUT/.reelflow/inbox first."""
    if not screenplay.startswith("s3://"):
        return Path(screenplay)
    name = screenplay.rsplit("/", 1)[-1]
    return download(screenplay, Path(options.out) / ".reelflow" / "inbox" / name)


def plan_screenplay(path: Path, options: FilmOptions) -> FilmPlan:
    """Read the screenplay at `path` and plan it as the run's options say (mode, delivery
    profile, limit, fixer, re-rolls, takes and picks). Bad input raises one `ScreenplayError`
    listing every problem; a pick of a take that does not exist, a `ReelflowError` saying which
    exist."""
    written = load_screenplay(path)
    if options.mode != "screenplay":
        written = written.model_copy(
            update={"render": written.render.model_copy(update={"mode": options.mode})}
        )
    if options.delivery.profile != "screenplay":
        delivery = written.delivery.model_copy(update={"profile": options.delivery.profile})
        written = written.model_copy(update={"delivery": delivery})
    render = options.render
    return plan_film(
        written,
        load_defaults(),
        fix=render.fix,
        scene_limit=render.limit or None,
        rerolls=Counter(render.rerender),
        takes=render.takes,
        picks=render.picks(),
        keyframe_rerolls=Counter(render.rerender_keyframe),
    )
