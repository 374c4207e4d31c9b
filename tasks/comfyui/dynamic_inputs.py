"""v3 node inputs as a prompt addresses them: growable groups unfolded into dotted names.

``/object_info`` declares an autogrow group once (``values``: ``COMFY_AUTOGROW_V3`` with a
template and slot names ``a``..``z``, or ``images`` with prefix ``image`` and ``max`` 50) and
a dynamic combo once (``resize_type``: ``COMFY_DYNAMICCOMBO_V3`` whose options carry their
own inputs). A prompt sends the concrete slots (``values.a``, ``images.image0``,
``resize_type.width``) and ComfyUI checks those, so the validator must unfold the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# v3 growable inputs, folded in /object_info, unfolded into dotted names in a prompt.
_AUTOGROW = "COMFY_AUTOGROW_V3"
_DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
_DYNAMIC_SLOT = "COMFY_DYNAMICSLOT_V3"
Slot = tuple[str, str, list[Any]]
"""``(name, category, [type, options])`` of one concrete input."""


def _grown(template: Mapping[str, Any], group: str) -> list[Slot]:
    """An autogrow group's slots: ``values.a``.. or ``images.image0``..; ``min`` required."""
    declared = template.get("input", {})
    section = "required" if declared.get("required") else "optional"
    if not declared.get(section):
        return []
    spec = next(iter(declared[section].values()))
    spec = [spec[0], spec[1] if len(spec) > 1 else {}]
    if "names" in template:
        names = [str(n) for n in template["names"]]
    else:
        names = [f"{template.get('prefix', '')}{i}" for i in range(int(template.get("max", 0)))]
    least = int(template.get("min", 0)) if section == "required" else 0
    return [
        (f"{group}.{n}", "required" if i < least else "optional", spec) for i, n in enumerate(names)
    ]


def unfolded_inputs(class_info: Mapping[str, Any], sent: Mapping[str, Any]) -> list[Slot]:
    """The inputs ComfyUI checks for a node that was sent ``sent``, in declared order.

    Autogrow groups become their numbered or named slots (the group name itself is no
    input); a dynamic combo brings the inputs of the option it is set to, under
    ``combo.name``; a connected dynamic slot brings its extra inputs the same way.
    """
    slots: list[Slot] = []

    def walk(sections: Mapping[str, Any], order: Mapping[str, Any], prefix: str) -> None:
        for category in ("required", "optional"):
            section = sections.get(category, {}) or {}
            for name in order.get(category, list(section)):
                spec = section[name]
                spec = [spec[0], spec[1] if len(spec) > 1 else {}]
                full = prefix + name
                if spec[0] == _AUTOGROW:
                    slots.extend(_grown(spec[1].get("template", {}), full))
                    continue
                if spec[0] == _DYNAMIC_COMBO:
                    chosen = [
                        o for o in spec[1].get("options", []) if o.get("key") == sent.get(full)
                    ]
                    if full in sent and chosen:
                        slots.append((full, category, spec))
                        walk(chosen[0].get("inputs", {}), {}, full + ".")
                    continue
                slots.append((full, category, spec))
                if spec[0] == _DYNAMIC_SLOT and full in sent:
                    walk(spec[1].get("inputs", {}), {}, full + ".")

    walk(class_info.get("input", {}), class_info.get("input_order", {}), "")
    return slots
