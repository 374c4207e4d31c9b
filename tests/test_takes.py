"""Takes: several candidates of a sequence rendered, scored, the best one carried and cut;
picking another later re-renders only what follows it in its chain. On a real simulator
process, through real Prefect."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.cli import _render_parser
from flows.film import film
from flows.flags import options_from
from sim.embedded import RunningSimulator
from tasks import media
from tasks.deliver.takes import take_video
from tasks.plan import plan_screenplay
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import FilmResult, SequenceResult
from tests.film_helpers import chain_scenes, render, sim_stats, write_screenplay

pytestmark = pytest.mark.usefixtures("prefect_api")


def renders_by_family(url: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for execution in sim_stats(url)["executions"]:
        counts[execution["family"]] = counts.get(execution["family"], 0) + 1
    return counts


def frame(video: Path, which: str) -> np.ndarray:
    if which == "first":
        return np.asarray(media.first_frame(video), dtype=float)
    out = video.with_name(f"{video.stem}.last.check.png")
    return np.asarray(Image.open(media.extract_last_frame(video, out)), dtype=float)


def sequences_of(result: FilmResult) -> list[SequenceResult]:
    return sorted((r for c in result.chains for r in c.sequences), key=lambda r: r.sequence.index)


def test_two_takes_of_three_sequences_keep_the_best_scored_and_a_pick_rerenders_what_follows(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    scenes = chain_scenes(chains=1, shots=3)  # one chain: each sequence starts where one ended
    scenes[1].update(
        duration=5.0, dialogue=[{"character": "ANA", "line": "The boat is late again."}]
    )
    screenplay = write_screenplay(tmp_path, scenes)
    out = tmp_path / "out"

    result = render(screenplay, out, [sim.url], takes=2)
    planned = plan_screenplay(screenplay, FilmOptions())

    assert renders_by_family(sim.url) == {"image": 1, "ltx": 6}
    folder = Path(result.folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    sequences = sequences_of(result)
    for entry, kept in zip(manifest["sequences"], sequences, strict=True):
        takes = kept.takes
        assert [t.take for t in takes] == [0, 1]
        # Take 0 renders with the sequence's own seed: one take renders what it always did.
        assert takes[0].seed == planned.sequences[kept.sequence.index].seed != takes[1].seed
        assert kept.sequence.seed == takes[kept.kept_take].seed
        best = max(takes, key=lambda t: (t.score.total, -t.take))
        assert kept.kept_take == best.take and not kept.picked
        # The kept take is the render carried on and cut: its file, in the manifest too.
        assert kept.rendered.video == takes[kept.kept_take].video
        assert entry["sha256"] == takes[kept.kept_take].video.sha256
        assert entry["kept_take"] == kept.kept_take
        assert [t["score"] for t in entry["takes"]] == [t.score.total for t in takes]
    # The takes differ (seeded drift), so the picture shows which one went into the cut.
    clips = sorted((folder / "sequences").glob("*_SEQ*_v*.mp4"))
    for n, kept in enumerate(sequences):
        candidates = [folder / take_video(n, take) for take in kept.takes]
        ends = [frame(video, "last") for video in candidates]
        cut_end = frame(clips[n], "last")
        distance = [np.abs(cut_end - end).mean() for end in ends]
        assert distance[kept.kept_take] < 1.0 < distance[1 - kept.kept_take], distance
        if n + 1 < len(clips):  # the next sequence starts on the kept take's last frame
            start = frame(clips[n + 1], "first")
            assert (
                np.abs(start - ends[kept.kept_take]).mean()
                < np.abs(start - ends[1 - kept.kept_take]).mean()
            )
    page = (folder / "review.html").read_text()
    assert page.count("class='take'") == 6

    # Keep the other take of the middle sequence, with the command the page gives for it:
    # only the last sequence's takes render again.
    other = 1 - sequences[1].kept_take
    command = re.search(f"<pre id='pick-1-{other}'[^>]*>([^<]*)</pre>", page)
    assert command is not None
    words = shlex.split(unescape(command.group(1)))
    options = options_from(_render_parser().parse_args(words[3:]))
    assert options == FilmOptions.of(comfyui=[sim.url], out=str(out), takes=2, pick=[f"1={other}"])
    before = renders_by_family(sim.url)
    picked = asyncio.run(film(screenplay=str(screenplay), options=options))
    after = renders_by_family(sim.url)
    assert picked.prompts == 2
    assert (after["ltx"] - before["ltx"], after["image"] - before["image"]) == (2, 0)
    again = sequences_of(picked)
    assert (again[1].kept_take, again[1].picked) == (other, True)
    assert again[0].rendered == sequences[0].rendered
    assert again[1].rendered.video == sequences[1].takes[other].video
