"""The film's record and report: manifest.json and report.md, from the run's typed outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence as Seq
from pathlib import Path

from tasks.cost import cost_lines
from tasks.deliver.listing import deliverable_files, loudness_sentence
from tasks.deliver.names import FilmNames
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import (
    Deliverables,
    FilmFile,
    RenderedSequence,
    ScoreResult,
    SequenceResult,
)
from tasks.schema.record import (
    CacheHits,
    CostEntry,
    CueEntry,
    FilmEntry,
    GpuEntry,
    KeyframeEntry,
    Manifest,
    SequenceEntry,
    TakeEntry,
    TemplateEntry,
)


def take_entries(result: SequenceResult) -> dict[str, object]:
    """A sequence's takes, its kept take and whether a person picked it, for its entry."""
    return {
        "takes": [
            TakeEntry(
                take=take.take,
                seed=take.seed,
                sha256=take.video.sha256,
                verdict=take.verdict,
                drift=take.drift,
                lufs=take.lufs,
                score=take.score.total,
                parts=take.score.model_dump(exclude={"total"}),
            )
            for take in result.takes
        ],
        "kept_take": result.kept_take,
        "picked": result.picked,
    }


def manifest_document(
    studio: Studio,
    plan: FilmPlan,
    film: FilmFile,
    renders: Seq[RenderedSequence],
    score: ScoreResult | None,
    animatic: bool,
    timings: Mapping[str, float],
    cached_sequences: set[int],
    names: FilmNames,
    takes: Mapping[int, SequenceResult] | None = None,
    cost: CostEntry | None = None,
) -> Manifest:
    """Everything needed to reproduce or audit the film (`with_files` adds the file names;
    `takes`: the results of sequences rendered in several takes; `cost`: the GPU estimate
    beside what was spent)."""
    cues = score.renders if score is not None else ()
    takes = takes or {}
    versions = dict(zip(names.sequences, names.sequence_versions, strict=True))
    named = dict(zip((r.index for r in renders), names.sequences, strict=True))
    return Manifest(
        title=plan.title,
        animatic=animatic,
        mode=plan.mode,
        film=FilmEntry(
            file=f"{names.film}.mp4",
            master=None,
            duration_s=round(film.duration_s, 3),
            transitions=film.transitions,
            score_gain=film.score_gain,
            name=names.film,
            master_kind=film.master_kind,
            picture=film.picture,
        ),
        servers=[studio.server_name(server.url) for server in studio.servers],
        templates={
            kind.value: TemplateEntry(file=workflow.origin, sha256=workflow.template_hash)
            for kind, workflow in studio.templates.items()
        },
        models=studio.models.model_dump(mode="json"),
        keyframes=[
            KeyframeEntry(chain=c.index, seed=c.keyframe.seed, source_image=c.keyframe.source_image)
            for c in plan.chains
        ],
        sequences=[
            SequenceEntry(
                index=r.index,
                name=named[r.index],
                version=versions[named[r.index]],
                seed=r.seed,
                frames=r.frames,
                seconds=r.seconds,
                server=r.server,
                gpu_seconds=round(r.gpu_seconds, 3),
                cached=r.index in cached_sequences,
                sha256=r.video.sha256,
                **(take_entries(takes[r.index]) if r.index in takes else {}),
            )
            for r in renders
        ],
        score_source=plan.score_source,
        cues=[
            CueEntry(
                **cue.model_dump(include={"index", "seed", "start_s", "zone_s", "tail_s"}),
                section=cue.section,
                server=rendered.server,
                gpu_seconds=round(rendered.gpu_seconds, 3),
                cached=rendered.cached,
                sha256=rendered.audio.sha256,
            )
            for cue, rendered in zip(score.cues if score else (), cues, strict=True)
        ],
        timings_s={stage: round(seconds, 3) for stage, seconds in timings.items()},
        gpu=GpuEntry(
            prompts=studio.stats.prompts,
            gpu_seconds=round(studio.stats.gpu_seconds, 3),
            per_server=dict(studio.stats.per_server),
            queue_seconds=round(studio.stats.queue_seconds, 3),
        ),
        cache_hits=CacheHits(
            sequences=len(cached_sequences),
            cues=sum(1 for rendered in cues if rendered.cached),
        ),
        loudness=film.loudness,
        spoken_lines=len(film.lines),
        cost=cost,
    )


def with_files(manifest: Manifest, delivered: Deliverables) -> Manifest:
    """`manifest` naming every file of `delivered`, relative to its folder."""

    def name(path: Path | None) -> str | None:
        return path.relative_to(delivered.folder).as_posix() if path is not None else None

    stems = [delivered.dialogue_stem, delivered.music_stem]
    entry = manifest.film.model_copy(
        update={
            "file": name(delivered.film),
            "master": name(delivered.master),
            "subtitled": name(delivered.subtitled),
            "subtitles": [name(p) for p in delivered.subtitles.values()],
            "stems": [name(p) for p in stems if p is not None],
            "timelines": {key: name(p) for key, p in delivered.timelines.items()},
        }
    )
    return manifest.model_copy(update={"film": entry})


def report_markdown(
    plan: FilmPlan,
    film: FilmFile,
    delivered: Deliverables,
    manifest: Manifest,
    *,
    relative_to: Path | None,
    links: Mapping[str, str] | None = None,
) -> str:
    """A short summary linking every deliverable: relative links inside the folder, or the
    shared `links` (path in the folder -> a URL that opens anywhere) where one exists."""

    def link(label: str, path: Path) -> str:
        target = path.relative_to(relative_to).as_posix() if relative_to else str(path)
        if links is not None:
            target = links.get(path.relative_to(delivered.folder).as_posix(), target)
        return f"- [{label}](<{target}>)"

    banner = (
        "> **Animatic**: rendered by the embedded simulator, not by a GPU model.\n\n"
        if manifest.animatic
        else ""
    )
    listed = [link(label, path) for label, path in deliverable_files(delivered)]
    listed += [
        link(f"Sequence {n} ({name})", path)
        for n, (name, path) in enumerate(
            zip(delivered.sequence_names, delivered.sequences, strict=True)
        )
    ]
    spoken = len(film.lines)
    subtitles = (
        f"Subtitles: {spoken} spoken line{'s' if spoken != 1 else ''}, timed from the dialogue "
        "check's word timestamps."
        if spoken
        else "Subtitles: none (no line is spoken in the delivered cut)."
    )
    picture = f"Picture: {film.picture}.\n\n" if film.picture else ""
    hits = manifest.cache_hits
    timings = ", ".join(f"{stage} {s:.1f} s" for stage, s in manifest.timings_s.items())
    return (
        f"# {plan.title}\n\n{banner}**{delivered.name}**: "
        f"{film.duration_s:.2f} s, {len(plan.sequences)} sequences joined by "
        f"{'hard cuts' if film.transitions == 'cut' else 'dissolves'}, "
        f"{len(manifest.cues)} score cues ({plan.score_source} score) at "
        f"{film.score_gain:g} under the dialogue.\n\n"
        f"{loudness_sentence(film.loudness)}\n\n{subtitles}\n\n{picture}"
        f"GPU: {manifest.gpu.prompts} prompts, {manifest.gpu.gpu_seconds:.1f} s; "
        f"from cache: {hits.sequences} sequences, {hits.cues} cues.\n"
        f"Timings: {timings or 'not recorded'}.\n\n"
        + _cost_section(manifest)
        + "\n".join(listed)
        + "\n"
    )


def _cost_section(manifest: Manifest) -> str:
    if manifest.cost is None:
        return ""
    lines = "\n".join(f"- {line}" for line in cost_lines(manifest.cost))
    return f"GPU estimate beside GPU spent:\n\n{lines}\n\n"
