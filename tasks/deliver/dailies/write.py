"""`write_review`: the dailies page and its generated pictures, beside the delivered film."""

from __future__ import annotations

import base64
from collections.abc import Sequence as Seq
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tasks import media
from tasks.deliver.dailies.charts import LoudnessBar, Span, loudness_chart, score_timeline
from tasks.deliver.dailies.commands import rerender_for
from tasks.deliver.dailies.page import render_page
from tasks.deliver.dailies.views import (
    FilmView,
    SequenceView,
    relative_url,
)
from tasks.deliver.listing import deliverable_files
from tasks.deliver.names import sequence_label
from tasks.deliver.tables import in_order
from tasks.errors import ReelflowError
from tasks.runtime.files import write_atomic
from tasks.schema.film_plan import FilmPlan
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import ChainOutcome, Deliverables, ScoreResult, SequenceResult

REVIEW_PAGE = "review.html"
ASSETS = "review"
TARGET_LUFS = -23.0
"""The level `normalize_sequence` normalizes to: the dashed line on the loudness charts."""


class ReviewError(ReelflowError):
    """The review page cannot be written from what the run produced."""


def _write_text(path: Path, text: str) -> str:
    data = text.encode("utf-8")
    if not (path.is_file() and path.read_bytes() == data):  # a re-run rewrites only changes
        write_atomic(path, data)
    return path.name


def _made_after(source: Path, *made: Path) -> bool:
    """True when every one of `made` exists and was written after `source` last changed."""
    when = source.stat().st_mtime_ns
    return all(path.is_file() and path.stat().st_mtime_ns >= when for path in made)


def _downloads(deliverables: Deliverables, folder: Path) -> tuple[tuple[str, str, str], ...]:
    """(label, file name, link) of every file in the folder the page offers."""
    files = [*deliverable_files(deliverables), ("Report", deliverables.report)]
    return tuple((label, path.name, relative_url(path, folder)) for label, path in files)


def _inline(path: Path | None, kind: str) -> str | None:
    """`path` as a data URL: a page opened from disk may not fetch a subtitle track from its
    own folder (file: URLs are each their own origin), but it may read one inline."""
    if path is None:
        return None
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _bar(result: SequenceResult) -> LoudnessBar:
    done = result.finished
    return LoudnessBar(
        f"seq {result.sequence.index}",
        round(done.before.integrated_lufs, 1),
        round(done.after.integrated_lufs, 1),
    )


def review_thumbnails(
    folder: Path, results: Seq[SequenceResult], clips: Seq[Path]
) -> dict[int, tuple[Path, Path, Path]]:
    """(clip, first frame, last frame) of each sequence, by index: the frames are drawn
    where missing or older than their clip."""
    assets = folder / ASSETS
    thumbnails = {
        r.sequence.index: (clip, assets / f"seq{r.sequence.index:03d}_first.png",
                           assets / f"seq{r.sequence.index:03d}_last.png")
        for r, clip in zip(results, clips, strict=True)
    }  # fmt: skip
    stale = [files for files in thumbnails.values() if not _made_after(*files)]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="thumbnails") as pool:
        list(pool.map(lambda files: media.clip_thumbnails(*files), stale))  # decoders in parallel
    return thumbnails


def _sequence_views(
    folder: Path,
    results: list[SequenceResult],
    outcomes: Seq[ChainOutcome],
    deliverables: Deliverables,
    screenplay: Path,
    run: FilmOptions,
) -> list[SequenceView]:
    assets = folder / ASSETS
    carried = {c.into_sequence: c for o in outcomes for c in o.carried}
    thumbnails = review_thumbnails(folder, results, deliverables.sequences)
    views, film_time = [], 0.0
    for result, clip, name in zip(
        results, deliverables.sequences, deliverables.sequence_names, strict=True
    ):
        n = result.sequence.index
        _, first, last = thumbnails[n]
        chart = assets / f"seq{n:03d}_loudness.svg"
        _write_text(chart, loudness_chart([_bar(result)], target_lufs=TARGET_LUFS, width=360))
        views.append(
            SequenceView(
                result=result,
                label=sequence_label(result.sequence),
                name=name,
                film_start_s=film_time,
                video=relative_url(clip, folder),
                first_frame=relative_url(first, folder),
                last_frame=relative_url(last, folder),
                loudness_chart=relative_url(chart, folder),
                cached=deliverables.record.cached(n),
                carried=carried.get(n),
                rerender=rerender_for(screenplay, run, n),
            )
        )
        film_time += result.finished.seconds
    return views


def write_review(
    folder: Path,
    plan: FilmPlan,
    *,
    outcomes: Seq[ChainOutcome],
    score: ScoreResult | None,
    deliverables: Deliverables,
    screenplay: Path,
    animatic: bool,
    run: FilmOptions | None = None,
) -> Path:
    """Write `review.html` and its pictures (`review/`) into the film folder; return the page.

    `run` holds the run's own options, repeated in each sequence's re-render command
    (default: the flow's defaults with `--out` the folder's parent).
    """
    results = in_order(outcomes)
    if len(results) != len(deliverables.sequences):
        raise ReviewError(
            f"{len(results)} rendered sequences but {len(deliverables.sequences)} delivered files"
        )
    run = run or FilmOptions(out=folder.parent.as_posix())
    views = _sequence_views(folder, results, outcomes, deliverables, screenplay, run)
    duration = sum(r.finished.seconds for r in results)
    spans = [
        Span(f"seq {v.index}", v.film_start_s, v.film_start_s + v.result.finished.seconds)
        for v in views
    ]
    cues = score.cues if score is not None else ()
    assets = folder / ASSETS
    timeline = assets / "timeline.svg"
    _write_text(timeline, score_timeline(cues, spans, duration))
    overview = assets / "loudness.svg"
    bars = [_bar(v.result) for v in views]
    _write_text(overview, loudness_chart(bars, target_lufs=TARGET_LUFS, width=560))
    view = FilmView(
        title=plan.title,
        animatic=animatic,
        film=relative_url(deliverables.film, folder),
        name=deliverables.name,
        subtitles=_inline(deliverables.subtitles.get("vtt"), "text/vtt"),
        loudness=deliverables.cut.loudness,
        duration_s=deliverables.record.film.duration_s,
        sequences=tuple(views),
        warnings=plan.warnings,
        changes=plan.changes,
        cues=tuple(cues),
        timeline_chart=relative_url(timeline, folder),
        loudness_chart=relative_url(overview, folder),
        downloads=_downloads(deliverables, folder),
        record=deliverables.record,
    )
    page = folder / REVIEW_PAGE
    _write_text(page, render_page(view))
    return page
