"""Validate an API-format ComfyUI prompt against a server's ``/object_info``.

This reproduces ComfyUI 0.27.0's own validator (error types, messages, ``extra_info``
and the ``node_errors`` layout) as pure functions over dicts, so that reelflow's
preflight can reject a template before any GPU time is spent. The simulator has its own,
separately written validator (``sim/validation.py``); the tests hold both to the captures.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.comfyui.dynamic_inputs import unfolded_inputs

InputFileExists = Callable[[str, str], bool]
"""``(class_type, file_name) -> bool``: does a loader node's input file exist?"""

# Loader nodes whose own VALIDATE_INPUTS checks the file on disk instead of the combo list.
FILE_CHECKED_INPUTS: dict[str, tuple[str, str]] = {
    "LoadImage": ("image", "Invalid image file"),
    "LoadImageMask": ("image", "Invalid image file"),
    "LoadImageOutput": ("image", "Invalid image file"),
    "LoadVideo": ("file", "Invalid video file"),
    "LoadAudio": ("audio", "Invalid audio file"),
}

_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Error = dict[str, Any]
_Verdict = tuple[bool, list[Error]]


@dataclass(frozen=True)
class PromptValidation:
    """The outcome of validating one prompt, shaped like ComfyUI's answer."""

    error: Error | None
    node_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs_to_execute: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when at least one output node validated (it will run)."""
        return self.error is None

    @property
    def status_code(self) -> int:
        """The HTTP status ComfyUI answers ``POST /prompt`` with."""
        return 200 if self.ok else 400

    def rejection_body(self) -> dict[str, Any]:
        """The 400 body ComfyUI sends for a rejected prompt."""
        return {"error": self.error, "node_errors": self.node_errors}


def _error(kind: str, message: str, details: str, extra: dict[str, Any] | None = None) -> Error:
    return {"type": kind, "message": message, "details": details, "extra_info": extra or {}}


def check_submission(body: Mapping[str, Any]) -> Error | None:
    """Request-level checks ComfyUI makes before validating the graph (no prompt, bad id)."""
    if "prompt" not in body:
        return _error("no_prompt", "No prompt provided", "No prompt provided")
    prompt_id = body.get("prompt_id")
    if prompt_id is not None and not _CANONICAL_UUID.match(str(prompt_id)):
        return _error(
            "invalid_prompt_id",
            "prompt_id must be a valid UUID",
            "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
            "omit it to let the server generate one",
        )
    return None


def input_spec(class_info: Mapping[str, Any], name: str) -> tuple[str, list[Any]] | None:
    """``(category, [type, options])`` of one declared input, or None if undeclared."""
    inputs = class_info.get("input", {})
    for category in ("required", "optional"):
        spec = inputs.get(category, {}).get(name)
        if spec is not None:
            return category, [spec[0], spec[1] if len(spec) > 1 else {}]
    return None


def combo_options(spec: list[Any]) -> list[Any] | None:
    """The allowed values of a COMBO input (old list form or new ``COMBO`` form)."""
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO":
        return list(spec[1].get("options", []))
    return None


def _types_compatible(received: Any, expected: Any) -> bool:
    if received == expected or "*" in (received, expected):
        return True
    if _is_template_type(received) or _is_template_type(expected):
        # v3 "match type" and dynamic sockets take their concrete type at run time.
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        # A COMBO output may feed a list-typed input; ComfyUI lets these through.
        return True
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return bool(got & want)


def _is_template_type(kind: Any) -> bool:
    return isinstance(kind, str) and kind.startswith("COMFY_") and kind.endswith("_V3")


def _convert(kind: Any, value: Any) -> Any:
    if kind == "INT":
        return int(value)
    if kind == "FLOAT":
        return float(value)
    if kind == "STRING":
        return str(value)
    if kind == "BOOLEAN":
        return bool(value)
    return value


class _Validator:
    """One validation pass; ``validated`` caches each node's verdict like ComfyUI does."""

    def __init__(
        self,
        prompt: Mapping[str, Any],
        object_info: Mapping[str, Any],
        input_file_exists: InputFileExists | None,
    ) -> None:
        self.prompt = prompt
        self.object_info = object_info
        self.input_file_exists = input_file_exists
        self.validated: dict[str, _Verdict] = {}

    def node(self, node_id: str, visiting: list[str] | None = None) -> _Verdict:
        visiting = [] if visiting is None else visiting
        if node_id in self.validated:
            return self.validated[node_id]
        if node_id in visiting:
            return self._cycle(node_id, visiting)
        visiting.append(node_id)
        try:
            node = self.prompt[node_id]
            inputs = node["inputs"]
            class_info = self.object_info[node["class_type"]]
            errors: list[Error] = []
            valid = True
            file_input = FILE_CHECKED_INPUTS.get(node["class_type"], ("", ""))[0]
            for name, category, spec in unfolded_inputs(class_info, inputs):
                if name not in inputs:
                    if category == "required":
                        # A dotted slot is reported by its own name (``image0``).
                        errors.append(
                            _error(
                                "required_input_missing",
                                "Required input is missing",
                                name.rsplit(".", 1)[-1],
                                {"input_name": name},
                            )
                        )
                    continue
                value = inputs[name]
                if isinstance(value, list):
                    linked_ok = self._linked(name, spec, value, errors, visiting)
                    valid = valid and linked_ok
                    continue
                error = self._widget(name, spec, value, skip_combo=name == file_input)
                if error is not None:
                    errors.append(error)
            errors += self._file_check(node["class_type"], inputs)
            if node_id in self.validated:  # a cycle found below already recorded this node
                return self.validated[node_id]
            verdict: _Verdict = (not errors and valid, errors)
            self.validated[node_id] = verdict
            return verdict
        finally:
            visiting.pop()

    def _cycle(self, node_id: str, visiting: list[str]) -> _Verdict:
        path = [*visiting[visiting.index(node_id) :], node_id]
        members = list(dict.fromkeys(path))
        described = " -> ".join(f"{n} ({self.prompt[n]['class_type']})" for n in path)
        for member in members:
            extra = {"node_id": member, "cycle_nodes": members}
            error = _error("dependency_cycle", "Dependency cycle detected", described, extra)
            self.validated[member] = (False, [error])
        return self.validated[node_id]

    def _linked(
        self, name: str, spec: list[Any], link: list[Any], errors: list[Error], visiting: list[str]
    ) -> bool:
        if len(link) != 2:
            errors.append(
                _error(
                    "bad_linked_input",
                    "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                    name,
                    {"input_name": name, "input_config": spec, "received_value": link},
                )
            )
            return True
        source_id, slot = link
        # Deliberately unguarded: a dangling link raises KeyError like ComfyUI's validator.
        source_class = self.prompt[source_id]["class_type"]
        received = self.object_info[source_class]["output"][slot]
        if not _types_compatible(received, spec[0]):
            errors.append(
                _error(
                    "return_type_mismatch",
                    "Return type mismatch between linked nodes",
                    f"{name}, received_type({received}) mismatch input_type({spec[0]})",
                    {
                        "input_name": name,
                        "input_config": spec,
                        "received_type": received,
                        "linked_node": link,
                    },
                )
            )
            return True
        try:
            return self.node(source_id, visiting)[0]
        except Exception as exc:
            extra = {
                "input_name": name,
                "input_config": spec,
                "exception_message": str(exc),
                "exception_type": type(exc).__name__,
                "traceback": traceback.format_tb(exc.__traceback__),
                "linked_node": link,
            }
            message = "Exception when validating inner node"
            error = _error("exception_during_inner_validation", message, str(exc), extra)
            self.validated[source_id] = (False, [error])
            return False

    def _widget(self, name: str, spec: list[Any], value: Any, *, skip_combo: bool) -> Error | None:
        if isinstance(value, dict) and "__value__" in value:
            value = value["__value__"]
        kind, options = spec
        try:
            value = _convert(kind, value)
        except Exception as exc:
            return _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {kind} value",
                f"{name}, {value}, {exc}",
                {
                    "input_name": name,
                    "input_config": spec,
                    "received_value": value,
                    "exception_message": str(exc),
                },
            )
        extra = {"input_name": name, "input_config": spec, "received_value": value}
        if "min" in options and value < options["min"]:
            message = f"Value {value} smaller than min of {options['min']}"
            return _error("value_smaller_than_min", message, name, extra)
        if "max" in options and value > options["max"]:
            message = f"Value {value} bigger than max of {options['max']}"
            return _error("value_bigger_than_max", message, name, extra)
        allowed = combo_options(spec)
        if allowed is None or skip_combo:
            return None
        multiselect = bool(options.get("multiselect", False)) and isinstance(value, list)
        wrong = [v for v in value if v not in allowed] if multiselect else [value]
        if (multiselect and not wrong) or (not multiselect and value in allowed):
            return None
        # Long lists (scanned model folders) are summarised, not echoed back.
        listed = f"(list of length {len(allowed)})" if len(allowed) > 20 else str(allowed)
        extra["input_config"] = None if len(allowed) > 20 else spec
        return _error(
            "value_not_in_list", "Value not in list", f"{name}: '{value}' not in {listed}", extra
        )

    def _file_check(self, class_type: str, inputs: Mapping[str, Any]) -> list[Error]:
        if class_type not in FILE_CHECKED_INPUTS:
            return []
        name, message = FILE_CHECKED_INPUTS[class_type]
        value = inputs.get(name)
        if not isinstance(value, str):
            return []
        if self.input_file_exists is not None:
            exists = self.input_file_exists(class_type, value)
        else:
            spec = input_spec(self.object_info[class_type], name)
            exists = spec is None or value in (combo_options(spec[1]) or [])
        if exists:
            return []
        details = f"{name} - {message}: {value}"
        extra = {"input_name": name}
        return [
            _error("custom_validation_failed", "Custom validation failed for node", details, extra)
        ]


def _graph_error(prompt: Mapping[str, Any], object_info: Mapping[str, Any]) -> Error | None:
    for node_id, node in prompt.items():
        title = node.get("_meta", {}).get("title") if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping) or "class_type" not in node:
            return _error(
                "missing_node_type",
                f"Node '{title or f'ID #{node_id}'}' has no class_type. "
                "The workflow may be corrupted or a custom node is missing.",
                f"Node ID '#{node_id}'",
                {"node_id": node_id, "class_type": None, "node_title": title},
            )
        class_type = node["class_type"]
        if class_type not in object_info:
            title = title or class_type
            return _error(
                "missing_node_type",
                f"Node '{title}' not found. The custom node may not be installed.",
                f"Node ID '#{node_id}'",
                {"node_id": node_id, "class_type": class_type, "node_title": title},
            )
    return None


def output_nodes(prompt: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    """Ids of the prompt's output nodes (``output_node: true`` classes), in prompt order."""
    return [
        node_id
        for node_id, node in prompt.items()
        if object_info.get(node["class_type"], {}).get("output_node") is True
    ]


def validate_prompt(
    prompt: Mapping[str, Any],
    object_info: Mapping[str, Any],
    *,
    partial_execution_targets: list[str] | None = None,
    input_file_exists: InputFileExists | None = None,
) -> PromptValidation:
    """Validate ``prompt`` the way ComfyUI's ``POST /prompt`` does.

    ``input_file_exists`` answers whether a loader's input file is present; without it the
    file must appear in that input's ``/object_info`` option list.
    """
    graph_error = _graph_error(prompt, object_info)
    if graph_error is not None:
        return PromptValidation(error=graph_error)
    outputs = [
        o
        for o in output_nodes(prompt, object_info)
        if partial_execution_targets is None or o in partial_execution_targets
    ]
    if not outputs:
        return PromptValidation(error=_error("prompt_no_outputs", "Prompt has no outputs", ""))
    checker = _Validator(prompt, object_info, input_file_exists)
    good: set[str] = set()
    own_errors: list[Error] = []
    node_errors: dict[str, dict[str, Any]] = {}
    # ComfyUI walks a set of outputs; reverse prompt order reproduces the captured answers.
    for output in reversed(outputs):
        try:
            valid, reasons = checker.node(output)
        except Exception as exc:
            extra = {
                "exception_type": type(exc).__name__,
                "traceback": traceback.format_tb(exc.__traceback__),
            }
            message = "Exception when validating node"
            reasons = [_error("exception_during_validation", message, str(exc), extra)]
            valid = False
            checker.validated[output] = (False, reasons)
        if valid:
            good.add(output)
            continue
        own_errors += reasons
        # Like ComfyUI, every failing node seen so far lists this output as dependent.
        for node_id, (node_ok, node_reasons) in checker.validated.items():
            if node_ok or not node_reasons:
                continue
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": node_reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                },
            )
            entry["dependent_outputs"].append(output)
    to_execute = [o for o in outputs if o in good]
    if not to_execute:
        details = "\n".join(f"{e['message']}: {e['details']}" for e in own_errors)
        error = _error(
            "prompt_outputs_failed_validation", "Prompt outputs failed validation", details
        )
        return PromptValidation(error=error, node_errors=node_errors)
    return PromptValidation(error=None, node_errors=node_errors, outputs_to_execute=to_execute)
