"""What the config says about each dataset, checked before any job: kind, options, sizes and model.

:func:`dataset_facts` resolves every ``datasets.<name>`` entry to its registry spec (a built-in name, or
any name of kind ``image_folder``), checks its options (:mod:`equitable_fl.config.dataset_options`) and,
for the datasets in the grid, works out what the jobs will see:

- the input shape (fixed, or 3×R×R at an image folder's ``resolution``) and, where it is known before
  the fetch, the class count (fixed, the ``classes`` list, or the class folders of a local ``folder``);
- the split sizes where they are known: mnist-sample's 5,000 images split by ``test_size``, the official
  splits of MNIST/Fashion-MNIST (60,000/10,000) and CIFAR-10 (50,000/10,000), the images counted in a
  local ``folder``, the default releases of the presets; after ``train_limit``/``test_limit``;
- whether the model's conv stack fits the input (each block halves height and width).

A local ``folder`` is surveyed here (folder names, image counts; no image is decoded), so a folder that
does not hold class folders, or whose classes differ from ``classes``, fails before any job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equitable_fl.architectures import ARCHITECTURES, NetShape, deepest, net_shape
from equitable_fl.config.dataset_options import option_problems
from equitable_fl.config.messages import one_of, problem
from equitable_fl.data import registry
from equitable_fl.data.registry import DatasetSize, DatasetSpec, UnknownDatasetError

_UNKNOWN = (None, None)  # split sizes not known before the fetch


@dataclass(frozen=True)
class DatasetFacts:
    """What the training jobs of one grid dataset will see; None where it is not known before a fetch."""

    name: str
    spec: DatasetSpec
    options: dict[str, Any]  # the loader's defaults overlaid with the config's options
    input_shape: tuple[int, int, int]
    num_classes: int | None
    n_train: int | None
    n_test: int | None
    net: NetShape | None  # None when the model does not fit the input


def dataset_facts(cfg: Mapping[str, Any]) -> tuple[list[str], dict[str, DatasetFacts]]:
    """Problems of every ``datasets`` entry, and the facts of each grid dataset that has no problems."""
    out: list[str] = []
    facts: dict[str, DatasetFacts] = {}
    grid = set(cfg["grid"]["datasets"])
    for name, entry in cfg["datasets"].items():
        spec, found = _spec(name, entry)
        if spec is None:
            out += found
            continue
        found = option_problems(name, spec, entry.get("options") or {})
        if not found and name in grid:
            fact, found = _facts(name, spec, entry)
            if fact is not None:
                facts[name] = fact
        out += found
    return out, facts


def _spec(name: str, entry: Mapping[str, Any]) -> tuple[DatasetSpec | None, list[str]]:
    kind = entry.get("kind")
    builtin = registry.default_kind(name)
    key = f"datasets.{name}.kind"
    new_kinds = [k for k, v in registry.KINDS.items() if v.any_name]
    if builtin is None and kind is None:
        return None, [
            problem(
                key,
                None,
                f"is missing, and {name!r} is not a built-in dataset ({', '.join(registry.names())})",
                f"{one_of(new_kinds)} (a folder of one sub-folder per class, or an archive of one)",
            )
        ]
    try:
        return registry.get(name, kind), []
    except UnknownDatasetError as exc:
        allowed = builtin if builtin is not None else one_of(new_kinds)
        return None, [problem(key, kind, f"does not fit: {exc}", str(allowed))]


def _facts(name: str, spec: DatasetSpec, entry: Mapping[str, Any]) -> tuple[DatasetFacts | None, list[str]]:
    opts = {**spec.defaults(), **(entry.get("options") or {})}
    if spec.kind == "image_folder":
        from equitable_fl.data import image_folder

        given = dict(entry.get("options") or {})
        opts = image_folder.options(name, given)  # as the jobs will read them
        shape = (3, int(opts["resolution"]), int(opts["resolution"]))
        # a preset's size is its default release's: not known for the user's own source or classes
        release = spec.size if not {"url", "archive", "folder", "classes"} & set(given) else None
        out, classes, sizes = _image_folder(name, release, opts)
    else:
        shape = spec.input_shape or (0, 0, 0)
        out, classes, sizes = _fixed(name, spec, opts)
    n_train, n_test = sizes
    if n_train is not None and opts.get("train_limit"):
        n_train = min(n_train, int(opts["train_limit"]))
    if n_test is not None and opts.get("test_limit"):
        n_test = min(n_test, int(opts["test_limit"]))
    net, model_problems = _model(name, spec, entry, shape, classes)
    out += model_problems
    if out:
        return None, out
    return DatasetFacts(name, spec, opts, shape, classes, n_train, n_test, net), []


def _fixed(name: str, spec: DatasetSpec, opts: dict[str, Any]) -> tuple[list[str], int | None, tuple]:
    """Embedded and torchvision sets: fixed classes; sizes from the release (and ``test_size``)."""
    out: list[str] = []
    size = spec.size
    if spec.kind == "torchvision" and opts.get("local_source") and not Path(opts["local_source"]).is_dir():
        out.append(
            problem(
                f"datasets.{name}.options.local_source",
                opts["local_source"],
                "is not a folder",
                "a folder holding the dataset's files, or null to download them",
            )
        )
    if size is None:
        return out, spec.num_classes, _UNKNOWN
    if size.total is not None:  # split by test_size (mnist-sample)
        n, test = size.total, int(opts["test_size"])
        if not 0 < test < n:
            out.append(
                problem(
                    f"datasets.{name}.options.test_size",
                    test,
                    f"leaves no training images: {name} has {n:,} images in all",
                    f"1 ≤ x ≤ {n - 1}",
                )
            )
            return out, spec.num_classes, _UNKNOWN
        return out, spec.num_classes, (n - test, test)
    return out, spec.num_classes, (size.train, size.test)


def _image_folder(
    name: str, release: DatasetSize | None, opts: dict[str, Any]
) -> tuple[list[str], int | None, tuple]:
    """Image folders: classes and sizes from a local folder's survey, a ``classes`` list or a preset's
    default ``release``."""
    key = f"datasets.{name}.options"
    out: list[str] = []
    split = opts["layout"] == "split_folders"
    if split:
        for side in ("train_folder", "test_folder"):
            if not opts[side]:
                out.append(
                    problem(
                        f"{key}.{side}", opts[side], "is empty with layout split_folders", "a folder name"
                    )
                )
    if opts.get("archive") and not Path(str(opts["archive"])).expanduser().is_file():
        out.append(problem(f"{key}.archive", opts["archive"], "is not a file", "an existing archive file"))
    if out:
        return out, None, _UNKNOWN
    if opts.get("folder"):
        return _survey_folder(name, opts, split)
    n_classes = len(opts["classes"]) if opts["classes"] else None
    if release is None:
        return out, n_classes, _UNKNOWN
    if release.total is not None:
        n_test = round(float(opts["test_size"]) * release.total)
        return out, n_classes, (release.total - n_test, n_test)
    return out, n_classes, (release.train, release.test)


def _refused(line: str) -> tuple[list[str], None, tuple[None, None]]:
    return [line], None, _UNKNOWN


def _survey_folder(name: str, opts: dict[str, Any], split: bool) -> tuple[list[str], int | None, tuple]:
    """A local folder's classes and image counts, checked as preparing it would check them."""
    from equitable_fl.data.class_folders import survey
    from equitable_fl.data.download import RawDataError

    key = f"datasets.{name}.options"
    base = Path(str(opts["folder"])).expanduser() / str(opts["root"] or "")
    folders = (str(opts["train_folder"]), str(opts["test_folder"])) if split else None
    try:
        found = survey(base, folders)
    except (RawDataError, OSError) as exc:
        layout = "train and test folders of" if split else "a folder of images per class in"
        return _refused(
            problem(f"{key}.folder", opts["folder"], f"cannot be used: {exc}", f"{layout} {base}")
        )
    classes = opts["classes"]
    if classes is not None and set(classes) != set(found.classes):
        missing, extra = sorted(set(classes) - set(found.classes)), sorted(set(found.classes) - set(classes))
        what = f"does not match the class folders in {base} (missing {missing}, unexpected {extra})"
        return _refused(
            problem(
                f"{key}.classes", classes, what, f"{found.classes}, or null to take the folders as they are"
            )
        )
    if split:
        return [], len(found.classes), (found.counts["train"], found.counts["test"])
    n, fraction = found.counts["all"], float(opts["test_size"])
    n_test = round(fraction * n)
    if not 0 < n_test < n:
        what = f"of the {n} images in {base} gives {n_test} test images"
        allowed = f"{0.5 / n:.3g} < x < {(n - 0.5) / n:.3g} (at least one image on each side)"
        return _refused(problem(f"{key}.test_size", fraction, what, allowed))
    return [], len(found.classes), (n - n_test, n_test)


def _model(
    name: str, spec: DatasetSpec, entry: Mapping[str, Any], shape: tuple[int, int, int], classes: int | None
) -> tuple[NetShape | None, list[str]]:
    """The model's layer sizes on this input, or the problem that stops it being built."""
    model = dict(entry.get("model") or {"arch": spec.model})
    arch = model.pop("arch")
    opts = {**ARCHITECTURES[arch], **model}
    key = f"datasets.{name}.model"
    given = "" if "channels" in model else f"(the {arch} default) "
    k = int(opts["kernel_size"])
    if k % 2 == 0:
        return None, [
            problem(
                f"{key}.kernel_size",
                k,
                "is even (the conv padding keeps sizes only for odd kernels)",
                "1, 3, 5, 7 …",
            )
        ]
    blocks, most = len(opts["channels"]), deepest(shape, k)
    if blocks > most:
        hint = ""
        if spec.kind == "image_folder":
            hint = f", or datasets.{name}.options.resolution ≥ {2**blocks} for {blocks} blocks"
        c, h, w = shape
        return None, [
            problem(
                f"{key}.channels",
                opts["channels"],
                f"{given}has {blocks} conv blocks, too deep for the {c}×{h}×{w} input of {name} (each block "
                "halves height and width)",
                f"at most {most} blocks{hint}",
            )
        ]
    return net_shape(shape, classes or 2, opts), []
