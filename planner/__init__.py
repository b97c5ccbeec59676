"""Planning, fitting and the command line: what to train under a compute budget."""

from budget import __version__

__all__ = ["__version__"]
