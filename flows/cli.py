"""`python -m flows.film`: plan or render a screenplay from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from flows.flags import add_option_flags, options_from
from flows.plan_report import plan_document, print_plan
from tasks.comfyui.errors import ComfyUIError, PreflightFailed
from tasks.cost import cost_lines
from tasks.deliver.tables import dialogue_rows, in_order, loudness_rows, warnings_of
from tasks.errors import ReelflowError
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.screenplay_file import load_screenplay
from tasks.runtime.files import write_atomic

if TYPE_CHECKING:
    from tasks.schema.outcomes import FilmResult

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_PREFLIGHT = 0, 1, 2, 3


def _plan_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.film plan",
        description="Show the film plan (sequences, frames, chains, cues, lint, GPU estimate) "
        "and write plan.json. Spends no GPU time.",
    )
    parser.add_argument("screenplay", type=Path, help="the screenplay JSON file")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for plan.json (default: renders/<screenplay name>)",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="lengthen or split scenes that break the dialogue duration rule, "
        "and report what changed",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="plan only the first N scenes"
    )
    return parser


def run_plan(argv: list[str], console: Console) -> int:
    args = _plan_parser().parse_args(argv)
    screenplay = load_screenplay(args.screenplay)
    plan = plan_film(screenplay, load_defaults(), fix=args.fix, scene_limit=args.limit)
    print_plan(plan, console)
    out = args.out or Path("renders") / args.screenplay.stem
    target = write_atomic(out / "plan.json", json.dumps(plan_document(plan), indent=2).encode())
    console.print(f"plan written to {target}")
    return EXIT_OK


def _render_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.film",
        description="Render a screenplay into a film folder. With no --comfyui, an embedded "
        "ComfyUI-compatible simulator renders an animatic (real media, spoken dialogue). "
        "Finished renders are cached by content: re-running continues where a run stopped "
        "and an unchanged film costs no GPU time. `python -m flows.film plan FILE` shows "
        "the plan only.",
    )
    parser.add_argument("screenplay", type=Path, help="the screenplay JSON file")
    add_option_flags(parser)
    return parser


def run_render(argv: list[str], console: Console) -> int:
    from flows.console import RichSink
    from flows.film import film
    from flows.gates import gate_answerer, no_terminal, terminal_answerer
    from flows.progress import progress_sink
    from tasks.chains import FilmFailed

    args = _render_parser().parse_args(argv)
    options = options_from(args)
    load_screenplay(args.screenplay)
    if not options.comfyui:
        console.print(
            Text(
                "No --comfyui server given: the embedded simulator renders an "
                "ANIMATIC (placeholder pictures, synthetic voices), not a film.",
                style="bold yellow",
            )
        )
    with RichSink(console) as sink:
        token = progress_sink.set(sink)
        # gates ask on this terminal; with none, a gate ends the run and says how to go on
        asks = gate_answerer.set(terminal_answerer(sink) if sys.stdin.isatty() else no_terminal)
        try:
            result = asyncio.run(film(screenplay=str(args.screenplay), options=options))
        except FilmFailed as failed:
            console.print(Text(str(failed), style="red"))
            return EXIT_FAILED
        except PreflightFailed as refused:
            console.print(Text(f"preflight: {refused}", style="red"))
            return EXIT_PREFLIGHT
        except ComfyUIError as trouble:
            console.print(Text(f"ComfyUI: {trouble}", style="red"))
            return EXIT_FAILED
        finally:
            progress_sink.reset(token)
            gate_answerer.reset(asks)
    print_summary(result, console)
    return EXIT_OK


def _quiet_local_prefect() -> None:
    """A laptop run: no telemetry, and patience with a slow first start of ephemeral Prefect."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def main(argv: list[str] | None = None) -> int:
    _quiet_local_prefect()
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=False)
    try:
        if argv and argv[0] == "plan":
            return run_plan(argv[1:], console)
        if argv and argv[0] == "serve":
            from flows.serve import run_serve

            return run_serve(argv[1:])
        return run_render(argv, console)
    except ReelflowError as error:
        Console(stderr=True).print(Text("error: ", style="red") + Text(str(error)))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def print_summary(result: FilmResult, console: Console) -> None:
    """The end report: dialogue verdicts, loudness, warnings, and where everything is."""
    dialogue = Table(title="Dialogue check")
    for column in ("seq", "try", "who", "expected", "heard", "verdict", "action"):
        dialogue.add_column(column, overflow="fold")
    for row in dialogue_rows(in_order(result.chains)):
        dialogue.add_row(
            str(row["sequence"]),
            str(row["attempt"]),
            row["character"],
            row["expected"],
            row["heard"],
            row["verdict"],
            row["action"],
        )
    loudness = Table(title="Loudness (LUFS)")
    for column in ("seq", "before", "after", "gain dB", "peak dBTP", "edits"):
        loudness.add_column(column)
    for row in loudness_rows(in_order(result.chains)):
        loudness.add_row(
            str(row["sequence"]),
            f"{row['before_lufs']:.1f}",
            f"{row['after_lufs']:.1f}",
            f"{row['gain_db']:+.1f}",
            f"{row['true_peak_dbtp']:.1f}",
            row["edits"],
        )
    console.print(dialogue, loudness)
    loads = result.schedule
    console.print(
        f"model loads: {loads.loads} (minimum {loads.minimum_loads}, {loads.policy} scheduling)"
    )
    for warning in warnings_of(in_order(result.chains)):
        console.print(Text(f"warning {warning}", style="yellow"))
    for line in cost_lines(result.cost) if result.cost else ():
        console.print(f"GPU {line}")
    kind = ", an ANIMATIC" if result.animatic else ""
    console.print(
        Text.assemble(
            ("done: ", "bold green"),
            f"{result.film} ({result.duration_s:.1f} s{kind}); {result.prompts} prompts, "
            f"{result.gpu_seconds:.1f} GPU s; everything in {result.folder}; dailies: "
            f"{result.review}",
        )
    )
