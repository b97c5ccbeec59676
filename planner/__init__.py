"""Planning, fitting and the command line: what to train under a compute budget."""

__version__ = "0.1.0"
