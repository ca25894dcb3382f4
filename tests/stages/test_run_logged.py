"""A failed step says which job failed, why, and where its full log is."""

from __future__ import annotations

from pathlib import Path

import pytest

from equitable_fl.stages import run_logged


def _broken(*, path: str) -> None:
    raise FileNotFoundError(f"no such file: {path}")


def test_failure_names_job_error_and_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "logs" / "mnist" / "seed0" / "rate0.5" / "phase2.log"
    log.parent.mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        run_logged(str(log), _broken, job="phase 2 of mnist rate0.5 seed0", path="x.safetensors")
    err = capsys.readouterr().err
    assert "phase 2 of mnist rate0.5 seed0 failed: FileNotFoundError: no such file: x.safetensors" in err
    assert f"full log: {log}" in err
    assert "Traceback" in log.read_text()  # the traceback is in the job's log


def test_success_returns_the_step_result(tmp_path: Path) -> None:
    assert run_logged(str(tmp_path / "ok.log"), lambda *, x: x + 1, x=1) == 2
