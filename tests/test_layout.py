"""The shape of the code: flows -> stages -> infrastructure -> plain data, no arrow back up, no
cycle, and a simulator that shares no code with the client it stands in for."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "tasks", "blocks", "sim")
INFRASTRUCTURE = ("tasks.runtime", "tasks.media", "tasks.comfyui", "tasks.errors", "blocks")


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every project module and the project modules it imports (anywhere in its body)."""
    modules = {
        _module(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in _walk_skipping_entry_points(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            found |= {target for target in targets if target in modules}
        graph[name] = found - {name}
    return graph


def _walk_skipping_entry_points(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:` (annotations only) and
    `if __name__ == "__main__":` (a script's entry, not an import of the module)."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "__name__ == '__main__'",
        ):
            pending.extend(node.orelse)
            continue
        nodes.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return nodes


def layer(module: str) -> int:
    """3 flows, 2 stages, 1 infrastructure, 0 plain data (the simulator stands apart)."""
    if module.startswith("flows"):
        return 3
    if module.startswith("tasks.schema"):
        return 0
    if module.startswith(INFRASTRUCTURE):
        return 1
    return 2


def test_imports_only_run_down_the_layers() -> None:
    graph = _imports()
    upward = sorted(
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in graph.items()
        if not module.startswith("sim")
        for target in targets
        if layer(target) > layer(module) and target != "tasks"
    )
    assert upward == []


def test_the_import_graph_has_no_cycle() -> None:
    graph = _imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # A package importing its own submodules (re-exports) is not a cycle of behaviour.
    real = [c for c in cycles if not all(c[0].startswith(m) or m.startswith(c[0]) for m in c)]
    assert real == []


def test_the_simulator_shares_no_code_with_reelflow() -> None:
    graph = _imports()
    borrowed = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith("sim")
        for target in targets
        if not target.startswith("sim")
    )
    assert borrowed == []
