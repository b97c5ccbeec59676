"""Every command in README.md runs, as written.

Commands are every line of every ```bash block (``\\`` continuations joined, ``# comments`` dropped), split at
``&&``. Each one is run in a temporary folder by bash, with ``clipbudget`` and ``.venv/bin/clipbudget``
resolving to this checkout's console script:

* by default in the fast suite (``test_readme_command_runs``): a command that someone adds to the README and
  that exits non-zero fails this test;
* the tiny study (:data:`STUDY`: data → plan --emit-grid → submit → status → collect → score) in the slow
  suite, in README order, in one folder, asserting its stated outcome (CLIP on the top 40 % by quality beats
  CLIP on all of it), then :data:`REAL_STUDY_FIT` (see there);
* README commands that read what the study writes (:data:`STUDY_OUTPUTS`, e.g. ``report sweeps/demo``) run
  in the same slow test, after the study;
* :data:`RUN_ELSEWHERE` (set-up and the test runner itself), each with the reason.

A README command that is none of these, or a listed command no longer in the README, fails
``test_every_readme_command_is_accounted_for`` (no command is skipped silently; the lists cannot go stale).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

#: Commands of the README that this file does not run, and why (each must still be in the README).
RUN_ELSEWHERE = {
    "bash scripts/setup.sh": "creates .venv and installs the package: it is what made this test environment "
                             "(scripts/test.sh runs it before the suite)",
    "bash scripts/test.sh": "runs this test suite (and brings up the local SLURM cluster): it is the caller",
    "clipbudget demo --out demo": "the whole loop (minutes of CPU training): tests/test_demo.py runs this line "
                                  "as written in the slow suite and checks its outcome",
    "clipbudget study --gflops 1e10 --sweep-dir studies/big --executor slurm --partition gpu --data SHARDS "
    "--eval EVAL --storage mysql+pymysql://user:pw@db/optuna":
        "a template for a real cluster: placeholders SHARDS/EVAL, a GPU partition and a MySQL server that this "
        "machine does not have (the study's storages and the slurm back-end are tested in tests/test_study*.py)",
}

#: The README's tiny study, in README order: run together by the slow test (minutes of CPU training).
STUDY = (
    "clipbudget data fashion-mnist --out data/fmnist --corrupt 0.6",
    "clipbudget plan --gflops 300 --models tiny-vit-s-28 --strategies clip flip --quality 0.4 1.0 --pool-size 60000 "
    "--emit-grid grid.yaml --data data/fmnist/shards --eval data/fmnist/eval",
    "clipbudget submit grid.yaml --sweep-dir sweeps/demo --executor local",
    "clipbudget status sweeps/demo --watch",
    "clipbudget collect sweeps/demo --into results.parquet",
    "clipbudget data score data/fmnist/shards --checkpoint sweeps/demo/runs/<run_id>/final.pt --model tiny-vit-s-28",
)

#: The README's fit of "a real study (several models and budgets)". On the tiny study (one model, two sample
#: counts) it must stop with one line (exit 2) saying which runs to add, as the README says; the slow test
#: checks that, then fits the published table (``planner/prior/published.csv``, real multi-model results) to
#: ``fit.json`` as the stand-in for a real study's fit, so the commands that read ``fit.json`` run as written.
REAL_STUDY_FIT = "clipbudget fit sweeps/*/results --out fit.json"

#: What the study leaves in its folder. A README command outside :data:`STUDY` that reads one of these
#: (``clipbudget report sweeps/demo``, ``--fit fit.json``) is a follow-up: the slow test runs it after the
#: study, in README order, in the study's folder.
STUDY_OUTPUTS = ("data/fmnist", "grid.yaml", "sweeps/", "results.parquet", "fit.json")

_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def readme_commands(text: str | None = None) -> list[str]:
    """Every command of the README's ```bash blocks, in order (see the module docstring)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    commands = []
    for block in _BLOCK.findall(text):
        logical, pending = [], ""
        for raw in block.splitlines():
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            logical.append(pending + raw)
            pending = ""
        for line in logical:
            words = shlex.split(line, comments=True)  # '<run_id>' and globs survive as words
            if not words:
                continue
            command = " ".join(words)
            commands += [part.strip() for part in command.split("&&") if part.strip()]
    return commands


def _run(command: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    command = re.sub(r"^\.venv/bin/", "", command)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", COLUMNS="160")
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _needs_the_study(command: str) -> bool:
    return any(out in word for word in shlex.split(command) for out in STUDY_OUTPUTS)


def _listed(command: str) -> bool:
    return command in RUN_ELSEWHERE or command in STUDY or command == REAL_STUDY_FIT


def _follow_ups() -> list[str]:
    return [c for c in readme_commands() if not _listed(c) and _needs_the_study(c)]


def _fast_commands() -> list[str]:
    return [c for c in readme_commands() if not _listed(c) and not _needs_the_study(c)]


def test_every_readme_command_is_accounted_for():
    commands = readme_commands()
    assert len(commands) >= 12, commands  # the parser finds the README's commands (12 today)
    for command in commands:
        assert command.startswith(("clipbudget ", "bash ", ".venv/bin/clipbudget ")), (
            f"README command {command!r}: teach tests/test_readme.py how to run it")
    stale = [c for c in (*RUN_ELSEWHERE, *STUDY, REAL_STUDY_FIT) if c not in commands]
    assert not stale, f"listed in tests/test_readme.py but no longer in README.md: {stale}"
    assert len(_fast_commands()) + len(_follow_ups()) + len(STUDY) + len(RUN_ELSEWHERE) + 1 == len(commands)
    assert len(_fast_commands()) >= 6


def test_the_parser_joins_continuations_drops_comments_and_splits_chains():
    text = ("text\n```bash\nbash a.sh && clipbudget x --y 1   # note\nclipbudget plan \\\n    --z 2\n\n# only a comment\n"
            "```\n```python\nclipbudget not-bash\n```\n")
    assert readme_commands(text) == ["bash a.sh", "clipbudget x --y 1", "clipbudget plan --z 2"]


@pytest.mark.parametrize("command", _fast_commands())
def test_readme_command_runs(command, tmp_path):
    out = _run(command, tmp_path, timeout=300)
    assert out.returncode == 0, f"README command {command!r} exited {out.returncode}:\n{out.stderr[-2000:]}"
    assert (out.stdout + out.stderr).strip(), f"README command {command!r} printed nothing"


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_readme_tiny_study_runs_and_quality_filtering_wins(tmp_path):
    """The README's study, as written, on this machine's CPU: 4 runs; CLIP on the top 40 % by quality beats
    CLIP on all of the (60 % corrupted) pool at equal compute."""
    import pandas as pd

    rows = None
    for command in STUDY:
        if "<run_id>" in command:
            done = rows[(rows["strategy"] == "clip") & (rows["quality_fraction"] == 1.0)]
            command = command.replace("<run_id>", str(done["run_id"].iloc[0]))
        out = _run(command, tmp_path, timeout=3600)
        assert out.returncode == 0, f"README command {command!r} exited {out.returncode}:\n{out.stderr[-3000:]}"
        if command.startswith("clipbudget collect"):
            rows = pd.read_parquet(tmp_path / "results.parquet")
            assert len(rows) == 4 and set(rows["status"]) == {"completed"}, rows[["strategy", "status"]]
    clip = rows[rows["strategy"] == "clip"].set_index("quality_fraction")["zeroshot_top1"]
    print(f"\nREADME study: clip zero-shot top-1 on the top 40 % {clip[0.4]:.3f} vs all {clip[1.0]:.3f}")
    assert clip[0.4] > clip[1.0]
    out = _run(REAL_STUDY_FIT, tmp_path, timeout=600)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and "cannot fit a scaling law" in err[-1] and "run next" in err[-1], out.stderr
    assert not (tmp_path / "fit.json").exists()
    out = _run(f"clipbudget fit {ROOT / 'planner' / 'prior' / 'published.csv'} --out fit.json", tmp_path, timeout=1200)
    assert out.returncode == 0 and (tmp_path / "fit.json").is_file(), out.stderr[-3000:]
    for command in _follow_ups():  # README commands that read what the study wrote
        out = _run(command, tmp_path, timeout=600)
        assert out.returncode == 0, f"README command {command!r} exited {out.returncode}:\n{out.stderr[-3000:]}"
