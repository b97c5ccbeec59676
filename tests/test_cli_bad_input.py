"""Bad input to ``status --watch`` and ``predict``: one line on stderr, exit 2, nothing written.

(``data fashion-mnist`` bad input is tested in ``test_data_demo.py``, ``run`` in ``test_run_cli.py``.)
"""

from __future__ import annotations

import pytest

from planner.cli.main import main


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_status_watch_needs_a_positive_interval(value, tmp_path, capsys):
    rc = main(["status", str(tmp_path), "--watch", value])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--watch" in err, err
    assert list(tmp_path.iterdir()) == []


def test_predict_refuses_more_unique_samples_than_samples_seen(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["predict", "--model", "ViT-B-32", "--samples-seen", "1e8", "--unique-samples", "4e8"])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--unique-samples 4e+08 exceeds --samples-seen 1e+08" in err
    assert captured.out == "" and list(tmp_path.iterdir()) == []
