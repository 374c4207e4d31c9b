"""The cast keeps one face and one voice per character across every chain, on the simulator
(which, like LTX, invents a new voice on every render unless it is given a reference)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sim.embedded import RunningSimulator
from tasks.cast.voice import SAME_VOICE_THRESHOLD
from tasks.schema.outcomes import FilmResult
from tests.film_helpers import render, sim_stats, write_screenplay

pytestmark = pytest.mark.usefixtures("prefect_api")

LOOKS = {
    "EDDA": "an old lighthouse keeper with a white braid and a navy sweater",
    "TOMAS": "a young fisherman in a yellow oilskin coat",
    "MARA": "a ferry captain with cropped grey hair",
}
# One speaker per sequence (each its dominant speaker); lines the ASR hears across voices.
SHOTS = [
    ("EDDA", "The lamp must burn all night, every night."),
    ("TOMAS", "The boats are coming home before the storm."),
    ("MARA", "The ferry waits for nobody after midnight."),
    ("EDDA", "Bring the oil up the stairs before dark."),
]
# Voices a studio would record: espeak-ng palette voices the simulator can recognise.
VOICES = {"EDDA": ("en+f3", 55), "TOMAS": ("en+m2", 70), "MARA": ("en+f4", 30)}


def cast_scenes() -> list[dict[str, Any]]:
    return [
        {
            "description": f"{name} speaks on the pier.",
            "duration": 8.0,
            "characters": [name],
            "dialogue": [{"character": name, "line": line}],
            "relay_break": number > 0,
            "tags": ["keyframe"] if number == 2 else [],
        }
        for number, (name, line) in enumerate(SHOTS)
    ]


def write_cast(folder: Path, **per_character: dict[str, str]) -> Path:
    characters = {
        name: {"description": look, **per_character.get(name, {})} for name, look in LOOKS.items()
    }
    return write_screenplay(folder, cast_scenes(), characters=characters)


def final_lines(result: FilmResult) -> list[Any]:
    return [
        line
        for chain in result.chains
        for sequence in chain.sequences
        for line in sequence.attempts[-1].verdict.lines
    ]


def manifest(result: FilmResult) -> dict[str, Any]:
    return json.loads((Path(result.folder) / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_without_voices_each_character_auditions_and_speaks_in_that_voice_everywhere(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    result = render(write_cast(tmp_path), tmp_path / "out", [sim.url])
    lines = final_lines(result)
    assert len(lines) == 4
    assert all(line.voice_similarity >= SAME_VOICE_THRESHOLD for line in lines), [
        (line.character, line.voice_similarity, line.kind) for line in lines
    ]
    record = manifest(result)
    cast = {entry["name"]: entry for entry in record["cast"]}
    assert set(cast) == set(LOOKS)
    for entry in cast.values():
        assert (entry["portrait_origin"], entry["voice_origin"]) == ("generated", "audition")
        assert (Path(result.folder) / entry["portrait"]).is_file()
        assert (Path(result.folder) / entry["voice"]).is_file()
    assert [v["voice_similarity"] >= SAME_VOICE_THRESHOLD for v in record["voices"]] == [True] * 4
    page = Path(result.review).read_text()
    assert "<h2>Cast</h2>" in page and "cast/EDDA.wav" in page and "cast/EDDA.png" in page


def espeak(path: Path, voice: tuple[str, int], text: str) -> str:
    name, pitch = voice
    subprocess.run(
        ["espeak-ng", "-v", name, "-p", str(pitch), "-s", "165", "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return path.name


def test_given_voices_need_no_audition_and_no_render_is_in_the_wrong_voice(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    files = {
        name: {
            "voice": espeak(
                tmp_path / f"{name.lower()}.wav", voice, SHOTS[0][1] + " " + SHOTS[1][1]
            )
        }
        for name, voice in VOICES.items()
    }
    result = render(write_cast(tmp_path, **files), tmp_path / "out", [sim.url])
    attempts = [a for chain in result.chains for s in chain.sequences for a in s.attempts]
    assert all(a.verdict.kind != "wrong_voice" for a in attempts)
    assert all(line.voice_similarity >= SAME_VOICE_THRESHOLD for line in final_lines(result))
    assert {e["voice_origin"] for e in manifest(result)["cast"]} == {"screenplay"}


def test_replacing_one_portrait_rerenders_only_the_chain_whose_keyframe_shows_it(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    from PIL import Image

    Image.new("RGB", (128, 128), (200, 120, 80)).save(tmp_path / "mara.png")
    screenplay = write_cast(tmp_path, MARA={"portrait": "mara.png"})
    first = render(screenplay, tmp_path / "out", [sim.url])
    before = sim_stats(sim.url)["prompts_submitted"]
    Image.new("RGB", (128, 128), (40, 90, 200)).save(tmp_path / "mara.png")
    again = render(screenplay, tmp_path / "out", [sim.url])
    # MARA is on screen only in chain 1's first shot: its keyframe and its two sequences.
    assert sim_stats(sim.url)["prompts_submitted"] - before == again.prompts == 3
    assert first.chains[0].keyframe == again.chains[0].keyframe
    assert first.chains[1].keyframe != again.chains[1].keyframe
