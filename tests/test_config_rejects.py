"""Bad configs are refused before any job, each with the key, the value found and what is allowed.

Every case below is a mistake that used to pass the checks and fail inside a job (or not at all): an
unknown option ignored, thresholds sorted behind the user's back, a split larger than the data, a conv
stack too deep for the input, a job that cannot fit in memory. ``Experiment.load`` must raise one
:class:`ConfigError` whose message holds the key, the bad value and the allowed values or range; the
last test runs ``snakemake -n`` on a bad config to show that no job is even planned.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from equitable_fl.config import ConfigError, Experiment
from equitable_fl.config.dataset_options import OPTION_TYPES
from equitable_fl.data import registry

# tests/ is on sys.path (pytest's rootdir insertion): tests/workflow is importable as `workflow`
from workflow.snakemake_runner import jobs_run, run, tiny_config, write_config  # isort: skip

Edit = Callable[[dict[str, Any]], None]
NEW = "leaves"  # a new image-folder dataset, from an archive this test never needs to read
NEW_ENTRY = {
    "kind": "image_folder",
    "options": {"url": "http://127.0.0.1:9/leaves.zip", "sha256": "a" * 64, "resolution": 16},
    "model": {"arch": "cnn_rgb", "channels": [4, 8]},
}


def at(path: str, value: Any) -> Edit:
    """Set ``value`` at a dotted path (list positions as numbers), creating mappings on the way."""

    def edit(cfg: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = cfg
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[int(last) if isinstance(node, list) else last] = value

    return edit


def with_new(**changes: Any) -> Edit:
    """Add the new dataset to the grid, its entry updated with ``changes`` (``options``/``model``)."""

    def edit(cfg: dict[str, Any]) -> None:
        entry = {k: (dict(v) if isinstance(v, dict) else v) for k, v in NEW_ENTRY.items()}
        for key, value in changes.items():
            entry[key] = {**entry.get(key, {}), **value} if isinstance(value, dict) else value
        entry = {k: v for k, v in entry.items() if v is not None}  # None: leave the key out
        cfg["grid"]["datasets"] = ["mnist-sample", NEW]
        cfg["datasets"][NEW] = entry

    return edit


def both(*edits: Edit) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        for e in edits:
            e(cfg)

    return edit


SAMPLE = "datasets.mnist-sample"
DEVICE = {"share": 1, "download_bytes_per_s": 1e6, "upload_bytes_per_s": 1e6, "storage_bytes": 1e9}

# (id, edit of tiny_config(), key, bad value as the message shows it, allowed values or range)
CASES: list[tuple[str, Edit, str, str, str]] = [
    # unknown keys anywhere, with the known ones listed
    ("top-level key", at("bogus", 1), "bogus", '"bogus"', "results_dir"),
    ("training key", at("training.learning_rate", 0.1), "training.learning_rate", "learning_rate", "lr"),
    ("dataset option", at(f"{SAMPLE}.options.test_fraction", 0.2), f"{SAMPLE}.options.test_fraction",
     "test_fraction", "split_seed, test_size"),
    ("nested archive_limits key", at("datasets.mnist", {"options": {"archive_limits": {"max_bytes": 9}}}),
     "datasets.mnist.options.archive_limits.max_bytes", "max_bytes",
     "max_members, max_ratio, max_total_bytes"),
    ("image-folder option", with_new(options={"resolutoin": 32}), f"datasets.{NEW}.options.resolutoin",
     "resolutoin", "resolution"),
    ("checksum file name", at("datasets.mnist", {"options": {"checksums": {"train-images.gz": "0" * 32}}}),
     "datasets.mnist.options", "train-images.gz", "known files: ['t10k-images-idx3-ubyte'"),
    # option values
    ("image-folder layout", with_new(options={"layout": "nested"}), f"datasets.{NEW}.options.layout",
     '"nested"', '"split_folders", "single_folder"'),
    ("image-folder resolution", with_new(options={"resolution": 0}), f"datasets.{NEW}.options.resolution",
     "0", "x ≥ 1"),
    ("image-folder test_size", with_new(options={"test_size": 20}), f"datasets.{NEW}.options.test_size",
     "20", "0 < x < 1"),
    ("sha256 form", with_new(options={"sha256": "abc"}), f"datasets.{NEW}.options.sha256", '"abc"',
     "^[0-9a-fA-F]{64}$"),
    ("one class", with_new(options={"classes": ["oak"]}), f"datasets.{NEW}.options.classes", '["oak"]',
     "at least 2 item(s)"),
    ("split folders", with_new(options={"layout": "split_folders", "test_folder": None}),
     f"datasets.{NEW}.options.test_folder", "null", "a folder name"),
    ("archive path", with_new(options={"url": None, "archive": "/no/such/leaves.zip"}),
     f"datasets.{NEW}.options.archive", "/no/such/leaves.zip", "an existing archive file"),
    ("local_source",
     both(at("grid.datasets", ["mnist"]), at("datasets.mnist", {"options": {"local_source": "/no/mnist"}})),
     "datasets.mnist.options.local_source", "/no/mnist", "a folder holding the dataset's files"),
    # dataset kinds and names
    ("new name without kind", with_new(kind=None), f"datasets.{NEW}.kind", "null", '"image_folder"'),
    ("built-in with another kind", at("datasets.mnist", {"kind": "image_folder"}), "datasets.mnist.kind",
     '"image_folder"', "torchvision"),
    ("grid name unknown", at("grid.datasets", ["mnist-sample", "imagenet"]), "grid.datasets", "imagenet",
     "kind image_folder"),
    ("dataset name", at("datasets.my leaves", {"kind": "image_folder"}), "datasets", '"my leaves"',
     "^[A-Za-z0-9_-]+$"),
    # split sizes against the data
    ("test_size past the data", at(f"{SAMPLE}.options.test_size", 6000), f"{SAMPLE}.options.test_size",
     "6000", "1 ≤ x ≤ 4999"),
    ("more clients than images", both(at(f"{SAMPLE}.options.test_size", 4990), at("clients.count", 12)),
     "clients.count", "12", "≤ 10"),
    ("dirichlet min_samples",
     at("clients.partition", {"method": "dirichlet", "alpha": 0.5, "min_samples": 1000}),
     "clients.count", "6", "≤ 4"),
    # the model against its input
    ("conv stack too deep", at(f"{SAMPLE}.model.channels", [4, 8, 8, 8, 8]), f"{SAMPLE}.model.channels",
     "[4, 8, 8, 8, 8]", "at most 4 blocks"),
    ("too deep for the resolution", with_new(options={"resolution": 8}, model={"channels": [4, 8, 8, 8]}),
     f"datasets.{NEW}.model.channels", "[4, 8, 8, 8]",
     "at most 3 blocks, or datasets.leaves.options.resolution ≥ 16"),
    ("even kernel", at(f"{SAMPLE}.model.kernel_size", 4), f"{SAMPLE}.model.kernel_size", "4", "1, 3, 5, 7"),
    # order-sensitive lists are checked, not sorted
    ("unsorted thresholds", at("clients.tiers", {"count": 3, "method": "absolute", "thresholds": [0.8, 0.4]}),
     "clients.tiers.thresholds", "[0.8, 0.4]", "strictly increasing values, e.g. [0.4, 0.8]"),
    ("device classes weakest first", at("clients.resources.devices",
     {"classes": [{"name": "a", "flops_per_s": 9e9, **DEVICE}, {"name": "b", "flops_per_s": 2e9, **DEVICE}]}),
     "clients.resources.devices.classes[1].flops_per_s", "2000000000.0", "≥ 9000000000.0"),
    ("quantiles outside (0, 1)", at("clients.tiers.thresholds", [0.5, 1.5]), "clients.tiers.thresholds",
     "[0.5, 1.5]", "0 < x < 1"),
    ("threshold count", at("clients.tiers.thresholds", [0.5]), "clients.tiers", "[0.5]",
     "2 strictly increasing values"),
    ("absolute needs thresholds", at("clients.tiers.method", "absolute"), "clients.tiers.thresholds", "null",
     "2 increasing scores"),
    # ranges and choices
    ("low above high", at("clients.resources.low", 2.0), "clients.resources.low", "2.0",
     "0 < low < high = 1.6"),
    ("learning rate", at("training.lr", 0), "training.lr", "0", "x > 0"),
    ("pruning rate", at("grid.pruning_rates", [0.5, 1.0]), "grid.pruning_rates[1]", "1.0", "0 < x < 1"),
    ("pruning scope", at("pruning.scope", "per-channel"), "pruning.scope", '"per-channel"',
     '"layerwise", "global"'),
    ("client count type", at("clients.count", "thirty"), "clients.count", '"thirty"', "an integer"),
    ("phase tiers", at("phases.1.tiers", [1, 5]), "phases[1].tiers", "[1, 5]", "tiers 1..3"),
    ("rewind round", at("pruning.rewind_round", 5), "pruning.rewind_round", "5", "0 ≤ x ≤ 2"),
    ("output rate factor", at("pruning.output_rate_factor", 2.0), "pruning.output_rate_factor", "2.0",
     "0 ≤ x < 1.667"),
    ("variant value", at("grid.variants", {"big": {"training": {"batch_size": 0}}}),
     "grid.variants.big", "training.batch_size", "x ≥ 1"),
    ("workers beyond threads", at("compute.workers", 4), "compute.workers", "4",
     "auto or 1 (or raise compute.train_threads)"),
    # memory
    ("memory budget", at("compute.memory_budget_mb", 100), "compute.memory_budget_mb", "100", "allowed: ≥ 5"),
    ("memory of a variant", at("grid.variants", {"big": {"training": {"eval_batch_size": 10**6}}}),
     "grid.variants.big: compute.memory_budget_mb", "16384", "training.eval_batch_size (1000000)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "key", "value", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_config_is_rejected_with_key_value_and_allowed(
    edit: Edit, key: str, value: str, allowed: str
) -> None:
    cfg = tiny_config()
    edit(cfg)
    with pytest.raises(ConfigError) as info:
        Experiment.load(cfg)
    lines = [line for line in str(info.value).splitlines() if line.startswith("  - ")]
    line = next((line for line in lines if key in line), None)
    assert line is not None, f"no problem names {key!r}:\n{info.value}"
    assert value in line, line
    assert "allowed" in line and allowed in line, line


def test_enough_cases_and_the_base_config_is_fine() -> None:
    assert len(CASES) >= 20
    Experiment.load(tiny_config())
    cfg = tiny_config()
    with_new()(cfg)
    Experiment.load(cfg)  # the new dataset's base entry is valid: each case breaks one thing


def test_every_loader_option_has_a_type_and_every_type_an_option() -> None:
    """Known options are the loaders' own (their defaults); OPTION_TYPES types exactly those."""
    for spec in [registry.get(n) for n in registry.names()] + [registry.get("any-new-name", "image_folder")]:
        assert set(spec.defaults()) == set(OPTION_TYPES[spec.kind]), spec.name


@pytest.mark.workflow
def test_the_workflow_stops_before_any_job(tmp_path: Path) -> None:
    cfg = tiny_config()
    at("clients.tiers", {"count": 3, "method": "absolute", "thresholds": [0.8, 0.4]})(cfg)
    at(f"{SAMPLE}.options.test_fraction", 0.2)(cfg)
    write_config(tmp_path, cfg)
    proc = run(tmp_path, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert jobs_run(proc) == [] and "Job stats" not in out
    assert "clients.tiers.thresholds: [0.8, 0.4] is not in strictly increasing order" in out
    assert f"{SAMPLE}.options.test_fraction" in out and "allowed keys here: split_seed, test_size" in out
    assert not (tmp_path / "results").exists()
