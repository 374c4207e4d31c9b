"""Hostile and malformed input: one clear line per problem, never a traceback, never an escape.

Text that is legitimate (quotes, shell and ffmpeg filter syntax, any script) is accepted and
reaches the GPU server verbatim, without passing through a shell or a filter graph unescaped.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from tasks import media
from tasks.comfyui.client import ComfyUIClient
from tasks.comfyui.errors import OutputInvalid
from tasks.comfyui.protocol import OutputFile
from tasks.errors import ScreenplayError
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.prompts import segment_prompt
from tasks.plan.screenplay_file import load_screenplay
from tests.fault_helpers import ComfyProxy, ProxyTricks
from tests.film_helpers import instant_simulator, render, write_screenplay
from tests.test_screenplay_errors import good

REPO = Path(__file__).resolve().parents[1]
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


@pytest.mark.parametrize(
    ("filename", "subfolder"),
    [
        ("../../escape.mp4", ""),
        ("/tmp/escape.mp4", ""),
        ("C:\\escape.mp4", ""),
        ("..\\..\\escape.mp4", ""),
        ("escape.mp4", "../../.."),
        ("escape.mp4", "/etc"),
        ("", ""),
    ],
    ids=["dotdot", "absolute", "drive", "backslashes", "subfolder", "absolute-sub", "empty"],
)
def test_a_server_output_name_that_escapes_the_download_folder_is_refused(
    tmp_path: Path, filename: str, subfolder: str
) -> None:
    async def fetch() -> Path:
        async with ComfyUIClient("http://127.0.0.1:9") as client:
            output = OutputFile(filename=filename, subfolder=subfolder, type="output")
            return await client.download(output, tmp_path / "downloads")

    with pytest.raises(OutputInvalid, match="unsafe"):
        asyncio.run(fetch())
    assert not any(tmp_path.rglob("escape.mp4"))


CANARY = "pwned"


def hostile_film(tmp_path: Path) -> Path:
    canary = tmp_path / CANARY
    scenes = [
        {
            "description": f"Rain on glass; [0:v]drawtext=text='x':y=1, a\\b $(touch {canary}) "
            f"`touch {canary}` «ÉLAN» 雨",
            "duration": 4.0,
            "characters": ["ANA"],
            "dialogue": [
                {"character": "ANA", "line": f"Wait; it's 5:30, [0:v] $(touch {canary}) now."}
            ],
        }
    ]
    return write_screenplay(tmp_path, scenes, title=f"../../Rain; $(touch {canary})")


@pytest.mark.usefixtures("prefect_api")
def test_a_film_full_of_shell_and_filter_syntax_renders_with_its_text_intact(
    tmp_path: Path,
) -> None:
    screenplay = hostile_film(tmp_path)
    written = load_screenplay(screenplay)
    expected = segment_prompt(written.scenes[0])
    out = tmp_path / "out"
    with instant_simulator(tmp_path) as sim:
        result = render(screenplay, out, [sim.url], keyframes="t2v")
        history = httpx.get(f"{sim.url}/history", timeout=10).json()
    folder = Path(result.folder).resolve()
    assert folder.is_relative_to(out.resolve()), "the title chose a folder outside OUT"
    assert not (tmp_path / CANARY).exists(), "text from the screenplay reached a shell"
    sent = json.dumps([entry["prompt"][2] for entry in history.values()], ensure_ascii=False)
    assert json.dumps(expected, ensure_ascii=False)[1:-1] in sent
    video = sorted((folder / "sequences").glob("*_SEQ0010_v*.mp4"))[0]
    media.verify_decodes(video)
    # The line is spoken: well above the simulator's room tone (-66 dBFS) while it plays.
    wav = tmp_path / "line.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), str(wav)], check=True)
    audio, rate = soundfile.read(wav)
    speech = audio[int(0.3 * rate) : int(2.0 * rate)]
    assert 20 * np.log10(np.sqrt(np.mean(speech**2)) + 1e-12) > -45


@pytest.mark.usefixtures("prefect_api")
def test_a_history_entry_naming_a_file_outside_the_output_folder_stops_the_chain(
    tmp_path: Path,
) -> None:
    scenes = [{"description": "Rain on glass.", "duration": 2.0}]
    tricks = ProxyTricks(filename_rewrite=lambda name: f"../../../{name}")
    with instant_simulator(tmp_path) as sim:
        proxy = ComfyProxy(sim.url, tricks)
        try:
            with pytest.raises(Exception, match="unsafe filename") as failed:
                render(write_screenplay(tmp_path, scenes), tmp_path / "out", [proxy.url])
        finally:
            proxy.close()
    assert "Traceback" not in str(failed.value)
    assert not [p for p in tmp_path.rglob("*.png") if "sim" not in p.parts]


HOSTILE_LINES = [
    "[/bold] Hold the [drop] line.",
    'She said "stop" and left \\ at once.',
    "Only 50% of us made it %s %d.",
    "مرحبا يا صديقي",
    "See you 🚂 at five ✨",
]


@pytest.mark.usefixtures("prefect_api")
def test_hostile_dialogue_finishes_a_film_with_a_clean_end_report(tmp_path: Path) -> None:
    """Markup brackets, quotes, backslashes, percent signs, right-to-left text and emoji in
    dialogue: the film finishes and the end report prints each line as written."""
    from tests.film_helpers import film_command, harness_environment

    scenes = [
        {
            "description": f"Shot {n}: rain on the window.",
            "duration": 4.0,
            "characters": ["ANA"],
            "dialogue": [{"character": "ANA", "line": line}],
            "relay_break": n > 0,
        }
        for n, line in enumerate(HOSTILE_LINES)
    ]
    screenplay = write_screenplay(tmp_path, scenes)
    with instant_simulator(tmp_path) as sim:
        run = subprocess.run(
            film_command(screenplay, tmp_path, [sim.url], "--keyframes", "t2v"),
            env={**harness_environment(), "COLUMNS": "400"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output and "MarkupError" not in output, output
    for line in HOSTILE_LINES:
        assert line in run.stdout, f"{line!r} is missing from the end report"
    done = [row for row in run.stdout.splitlines() if row.startswith("done: ")]
    assert done, run.stdout
    media.verify_decodes(next((tmp_path / "test_reel").glob("*.mp4")))
