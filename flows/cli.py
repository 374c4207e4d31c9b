"""`python -m flows.film`: plan or render a screenplay from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from flows.flags import add_option_flags, options_from
from flows.plan_report import plan_document, print_plan
from tasks.comfyui.errors import ComfyUIError, PreflightFailed
from tasks.cost import cost_lines
from tasks.deliver.listing import loudness_sentence
from tasks.deliver.tables import (
    dialogue_rows,
    final_action,
    in_order,
    loudness_rows,
    warnings_of,
)
from tasks.errors import DiskFull, ReelflowError
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.screenplay_file import load_screenplay
from tasks.runtime.disk import disk_full, failing_path, film_bytes, is_disk_full
from tasks.runtime.files import write_atomic
from tasks.schema.options import FilmOptions

if TYPE_CHECKING:
    from tasks.schema.outcomes import FilmResult

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_PREFLIGHT = 0, 1, 2, 3
EXIT_STORAGE, EXIT_SERVER, EXIT_DISK_FULL, EXIT_CORRUPT = 4, 5, 6, 7
EXIT_INTERRUPTED = 130
# When several chains stop for different reasons, the code names the one to fix first.
_PRECEDENCE = (EXIT_DISK_FULL, EXIT_CORRUPT, EXIT_STORAGE, EXIT_SERVER, EXIT_PREFLIGHT)


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
    from flows.console import RichSink, terse_prefect_console
    from flows.ephemeral import start_tied_server
    from flows.film import film
    from flows.gates import gate_answerer, no_terminal, terminal_answerer
    from flows.progress import progress_sink

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
    terse_prefect_console()
    start_tied_server()
    with RichSink(console) as sink:
        token = progress_sink.set(sink)
        # gates ask on this terminal; with none, a gate ends the run and says how to go on
        asks = gate_answerer.set(terminal_answerer(sink) if sys.stdin.isatty() else no_terminal)
        try:
            result = asyncio.run(film(screenplay=str(args.screenplay), options=options))
        except Exception as failure:
            raise RunFailed(failure, args.screenplay, options) from failure
        finally:
            progress_sink.reset(token)
            gate_answerer.reset(asks)
    print_summary(result, console)
    return EXIT_OK


class RunFailed(Exception):
    """A render run that stopped, with what the report needs to say where and why."""

    def __init__(self, failure: Exception, screenplay: Path, options: FilmOptions) -> None:
        super().__init__(str(failure))
        self.failure, self.screenplay, self.options = failure, screenplay, options


def exit_code_of(failure: BaseException) -> int:
    """The documented exit code of what stopped a run (README.md, tasks/errors.py)."""
    if is_disk_full(failure):
        return EXIT_DISK_FULL
    codes = {exit_code_of(cause) for cause in getattr(failure, "causes", ())}
    codes.add(int(getattr(failure, "exit_code", EXIT_FAILED)))
    return next((code for code in _PRECEDENCE if code in codes), max(codes))


def _estimated_need(screenplay: Path, options: FilmOptions) -> int | None:
    from tasks.plan import plan_screenplay

    try:
        plan = plan_screenplay(screenplay, options)
    except Exception:  # the estimate is a courtesy; the disk line stands without it
        return None
    seconds = sum(s.seconds for s in plan.sequences)
    return film_bytes(plan.width, plan.height, plan.fps, seconds)


def failure_message(failed: RunFailed) -> str:
    """What stopped the run, in words for the person who typed the command."""
    failure = failed.failure
    if is_disk_full(failure):
        where = failing_path(failure)
        if where is None and isinstance(failure, DiskFull) and failure.path:
            where = Path(failure.path)
        folder = where or Path(failed.options.out)
        line = str(disk_full(folder, _estimated_need(failed.screenplay, failed.options)))
        if getattr(failure, "causes", None):  # a failed film: the chain lines follow
            return "\n".join([line, *str(failure).splitlines()[1:]])
        return line
    if isinstance(failure, PreflightFailed):
        return f"preflight: {failure}"
    if isinstance(failure, ComfyUIError):
        return f"ComfyUI: {failure}"
    if isinstance(failure, ReelflowError):
        return str(failure)
    return f"{type(failure).__name__}: {failure}"


def _quiet_local_prefect() -> None:
    """A laptop run: no telemetry, and patience with a slow first start of ephemeral Prefect."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def main(argv: list[str] | None = None) -> int:
    _quiet_local_prefect()
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=False)
    errors = Console(stderr=True, soft_wrap=True)  # a command or path in a message stays whole
    try:
        if argv and argv[0] == "plan":
            return run_plan(argv[1:], console)
        if argv and argv[0] == "serve":
            from flows.serve import run_serve

            return run_serve(argv[1:])
        return run_render(argv, console)
    except RunFailed as failed:
        errors.print(Text("error: ", style="red") + Text(failure_message(failed)))
        return exit_code_of(failed.failure)
    except ReelflowError as error:
        errors.print(Text("error: ", style="red") + Text(str(error)))
        return exit_code_of(error)
    except KeyboardInterrupt:
        errors.print(
            Text(
                "interrupted: every render that finished is kept; run the same command "
                "again to continue where it stopped.",
                style="yellow",
            )
        )
        return EXIT_INTERRUPTED


def _final_actions(result: FilmResult) -> dict[int, tuple[int, str]]:
    """Per sequence: the number of its kept attempt and what was done with it at the end."""
    return {
        r.sequence.index: (len(r.attempts), r.attempts[-1].verdict.action)
        for chain in result.chains
        for r in chain.sequences
        if r.attempts
    }


def _action_words(row: dict[str, Any], final: dict[int, tuple[int, str]]) -> str:
    """A line's action; on the kept attempt a re-render that did not happen reads as the
    review page says what became of the sequence ("kept with a warning", ...)."""
    kept_attempt, kept_action = final.get(row["sequence"], (0, ""))
    if row["attempt"] == kept_attempt and row["action"] == "rerender":
        return final_action(kept_action)
    return str(row["action"])


def print_summary(result: FilmResult, console: Console) -> None:
    """The end report: dialogue verdicts, loudness, warnings, and where everything is.

    Every text from the screenplay or the ASR is printed as plain text, never as markup.
    """
    final = _final_actions(result)
    dialogue = Table(title="Dialogue check")
    for column in ("seq", "try", "who", "expected", "heard", "verdict", "action"):
        dialogue.add_column(column, overflow="fold")
    for row in dialogue_rows(in_order(result.chains)):
        dialogue.add_row(
            *(
                Text(str(cell))
                for cell in (
                    row["sequence"],
                    row["attempt"],
                    row["character"],
                    row["expected"],
                    row["heard"],
                    row["verdict"],
                    _action_words(row, final),
                )
            )
        )
    loudness = Table(title="Loudness (LUFS)")
    for column in ("seq", "before", "after", "gain dB", "peak dBTP", "edits"):
        loudness.add_column(column)
    for row in loudness_rows(in_order(result.chains)):
        loudness.add_row(
            Text(str(row["sequence"])),
            Text(f"{row['before_lufs']:.1f}"),
            Text(f"{row['after_lufs']:.1f}"),
            Text(f"{row['gain_db']:+.1f}"),
            Text(f"{row['true_peak_dbtp']:.1f}"),
            Text(row["edits"]),
        )
    console.print(dialogue, loudness)
    loads = result.schedule
    console.print(
        Text(
            f"model loads: {loads.loads} (minimum {loads.minimum_loads}, {loads.policy} scheduling)"
        )
    )
    console.print(Text(loudness_sentence(result.loudness)))
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
