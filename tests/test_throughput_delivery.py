"""An unchanged re-run leaves the delivered folder as it was: no film copied, no contact sheet
drawn, no timeline exported, no thumbnail decoded again; a file someone removed or changed is
written again."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.embedded import start_simulator
from sim.settings import SimSettings
from tests.film_helpers import chain_scenes, render, write_screenplay

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
