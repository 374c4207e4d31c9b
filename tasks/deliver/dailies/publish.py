"""Publishing the dailies: the page written into the film folder and linked from the run."""

from __future__ import annotations

import asyncio

from prefect.artifacts import acreate_link_artifact

from tasks.deliver.dailies.write import write_review
from tasks.runtime.studio import Studio
from tasks.schema.outcomes import Deliverables, FilmResult, Footage, ScoreResult


async def publish_dailies(
    studio: Studio, footage: Footage, score: ScoreResult | None, delivered: Deliverables
) -> FilmResult:
    """Write review.html into the film folder, link it from the Prefect run, and sum up."""
    review = await asyncio.to_thread(
        write_review,
        delivered.folder,
        footage.plan,
        outcomes=footage.chains,
        score=score,
        deliverables=delivered,
        screenplay=studio.screenplay,
        animatic=studio.animatic,
        run=studio.options,
    )
    await acreate_link_artifact(
        key="dailies",
        link=review.resolve().as_uri(),
        link_text="review.html",
        description="The dailies page",
    )
    return FilmResult(
        title=footage.plan.title,
        folder=str(delivered.folder),
        film=str(delivered.film),
        review=str(review),
        plan=footage.plan,
        score=score,
        schedule=studio.scheduler.report(),
        animatic=studio.animatic,
        duration_s=delivered.cut.duration_s,
        chains=footage.chains,
        prompts=studio.stats.prompts,
        gpu_seconds=studio.stats.gpu_seconds,
    )
