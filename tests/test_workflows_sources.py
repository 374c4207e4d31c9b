"""Where a run's workflow templates come from: folders, KIND=FILE, the environment, built in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.cli import _render_parser
from flows.flags import options_from
from tasks.comfyui.workflow import WORKFLOWS_DIR, TemplateKind
from tasks.comfyui.workflow_sources import (
    WorkflowError,
    choose_templates,
    environment_entries,
    layer,
    setting_entries,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
FLAG = "--workflows"


def _chosen(*settings: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """Kind name -> the origin of the template each kind was taken from."""
    layers = [layer(setting_entries(values, FLAG), {}) for values in settings]
    if environ is not None:
        layers.append(layer(environment_entries(environ), {}))
    return {kind.name: workflow.origin for kind, workflow in choose_templates(layers).items()}


def _builtin(kind: TemplateKind) -> str:
    return str((WORKFLOWS_DIR / f"{kind.value}.json").resolve())


def _folder_with(tmp_path: Path, name: str, *kinds: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for kind in kinds:
        shutil.copy(EXAMPLES / f"{kind}.json", folder / f"{kind}.json")
    return folder


def test_nothing_given_uses_the_built_in_templates() -> None:
    assert _chosen([], environ={}) == {kind.name: _builtin(kind) for kind in TemplateKind}


def test_a_folder_gives_the_kinds_it_holds_and_the_rest_stay_built_in(tmp_path: Path) -> None:
    folder = _folder_with(tmp_path, "mine", "cue")
    chosen = _chosen([str(folder)])
    assert chosen["cue"] == str((folder / "cue.json").resolve())
    assert chosen["relay_i2v"] == _builtin(TemplateKind.relay_i2v)


def test_files_named_like_the_built_in_ones_are_found_too(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(EXAMPLES / "keyframe.json", folder / "keyframe_t2i.json")
    assert _chosen([str(folder)])["keyframe"] == str((folder / "keyframe_t2i.json").resolve())


def test_one_kinds_file_beats_a_folder_whatever_the_order(tmp_path: Path) -> None:
    folder = _folder_with(tmp_path, "mine", "cue", "keyframe")
    single = tmp_path / "other_cue.json"
    shutil.copy(EXAMPLES / "cue.json", single)
    for values in ([f"cue={single}", str(folder)], [str(folder), f"cue={single}"]):
        chosen = _chosen(values)
        assert chosen["cue"] == str(single.resolve())
        assert chosen["keyframe"] == str((folder / "keyframe.json").resolve())


def test_the_flag_beats_the_environment_kind_by_kind(tmp_path: Path) -> None:
    flagged = _folder_with(tmp_path, "flagged", "cue")
    studio = _folder_with(tmp_path, "studio", "cue", "keyframe")
    chosen = _chosen([str(flagged)], environ={"REELFLOW_WORKFLOWS": f"{studio}, "})
    assert chosen["cue"] == str((flagged / "cue.json").resolve())
    assert chosen["keyframe"] == str((studio / "keyframe.json").resolve())
    assert chosen["relay_t2v"] == _builtin(TemplateKind.relay_t2v)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("voice=cue.json", "'voice' in 'voice=cue.json' is no workflow kind; use one of"),
        ("no/such/folder", "no/such/folder is not a folder"),
        ("my_cue.json", "say which kind 'my_cue.json' is, e.g. relay_i2v=my_cue.json"),
        ("cue=missing.json", "cue=missing.json: no such file"),
        ("block:", "names no block"),
    ],
)
def test_a_setting_that_names_nothing_usable_says_what_and_where(entry: str, says: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        _chosen([entry])
    assert str(caught.value).startswith(f"{FLAG}: ")
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_folder_without_any_template_lists_the_names_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a workflow")
    with pytest.raises(WorkflowError, match=r"holds none of ltx23_relay_i2v\.json, "):
        _chosen([str(tmp_path)])


def test_a_folder_with_both_names_for_one_kind_is_refused(tmp_path: Path) -> None:
    folder = _folder_with(tmp_path, "mine", "cue")
    shutil.copy(EXAMPLES / "cue.json", folder / "acestep15_cue.json")
    with pytest.raises(
        WorkflowError, match=r"has both acestep15_cue\.json and cue\.json; keep one"
    ):
        _chosen([str(folder)])


def test_an_editor_format_save_is_told_to_use_save_api(tmp_path: Path) -> None:
    path = tmp_path / "cue_ui.json"
    path.write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    with pytest.raises(
        WorkflowError, match=r"not an API-format workflow; export it with 'Save \(API\)'"
    ):
        _chosen([f"cue={path}"])


def test_every_missing_title_of_every_chosen_template_is_listed_at_once(tmp_path: Path) -> None:
    keyframe = json.loads((EXAMPLES / "keyframe.json").read_text())
    del keyframe["3"]["_meta"]  # reelflow.output
    cue = json.loads((EXAMPLES / "cue.json").read_text())
    del cue["1"]["_meta"]  # reelflow.seconds
    (tmp_path / "keyframe.json").write_text(json.dumps(keyframe))
    (tmp_path / "cue.json").write_text(json.dumps(cue))
    with pytest.raises(WorkflowError) as caught:
        _chosen([str(tmp_path)])
    assert str(caught.value).splitlines() == [
        f"{(tmp_path / 'keyframe.json').resolve()}: no node is titled 'reelflow.output' "
        "(the node that saves the image)",
        f"{(tmp_path / 'cue.json').resolve()}: no node is titled 'reelflow.seconds' "
        "(the cue length (EmptyAceStep1.5LatentAudio, or EmptyAudio))",
    ]


def test_the_cli_flag_repeats_and_reaches_the_studio_options(tmp_path: Path) -> None:
    args = _render_parser().parse_args(
        ["film.json", "--workflows", str(EXAMPLES), "--workflows", "cue=my_cue.json"]
    )
    assert options_from(args).studio.workflows == (str(EXAMPLES), "cue=my_cue.json")
