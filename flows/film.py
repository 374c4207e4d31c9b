"""The film flow: a screenplay in, a film folder out. Run `python -m flows.film --help`."""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from flows.gates import Gates
from flows.run import open_run, refusals_fail_plainly
from tasks.cast.stage import cast_characters
from tasks.chains import render_chains
from tasks.deliver import deliver_film, publish_dailies, start_delivery
from tasks.keyframe import make_keyframes
from tasks.mux import mux_film
from tasks.plan import plan_screenplay, screenplay_file
from tasks.plan.screenplay_file import screenplay_title
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import FilmResult
from tasks.score import compose_score, start_score


def film_run_name() -> str:
    """`film: The Lighthouse Keeper`: runs are named by the screenplay's title."""
    return f"film: {screenplay_title(Path(flow_run.parameters['screenplay']))}"


@flow(name="film", flow_run_name=film_run_name, log_prints=False)
@refusals_fail_plainly  # preflight and bad input: one line in Prefect, the full text to the caller
async def film(screenplay: str, options: FilmOptions = FilmOptions()) -> FilmResult:  # noqa: B008
    """Render a screenplay into a film folder.

    Args:
        screenplay: The screenplay JSON: a path on the worker (relative to the working
            directory, $REELFLOW_REPO for deployments, or absolute) or s3://bucket/key.
        options: Servers, store and mode first; what to render, how to deliver and how to
            share the GPUs below (each field says what it does).
    """
    source = screenplay_file(screenplay, options)  # a path on the worker, or s3://bucket/key
    plan = plan_screenplay(source, options)  # scenes -> sequences, chains, cues
    async with open_run(plan, source, options) as studio:  # servers, store, preflight
        gates = await Gates.open(studio, plan)  # the GPU estimate before any GPU work
        await cast_characters(studio, plan)  # one portrait and one voice per cast member
        keyframes = await make_keyframes(studio, plan)  # each chain's start image
        plan, keyframes = await gates.cast(plan, keyframes)  # gate: the keyframes
        cues = start_score(studio, plan)  # score cues from the planned lengths, queued now
        # per chain: render -> check dialogue -> normalize -> carry the last frame forward
        footage = await render_chains(studio, plan, keyframes)
        footage = await gates.takes(footage)  # gate: every take, before score and mux
        early = start_delivery(studio, footage)  # sequence files, contact sheet, thumbnails
        score = await compose_score(studio, footage, cues)  # ACE-Step cues, crossfaded
        film_file = await mux_film(studio, footage, score)  # picture, dialogue, score
        footage, score, film_file = await gates.final(footage, score, film_file)  # gate: the cut
        delivered = await deliver_film(studio, footage, score, film_file, gates.cost(), early)
        return await publish_dailies(studio, footage, score, delivered)  # review.html


if __name__ == "__main__":
    from flows.cli import main

    sys.exit(main())
