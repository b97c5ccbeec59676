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


#: Where each shared word or default may be written as a literal (everyone else imports it).
VOCABULARY_HOMES = {
    "the strategies tuple": {"budget.vocabulary", "results.schema"},  # results/ keeps a checked copy
    "the augmentation presets tuple": {"budget.vocabulary"},
    "the default GPU": {"budget.hardware"},
    "a default MFU": {"budget.hardware"},
    "a default FLIP mask ratio": {"budget.vocabulary"},
}


def vocabulary_literals(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(what, line) for each literal that should come from budget/vocabulary.py or budget/hardware.py:
    the strategy or augmentation tuples, ``"A100"`` outside a docstring, and a numeric default of a
    parameter or field named ``mfu`` or ``flip_mask_ratio`` (``def f(mfu=0.4)``, ``mfu: float = 0.4``)."""
    from budget.vocabulary import AUG_PRESETS, STRATEGIES

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    named = {"mfu": "a default MFU", "flip_mask_ratio": "a default FLIP mask ratio"}

    def numeric(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, float) and not isinstance(node.value, bool)

    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Constant) for e in node.elts):
            values = tuple(e.value for e in node.elts)
            if values == STRATEGIES:
                yield "the strategies tuple", node.lineno
            elif values == AUG_PRESETS:
                yield "the augmentation presets tuple", node.lineno
        elif isinstance(node, ast.Constant) and node.value == "A100" and id(node) not in docstrings:
            yield "the default GPU", node.lineno
        elif isinstance(node, ast.arguments):
            positional = node.posonlyargs + node.args
            pairs = list(zip(positional[len(positional) - len(node.defaults):], node.defaults))
            pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults) if d is not None]
            for arg, default in pairs:
                if arg.arg in named and numeric(default) and default.value > 0:
                    yield named[arg.arg], default.lineno
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id in named:
            if numeric(node.value) and node.value.value > 0:
                yield named[node.target.id], node.lineno


def test_the_vocabulary_is_written_once():
    problems = []
    for module, path in module_files().items():
        for what, line in vocabulary_literals(module, path):
            if module not in VOCABULARY_HOMES[what]:
                home = " or ".join(sorted(VOCABULARY_HOMES[what]))
                problems.append(f"{path.relative_to(ROOT)}:{line}: {what} written out; import it from {home}")
    assert problems == [], "\n".join(problems)


def test_the_vocabulary_check_can_fail(tmp_path):
    path = tmp_path / "x.py"
    path.write_text('"""Uses "A100" in a docstring: fine."""\nS = ("clip", "slip", "flip", "clip_aug")\n'
                    'def f(gpu="A100", *, mfu=0.4, flip_mask_ratio=0.0):\n    pass\n'
                    'class C:\n    flip_mask_ratio: float = 0.5\n')
    found = sorted(vocabulary_literals("planner.x", path))
    assert found == [("a default FLIP mask ratio", 6), ("a default MFU", 3), ("the default GPU", 3),
                     ("the strategies tuple", 2)]


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


#: A module longer than this is more than one concern (docs/architecture.md); split it along a seam.
MAX_MODULE_LINES = 600


def test_no_module_is_over_the_line_limit():
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in module_files().items()}
    assert len(sizes) > 50  # the walk saw the packages
    over = {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"
