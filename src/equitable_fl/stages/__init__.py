"""File-level steps of the pipeline: each reads its input files, calls the library, writes outputs.

The Snakemake scripts under ``workflow/scripts`` are one-line adapters onto these functions, so every
step can also be run and tested from Python without Snakemake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from equitable_fl.progress import LOGGER_NAME, configure_logging


def run_logged(log_path: str | None, step: Callable[..., Any], **kwargs: Any) -> Any:
    """Run ``step`` with the package logging to ``log_path``; a failure's traceback goes there too."""
    configure_logging(log_path)
    try:
        return step(**kwargs)
    except Exception:
        logging.getLogger(LOGGER_NAME).exception("step %s failed", step.__qualname__)
        raise
