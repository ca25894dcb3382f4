"""The training steps (``train.phase``, ``train.vanilla``) run from Python on files, without Snakemake.

A tiny cell is built with the pipeline's own steps, reading and writing files as the rules do: a
prepared dataset of 400 real digits (the ``mnist-sample`` images), partition and client profiles, θ0
of a tiny ``cnn28``. The params each step gets are the slices :class:`Experiment` cuts from a config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from equitable_fl import checkpoint, io
from equitable_fl.config import Experiment, slice_json
from equitable_fl.data import mnist_sample
from equitable_fl.data.prepared import PreparedDataset, save_prepared, stratified_split
from equitable_fl.mask import Mask
from equitable_fl.records import PhaseRecord, TimingRecord
from equitable_fl.stages import clients, prune, train

SEED = 3
CONFIG: dict[str, Any] = {
    "grid": {"datasets": ["mnist-sample"], "pruning_rates": [0.5], "seeds": [SEED]},
    "datasets": {"mnist-sample": {"model": {"arch": "cnn28", "channels": [4, 8], "hidden": 16}}},
    "clients": {
        "count": 6,
        "partition": {"method": "iid"},
        # every client affords the dense model: phase 1 eligibility is decided by the tier alone
        "resources": {"distribution": "uniform", "low": 1.2, "high": 1.6, "jitter": 0.1},
        "tiers": {"count": 3, "method": "quantile"},
    },
    "training": {"local_epochs": 1, "batch_size": 16, "eval_batch_size": 64},
    "phases": [{"rounds": 2, "tiers": [1]}, {"rounds": 2, "tiers": [1, 2]}, {"rounds": 1}],
    "pruning": {"rewind_round": 1},
}
EXPERIMENT = Experiment.load(CONFIG)


@dataclass(frozen=True)
class Cell:
    """The input files of a training step."""

    npz: Path
    meta: Path
    partition: Path
    clients: Path
    card: Path
    weights: Path
    mask: Path

    def inputs(self) -> dict[str, str]:
        return {
            "npz": str(self.npz),
            "meta": str(self.meta),
            "partition_json": str(self.partition),
            "clients_json": str(self.clients),
            "card": str(self.card),
        }


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Cell:
    root = tmp_path_factory.mktemp("cell")
    images, labels = mnist_sample.load_raw()
    chosen = np.random.default_rng(0).choice(len(labels), size=400, replace=False)
    train_idx, test_idx = stratified_split(labels[chosen], 80, seed=0)
    ds = PreparedDataset(
        name="mnist-sample",
        x_train=images[chosen[train_idx]],
        y_train=labels[chosen[train_idx]],
        x_test=images[chosen[test_idx]],
        y_test=labels[chosen[test_idx]],
        class_names=mnist_sample.CLASS_NAMES,
    )
    npz, meta = root / "data" / "prepared.npz", root / "data" / "meta.json"
    save_prepared(ds, npz, meta)
    clients.partition(
        str(npz),
        str(meta),
        SEED,
        EXPERIMENT.partition_slice(),
        str(root / "partition.json"),
        str(root / "p.csv"),
    )
    clients.profiles(SEED, EXPERIMENT.clients_slice(), str(root / "clients.json"))
    init = root / "init"
    train.init(
        str(meta),
        SEED,
        EXPERIMENT.model_config("mnist-sample"),
        str(init / "weights.safetensors"),
        str(init / "model.json"),
        str(init / "mask.safetensors"),
    )
    return Cell(
        npz,
        meta,
        root / "partition.json",
        root / "clients.json",
        init / "model.json",
        init / "weights.safetensors",
        init / "mask.safetensors",
    )


def outputs(folder: Path, *, phase: bool) -> train.TrainingOutputs:
    return train.TrainingOutputs(
        weights=str(folder / "weights.safetensors"),
        metrics=str(folder / "metrics.json"),
        participation=str(folder / "participation.json"),
        timing=str(folder / "timing.json"),
        params=str(folder / "params.json"),
        mask=str(folder / "mask.safetensors") if phase else None,
        rewind=str(folder / "rewind.safetensors") if phase else None,
    )


def files_of(out: train.TrainingOutputs) -> dict[str, Path]:
    return {k: Path(v) for k, v in vars(out).items() if v is not None}


def run_phase(
    cell: Cell,
    folder: Path,
    params: dict[str, Any],
    *,
    weights: Path | None = None,
    mask: Path | None = None,
    engine: str = "inprocess",
) -> train.TrainingOutputs:
    out = outputs(folder, phase=True)
    if params["phase"] != 1:
        out = train.TrainingOutputs(**{**vars(out), "rewind": None})
    train.phase(
        **cell.inputs(),
        start_weights=str(weights or cell.weights),
        start_mask=str(mask or cell.mask),
        params=params,
        threads=1,
        out=out,
        device="cpu",
        engine=engine,
    )
    return out


def run_vanilla(cell: Cell, folder: Path, params: dict[str, Any], *, clients_json: Path | None = None):
    out = outputs(folder, phase=False)
    inputs = cell.inputs()
    if clients_json is not None:
        inputs["clients_json"] = str(clients_json)
    train.vanilla(
        **inputs,
        init_weights=str(cell.weights),
        init_mask=str(cell.mask),
        params=params,
        threads=1,
        out=out,
        device="cpu",
        engine="inprocess",
    )
    return out


def tiers_of(clients_json: Path) -> dict[int, int]:
    return {row["client"]: row["tier"] for row in io.read_json(clients_json)["clients"]}


def check_common_outputs(out: train.TrainingOutputs, params: dict[str, Any]) -> PhaseRecord:
    """What every training step writes, and how its files agree with each other."""
    for name, path in files_of(out).items():
        assert path.is_file(), f"{name}: {path} was not written"
    # params.json: the slice the step ran with, in its canonical text
    assert json.loads(Path(out.params).read_text()) == params
    assert Path(out.params).read_text() == slice_json(params)
    # metrics.json round-trips through the typed record
    metrics = io.read_json(out.metrics)
    record = PhaseRecord.from_json(metrics)
    assert record.to_json() == metrics
    assert record.rounds == len(record.history) == params["rounds"]
    assert [r.round for r in record.history] == list(range(1, params["rounds"] + 1))
    assert record.final_accuracy == record.history[-1].accuracy
    assert all(r.samples > 0 and r.bytes_down > 0 and r.bytes_up > 0 for r in record.history)
    assert record.bytes_communicated == sum(r.bytes_down + r.bytes_up for r in record.history)
    for r in record.history:  # each client moves one payload, the encoded model, each way
        assert r.bytes_down == r.bytes_up == record.size.encoded_bytes * len(r.clients)
    # timing.json is the measured side of the same rounds
    timing = TimingRecord.from_json(io.read_json(out.timing))
    assert timing.threads == 1
    assert len(timing.train_seconds_per_round) == params["rounds"]
    assert timing.samples_per_round == [r.samples for r in record.history]
    # the weights fit the model card and are finite
    trained = checkpoint.load_tensors(out.weights, kind="weights")
    assert all(torch.isfinite(t).all() for t in trained.values())
    return record


# ---------------------------------------------------------------- phase 1


def test_phase_one_writes_every_output(cell: Cell, tmp_path: Path) -> None:
    params = EXPERIMENT.phase_slice(1, SEED)
    assert params["rounds"] == 2 and params["tiers"] == [1] and params["rewind_round"] == 1
    out = run_phase(cell, tmp_path / "phase1", params)
    record = check_common_outputs(out, params)
    assert record.label == "phase 1" and record.phase == 1
    assert record.admitted_tiers == [1] and record.global_round_offset == 0
    assert [r.global_round for r in record.history] == [1, 2]
    assert record.size.sparsity == 0.0

    tiers = tiers_of(cell.clients)
    participation = io.read_json(out.participation)
    assert participation["eligible"] == sorted(c for c, t in tiers.items() if t == 1)
    assert participation["took_part"] and {tiers[c] for c in participation["took_part"]} == {1}
    assert participation["took_part"] == sorted({c for r in record.history for c in r.clients})
    assert participation["took_part_by_tier"] == {"1": len(participation["took_part"]), "2": 0, "3": 0}
    assert record.eligible_clients == len(participation["eligible"])
    assert record.clients_took_part == len(participation["took_part"])

    # phase 1 trains the dense model: the mask it writes is the one it started from
    assert Mask.load(out.mask).keys() == Mask.load(cell.mask).keys()
    assert all(torch.equal(Mask.load(out.mask)[k], m) for k, m in Mask.load(cell.mask).items())
    start = checkpoint.load_tensors(cell.weights, kind="weights")
    trained = checkpoint.load_tensors(out.weights, kind="weights")
    assert start.keys() == trained.keys()
    assert all(not torch.equal(start[k], trained[k]) for k in start)

    # the rewind point is the global model after rewind_round (1) rounds: a 1-round run's weights
    rewind = checkpoint.load_tensors(out.rewind, kind="weights")
    one = run_phase(cell, tmp_path / "one_round", {**params, "rounds": 1})
    after_one = checkpoint.load_tensors(one.weights, kind="weights")
    assert all(torch.equal(rewind[k], after_one[k]) for k in start)
    assert any(not torch.equal(rewind[k], trained[k]) for k in start)


def test_phase_one_twice_gives_identical_files(cell: Cell, tmp_path: Path) -> None:
    params = EXPERIMENT.phase_slice(1, SEED)
    a = files_of(run_phase(cell, tmp_path / "a", params))
    b = files_of(run_phase(cell, tmp_path / "b", params))
    for name in a.keys() - {"timing"}:  # timing.json holds measured seconds
        assert a[name].read_bytes() == b[name].read_bytes(), f"{name} differs between identical runs"
    other_seed = files_of(run_phase(cell, tmp_path / "c", {**params, "seed": SEED + 1}))
    assert a["weights"].read_bytes() != other_seed["weights"].read_bytes()


def test_wrong_engine_fails_naming_compute_engine_and_writes_nothing(cell: Cell, tmp_path: Path) -> None:
    params = EXPERIMENT.phase_slice(1, SEED)
    with pytest.raises(ValueError, match=r"compute\.engine 'warp' is not available.*inprocess"):
        run_phase(cell, tmp_path / "bad", params, engine="warp")
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


# ---------------------------------------------------------------- phase 2 trains the ticket


def test_phase_two_keeps_the_ticket_mask_and_admits_tier_two(cell: Cell, tmp_path: Path) -> None:
    p1 = run_phase(cell, tmp_path / "phase1", EXPERIMENT.phase_slice(1, SEED))
    ticket = tmp_path / "ticket"
    prune.prune_and_rewind(
        trained_weights=p1.weights,
        trained_mask=p1.mask,
        trained_card=str(cell.card),
        rewind_weights=p1.rewind,
        params=EXPERIMENT.prune_slice(0.5),
        out_mask=str(ticket / "mask.safetensors"),
        out_ticket=str(ticket / "weights.safetensors"),
        out_card=str(ticket / "model.json"),
        out_report=str(ticket / "report.json"),
        out_params=str(ticket / "params.json"),
    )
    params = EXPERIMENT.phase_slice(2, SEED)
    out = run_phase(
        cell,
        tmp_path / "phase2",
        params,
        weights=ticket / "weights.safetensors",
        mask=ticket / "mask.safetensors",
    )
    assert not (tmp_path / "phase2" / "rewind.safetensors").exists()
    record = check_common_outputs(out, params)
    assert record.label == "phase 2" and record.phase == 2 and record.admitted_tiers == [1, 2]
    assert [r.global_round for r in record.history] == [3, 4]
    assert 0.4 < record.size.sparsity < 0.6
    first = PhaseRecord.from_json(io.read_json(p1.metrics))
    assert record.size.encoded_bytes < first.size.encoded_bytes  # the sparse ticket is cheaper to send

    mask = Mask.load(out.mask)
    ticket_mask = Mask.load(ticket / "mask.safetensors")
    assert all(torch.equal(mask[k], ticket_mask[k]) for k in ticket_mask)
    trained = checkpoint.load_tensors(out.weights, kind="weights")
    for name, m in mask.items():
        assert bool((trained[name][~m] == 0).all()), f"{name}: a pruned weight is not exactly 0"

    tiers = tiers_of(cell.clients)
    participation = io.read_json(out.participation)
    assert participation["eligible"] == sorted(c for c, t in tiers.items() if t in (1, 2))
    assert {tiers[c] for c in participation["took_part"]} <= {1, 2}
    assert participation["took_part_by_tier"]["3"] == 0
    assert participation["took_part_by_tier"]["2"] > 0


# ---------------------------------------------------------------- vanilla FL


def test_vanilla_writes_every_output_and_is_reproducible(cell: Cell, tmp_path: Path) -> None:
    params = EXPERIMENT.vanilla_slice(SEED)
    assert params["rounds"] == 5 and params["participation"] == "all"
    out = run_vanilla(cell, tmp_path / "a", params)
    assert set(files_of(out)) == {"weights", "metrics", "participation", "timing", "params"}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        Path(p).name for p in files_of(out).values()
    )
    record = check_common_outputs(out, params)
    assert record.label == "vanilla" and record.phase is None and record.participation == "all"
    assert record.admitted_tiers is None
    assert [r.global_round for r in record.history] == [1, 2, 3, 4, 5]
    participation = io.read_json(out.participation)
    everyone = sorted(tiers_of(cell.clients))
    assert participation["eligible"] == participation["took_part"] == everyone
    # tier-blind: one vanilla run serves every variant that moves only the tier thresholds
    assert "took_part_by_tier" not in participation
    assert all("tier" not in row for row in participation["clients"])

    again = files_of(run_vanilla(cell, tmp_path / "b", params))
    for name, path in files_of(out).items():
        if name != "timing":
            assert path.read_bytes() == again[name].read_bytes(), f"{name} differs between identical runs"


def test_vanilla_fits_dense_admits_only_clients_that_afford_the_dense_model(
    cell: Cell, tmp_path: Path
) -> None:
    weak = tmp_path / "clients.json"
    clients.profiles(
        SEED,
        {**EXPERIMENT.clients_slice(), "resources": {"distribution": "uniform", "low": 0.25, "high": 1.6}},
        str(weak),
    )
    rows = io.read_json(weak)["clients"]
    affords = sorted(r["client"] for r in rows if min(r["compute"], r["storage"], r["bandwidth"]) >= 1.0)
    assert 0 < len(affords) < len(rows)  # the fleet is mixed, so the test can tell
    params = {**EXPERIMENT.vanilla_slice(SEED), "participation": "fits_dense", "rounds": 2}
    out = run_vanilla(cell, tmp_path / "v", params, clients_json=weak)
    record = check_common_outputs(out, params)
    assert record.participation == "fits_dense"
    participation = io.read_json(out.participation)
    assert participation["check_budget"] is True
    assert participation["eligible"] == affords
    assert set(participation["took_part"]) <= set(affords)
    for row in participation["clients"]:
        if row["client"] not in affords:
            assert row["reasons"] and all("budget" in r for r in row["reasons"])


def test_vanilla_refuses_a_sparse_start_mask(cell: Cell, tmp_path: Path) -> None:
    dense = Mask.load(cell.mask)
    sparse = {k: m.clone() for k, m in dense.items()}
    sparse["hidden.weight"][0] = False
    Mask(sparse).save(tmp_path / "sparse.safetensors")
    with pytest.raises(ValueError, match=r"not dense"):
        train.vanilla(
            **cell.inputs(),
            init_weights=str(cell.weights),
            init_mask=str(tmp_path / "sparse.safetensors"),
            params=EXPERIMENT.vanilla_slice(SEED),
            threads=1,
            out=outputs(tmp_path / "v", phase=False),
        )
    assert not (tmp_path / "v").exists()
