"""The fast commands stay fast: ``clipbudget --help``, ``plan``, ``flops`` and ``predict`` never import torch,
open_clip, pandas, scipy or pyarrow (docs/architecture.md). Each case runs the real CLI ``main`` in a fresh
interpreter and reads back ``sys.modules`` after it finished.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "open_clip", "pandas", "scipy", "pyarrow")

# Runs main(argv) and writes the sorted top-level module names to the file named by argv[1].
WRAPPER = """
import json, sys
out, argv = sys.argv[1], json.loads(sys.argv[2])
from planner.cli.main import main
try:
    rc = main(argv)
except SystemExit as exc:
    rc = exc.code
with open(out, "w") as fh:
    json.dump({"rc": rc, "modules": sorted(sys.modules)}, fh)
"""

CASES = {
    "help": ["--help"],
    "plan": ["plan", "--gflops", "1e10"],
    "plan-json": ["plan", "--gflops", "1e10", "--format", "json"],
    "plan-csv-huge": ["plan", "--gflops", "1e19", "--format", "csv"],
    "flops": ["flops", "ViT-B-32"],
    "flops-list": ["flops", "--list", "--format", "json"],
    "predict": ["predict", "--model", "ViT-B-32", "--samples-seen", "1.36e9", "--unique-samples", "1.36e9",
                "--format", "json"],
}


def _modules_after(argv: list[str], tmp_path: Path) -> tuple[int, list[str]]:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", WRAPPER, str(out), json.dumps(argv)], capture_output=True,
                          check=False, text=True, timeout=120, cwd=ROOT)
    assert out.exists(), proc.stderr
    result = json.loads(out.read_text())
    return result["rc"], result["modules"]


@pytest.mark.parametrize("name", list(CASES))
def test_fast_commands_leave_heavy_libraries_unloaded(name, tmp_path):
    rc, modules = _modules_after(CASES[name], tmp_path)
    assert rc == 0, f"{CASES[name]} exited {rc}"
    loaded = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    assert loaded == [], f"clipbudget {' '.join(CASES[name])} imported {loaded}"


def test_the_check_can_fail(tmp_path):
    # The same wrapper sees a heavy import when one happens (pandas is installed in the test environment).
    _, modules = _modules_after(["--version"], tmp_path)
    assert "pandas" not in modules
    out = tmp_path / "m.json"
    subprocess.run([sys.executable, "-c", "import pandas\n" + WRAPPER, str(out), json.dumps(["--version"])],
                   check=True, capture_output=True, timeout=120, cwd=ROOT)
    assert "pandas" in json.loads(out.read_text())["modules"]
