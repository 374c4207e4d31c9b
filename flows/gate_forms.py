"""What a gate asks and what the director answers: the form, its checks, and what it changes.

The same `GateDecision` is the Prefect resume form (a paused or suspended run shows it in the
UI), what the terminal answer is read into, and what the gate applies to the run's options:
every decision is also a plain option (`--rerender-keyframe`, `--rerender`, `--pick`), so a
run started again with those options renders exactly what the decision asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from prefect.input import RunInput
from pydantic import Field

from tasks.deliver.dailies.commands import film_command
from tasks.errors import ReelflowError
from tasks.schema.film_plan import FilmPlan
from tasks.schema.options import FilmOptions, Gate, parse_pick

Then = Literal["go on", "look again", "stop"]


class GateDecision(RunInput):
    """The director's answer at a gate. Nothing to redo and "go on": approved as it is."""

    redo_keyframes: list[int] = Field(
        default_factory=list,
        title="Re-roll keyframes (chain numbers)",
        description="Chains whose keyframe to render again with a new seed; the chain's "
        "sequences then start from the new keyframe.",
    )
    redo_sequences: list[int] = Field(
        default_factory=list,
        title="Re-roll sequences (sequence numbers)",
        description="Sequences to render again with a new seed (every take of them); what "
        "follows them in their chain renders again from the new last frame.",
    )
    pick: list[str] = Field(
        default_factory=list,
        title="Pick takes (SEQ=TAKE)",
        description="Keep this take of a sequence instead of the best-scored one, e.g. 2=1.",
    )
    then: Then = Field(
        "go on",
        title="Then",
        description="go on: continue the film (after any redo); look again: redo, then stop "
        "at this gate again; stop: end the run here (everything finished is kept).",
    )

    @property
    def redoes(self) -> bool:
        return bool(self.redo_keyframes or self.redo_sequences or self.pick)


@dataclass(frozen=True)
class GateRequest:
    """What a gate shows the person deciding: the material, the cost ahead, what can change."""

    gate: Gate
    round: int
    title: str
    summary: str
    material: list[tuple[str, str]]
    """(label, link or path) of everything to look at."""
    estimate: str
    redo_costs: str
    problems: list[str] = field(default_factory=list)
    """What was wrong with the previous answer, if anything."""
    images: list[str] = field(default_factory=list)
    """Links of the material's pictures, shown in the form's description."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """A table to judge by (the takes gate: every take and its score)."""

    def _table(self) -> list[str]:
        if not self.rows:
            return []
        columns = list(self.rows[0])
        return [
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
            *("| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in self.rows),
        ]

    def markdown(self) -> str:
        """The request as the Prefect resume form's description (and the gate's artifact)."""
        problems = "".join(f"> **Not applied:** {p}\n>\n" for p in self.problems)
        items = "\n".join(
            f"- [{label}]({where})" if "://" in where else f"- {label}: `{where}`"
            for label, where in self.material
        )
        # The first picture is the labelled sheet of them all; the rest are linked above.
        pictures = "".join(f"\n\n![{self.gate}]({link})" for link in self.images[:1])
        return (
            f"## {self.gate} gate: {self.title}\n\n{problems}{self.summary}\n\n"
            f"{items}{pictures}\n\n" + "".join(f"{line}\n" for line in self._table()) + "\n"
            f"**{self.estimate}.** {self.redo_costs}\n\n"
            "Answer in the form: leave it empty and *go on* to approve; or list keyframes "
            "(chains) or sequences to re-roll, or takes to pick as SEQ=TAKE. *look again* "
            "stops here again after the redo; *stop* ends the run, keeping everything finished."
        )

    def text(self) -> str:
        """The request for a terminal."""
        lines = [f"{self.gate} gate: {self.title}", *self.problems, self.summary]
        lines += [f"  {label}: {where}" for label, where in self.material]
        lines += self._table()
        lines += [f"{self.estimate}. {self.redo_costs}"]
        return "\n".join(lines)


def _cell(value: object) -> str:
    return "" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def problems_with(decision: GateDecision, plan: FilmPlan) -> list[str]:
    """Why a decision cannot be applied to this plan (empty: it can)."""
    problems = []
    generated = {c.index for c in plan.chains if c.keyframe.source_image is None}
    for chain in decision.redo_keyframes:
        if chain not in generated:
            problems.append(
                f"keyframe {chain}: the film's generated keyframes are of chains "
                f"{sorted(generated) or 'none'} (an author's image is not re-rolled)."
            )
    count = len(plan.sequences)
    for sequence in decision.redo_sequences:
        if not 0 <= sequence < count:
            problems.append(f"sequence {sequence}: the film has sequences 0 to {count - 1}.")
    for entry in decision.pick:
        try:
            sequence, take = parse_pick(entry)
        except ValueError as bad:
            problems.append(str(bad))
            continue
        if sequence >= count:
            problems.append(f"pick {entry}: the film has sequences 0 to {count - 1}.")
        elif take >= plan.sequences[sequence].takes:
            takes = plan.sequences[sequence].takes
            problems.append(f"pick {entry}: sequence {sequence} has takes 0 to {takes - 1}.")
    return problems


def decided_options(options: FilmOptions, decision: GateDecision) -> FilmOptions:
    """The run's options with the decision applied (each re-roll adds one more re-roll)."""
    render = options.render
    decided = options.with_render(
        rerender_keyframe=(*render.rerender_keyframe, *decision.redo_keyframes),
        rerender=(*render.rerender, *decision.redo_sequences),
    )
    for entry in decision.pick:
        decided = decided.with_picked(*parse_pick(entry))
    return decided


def parse_answer(line: str) -> GateDecision:
    """A terminal answer: empty (go on), `stop`, or items such as `keyframe 1, sequence 2,
    pick 2=1` (redone, then the gate asks again). ValueError says what it cannot read."""
    words = line.replace(",", " ").split()
    if not words:
        return GateDecision()
    if words == ["stop"]:
        return GateDecision(then="stop")
    keyframes: list[int] = []
    sequences: list[int] = []
    picks: list[str] = []
    pairs = iter(words)
    for word in pairs:
        value = next(pairs, "")
        if word in ("keyframe", "k") and value.isdigit():
            keyframes.append(int(value))
        elif word in ("sequence", "s") and value.isdigit():
            sequences.append(int(value))
        elif word in ("pick", "p"):
            parse_pick(value)
            picks.append(value)
        else:
            raise ValueError(
                f"cannot read {' '.join([word, value]).strip()!r}: write e.g. "
                "'keyframe 1', 'sequence 2', 'pick 2=1' (comma-separated), 'stop', or "
                "nothing to go on"
            )
    return GateDecision(
        redo_keyframes=keyframes, redo_sequences=sequences, pick=picks, then="look again"
    )


class GateStopped(ReelflowError):
    """The run ended at a gate (stopped there, unanswered in time, or with no one to ask);
    everything finished is kept in the store, and the message says how to go on."""

    exit_code: ClassVar[int] = 8


def how_to_continue(screenplay: Path, options: FilmOptions, gate: Gate) -> str:
    """What to run to go on past `gate`, or to redo something first and look again."""
    past = options.with_render(gates=tuple(g for g in options.render.gates if g != gate))
    return (
        f"To go on from here, run the film again without the {gate} gate (everything finished "
        f"comes from the cache):\n  {film_command(screenplay, past)}\n"
        "To redo something first, add --rerender-keyframe CHAIN, --rerender SEQ or --pick "
        f"SEQ=TAKE to that command (keep --gates {gate} to stop here again and look)."
    )
