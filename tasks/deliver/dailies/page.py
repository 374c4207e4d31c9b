"""The review page's HTML: film, score timeline, sequence strip, plan notes, sequences."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from html import escape
from urllib.parse import quote

from tasks.deliver.dailies.sequence import sequence_section, status_badges
from tasks.deliver.dailies.style import SCRIPT, STYLE
from tasks.deliver.dailies.views import FilmView, SequenceView, clock, tone
from tasks.schema.film_plan import Change, LintWarning


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _header(view: FilmView) -> str:
    gpu, hits = view.record.gpu, view.record.cache_hits
    facts = [
        f"{clock(view.duration_s)} ({view.duration_s:.2f} s)",
        f"{len(view.sequences)} sequences",
        f"{len(view.cues)} score cues",
        f"{gpu.prompts} prompts, {gpu.gpu_seconds:.1f} GPU s",
        f"from cache: {hits.sequences} sequences, {hits.cues} cues",
    ]
    banner = (
        "<p class='animatic'><b>Animatic.</b> Rendered by the embedded simulator: placeholder "
        "pictures and synthetic voices, not a GPU model's film.</p>"
        if view.animatic
        else ""
    )
    return (
        f"<h1>{_e(view.title)}</h1><p class='sub'>Dailies · <code class='name'>{_e(view.name)}"
        f"</code> · {' · '.join(facts)}</p>{banner}"
    )


def _film(view: FilmView) -> str:
    poster = f" poster='{view.sequences[0].first_frame}'" if view.sequences else ""
    downloads = "".join(
        f"<li><a href='{url}' download>{_e(label)}</a> <code>{_e(name)}</code></li>"
        for label, name, url in view.downloads
    )
    track = (
        f"<track kind='subtitles' label='Subtitles' srclang='en' src='{view.subtitles}' default>"
        if view.subtitles
        else ""
    )
    return (
        "<section class='film'>"
        f"<video id='film' controls preload='metadata'{poster} src='{view.film}'>{track}</video>"
        f"<h4>Downloads</h4><ul class='downloads'>{downloads}</ul></section>"
    )


def _timeline(view: FilmView) -> str:
    cue_rows = "".join(
        f"<tr class='cue'><td>{c.index}</td><td>{clock(c.start_s)}&ndash;{clock(c.end_s)}</td>"
        f"<td>{_e(c.section)}</td><td>{_e(c.beat)}</td><td>{_e(c.key)}</td><td>{c.bpm}</td>"
        f"<td>{_e(c.dynamics)}</td></tr>"
        for c in view.cues
    )
    table = (
        "<table class='cues'><thead><tr><th>cue</th><th>film time</th><th>section</th>"
        "<th>beat</th><th>key</th><th>bpm</th><th>dynamics</th></tr></thead>"
        f"<tbody>{cue_rows}</tbody></table>"
        if view.cues
        else "<p class='hint'>No score: the screenplay says <code>\"score\": null</code>.</p>"
    )
    return (
        "<h2>Score and timeline</h2><div class='timeline'>"
        f"<img src='{view.timeline_chart}' alt='sequences and score cues over the film'>"
        f"</div>{table}"
    )


def _card(view: SequenceView) -> str:
    rendered = view.result.rendered
    return (
        f"<a class='card' href='#seq-{view.index}' data-play='video-{view.index}'>"
        f"<div class='thumbs'><img src='{view.first_frame}' alt='first frame'>"
        f"<img src='{view.last_frame}' alt='last frame'></div>"
        f"<div class='name'>{_e(view.label)}</div>"
        f"<div>{status_badges(view)}</div>"
        f"<div class='meta'>chain {view.result.sequence.chain} · seed "
        f"{view.result.sequence.seed}<br>{_e(rendered.server)} · {rendered.gpu_seconds:.1f} "
        f"GPU s · {view.result.finished.seconds:.1f} s</div>"
        f"<div class='meta action'>{_e(view.action)}</div></a>"
    )


def _strip(view: FilmView) -> str:
    cards = "".join(_card(s) for s in view.sequences)
    return (
        "<h2>Sequences</h2><p class='hint'>First and last frame of each; click to play it "
        f"alone.</p><nav class='strip'>{cards}</nav>"
    )


def plan_notes(warnings: Seq[LintWarning], changes: Seq[Change]) -> str:
    """The plan's lint warnings and what the fixer changed, as a section."""
    warning_items = "".join(
        f"<li class='warning'><span class='badge warn'>{_e(w.code)}</span> "
        f"<span class='where'>{_e(w.location)}</span> {_e(w.message)}"
        f"<br><span class='hint'>fix: {_e(w.fix)}</span></li>"
        for w in warnings
    )
    change_items = "".join(
        f"<li class='change'><span class='where'>{_e(c.location)}</span> {_e(c.description)}</li>"
        for c in changes
    )
    return (
        "<h2>Plan notes</h2><div class='notes'>"
        f"<h4>Lint warnings ({len(warnings)})</h4>"
        + (
            f"<ul class='warnings'>{warning_items}</ul>"
            if warnings
            else "<p class='hint'>None.</p>"
        )
        + f"<h4>Changed by the fixer ({len(changes)})</h4>"
        + (
            f"<ul class='changes'>{change_items}</ul>"
            if changes
            else "<p class='hint'>Nothing (run with <code>--fix</code> to let it lengthen or "
            "split scenes).</p>"
        )
        + "</div>"
    )


def _delivery_loudness(view: FilmView) -> str:
    loudness = view.loudness
    if loudness is None:
        return "<p class='hint'>The final mix was not measured (no delivery profile).</p>"
    verdict = (
        "<span class='badge good'>meets it</span>"
        if loudness.meets_profile
        else "<span class='badge bad'>does not meet it</span>"
    )
    ceiling = loudness.limiter_ceiling_dbtp
    limiter = f"{ceiling:.1f} dBTP" if ceiling is not None else "none"
    rows = [
        ("profile", f"<b>{_e(loudness.profile)}</b>: {loudness.target_lufs:g} LUFS "
         f"±{loudness.tolerance_lu:g}, ≤ {loudness.ceiling_dbtp:g} dBTP, measured on the "
         f"{_e(loudness.measured_on)} {verdict}"),
        ("integrated", f"{loudness.integrated_before_lufs:.1f} → "
         f"{loudness.integrated_after_lufs:.1f} LUFS"),
        ("true peak", f"{loudness.true_peak_before_dbtp:.1f} → "
         f"{loudness.true_peak_after_dbtp:.1f} dBTP"),
        ("loudness range", f"{loudness.loudness_range_lu:.1f} LU"),
        ("correction", f"{_e(loudness.outcome)}: {loudness.gain_db:+.1f} dB, limiter {limiter}"),
        ("why", _e(loudness.reason)),
    ]  # fmt: skip
    if loudness.dialogue_after_lufs is not None and loudness.dialogue_before_lufs is not None:
        rows.insert(2, ("dialogue", f"{loudness.dialogue_before_lufs:.1f} → "
                        f"{loudness.dialogue_after_lufs:.1f} LUFS"))  # fmt: skip
    facts = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f"<dl class='facts delivery-loudness'>{facts}</dl>"


def _loudness(view: FilmView) -> str:
    return (
        "<h2>Loudness</h2><h4>The delivered mix</h4>"
        f"{_delivery_loudness(view)}"
        "<h4>Per sequence</h4><p class='hint'>Integrated loudness of each sequence before "
        "and after the per-sequence gain.</p>"
        f"<img class='chart' src='{view.loudness_chart}' alt='loudness of every sequence'>"
    )


def _cast(view: FilmView) -> str:
    """Each cast member's portrait and voice, and how close every line came to the voice."""
    entries = view.record.cast
    if not entries:
        return ""
    cards = []
    for entry in entries:
        picture = (
            f"<img src='{quote(entry.portrait)}' alt='portrait of {_e(entry.name)}'>"
            if entry.portrait
            else ""
        )
        voice = (
            f"<audio controls preload='none' src='{quote(entry.voice)}'></audio>"
            if entry.voice
            else "<p class='hint'>no voice: never speaks</p>"
        )
        heard = f" · heard: “{_e(entry.audition)}”" if entry.audition else ""
        cards.append(
            f"<figure class='cast-member'>{picture}<figcaption><b>{_e(entry.name)}</b> · "
            f"portrait: {_e(entry.portrait_origin)} · voice: {_e(entry.voice_origin)}{heard}"
            f"</figcaption>{voice}</figure>"
        )
    rows = "".join(
        f"<tr><td>{v.sequence}</td><td>{_e(v.character)}</td><td>{_e(v.line)}</td>"
        f"<td>{'' if v.voice_similarity is None else f'{v.voice_similarity:.2f}'}</td>"
        f"<td><span class='badge {tone(v.verdict)}'>{_e(v.verdict)}</span></td></tr>"
        for v in view.record.voices
    )
    table = (
        "<table class='voices'><thead><tr><th>seq</th><th>who</th><th>line</th>"
        f"<th>voice similarity</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    return f"<h2>Cast</h2><div class='cast'>{''.join(cards)}</div>{table}"


def render_page(view: FilmView) -> str:
    """The complete `review.html` text."""
    sections = "".join(sequence_section(s) for s in view.sequences)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        # An empty icon: browsers would otherwise ask the folder for a favicon.ico.
        "<link rel='icon' href='data:,'>"
        f"<title>{_e(view.title)} · dailies</title><style>{STYLE}</style></head><body><main>"
        f"{_header(view)}{_film(view)}{_cast(view)}{_timeline(view)}{_strip(view)}"
        f"{plan_notes(view.warnings, view.changes)}"
        f"{_loudness(view)}<h2>Sequence by sequence</h2>{sections}"
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )
