"""Equitable-FL: federated learning with lottery-ticket sparsity for resource-constrained clients.

The package holds all the logic of the reproduction pipeline; the Snakemake workflow under
``workflow/`` only calls into it. Modules are small and each has one job:

- ``data``: dataset registry, embedded and fetched datasets, the prepared on-disk format.
- ``partition``: splitting a training set over simulated clients.
- ``resources``: client resources, heterogeneity scores and tiers.
- ``models`` / ``cost``: the CNNs and their parameter, FLOP and byte costs.
- ``mask`` / ``pruning``: lottery-ticket masks, magnitude pruning and rewinding.
- ``eligibility``: who may join a phase, checked against the real model's cost.
- ``fedavg`` / ``phase``: the federated training engine.
- ``summary`` / ``report``: per-cell metrics, tables and figures.
"""

__version__ = "0.1.0"
