"""Hostile servers and hostile text in a whole film: output names that try to escape the
download folder are refused, and shell or filter syntax in dialogue renders intact."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from tasks import media
from tasks.comfyui.client import ComfyUIClient
from tasks.comfyui.errors import OutputInvalid
from tasks.comfyui.protocol import OutputFile
from tasks.plan.prompts import segment_prompt
from tasks.plan.screenplay_file import load_screenplay
from tests.fault_helpers import ComfyProxy, ProxyTricks
from tests.film_helpers import instant_simulator, render, write_screenplay

REPO = Path(__file__).resolve().parents[1]


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
