"""The layout docs/architecture.md describes, checked: no import cycle inside the project, each
layer importing only the layers below it, and the benchmarks using only public names.

Imports are read from the source (``ast``), all of them: at the top, inside functions, and under
``TYPE_CHECKING``.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "spaces", "profilers")
# search's layers, lowest first: a module imports its own layer and the ones before it only.
# (profilers and spaces come before all of them and import nothing of search.)
LAYERS = ["profilers", "spaces", "search._errors", "search._guards", "search._progress", "search.sources",
          "search.runfolder", "search.reports", "search.training", "search.candidates",
          "search.study", "search.backends", "search._config", "search.flow", "search.commands",
          "search"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a.b import c`` is ``a.b.c`` when that is a
    module, else ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return {name for name in found if name in known}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules on it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_checks_see_a_cycle_and_real_imports():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    graph = _graph()
    assert "search.study._trials" in graph["search.study"]
    assert "search.backends._ray" in graph["search.backends"]  # imported inside a function


def test_no_module_imports_back_into_one_that_imports_it():
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def _layer(module: str) -> int:
    return max(i for i, prefix in enumerate(LAYERS)
               if module == prefix or module.startswith(prefix + "."))


def test_each_layer_imports_only_its_own_and_lower_layers():
    wrong = [f"{module} imports {imported}" for module, imports in _graph().items()
             for imported in imports if _layer(imported) > _layer(module)]
    assert not wrong, "\n".join(wrong)


def test_every_module_has_a_layer():
    unplaced = [m for m in _modules() if not any(m == p or m.startswith(p + ".") for p in LAYERS)]
    assert not unplaced


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] in PACKAGES and any(p.startswith("_") for p in parts[1:]):
                found.append(f"{path.name}:{node.lineno}: {name}")
    return found


def test_the_check_finds_a_private_import(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text("import search\nfrom search._guards import time_limit\n"
                      "def f():\n    from profilers import _latency\n")
    assert _private_imports(script) == ["bench.py:2: search._guards.time_limit",
                                        "bench.py:4: profilers._latency"]


@pytest.mark.parametrize("script", sorted((ROOT / "benchmarks").glob("*.py")),
                         ids=lambda p: p.name)
def test_benchmarks_use_only_public_names(script):
    assert not _private_imports(script)


def test_public_names_are_listed_and_exist():
    import importlib

    for package in ["search", *(m for m in LAYERS if m.startswith("search.")
                                and not m.split(".")[1].startswith("_")), "profilers", "spaces"]:
        module = importlib.import_module(package)
        assert module.__all__, package
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{package}: {missing}"


def test_the_package_says_its_version_and_that_it_is_typed():
    from importlib import metadata

    import search

    assert search.__version__ == metadata.version("hwprune")
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file()
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert 'text = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()
