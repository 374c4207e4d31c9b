"""The dialogue check closes the loop on real audio, and loudness comes out even."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.embedded import start_simulator
from sim.settings import Faults, SimSettings
from tasks import media
from tests.film_helpers import render, write_screenplay

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_a_cut_line_is_rerendered_longer_word_salad_is_muted_and_levels_even_out(
    tmp_path: Path,
) -> None:
    scenes = [
        {
            "description": "Ana stands on the pier at dusk.",
            "duration": 2.0,
            "characters": ["ANA"],
            "dialogue": [
                {"character": "ANA", "line": "The harbour lights are going out one by one tonight."}
            ],
        },
        {"description": "Gulls wheel over an empty quay.", "duration": 3.0, "relay_break": True},
        {
            "description": "Bo runs along the quay. After speaking he waves.",
            "duration": 6.0,
            "characters": ["BO"],
            "relay_break": True,
            "dialogue": [{"character": "BO", "line": "Wait for me, I am coming!"}],
        },
    ]
    faults = Faults(word_salad_in_silent_segments=True)
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=0, faults=faults), workdir=tmp_path / "sim"
    ) as sim:
        result = render(write_screenplay(tmp_path, scenes), tmp_path / "out", [sim.url])
    by_index = {r.sequence.index: r for o in result.chains for r in o.sequences}

    cut = by_index[0]
    assert [a.verdict.kind for a in cut.attempts][:1] == ["truncated"]
    assert cut.attempts[-1].verdict.kind == "ok"
    assert cut.attempts[-1].frames > cut.attempts[0].frames
    assert cut.attempts[-1].seed != cut.attempts[0].seed

    salad = by_index[1]
    assert salad.attempts[-1].verdict.kind == "word_salad"
    assert salad.finished.edits == ("muted the whole sequence",)
    assert salad.finished.after.integrated_lufs < -50

    spoken = [
        by_index[0].finished.after.integrated_lufs,
        by_index[2].finished.after.integrated_lufs,
    ]
    assert max(spoken) - min(spoken) < 1.0
    film = media.probe(Path(result.film))
    assert film.audio is not None and film.audio.rate == 48000
    assert abs(film.duration - sum(r.finished.seconds for r in by_index.values())) < 0.05
