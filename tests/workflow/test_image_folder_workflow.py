"""A dataset the registry has never heard of trains end to end in a real Snakemake run.

``leaves-5``: a folder of 5 class folders of small PNG and JPEG images, written here, named in the config
with ``kind: image_folder`` and nothing else in the code. Five classes is a count no preset has, so the
model's output layer, the prepared data and every step downstream take it from the folders.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .snakemake_runner import jobs_run, run, tiny_config, write_config

CLASSES = ("ash", "birch", "elm", "maple", "oak")
CELL = "results/leaves-5/seed0"


def write_leaves(root: Path, per_class: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for k, cls in enumerate(CLASSES):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            tint = np.array([50 * k, 255 - 50 * k, 120])
            pixels = np.clip(tint + rng.integers(-30, 30, size=(10 + i % 3, 12, 3)), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="PNG" if i % 2 else "JPEG")
            (root / cls / f"leaf{i}.{'png' if i % 2 else 'jpg'}").write_bytes(buf.getvalue())
    return root


@pytest.mark.workflow
def test_a_new_image_folder_dataset_trains_end_to_end(tmp_path: Path) -> None:
    folder = write_leaves(tmp_path / "my leaves")
    cfg = tiny_config()
    cfg["grid"] = {"datasets": ["leaves-5"], "pruning_rates": [0.5], "seeds": [0]}
    cfg["datasets"] = {
        "leaves-5": {
            "kind": "image_folder",
            "options": {"folder": str(folder), "resolution": 8, "test_size": 0.25},
            "model": {"arch": "cnn_rgb", "channels": [4, 8], "hidden": 16},
        }
    }
    cfg["phases"] = [{"rounds": 1}, {"rounds": 1}, {"rounds": 1}]
    write_config(tmp_path, cfg)
    proc = run(tmp_path, f"{CELL}/rate0.5/summary.json")
    ran = {job.rule for job in jobs_run(proc)}
    assert {"fetch_leaves_5", "prepare", "init_model", "phase1", "prune", "phase", "vanilla"} <= ran

    meta = json.loads((tmp_path / "results/data/leaves-5/meta.json").read_text())
    assert meta["class_names"] == list(CLASSES) and meta["input_shape"] == [3, 8, 8]
    assert (meta["num_train"], meta["num_test"]) == (30, 10)
    assert meta["source"]["folder"]["folder"] == str(folder) and meta["source"]["folder"]["files"] == 40
    card = json.loads((tmp_path / CELL / "init/model.json").read_text())
    assert card["num_classes"] == 5 and card["input_shape"] == [3, 8, 8]
    summary = json.loads((tmp_path / CELL / "rate0.5/summary.json").read_text())
    assert summary["dataset"] == "leaves-5" and summary["num_phases"] == 3
    final = json.loads((tmp_path / CELL / "rate0.5/phase3/metrics.json").read_text())
    assert 0.0 <= final["final_accuracy"] <= 1.0 and len(final["history"]) == 1
