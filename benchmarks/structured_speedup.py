"""Measured training-step speed-up of structured tickets over the dense FedAvg CNN, in one run.

Unstructured tickets run at dense speed on a CPU (see ``masked_vs_dense.py``); a structured ticket is a
narrower dense model and should be faster with the very same kernels. This prints, for the FedAvg CNN
(``cnn28`` defaults: channels 32/64, hidden 512) and structured tickets with 50/70/90% fewer prunable
parameters, cut by the pipeline's own pruning code (one ``channels`` step from θ0 of seed 0, the output
layer pruned at the same rate so the reduction is the rate), the samples/s of one training step (forward,
backward, SGD with momentum) at batch 32 on real MNIST digits, fp32, contiguous and channels_last.

All models run interleaved in this one process (same batches, same threads): each repeat times
``--steps`` steps of every model in turn, and a ticket's speed-up is the median over repeats of its
time paired with the dense model's in the same repeat and layout, so drift and other people's jobs hit
both alike. Also printed: the CPU capability line, the load average before and after (a loaded machine
makes every ratio noisier) and the peak RSS.

    .venv/bin/python benchmarks/structured_speedup.py [--threads 1] [--repeats 15] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import torch
from torch.nn import functional as F

from equitable_fl.allocator import retain_freed_memory
from equitable_fl.data.mnist_sample import prepare
from equitable_fl.data.tensors import TensorData
from equitable_fl.hardware import capabilities
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, measure_cost
from equitable_fl.pruning import PruneSettings, make_ticket

RATES = (0.5, 0.7, 0.9)
LAYOUTS = {"fp32": torch.contiguous_format, "fp32 channels_last": torch.channels_last}
OPTIONS = {  # command-line option → (default, meaning)
    "threads": (1, "intra-op threads of every model"),
    "repeats": (15, "timed calls of every model"),
    "steps": (20, "training steps per timed call"),
    "batch": (32, "samples per step"),
    "seed": (0, "the seed θ0 is drawn from"),
}


def tickets(seed: int) -> list[tuple[str, ModelSpec, dict[str, torch.Tensor]]]:
    """The dense model's θ0 and the structured tickets cut from it, as (label, spec, weights)."""
    spec = ModelSpec.from_config({"arch": "cnn28"}, (1, 28, 28), 10)
    theta0 = spec.init(seed).state_dict()
    ones = Mask.ones_like(theta0, spec.prunable(spec.build()))
    out = [("dense", spec, theta0)]
    for rate in RATES:
        settings = PruneSettings(rate=rate, output_rate_factor=1.0, structure="channels")
        ticket = make_ticket("layerwise", spec, theta0, ones, theta0, settings)
        out.append((f"{rate:.0%} fewer", ticket.spec, ticket.state))
    return out


def build(spec: ModelSpec, state: dict[str, torch.Tensor], layout: torch.memory_format) -> torch.nn.Module:
    model = spec.build()
    model.load_state_dict(state)
    return model.to(memory_format=layout).train()


def timed_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, batches: list) -> float:
    """Seconds for one pass of training steps over ``batches``."""
    t0 = time.perf_counter()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, (default, text) in OPTIONS.items():
        parser.add_argument(f"--{name}", type=int, default=default, help=f"{text} (default {default})")
    args = parser.parse_args()
    allocator = retain_freed_memory()  # as every training job runs
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    data = TensorData.from_prepared(prepare({}))
    gen = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(len(data.y_train), generator=gen)[: args.steps * args.batch].view(args.steps, -1)
    plain = [(data.normalise(data.x_train[i]), data.y_train[i]) for i in idx]
    batches = {
        name: [(x.contiguous(memory_format=layout), y) for x, y in plain] for name, layout in LAYOUTS.items()
    }

    models = tickets(args.seed)
    dense_model = build(models[0][1], models[0][2], torch.contiguous_format)  # what sizes are against
    contenders = []  # (label, layout name, model, optimizer, size against the dense model, spec)
    for label, spec, state in models:
        for name, layout in LAYOUTS.items():
            model = build(spec, state, layout)
            mask = Mask.ones_like(model.state_dict(), spec.prunable(model))
            _, size = measure_cost(model, spec, model.state_dict(), mask, dense_model)
            # fused, as the engine's local_train runs it
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)
            contenders.append((label, name, model, opt, size, spec))
    for _, name, model, opt, _, _ in contenders:  # warm-up: allocations, oneDNN primitive caches
        timed_steps(model, opt, batches[name])

    times: dict[tuple[str, str], list[float]] = {(c[0], c[1]): [] for c in contenders}
    for _ in range(args.repeats):
        for label, name, model, opt, _, _ in contenders:
            times[label, name].append(timed_steps(model, opt, batches[name]))

    caps = capabilities()
    print(f"CPU: {caps.line()}; {allocator}")
    print(
        f"threads={torch.get_num_threads()} batch={args.batch} steps/call={args.steps} "
        f"repeats={args.repeats} load average before {load_before[0]:.2f} after {os.getloadavg()[0]:.2f} "
        f"(on {os.cpu_count()} logical CPUs)"
    )
    header = (
        f"{'model':<11} {'channels':>9} {'hidden':>6} {'params':>9} {'fewer':>6} {'layout':<19} "
        f"{'samples/s':>10} {'speed-up':>9} {'vs dense fp32':>13} {'FLOP ratio':>10}"
    )
    print(header)
    dense_fp32 = times["dense", "fp32"]
    for label, name, _, _, size, spec in contenders:
        mine, dense = times[label, name], times["dense", name]
        speedup = statistics.median(d / m for d, m in zip(dense, mine, strict=True))
        vs_fp32 = statistics.median(d / m for d, m in zip(dense_fp32, mine, strict=True))
        rate = args.batch * args.steps / statistics.median(mine)
        fewer = 1.0 - size.prunable_kept / size.prunable_total
        widths = "/".join(str(c) for c in spec.options["channels"])
        print(
            f"{label:<11} {widths:>9} {spec.options['hidden']:>6} {size.params_kept:>9} {fewer:>6.1%} "
            f"{name:<19} {rate:>10.0f} {speedup:>8.2f}x {vs_fp32:>12.2f}x {size.flop_speedup_model:>9.2f}x"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
