"""The training engine against a typical research loop and against this CPU's matmul peak, in one run.

Prints, for the FedAvg CNN (or the demo CNN) at batch 32: samples/s of one federated round's client
training (10 clients × 200 real MNIST digits by default, 15 rounds), for

- a *research loop*: ``copy.deepcopy`` of the global model per client, a ``DataLoader`` over a
  ``TensorDataset``, ``torch.optim.SGD``, FedAvg over the returned state dicts (what most FL research
  code does);
- the project's in-process engine (:class:`equitable_fl.federation.engine.InProcessEngine`) in fp32 and,
  where the CPU has native bf16, bf16 autocast, each contiguous and channels_last;
- with ``--threads N`` ≥ 2, also the engine's worker processes (``compute.workers``): N processes × 1
  thread (channels_last, each precision), against the same execution in 1 process × N threads on the
  same clients; a pool is timed on its second round, as in a phase whose workers live for all rounds;

measured interleaved round by round (same clients, same batches, same threads), as medians, with
ratios to the research loop and the share of the 1-thread matmul peak (2048² GEMM, fp32 and bf16,
measured in every round beside the variants) that the engine's training FLOPs reach. Also the CPU
capability line and the peak RSS. Timing is in-process wall clock: run it on an otherwise quiet machine.

The variants run in two spawned processes that take turns, never both at once: one with the C
library's allocator defaults, where the research loop runs as a typical research program would, and
one that keeps freed memory as every training job does (:mod:`equitable_fl.allocator`). The research
loop and the channels_last engine run in both, so the table shows what the allocator alone is worth.

    .venv/bin/python benchmarks/engine.py [--model fedavg|demo] [--threads 1] [--rounds 15]
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing as mp
import os
import resource
import signal
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from equitable_fl.allocator import ENV_VAR, retain_freed_memory
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


ALLOCATORS = ("system", "retain")
RESEARCH = "research loop (fp32)"


Variants = dict[str, Callable[[int], float]]
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def build_variants(args: argparse.Namespace, allocator: str) -> tuple[Variants, dict]:
    """The variants one allocator's process runs (name → one timed round), and what the parent prints."""
    caps = capabilities()
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
    precisions = ["fp32", "bf16"] if caps.native_bf16 else ["fp32"]

    def engine(ex: Execution, workers: int = 0) -> Callable[[int], float]:
        return lambda r: engine_round(spec, start, data, parts, settings, ex, cost, r, workers=workers)

    variants: dict[str, Callable[[int], float]] = {
        RESEARCH: lambda r: research_round(copy.deepcopy(model), data, parts, settings)
    }
    if allocator == "system":
        # the engine's own process keeps freed memory; this row shows what that alone is worth
        variants["engine fp32 channels_last"] = engine(Execution("fp32", True))
    else:
        for dtype in precisions:
            variants[f"matmul peak {dtype}"] = lambda r, d=PEAK_DTYPES[dtype]: matmul_peak(d)
        for precision in precisions:
            for layout in (False, True):
                variants[f"engine {precision}{' channels_last' if layout else ''}"] = engine(
                    Execution(precision, layout)
                )
        if args.threads > 1:
            for precision in precisions:
                name = f"engine {precision} channels_last, {args.threads} workers × 1 thread"
                variants[name] = engine(Execution(precision, True), workers=args.threads)
    info = {"flops_per_sample": size.train_flops_per_sample, "samples": n, "precisions": precisions}
    return variants, info


def serve(conn: Connection, args: argparse.Namespace, allocator: str) -> None:
    """A process with one allocator policy: runs each variant the parent names, returns its result."""
    os.environ[ENV_VAR] = allocator
    retain_freed_memory()
    torch.set_num_threads(args.threads)
    variants, info = build_variants(args, allocator)
    conn.send((list(variants), info))
    while (request := conn.recv()) is not None:
        name, rnd = request
        conn.send(variants[name](rnd))
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send((usage, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="fedavg")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--samples", type=int, default=200, help="samples per client")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds of each variant")
    args = parser.parse_args()
    caps = capabilities()
    print(f"CPU: {caps.line()}")
    print(f"threads {args.threads}, {args.clients} clients × {args.samples} samples, batch {args.batch}, "
          f"model {args.model}, {args.rounds} interleaved rounds (+1 warm-up), "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip

    # one spawned process per allocator policy (glibc's cannot be undone within a process); only one
    # of them computes at any time, and every variant gets its turn in every round
    ctx = mp.get_context("spawn")
    procs: dict[str, tuple[Connection, BaseProcess]] = {}
    times: dict[tuple[str, str], list[float]] = {}  # (allocator, variant) → seconds of each round
    info: dict = {}
    for allocator in ALLOCATORS:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(child, args, allocator))  # not daemonic: it may fork workers
        proc.start()
        names, info = parent.recv()
        procs[allocator] = (parent, proc)
        times.update({(allocator, name): [] for name in names})
    try:
        for r in range(args.rounds + 1):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for allocator, name in order:
                conn = procs[allocator][0]
                conn.send((name, r))
                result = conn.recv()
                if r > 0:  # round 0 warms up every variant
                    times[(allocator, name)].append(result)
        rss = {}
        for allocator, (conn, proc) in procs.items():
            conn.send(None)
            rss[allocator] = conn.recv()
            proc.join(timeout=60)
    finally:
        for _, proc in procs.values():
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
                proc.join()

    peak_rounds = {p: times[("retain", f"matmul peak {p}")] for p in info["precisions"]}
    peaks = {p: statistics.median(v) for p, v in peak_rounds.items()}
    print("matmul peak (2048² GEMM, measured in every round, median): "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
          + " (range " + ", ".join(f"{min(v):.0f}–{max(v):.0f}" for v in peak_rounds.values())
          + ")")  # fmt: skip
    print(
        f"allocator: 'system' = the C library's defaults (a typical research program); 'retain' = "
        f"{retain_freed_memory.__module__}.retain_freed_memory, as every training job runs"
    )
    print(
        "every ratio and share below is the median over rounds of that round's own ratio (paired: the "
        "machine's speed drifts between rounds, and both sides of a pair ran in the same round)"
    )
    n, flops_per_sample = info["samples"], info["flops_per_sample"]
    research = times[("system", RESEARCH)]
    print(f"\n{'variant':<52} {'allocator':>9} {'samples/s':>10} {'× research':>11} "
          f"{'% of fp32 peak':>15} {'% of own peak':>14}")  # fmt: skip
    for (allocator, name), ts in times.items():
        if name.startswith("matmul"):
            continue
        precision = "bf16" if "bf16" in name else "fp32"
        speedup = statistics.median(r / t for r, t in zip(research, ts, strict=True))

        def share(dtype: str, ts: list[float] = ts) -> float:
            rounds = zip(ts, peak_rounds[dtype], strict=True)
            return 100 * statistics.median(n * flops_per_sample / t / 1e9 / peak for t, peak in rounds)

        print(f"{name:<52} {allocator:>9} {n / statistics.median(ts):>10.0f} {speedup:>10.2f}× "
              f"{share('fp32'):>14.0f}% {share(precision):>13.0f}%")  # fmt: skip
    pairs = [("system", "engine fp32 channels_last", "retain", "engine fp32 channels_last",
              "retained memory against the system allocator, same engine")]  # fmt: skip
    if args.threads > 1:
        for p in info["precisions"]:
            pool = f"engine {p} channels_last, {args.threads} workers × 1 thread"
            pairs.append(("retain", f"engine {p} channels_last", "retain", pool,
                          f"{pool} against 1 process × {args.threads} threads"))  # fmt: skip
    print()
    for a1, n1, a2, n2, label in pairs:
        ratio = statistics.median(s / f for s, f in zip(times[(a1, n1)], times[(a2, n2)], strict=True))
        print(f"{label}: {ratio:.2f}×")
    print(f"\ntraining FLOPs per sample {flops_per_sample / 1e6:.1f} M; peak RSS "
          + ", ".join(f"{a} process {own:.0f} MB" for a, (own, _) in rss.items())
          + (f" (largest worker {rss['retain'][1]:.0f} MB, shared pages counted)" if args.threads > 1 else "")
          + f"; load average after {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
