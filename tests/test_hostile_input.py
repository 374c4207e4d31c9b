"""Hostile and malformed input: one clear line per problem, never a traceback, never an escape.

Text that is legitimate (quotes, shell and ffmpeg filter syntax, any script) is accepted and
reaches the GPU server verbatim, without passing through a shell or a filter graph unescaped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.errors import ScreenplayError
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.prompts import segment_prompt
from tasks.plan.screenplay_file import load_screenplay
from tests.test_screenplay_errors import good

Edit = Callable[[dict[str, Any]], None]


def write(folder: Path, document: Any = None, *, raw: bytes | None = None) -> Path:
    path = folder / "film.json"
    path.write_bytes(raw if raw is not None else json.dumps(document).encode())
    return path


def refusal(path: Path) -> str:
    """The error text for a refused screenplay, checked to be plain lines without a traceback."""
    with pytest.raises(ScreenplayError) as caught:
        load_screenplay(path)
    text = str(caught.value)
    assert "Traceback" not in text
    for problem in caught.value.problems:
        assert "\n" not in str(problem), f"a problem spans several lines: {problem}"
    return text


def edited(change: Edit) -> dict[str, Any]:
    document = good()
    change(document)
    return document


def scene(document: dict[str, Any]) -> dict[str, Any]:
    return document["scenes"][0]  # type: ignore[no-any-return]


def set_duration(value: Any) -> Edit:
    return lambda d: scene(d).update(duration=value)


def set_line(value: str) -> Edit:
    return lambda d: scene(d)["dialogue"][0].update(line=value)


REFUSED_RAW: dict[str, tuple[bytes, str]] = {
    "an empty file": (b"", "invalid JSON"),
    "a file of blank lines": (b"  \n\n", "invalid JSON"),
    "YAML instead of JSON": (b"title: A\nscenes:\n  - description: x\n", "invalid JSON"),
    "JSON with comments": (b'// draft\n{"title": "A"}', "invalid JSON"),
    "a trailing comma": (b'{"title": "A",}', "invalid JSON"),
    "a NUL byte after the document": (json.dumps(good()).encode() + b"\x00", "invalid JSON"),
    "UTF-16 text": (json.dumps(good()).encode("utf-16"), "not UTF-8"),
    "deeply nested value": (b'{"title": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "too deeply"),
    "deeply nested objects": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "too deeply"),
    "a bare string": (b'"a film about trains"', "not an object"),
    "duplicate keys in a scene": (
        b'{"title":"T","style":"s","setting":"x","scenes":[{"description":"a",'
        b'"duration":5,"duration":6}]}',
        "'duration' appears twice",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_RAW), ids=list(REFUSED_RAW))
def test_a_malformed_file_gets_one_clear_line(tmp_path: Path, case: str) -> None:
    raw, expected = REFUSED_RAW[case]
    assert expected in refusal(write(tmp_path, raw=raw))


REFUSED_FIELDS: dict[str, tuple[Edit, str]] = {
    "NaN duration": (set_duration(float("nan")), "scenes[0].duration"),
    "Infinity duration": (set_duration(float("inf")), "scenes[0].duration"),
    "minus Infinity duration": (set_duration(float("-inf")), "scenes[0].duration"),
    "null duration": (set_duration(None), "scenes[0].duration"),
    "a duration of 1e400": (set_duration(1e400), "scenes[0].duration"),
    "a 5000-character line": (set_line("word " * 1000), "scenes[0].dialogue[0].line"),
    "a 5000-character title": (lambda d: d.update(title="T" * 5000), "title"),
    "a character with an empty description": (
        lambda d: d["characters"].update(MARA=""),
        "characters.MARA",
    ),
    "a character described only by spaces": (
        lambda d: d["characters"].update(MARA="   "),
        "characters.MARA",
    ),
    "an empty tag": (lambda d: scene(d).update(tags=[""]), "scenes[0].tags[0]"),
    "scenes as an object": (lambda d: d.update(scenes={"one": 1}), "scenes"),
    "five thousand scenes": (
        lambda d: d.update(scenes=[{"description": f"s{n}", "duration": 2} for n in range(5000)]),
        "scenes",
    ),
    "zero frames per second": (lambda d: d.update(render={"fps": 0}), "render.fps"),
    "a billion pixels wide": (lambda d: d.update(render={"width": 10**9}), "render.width"),
    "a negative seed": (lambda d: d.update(render={"seed": -1}), "render.seed"),
    "a relay separator in the style": (lambda d: d.update(style="noir | neon"), "style"),
}


@pytest.mark.parametrize("case", list(REFUSED_FIELDS), ids=list(REFUSED_FIELDS))
def test_an_impossible_value_is_refused_naming_its_field(tmp_path: Path, case: str) -> None:
    change, location = REFUSED_FIELDS[case]
    assert f"  - {location}:" in refusal(write(tmp_path, edited(change)))


def source_image(tmp_path: Path, name: str) -> str:
    return refusal(write(tmp_path, edited(lambda d: scene(d).update(source_image=name))))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("C:\\Users\\me\\start.png", "absolute path"),
        ("\\\\server\\share\\start.png", "absolute path"),
        ("images/../../outside.png", "outside the screenplay's folder"),
        ("~/start.png", "does not exist"),
        ("", "is empty"),
    ],
    ids=["windows drive", "windows share", "escape mid-path", "tilde", "empty"],
)
def test_a_source_image_outside_or_nowhere_is_refused(
    tmp_path: Path, name: str, expected: str
) -> None:
    assert expected in source_image(tmp_path, name)


def test_a_symlink_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "start.png").symlink_to("/etc/hostname")
    assert "outside the screenplay's folder" in source_image(tmp_path, "start.png")


def test_a_folder_named_as_source_image_is_refused(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    assert "scenes[0].source_image: 'images'" in source_image(tmp_path, "images")


def test_a_fifo_named_as_source_image_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "start.png")
    started = time.monotonic()
    assert "scenes[0].source_image: 'start.png'" in source_image(tmp_path, "start.png")
    assert time.monotonic() - started < 5, "reading a fifo would hang"


def test_a_nul_byte_in_source_image_is_refused_clearly(tmp_path: Path) -> None:
    assert "NUL character" in source_image(tmp_path, "start\x00.png")


def test_an_unknown_speaker_is_named_in_the_message_itself(tmp_path: Path) -> None:
    document = edited(lambda d: scene(d)["dialogue"][0].update(character="TOMAS"))
    message = refusal(write(tmp_path, document)).splitlines()[1]
    assert "{name" not in message and "names 'TOMAS'" in message


def test_a_100_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "film.json"
    with path.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)
    started = time.monotonic()
    assert "at most 8 MiB" in refusal(path)
    assert time.monotonic() - started < 1


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, raw=b"\xef\xbb\xbf" + json.dumps(good()).encode())
    assert load_screenplay(path).title == "Two at the Station"


LEGITIMATE_TEXT = [
    'She said "don\'t" twice',
    "Pay; then leave && never come back",
    "Run $(whoami) and `id` now",
    "[0:v]drawtext=text='x':x=0,scale=2:2[out]",
    "C:\\temp\\new, and a\\nb: 10:30",
    "Two lines\nof dialogue",
    "Él dijo: «¿dónde está la estación?»",
    "你好\uff0c我们明天见。",
    "مرحبا، إلى اللقاء",
    "See you 🚂 at 5 ✨",
]


@pytest.mark.parametrize("text", LEGITIMATE_TEXT)
def test_legitimate_text_is_kept_verbatim_in_the_prompt(tmp_path: Path, text: str) -> None:
    document = good()
    scene(document).update(description=f"Look: {text}")
    scene(document)["dialogue"][0]["line"] = text
    loaded = load_screenplay(write(tmp_path, document))
    prompt = segment_prompt(loaded.scenes[0])
    assert f"Look: {text}" in prompt
    # The line is one quoted string however many quotes and backslashes it holds: a JSON
    # reader gets it back whole from the prompt.
    said = prompt.split("MARA says ", 1)[1]
    assert json.JSONDecoder(strict=False).raw_decode(said)[0] == text.strip()


def test_unicode_and_symbol_character_names_are_accepted(tmp_path: Path) -> None:
    names = {"ÉLODIE": "a tall woman", "李雷": "a young man", "سارة": "a girl", "🦊": "a fox"}
    document = good() | {"characters": names}
    scene(document).update(characters=["ÉLODIE"])
    scene(document)["dialogue"] = [{"character": name, "line": "Hello."} for name in names]
    loaded = load_screenplay(write(tmp_path, document))
    assert [line.character for line in loaded.scenes[0].dialogue] == list(names)


def test_fifty_lines_in_one_scene_load_and_the_plan_warns(tmp_path: Path) -> None:
    lines = [{"character": "MARA", "line": f"Line number {n}."} for n in range(50)]
    loaded = load_screenplay(write(tmp_path, edited(lambda d: scene(d).update(dialogue=lines))))
    plan = plan_film(loaded, load_defaults())
    assert any("50 spoken lines" in warning.message for warning in plan.warnings)


def test_a_thousand_scenes_plan_in_well_under_a_second(tmp_path: Path) -> None:
    scenes = [
        {
            "description": f"Shot {n}: the platform empties.",
            "duration": 8.0,
            "characters": ["MARA"],
            "dialogue": [{"character": "MARA", "line": "The train is late again today."}],
            "relay_break": n % 3 == 0,
            "tags": ["keyframe"] if n % 9 == 0 else [],
        }
        for n in range(1000)
    ]
    started = time.perf_counter()
    plan = plan_film(load_screenplay(write(tmp_path, good() | {"scenes": scenes})), load_defaults())
    took = time.perf_counter() - started
    print(f"\nload + plan of 1000 scenes: {took * 1000:.0f} ms")
    assert len(plan.sequences) >= 334
    assert took < 5, "a sanity guard only; the measured figure is printed"


CLI_SAMPLES: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"INT. STATION - DAY", "invalid JSON"),
    "a path escape": (
        json.dumps(edited(lambda d: scene(d).update(source_image="../../etc/passwd"))).encode(),
        "outside the screenplay's folder",
    ),
}


def test_the_plan_command_exits_2_with_one_clear_error_for_hostile_files(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "500"}  # rich wraps at the terminal width otherwise
    runs = {}
    for case, (raw, _) in CLI_SAMPLES.items():
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        command = [sys.executable, "-m", "flows.film", "plan", str(write(folder, raw=raw))]
        runs[case] = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    for case, run in runs.items():
        stdout, stderr = (part.decode() for part in run.communicate(timeout=120))
        assert run.returncode == 2, (case, stdout, stderr)
        assert CLI_SAMPLES[case][1] in stderr, (case, stderr)
        assert "Traceback" not in stdout + stderr, case
