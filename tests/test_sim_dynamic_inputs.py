"""Growable (v3 dynamic) inputs: both validators accept what the real server accepts.

Every node class in the captured ``/object_info`` that declares an autogrow group, a
dynamic combo or a match-type input is exercised in its prompt form (``values.a``,
``images.image0``, ``resize_type.width``), built here from the declaration alone.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sim import validation as sim_validation
from sim.inventory import catalogue, default_models, live_object_info
from tasks.comfyui.validate import validate_prompt

DYNAMIC_TYPES = ("COMFY_AUTOGROW_V3", "COMFY_DYNAMICCOMBO_V3", "COMFY_MATCHTYPE_V3")
WIDGETS = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
Answer = tuple[int, dict[str, Any]]


def _fill_empty_lists(value: Any) -> None:
    """Give every empty option list one file, as on a server with one model of each kind."""
    if isinstance(value, dict):
        if value.get("options") == []:
            value["options"] = ["installed.safetensors"]
        for inner in value.values():
            _fill_empty_lists(inner)
    elif isinstance(value, list):
        if value[:1] == [[]]:
            value[0] = ["installed.safetensors"]
        for inner in value:
            _fill_empty_lists(inner)


@cache
def _info() -> dict[str, Any]:
    info = copy.deepcopy(live_object_info(default_models(), Path("/nonexistent-upload-folder")))
    _fill_empty_lists(info)
    return info


def _dynamic_kinds(class_info: Mapping[str, Any]) -> set[str]:
    kinds = set()
    for category in ("required", "optional"):
        for spec in (class_info["input"].get(category) or {}).values():
            if isinstance(spec[0], str) and spec[0] in DYNAMIC_TYPES:
                kinds.add(spec[0])
    return kinds


DYNAMIC_CLASSES = sorted(n for n, c in catalogue().items() if _dynamic_kinds(c))
AUTOGROW_CLASSES = [n for n in DYNAMIC_CLASSES if "COMFY_AUTOGROW_V3" in _dynamic_kinds(_info()[n])]


class _Builder:
    """Builds a prompt around one node, filling every required input from its declaration."""

    def __init__(self, info: Mapping[str, Any]) -> None:
        self.info = info
        self.prompt: dict[str, Any] = {}

    def add(self, class_type: str, depth: int = 0) -> str:
        node_id = str(len(self.prompt) + 1)
        inputs: dict[str, Any] = {}
        self.prompt[node_id] = {"class_type": class_type, "inputs": inputs}
        self._fill(self.info[class_type]["input"], "", inputs, depth)
        return node_id

    def _fill(self, sections: Mapping[str, Any], prefix: str, inputs: dict[str, Any], depth: int):
        for category in ("required", "optional"):
            for name, spec in (sections.get(category) or {}).items():
                kind = spec[0]
                options = spec[1] if len(spec) > 1 else {}
                if kind == "COMFY_AUTOGROW_V3":
                    self._grow(options["template"], prefix + name, inputs, depth)
                elif category == "optional":
                    # Only a dynamic combo option's own optional inputs, to exercise them.
                    if prefix:
                        with contextlib.suppress(LookupError):
                            inputs[prefix + name] = self._value(kind, options, depth)
                elif kind == "COMFY_DYNAMICCOMBO_V3":
                    # The first option that brings inputs of its own, to exercise them.
                    brings = [o for o in options["options"] if any(o["inputs"].values())]
                    chosen = brings[0] if brings else None
                    chosen = chosen or options["options"][0]
                    inputs[prefix + name] = chosen["key"]
                    self._fill(chosen["inputs"], f"{prefix}{name}.", inputs, depth)
                else:
                    inputs[prefix + name] = self._value(kind, options, depth)

    def _grow(self, template: Mapping[str, Any], group: str, inputs: dict[str, Any], depth: int):
        section = template["input"].get("required") or template["input"]["optional"]
        kind, *rest = next(iter(section.values()))
        options = rest[0] if rest else {}
        names = template.get("names") or [
            f"{template['prefix']}{i}" for i in range(template["max"])
        ]
        wanted = max(int(template.get("min", 0)), 1)
        try:
            for slot in names[:wanted]:
                inputs[f"{group}.{slot}"] = self._value(kind, options, depth)
        except LookupError:
            if int(template.get("min", 0)) > 0:
                raise  # an optional group with no possible source stays empty

    def _value(self, kind: Any, options: Mapping[str, Any], depth: int) -> Any:
        if isinstance(kind, list) or kind == "COMBO":
            choices = kind if isinstance(kind, list) else options["options"]
            if not choices:
                raise LookupError("an empty option list (no model file of that kind)")
            return choices[0]
        if options.get("forceInput"):
            return self._link(kind, depth)
        if "default" in options:  # any widget (COLOR, CURVE...) offers its default
            default = options["default"]
            # A list value travels wrapped, or it would read as a link.
            return {"__value__": default} if isinstance(default, list) else default
        if kind in WIDGETS:
            return {"INT": 0, "FLOAT": 0.0, "BOOLEAN": False}.get(kind, "x")
        if kind == "COMFY_MATCHTYPE_V3":
            kind = options["template"]["allowed_types"]
        return self._link(kind, depth)

    def _link(self, kind: str, depth: int) -> list[Any]:
        wanted = {t.strip() for t in kind.split(",")}
        if depth > 3:
            raise LookupError(kind)
        for source in _sources():
            outputs = self.info[source]["output"]
            index = next((i for i, o in enumerate(outputs) if "*" in wanted or o in wanted), None)
            if index is None:
                continue
            before = set(self.prompt)
            try:
                return [self.add(source, depth + 1), index]
            except LookupError:
                # That source needs something unavailable: drop what it added, try the next.
                for added in set(self.prompt) - before:
                    del self.prompt[added]
        raise LookupError(kind)


@cache
def _sources() -> list[str]:
    """Node classes to take linked values from: those with fewest required links first."""

    def links(name: str) -> int:
        required = _info()[name]["input"].get("required") or {}
        return sum(
            1 for spec in required.values() if not (isinstance(spec[0], list) or spec[0] in WIDGETS)
        )

    usable = [n for n, c in _info().items() if c["output"] and not c.get("api_node")]
    return sorted(usable, key=lambda n: (bool(_dynamic_kinds(_info()[n])), links(n), n))


def _prompt_around(class_type: str) -> tuple[dict[str, Any], str]:
    builder = _Builder(_info())
    node = builder.add(class_type)
    if not _info()[class_type].get("output_node"):
        preview = str(len(builder.prompt) + 1)
        builder.prompt[preview] = {"class_type": "PreviewAny", "inputs": {"source": [node, 0]}}
    return builder.prompt, node


def _client(prompt: dict[str, Any]) -> Answer:
    verdict = validate_prompt(prompt, _info(), input_file_exists=lambda _c, _n: True)
    body = {"node_errors": verdict.node_errors} if verdict.ok else verdict.rejection_body()
    return verdict.status_code, body


def _sim(prompt: dict[str, Any]) -> Answer:
    verdict = sim_validation.validate_prompt(
        copy.deepcopy(prompt), _info(), file_exists=lambda _n: True
    )
    return (200, {"node_errors": verdict.node_errors}) if verdict.ok else (400, verdict.body())


VALIDATORS: dict[str, Callable[[dict[str, Any]], Answer]] = {"client": _client, "sim": _sim}


def _without_tracebacks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_tracebacks(v) for k, v in value.items() if k != "traceback"}
    if isinstance(value, list):
        return [_without_tracebacks(v) for v in value]
    return value


def test_the_catalogue_declares_the_three_dynamic_forms() -> None:
    assert len(DYNAMIC_CLASSES) == 27
    assert len(AUTOGROW_CLASSES) == 13
    assert {"ComfyMathExpression", "BatchImagesNode", "ResizeImageMaskNode"} <= set(DYNAMIC_CLASSES)


@pytest.mark.parametrize("validator", sorted(VALIDATORS))
@pytest.mark.parametrize("class_type", DYNAMIC_CLASSES)
def test_unfolded_inputs_are_accepted(class_type: str, validator: str) -> None:
    prompt, node = _prompt_around(class_type)
    assert any("." in name for name in prompt[node]["inputs"]) or class_type == "ComfySwitchNode"
    status, body = VALIDATORS[validator](prompt)
    assert (status, body) == (200, {"node_errors": {}}), body


def _groups(class_type: str) -> list[tuple[str, int, list[str]]]:
    """``(group, min, slot names)`` of each autogrow group the class declares."""
    found = []
    for category in ("required", "optional"):
        for name, spec in (_info()[class_type]["input"].get(category) or {}).items():
            if spec[0] != "COMFY_AUTOGROW_V3":
                continue
            template = spec[1]["template"]
            names = template.get("names") or [
                f"{template['prefix']}{i}" for i in range(template["max"])
            ]
            least = template.get("min", 0) if template["input"].get("required") else 0
            found.append((name, least, names))
    return found


@pytest.mark.parametrize("class_type", AUTOGROW_CLASSES)
def test_an_autogrow_group_needs_its_min_slots_and_no_more(class_type: str) -> None:
    prompt, node = _prompt_around(class_type)
    inputs = prompt[node]["inputs"]
    expected_missing = []
    for group, least, names in _groups(class_type):
        for slot in names:
            inputs.pop(f"{group}.{slot}", None)
        # The folded group name is no input: sending it changes nothing.
        inputs[group] = "not an input"
        expected_missing += [(slot, f"{group}.{slot}") for slot in names[:least]]
    answers = {name: _without_tracebacks(check(prompt)) for name, check in VALIDATORS.items()}
    assert answers["client"] == answers["sim"]
    status, body = answers["sim"]
    if not expected_missing:
        assert (status, body) == (200, {"node_errors": {}})
        return
    assert status == 400
    errors = body["node_errors"][node]["errors"]
    missing = [
        (e["details"], e["extra_info"]["input_name"])
        for e in errors
        if e["type"] == "required_input_missing"
    ]
    assert sorted(missing) == sorted(expected_missing)


@pytest.mark.parametrize("validator", sorted(VALIDATORS))
def test_a_dynamic_combo_option_brings_its_own_required_inputs(validator: str) -> None:
    prompt, node = _prompt_around("ResizeImageMaskNode")
    inputs = prompt[node]["inputs"]
    assert inputs["resize_type"] == "scale dimensions"
    del inputs["resize_type.height"]
    status, body = VALIDATORS[validator](prompt)
    assert status == 400
    (error,) = body["node_errors"][node]["errors"]
    assert (error["details"], error["extra_info"]) == (
        "height",
        {"input_name": "resize_type.height"},
    )
    # Another option asks for other inputs; the first option's are then not inputs at all.
    inputs["resize_type"] = "scale by multiplier"
    inputs["resize_type.multiplier"] = 9.5
    status, body = VALIDATORS[validator](prompt)
    assert status == 400
    (error,) = body["node_errors"][node]["errors"]
    assert error["type"] == "value_bigger_than_max"
    assert error["extra_info"]["input_name"] == "resize_type.multiplier"


@pytest.mark.parametrize("validator", sorted(VALIDATORS))
def test_math_expression_and_batch_images_from_the_issue(validator: str) -> None:
    prompt = {
        "1": {"class_type": "PrimitiveFloat", "inputs": {"value": 2.5}},
        "2": {"class_type": "PrimitiveInt", "inputs": {"value": 4}},
        "3": {
            "class_type": "ComfyMathExpression",
            "inputs": {"expression": "a * b", "values.a": ["1", 0], "values.b": ["2", 0]},
        },
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
        "5": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        },
        "6": {
            "class_type": "BatchImagesNode",
            "inputs": {"images.image0": ["5", 0], "images.image1": ["5", 0]},
        },
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "b"}},
    }
    assert VALIDATORS[validator](prompt) == (200, {"node_errors": {}})
    prompt["6"]["inputs"]["images.image1"] = ["1", 0]  # a FLOAT is no IMAGE
    status, body = VALIDATORS[validator](prompt)
    # The math branch still runs: 200, with the batch branch's error reported.
    assert status == 200 and list(body["node_errors"]) == ["6"]
    (error,) = body["node_errors"]["6"]["errors"]
    assert (error["type"], error["extra_info"]["input_name"]) == (
        "return_type_mismatch",
        "images.image1",
    )
    assert body["node_errors"]["6"]["dependent_outputs"] == ["7"]
