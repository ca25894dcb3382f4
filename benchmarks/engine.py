"""The training engine against a typical research loop and against this CPU's matmul peak, in one run.

Prints, for the FedAvg CNN (or the demo CNN) at batch 32: samples/s of one federated round's client
training (20 clients × 200 real MNIST digits by default), for

- a *research loop*: ``copy.deepcopy`` of the global model per client, a ``DataLoader`` over a
  ``TensorDataset``, ``torch.optim.SGD``, FedAvg over the returned state dicts (what most FL research
  code does);
- the project's in-process engine (:class:`equitable_fl.federation.engine.InProcessEngine`) in fp32 and,
  where the CPU has native bf16, bf16 autocast, each contiguous and channels_last;
- with ``--threads N`` ≥ 2, also the engine's worker processes (``compute.workers``): N processes × 1
  thread (channels_last, each precision), against the same execution in 1 process × N threads on the
  same clients; a pool is timed on its second round, as in a phase whose workers live for all rounds;

measured interleaved round by round in this one process (same clients, same batches, same threads), as
medians, with ratios to the research loop and the share of the measured 1-thread matmul peak
(2048² GEMM, fp32 and bf16) that the engine's training FLOPs reach. Also the CPU capability line and the
peak RSS. Timing is in-process wall clock: run it on an otherwise quiet machine.

    .venv/bin/python benchmarks/engine.py [--model fedavg|demo] [--threads 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from equitable_fl.config import TrainSettings
from equitable_fl.cost import ModelCost
from equitable_fl.data.mnist_sample import prepare
from equitable_fl.data.tensors import TensorData
from equitable_fl.federation.engine import InProcessEngine
from equitable_fl.federation.execution import Execution
from equitable_fl.federation.strategy import EquitableStrategy, PhasePlan, fedavg
from equitable_fl.hardware import capabilities
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, measure_cost
from equitable_fl.resources import ClientProfile

MODELS = {"fedavg": {}, "demo": {"channels": [16, 32], "hidden": 128}}


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of an n×n GEMM in ``dtype`` (median of ``repeats``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def research_round(
    model: torch.nn.Module, data: TensorData, parts: list[torch.Tensor], settings: TrainSettings
) -> float:
    """One round the way typical FL research code does it; returns the client-training seconds."""
    t0 = time.perf_counter()
    states, weights = [], []
    for c, idx in enumerate(parts):
        local = copy.deepcopy(model)
        local.train()
        x = data.normalise(data.x_train[idx])
        loader = DataLoader(
            TensorDataset(x, data.y_train[idx]),
            batch_size=settings.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(c),
        )
        opt = torch.optim.SGD(local.parameters(), lr=settings.lr, momentum=settings.momentum)
        for _ in range(settings.local_epochs):
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(local(xb), yb).backward()
                opt.step()
        states.append(local.state_dict())
        weights.append(float(len(idx)))
    seconds = time.perf_counter() - t0
    model.load_state_dict(fedavg(states, weights))
    return seconds


def engine_round(
    spec: ModelSpec, start: dict[str, torch.Tensor], data: TensorData, parts: list[torch.Tensor],
    settings: TrainSettings, execution: Execution, cost: ModelCost, rnd: int, workers: int = 0,
) -> float:  # fmt: skip
    """One round of the project's engine; returns the client-training seconds it measured itself.

    With ``workers`` the phase runs two rounds and the second is timed: the pool's start and its
    workers' first touch of the model are paid once per phase, not once per round.
    """
    model = spec.build()
    mask = Mask.ones_like(start, spec.prunable(model))
    profiles = [ClientProfile(c, 1.0, 1.0, 1.0, 1.0, 1) for c in range(len(parts))]
    rounds = 2 if workers else 1
    plan = PhasePlan("bench", seed=rnd, stream=1, rounds=rounds, settings=settings, admitted_tiers=None,
                     check_budget=False)  # fmt: skip
    strategy = EquitableStrategy(plan, profiles, [len(p) for p in parts], mask, cost, cost)
    run = InProcessEngine(execution, workers=workers).run(strategy, model, start, data, parts)
    return run.history[-1].train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="fedavg")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--samples", type=int, default=200, help="samples per client")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each variant")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    caps = capabilities()
    print(f"CPU: {caps.line()}")
    print(f"threads {args.threads}, {args.clients} clients × {args.samples} samples, batch {args.batch}, "
          f"model {args.model}, {args.rounds} interleaved rounds (+1 warm-up), "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip

    ds = prepare({"test_size": 100, "split_seed": 0})
    data = TensorData.from_prepared(ds)
    n = args.clients * args.samples
    if n > len(data.y_train):
        raise SystemExit(f"{n} samples needed, mnist-sample has {len(data.y_train)} for training")
    parts = [torch.arange(c * args.samples, (c + 1) * args.samples) for c in range(args.clients)]
    settings = TrainSettings.from_config(
        {"local_epochs": 1, "batch_size": args.batch, "eval_batch_size": 100}
    )
    spec = ModelSpec.from_config({"arch": "cnn28", **MODELS[args.model]}, (1, 28, 28), 10)
    model = spec.init(0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    cost, size = measure_cost(model, spec, start, Mask.ones_like(start, spec.prunable(model)))
    flops_per_sample = size.train_flops_per_sample

    peaks = {"fp32": matmul_peak(torch.float32)}
    if caps.native_bf16:
        peaks["bf16"] = matmul_peak(torch.bfloat16)
    print("matmul peak (2048², 1 call, this thread count): "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))  # fmt: skip

    variants: dict[str, Callable[[int], float]] = {
        "research loop (fp32)": lambda r: research_round(copy.deepcopy(model), data, parts, settings)
    }
    for precision in peaks:
        for layout in (False, True):
            ex = Execution(precision, layout)
            name = f"engine {precision}{' channels_last' if layout else ''}"
            variants[name] = lambda r, ex=ex: engine_round(spec, start, data, parts, settings, ex, cost, r)
    pools: dict[str, str] = {}  # worker variant → the same execution in one process
    if args.threads > 1:
        for precision in peaks:
            ex = Execution(precision, True)
            name = f"engine {precision} channels_last, {args.threads} workers × 1 thread"
            variants[name] = lambda r, ex=ex: engine_round(
                spec, start, data, parts, settings, ex, cost, r, workers=args.threads
            )
            pools[name] = f"engine {precision} channels_last"
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds + 1):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            seconds = variants[name](r)
            if r > 0:  # round 0 warms up every variant
                times[name].append(seconds)

    base = n / statistics.median(times["research loop (fp32)"])
    print(
        f"\n{'variant':<48} {'samples/s':>10} {'× research':>11} {'% of fp32 peak':>15} {'% of own peak':>14}"
    )
    for name, ts in times.items():
        sps = n / statistics.median(ts)
        precision = "bf16" if "bf16" in name else "fp32"
        gflops = sps * flops_per_sample / 1e9
        print(f"{name:<48} {sps:>10.0f} {sps / base:>10.2f}× {100 * gflops / peaks['fp32']:>14.0f}% "
              f"{100 * gflops / peaks[precision]:>13.0f}%")  # fmt: skip
    for pool, single in pools.items():
        # paired by round (both ran back to back), so load that drifts hits both alike
        ratio = statistics.median(s / p for s, p in zip(times[single], times[pool], strict=True))
        print(f"{pool} against 1 process × {args.threads} threads: {ratio:.2f}× (median paired ratio)")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\ntraining FLOPs per sample {flops_per_sample / 1e6:.1f} M; peak RSS {rss_mb:.0f} MB"
          + (f" (largest worker {workers_mb:.0f} MB, shared pages counted)" if pools else "")
          + f"; load average after {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
