"""The config check's memory estimate beside the measured peak RSS of real phase-1 jobs, in one run.

For each case (synthetic uint8 images at 3×S×S, the ``cnn_rgb`` model, one round of every client), the
prepared dataset, partition, client profiles and θ0 are written by one process; a fresh process then runs
the phase-1 training step (``equitable_fl.stages.train.phase``) and reports its peak RSS. The table shows
the measured peak, :func:`equitable_fl.config.memory.estimate` for the same settings and their ratio.
The cases are chosen so that each term of the estimate dominates once: the normaliser fit (many
images), evaluation (large test batches) and training (large batches).

    .venv/bin/python benchmarks/memory_estimate.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

# n_train, n_test, side, batch_size, eval_batch_size, clients
CASES = [
    (20000, 5000, 32, 32, 1000, 20),  # normaliser fit dominates
    (600, 3000, 64, 256, 3000, 4),  # evaluation dominates
    (3000, 200, 64, 512, 50, 2),  # training activations dominate
]


def _experiment(case: tuple[int, ...]):
    from equitable_fl.config import Experiment

    _, _, side, batch, eval_batch, clients = case
    return Experiment.load(_config(side, batch, eval_batch, clients))


def _config(side: int, batch: int, eval_batch: int, clients: int) -> dict:
    return {
        "grid": {"datasets": ["synthetic"], "pruning_rates": [0.5], "seeds": [0]},
        "datasets": {
            "synthetic": {
                "kind": "image_folder",
                "options": {"resolution": side},
                "model": {"arch": "cnn_rgb"},
            }
        },
        "clients": {
            "count": clients,
            "resources": {"low": 1.2, "high": 1.6, "jitter": 0.1},
            "tiers": {"count": 1},
        },
        "training": {"local_epochs": 1, "batch_size": batch, "eval_batch_size": eval_batch},
        "phases": [{"rounds": 1}],
    }


def _prepare(case: tuple[int, ...], root: Path) -> None:
    import numpy as np

    from equitable_fl.data.prepared import PreparedDataset, save_prepared
    from equitable_fl.stages import clients, train

    n_train, n_test, side, *_ = case
    exp = _experiment(case)
    rng = np.random.default_rng(0)
    shape = (3, side, side)
    ds = PreparedDataset(
        "synthetic",
        rng.integers(0, 255, (n_train, *shape), dtype=np.uint8),
        rng.integers(0, 5, n_train),
        rng.integers(0, 255, (n_test, *shape), dtype=np.uint8),
        rng.integers(0, 5, n_test),
        tuple("abcde"),
    )
    save_prepared(ds, root / "data.npz", root / "meta.json")
    clients.partition(
        str(root / "data.npz"),
        str(root / "meta.json"),
        0,
        exp.partition_slice(),
        str(root / "part.json"),
        str(root / "p.csv"),
    )
    clients.profiles(0, exp.clients_slice(), str(root / "clients.json"))
    train.init(
        str(root / "meta.json"),
        0,
        exp.model_config("synthetic"),
        str(root / "w0"),
        str(root / "card.json"),
        str(root / "m0"),
    )


def _train(case: tuple[int, ...], root: Path) -> None:
    from equitable_fl import layout as L
    from equitable_fl.stages import train

    exp = _experiment(case)
    out = root / "phase1"
    files = {name.split(".")[0]: str(out / name) for name in (*L.TRAIN_FILES, L.REWIND)}
    written = {"npz": "data.npz", "meta": "meta.json", "partition_json": "part.json"}
    written |= {
        "clients_json": "clients.json",
        "card": "card.json",
        "start_weights": "w0",
        "start_mask": "m0",
    }
    inputs = {arg: str(root / name) for arg, name in written.items()}
    train.phase(**inputs, params=exp.phase_slice(1, 0), threads=1, out=train.TrainingOutputs(**files))
    print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def _estimate(case: tuple[int, ...]):
    import dataclasses

    from equitable_fl.config.dataset_checks import dataset_facts
    from equitable_fl.config.memory import estimate

    n_train, n_test, *_, count = case
    exp = _experiment(case)
    _, facts = dataset_facts(exp.cfg)
    fact = dataclasses.replace(facts["synthetic"], n_train=n_train, n_test=n_test)
    return estimate(fact, fact.net, exp.cfg["training"], count, "phase 1")


def main() -> None:
    if len(sys.argv) == 4:  # a worker: prepare | train, case, root
        step, case, root = sys.argv[1], tuple(json.loads(sys.argv[2])), Path(sys.argv[3])
        (_prepare if step == "prepare" else _train)(case, root)
        return
    mib = 1024**2
    print(
        f"{'train, test, side, batch, eval batch, clients':<55} {'measured':>9} {'estimate':>9} {'ratio':>6}"
    )
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            args = [json.dumps(case), tmp]
            subprocess.run([sys.executable, __file__, "prepare", *args], check=True)
            done = subprocess.run(
                [sys.executable, __file__, "train", *args], check=True, capture_output=True, text=True
            )
        peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_rss"]
        est = _estimate(case)
        print(f"{case!s:<55} {peak / mib:>8.0f}M {est.peak / mib:>8.0f}M {est.peak / peak:>6.2f}")
        print(f"    {est.breakdown()}")


if __name__ == "__main__":
    main()
