"""Publishing the dailies: the page written into the film folder and linked from the run."""

from __future__ import annotations

import asyncio

from prefect.artifacts import (
    acreate_image_artifact,
    acreate_link_artifact,
    acreate_markdown_artifact,
)
from prefect.context import FlowRunContext

from tasks.deliver.dailies.write import write_review
from tasks.deliver.folder import REPORT_ARTIFACT_KEY
from tasks.deliver.record import report_markdown
from tasks.deliver.share import share_film
from tasks.runtime.studio import Studio
from tasks.schema.outcomes import Deliverables, FilmResult, Footage, ScoreResult, Shared


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
    shared = await share_film(studio, footage, delivered)
    await publish_links(shared, footage.plan.title)
    if shared.files and FlowRunContext.get() is not None:  # the report again, with its links
        await acreate_markdown_artifact(
            key=REPORT_ARTIFACT_KEY,
            markdown=report_markdown(
                footage.plan,
                delivered.cut,
                delivered,
                delivered.record,
                relative_to=delivered.folder,
                links=shared.files,
            ),
            description=f"Deliverables of {footage.plan.title}",
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
        shared=shared,
        loudness=delivered.cut.loudness,
        cost=delivered.record.cost,
    )


async def publish_links(shared: Shared, title: str) -> None:
    """The film, its dailies and its pictures as artifacts a person opens with one click."""
    if FlowRunContext.get() is None:
        return
    if shared.review is None:
        await acreate_markdown_artifact(
            key="dailies", markdown=f"# {title}\n\n{shared.note}", description="The dailies page"
        )
        return
    links = {"dailies": (shared.review, "review.html"), "film": (shared.film, "the film")}
    for key, (link, text) in links.items():
        if link is not None:
            await acreate_link_artifact(key=key, link=link, link_text=text, description=text)
    if shared.contact_sheet is not None:
        await acreate_image_artifact(
            image_url=shared.contact_sheet, key="contact-sheet", description="Contact sheet"
        )
    portraits = [url for path, url in shared.files.items() if path.startswith("cast/")]
    for number, portrait in enumerate(u for u in portraits if ".png" in u.split("?")[0]):
        await acreate_image_artifact(
            image_url=portrait, key=f"portrait-{number}", description=f"Cast portrait {number}"
        )
    for number, keyframe in enumerate(shared.keyframes):
        await acreate_image_artifact(
            image_url=keyframe, key=f"keyframe-{number}", description=f"Keyframe {number}"
        )
