"""The per-cell timing step: dense model and final ticket trained side by side in one process.

Unit tests drive :func:`equitable_fl.timing.side_by_side` with tiny models and a wrapped training step
that records who trained on which batches, so interleaving, alternation, warm-up and same batches are
checked on the calls themselves. No test asserts a time; the one speed test only asserts that a model
with twice the width (about four times the FLOPs) is not measured faster than its narrow copy.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from equitable_fl import checkpoint, io
from equitable_fl.config import ConfigError, Experiment, TrainSettings
from equitable_fl.data import mnist_sample
from equitable_fl.data.prepared import PreparedDataset, save_prepared, stratified_split
from equitable_fl.data.tensors import Normaliser, TensorData
from equitable_fl.federation.client import MaskedParams, local_train
from equitable_fl.hardware import capabilities
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, model_card
from equitable_fl.records import SideBySideTiming
from equitable_fl.stages import timing as timing_stage
from equitable_fl.stages import train
from equitable_fl.timing import (
    DENSE,
    TICKET,
    Contender,
    TimingSettings,
    interleaved,
    side_by_side,
    timing_indices,
)

# tests/ is on sys.path (pytest's rootdir insertion): tests/workflow is importable as `workflow`
from workflow.snakemake_runner import run, tiny_config, write_config  # isort: skip

SHAPE = (1, 28, 28)


@pytest.fixture(autouse=True)
def torch_threads_put_back() -> Iterator[None]:
    """The timing stage sets torch's thread count (as its job would); other tests get theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def spec(channels: list[int], hidden: int) -> ModelSpec:
    return ModelSpec.from_config({"arch": "cnn28", "channels": channels, "hidden": hidden}, SHAPE, 10)


def contender(s: ModelSpec, mask: dict[str, torch.Tensor] | None = None, seed: int = 0) -> Contender:
    model = s.init(seed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return Contender(model, state, MaskedParams(model, mask or {}))


class RecordingNormaliser:
    """The data's normaliser, noting every batch a training step gathers (as uint8 images)."""

    def __init__(self, inner: Normaliser) -> None:
        self.inner = inner
        self.batches: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.clone())
        return self.inner(x)


def toy_data(n: int = 96, seed: int = 0) -> TensorData:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *SHAPE), dtype=np.uint8)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    norm = Normaliser.fit(x)
    return TensorData(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x[:8]),
                      torch.from_numpy(y[:8]), RecordingNormaliser(norm), 10)  # fmt: skip


SETTINGS = TrainSettings.from_config({"local_epochs": 3, "batch_size": 8, "lr": 0.05, "momentum": 0.9})


# ---------------------------------------------------------------------------------------------------
# interleaving


def test_interleaved_alternates_order_and_discards_warmup() -> None:
    calls: list[str] = []
    ticks = iter(range(1000))
    kept = interleaved(calls.append, ("a", "b"), repeats=3, warmup=2, clock=lambda: float(next(ticks)))
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a", "a", "b"]
    # each timed call reads the clock twice (one tick apart); warm-up calls are not kept
    assert kept == {"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0]}


def test_interleaved_syncs_around_every_call() -> None:
    events: list[str] = []
    interleaved(lambda n: events.append(n), ("a", "b"), 1, sync=lambda: events.append("sync"))
    assert events == ["sync", "a", "sync", "sync", "b", "sync"]


def test_interleaved_needs_a_repeat() -> None:
    with pytest.raises(ValueError, match="repeats"):
        interleaved(lambda n: None, ("a", "b"), 0)


def test_side_by_side_interleaves_the_training_step_on_the_same_batches() -> None:
    data = toy_data()
    s = spec([2, 4], 8)
    dense = contender(s)
    pruned = {"hidden.weight": torch.rand_like(dense.state["hidden.weight"]) > 0.5}
    # the ticket starts from weights that are NOT zero where it is pruned: only the step's mask can zero them
    ticket = contender(s, pruned, seed=1)
    order: list[str] = []
    batches_of: list[list[torch.Tensor]] = []

    def step(model: Any, state: Any, masked: Any, data_: TensorData, *rest: Any) -> Any:
        name = DENSE if model is dense.model else TICKET
        before = len(data_.normalise.batches)
        out = local_train(model, state, masked, data_, *rest)
        order.append(name)
        batches_of.append(data_.normalise.batches[before:])
        if name == TICKET:  # the mask held, as after every optimiser step in training
            assert not out[0]["hidden.weight"][~pruned["hidden.weight"]].any()
            assert out[0]["hidden.weight"][pruned["hidden.weight"]].all()
        return out

    timing = TimingSettings(steps=3, repeats=4, warmup=1)
    indices = timing_indices(len(data.y_train), timing.steps * SETTINGS.batch_size, seed=5)
    assert ticket.state["hidden.weight"][~pruned["hidden.weight"]].abs().sum() > 0
    result = side_by_side(dense, ticket, data, indices, SETTINGS, timing, seed=5, step=step)

    assert order == [DENSE, TICKET, TICKET, DENSE] * 2 + [DENSE, TICKET]  # warm-up pair first
    assert len(result.dense_seconds) == len(result.ticket_seconds) == 4
    assert result.samples_per_call == 24
    # one pass of `steps` batches per call (the settings' 3 local epochs are not timed), all calls alike
    assert all(len(b) == timing.steps for b in batches_of)
    for call in batches_of[1:]:
        assert all(torch.equal(x, y) for x, y in zip(call, batches_of[0], strict=True))
    # …and they are the batches local_train draws from the timing indices with the timing seed
    order_ = indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(5))]
    expected = [data.x_train[order_[i : i + 8]] for i in range(0, len(order_), 8)]
    assert all(torch.equal(x, y) for x, y in zip(batches_of[0], expected, strict=True))


def test_side_by_side_checks_the_number_of_indices() -> None:
    data, s = toy_data(), spec([2, 4], 8)
    with pytest.raises(ValueError, match="batches"):
        side_by_side(contender(s), contender(s), data, torch.arange(10), SETTINGS,
                     TimingSettings(steps=2, repeats=1, warmup=0))  # fmt: skip


def test_a_twice_as_wide_model_measures_slower_than_its_narrow_copy() -> None:
    torch.set_num_threads(1)
    data = toy_data(n=64)
    wide, narrow = contender(spec([32, 64], 256)), contender(spec([16, 32], 128))
    settings = dataclasses.replace(SETTINGS, batch_size=16)
    timing = TimingSettings(steps=2, repeats=5, warmup=1)
    indices = timing_indices(len(data.y_train), 32, seed=0)
    result = side_by_side(wide, narrow, data, indices, settings, timing)
    assert wide.num_params > 3 * narrow.num_params
    assert result.speedup > 1.0
    assert result.spread[0] <= result.speedup <= result.spread[1]
    assert result.speedup == pytest.approx(statistics.median(result.ratios))


def test_timing_indices_are_seeded_and_wrap_around_a_small_set() -> None:
    a, b = timing_indices(10, 25, seed=3), timing_indices(10, 25, seed=3)
    assert torch.equal(a, b) and len(a) == 25
    assert sorted(a[:10].tolist()) == list(range(10))  # a permutation, then the next one
    assert not torch.equal(a, timing_indices(10, 25, seed=4))
    with pytest.raises(ValueError, match="no training samples"):
        timing_indices(0, 5, seed=0)


def test_timing_settings_defaults_come_from_the_schema() -> None:
    assert TimingSettings.from_config({}) == TimingSettings(steps=10, repeats=10, warmup=2)
    assert TimingSettings.from_config({"repeats": 3}).repeats == 3
    exp = Experiment.load(tiny_config())
    assert exp.cfg["compute"]["timing"] == {"steps": 10, "repeats": 10, "warmup": 2}
    with pytest.raises(ConfigError, match=r"compute\.timing\.steps"):
        Experiment.load(tiny_config(compute={"timing": {"steps": 0}}))


# ---------------------------------------------------------------------------------------------------
# the stage: measured.json


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """θ0 of a tiny cnn28 on 200 real digits, and a random unstructured ticket mask for it."""
    root = tmp_path_factory.mktemp("timing_cell")
    images, labels = mnist_sample.load_raw()
    chosen = np.random.default_rng(0).choice(len(labels), size=200, replace=False)
    tr, te = stratified_split(labels[chosen], 40, seed=0)
    ds = PreparedDataset("mnist-sample", images[chosen[tr]], labels[chosen[tr]], images[chosen[te]],
                         labels[chosen[te]], mnist_sample.CLASS_NAMES)  # fmt: skip
    npz, meta = root / "prepared.npz", root / "meta.json"
    save_prepared(ds, npz, meta)
    init = root / "init"
    model_cfg = {"arch": "cnn28", "channels": [4, 8], "hidden": 16}
    files = {n: str(init / n) for n in ("weights.safetensors", "model.json", "mask.safetensors")}
    train.init(
        str(meta), 0, model_cfg, files["weights.safetensors"], files["model.json"], files["mask.safetensors"]
    )
    # an unstructured ticket: θ0's card and weights, half of every prunable weight masked
    ticket = root / "ticket"
    state = checkpoint.load_tensors(files["weights.safetensors"], kind="weights")
    gen = torch.Generator().manual_seed(0)
    card = io.read_json(files["model.json"])
    Mask({n: torch.rand(state[n].shape, generator=gen) < 0.5 for n in card["prunable"]}).save(
        ticket / "mask.safetensors"
    )
    return {
        "npz": str(npz),
        "meta": str(meta),
        "dense_weights": files["weights.safetensors"],
        "dense_card": files["model.json"],
        "ticket_weights": files["weights.safetensors"],
        "ticket_mask": str(ticket / "mask.safetensors"),
        "ticket_card": files["model.json"],
    }


PARAMS = {
    "timing": {"steps": 2, "repeats": 3, "warmup": 1},
    "training": {"batch_size": 16, "lr": 0.05, "momentum": 0.9},
    "seed": 0,
}


def test_time_cell_writes_measured_json(cell: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "measured.json"
    returned = timing_stage.time_cell(**cell, params=PARAMS, threads=1, out=str(out))
    data = json.loads(out.read_text())
    assert set(data) == {f.name for f in dataclasses.fields(SideBySideTiming)}
    side = SideBySideTiming.from_json(data)
    assert side == returned
    assert len(side.dense_seconds) == len(side.ticket_seconds) == 3
    ratios = [d / t for d, t in zip(side.dense_seconds, side.ticket_seconds, strict=True)]
    assert side.wallclock_speedup == pytest.approx(statistics.median(ratios))
    assert (side.wallclock_speedup_min, side.wallclock_speedup_max) == (min(ratios), max(ratios))
    assert side.dense_seconds_per_sample == pytest.approx(statistics.median(side.dense_seconds) / 32)
    assert side.ticket_seconds_per_sample == pytest.approx(statistics.median(side.ticket_seconds) / 32)
    assert (side.samples_per_call, side.batch_size, side.steps, side.repeats, side.warmup) == (
        32,
        16,
        2,
        3,
        1,
    )
    assert (side.threads, side.device) == (1, "cpu")
    assert side.execution == {"precision": "fp32", "channels_last": False}  # none given: the reference
    assert side.hardware == capabilities().line()
    assert side.capabilities == json.loads(json.dumps(capabilities().as_dict()))
    # an unstructured ticket: same shapes as the dense model, part of its weights masked
    assert side.ticket_params == side.dense_params
    assert side.ticket_density == pytest.approx(Mask.load(cell["ticket_mask"]).density)
    assert side.ticket_density < 1.0
    assert "dense kernels" in side.note and "same 2 batches of 16" in side.note


def test_a_measured_json_missing_a_key_fails_with_a_hint(cell: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "measured.json"
    data = timing_stage.time_cell(**cell, params=PARAMS, threads=1, out=str(out)).to_json()
    del data["ticket_seconds_per_sample"]
    with pytest.raises(ValueError, match=r"ticket_seconds_per_sample.*rerun the step"):
        SideBySideTiming.from_json(data)


def test_time_cell_rejects_a_mask_that_does_not_fit_the_ticket(cell: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "mask.safetensors"
    card = io.read_json(cell["ticket_card"])
    s = ModelSpec.from_dict(card)
    model = s.build()
    bigger = {
        n: torch.ones(t.shape[0] + 1, *t.shape[1:])
        for n, t in model.state_dict().items()
        if n in card["prunable"]
    }
    checkpoint.save_tensors(other, {n: m.to(torch.uint8) for n, m in bigger.items()}, kind="mask")
    with pytest.raises(ValueError, match="shape"):
        timing_stage.time_cell(**{**cell, "ticket_mask": str(other)}, params=PARAMS, threads=1,
                               out=str(tmp_path / "m.json"))  # fmt: skip
    assert not (tmp_path / "m.json").exists()


# ---------------------------------------------------------------------------------------------------
# the workflow


@pytest.mark.workflow
@pytest.mark.xdist_group("workflow")
def test_workflow_times_each_cell_and_reports_its_ratio(tmp_path: Path) -> None:
    cfg = tiny_config(compute={"train_threads": 1, "timing": {"steps": 2, "repeats": 3, "warmup": 1}})
    write_config(tmp_path, cfg)
    run(tmp_path)
    cells = {
        row["pruning_rate"]: row for row in csv.DictReader((tmp_path / "results/tables/cells.csv").open())
    }
    for rate in ("0.5", "0.6"):
        folder = tmp_path / f"results/mnist-sample/seed0/rate{rate}"
        side = SideBySideTiming.from_json(io.read_json(folder / "measured.json"))
        assert (side.repeats, side.steps, side.batch_size, side.threads) == (3, 2, 64, 1)
        assert side.hardware == capabilities().line()
        assert side.execution == {"precision": "fp32", "channels_last": True}  # as the training jobs ran
        summary = io.read_json(folder / "summary.json")
        measured = summary["measured"]
        assert measured["wallclock_speedup"] == side.wallclock_speedup
        assert measured["note"] == side.note
        assert measured["dense_seconds_per_sample"] == side.dense_seconds_per_sample
        assert measured["ticket_seconds_per_sample"] == side.ticket_seconds_per_sample
        # the training jobs' own times stay, for information, under job_* keys
        assert len(measured["job_phase_seconds_per_sample"]) == 3
        assert measured["job_vanilla_train_seconds"] > 0
        assert float(cells[rate]["wallclock_speedup"]) == pytest.approx(side.wallclock_speedup, rel=1e-3)
    log = (tmp_path / "results/logs/mnist-sample/seed0/rate0.5/time_cell.log").read_text()
    assert "machine:" in log and "wall-clock speed-up" in log


def test_time_cell_of_a_physically_smaller_ticket(cell: dict[str, str], tmp_path: Path) -> None:
    """A structured ticket is a narrower dense model built from its own card: it holds fewer parameters."""
    narrow = spec([2, 4], 8)
    model = narrow.init(0)
    mask = Mask.ones_like(model.state_dict(), narrow.prunable(model))
    io.write_json(tmp_path / "model.json", model_card(narrow, model, mask))
    checkpoint.save_state(tmp_path / "weights.safetensors", model.state_dict())
    mask.save(tmp_path / "mask.safetensors")
    ticket = {
        "ticket_card": str(tmp_path / "model.json"),
        "ticket_weights": str(tmp_path / "weights.safetensors"),
        "ticket_mask": str(tmp_path / "mask.safetensors"),
    }
    out = str(tmp_path / "m.json")
    layout = {"precision": "fp32", "channels_last": True}
    side = timing_stage.time_cell(**{**cell, **ticket}, params=PARAMS, threads=1, out=out, execution=layout)
    assert side.execution == layout and "fp32 channels_last" in side.note
    assert side.ticket_params == sum(p.numel() for p in model.parameters()) < side.dense_params
    assert side.ticket_density == 1.0
    assert "physically smaller model" in side.note
