"""File-level steps of the pipeline: each reads its input files, calls the library, writes outputs.

The Snakemake scripts under ``workflow/scripts`` are one-line adapters onto these functions, so every
step can also be run and tested from Python without Snakemake.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from equitable_fl.progress import LOGGER_NAME, configure_logging


def run_logged(
    log_path: str | None, step: Callable[..., Any], *, job: str | None = None, **kwargs: Any
) -> Any:
    """Run ``step`` with the package logging to ``log_path``; a failure's traceback goes there too.

    On failure one line also goes to the terminal, naming the job (e.g. "phase 2 of mnist rate0.5
    seed0"), the error and the log file, so the cause is found without searching Snakemake's output.
    """
    configure_logging(log_path)
    try:
        return step(**kwargs)
    except Exception as exc:
        what = job or f"step {step.__qualname__}"
        logging.getLogger(LOGGER_NAME).exception("%s failed", what)
        print(
            f"equitable-fl: {what} failed: {type(exc).__name__}: {exc}\n  full log: {log_path}",
            file=sys.stderr,
        )
        raise
