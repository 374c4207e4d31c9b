"""The simulator's answer to ``POST /prompt``: ComfyUI's validation, from its semantics.

Written from ComfyUI's ``validate_prompt`` / ``validate_inputs`` behaviour and the
captured error bodies, independently of reelflow's own preflight validator, so that the
replay tests compare two implementations against the real server.

What the server does, and so what this module does:

* every node must name a known ``class_type`` (else ``missing_node_type``, no node errors);
* the outputs are the ``output_node`` classes (limited to ``partial_execution_targets``);
* each output is checked with its ancestors: required inputs present, links well formed
  and type-compatible, widget values converted to their declared type (and written back
  into the prompt), within ``min``/``max``, in the option list; loaders check that their
  file exists instead of checking the option list; link cycles are reported on every node
  of the cycle;
* a node that fails is reported once, with every failing output processed after it as a
  dependent output (the server's own bookkeeping); nodes that only fail because an
  ancestor failed are not reported;
* the prompt is refused (400) only when no output is valid; otherwise the good outputs run
  and the errors of the others come back with the 200.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.schema import Slot, link_accepts, unfold_inputs

FileExists = Callable[[str], bool]
"""Whether a loader's (possibly ``[output]``-annotated) file name exists on the server."""

# Loaders whose own check (file exists) replaces the option-list check of one input.
FILE_INPUTS: dict[str, tuple[str, str]] = {
    "LoadImage": ("image", "image"),
    "LoadImageMask": ("image", "image"),
    "LoadImageOutput": ("image", "image"),
    "LoadAudio": ("audio", "audio"),
    "LoadVideo": ("file", "video"),
}
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "INT": int,
    "FLOAT": float,
    "STRING": str,
    "BOOLEAN": bool,
}
_LONG_OPTION_LIST = 20


def _error(kind: str, message: str, details: str, **extra_info: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def _type_name(exc: BaseException) -> str:
    module = type(exc).__module__
    name = type(exc).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def request_error(body: Any) -> dict[str, Any] | None:
    """The error for a request body that cannot be validated at all, else None."""
    if not isinstance(body, dict) or "prompt" not in body:
        return _error("no_prompt", "No prompt provided", "No prompt provided")
    prompt_id = body.get("prompt_id")
    if prompt_id is not None and not (
        isinstance(prompt_id, str) and _CANONICAL_UUID.match(prompt_id)
    ):
        return _error(
            "invalid_prompt_id",
            "prompt_id must be a valid UUID",
            "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
            "omit it to let the server generate one",
        )
    return None


@dataclass
class Verdict:
    """The outcome of validating one prompt."""

    outputs: list[str]
    node_errors: dict[str, Any]
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when at least one output will run."""
        return self.error is None

    def body(self) -> dict[str, Any]:
        """The 400 body ComfyUI sends when ``ok`` is False."""
        return {"error": self.error, "node_errors": self.node_errors}


def _missing_class(node_id: str, node: Any, class_type: Any) -> dict[str, Any]:
    meta = node.get("_meta", {}) if isinstance(node, dict) else {}
    if class_type is None:
        title = meta.get("title")
        message = (
            f"Node '{title or f'ID #{node_id}'}' has no class_type. "
            "The workflow may be corrupted or a custom node is missing."
        )
    else:
        # An untitled node is named by its class.
        title = meta.get("title", class_type)
        message = f"Node '{title}' not found. The custom node may not be installed."
    return _error(
        "missing_node_type",
        message,
        f"Node ID '#{node_id}'",
        node_id=node_id,
        class_type=class_type,
        node_title=title,
    )


def validate_prompt(
    prompt: dict[str, Any],
    object_info: Mapping[str, Any],
    *,
    targets: list[str] | None = None,
    file_exists: FileExists | None = None,
) -> Verdict:
    """Validate ``prompt`` the way ComfyUI does; converted values are written into it."""
    outputs: list[str] = []
    for node_id, node in prompt.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type is None or class_type not in object_info:
            return Verdict([], {}, _missing_class(node_id, node, class_type))
        if object_info[class_type].get("output_node") and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        return Verdict([], {}, _error("prompt_no_outputs", "Prompt has no outputs", ""))
    return _Run(prompt, object_info, file_exists or (lambda _name: True)).verdict(outputs)


@dataclass
class _Run:
    prompt: dict[str, Any]
    object_info: Mapping[str, Any]
    file_exists: FileExists
    validated: dict[Any, tuple[bool, list[dict[str, Any]]]] = field(default_factory=dict)
    visiting: list[str] = field(default_factory=list)
    cycle_errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def verdict(self, outputs: list[str]) -> Verdict:
        good: list[str] = []
        failures: list[dict[str, Any]] = []
        node_errors: dict[str, Any] = {}
        # ComfyUI walks a *set* of outputs, so its order varies between runs; the
        # simulator always takes the latest output first, as capture 13 shows.
        for output in reversed(outputs):
            try:
                ok, reasons = self.check(output)
            except Exception as exc:  # reported to the client, as ComfyUI does
                ok = False
                reasons = [
                    _error(
                        "exception_during_validation",
                        "Exception when validating node",
                        str(exc),
                        exception_type=_type_name(exc),
                        traceback=traceback.format_tb(exc.__traceback__),
                    )
                ]
                self.validated[output] = (False, reasons)
            if ok:
                good.append(output)
                continue
            failures.extend(reasons)
            # The server lists this output under *every* failed node checked so far.
            for node_id, (node_ok, node_reasons) in self.validated.items():
                if node_ok or not node_reasons:
                    continue
                entry = node_errors.setdefault(
                    node_id,
                    {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": self.prompt[node_id]["class_type"],
                    },
                )
                entry["dependent_outputs"].append(output)
        good.sort(key=outputs.index)
        if good:
            return Verdict(good, node_errors)
        details = "\n".join(f"{r['message']}: {r['details']}" for r in failures)
        error = _error(
            "prompt_outputs_failed_validation", "Prompt outputs failed validation", details
        )
        return Verdict([], node_errors, error)

    def check(self, node_id: Any) -> tuple[bool, list[dict[str, Any]]]:
        if node_id in self.validated:
            return self.validated[node_id]
        self.visiting.append(node_id)
        try:
            ok, errors = self._check_node(node_id)
        finally:
            self.visiting.pop()
            cycle = self.cycle_errors.pop(node_id, [])
        if cycle:
            ok, errors = False, cycle + errors
        self.validated[node_id] = (ok, errors)
        return ok, errors

    def _check_node(self, node_id: str) -> tuple[bool, list[dict[str, Any]]]:
        node = self.prompt[node_id]
        inputs: dict[str, Any] = node["inputs"]
        class_type = node["class_type"]
        slots = unfold_inputs(self.object_info[class_type], inputs)
        file_input = FILE_INPUTS.get(class_type)
        errors: list[dict[str, Any]] = []
        ok = True
        for name, slot in slots.items():
            if name not in inputs:
                if slot.category == "required":
                    short = name.split(".")[-1]
                    errors.append(
                        _error(
                            "required_input_missing",
                            "Required input is missing",
                            short,
                            input_name=name,
                        )
                    )
                continue
            if isinstance(inputs[name], list):
                link_ok, error = self._check_link(name, slot, inputs[name])
                ok = ok and link_ok
            else:
                own_check = file_input is not None and file_input[0] == name
                error = self._check_value(inputs, name, slot, own_check)
            if error is not None:
                errors.append(error)
        if file_input is not None:
            errors.extend(self._check_file(inputs, *file_input))
        return ok and not errors, errors

    def _check_link(
        self, name: str, slot: Slot, link: list[Any]
    ) -> tuple[bool, dict[str, Any] | None]:
        if len(link) != 2:
            return False, _error(
                "bad_linked_input",
                "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                name,
                input_name=name,
                input_config=slot.config,
                received_value=link,
            )
        source_id, index = link
        source_class = self.prompt[source_id]["class_type"]
        received = tuple(self.object_info[source_class]["output"])[index]
        if not link_accepts(received, slot.type):
            return False, _error(
                "return_type_mismatch",
                "Return type mismatch between linked nodes",
                f"{name}, received_type({received}) mismatch input_type({slot.type})",
                input_name=name,
                input_config=slot.config,
                received_type=received,
                linked_node=link,
            )
        if source_id in self.visiting:
            self._mark_cycle(source_id)
            return False, None
        try:
            source_ok, _ = self.check(source_id)
        except Exception as exc:  # recorded against the failing node
            self.validated[source_id] = (False, [self._inner_failure(name, slot, link, exc)])
            return False, None
        return source_ok, None

    @staticmethod
    def _inner_failure(name: str, slot: Slot, link: list[Any], exc: Exception) -> dict[str, Any]:
        return _error(
            "exception_during_inner_validation",
            "Exception when validating inner node",
            str(exc),
            input_name=name,
            input_config=slot.config,
            exception_message=str(exc),
            exception_type=_type_name(exc),
            traceback=traceback.format_tb(exc.__traceback__),
            linked_node=link,
        )

    def _mark_cycle(self, start: str) -> None:
        cycle = self.visiting[self.visiting.index(start) :]
        path = [*cycle, start]
        details = " -> ".join(f"{n} ({self.prompt[n]['class_type']})" for n in path)
        for node_id in cycle:
            self.cycle_errors.setdefault(node_id, []).append(
                _error(
                    "dependency_cycle",
                    "Dependency cycle detected",
                    details,
                    node_id=node_id,
                    cycle_nodes=list(cycle),
                )
            )

    @staticmethod
    def _check_value(
        inputs: dict[str, Any], name: str, slot: Slot, own_check: bool
    ) -> dict[str, Any] | None:
        value = inputs[name]
        if isinstance(value, dict) and "__value__" in value:
            # A list-valued widget travels wrapped so it is not read as a link.
            value = inputs[name] = value["__value__"]
        convert = _CONVERTERS.get(slot.type) if isinstance(slot.type, str) else None
        if convert is not None:
            try:
                value = inputs[name] = convert(value)
            except Exception as exc:  # any failure is reported
                return _error(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {slot.type} value",
                    f"{name}, {value}, {exc}",
                    input_name=name,
                    input_config=slot.config,
                    received_value=value,
                    exception_message=str(exc),
                )
        if own_check:
            return None
        return _check_bounds(name, slot, value) or _check_options(name, slot, value)

    def _check_file(self, inputs: dict[str, Any], name: str, noun: str) -> list[dict[str, Any]]:
        value = inputs.get(name)
        if value is None or isinstance(value, list) or self.file_exists(str(value)):
            return []
        details = f"{name} - Invalid {noun} file: {value}"
        return [
            _error(
                "custom_validation_failed",
                "Custom validation failed for node",
                details,
                input_name=name,
            )
        ]


def _check_bounds(name: str, slot: Slot, value: Any) -> dict[str, Any] | None:
    low, high = slot.options.get("min"), slot.options.get("max")
    if low is not None and value < low:
        return _error(
            "value_smaller_than_min",
            f"Value {value} smaller than min of {low}",
            name,
            input_name=name,
            input_config=slot.config,
            received_value=value,
        )
    if high is not None and value > high:
        return _error(
            "value_bigger_than_max",
            f"Value {value} bigger than max of {high}",
            name,
            input_name=name,
            input_config=slot.config,
            received_value=value,
        )
    return None


def _check_options(name: str, slot: Slot, value: Any) -> dict[str, Any] | None:
    if isinstance(slot.type, list):
        options = slot.type
    elif slot.type == "COMBO":
        options = slot.options.get("options", [])
    else:
        return None
    if value in options:
        return None
    # Long lists (every model file on disk) are not echoed back.
    long_list = len(options) > _LONG_OPTION_LIST
    shown = f"(list of length {len(options)})" if long_list else str(options)
    return _error(
        "value_not_in_list",
        "Value not in list",
        f"{name}: '{value}' not in {shown}",
        input_name=name,
        input_config=None if long_list else slot.config,
        received_value=value,
    )
