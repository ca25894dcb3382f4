"""A dataset's ``options`` checked against its loader before any job: known keys, types and ranges.

The known options of a dataset are the keys of its loader's defaults (``DatasetSpec.defaults()``: the
``DEFAULTS`` of ``mnist_sample`` and ``torchvision_sets``, ``image_folder.GENERIC`` or a preset's), so a
loader that learns an option is checked for it at once; :data:`OPTION_TYPES` says what values each one
takes (an option without an entry takes any value; ``tests/test_config_rejects.py`` keeps the two in
step). Defaults stay with the loaders: nothing here fills a value in.

After the types check out, the loader's own option reader runs too (``image_folder.options``,
``torchvision_sets._options``), so whatever it would refuse in a job (e.g. a ``checksums`` entry for a
file the dataset does not have) is refused here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

from equitable_fl.config.messages import describe, problem
from equitable_fl.data.registry import DatasetSpec

_PATH = {"type": ["string", "null"], "minLength": 1}
_LIMIT = {"type": ["integer", "null"], "minimum": 1}
_SEED = {"type": "integer", "minimum": 0}
_TIMEOUT = {"type": "number", "exclusiveMinimum": 0}
_ARCHIVE_LIMITS = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "max_total_bytes": {"type": "integer", "minimum": 1},
        "max_members": {"type": "integer", "minimum": 1},
        "max_ratio": {"type": "number", "exclusiveMinimum": 0},
    },
}
_FOLDER_NAME = {"type": ["string", "null"], "minLength": 1}

# kind → option → JSON schema of its value
OPTION_TYPES: dict[str, dict[str, dict[str, Any]]] = {
    "embedded": {
        "test_size": {"type": "integer", "minimum": 1},  # images; checked against the 5,000 too
        "split_seed": _SEED,
    },
    "torchvision": {
        "mirrors": {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}},
        "checksums": {
            "type": ["object", "null"],
            "additionalProperties": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
        },
        "manual_dir": _PATH,
        "local_source": _PATH,
        "archive_limits": _ARCHIVE_LIMITS,
        "train_limit": _LIMIT,
        "test_limit": _LIMIT,
        "limit_seed": _SEED,
        "timeout": _TIMEOUT,
    },
    "image_folder": {
        "url": {
            "type": ["string", "array", "null"],
            "minLength": 1,
            "items": {"type": "string", "minLength": 1},
        },
        "filename": _PATH,
        "archive": _PATH,
        "folder": _PATH,
        "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{64}$"},
        "allow_unverified": {"type": "boolean"},
        "root": {"type": ["string", "null"]},
        "layout": {"enum": ["split_folders", "single_folder"]},
        "train_folder": _FOLDER_NAME,
        "test_folder": _FOLDER_NAME,
        "classes": {
            "type": ["array", "null"],
            "minItems": 2,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1},
        },
        "resolution": {"type": "integer", "minimum": 1},
        "test_size": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},  # a fraction
        "split_seed": _SEED,
        "train_limit": _LIMIT,
        "test_limit": _LIMIT,
        "limit_seed": _SEED,
        "manual_dir": _PATH,
        "timeout": _TIMEOUT,
        "archive_limits": _ARCHIVE_LIMITS,
    },
}


def options_schema(spec: DatasetSpec) -> dict[str, Any]:
    """The JSON schema of ``spec``'s options: its loader's keys, typed by :data:`OPTION_TYPES`."""
    types = OPTION_TYPES.get(spec.kind, {})
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {key: types.get(key, {}) for key in spec.defaults()},
    }


def _loader_reader(spec: DatasetSpec) -> Callable[[str, dict[str, Any]], Any] | None:
    """The loader's own option reader (it raises ValueError on what a job would refuse)."""
    if spec.kind == "image_folder":
        from equitable_fl.data import image_folder

        return image_folder.options
    if spec.kind == "torchvision":
        from equitable_fl.data import torchvision_sets

        return torchvision_sets._options
    return None


def option_problems(name: str, spec: DatasetSpec, options: Mapping[str, Any]) -> list[str]:
    """Every problem of ``datasets.<name>.options``: unknown keys (with the known ones), bad values."""
    where = ["datasets", name, "options"]
    errors = sorted(
        Draft202012Validator(options_schema(spec)).iter_errors(dict(options)), key=lambda e: list(e.path)
    )
    out = [describe(e, where) for e in errors]
    if out:
        return out
    reader = _loader_reader(spec)
    # torchvision's reader imports torchvision (seconds) to list file names: only for `checksums`
    if reader is None or (spec.kind == "torchvision" and not options.get("checksums")):
        return []
    try:
        reader(name, dict(options))
    except (ValueError, TypeError) as exc:
        out.append(
            problem(
                f"datasets.{name}.options",
                dict(options),
                f"is refused by the {spec.kind} loader: {exc}",
                f"the options {spec.prepare.target.partition(':')[0]} documents",
            )
        )
    return out
