"""Schema validation that also fills defaults: the schema is the one place a default is written.

``schema.yaml`` (beside this module; ``workflow/schemas/config.schema.yaml`` links to it) states types,
ranges, unknown keys and every default. Snakemake's ``validate()`` does the same for the workflow; this
module lets the library build a complete config from a partial one (tests, the stages, variants) without
importing Snakemake, so typed settings never carry defaults of their own that could drift from it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from equitable_fl.config.messages import describe


class SchemaError(ValueError):
    """The config breaks the schema: an unknown key, a wrong type or a value out of range.

    ``problems`` holds one line per violation (key, value found, what is allowed).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@functools.cache
def schema() -> dict[str, Any]:
    text = resources.files("equitable_fl.config").joinpath("schema.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _with_defaults(validator_class: Any) -> Any:
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Any, instance: Any, sub: Any) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop and name not in instance:
                    instance[name] = copy.deepcopy(prop["default"])
        yield from validate_properties(validator, properties, instance, sub)

    return validators.extend(validator_class, {"properties": set_defaults})


_Filling = _with_defaults(Draft202012Validator)


def validated(
    raw: Mapping[str, Any], sub_schema: Mapping[str, Any] | None = None, where: str = ""
) -> dict[str, Any]:
    """A deep copy of ``raw`` checked against the schema (or its sub-schema at ``where``), defaults filled.

    Raises :class:`SchemaError` listing every violation: its key path, the value found and what is
    allowed (:func:`~equitable_fl.config.messages.describe`).
    """
    cfg = copy.deepcopy(dict(raw))
    errors = sorted(_Filling(sub_schema or schema()).iter_errors(cfg), key=lambda e: list(e.path))
    if errors:
        prefix = [where] if where else []
        lines = [describe(e, prefix) for e in errors]
        raise SchemaError("config does not match the schema:\n  - " + "\n  - ".join(lines), lines)
    return cfg


def section_defaults(section: str) -> dict[str, Any]:
    """Defaults of one top-level section (``training``, ``pruning`` …) as the schema states them."""
    props = schema()["properties"][section]["properties"]
    return {k: copy.deepcopy(v["default"]) for k, v in props.items() if "default" in v}
