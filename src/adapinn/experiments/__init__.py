"""Experiments: typed configs, the registry, presets, plots."""
