"""Films rendered with your own workflows, chosen each of the four ways, on the simulator.

One store is shared: the first film renders everything, so a later film with the same
templates (from any folder, the environment or a block) renders nothing, and one with a
changed template renders only the stages that use it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blocks.workflows import WorkflowSet
from sim.embedded import RunningSimulator, start_simulator
from sim.settings import SimSettings
from tasks.comfyui.workflow_sources import WorkflowError
from tasks.schema.outcomes import FilmResult
from tests.film_helpers import film_command, harness_environment, render, write_screenplay

pytestmark = pytest.mark.usefixtures("prefect_api")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
SCENES = [
    {"description": "A pier at dawn.", "duration": 2.0},
    {"description": "Gulls over the water.", "duration": 2.0, "relay_break": True},
]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    workdir = tmp_path_factory.mktemp("sim")
    with start_simulator(SimSettings(gpu_seconds_per_output_second=0), workdir=workdir) as running:
        yield running


@pytest.fixture(scope="module")
def first(
    sim: RunningSimulator, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, FilmResult]:
    """The film rendered once with the examples, named by the flow parameter."""
    root = tmp_path_factory.mktemp("films")
    screenplay = write_screenplay(root, SCENES, score={"theme": "low strings"})
    result = _render(screenplay, root / "by_parameter", sim, root / "store", str(EXAMPLES))
    return screenplay, root / "store", result


def _render(
    screenplay: Path, out: Path, sim: RunningSimulator, store: Path, *workflows: str
) -> FilmResult:
    return render(
        screenplay,
        out,
        [sim.url],
        store=str(store),
        workflows=workflows,
        dialogue_check=False,
    )


def _templates(result: FilmResult) -> dict[str, Any]:
    manifest = json.loads((Path(result.folder) / "manifest.json").read_text())
    return {kind: entry["file"] for kind, entry in manifest["templates"].items()}


def test_the_flow_parameter_renders_a_film_with_the_example_workflows(first: Any) -> None:
    _, _, result = first
    # The chain's keyframe, two sequences (image-to-video from it, then from the carried
    # frame) and one score cue.
    assert result.prompts == 4
    assert Path(result.film).is_file() and result.duration_s == pytest.approx(4.08, abs=0.1)
    assert _templates(result) == {
        "ltx23_relay_i2v": str(EXAMPLES / "relay_i2v.json"),
        "ltx23_relay_t2v": str(EXAMPLES / "relay_t2v.json"),
        "ltx23_relay_i2v_voice": str(EXAMPLES / "relay_i2v_voice.json"),
        "ltx23_relay_t2v_voice": str(EXAMPLES / "relay_t2v_voice.json"),
        "keyframe_t2i": str(EXAMPLES / "keyframe.json"),
        "keyframe_cast": str(EXAMPLES / "keyframe_cast.json"),
        "acestep15_cue": str(EXAMPLES / "cue.json"),
    }


def test_a_chain_without_a_keyframe_starts_from_the_text_to_video_example(
    first: Any, sim: RunningSimulator, tmp_path: Path
) -> None:
    screenplay, store, _ = first
    result = render(
        screenplay,
        tmp_path / "out",
        [sim.url],
        store=str(store),
        workflows=(str(EXAMPLES),),
        dialogue_check=False,
        keyframes="t2v",
    )
    # Both sequences start differently now; the keyframe is not needed and the cue is cached.
    assert result.prompts == 2
    assert Path(result.film).is_file()


def test_the_environment_names_the_same_templates_elsewhere_and_nothing_renders_again(
    first: Any, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screenplay, store, _ = first
    copy = Path(shutil.copytree(EXAMPLES, tmp_path / "studio_workflows"))
    monkeypatch.setenv("REELFLOW_WORKFLOWS", str(copy))
    result = _render(screenplay, tmp_path / "out", sim, store)
    assert result.prompts == 0
    assert _templates(result)["acestep15_cue"] == str(copy / "cue.json")


def test_a_saved_block_holds_the_templates_for_every_worker(
    first: Any, sim: RunningSimulator, tmp_path: Path
) -> None:
    screenplay, store, _ = first
    WorkflowSet.from_folder(EXAMPLES).save("test-studio-workflows", overwrite=True)
    result = _render(screenplay, tmp_path / "out", sim, store, "block:test-studio-workflows")
    assert result.prompts == 0
    assert _templates(result)["ltx23_relay_i2v"] == "block:test-studio-workflows (relay_i2v)"


def test_a_block_that_was_never_saved_is_named_in_one_line(
    first: Any, sim: RunningSimulator, tmp_path: Path
) -> None:
    screenplay, store, _ = first
    with pytest.raises(WorkflowError, match=r"^block:nobody-saved-this: no saved reelflow"):
        _render(screenplay, tmp_path / "out", sim, store, "block:nobody-saved-this")


def test_the_cli_flag_with_a_changed_cue_renders_only_the_cue_again(
    first: Any, sim: RunningSimulator, tmp_path: Path
) -> None:
    screenplay, store, _ = first
    changed = Path(shutil.copytree(EXAMPLES, tmp_path / "tuned"))
    cue = json.loads((changed / "cue.json").read_text())
    cue["1"]["inputs"]["channels"] = 1  # a mono score: a different cue
    (changed / "cue.json").write_text(json.dumps(cue))
    out = tmp_path / "out"
    command = film_command(screenplay, out, [sim.url], "--store", str(store), "--no-dialogue-check")
    command += ["--workflows", str(EXAMPLES), "--workflows", f"cue={changed / 'cue.json'}"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**harness_environment(), "COLUMNS": "200"},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"; 1 prompts,", done.stdout), done.stdout
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text())
    assert manifest["templates"]["acestep15_cue"]["file"] == str(changed / "cue.json")
    assert manifest["templates"]["keyframe_t2i"]["file"] == str(EXAMPLES / "keyframe.json")
