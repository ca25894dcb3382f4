"""The ServerApp of a phase (``[tool.flwr.app.components] serverapp``): reads the job folder named by the
run config value ``job`` and runs the phase (:func:`equitable_fl.federation.flower.server.run_phase`)."""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    from equitable_fl.federation.flower.server import run_phase  # PyTorch loads in the run, not at import

    run_phase(grid, Path(str(context.run_config["job"])))
