"""The fleet's simulated clock: devices in units, round latency, its wiring into training and the summary.

Numbers below are worked out by hand from the formulas in ``equitable_fl.fleet_time``: a participant's
round is payload / download rate + samples × billed FLOPs / FLOP/s + payload / upload rate, and a round
lasts as long as its slowest participant.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from equitable_fl import io
from equitable_fl.config import Experiment, TrainSettings
from equitable_fl.config.validate import schema
from equitable_fl.data import mnist_sample
from equitable_fl.data.prepared import PreparedDataset, save_prepared, stratified_split
from equitable_fl.federation.client import ClientTask
from equitable_fl.fleet_time import (
    Device,
    DeviceConfigError,
    RoundClock,
    billed_flops_per_sample,
    client_time,
    draw_devices,
    round_seconds,
)
from equitable_fl.mask import Mask
from equitable_fl.records import ModelSize, PhaseRecord, RoundRecord
from equitable_fl.report import figures, tables
from equitable_fl.report.figures.simulated_time import time_unit
from equitable_fl.resources import build_profiles, profiles_from_json
from equitable_fl.stages import clients, summary, train

SETTINGS = TrainSettings.from_config({"local_epochs": 2})
CLASSES = [
    {"name": "slow", "share": 1, "flops_per_s": 1e9, "download_bytes_per_s": 1e6, "upload_bytes_per_s": 5e5,
     "storage_bytes": 1e9},
    {"name": "mid", "share": 1, "flops_per_s": 4e9, "download_bytes_per_s": 4e6, "upload_bytes_per_s": 1e6,
     "storage_bytes": 2e9},
    {"name": "fast", "share": 1, "flops_per_s": 1.6e10, "download_bytes_per_s": 1.6e7,
     "upload_bytes_per_s": 4e6, "storage_bytes": 4e9},
]  # fmt: skip
UNIFORM = {"distribution": "uniform", "low": 0.25, "high": 1.6, "jitter": 0.15}
TIERS = {"count": 3, "method": "quantile"}


def device(flops: float, down: float, up: float, sparse: bool = False) -> Device:
    return Device("test", flops, down, up, 1e9, sparse)


def task(client: int, settings: TrainSettings = SETTINGS) -> ClientTask:
    return ClientTask(client, 1, 0, settings)


# --------------------------------------------------------------------------- the latency model


def test_client_time_is_bytes_over_bandwidth_and_flops_over_speed() -> None:
    t = client_time(
        device(2e9, 1e6, 2.5e5), payload_bytes=5e5, samples=100, model_flops=4e7, surviving_flops=1e7
    )
    assert t.download == pytest.approx(0.5)  # 5e5 B / 1e6 B/s
    assert t.upload == pytest.approx(2.0)  # 5e5 B / 2.5e5 B/s
    assert t.train == pytest.approx(2.0)  # 100 × 4e7 FLOP / 2e9 FLOP/s (dense kernels: every weight)
    assert t.total == pytest.approx(4.5)


def test_the_slowest_participant_decides_the_round() -> None:
    # a: slow link, fast compute; b: fast link, slow compute. The round is b's total, not a sum of maxima.
    a = client_time(device(1e10, 1e5, 1e5), 1e5, 10, 1e6, 1e6)  # 1 + 0.001 + 1 = 2.001 s
    b = client_time(device(1e7, 1e7, 1e7), 1e5, 10, 1e6, 1e6)  # 0.01 + 1 + 0.01 = 1.02 s
    assert round_seconds([a, b]) == pytest.approx(2.001)
    assert round_seconds([b]) == pytest.approx(1.02)
    assert round_seconds([]) == 0.0  # nobody available: the round takes no time


def test_dense_kernels_bill_masked_flops_as_dense_and_sparse_kernels_bill_survivors() -> None:
    assert billed_flops_per_sample(4e7, 1e7, sparse_kernels=False) == 4e7
    assert billed_flops_per_sample(4e7, 1e7, sparse_kernels=True) == 1e7
    dense = client_time(device(1e9, 1e9, 1e9, sparse=False), 0.0, 50, 4e7, 1e7)
    sparse = client_time(device(1e9, 1e9, 1e9, sparse=True), 0.0, 50, 4e7, 1e7)
    assert dense.train == pytest.approx(2.0) and sparse.train == pytest.approx(0.5)


def test_round_clock_charges_every_task_on_its_device_and_shard() -> None:
    devices = [device(1e9, 1e6, 1e6), device(1e8, 1e6, 1e6), device(1e10, 1e6, 1e6)]
    clock = RoundClock.for_fleet(
        devices,
        [100, 10, 1000],
        payload_bytes=1e6,
        model_flops_per_sample=1e6,
        surviving_flops_per_sample=1e5,
    )
    assert clock is not None
    # client 0: 1 + 100 × 2 epochs × 1e6 / 1e9 + 1 = 2.2 s; client 1: 1 + 10 × 2 × 1e6 / 1e8 + 1 = 2.2 s;
    # client 2: 1 + 1000 × 2 × 1e6 / 1e10 + 1 = 2.2 s: equal; make client 1 the straggler with 3 epochs
    assert clock(1, [task(0), task(1), task(2)]) == pytest.approx(2.2)
    three = TrainSettings.from_config({"local_epochs": 3})
    assert clock(1, [task(0), task(1, three)]) == pytest.approx(2.3)
    assert clock(1, [task(2)]) == pytest.approx(2.2)
    assert clock(1, []) == 0.0
    assert [t.train for t in clock.client_times([task(0)])] == [pytest.approx(0.2)]


def test_round_clock_needs_a_device_for_every_client() -> None:
    kw = {"payload_bytes": 1.0, "model_flops_per_sample": 1.0, "surviving_flops_per_sample": 1.0}
    assert RoundClock.for_fleet([device(1, 1, 1), None], [1, 1], **kw) is None
    assert RoundClock.for_fleet([], [], **kw) is None


# --------------------------------------------------------------------------- drawing devices


def profiles_with(devices: dict[str, Any] | None, n: int = 30, seed: int = 0, resources: dict | None = None):
    cfg = dict(resources or UNIFORM)
    if devices is not None:
        cfg["devices"] = devices
    return build_profiles(n, seed, cfg, TIERS)


def test_devices_are_seeded_and_leave_eligibility_inputs_alone() -> None:
    cfg = {"classes": CLASSES}
    a, b, c = profiles_with(cfg, seed=4), profiles_with(cfg, seed=4), profiles_with(cfg, seed=5)
    assert a == b
    assert [p.device for p in a] != [p.device for p in c]
    # resources, scores and tiers are exactly what they were without devices
    plain = profiles_with(None, seed=4)
    assert [(p.compute, p.storage, p.bandwidth, p.score, p.tier) for p in a] == [
        (p.compute, p.storage, p.bandwidth, p.score, p.tier) for p in plain
    ]
    assert all(p.device is None for p in plain) and "device" not in plain[0].as_dict()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_devices_are_monotone_in_relative_capacity(seed: int) -> None:
    ps = profiles_with({"classes": CLASSES}, n=50, seed=seed)
    order = {
        "flops_per_s": "compute",
        "download_bytes_per_s": "bandwidth",
        "upload_bytes_per_s": "bandwidth",
        "storage_bytes": "storage",
    }
    for quantity, resource in order.items():
        ranked = sorted(ps, key=lambda p: getattr(p, resource))
        values = [getattr(p.device, quantity) for p in ranked]
        assert values == sorted(values), quantity
        assert min(values) == pytest.approx(CLASSES[0][quantity])  # the weakest get the weakest class
        assert max(values) == pytest.approx(CLASSES[-1][quantity])
    names = [p.device.device_class for p in sorted(ps, key=lambda p: p.score)]
    assert names == sorted(names, key=[c["name"] for c in CLASSES].index)


def test_class_middles_get_the_class_reference_and_shares_hold() -> None:
    # three clients, three equal classes: each client sits in the middle of its class's share
    relative = {name: np.array([0.3, 0.9, 0.6]) for name in ("compute", "storage", "bandwidth")}
    devices = draw_devices(relative, np.array([0.3, 0.9, 0.6]), {"classes": CLASSES})
    assert [d.device_class for d in devices] == ["slow", "fast", "mid"]
    assert [d.flops_per_s for d in devices] == pytest.approx([1e9, 1.6e10, 4e9])
    assert [d.upload_bytes_per_s for d in devices] == pytest.approx([5e5, 4e6, 1e6])
    # between two middles the rate is geometric: a quarter of the way from slow (1/6) to mid (1/2) …
    rel = {name: np.arange(12.0) for name in ("compute", "storage", "bandwidth")}
    weighted = [{**c, "share": s} for c, s in zip(CLASSES, (1, 2, 1), strict=True)]
    many = draw_devices(rel, np.arange(12.0), {"classes": weighted, "sparse_kernels": True})
    assert [d.device_class for d in many].count("mid") == 6  # shares are weights: 1:2:1 of 12
    # client 2 ranks at u = 2.5/12, between slow's middle 0.125 and mid's middle 0.5: 2/9 of the way
    assert many[2].flops_per_s == pytest.approx(1e9 * 4 ** (2 / 9))
    assert all(d.sparse_kernels for d in many)


def test_equal_resources_get_equal_devices() -> None:
    rel = {name: np.array([0.5, 0.5, 1.0, 0.2]) for name in ("compute", "storage", "bandwidth")}
    devices = draw_devices(rel, rel["compute"], {"classes": CLASSES})
    assert devices[0] == devices[1]


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        ([], "at least one device class"),
        ([{**CLASSES[1]}, {**CLASSES[0]}], "must not decrease"),
        ([{**CLASSES[0], "share": 0}], "share must be > 0"),
    ],
)
def test_bad_device_classes_fail_clearly(classes: list, match: str) -> None:
    with pytest.raises(DeviceConfigError, match=match):
        profiles_with({"classes": classes})


def test_profiles_with_devices_round_trip_through_clients_json(tmp_path: Path) -> None:
    cfg = Experiment.load(minimal_config()).clients_slice()
    clients.profiles(3, cfg, str(tmp_path / "clients.json"))
    written = io.read_json(tmp_path / "clients.json")
    assert written["devices"] == cfg["resources"]["devices"]
    row = written["clients"][0]
    assert set(row["device"]) == {
        "device_class",
        "flops_per_s",
        "download_bytes_per_s",
        "upload_bytes_per_s",
        "storage_bytes",
        "sparse_kernels",
    }
    back = profiles_from_json(written["clients"])
    assert back == build_profiles(int(cfg["count"]), 3, cfg["resources"], cfg["tiers"])


# --------------------------------------------------------------------------- defaults from the schema


def minimal_config(**clients_overrides: Any) -> dict[str, Any]:
    return {
        "grid": {"datasets": ["mnist-sample"], "pruning_rates": [0.5], "seeds": [0]},
        "datasets": {"mnist-sample": {"model": {"arch": "cnn28", "channels": [4, 8], "hidden": 16}}},
        "clients": {"count": 6, **clients_overrides},
        "phases": [{"rounds": 1}, {"rounds": 1}, {"rounds": 1}],
    }


def test_device_defaults_come_from_the_schema() -> None:
    devices_schema = schema()["properties"]["clients"]["properties"]["resources"]["properties"]["devices"]
    defaults = {k: v["default"] for k, v in devices_schema["properties"].items()}
    resources = Experiment.load(minimal_config()).clients_slice()["resources"]
    assert resources["devices"] == defaults
    assert defaults["sparse_kernels"] is False
    assert [c["name"] for c in defaults["classes"]] == ["entry", "mid", "flagship"]
    # every reference is a number (YAML reads 2.3e9 without a sign as a string: the schema writes 2.3e+9)
    assert all(isinstance(c[q], int | float) for c in defaults["classes"] for q in c if q != "name")
    ps = build_profiles(30, 0, resources, TIERS)
    assert min(p.device.flops_per_s for p in ps) == pytest.approx(defaults["classes"][0]["flops_per_s"])
    assert max(p.device.flops_per_s for p in ps) == pytest.approx(defaults["classes"][-1]["flops_per_s"])


def test_a_variant_can_switch_on_sparse_kernels() -> None:
    cfg = minimal_config()
    cfg["grid"]["variants"] = {"sparse": {"clients": {"resources": {"devices": {"sparse_kernels": True}}}}}
    exp = Experiment.load(cfg)
    sparse = exp.for_variant("sparse").clients_slice()["resources"]["devices"]
    assert sparse["sparse_kernels"] is True
    assert sparse["classes"] == exp.clients_slice()["resources"]["devices"]["classes"]
    assert exp.for_variant("sparse").step_variant("clients") == "sparse"


def test_the_fits_dense_comparison_is_a_variant_that_reruns_only_vanilla() -> None:
    cfg = minimal_config()
    cfg["grid"]["variants"] = {"fits_dense": {"vanilla": {"participation": "fits_dense"}}}
    v = Experiment.load(cfg).for_variant("fits_dense")
    shared = [("partition", None), ("clients", None), ("phase", 1), ("prune", 1), ("phase", 3)]
    assert [v.step_variant(step, k) for step, k in shared] == [""] * len(shared)
    assert v.step_variant("vanilla") == v.step_variant("summary") == "fits_dense"


# --------------------------------------------------------------------------- the summary, by hand


def record(
    accs: list[float], seconds: list[float | None], *, phase: int | None, offset: int = 0
) -> PhaseRecord:
    size = ModelSize(10, 10, 8, 8, 0.0, 40, 40, 0.0, 100.0, 100.0, 1.0)
    history = [
        RoundRecord(r, offset + r, [0], 10, a, 1 - a, 1 - a, 40, 40, simulated_seconds=s)
        for r, (a, s) in enumerate(zip(accs, seconds, strict=True), start=1)
    ]
    return PhaseRecord.from_rounds(
        label="vanilla" if phase is None else f"phase {phase}",
        offset=offset,
        admitted_tiers=None,
        eligible_clients=1,
        size=size,
        history=history,
        phase=phase,
        participation="all" if phase is None else None,
    )


def test_simulated_speedup_by_hand() -> None:
    phases = [record([0.5, 0.8], [1.0, 1.0], phase=1), record([0.9, 0.95], [2.0, 3.0], phase=2, offset=2)]
    vanilla = record([0.6, 0.85, 0.9, 0.96], [5.0, 5.0, 5.0, 5.0], phase=None)
    sim = summary.simulated_time(phases, vanilla, target=0.9, sparse_kernels=False)
    assert sim is not None
    # Equitable-FL reaches 0.9 at global round 3: 1 + 1 + 2 = 4 s; vanilla at round 3: 15 s
    assert sim.simulated_seconds_to_target == pytest.approx(4.0)
    assert sim.vanilla_simulated_seconds_to_target == pytest.approx(15.0)
    assert sim.simulated_time_speedup == pytest.approx(15.0 / 4.0)
    assert sim.simulated_seconds == pytest.approx(7.0)
    assert sim.vanilla_simulated_seconds == pytest.approx(20.0)
    assert sim.phase_simulated_seconds == pytest.approx([2.0, 5.0])
    assert sim.vanilla_participation == "all" and sim.sparse_kernels is False and sim.target_accuracy == 0.9
    never = summary.simulated_time(phases, vanilla, target=0.99, sparse_kernels=True)
    assert never is not None and never.simulated_seconds_to_target is None
    assert never.simulated_time_speedup is None and never.sparse_kernels is True
    no_clock = record([0.9], [None], phase=1)
    assert summary.simulated_time([no_clock], vanilla, 0.9, False) is None


def summary_json(seed: int = 0) -> dict[str, Any]:
    """A summary with a simulated clock, as ``stages.summary`` writes it (two phases of two rounds)."""
    phases = [record([0.5, 0.8], [1.0, 1.0], phase=1), record([0.9, 0.95], [2.0, 3.0], phase=2, offset=2)]
    vanilla = record([0.6, 0.85, 0.9, 0.96], [5.0, 5.0, 5.0, 5.0], phase=None)
    curve = [p for m in phases for p in summary._curve(m)]
    van_curve = summary._curve(vanilla)
    summary._add_simulated_time(curve, phases)
    summary._add_simulated_time(van_curve, [vanilla])
    sim = summary.simulated_time(phases, vanilla, 0.9, False)
    fixture = Path(__file__).parent / "fixtures" / "summary_mnist-sample_rate0.5_seed0.json"
    base = json.loads(fixture.read_text(encoding="utf-8"))
    out = copy.deepcopy(base)
    out.update(seed=seed, curve=curve, simulated=dataclasses.asdict(sim) if sim else None)
    out["vanilla"] = {**out["vanilla"], "curve": van_curve}
    out["phases"] = out["phases"][:2]
    return out


def test_curves_carry_elapsed_simulated_time() -> None:
    s = summary_json()
    assert [p["elapsed_simulated_seconds"] for p in s["curve"]] == pytest.approx([1.0, 2.0, 4.0, 7.0])
    assert [p["simulated_seconds"] for p in s["curve"]] == pytest.approx([1.0, 1.0, 2.0, 3.0])
    assert s["vanilla"]["curve"][-1]["elapsed_simulated_seconds"] == pytest.approx(20.0)


def test_cell_table_has_the_simulated_columns() -> None:
    row = tables.cell_row(summary_json())
    assert row["simulated_time_speedup"] == pytest.approx(3.75)
    assert row["simulated_seconds_to_target"] == pytest.approx(4.0)
    assert row["vanilla_simulated_seconds_to_target"] == pytest.approx(15.0)
    assert row["simulated_seconds"] == pytest.approx(7.0) and row["vanilla_simulated_seconds"] == 20.0
    old = summary_json()
    old.pop("simulated")
    assert all(tables.cell_row(old)[c] is None for c in tables.SIMULATED_COLUMNS)
    assert set(tables.SIMULATED_COLUMNS) <= set(tables.CELL_COLUMNS)


def test_accuracy_vs_simulated_time_figure(tmp_path: Path) -> None:
    assert (
        "accuracy_vs_simulated_time" in figures.FIGURES
        and "accuracy_vs_simulated_time" in figures.CELL_FIGURES
    )
    written = figures.plot_accuracy_vs_simulated_time([summary_json(0), summary_json(1)], tmp_path / "fig")
    assert [p.name for p in written] == ["fig.png", "fig.pdf"]
    assert all(p.stat().st_size > 5_000 for p in written)
    assert time_unit(30.0) == (1.0, "s")
    assert time_unit(600.0) == (60.0, "min")
    assert time_unit(9000.0) == (3600.0, "h")


# --------------------------------------------------------------------------- wired into a training step


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny cell's inputs (120 real digits, 6 clients, a tiny cnn28) built by the pipeline's own steps."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fleet")
    images, labels = mnist_sample.load_raw()
    chosen = np.random.default_rng(0).choice(len(labels), size=160, replace=False)
    train_idx, test_idx = stratified_split(labels[chosen], 40, seed=0)
    ds = PreparedDataset(
        "mnist-sample",
        images[chosen[train_idx]],
        labels[chosen[train_idx]],
        images[chosen[test_idx]],
        labels[chosen[test_idx]],
        mnist_sample.CLASS_NAMES,
    )
    exp = Experiment.load(
        {**minimal_config(resources={**UNIFORM, "low": 1.2}), "training": {"local_epochs": 2}}
    )
    save_prepared(ds, root / "prepared.npz", root / "meta.json")
    clients.partition(
        str(root / "prepared.npz"),
        str(root / "meta.json"),
        0,
        exp.partition_slice(),
        str(root / "p.json"),
        str(root / "p.csv"),
    )
    for sparse in (False, True):
        cfg = copy.deepcopy(exp.clients_slice())
        cfg["resources"]["devices"]["sparse_kernels"] = sparse
        clients.profiles(0, cfg, str(root / f"clients_{sparse}.json"))
    train.init(
        str(root / "meta.json"),
        0,
        exp.model_config("mnist-sample"),
        str(root / "w.safetensors"),
        str(root / "model.json"),
        str(root / "m.safetensors"),
    )
    # a 70%-sparse mask: dense and sparse kernels bill it differently
    dense_mask = Mask.load(root / "m.safetensors")
    gen = torch.Generator().manual_seed(0)
    Mask({k: torch.rand(m.shape, generator=gen) < 0.3 for k, m in dense_mask.items()}).save(
        root / "sparse.safetensors"
    )
    return {"root": root, "params": exp.phase_slice(3, 0)}


def run_phase(cell: dict[str, Any], sparse: bool) -> PhaseRecord:
    root: Path = cell["root"]
    out = root / f"run_{sparse}"
    train.phase(
        npz=str(root / "prepared.npz"),
        meta=str(root / "meta.json"),
        partition_json=str(root / "p.json"),
        clients_json=str(root / f"clients_{sparse}.json"),
        card=str(root / "model.json"),
        start_weights=str(root / "w.safetensors"),
        start_mask=str(root / "sparse.safetensors"),
        params=cell["params"],
        threads=1,
        out=train.TrainingOutputs(
            *(str(out / n) for n in ("w.safetensors", "metrics.json", "p.json", "t.json", "params.json")),
            mask=str(out / "mask.safetensors"),
        ),
        device="cpu",
    )
    return PhaseRecord.from_json(io.read_json(out / "metrics.json"))


@pytest.mark.parametrize("sparse", [False, True])
def test_training_writes_each_rounds_simulated_seconds(cell: dict[str, Any], sparse: bool) -> None:
    rec = run_phase(cell, sparse)
    root: Path = cell["root"]
    devices = {
        c["client"]: Device(**c["device"]) for c in io.read_json(root / f"clients_{sparse}.json")["clients"]
    }
    parts = io.read_json(root / "p.json")["clients"]
    shards = [len(parts[str(c)]) for c in range(len(parts))]
    card = io.read_json(root / "model.json")
    billed = rec.size.train_flops_per_sample if sparse else card["train_flops_per_sample"]
    assert rec.size.train_flops_per_sample < 0.5 * card["train_flops_per_sample"]  # the mask is sparse
    epochs = cell["params"]["training"]["local_epochs"]
    for r in rec.history:
        assert r.clients  # everyone affords the model: every round has participants
        expected = max(
            rec.size.encoded_bytes / devices[c].download_bytes_per_s
            + shards[c] * epochs * billed / devices[c].flops_per_s
            + rec.size.encoded_bytes / devices[c].upload_bytes_per_s
            for c in r.clients
        )
        assert r.simulated_seconds == pytest.approx(expected, rel=1e-12)
    assert "simulated_seconds" in io.read_json(root / f"run_{sparse}" / "metrics.json")["history"][0]
