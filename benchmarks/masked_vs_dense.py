"""Wall-clock cost of a masked (pruned) model against the dense one, measured side by side.

Equitable-FL reports FLOP ratios for sparse models; this benchmark shows what they buy in seconds on
this machine with the engine as it runs (dense PyTorch kernels, mask re-applied in place after every
step). Expect a ratio near 1.0: unstructured sparsity does not speed up dense kernels.

    .venv/bin/python benchmarks/masked_vs_dense.py [--repeats 5] [--density 0.25]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from equitable_fl.config import TrainSettings
from equitable_fl.data.mnist_sample import prepare
from equitable_fl.data.tensors import TensorData
from equitable_fl.federation.client import MaskedParams, local_train
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, measure_cost
from equitable_fl.pruning import PruneSettings, prune


def seconds_per_sample(model, state, masked, data, indices, settings) -> float:
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    local_train(model, state, masked, data, indices, settings, gen)
    return (time.perf_counter() - t0) / (len(indices) * settings.local_epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--density", type=float, default=0.25, help="share of weights kept")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = TensorData.from_prepared(prepare({}))
    indices = torch.arange(args.samples)
    settings = TrainSettings.from_config({"local_epochs": 1, "batch_size": 32})
    print(f"threads={args.threads} samples/run={args.samples} repeats={args.repeats}")
    print(f"{'model':<32} {'params':>9} {'dense ms/sample':>16} {'masked ms/sample':>17} "
          f"{'measured speed-up':>18} {'FLOP speed-up':>14}")  # fmt: skip
    for label, overrides in [("cnn28 demo (16, 32, 128)", {"channels": [16, 32], "hidden": 128}),
                             ("cnn28 FedAvg CNN (32, 64, 512)", {})]:  # fmt: skip
        spec = ModelSpec.from_config({"arch": "cnn28", **overrides}, (1, 28, 28), 10)
        model = spec.init(0)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        dense = Mask.ones_like(state, spec.prunable(model))
        rate = 1.0 - np.sqrt(args.density)  # two pruning steps reach the density
        sparse = dense
        for _ in range(2):
            sparse = prune("layerwise", state, sparse, PruneSettings(rate=rate, output_rate_factor=1.0))
        sparse_state = {k: v.clone() for k, v in state.items()}
        sparse.apply_(sparse_state)
        _, size = measure_cost(model, spec, sparse_state, sparse)
        runs = {"dense": [], "masked": []}
        seconds_per_sample(model, state, MaskedParams(model, dense), data, indices, settings)  # warm-up
        for _ in range(args.repeats):  # interleaved so drift hits both alike
            runs["dense"].append(
                seconds_per_sample(model, state, MaskedParams(model, dense), data, indices, settings)
            )
            runs["masked"].append(
                seconds_per_sample(model, sparse_state, MaskedParams(model, sparse), data, indices, settings)
            )
        d, m = statistics.median(runs["dense"]), statistics.median(runs["masked"])
        print(f"{label:<32} {size.params_total:>9} {1e3 * d:>16.3f} {1e3 * m:>17.3f} "
              f"{d / m:>17.2f}x {size.flop_speedup_model:>13.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
