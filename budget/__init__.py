"""Pure compute accounting for CLIP training: model catalog, per-sample FLOPs, hardware, GPU-hours.

Imports nothing of clipbudget's other packages and never imports torch.
"""
