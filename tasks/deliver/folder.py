"""The film folder an editor takes away, every file named by the scheme in `names`.

<folder>/TITLE_v001.mp4              distribution film at its delivery loudness (the mux stage)
<folder>/TITLE_v001_master.mp4       optional grading master (4:4:4 10-bit, still SDR), or
<folder>/TITLE_v001_prores.mov       ProRes 422 HQ / DNxHR HQ mezzanine (`_dnxhr.mov`), PCM audio
<folder>/TITLE_v001_subtitled.mp4    optional copy with the subtitles burnt in (title-safe)
<folder>/TITLE_v001.srt, .vtt        subtitles: the script's words at the heard times
<folder>/TITLE_v001_DX.wav, _MX.wav  dialogue and music stems, 48 kHz 24-bit, summing to the mix
<folder>/TITLE_v001_score.flac       the assembled score at unity, 48 kHz
<folder>/TITLE_v001.otio, .fcpxml, .xml, .edl   the cut as timelines, one clip per sequence
<folder>/sequences/TITLE_SEQ0010_v001.mp4       each sequence exactly as cut into the film
<folder>/contact_sheet.png           first frame of every sequence, labelled
<folder>/manifest.json               seeds, templates, servers, models, timings, loudness
<folder>/report.md                   a short summary linking all of the above
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from collections.abc import Sequence as Seq
from pathlib import Path

from prefect.artifacts import acreate_markdown_artifact
from prefect.context import FlowRunContext

from tasks import media
from tasks.deliver.cast import deliver_cast
from tasks.deliver.dailies.write import review_thumbnails
from tasks.deliver.names import FilmNames, film_folder, film_names, first_names, sequence_label
from tasks.deliver.record import manifest_document, report_markdown, with_files
from tasks.deliver.timeline import write_film_timelines
from tasks.deliver.unchanged import DeliveryLedger, made_from
from tasks.media.burnin import subtitled_path
from tasks.media.mezzanine import master_path
from tasks.media.stems import stem_paths
from tasks.runtime.files import copy_atomic, write_atomic
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import (
    Deliverables,
    FilmFile,
    Footage,
    RenderedSequence,
    ScoreResult,
    SequenceResult,
)
from tasks.schema.record import CostEntry
from tasks.schema.refs import MediaRef
from tasks.subtitles import subtitle_cues_of, write_subtitles

REPORT_ARTIFACT_KEY = "film-report"


def start_delivery(studio: Studio, footage: Footage) -> asyncio.Task[None] | None:
    """Begin delivering what needs only the sequences (their files, the contact sheet, the
    dailies' thumbnails) while the score and the cut are made; `deliver_film` waits for it
    and finds them made. None when a final gate may still change the footage."""
    if "final" in studio.options.render.gates:
        return None
    early = asyncio.create_task(_deliver_sequences(studio, footage))

    async def settle() -> None:  # a run that ends before its delivery leaves no task behind
        early.cancel()
        await asyncio.gather(early, return_exceptions=True)

    studio.on_close.append(settle)
    return early


async def _deliver_sequences(studio: Studio, footage: Footage) -> None:
    plan = footage.plan
    folder = film_folder(Path(studio.options.out), plan.title)
    folder.mkdir(parents=True, exist_ok=True)
    ledger = DeliveryLedger(folder, studio.store.scratch / "delivered")
    clips = await _sequence_files(studio, ledger, folder, footage.clips, _names(studio, footage))
    await asyncio.gather(
        _contact_sheet(studio, ledger, plan, footage.clips, clips, folder),
        asyncio.to_thread(review_thumbnails, folder, footage.sequences, clips),
    )
    await asyncio.to_thread(ledger.save)


def _names(studio: Studio, footage: Footage) -> FilmNames:
    return film_names(footage.plan.title, footage.sequences, studio.options.render.rerender)


async def deliver_film(
    studio: Studio,
    footage: Footage,
    score: ScoreResult | None,
    film: FilmFile,
    cost: CostEntry | None = None,
    early: asyncio.Task[None] | None = None,
) -> Deliverables:
    """The film folder an editor takes away: film, master, stems, subtitles, score,
    sequences, timelines, contact sheet, manifest and report (`cost`: the GPU estimate beside
    what was spent; `early`: the `start_delivery` of this footage)."""
    if early is not None:
        await early
    plan, sequences = footage.plan, footage.sequences
    delivered = await write_film_folder(
        studio,
        plan,
        film_folder(Path(studio.options.out), plan.title),
        film=film,
        sequences=footage.clips,
        renders=[r.rendered for r in sequences],
        score=score,
        animatic=studio.animatic,
        timings=studio.timer.seconds,
        cached_sequences=[
            r.sequence.index
            for r in sequences
            if r.sequence.index not in studio.stats.fresh_sequences
        ],
        names=_names(studio, footage),
        takes={r.sequence.index: r for r in sequences if r.takes},
        cost=cost,
    )
    return await deliver_cast(studio, footage, delivered)


async def _copy(ledger: DeliveryLedger, source: Path | None, target: Path) -> Path | None:
    """`source` copied to `target`, unless the last delivery copied this very file there."""
    if source is None:
        return None
    if source.resolve() == target.resolve():
        return target
    key = made_from("copy", source)
    if ledger.unchanged(target, key):
        return target
    return ledger.wrote(await asyncio.to_thread(copy_atomic, source, target), key)


async def _copy_stored(studio: Studio, ledger: DeliveryLedger, ref: MediaRef, target: Path) -> Path:
    """A stored file copied to `target`, unless the last delivery put this content there."""
    key = made_from("stored", ref.sha256)
    if ledger.unchanged(target, key):
        return target
    local = await studio.store.fetch(ref)
    return ledger.wrote(await asyncio.to_thread(copy_atomic, local, target), key)


async def _sequence_files(
    studio: Studio,
    ledger: DeliveryLedger,
    folder: Path,
    sequences: Seq[MediaRef],
    names: FilmNames,
) -> list[Path]:
    return [
        await _copy_stored(studio, ledger, ref, folder / "sequences" / f"{name}.mp4")
        for ref, name in zip(sequences, names.sequences, strict=True)
    ]


async def _contact_sheet(
    studio: Studio,
    ledger: DeliveryLedger,
    plan: FilmPlan,
    sequences: Seq[MediaRef],
    clips: Seq[Path],
    folder: Path,
) -> None:
    sheet = folder / "contact_sheet.png"
    labels = [sequence_label(sequence) for sequence in plan.sequences]
    key = made_from("contact-sheet", labels, [ref.sha256 for ref in sequences])
    if not ledger.unchanged(sheet, key):
        await asyncio.to_thread(write_contact_sheet, plan, clips, sheet)
        ledger.wrote(sheet, key)


async def write_film_folder(
    studio: Studio,
    plan: FilmPlan,
    folder: Path,
    *,
    film: FilmFile,
    sequences: Seq[MediaRef],
    renders: Seq[RenderedSequence],
    score: ScoreResult | None,
    animatic: bool,
    timings: Mapping[str, float],
    cached_sequences: Collection[int] = (),
    names: FilmNames | None = None,
    takes: Mapping[int, SequenceResult] | None = None,
    cost: CostEntry | None = None,
) -> Deliverables:
    """Write every deliverable beside the muxed film; publish the report as a Prefect artifact.

    `sequences` are the files cut into the film (normalized), `renders` the GPU renders they
    came from (seeds, servers, GPU time); `cached_sequences` the indices served from cache;
    `names` the delivery's names (default: first versions of everything).
    """
    names = names or first_names(plan.title, [s.index for s in plan.sequences])
    folder.mkdir(parents=True, exist_ok=True)
    ledger = DeliveryLedger(folder, studio.store.scratch / "delivered")
    film_file = folder / f"{names.film}.mp4"
    await _copy(ledger, film.path, film_file)
    master = None
    if film.master is not None:
        master = await _copy(ledger, film.master, master_path(film_file, film.master_kind))
    dialogue_stem, music_stem = stem_paths(folder, names.film)
    stems = (
        await _copy(ledger, film.dialogue_stem, dialogue_stem),
        await _copy(ledger, film.music_stem, music_stem),
    )
    subtitled = await _copy(ledger, film.subtitled, subtitled_path(film_file))
    subtitles = {}
    if film.lines:
        subtitles = await asyncio.to_thread(
            write_subtitles, subtitle_cues_of(film.lines), folder, names.film
        )
    clips = await _sequence_files(studio, ledger, folder, sequences, names)
    score_file = None
    if score is not None:
        score_file = await _copy_stored(
            studio, ledger, score.score, folder / f"{names.film}_score.flac"
        )
    shas = [ref.sha256 for ref in sequences]

    async def film_timelines() -> dict[str, Path]:
        score_sha = score.score.sha256 if score is not None else None
        cut_key = made_from("timelines", plan, names, shas, score_sha, str(folder))
        made = ledger.unchanged_group(f"timelines:{names.film}", cut_key)
        if made is None:
            written = await asyncio.to_thread(
                write_film_timelines, plan, clips, score_file, folder, names.film
            )
            made = ledger.wrote_group(f"timelines:{names.film}", cut_key, written)
        return made

    # Two cores, two independent readers of the sequences: side by side.
    _, timelines = await asyncio.gather(
        _contact_sheet(studio, ledger, plan, sequences, clips, folder), film_timelines()
    )
    delivered = Deliverables(
        folder=folder,
        cut=film,
        name=names.film,
        film=film_file,
        master=master,
        score=score_file,
        sequences=tuple(clips),
        sequence_names=names.sequences,
        timeline=timelines["otio"],
        timelines=timelines,
        subtitles=subtitles,
        subtitled=subtitled,
        dialogue_stem=stems[0],
        music_stem=stems[1],
        contact_sheet=folder / "contact_sheet.png",
        manifest=folder / "manifest.json",
        record=manifest_document(
            studio,
            plan,
            film,
            renders,
            score,
            animatic,
            timings,
            set(cached_sequences),
            names,
            takes,
            cost,
        ),
        report=folder / "report.md",
    )
    delivered = delivered.model_copy(update={"record": with_files(delivered.record, delivered)})
    await asyncio.to_thread(
        write_atomic, delivered.manifest, delivered.record.model_dump_json(indent=2).encode()
    )
    report = report_markdown(plan, film, delivered, delivered.record, relative_to=folder)
    await asyncio.to_thread(write_atomic, delivered.report, report.encode("utf-8"))
    await asyncio.to_thread(ledger.save)
    if FlowRunContext.get() is not None:
        await acreate_markdown_artifact(
            key=REPORT_ARTIFACT_KEY,
            markdown=report_markdown(plan, film, delivered, delivered.record, relative_to=None),
            description=f"Deliverables of {plan.title}",
        )
    return delivered


def write_contact_sheet(plan: FilmPlan, clips: Seq[Path], dest: Path) -> Path:
    """The first frame of every sequence in a labelled grid."""
    frames = [
        (media.first_frame(clip), sequence_label(sequence))
        for sequence, clip in zip(plan.sequences, clips, strict=True)
    ]
    return media.contact_sheet(frames, dest)
