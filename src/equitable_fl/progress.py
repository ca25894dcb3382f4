"""Per-round progress: one log line per round, and a progress bar when attached to a terminal.

Snakemake redirects each job's ``log:`` file; the line format is stable so that users can ``tail -f``
or grep it (``phase 2 round 3/10 clients 7 acc 0.9512 loss 0.1623 elapsed 12.4s``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType

from tqdm import tqdm

LOGGER_NAME = "equitable_fl"


def configure_logging(log_path: str | os.PathLike[str] | None) -> logging.Logger:
    """Send the package's log records to ``log_path`` (and to stderr when it is not a terminal)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    if log_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    if log_path is None or not sys.stderr.isatty():
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(fmt)
        logger.addHandler(stream)
    logger.propagate = False
    return logger


class RoundProgress:
    """Context manager that logs a line per round and drives a tqdm bar on a TTY."""

    def __init__(self, label: str, total_rounds: int) -> None:
        self.label = label
        self.total = total_rounds
        self.log = logging.getLogger(LOGGER_NAME)
        self.start = time.perf_counter()
        self.bar = (
            tqdm(total=total_rounds, desc=label, file=sys.stderr, leave=False)
            if sys.stderr.isatty()
            else None
        )

    def __enter__(self) -> RoundProgress:
        return self

    def round_done(self, rnd: int, num_clients: int, accuracy: float, loss: float) -> None:
        elapsed = time.perf_counter() - self.start
        self.log.info(
            "%s round %d/%d clients %d acc %.4f loss %.4f elapsed %.1fs",
            self.label,
            rnd,
            self.total,
            num_clients,
            accuracy,
            loss,
            elapsed,
        )
        if self.bar is not None:
            self.bar.set_postfix(acc=f"{accuracy:.4f}", clients=num_clients)
            self.bar.update(1)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.close()
