"""A node class's inputs as ComfyUI's validator sees them for one prompt.

``/object_info`` lists V3 nodes' growable inputs in a folded form: an *autogrow* group
(``COMFY_AUTOGROW_V3``: ``values`` with slots ``a``..``z``, or ``images`` with slots
``image0``..``image49``) and a *dynamic combo* (``COMFY_DYNAMICCOMBO_V3``: ``resize_type``
whose chosen option brings its own inputs). A prompt addresses the unfolded slots with
dotted names (``values.a``, ``images.image0``, ``resize_type.width``). Before checking a
node, ComfyUI unfolds the declaration against the inputs the prompt actually sent:

* an autogrow group becomes one slot per name; the first ``min`` are required (when the
  template input is), the rest optional; the group's own name is not an input;
* a dynamic combo stays an input (its value picks the option) and adds the chosen
  option's inputs under ``<combo>.<name>``, recursively; with no or an unknown choice it
  contributes nothing;
* a dynamic slot, once connected, adds its extra inputs the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

AUTOGROW = "COMFY_AUTOGROW_V3"
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
DYNAMIC_SLOT = "COMFY_DYNAMICSLOT_V3"
MATCH_TYPE = "COMFY_MATCHTYPE_V3"
WILDCARD = "*"

Category = Literal["required", "optional"]


@dataclass(frozen=True)
class Slot:
    """One concrete input: where it is declared and what it accepts."""

    name: str
    category: Category
    type: Any
    """A type name (``"INT"``, ``"IMAGE,MASK"``) or, for an old-style combo, the option list."""
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> list[Any]:
        """The ``[type, options]`` pair ComfyUI echoes as ``input_config``."""
        return [self.type, self.options]


def _split(spec: Any) -> tuple[Any, dict[str, Any]]:
    spec = list(spec) if isinstance(spec, list | tuple) else [spec]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return spec[0], options


def _joined(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _unfold(
    sections: Mapping[str, Any], live: Mapping[str, Any], prefix: str, out: dict[str, Slot]
) -> None:
    for category in ("required", "optional"):
        for name, spec in (sections.get(category) or {}).items():
            kind, options = _split(spec)
            full = _joined(prefix, name)
            if kind == AUTOGROW:
                _unfold_autogrow(options.get("template") or {}, live, full, out)
            elif kind == DYNAMIC_COMBO:
                _unfold_combo(category, kind, options, live, full, out)
            elif kind == DYNAMIC_SLOT:
                out[full] = Slot(full, category, kind, options)
                if full in live:
                    _unfold(options.get("inputs") or {}, live, full, out)
            else:
                out[full] = Slot(full, category, kind, options)


def _autogrow_names(template: Mapping[str, Any]) -> list[str]:
    if "names" in template:
        return [str(n) for n in template["names"]]
    prefix = str(template.get("prefix", ""))
    return [f"{prefix}{i}" for i in range(int(template.get("max", 0)))]


def _unfold_autogrow(
    template: Mapping[str, Any], live: Mapping[str, Any], group: str, out: dict[str, Slot]
) -> None:
    # The template holds one input; its section says whether `min` slots are required.
    declared = template.get("input") or {}
    section = next((s for s in ("required", "optional") if declared.get(s)), None)
    if section is None:
        return
    kind, options = _split(next(iter(declared[section].values())))
    minimum = int(template.get("min", 0))
    for index, slot in enumerate(_autogrow_names(template)):
        name = _joined(group, slot)
        required = section == "required" and index < minimum
        out[name] = Slot(name, "required" if required else "optional", kind, options)


def _unfold_combo(
    category: Category,
    kind: str,
    options: Mapping[str, Any],
    live: Mapping[str, Any],
    name: str,
    out: dict[str, Slot],
) -> None:
    if name not in live:
        return
    chosen = next((o for o in options.get("options", []) if o.get("key") == live[name]), None)
    if chosen is None:
        return
    out[name] = Slot(name, category, kind, dict(options))
    _unfold(chosen.get("inputs") or {}, live, name, out)


def unfold_inputs(class_info: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Slot]:
    """Every concrete input of a node class, given the inputs one prompt sent it."""
    slots: dict[str, Slot] = {}
    _unfold(class_info.get("input") or {}, live, "", slots)
    return slots


def declared_slots(class_info: Mapping[str, Any]) -> dict[str, Slot]:
    """The inputs as declared, without unfolding (for listing model and upload COMBOs)."""
    slots: dict[str, Slot] = {}
    for category in ("required", "optional"):
        for name, spec in ((class_info.get("input") or {}).get(category) or {}).items():
            kind, options = _split(spec)
            slots[name] = Slot(name, category, kind, options)
    return slots


def link_accepts(received: Any, expected: Any) -> bool:
    """Whether an output of type ``received`` may feed an input of type ``expected``.

    Comma-separated types match when they share one type; a match-type input or output
    is checked by the browser editor, not the server, so it always passes. ``*`` is
    taken as a wildcard (the way core nodes such as PreviewAny declare it).
    """
    if received == expected:
        return True
    if MATCH_TYPE in (received, expected) or WILDCARD in (received, expected):
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    have = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return bool(have & want)
