"""A cast in the screenplay: portraits and voices given as files get one clear line each when
they are wrong, and old screenplays (a description per character) keep working."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tasks.plan.screenplay_file import load_screenplay
from tests.test_screenplay_errors import good, only


def cast_document(**character: Any) -> dict[str, Any]:
    document = good()
    document["characters"] = {
        "MARA": {"description": "a woman in her forties with cropped grey hair", **character}
    }
    return document


def espeak(path: Path, text: str) -> Path:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


def test_a_description_alone_is_a_character_without_a_cast(tmp_path: Path) -> None:
    path = tmp_path / "film.json"
    path.write_text(json.dumps(good()))
    screenplay = load_screenplay(path)
    assert screenplay.description_of("MARA").startswith("a woman")
    assert screenplay.cast == {}


def test_a_character_object_with_its_portrait_and_voice_is_cast(tmp_path: Path) -> None:
    Image.new("RGB", (64, 64), "tan").save(tmp_path / "mara.png")
    espeak(tmp_path / "mara.wav", "You missed the last train, and the one before that.")
    path = tmp_path / "film.json"
    path.write_text(json.dumps(cast_document(portrait="mara.png", voice="mara.wav")))
    mara = load_screenplay(path).cast["MARA"]
    assert (mara.portrait, mara.voice) == ("mara.png", "mara.wav")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("portrait", "/etc/passwd", "is an absolute path"),
        ("portrait", "../../face.png", "points outside the screenplay's folder"),
        ("portrait", "cast/missing.png", "does not exist"),
        ("portrait", "notes.txt", "is not a readable image"),
        ("portrait", "", "is empty"),
        ("voice", "C:\\\\voices\\\\mara.wav", "is an absolute path"),
        ("voice", "../mara.wav", "points outside the screenplay's folder"),
        ("voice", "voices/none.wav", "does not exist"),
        ("voice", "notes.txt", "is not a readable audio file"),
        ("voice", "short.wav", "s long"),
        ("voice", "long.wav", "s long"),
        ("voice", "folder", "is not a regular file"),
    ],
)
def test_a_bad_portrait_or_voice_gets_one_clear_line(
    tmp_path: Path, field: str, value: str, expected: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a picture, not a sound")
    (tmp_path / "folder").mkdir()
    espeak(tmp_path / "short.wav", "Hi.")
    espeak(tmp_path / "long.wav", " ".join(["The train is late again tonight."] * 10))
    message = only(tmp_path, cast_document(**{field: value}))
    assert message.startswith(f"characters.MARA.{field}:"), message
    assert expected in message
    assert "\n" not in message
