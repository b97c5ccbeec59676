"""Running configurations: data, the training engine, evaluation and sweep execution.

Importing this package (or its config/grid modules) must not import torch; only the
modules that train or evaluate do.
"""
