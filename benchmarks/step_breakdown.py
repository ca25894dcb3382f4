"""Where one training step's time goes, layer by layer, against this CPU's matmul peak.

``benchmarks/engine.py`` says how close the engine's whole step comes to the 1-thread fp32 matmul peak;
this script says why it is not closer. For the FedAvg CNN (or the demo CNN) at batch 32 it times, in
one process and interleaved with a 2048² GEMM:

- every layer's forward and backward alone (conv, max-pool, ReLU, linear, loss), on the tensors and
  output gradients of a real training step on real MNIST digits, with the layout the engine uses;
- the SGD update (PyTorch's fused kernel, as in the engine) on the model's real gradients;
- the whole step (zero_grad, forward, loss, backward, update) as the engine runs it.

and prints each part's share of the step, its GFLOP/s and that as a share of the GEMM peak measured
beside it. The sum of the parts against the whole step shows what autograd and Python cost on top of
the kernels. Timing is in-process wall clock, medians over interleaved repeats: run it on an otherwise
quiet machine.

    .venv/bin/python benchmarks/step_breakdown.py [--model fedavg|demo] [--layout channels_last|contiguous]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from equitable_fl.allocator import retain_freed_memory
from equitable_fl.data.mnist_sample import prepare
from equitable_fl.data.tensors import TensorData
from equitable_fl.federation.execution import Execution
from equitable_fl.hardware import capabilities
from equitable_fl.modelspec import ModelSpec

MODELS = {"fedavg": {}, "demo": {"channels": [16, 32], "hidden": 128}}
GEMM = 2048


def _layer_flops(layer: nn.Module, x: torch.Tensor, out: torch.Tensor) -> float:
    """Forward FLOPs of one layer at this batch (multiply-adds × 2); 0 for layers without weights."""
    if isinstance(layer, nn.Conv2d):
        per_output = 2 * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        return float(out.numel() * per_output)
    if isinstance(layer, nn.Linear):
        return float(2 * x.shape[0] * layer.in_features * layer.out_features)
    return 0.0


class Part:
    """One timed piece of the step: a name, a call, and the FLOPs that call does."""

    def __init__(self, name: str, call: Callable[[], object], flops: float) -> None:
        self.name, self.call, self.flops = name, call, flops
        self.seconds: list[float] = []


def _parts(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, opt: torch.optim.Optimizer) -> list[Part]:
    """Forward and backward of every layer on a real step's tensors, the loss and the update."""
    layers = [*model.features, "flatten", model.hidden, "relu", model.output]
    parts: list[Part] = []
    x = xb
    for i, layer in enumerate(layers):
        if layer == "flatten":
            x = x.flatten(1)
            continue
        # a ReLU alone on its input (the model's act in place, which a leaf tensor cannot take)
        module = nn.ReLU() if layer == "relu" or isinstance(layer, nn.ReLU) else layer
        inp = x.detach().requires_grad_(i > 0)  # the input images need no gradient
        out = module(inp)  # kept with its graph: the backward part runs only the backward
        grad_out = torch.randn_like(out)
        params = [p for p in module.parameters()]
        wrt = ([inp] if i > 0 else []) + params
        flops = _layer_flops(module, inp, out)
        name = f"{i}: {type(module).__name__}"
        # backward FLOPs: weight gradient always, input gradient past the first layer
        parts.append(Part(f"{name} forward", lambda m=module, a=inp: m(a.detach()), flops))
        parts.append(
            Part(
                f"{name} backward",
                lambda o=out, g=grad_out, w=wrt: torch.autograd.grad(o, w, g, retain_graph=True),
                flops * (2 if i > 0 else 1) if params else 0.0,
            )
        )
        x = out.detach()
    logits = x.detach().requires_grad_()
    parts.append(
        Part("loss forward + backward", lambda: torch.autograd.grad(F.cross_entropy(logits, yb), logits), 0)
    )
    F.cross_entropy(model(xb), yb).backward()
    parts.append(Part("SGD update (fused)", opt.step, 0.0))
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="fedavg")
    parser.add_argument("--layout", choices=["channels_last", "contiguous"], default="channels_last")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    allocator = retain_freed_memory()
    torch.set_num_threads(1)
    print(f"CPU: {capabilities().line()}")
    print(f"{allocator}; 1 thread, batch {args.batch}, model {args.model}, {args.layout}, "
          f"{args.repeats} interleaved repeats, load average {os.getloadavg()[0]:.2f}")  # fmt: skip

    data = TensorData.from_prepared(prepare({"test_size": 100, "split_seed": 0}))
    ex = Execution("fp32", args.layout == "channels_last")
    spec = ModelSpec.from_config({"arch": "cnn28", **MODELS[args.model]}, (1, 28, 28), 10)
    model = ex.prepare(spec.init(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)
    xb = ex.inputs(data.normalise(data.x_train[: args.batch]))
    yb = data.y_train[: args.batch]

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()

    for _ in range(5):
        step()  # momentum buffers exist, as in every step after a client's first
    parts = _parts(model, xb, yb, opt)
    whole = Part("whole step", step, 0.0)
    a, b = torch.randn(GEMM, GEMM), torch.randn(GEMM, GEMM)
    gemm = Part("2048² GEMM", lambda: torch.mm(a, b), 2.0 * GEMM**3)
    timed = [*parts, whole, gemm]
    for r in range(args.repeats + 3):
        for part in timed if r % 2 == 0 else reversed(timed):
            t0 = time.perf_counter()
            part.call()
            if r >= 3:  # the first repeats warm every kernel up
                part.seconds.append(time.perf_counter() - t0)

    peak = gemm.flops / statistics.median(gemm.seconds) / 1e9
    step_s = statistics.median(whole.seconds)
    step_flops = sum(p.flops for p in parts)
    print(f"fp32 GEMM peak {peak:.0f} GFLOP/s; whole step {1e3 * step_s:.2f} ms = "
          f"{args.batch / step_s:.0f} samples/s, {step_flops / step_s / 1e9:.0f} GFLOP/s = "
          f"{100 * step_flops / step_s / 1e9 / peak:.0f}% of peak\n")  # fmt: skip
    print(f"{'part':<34} {'ms':>7} {'% of step':>10} {'MFLOP':>8} {'GFLOP/s':>8} {'% of peak':>10}")
    total = 0.0
    for p in parts:
        s = statistics.median(p.seconds)
        total += s
        rate = p.flops / s / 1e9
        print(f"{p.name:<34} {1e3 * s:>7.3f} {100 * s / step_s:>9.1f}% {p.flops / 1e6:>8.1f} "
              f"{rate:>8.0f} {100 * rate / peak:>9.0f}%" if p.flops else
              f"{p.name:<34} {1e3 * s:>7.3f} {100 * s / step_s:>9.1f}%")  # fmt: skip
    print(f"{'sum of the parts':<34} {1e3 * total:>7.3f} {100 * total / step_s:>9.1f}%")
    print(f"{'autograd, Python, caches (rest)':<34} {1e3 * (step_s - total):>7.3f} "
          f"{100 * (step_s - total) / step_s:>9.1f}%")  # fmt: skip


if __name__ == "__main__":
    main()
