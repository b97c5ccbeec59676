"""Errors a user can act on.

Every error that a library function raises because of the user's input subclasses
:class:`ClipbudgetError`; the CLI prints its message as one line and exits 2.
Messages name the condition, the value and, where there is a choice, the valid choices.
"""

from __future__ import annotations


class ClipbudgetError(Exception):
    """Base class of every user-facing error of clipbudget (exit code 2 in the CLI)."""


class ConfigError(ClipbudgetError, ValueError):
    """A configuration, grid or argument is invalid; the message says which and how to fix it."""


class UnknownModelError(ConfigError, KeyError):
    """A model name is neither in the catalog nor a readable open_clip JSON config."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
