"""The review page's charts as standalone SVG files: readable without JavaScript or a server."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass
from html import escape

from tasks.schema.film_plan import Cue

SILENT_LUFS = -70.0
_LOUDNESS_FLOOR = -60.0
_FONT = "font-family='system-ui, sans-serif'"
_CUE_COLOURS = ("#5b8def", "#e0a050", "#59b38a", "#c46fd0", "#d0605b", "#4fb3c4")


@dataclass(frozen=True)
class LoudnessBar:
    """One sequence's integrated loudness before and after normalizing."""

    label: str
    before_lufs: float
    after_lufs: float


@dataclass(frozen=True)
class Span:
    """A stretch of the film: a sequence on the timeline."""

    label: str
    start_s: float
    end_s: float


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return "\n".join(
        [
            f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='{width}' height='{height}' role='img' {_FONT}>",
            f"<title>{escape(title)}</title>",
            *body,
            "</svg>",
            "",
        ]
    )


def _lufs_text(value: float) -> str:
    return "silent" if value <= SILENT_LUFS else f"{value:.1f}"


def loudness_chart(bars: Seq[LoudnessBar], *, target_lufs: float, width: int = 420) -> str:
    """Horizontal bars per sequence: grey before, blue after, the target as a dashed line."""
    left, right, top, row = 64, 58, 24, 30
    height = top + row * len(bars) + 20
    span = width - left - right

    def x(lufs: float) -> float:
        clamped = min(0.0, max(_LOUDNESS_FLOOR, lufs))
        return left + (clamped - _LOUDNESS_FLOOR) / -_LOUDNESS_FLOOR * span

    body = ["<rect width='100%' height='100%' fill='#1b1d22'/>"]
    for tick in (-60, -45, -30, -15, 0):
        body.append(
            f"<line x1='{x(tick):.1f}' x2='{x(tick):.1f}' y1='{top - 4}' y2='{height - 16}' "
            "stroke='#343842'/>"
            f"<text x='{x(tick):.1f}' y='{top - 8}' font-size='10' fill='#8a909c' "
            f"text-anchor='middle'>{tick}</text>"
        )
    body.append(
        f"<line x1='{x(target_lufs):.1f}' x2='{x(target_lufs):.1f}' y1='{top - 4}' "
        f"y2='{height - 16}' stroke='#e6c04c' stroke-dasharray='4 3'/>"
        f"<text x='{x(target_lufs):.1f}' y='{height - 4}' font-size='9' fill='#e6c04c' "
        "text-anchor='middle'>"
        f"target {target_lufs:g}</text>"
    )
    for number, bar in enumerate(bars):
        y = top + number * row
        body.append(
            f"<text x='4' y='{y + 17}' font-size='11' fill='#d8dbe2'>{escape(bar.label)}</text>"
            f"<rect x='{left}' y='{y + 4}' width='{x(bar.before_lufs) - left:.1f}' height='9' "
            "fill='#6b717d'><title>before</title></rect>"
            f"<text x='{x(bar.before_lufs) + 4:.1f}' y='{y + 12}' font-size='9' fill='#a4aab5'>"
            f"{_lufs_text(bar.before_lufs)} before</text>"
            f"<rect x='{left}' y='{y + 15}' width='{x(bar.after_lufs) - left:.1f}' height='9' "
            "fill='#5b8def'><title>after</title></rect>"
            f"<text x='{x(bar.after_lufs) + 4:.1f}' y='{y + 23}' font-size='9' fill='#cfe0ff'>"
            f"{_lufs_text(bar.after_lufs)} after</text>"
        )
    return _svg(width, height, "Loudness before and after normalizing (LUFS)", body)


def _tick_step(duration_s: float) -> float:
    for step in (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0):
        if duration_s / step <= 12:
            return step
    return 1200.0


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _fit(text: str, pixels: float, size: int) -> str:
    # About 0.56 em per character in a sans face: cut the label rather than let it spill.
    room = int(pixels / (size * 0.56))
    if len(text) <= room:
        return text
    return text[: max(0, room - 1)] + "…" if room > 1 else ""


def score_timeline(
    cues: Seq[Cue], spans: Seq[Span], duration_s: float, *, width: int = 1000
) -> str:
    """The film's timeline: sequences on top, cues below with beat, key and bpm, and time."""
    left, right = 8, 8
    height = 176
    scale = (width - left - right) / max(duration_s, 1e-6)

    def x(t: float) -> float:
        return left + min(max(t, 0.0), duration_s) * scale

    body = ["<rect width='100%' height='100%' fill='#1b1d22'/>", "<defs>"]
    for number, cue in enumerate(cues):
        body.append(
            f"<clipPath id='cue{number}'><rect x='{x(cue.start_s):.1f}' y='46' "
            f"width='{max(0.0, cue.zone_s * scale - 2):.1f}' height='92'/></clipPath>"
        )
    body.append("</defs>")
    for number, span in enumerate(spans):
        x0, x1 = x(span.start_s), x(span.end_s)
        shade = "#2c3440" if number % 2 == 0 else "#353f4d"
        body.append(
            f"<rect x='{x0:.1f}' y='8' width='{x1 - x0:.1f}' height='28' fill='{shade}'>"
            f"<title>{escape(span.label)}</title></rect>"
            f"<text x='{x0 + 4:.1f}' y='26' font-size='11' fill='#d8dbe2'>"
            f"{escape(_fit(span.label, x1 - x0 - 6, 11))}</text>"
        )
    for number, cue in enumerate(cues):
        colour = _CUE_COLOURS[number % len(_CUE_COLOURS)]
        x0, x1, tail = x(cue.start_s), x(cue.end_s), x(cue.end_s + cue.tail_s)
        room = x1 - x0 - 10
        lines = [
            (f"cue {cue.index} · {cue.section}", 12, "600"),
            (cue.beat, 10, "400"),
            (f"{cue.key} · {cue.bpm} bpm", 10, "400"),
        ]
        body.append(
            f"<rect x='{x0:.1f}' y='46' width='{x1 - x0:.1f}' height='92' fill='{colour}' "
            f"fill-opacity='0.28' stroke='{colour}'>"
            f"<title>{escape(f'cue {cue.index}: {cue.section}, {cue.beat}; {cue.key}, ')}"
            f"{cue.bpm} bpm; {cue.start_s:.2f}-{cue.end_s:.2f} s</title></rect>"
        )
        if cue.tail_s > 0:
            body.append(
                f"<rect x='{x1:.1f}' y='120' width='{tail - x1:.1f}' height='18' "
                f"fill='{colour}' fill-opacity='0.15'><title>crossfade tail</title></rect>"
            )
        body.append(
            f"<line x1='{x0:.1f}' x2='{x0:.1f}' y1='4' y2='146' stroke='{colour}' "
            "stroke-width='2'/>"
        )
        for row, (text, size, weight) in enumerate(lines):
            body.append(
                f"<text x='{x0 + 5:.1f}' y='{64 + row * 17}' font-size='{size}' "
                f"font-weight='{weight}' fill='#eef0f4' clip-path='url(#cue{number})'>"
                f"{escape(_fit(text, room, size))}</text>"
            )
    step = _tick_step(duration_s)
    tick = 0.0
    while tick <= duration_s + 1e-6:
        body.append(
            f"<line x1='{x(tick):.1f}' x2='{x(tick):.1f}' y1='148' y2='154' stroke='#8a909c'/>"
            f"<text x='{x(tick):.1f}' y='168' font-size='10' fill='#8a909c' "
            f"text-anchor='{'start' if tick == 0 else 'middle'}'>{_clock(tick)}</text>"
        )
        tick += step
    return _svg(width, height, "Score cues over the film's timeline", body)
