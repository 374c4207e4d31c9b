"""`python -m flows.film`: plan or render a screenplay from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from flows.plan_report import plan_document, print_plan
from tasks.errors import ReelflowError
from tasks.files import write_atomic
from tasks.plan import plan_film
from tasks.screenplay_file import load_screenplay
from tasks.settings import load_defaults

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=False)
    try:
        if argv and argv[0] == "plan":
            return run_plan(argv[1:], console)
        return run_plan(argv, console)
    except ReelflowError as error:
        Console(stderr=True).print(Text("error: ", style="red") + Text(str(error)))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
