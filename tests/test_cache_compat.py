"""Renders cached by an earlier reelflow stay cached: an upgrade re-renders nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.film_helpers import render

pytestmark = pytest.mark.usefixtures("prefect_api")

STORE = Path(__file__).parent / "fixtures" / "store_v0_1"


def test_a_film_rendered_before_the_restructure_re_runs_with_zero_prompts(
    tmp_path: Path,
) -> None:
    out = tmp_path / "renders"
    for part in ("media", "results"):
        shutil.copytree(STORE / part, out / ".reelflow" / part)
    screenplay = shutil.copy(STORE / "screenplay.json", tmp_path / "screenplay.json")

    result = render(Path(screenplay), out, [])

    assert result.prompts == 0
    assert result.duration_s == pytest.approx(7.08, abs=0.05)
    assert (Path(result.folder) / "Legacy Reel.mp4").is_file()
