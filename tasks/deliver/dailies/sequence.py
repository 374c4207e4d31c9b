"""One sequence's entry on the review page: player, frames, dialogue, loudness, re-roll, takes."""

from __future__ import annotations

import json
from html import escape

from tasks.deliver.dailies.views import SequenceView, TakeView, clock, tone
from tasks.deliver.tables import heard_lines
from tasks.schema.verdicts import SequenceVerdict


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def status_badges(view: SequenceView) -> str:
    """The verdict kind and whether the render came from the cache, as badges."""
    cache = (
        ""
        if view.cached is None
        else "<span class='badge cached'>from cache</span>"
        if view.cached
        else "<span class='badge fresh'>fresh render</span>"
    )
    return f"<span class='badge {tone(view.kind)} verdict'>{_e(view.kind)}</span>{cache}"


def _facts(view: SequenceView) -> str:
    sequence, rendered = view.result.sequence, view.result.rendered
    if view.carried is None:
        start = (
            "the chain's keyframe" if sequence.position == 0 else "its chain's previous sequence"
        )
        drift = f"starts from {start}"
    else:
        d = view.carried.drift
        shift = "/".join(f"{c:+.1f}" for c in d.channel_shift)
        drift = (
            f"<span class='drift'>{d.score:.3f}</span> from the keyframe "
            f"(contrast &times;{d.contrast_ratio:.2f}, RGB shift {shift})"
        )
    rows = [
        ("file", f"<code>{_e(view.name)}.mp4</code>"),
        ("chain", f"{sequence.chain}, position {sequence.position}"),
        ("length", f"{sequence.frames} frames, {sequence.seconds:.2f} s at {sequence.fps} fps"),
        ("in the film", f"at {clock(view.film_start_s)}"),
        ("seed", f"<code>{sequence.seed}</code>"),
        ("server", _e(rendered.server)),
        ("GPU", f"{rendered.gpu_seconds:.1f} s"),
        ("carry-forward drift", drift),
    ]
    return "<dl class='facts'>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _scenes(view: SequenceView) -> str:
    items = "".join(
        f"<li><b>scene {s.scene_index}{f' (part {s.part + 1})' if s.part else ''}</b> · "
        f"{s.frames / view.result.sequence.fps:.1f} s · {_e(s.prompt)}</li>"
        for s in view.result.sequence.segments
    )
    return f"<h4>Scenes</h4><ol class='scenes'>{items}</ol>"


def _dialogue_table(verdict: SequenceVerdict) -> str:
    body = "".join(
        "<tr>"
        f"<td>{_e(row.character)}</td><td>{_e(row.expected)}</td>"
        f"<td>{_e(row.heard) or '<i>nothing</i>'}</td>"
        f"<td><span class='badge {tone(row.verdict)}'>{_e(row.verdict)}</span></td>"
        f"<td>{_e(row.action)}</td>"
        "</tr>"
        for row in heard_lines(verdict)
    )
    return (
        "<table class='dialogue'><thead><tr><th>who</th><th>scripted</th><th>heard</th>"
        f"<th>verdict</th><th>action</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _dialogue(view: SequenceView) -> str:
    attempts = view.result.attempts
    parts = [
        f"<h4>Dialogue</h4><p class='action-taken'>Action taken: <b>{_e(view.action)}</b></p>",
        _dialogue_table(attempts[-1].verdict),
    ]
    for warning in attempts[-1].verdict.warnings:
        parts.append(f"<p class='hint'>⚠ {_e(warning)}</p>")
    if len(attempts) > 1:
        history = "".join(
            f"<tr class='attempt'><td>{number}</td><td><code>{a.seed}</code></td>"
            f"<td>{a.frames} ({a.frames / view.result.sequence.fps:.2f} s)</td>"
            f"<td><span class='badge {tone(a.verdict.kind)}'>{_e(a.verdict.kind)}</span></td>"
            f"<td>{_e(a.verdict.action)}</td><td>{_e(a.verdict.heard) or '<i>nothing</i>'}</td>"
            "</tr>"
            for number, a in enumerate(attempts, start=1)
        )
        earlier = "".join(
            f"<p class='hint'>attempt {number}</p>{_dialogue_table(attempt.verdict)}"
            for number, attempt in enumerate(attempts[:-1], start=1)
        )
        parts.append(
            f"<details class='attempts' open><summary>Attempt history: {len(attempts)} renders"
            "</summary><table><thead><tr><th>#</th><th>seed</th><th>frames</th><th>verdict</th>"
            f"<th>action</th><th>heard</th></tr></thead><tbody>{history}</tbody></table>"
            f"<details><summary>Line by line, earlier attempts</summary>{earlier}</details>"
            "</details>"
        )
    return "".join(parts)


def _loudness(view: SequenceView) -> str:
    done = view.result.finished
    before, after = done.before.integrated_lufs, done.after.integrated_lufs
    return (
        f"<h4>Loudness</h4><img class='chart' src='{view.loudness_chart}' "
        f"alt='loudness before {before:.1f} LUFS, after {after:.1f} LUFS'>"
        f"<p class='hint'>gain {done.gain_db:+.1f} dB · true peak "
        f"{done.after.true_peak_dbtp:.1f} dBTP · edits: {_e('; '.join(done.edits) or 'none')} · "
        f"{_e(done.gain_reason)}</p>"
    )


def _rerender(view: SequenceView) -> str:
    r, n = view.rerender, view.index
    note = (
        f"<p class='hint'>This run already re-rolled sequence {n}; running the same re-roll "
        "again gives the same take.</p>"
        if r.already_rerolled
        else ""
    )
    return (
        f"<h4>Re-render</h4><p class='hint'>Re-roll sequence {n} with a new seed; everything "
        f"else comes from the cache. This page runs nothing.</p>{note}"
        f"<div class='copy'><pre id='cmd-{n}' class='command'>{_e(r.command)}</pre>"
        f"<button type='button' data-copy='cmd-{n}'>Copy</button></div>"
        "<details><summary>As a Prefect deployment run</summary>"
        f"<div class='copy'><pre id='params-{n}' class='parameters'>"
        f"{_e(json.dumps(r.parameters, indent=2))}</pre>"
        f"<button type='button' data-copy='params-{n}'>Copy</button></div>"
        f"<div class='copy'><pre id='deploy-{n}'>{_e(r.deployment_command)}</pre>"
        f"<button type='button' data-copy='deploy-{n}'>Copy</button></div></details>"
    )


def _parts(view: TakeView) -> str:
    score = view.take.score
    parts = [
        (name, value)
        for name, value in (
            ("dialogue", score.dialogue),
            ("voice", score.voice),
            ("continuity", score.continuity),
            ("loudness", score.loudness),
        )
        if value is not None
    ]
    return " · ".join(f"{name} {value:.2f}" for name, value in parts)


def _take(n: int, view: TakeView) -> str:
    take = view.take
    badge = (
        "<span class='badge good'>picked</span>"
        if view.picked
        else "<span class='badge good'>kept</span>"
        if view.kept
        else ""
    )
    drift = "no keyframe" if take.drift is None else f"drift {take.drift:.3f}"
    head = (
        f"<figure class='take' id='take-{n}-{take.take}' data-take='{take.take}' "
        f"data-score='{take.score.total:.4f}' style='margin:0'>"
        f"<video controls preload='none' poster='{view.last_frame}' src='{view.video}' "
        "style='height:auto;aspect-ratio:16/10'></video>"
        f"<figcaption><b>take {take.take}</b> {badge} score <b>{take.score.total:.2f}</b>"
        f"<br>{_parts(view)}<br>heard <span class='badge {tone(take.verdict)}'>"
        f"{_e(take.verdict)}</span> · {drift} · {take.lufs:.1f} LUFS · seed "
        f"<code>{take.seed}</code></figcaption>"
    )
    if view.pick is None:
        return head + "</figure>"
    ident = f"pick-{n}-{take.take}"
    return (
        head + f"<p class='hint'>Keep this take instead:</p><div class='copy'>"
        f"<pre id='{ident}' class='command pick'>{_e(view.pick.command)}</pre>"
        f"<button type='button' data-copy='{ident}'>Copy</button></div>"
        "<details><summary>As a Prefect deployment run</summary><div class='copy'>"
        f"<pre id='{ident}-params' class='parameters'>"
        f"{_e(json.dumps(view.pick.parameters, indent=2))}</pre>"
        f"<button type='button' data-copy='{ident}-params'>Copy</button></div></details>"
        "</figure>"
    )


def takes_section(view: SequenceView) -> str:
    """The takes of a sequence side by side with their scores and the run that keeps each
    (nothing when it was rendered once)."""
    takes = view.takes
    if not takes:
        return ""
    n = view.index
    how = (
        "picked by hand"
        if view.result.picked
        else "the best-scored one (dialogue, continuity, loudness and, with a cast, voice)"
    )
    cells = "".join(_take(n, take) for take in takes)
    return (
        f"<div class='takes'><h4>Takes ({len(takes)})</h4><p class='hint'>Take "
        f"{view.result.kept_take} is kept: {how}. Keeping another re-renders only what "
        "follows this sequence in its chain; every take is in the cache.</p>"
        "<div style='display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));"
        f"gap:14px'>{cells}</div></div>"
    )


def sequence_section(view: SequenceView) -> str:
    """The `<section id="seq-N">` for one sequence."""
    n = view.index
    return (
        f"<section class='sequence' id='seq-{n}' data-sequence='{n}'>"
        f"<header><h3>{_e(view.label)}</h3>{status_badges(view)}"
        f"<a href='{view.video}' download>download</a></header>"
        "<div class='seq-grid'><div>"
        f"<video id='video-{n}' controls preload='metadata' poster='{view.first_frame}' "
        f"src='{view.video}'></video>"
        "<div class='frames'>"
        f"<figure><img src='{view.first_frame}' alt='first frame of sequence {n}'>"
        "<figcaption>first frame</figcaption></figure>"
        f"<figure><img src='{view.last_frame}' alt='last frame of sequence {n}'>"
        "<figcaption>last frame</figcaption></figure></div>"
        f"<p><a href='#film' data-seek='{view.film_start_s:.3f}'>▶ play from here in the film</a>"
        f"</p>{_loudness(view)}</div>"
        f"<div>{_facts(view)}{_scenes(view)}{_dialogue(view)}{_rerender(view)}</div>"
        f"</div>{takes_section(view)}</section>"
    )
