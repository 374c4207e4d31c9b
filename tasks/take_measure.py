"""Measuring one take of a sequence for its score: how it ends against its chain's keyframe,
how loud it is, and (with a cast) how its voices match. Its dialogue verdict comes from the
dialogue check, as for any render; `tasks.takes` turns the measures into the score."""

from __future__ import annotations

import asyncio

from tasks import media
from tasks.normalize import measure
from tasks.render import last_frame_of
from tasks.runtime.studio import Studio
from tasks.runtime.workers import off_the_critical_path
from tasks.schema.film_plan import Sequence
from tasks.schema.outcomes import Drift, RenderedSequence, Take
from tasks.schema.refs import MediaRef
from tasks.schema.verdicts import SequenceVerdict
from tasks.takes import score_take


async def drift_from(studio: Studio, keyframe: MediaRef, frame: MediaRef) -> Drift:
    """How far `frame` drifted in colour and contrast from its chain's keyframe."""
    return await asyncio.to_thread(
        media.frame_drift, await studio.store.fetch(keyframe), await studio.store.fetch(frame)
    )


async def voice_similarity(
    studio: Studio, sequence: Sequence, rendered: RenderedSequence
) -> float | None:
    """How alike the take's speakers sound to the cast's voices (0-1), for its score.

    The hook for the cast: None until the film has reference voices to compare with
    (`tasks.cast.voice.match_voice` for each line's speaker); a take is then scored on it too.
    """
    return None


async def measure_take(
    studio: Studio,
    sequence: Sequence,
    number: int,
    rendered: RenderedSequence,
    verdict: SequenceVerdict,
    keyframe: MediaRef | None,
) -> tuple[Take, MediaRef]:
    """One take scored, and its last frame (what the next sequence starts from if it is kept)."""
    last_frame = await last_frame_of(studio, rendered)
    drift = None if keyframe is None else (await drift_from(studio, keyframe, last_frame)).score
    level = await off_the_critical_path(measure, await studio.store.fetch(rendered.video))
    score = score_take(
        verdict,
        drift=drift,
        lufs=level.integrated_lufs,
        true_peak_dbtp=level.true_peak_dbtp,
        has_lines=bool(sequence.lines),
        voice=await voice_similarity(studio, sequence, rendered),
    )
    take = Take(
        take=number,
        seed=rendered.seed,
        video=rendered.video,
        server=rendered.server,
        gpu_seconds=rendered.gpu_seconds,
        verdict=verdict.kind,
        heard=verdict.heard,
        drift=None if drift is None else round(drift, 4),
        lufs=round(level.integrated_lufs, 2),
        true_peak_dbtp=round(level.true_peak_dbtp, 2),
        score=score,
    )
    return take, last_frame
