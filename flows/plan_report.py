"""How a plan is shown: a rich table for the terminal and a JSON document for plan.json."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tasks.schema.film_plan import FilmPlan


def plan_document(plan: FilmPlan) -> dict[str, Any]:
    """plan.json: the plan itself plus the figures a reader would otherwise compute."""
    return {
        "plan": plan.model_dump(mode="json"),
        "summary": {
            "duration_s": round(plan.duration_s, 3),
            "sequences": len(plan.sequences),
            "chains": len(plan.chains),
            "cues": len(plan.cues),
            "warnings": len(plan.warnings),
            "gpu_estimate_s": round(plan.estimate.total_s, 1),
            "sequence_seconds": [round(s.seconds, 3) for s in plan.sequences],
            "cue_durations_s": [round(c.duration_s, 3) for c in plan.cues],
        },
    }


def plan_tables(plan: FilmPlan) -> Group:
    sequences = Table(
        title=f"{plan.title}: {len(plan.sequences)} sequences in "
        f"{len(plan.chains)} chain(s), {plan.duration_s:.1f} s at {plan.fps} fps"
    )
    for column in (
        "seq",
        "chain",
        "scenes",
        "frames",
        "segments",
        "seconds",
        "start",
        "cut",
        "seed",
        "lines",
    ):
        sequences.add_column(column, justify="right" if column != "lines" else "left")
    for s in plan.sequences:
        sequences.add_row(
            str(s.index),
            f"{s.chain}.{s.position}",
            ",".join(str(i) for i in s.scene_indices),
            str(s.frames),
            "+".join(str(f) for f in s.segment_frames),
            f"{s.seconds:.2f}",
            f"{s.start_s:.2f}",
            "hard" if s.hard_cut_before else "",
            str(s.seed),
            Text(
                "; ".join(f'{line.character}: "{line.line}"' for line in s.lines),
                overflow="ellipsis",
                no_wrap=True,
            ),
        )
    parts: list[Any] = [sequences]
    if plan.cues:
        cues = Table(title=f"Score: {len(plan.cues)} cue(s) ({plan.score_source})")
        for column in ("cue", "from scene", "start", "zone", "tail", "section", "seed", "beat"):
            cues.add_column(column)
        for c in plan.cues:
            cues.add_row(
                str(c.index),
                str(c.first_scene),
                f"{c.start_s:.2f}",
                f"{c.zone_s:.2f}",
                f"{c.tail_s:g}",
                c.section,
                str(c.seed),
                Text(c.beat, overflow="ellipsis", no_wrap=True),
            )
        parts.append(cues)
    else:
        parts.append(Text('Score: none (the screenplay sets "score": null)'))
    for warning in plan.warnings:
        parts.append(
            Text(
                f"warning {warning.location}: {warning.message} Fix: {warning.fix}", style="yellow"
            )
        )
    for change in plan.changes:
        parts.append(Text(f"fixed {change.location}: {change.description}", style="green"))
    e = plan.estimate
    parts.append(
        Text(
            f"GPU estimate ({plan.mode}): {e.total_s / 60:.1f} min "
            f"(keyframes {e.keyframes_s:.0f} s, sequences {e.sequences_s:.0f} s, "
            f"cues {e.cues_s:.0f} s)"
        )
    )
    return Group(*parts)


def print_plan(plan: FilmPlan, console: Console) -> None:
    console.print(plan_tables(plan))
