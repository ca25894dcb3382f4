"""The workflow config: schema (the one place defaults are written), checks, typed settings, slices."""

from equitable_fl.config.experiment import (
    BASE_VARIANT,
    ConfigError,
    Experiment,
    rate_label,
    slice_json,
)
from equitable_fl.config.settings import ComputeSettings, TrainSettings
from equitable_fl.config.validate import SchemaError, section_defaults, validated

__all__ = [
    "BASE_VARIANT",
    "ComputeSettings",
    "ConfigError",
    "Experiment",
    "SchemaError",
    "TrainSettings",
    "rate_label",
    "section_defaults",
    "slice_json",
    "validated",
]
