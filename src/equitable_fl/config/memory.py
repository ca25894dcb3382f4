"""How much memory one training job needs, estimated from the config before any job runs.

A training job (a phase, vanilla FL) holds the prepared dataset, the models and the activations of one
batch. Its peak, in bytes, is estimated as::

    peak = runtime + data + max(normaliser_fit, models + max(train_activations, eval_activations))

    runtime           = 512 MiB: Python, PyTorch and this library once imported (measured max RSS ≈ 515 MB)
    data              = (N_train + N_test) × (C·H·W + 8): uint8 images and int64 labels, kept all along
    normaliser_fit    = 16 × N_train × C·H·W: the per-channel statistics of the training images are
                        computed from a uint8 copy and two float64 copies of them (measured: 16×), freed
                        before training starts
    models            = (cohort + 8) × P × 4: P fp32 parameters, once per update a round's cohort keeps
                        until aggregation (cohort = ⌈client_fraction × clients.count⌉, at least
                        min_clients), plus 8 copies: the trained model's weights, gradients and momentum,
                        the global state, the start state, the aggregate, a rewind snapshot and the mask
    train_activations = batch_size × (12·C·H·W + Σ_blocks (4·conv + 12·pooled) + 8·hidden + 8·classes
                        + 4·max_blocks conv): the normalised input batch and its copies, each block's
                        saved conv output (fp32), max-pool output (fp32) and indices (int64), the dense
                        layers, and the gradient of the largest conv output during backward
    eval_activations  = eval_batch_size × max_blocks 4·(input + 2·conv + pooled): the test batch, one
                        block at a time without gradients (the conv's output is written twice: PyTorch's
                        CPU convolution reorders it)

With ``compute.workers`` (worker processes of one thread each, forked by the job), every worker adds::

    worker            = 256 MiB + 5 × P × 4 + train_activations: the runtime pages a forked process
                        comes to own, its model's weights, gradients and momentum, the update it sends
                        back and that update's shared-memory copy, and the activations of its own batch;
                        the dataset stays shared with the job (measured: a FedAvg CNN worker's unique
                        memory levels off at 286 MiB after 4 rounds, against 300 estimated)

``conv`` and ``pooled`` are a block's output sizes (channels × height × width) before and after its
max-pool (:func:`equitable_fl.architectures.net_shape`). ``benchmarks/memory_estimate.py`` runs real
phase jobs and prints their peak RSS beside this estimate. Classes not known before the fetch count as
2; a dataset whose size is not known before the fetch (an archive of a new image-folder dataset) counts
no data. Each phase's training settings are checked (they may override the batch sizes), and vanilla FL's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from equitable_fl.architectures import NetShape
from equitable_fl.config.dataset_checks import DatasetFacts
from equitable_fl.config.messages import show

MIB = 1024**2
RUNTIME_BYTES = 512 * MIB
FIT_BYTES_PER_VALUE = 16
MODEL_COPIES = 8
WORKER_RUNTIME_BYTES = 256 * MIB
WORKER_MODEL_COPIES = 5
BUDGET_KEY = "compute.memory_budget_mb"


@dataclass(frozen=True)
class MemoryEstimate:
    """The parts of one training job's estimated peak, in bytes (see the module docstring)."""

    job: str
    runtime: int
    data: int
    normaliser_fit: int
    models: int
    train_activations: int
    eval_activations: int
    data_known: bool
    workers: int = 0  # worker processes (compute.workers) and the bytes of each
    worker: int = 0

    @property
    def peak(self) -> int:
        working = self.models + max(self.train_activations, self.eval_activations)
        return self.runtime + self.data + max(self.normaliser_fit, working) + self.workers * self.worker

    def breakdown(self) -> str:
        mib = {k: _mib(getattr(self, k)) for k in ("runtime", "data", "normaliser_fit", "models")}
        acts = f"activations {_mib(self.train_activations)} (evaluation {_mib(self.eval_activations)})"
        unknown = "" if self.data_known else ", data size unknown before the fetch: not counted"
        pool = f" + {self.workers} workers × {_mib(self.worker)}" if self.workers else ""
        return (
            f"runtime {mib['runtime']} + data {mib['data']} + max(normaliser fit {mib['normaliser_fit']}, "
            f"models {mib['models']} + {acts}){pool} MiB{unknown}"
        )


def _mib(n: int) -> str:
    return f"{math.ceil(n / MIB):,}"


def cohort(training: Mapping[str, Any], clients: int) -> int:
    """The most clients one round trains (the updates kept until aggregation)."""
    k = max(int(training["min_clients"]), math.ceil(float(training["client_fraction"]) * clients))
    return min(clients, k)


def estimate(
    facts: DatasetFacts,
    net: NetShape,
    training: Mapping[str, Any],
    clients: int,
    job: str,
    workers: int = 0,
) -> MemoryEstimate:
    """The memory estimate of one training job of ``facts``' dataset with these training settings."""
    c, h, w = net.input_shape
    pixels = c * h * w
    n_train, n_test = facts.n_train or 0, facts.n_test or 0
    convs = [b.out_channels * b.conv_hw[0] * b.conv_hw[1] for b in net.blocks]
    pooled = [b.out_channels * b.pooled_hw[0] * b.pooled_hw[1] for b in net.blocks]
    inputs = [b.in_channels * b.conv_hw[0] * b.conv_hw[1] for b in net.blocks]
    saved = 12 * pixels + sum(4 * a + 12 * p for a, p in zip(convs, pooled, strict=True))
    saved += 8 * net.hidden + 8 * net.num_classes + 4 * max(convs, default=0)
    evaluated = max((4 * (i + 2 * a + p) for i, a, p in zip(inputs, convs, pooled, strict=True)), default=0)
    train_activations = int(training["batch_size"]) * saved
    return MemoryEstimate(
        job=job,
        runtime=RUNTIME_BYTES,
        data=(n_train + n_test) * (pixels + 8),
        normaliser_fit=FIT_BYTES_PER_VALUE * n_train * pixels,
        models=(cohort(training, clients) + MODEL_COPIES) * net.params * 4,
        train_activations=train_activations,
        eval_activations=int(training["eval_batch_size"]) * evaluated,
        data_known=facts.n_train is not None,
        workers=workers,
        worker=WORKER_RUNTIME_BYTES + WORKER_MODEL_COPIES * net.params * 4 + train_activations,
    )


def memory_problems(
    facts: Iterable[DatasetFacts],
    jobs: Mapping[str, Mapping[str, Any]],
    clients: int,
    budget_mb: float,
    where: str = "",
    workers: int = 0,
) -> list[str]:
    """The jobs (name → training settings) of each dataset whose estimate passes the budget.

    ``workers``: the worker processes each job forks (``compute.workers`` as resolved for a CPU job).
    """
    out = []
    for fact in facts:
        if fact.net is None:
            continue
        worst = max(
            (estimate(fact, fact.net, t, clients, job, workers) for job, t in jobs.items()),
            key=lambda e: e.peak,
        )
        if worst.peak <= budget_mb * MIB:
            continue
        t = jobs[worst.job]
        shrink = [
            f"training.batch_size ({t['batch_size']})",
            f"training.eval_batch_size ({t['eval_batch_size']})",
            f"clients.count × training.client_fraction ({cohort(t, clients)} clients per round)",
            f"datasets.{fact.name}.model (channels, hidden: {fact.net.params:,} parameters)",
        ]
        if workers:
            shrink.append(f"compute.workers ({workers} worker processes)")
        if fact.spec.kind != "embedded":
            shrink.insert(
                0, f"datasets.{fact.name}.options.train_limit ({show(fact.options.get('train_limit'))})"
            )
        if fact.spec.kind == "image_folder":
            shrink.insert(0, f"datasets.{fact.name}.options.resolution ({fact.options['resolution']})")
        need = math.ceil(worst.peak / MIB)
        out.append(
            f"{where}{BUDGET_KEY}: {budget_mb:g} is below the estimated {need:,} MiB of the {worst.job} "
            f"training job of dataset {fact.name!r} ({worst.breakdown()}); allowed: ≥ {need}, or lower "
            f"what drives the estimate: {'; '.join(shrink)}"
        )
    return out
