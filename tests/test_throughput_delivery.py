"""An unchanged re-run leaves the delivered folder as it was: no film copied, no contact sheet
drawn, no timeline exported, no thumbnail decoded again; a file someone removed or changed is
written again. What needs only the sequences is delivered while the cut is made."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flows.film import film
from sim.embedded import start_simulator
from sim.settings import SimSettings
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import FilmResult
from tests.film_helpers import chain_scenes, render, task_run_times, write_screenplay

pytestmark = pytest.mark.usefixtures("prefect_api")


def _written(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def test_a_cached_re_run_rewrites_only_the_record_and_restores_what_was_touched(
    tmp_path: Path,
) -> None:
    screenplay = write_screenplay(tmp_path, chain_scenes(chains=1, shots=2))
    with start_simulator(SimSettings(), workdir=tmp_path / "sim") as sim:
        first = render(screenplay, tmp_path / "out", [sim.url], dialogue_check=False)
        folder = Path(first.folder)
        before = _written(folder)
        again = render(screenplay, tmp_path / "out", [sim.url], dialogue_check=False)
        assert again.prompts == 0
        after = _written(folder)
        rewritten = {name for name in after if after[name] != before.get(name)}
        film = Path(first.film).name
        kept = {film, "contact_sheet.png", *(n for n in after if n.startswith("sequences/"))}
        kept |= {n for n in after if n.endswith((".otio", ".fcpxml", ".edl"))}
        kept |= {n for n in after if n.startswith("review/")}  # thumbnails and charts
        assert kept <= set(after) and not kept & rewritten
        assert {"manifest.json", "report.md"} <= rewritten

        (folder / "contact_sheet.png").unlink()
        edl = next(folder.glob("*.edl"))
        edl.write_text("edited by hand\n")
        render(screenplay, tmp_path / "out", [sim.url], dialogue_check=False)
    assert (folder / "contact_sheet.png").stat().st_size > 0
    assert "edited by hand" not in edl.read_text()
    assert _written(folder)[film] == before[film]


def test_the_sequence_files_contact_sheet_and_thumbnails_are_made_while_the_cut_is(
    tmp_path: Path,
) -> None:
    screenplay = write_screenplay(tmp_path, chain_scenes(chains=2, shots=2))
    options = FilmOptions.of(out=str(tmp_path / "out"), dialogue_check=False)
    with start_simulator(SimSettings(), workdir=tmp_path / "sim") as sim:
        options = options.model_copy(update={"comfyui": (sim.url,)})
        state = asyncio.run(film(screenplay=str(screenplay), options=options, return_state=True))
    result = state.result()
    assert isinstance(result, FilmResult)
    cut_start, cut_end = task_run_times(state.state_details.flow_run_id)["cut-film"]
    assert cut_start is not None and cut_end is not None
    folder = Path(result.folder)
    early = [
        folder / "contact_sheet.png",
        *(folder / "sequences").glob("*.mp4"),
        *(folder / "review").glob("seq*_first.png"),
        *(folder / "review").glob("seq*_last.png"),
    ]
    assert len(early) == 1 + 4 + 4 + 4
    # Made from the sequences alone, they were written before the cut was done.
    assert max(path.stat().st_mtime for path in early) < cut_end
    assert Path(result.film).stat().st_mtime > cut_end  # the film itself is published after
