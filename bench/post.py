"""post: dialogue check + normalize + score assembly + mux of a 10-minute film, against the
minimal ffmpeg path for the same output (concat copy + one audio mix/encode). Goal <= 1.5x.

The film's sequences and cues are rendered first (simulator, no GPU cost); then reelflow's
post stages run on them uncached, as the flow runs them (every sequence's check and
normalize at once), and the minimal path runs on the same raw sequences and score.

No GPU rate enters this figure: the film is rendered first at no GPU cost, and only the
post work after the GPU is timed.

    .venv/bin/python -m bench.post [--minutes 10]
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.edit import plan_of
from blocks.comfyui import ComfyUIServer
from flows.run import build_studio
from tasks.dialogue.check import check_dialogue
from tasks.dialogue.policy import DialoguePolicy
from tasks.mux import mux_to_file
from tasks.normalize import normalize_sequence
from tasks.runtime.store import local_storage
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import FinishedSequence, SequenceResult
from tasks.score import render_score

GOAL = 1.5
SEQUENCE_S = 20.0


async def studio_for(url: str, plan: FilmPlan, out: Path) -> Studio:
    """A studio on the film's own store (`out`/.reelflow), as the flow built it."""
    storage = local_storage(out / ".reelflow")
    return await build_studio(
        [ComfyUIServer(url=url)], storage, out / ".reelflow" / "scratch", plan.mode
    )


async def finish(studio: Studio, plan: FilmPlan, result: SequenceResult) -> FinishedSequence:
    """One rendered sequence's dialogue check, then its normalize, uncached."""
    verdict = await check_dialogue.fn(
        studio, plan, result.sequence, result.rendered, 1, DialoguePolicy()
    )
    return await normalize_sequence.fn(studio, result.rendered, verdict)


async def reelflow_post(
    studio: Studio, plan: FilmPlan, results: list[SequenceResult], dest: Path
) -> tuple[dict[str, float], Path]:
    """The post stages on rendered sequences, timed; returns stage seconds and the score."""
    started = time.perf_counter()
    finished = await asyncio.gather(*(finish(studio, plan, result) for result in results))
    checked = time.perf_counter()
    score = await render_score(studio, plan, [f.seconds for f in finished])
    scored = time.perf_counter()
    if score is None:
        raise common.BenchError("the bench film has no score to assemble")
    await mux_to_file(studio, plan, [f.video for f in finished], score.score, dest)
    done = time.perf_counter()
    stages = {
        "check_and_normalize": round(checked - started, 3),
        "score_assembly": round(scored - checked, 3),
        "mux": round(done - scored, 3),
        "total": round(done - started, 3),
    }
    return stages, await studio.store.fetch(score.score)


def minimal_path(clips: list[Path], score: Path, folder: Path) -> float:
    """Concat copy of the raw sequences, then one mix of the score under them (48 kHz AAC)."""
    started = time.perf_counter()
    listing = folder / "minimal.txt"
    listing.write_text("".join(f"file '{clip}'\n" for clip in clips))
    joined = folder / "minimal_joined.mp4"
    ffmpeg = ["ffmpeg", "-y", "-v", "error", "-nostdin"]
    subprocess.run(
        [*ffmpeg, "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(joined)],
        check=True,
    )
    mix = "[1:a]volume=0.25[s];[0:a][s]amix=inputs=2:duration=first:normalize=0[a]"
    subprocess.run(
        [*ffmpeg, "-i", str(joined), "-i", str(score), "-filter_complex", mix, "-map", "0:v",
         "-map", "[a]", "-c:v", "copy", "-c:a", "aac", "-ar", "48000", "-movflags", "+faststart",
         str(folder / "minimal.mp4")],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def measure(folder: Path, minutes: float) -> dict[str, Any]:
    count = max(1, round(minutes * 60 / SEQUENCE_S))
    screenplay = common.write_screenplay(
        folder, common.film_scenes([count], SEQUENCE_S), scored=True
    )
    out = folder / "out"
    with common.prefect_api(), common.simulators(1, 0.0, folder) as sims:
        run = common.run_film(screenplay, out, [sims[0].url])
        plan = plan_of(screenplay)
        results = sorted(
            (r for outcome in run.result.chains for r in outcome.sequences),
            key=lambda r: r.sequence.index,
        )

        async def post() -> tuple[dict[str, float], Path, list[Path]]:
            studio = await studio_for(sims[0].url, plan, out)
            stages, score = await reelflow_post(studio, plan, results, folder / "post.mp4")
            clips = [await studio.store.fetch(r.rendered.video) for r in results]
            return stages, score, clips

        stages, score, clips = asyncio.run(post())
    minimal = minimal_path(clips, score, folder)
    ratio = stages["total"] / minimal
    return {
        "ratio": round(ratio, 4),
        "load_average": common.load_average(),
        "goal": GOAL,
        "verdict": common.verdict(ratio, GOAL),
        "film_s": round(sum(r.rendered.seconds for r in results), 2),
        "sequences": len(results),
        "reelflow_s": stages,
        "minimal_s": round(minimal, 3),
    }


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument("--minutes", type=float, default=10.0)
    options = arguments.parse_args()
    with common.workdir(options.workdir, "post") as folder:
        figure = measure(folder, options.minutes)
    path = common.write_result("post", figure, {"sequence_s": SEQUENCE_S})
    print(f"film: {figure['film_s']} s in {figure['sequences']} sequences")
    print(f"reelflow post stages (s): {figure['reelflow_s']}")
    print(f"results: {path}")
    print(
        f"post: reelflow {figure['reelflow_s']['total']:.1f} s / minimal ffmpeg path "
        f"{figure['minimal_s']:.1f} s = {figure['ratio']:.2f}x (goal <= {GOAL}: "
        f"{figure['verdict']}; any GPU rate; load {figure['load_average']})"
    )


if __name__ == "__main__":
    main()
