"""The built-in prior: published CLIP results (``published.csv``, one citation per row) and the scaling
law fitted to them (``prior_fit.json``, precomputed by ``python -m planner.prior.build`` so that ``plan`` and
``predict`` load it in milliseconds)."""

from pathlib import Path

PUBLISHED_CSV = Path(__file__).resolve().parent / "published.csv"
PRIOR_FIT_JSON = Path(__file__).resolve().parent / "prior_fit.json"


def published_rows(*, prior_only: bool = False) -> list[dict]:
    """The published table as dicts (strings as in the CSV); ``prior_only`` keeps the rows the prior fits."""
    import csv

    with open(PUBLISHED_CSV, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if r.get("used_in_prior") == "1"] if prior_only else rows
