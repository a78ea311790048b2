"""The house has floors: a module imports only from its own floor or lower ones, and no import
chain comes back to where it started. Checked by parsing the package's imports (``ast``), both
module-level and function-level ones (a function-level import hides a cycle; it does not remove
it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "src" / "inceptionism"

# floor of each top-level part, lowest first; the package's own __init__ and __main__ are the
# front door (they re-export and start the CLI) and stand above everything
FLOORS = {
    "errors": 0, "_version": 0,
    "ops": 1, "io": 1,
    "models": 2,
    "engine": 3, "featurevis": 3,
    "configure": 4,
    "jobs": 5,
    "executors": 6,
    "explore": 7, "motion": 7, "train": 7,
    "cli": 8, "studio": 8, "comfyui": 8,
    "__init__": 9, "__main__": 9,
}  # fmt: skip
# third-party packages that only one floor's modules may import (the rest of the house stays
# usable without them)
ONLY_IN = {"click": ("cli",), "gradio": ("studio",), "ray": ("executors.ray",)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import of the package's own modules."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    top_level = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.split(".")[0] == "inceptionism":
                mod = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:  # a submodule imported by name counts as itself
                sub = f"{mod}.{alias.name}" if mod else alias.name
                names.append(sub if sub in known else mod)
        elif isinstance(node, ast.Import):
            names = [a.name.partition(".")[2] for a in node.names
                     if a.name.split(".")[0] == "inceptionism"]  # fmt: skip
        for name in names:
            if name and name != me:
                found.append((name or "__init__", node.lineno, id(node) in top_level))
    return found


def floor(module: str) -> int:
    return FLOORS[module.split(".")[0]]


def test_every_part_has_a_floor():
    missing = sorted({m.split(".")[0] for m in modules()} - set(FLOORS))
    assert not missing, f"give these a floor in FLOORS: {missing}"


def test_no_module_imports_from_a_higher_floor():
    known = modules()
    upward = [
        f"{name} (floor {floor(name)}) line {line} imports {target} (floor {floor(target)})"
        for name, path in known.items()
        for target, line, _ in imports(path, known)
        if floor(target) > floor(name)
    ]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle():
    known = modules()
    graph = {name: sorted({t for t, _, _ in imports(path, known)}) for name, path in known.items()}
    # the package __init__ re-exports; a submodule importing the package itself would be a cycle
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("package,allowed", list(ONLY_IN.items()))
def test_ui_and_cluster_libraries_stay_in_their_floor(package, allowed):
    offenders = []
    for name, path in modules().items():
        if any(name == a or name.startswith(a + ".") for a in allowed):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                mods = [node.module]
            if any(m.split(".")[0] == package for m in mods):
                offenders.append(f"{name} line {node.lineno}")
    assert not offenders, f"{package} imported outside {allowed}: {offenders}"


# the shells: where a function-level import of the package's own modules keeps a command's
# start-up fast (`inceptionism --help` answers without torch) or keeps Gradio optional
SHELLS = ("cli", "studio.app", "comfyui", "__init__", "__main__")
MAX_LINES = 450


def _in(name: str, rooms: tuple[str, ...]) -> bool:
    return any(name == r or name.startswith(r + ".") or name.startswith(r + "_") for r in rooms)


def test_no_hidden_import_outside_the_shells():
    """An import inside a function hides what a module needs (and, before, hid cycles); the
    house's rooms import what they use at the top. Optional third-party extras (h5py, Ray,
    OpenCV, huggingface_hub) are imported where used, inside the modules that wrap them."""
    known = modules()
    hidden = [
        f"{name} line {line} imports {target} inside a function"
        for name, path in known.items()
        if not _in(name, SHELLS)
        for target, line, at_top in imports(path, known)
        if not at_top
    ]
    assert not hidden, "\n".join(hidden)


def test_no_module_is_too_long_to_hold_in_one_head():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    assert not long, f"over {MAX_LINES} lines: {long}"
