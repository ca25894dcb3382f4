"""Image folders at 128 px through the same path: the config checks, prepare, θ0 and one training round.

Open question 1 of the paper is how the method scales to larger inputs. At 128×128 the default
``cnn_rgb`` (4 conv blocks, each halving the side: 128 → 8, then pooled to 4×4) costs 4× the conv
FLOPs it costs at 64×64 with the same parameters; eligibility compares the *measured* cost of the
phase's model with the clients' budgets, and the memory check estimates the job from the same layer
sizes. This test writes a small synthetic image folder, runs the steps a Snakemake run would, and checks
that every number a client is judged by comes from the 128 px model.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from equitable_fl import cost
from equitable_fl import io as eqio
from equitable_fl.architectures import ARCHITECTURES, net_shape
from equitable_fl.config import Experiment
from equitable_fl.config.dataset_checks import dataset_facts
from equitable_fl.config.memory import estimate
from equitable_fl.data.prepared import load_prepared
from equitable_fl.models import ConvNet
from equitable_fl.stages import clients, data, train

RES, SEED, NAME = 128, 0, "tiles-128"
CLASSES = ("clay", "moss", "sand", "slate")


def write_folder(root: Path, per_class: int = 6) -> Path:
    """Per class a tint plus noise, saved small and odd-sized (prepare resizes them up to 128 px)."""
    rng = np.random.default_rng(0)
    for k, cls in enumerate(CLASSES):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            tint = np.array([60 * k, 220 - 50 * k, 40 + 45 * k])
            pixels = np.clip(tint + rng.integers(-25, 25, size=(40 + i, 48, 3)), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="PNG")
            (root / cls / f"tile{i}.png").write_bytes(buf.getvalue())
    return root


def config(folder: Path) -> dict[str, Any]:
    return {
        "grid": {"datasets": [NAME], "pruning_rates": [0.5], "seeds": [SEED]},
        "datasets": {
            NAME: {
                "kind": "image_folder",
                "options": {"folder": str(folder), "resolution": RES, "test_size": 0.25},
                "model": {"arch": "cnn_rgb"},  # the default sizes: 4 blocks, pool_to 4
            }
        },
        "clients": {"count": 4, "tiers": {"count": 2, "method": "quantile"}},
        "training": {"local_epochs": 1, "batch_size": 4, "client_fraction": 1.0},
        "phases": [{"rounds": 1, "tiers": [1, 2]}],
        "eligibility": {"check_budget": True},
        "compute": {"checkpoint_every": 0},
    }


def test_cnn_rgb_at_128_px_is_sized_and_costed_from_the_real_model() -> None:
    opts = ARCHITECTURES["cnn_rgb"]
    net = net_shape((3, RES, RES), len(CLASSES), opts)
    assert [b.pooled_hw for b in net.blocks] == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert net.features == 128 * 4 * 4  # the last 8×8 map pooled to 4×4
    model = ConvNet((3, RES, RES), len(CLASSES), **opts)
    assert net.params == sum(t.numel() for t in model.state_dict().values())
    small = ConvNet((3, 64, 64), len(CLASSES), **opts)
    conv = [c for c in cost.layer_costs(model, (3, RES, RES)) if c.positions > 1]
    conv_small = [c for c in cost.layer_costs(small, (3, 64, 64)) if c.positions > 1]
    # every conv weight is applied at 4× as many positions: (128 / 64)²
    assert [c.positions for c in conv] == [4 * c.positions for c in conv_small]
    # from 64 px up the parameter count stays put: pool_to 4 keeps the hidden layer's input at 128 × 4 × 4
    assert net.params == net_shape((3, 64, 64), len(CLASSES), opts).params


def test_the_memory_check_sizes_the_job_at_its_resolution(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "tiles")
    training = {"batch_size": 32, "eval_batch_size": 1000, "client_fraction": 1.0, "min_clients": 1}
    jobs = {}
    for resolution in (64, RES):
        cfg = config(folder)
        cfg["datasets"][NAME]["options"]["resolution"] = resolution
        problems, facts = dataset_facts(Experiment.load(cfg).cfg)
        net = facts[NAME].net
        assert problems == [] and net is not None and net.input_shape == (3, resolution, resolution)
        jobs[resolution] = estimate(facts[NAME], net, training, 30, "phase 1")
    # activations grow with the pixels (4×), the model's copies not at all (same parameters)
    ratio = jobs[RES].train_activations / jobs[64].train_activations
    assert 3 < ratio <= 4
    assert jobs[RES].models == jobs[64].models
    # evaluating 1,000 test images at once holds ≈ 4.9 GB of 128 px activations: what the check warns of
    assert jobs[RES].eval_activations > 4e9 > jobs[64].eval_activations


def test_one_round_at_128_px_on_a_synthetic_image_folder(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "tiles")
    cfg = config(folder)
    exp = Experiment.load(cfg)  # the config checks (depth, memory) pass at 128 px
    options = exp.dataset_options(NAME)
    results, raw = tmp_path / "results", tmp_path / "raw"
    npz, meta = results / "data" / NAME / "prepared.npz", results / "data" / NAME / "meta.json"
    fetched = results / "data" / NAME / "fetched.json"
    data.fetch(NAME, options, str(raw), str(fetched), kind="image_folder")
    data.prepare(NAME, options, str(raw), str(npz), str(meta), fetched=str(fetched))
    ds = load_prepared(npz, meta)
    assert ds.input_shape == (3, RES, RES) and ds.num_classes == len(CLASSES)

    cell = results / NAME / f"seed{SEED}"
    clients.partition(
        str(npz), str(meta), SEED, exp.partition_slice(), str(cell / "p.json"), str(cell / "p.csv")
    )
    clients_json = results / "clients" / "clients.json"
    clients.profiles(SEED, exp.clients_slice(), str(clients_json))
    init = cell / "init"
    train.init(
        str(meta),
        SEED,
        exp.model_config(NAME),
        str(init / "weights.safetensors"),
        str(init / "model.json"),
        str(init / "mask.safetensors"),
    )
    assert eqio.read_json(init / "model.json")["input_shape"] == [3, RES, RES]

    out = cell / "phase1"
    train.phase(
        npz=str(npz),
        meta=str(meta),
        partition_json=str(cell / "p.json"),
        clients_json=str(clients_json),
        card=str(init / "model.json"),
        start_weights=str(init / "weights.safetensors"),
        start_mask=str(init / "mask.safetensors"),
        params=exp.phase_slice(1, SEED),
        threads=1,
        out=train.TrainingOutputs(
            **{k: str(out / f"{k}.json") for k in ("metrics", "participation", "timing", "params")},
            weights=str(out / "weights.safetensors"),
            mask=str(out / "mask.safetensors"),
            rewind=str(out / "rewind.safetensors"),
        ),
    )
    metrics = eqio.read_json(out / "metrics.json")
    assert len(metrics["history"]) == 1 and np.isfinite(metrics["final_loss"])
    assert metrics["history"][0]["samples"] == len(ds.y_train)  # every client trained its shard once

    # what eligibility compared against the budgets is the 128 px model's own cost
    model = ConvNet((3, RES, RES), len(CLASSES), **ARCHITECTURES["cnn_rgb"])
    flops = cost.train_flops(cost.layer_costs(model, (3, RES, RES)))
    participation = eqio.read_json(out / "participation.json")
    assert participation["model_cost"]["train_flops_per_sample"] == pytest.approx(flops)
    assert metrics["train_flops_per_sample"] == pytest.approx(flops)
    assert flops > 1e9  # ≈ 1.2 GFLOP per training sample, 4× the conv FLOPs at 64 px
    trained = train.checkpoint.load_tensors(out / "weights.safetensors", kind="weights")
    assert all(torch.isfinite(t).all() for t in trained.values())
