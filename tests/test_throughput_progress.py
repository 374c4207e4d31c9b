"""A long film's run page stays cheap to keep current: the tables of finished sequences go
out a few times, not once per sequence, and end holding every sequence."""

from __future__ import annotations

import asyncio
import json
from uuid import UUID

import pytest
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)

from flows.progress import RunProgress
from tasks.runtime.studio import QuietSink
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import FinishedSequence, Loudness, RenderedSequence, SequenceResult
from tasks.schema.refs import MediaRef
from tests.test_score import harbour_plan

pytestmark = pytest.mark.usefixtures("prefect_api")

REF = MediaRef(sha256="cd" * 32, suffix=".mp4", size=1)
LEVEL = Loudness(integrated_lufs=-23.0, true_peak_dbtp=-3.0, duration_s=5.0)
COUNT = 60


def _long_plan() -> FilmPlan:
    base = harbour_plan().sequences[1]
    sequences = tuple(base.model_copy(update={"index": n}) for n in range(COUNT))
    return harbour_plan().model_copy(update={"sequences": sequences, "cues": ()})


def _finished(plan: FilmPlan, index: int) -> SequenceResult:
    sequence = plan.sequences[index]
    return SequenceResult(
        sequence=sequence,
        rendered=RenderedSequence(
            index=index, video=REF, frames=sequence.frames, seconds=sequence.seconds,
            seed=sequence.seed, server="sim", gpu_seconds=1.0,
        ),
        attempts=(),
        finished=FinishedSequence(
            index=index, video=REF, seconds=sequence.seconds, edits=(), gain_db=-1.5,
            gain_reason="", before=LEVEL, after=LEVEL,
        ),
    )  # fmt: skip


@flow
async def finish_a_long_film() -> None:
    plan = _long_plan()
    progress = await RunProgress(QuietSink(), plan, get_run_logger()).open()  # type: ignore[arg-type]
    for index in range(COUNT):
        progress.sequence_finished(_finished(plan, index))
        await asyncio.sleep(0)  # sequences finish one by one, the loop running between them
    await progress.close()


async def _versions(key: str, flow_run: UUID) -> list[str]:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run]),
            )
        )
    return [str(artifact.data) for artifact in sorted(found, key=lambda a: a.created)]


def test_the_loudness_table_goes_out_a_few_times_and_ends_with_every_sequence() -> None:
    state = asyncio.run(finish_a_long_film(return_state=True))
    run = state.state_details.flow_run_id
    assert run is not None
    versions = asyncio.run(_versions("loudness", run))
    assert 1 <= len(versions) <= 3
    rows = json.loads(versions[-1])
    assert [row["sequence"] for row in rows] == list(range(COUNT))
    assert float(asyncio.run(_versions("film-progress", run))[-1]) == 100.0
