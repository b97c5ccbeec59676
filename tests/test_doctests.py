"""The examples in docstrings are true: every ``>>>`` example in the library modules runs and prints
what its docstring says (modules whose examples need heavy set-up, such as training, are listed apart)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for pkg in ("budget", "results", "runners", "planner")
    for p in (ROOT / pkg).rglob("*.py")
    if ">>>" in p.read_text(encoding="utf-8")
)


def test_modules_with_examples_are_found():
    assert {"budget.units", "results.store", "planner.plan"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (run pytest -s to see them)"
