"""Layers hold: the import rules of docs/architecture.md, checked from the source of every module.

Every ``import`` and ``from … import`` statement counts, also the ones inside functions (a lazy import is
still a dependency). The rules:

* ``budget/`` and ``results/`` import nothing of ours (beyond themselves);
* ``runners/`` imports ``budget``, ``results`` and itself, never ``planner``;
* ``planner/scaling/`` never imports ``planner/prior/`` (the prior is built on the scaling code);
* torch and open_clip (which imports torch) only in ``runners/`` — and in ``budget/regenerate.py``, the
  maintenance command that reads open_clip's bundled configs (run by hand, never by the tool).

That ``plan``, ``flops``, ``predict`` and ``--help`` leave torch unloaded at run time is
``tests/test_imports.py``. Copies the layering forces (``results/`` cannot import ``budget``) are
checked to agree at the end.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("budget", "results", "runners", "planner")
HEAVY = ("torch", "open_clip", "torchvision")

#: package → the packages of ours it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "budget": set(),
    "results": set(),
    "runners": {"budget", "results"},
    "planner": {"budget", "results", "runners"},
}
#: (importer prefix, forbidden imported prefix): sub-package rules inside a package.
FORBIDDEN_INSIDE = [("planner.scaling", "planner.prior")]
#: Modules outside runners/ that may import torch/open_clip, and why.
HEAVY_EXCEPTIONS = {"budget.regenerate": "maintenance command: reads open_clip's bundled model configs"}


def module_files() -> dict[str, Path]:
    """Dotted module name → file, for every module of the four packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module ``module`` imports, absolute, with its line (``from a import b`` yields ``a`` and ``a.b``)."""
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(files: dict[str, Path] | None = None) -> list[str]:
    """Every broken rule, as ``file:line: module imports target (rule)``."""
    files = module_files() if files is None else files
    problems = []
    for module, path in files.items():
        pkg = module.split(".")[0]
        where = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        for target, line in imports_of(module, path):
            top = target.split(".")[0]
            if top in PACKAGES and top != pkg and top not in ALLOWED[pkg]:
                may = ", ".join(sorted(ALLOWED[pkg])) or "nothing of ours"
                problems.append(f"{where}:{line}: {module} imports {target} ({pkg} may import {may})")
            for importer, forbidden in FORBIDDEN_INSIDE:
                if _within(module, importer) and _within(target, forbidden):
                    problems.append(f"{where}:{line}: {module} imports {target} ({importer} never imports {forbidden})")
            if top in HEAVY and pkg != "runners" and module not in HEAVY_EXCEPTIONS:
                problems.append(f"{where}:{line}: {module} imports {target} (torch/open_clip only in runners/)")
    return sorted(set(problems))


def package_graph(files: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """package → the other packages of ours it imports (the graph the closing notes report)."""
    files = module_files() if files is None else files
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module, path in files.items():
        pkg = module.split(".")[0]
        for target, _ in imports_of(module, path):
            top = target.split(".")[0]
            if top in PACKAGES and top != pkg:
                graph[pkg].add(top)
    return graph


# --------------------------------------------------------------------------------------------- tests


def test_every_package_is_seen():
    files = module_files()
    counts = {p: sum(1 for m in files if m.split(".")[0] == p) for p in PACKAGES}
    assert all(n >= 3 for n in counts.values()), counts
    assert {"budget.cost", "runners.run", "planner.scaling.rank", "planner.cli.main"} <= set(files)


def test_layers_hold():
    problems = violations()
    assert problems == [], "import rules broken (docs/architecture.md):\n" + "\n".join(problems)


def test_the_graph_points_one_way():
    graph = package_graph()
    for pkg, deps in graph.items():
        assert deps <= ALLOWED[pkg], (pkg, deps)
    assert "planner" not in graph["runners"]


@pytest.mark.parametrize("source,module,needle", [
    ("from planner import plan\n", "budget.x", "budget may import nothing of ours"),
    ("import runners.config\n", "results.x", "results may import nothing of ours"),
    ("def f():\n    from planner.plan import enumerate_plan\n", "runners.x", "runners may import budget, results"),
    ("from planner.prior import build\n", "planner.scaling.x", "planner.scaling never imports planner.prior"),
    ("from ..prior import build\n", "planner.scaling.x", "planner.scaling never imports planner.prior"),
    ("import torch\n", "planner.x", "torch/open_clip only in runners/"),
])
def test_the_check_can_fail(source, module, needle, tmp_path):
    # A module that breaks each rule once (lazy and relative imports included) is caught.
    path = tmp_path / "x.py"
    path.write_text(source)
    found = violations({module: path})
    assert any(needle in p for p in found), found


def test_results_keeps_copies_that_agree_with_budget():
    # results/ imports nothing of ours, so it keeps its own strategy list and number readers: same answers.
    import math

    from budget.coerce import to_float, to_int
    from budget.vocabulary import STRATEGIES
    from results import schema

    assert schema.STRATEGIES == STRATEGIES
    for value in (5, 5.0, "5", "1.36e9", "1_000", 2.5, "2.5", True, "x", math.inf, [1]):
        assert _outcome(to_int, value) == _outcome(schema._as_int, value), value
    for value in (5, "5e-4", " 3 ", True, "x", math.inf, -math.inf, [1]):
        assert _outcome(to_float, value) == _outcome(schema._as_float, value), value


def _outcome(fn, value):
    try:
        return fn(value)
    except ValueError:
        return ValueError
