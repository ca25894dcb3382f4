"""Datasets: a registry of what can be loaded, and the prepared on-disk format every loader produces."""
