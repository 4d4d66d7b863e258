"""The package's shape: layers import downward only, modules stay small and keep their privates.

Read from the source with :mod:`ast`, so imports inside functions count as
much as those at the top of a module; imports under ``if TYPE_CHECKING:``
are annotations only and never run, so they do not.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gpuseg", "cpu_fallback")
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, str | None]]:
    """(module, imported name) of every runtime import of ``name``, resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(node) for block in ast.walk(tree)
                   if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                   for statement in block.body for node in ast.walk(statement)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.extend((module, alias.name) for alias in node.names)
    return [(m, n) for m, n in found if m.split(".")[0] in PACKAGES]


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for module, imported in _imports(name, path):
            target = f"{module}.{imported}" if f"{module}.{imported}" in MODULES else module
            edges[name].add(target)
    return edges


def test_every_project_import_names_a_module_or_one_of_its_names():
    broken = []
    for name, path in MODULES.items():
        for module, imported in _imports(name, path):
            if module not in MODULES:
                broken.append(f"{name}: {module}")
            elif imported and f"{module}.{imported}" not in MODULES:
                tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
                defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
                    n.name for n in ast.walk(tree)
                    if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.alias))} | {
                    a.asname or a.name.split(".")[0] for n in ast.walk(tree)
                    if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
                if imported not in defined:
                    broken.append(f"{name}: {module}.{imported}")
    assert not broken, broken


def test_no_import_cycle_counting_imports_inside_functions():
    edges = _edges()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if target not in MODULES:
                continue
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_no_module_imports_another_modules_private_names():
    private = [(name, f"{module}.{imported}") for name, path in MODULES.items()
               for module, imported in _imports(name, path)
               if imported and imported.startswith("_") and not imported.startswith("__")
               and module != name]
    assert not private, private


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_under_the_line_limit(name):
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_the_dask_package_imports_nothing_from_the_orchestrator():
    edges = _edges()
    reached = {target for name in MODULES if name.startswith("gpuseg.distributed")
               for target in edges.get(name, ())}
    assert not {t for t in reached if t == "gpuseg.pipeline" or t.startswith("gpuseg.cli")}


def test_the_data_layer_builds_no_backend():
    edges = _edges()
    for name in MODULES:
        if name.startswith("gpuseg.data"):
            for target in edges.get(name, ()):
                assert target != "gpuseg.registry" and not target.startswith(
                    ("cpu_fallback", "gpuseg.rapids")), (name, target)


def test_backends_import_the_pipeline_downward_only():
    """The backends may use the interface and generic numerics, never a pipeline stage."""
    allowed = ("gpuseg.backend", "gpuseg.config", "gpuseg.errors", "gpuseg.numerics", "gpuseg.host",
               "gpuseg.resources", "gpuseg.distributed.engine", "gpuseg.rapids", "cpu_fallback",
               # Where gpuseg keeps its caches (the numba kernels sit beside the parquet cache).
               "gpuseg.data.cache")
    edges = _edges()
    for name in MODULES:
        if name.startswith(("cpu_fallback", "gpuseg.rapids")):
            for target in edges.get(name, ()):
                assert target.startswith(allowed), (name, target)
