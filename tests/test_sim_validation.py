"""The simulator's own validator: apart from reelflow's, and ComfyUI's rules beyond the captures."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

from sim.folders import Folders
from sim.inventory import catalogue
from sim.validation import validate_prompt

SIM = Path(__file__).resolve().parents[1] / "sim"
SAVE = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_simulator_imports_nothing_from_reelflow() -> None:
    files = sorted(SIM.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        foreign = {
            m for m in _imported_modules(path) if m.split(".")[0] in ("tasks", "flows", "tests")
        }
        assert not foreign, f"{path.relative_to(SIM.parent)} imports {sorted(foreign)}"


def _empty_image(**inputs: Any) -> dict[str, Any]:
    values = {"width": 32, "height": 32, "batch_size": 1, "color": 0} | inputs
    return {"1": {"class_type": "EmptyImage", "inputs": values}, "2": copy.deepcopy(SAVE)}


def test_converted_values_are_written_back_into_the_prompt() -> None:
    prompt = _empty_image(width="48", height=40.9, color={"__value__": 7})
    verdict = validate_prompt(prompt, catalogue())
    assert verdict.ok and verdict.outputs == ["2"]
    assert prompt["1"]["inputs"] == {"width": 48, "height": 40, "batch_size": 1, "color": 7}


def test_a_wrapped_list_is_checked_as_a_value_not_as_a_link() -> None:
    prompt = _empty_image()
    prompt["2"]["inputs"]["filename_prefix"] = {"__value__": ["a", "b"]}
    verdict = validate_prompt(prompt, catalogue())
    assert verdict.ok
    assert prompt["2"]["inputs"]["filename_prefix"] == "['a', 'b']"


def test_a_node_linked_to_itself_is_a_cycle_of_one() -> None:
    prompt = {
        "1": {
            "class_type": "ImageInvert",
            "inputs": {"image": ["1", 0]},
        },
        "2": copy.deepcopy(SAVE),
    }
    verdict = validate_prompt(prompt, catalogue())
    assert not verdict.ok
    (error,) = verdict.node_errors["1"]["errors"]
    assert error["type"] == "dependency_cycle"
    assert error["details"] == "1 (ImageInvert) -> 1 (ImageInvert)"
    assert error["extra_info"]["cycle_nodes"] == ["1"]
    assert verdict.node_errors["1"]["dependent_outputs"] == ["2"]


def test_a_loader_checks_its_file_not_its_option_list(tmp_path: Path) -> None:
    folders = Folders.beside(tmp_path / "output", tmp_path / "input")
    (folders.output / "renders").mkdir(parents=True)
    (folders.output / "renders" / "key_00001_.png").write_bytes(b"png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "renders/key_00001_.png [output]"}},
        "2": copy.deepcopy(SAVE),
    }
    exists = folders.resolve
    assert validate_prompt(prompt, catalogue(), file_exists=lambda n: exists(n) is not None).ok
    prompt["1"]["inputs"]["image"] = "renders/key_00001_.png [temp]"
    verdict = validate_prompt(prompt, catalogue(), file_exists=lambda n: exists(n) is not None)
    assert verdict.node_errors["1"]["errors"][0]["details"] == (
        "image - Invalid image file: renders/key_00001_.png [temp]"
    )


def test_annotations_pick_the_folder_and_stay_inside_it(tmp_path: Path) -> None:
    folders = Folders.beside(tmp_path / "output", tmp_path / "input")
    for folder in (folders.input, folders.output, folders.temp):
        folder.mkdir(parents=True)
        (folder / "a.png").write_text(folder.name)
    assert folders.resolve("a.png") == (folders.input / "a.png").resolve()
    assert folders.resolve("a.png [input]") == (folders.input / "a.png").resolve()
    assert folders.resolve("a.png [output]") == (folders.output / "a.png").resolve()
    assert folders.resolve("a.png [temp]") == (folders.temp / "a.png").resolve()
    assert folders.resolve("../output/a.png") is None
    assert folders.resolve("missing.png [output]") is None
