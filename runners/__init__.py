"""Running configurations: data, the training engine, evaluation and sweep execution.

Importing this package (or its config, gridfile, recipe, sweep and executors modules) must not import
torch; only the modules that train or evaluate do.
"""
