"""dialogue_check: precision and recall of the `truncated` verdict on labelled renders.

The labelled set (`tests/data/dialogue_labels/`) is rendered with the simulator's voices,
heard by the real embedded ASR (Whisper tiny.en), and judged three ways on the same
transcripts:

- before: the check as it was at `--before` (an exact last-word test), loaded from git;
- after, words: the check now, given only the transcript (word times and endings);
- after, levels: the check now, also given the sound levels at each segment's end.

Each line counts once. A verdict other than `truncated` on a truncated line is a miss;
`truncated` on an intact line is a false alarm. Intact lines sent to re-render (any
verdict whose action is `rerender`) are counted too: that is GPU time spent for nothing.

    .venv/bin/python -m bench.dialogue_check [--before REF] [--workdir DIR]
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common
from tasks.dialogue import judge as current_judge
from tasks.dialogue.judge import is_silent
from tasks.dialogue.truncation import segment_levels
from tasks.media import read_audio
from tasks.runtime.asr import EmbeddedTranscriber, Transcript
from tasks.schema.verdicts import ScriptedLine
from tests.data.dialogue_labels.clips import LabelledCase, load_labels, render, spans

BEFORE = "1c1e681a1f84c23391331d6e0b5c46136d44ec7e"
"""The last commit whose check called a line truncated on its exact last word."""
RATE = 48_000
VARIANTS = ("before", "after_words", "after_levels")

# Today's check, shaped like the old single module (`check_sequence` and `ScriptedLine`).
CURRENT = types.SimpleNamespace(
    check_sequence=current_judge.check_sequence, ScriptedLine=ScriptedLine
)

Judge = Callable[[LabelledCase, Transcript, Any], list[tuple[str, str]]]


OLD_NEIGHBOURS = {
    "tasks.asr": "tasks.runtime.asr",
    "tasks.lint": "tasks.plan.lint",
    "tasks.settings": "tasks.plan.defaults",
    "tasks.text_norm": "tasks.dialogue.text_norm",
}


def old_module(ref: str) -> types.ModuleType | None:
    """`tasks/dialogue.py` as it was at `ref`, run against today's other modules."""
    root = Path(__file__).resolve().parent.parent
    try:
        source = subprocess.run(
            ["git", "show", f"{ref}:tasks/dialogue.py"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        module = types.ModuleType("dialogue_before")
        sys.modules[module.__name__] = module  # pydantic resolves annotations through it
        # The old module imports its neighbours by their names before the package layout.
        for old, new in OLD_NEIGHBOURS.items():
            sys.modules.setdefault(old, importlib.import_module(new))
        exec(compile(source, f"{ref}:tasks/dialogue.py", "exec"), module.__dict__)
    except (subprocess.CalledProcessError, ImportError) as error:
        print(f"no 'before' column: tasks/dialogue.py at {ref} cannot be loaded ({error})")
        return None
    return module


def judge_with(module: Any, *, levels: bool) -> Judge:
    def judge(case: LabelledCase, transcript: Transcript, audio: Any) -> list[tuple[str, str]]:
        fps = load_labels().fps
        options: dict[str, Any] = {}
        if levels:
            options["segment_levels"] = segment_levels(audio, RATE, spans(case, fps))
        verdict = module.check_sequence(
            [module.ScriptedLine(segment=n, line=s.line) for n, s in enumerate(case.segments)],
            transcript, silent=is_silent(audio, RATE), scene_descriptions=[""],
            title="Untitled", segment_spans=spans(case, fps), **options,
        )  # fmt: skip
        return [(line.kind, line.action) for line in verdict.lines]

    return judge


def scores(rows: list[dict[str, Any]], variant: str) -> dict[str, Any]:
    counts = Counter(
        ("tp" if row[variant] == "truncated" else "fn")
        if row["truncated"]
        else ("fp" if row[variant] == "truncated" else "tn")
        for row in rows
    )
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": counts["tn"],
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "intact_rerendered": sum(
            1 for row in rows if not row["truncated"] and row[f"{variant}_action"] == "rerender"
        ),
        "intact_kinds": dict(Counter(row[variant] for row in rows if not row["truncated"])),
        "truncated_kinds": dict(Counter(row[variant] for row in rows if row["truncated"])),
    }  # fmt: skip


def measure(folder: Path, before_ref: str) -> dict[str, Any]:
    labels = load_labels()
    asr = EmbeddedTranscriber()
    old = old_module(before_ref)
    judges = {
        "after_words": judge_with(CURRENT, levels=False),
        "after_levels": judge_with(CURRENT, levels=True),
    }
    if old is not None:
        judges["before"] = judge_with(old, levels=False)
    rows: list[dict[str, Any]] = []
    for case in labels.cases:
        path = render(case, labels.fps, folder / f"{case.id}.wav")
        audio = read_audio(path, rate=RATE, mono=True)
        transcript = asr.transcribe(path)
        verdicts = {name: judge(case, transcript, audio) for name, judge in judges.items()}
        for number, segment in enumerate(case.segments):
            row: dict[str, Any] = {
                "case": case.id, "segment": number, "line": segment.line,
                "truncated": segment.truncated, "heard": transcript.text,
            }  # fmt: skip
            for name, per_line in verdicts.items():
                row[name], row[f"{name}_action"] = per_line[number]
            rows.append(row)
    return {"rows": rows, "variants": {v: scores(rows, v) for v in VARIANTS if v in judges}}


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument(
        "--before", default=BEFORE, help="git ref of the check to compare with (%(default)s)"
    )
    args = arguments.parse_args()
    with common.workdir(args.workdir, "dialogue-check") as folder:
        result = measure(folder, args.before)
    rows, variants = result["rows"], result["variants"]
    names = [v for v in VARIANTS if v in variants]
    print(f"{'case':30} {'seg':>3} {'label':9} " + " ".join(f"{n:12}" for n in names) + " heard")
    for row in rows:
        label = "truncated" if row["truncated"] else "intact"
        kinds = " ".join(f"{row[n]:12}" for n in names)
        print(f"{row['case']:30} {row['segment']:>3} {label:9} {kinds} {row['heard']!r}")
    print()
    for name in names:
        s = variants[name]
        print(
            f"{name:13} precision {s['precision']} recall {s['recall']} "
            f"(tp {s['tp']} fp {s['fp']} fn {s['fn']} tn {s['tn']}); "
            f"intact lines re-rendered {s['intact_rerendered']}; "
            f"intact verdicts {s['intact_kinds']}"
        )
    truncated = sum(row["truncated"] for row in rows)
    details = {
        "lines": len(rows), "truncated_lines": truncated, "before_ref": args.before, **result,
    }  # fmt: skip
    figure = {name: {k: variants[name][k] for k in ("precision", "recall")} for name in names}
    common.write_result("dialogue_check", figure, details)
    headline = "; ".join(
        f"{name} P {variants[name]['precision']} R {variants[name]['recall']}" for name in names
    )
    print(f"truncated verdict on {len(rows)} lines ({truncated} truncated): {headline}")


if __name__ == "__main__":
    main()
