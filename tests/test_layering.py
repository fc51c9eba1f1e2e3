"""The import graph of the package: no cycle between modules, none between packages, and the
layers point one way (architecture notes, "Layers"):

    cli                                   the command line
    experiments                           configs, registry, build, fit, compare, report
    train                                 the trainer, phases, checkpoints, loggers
    samplers, weighting, nn               know problems (and the bottom modules)
    problems                              conditions, domains, operators
    reference, mesh, errors               bottom: know only JAX / numpy / scipy

Every `import` counts, function-level ones included (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "adapinn"

LAYERS = {
    "errors": 0, "mesh": 0, "reference": 0, "geometry": 0,
    "problems": 1,
    "nn": 2, "samplers": 2, "weighting": 2,
    "train": 3,
    "experiments": 4,
    "cli": 5,
    "__init__": 6,
}
"""A package may import packages of a lower layer only, or modules of its own package."""


def module_name(path: Path) -> str:
    parts = ("adapinn", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The adapinn modules `path` imports (resolved to modules that exist)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` depends on pkg.mod; `from mod import name` on mod
            submodules = [f"{node.module}.{a.name}" for a in node.names]
            names = [n for n in submodules if n in modules] or [node.module]
        else:
            continue
        found.update(n for n in names if n in modules)
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    return {m: imports_of(p, set(files)) - {m} for m, p in files.items()}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for m, targets in edges.items():
        src = package_of(m)
        packages.setdefault(src, set()).update(
            package_of(t) for t in targets if package_of(t) != src and package_of(t) != "__init__")
    return packages


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_imports():
    edges = graph()
    assert "adapinn.experiments.plots" in edges["adapinn.experiments.fit"]  # inside fit()


def test_no_module_cycles():
    assert cycles(graph()) == []


def test_no_package_cycles():
    assert cycles(package_graph(graph())) == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_layers_point_down(package):
    edges = package_graph(graph())
    if package not in edges:
        pytest.skip(f"no package {package}")
    upward = sorted(t for t in edges[package] if LAYERS.get(t, 99) >= LAYERS[package])
    assert not upward, f"{package} (layer {LAYERS[package]}) imports {upward}"
