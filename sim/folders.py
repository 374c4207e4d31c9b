"""The server's three file folders and ComfyUI's ``name [output]`` annotations.

A loader's value names a file in the upload folder, or, with a trailing ``[input]``,
``[output]`` or ``[temp]`` annotation, in that folder: this is how a workflow loads an
image the server itself rendered (``keyframe_00001_.png [output]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ANNOTATIONS = ("input", "output", "temp")


@dataclass(frozen=True)
class Folders:
    """Where uploads, rendered outputs and previews live."""

    input: Path
    output: Path
    temp: Path

    @classmethod
    def beside(cls, output_dir: Path, input_dir: Path) -> Folders:
        """The layout ComfyUI uses: ``temp`` next to ``output``."""
        return cls(input=input_dir, output=output_dir, temp=output_dir.parent / "temp")

    def by_type(self, kind: str) -> Path | None:
        """The folder for a ``type`` query value, None for an unknown one."""
        return {"input": self.input, "output": self.output, "temp": self.temp}.get(kind)

    def split(self, name: str) -> tuple[str, Path]:
        """The file name without its annotation, and the folder it names (default input)."""
        for kind in ANNOTATIONS:
            mark = f"[{kind}]"
            if name.endswith(mark):
                # As ComfyUI does: drop the mark and the one space before it.
                return name[: -(len(mark) + 1)], self.by_type(kind) or self.input
        return name, self.input

    def resolve(self, name: str) -> Path | None:
        """The existing file an (annotated) loader value names, if inside its folder."""
        filename, folder = self.split(name)
        root = folder.resolve()
        path = (folder / filename).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path
