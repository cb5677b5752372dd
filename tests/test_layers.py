"""The package's folders are its layers, and imports point one way only.

music <- lm <- measure <- lessons <- cli: a module may import its own layer and the layers to its
left, never one to its right; and no two modules import each other, directly or round a loop.
Every import that runs counts, module-level or inside a function; imports for type checkers only
(under ``if TYPE_CHECKING:``) never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "toolkit"
LAYERS = ["music", "lm", "measure", "lessons", "cli"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The toolkit modules a file imports (resolving ``from toolkit.x import y`` to ``toolkit.x.y``
    when y is a module)."""
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
                   for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("toolkit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toolkit"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int | None:
    """The layer's index, or None for the package's own __init__/__main__ (the public door)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] == "__main__":
        return None
    return LAYERS.index(parts[1])


def _graph() -> dict[str, set[str]]:
    return {name: {m for m in _imports(path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def test_every_module_lives_in_a_layer():
    loose = [m for m in MODULES if m.count(".") == 1 and m.split(".")[1] not in
             ("__init__", "__main__", "cli") and m.split(".")[1] not in LAYERS]
    assert loose == [], f"modules outside the layer folders: {loose}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    me = layer_of(module)
    if me is None:
        return
    upward = [m for m in _graph()[module] if layer_of(m) is not None and layer_of(m) > me]
    assert upward == [], (f"{module} ({LAYERS[me]}) imports from a higher layer: "
                          + ", ".join(f"{m} ({LAYERS[layer_of(m)]})" for m in upward))


def test_no_import_cycles():
    graph = _graph()
    # the package's __init__ files import nothing eagerly but their own children; leave them out
    graph = {k: {m for m in v if not m.endswith("toolkit")} for k, v in graph.items()
             if k != "toolkit"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    """The walk itself can fail: a music module that imports from lessons is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from toolkit.lessons import plots\n")
    assert "toolkit.lessons.plots" in _imports(bad)
    assert layer_of("toolkit.lessons.plots") > layer_of("toolkit.music.tokens")
