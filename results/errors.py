"""Errors of the results package (it imports nothing else of clipbudget's)."""

from __future__ import annotations


class ResultsError(ValueError):
    """A results table, row or store is invalid or unreadable; the message says what and where."""


class SchemaError(ResultsError):
    """A row does not fit the v1 schema; the message lists every offending column."""
