"""Bit-parity of the pipeline across a code change: same config and seed → same weights, masks, metrics.

Runs the tiny grid (1 dataset × 2 pruning rates × 1 seed, 3 phases; ``tests/workflow/snakemake_runner``'s
``tiny_config``) up to the per-cell summaries with two checkouts, one after the other on this machine,
and compares:

- every ``*.safetensors`` file (θ0, weights and masks of each phase, rewind point, tickets): sha256 of
  the bytes, which must be equal;
- every ``metrics.json`` and ``summary.json``: sha256 of its canonical JSON after dropping measured and
  simulated times (``timing.json`` files, ``measured`` and ``simulated`` sections, any key ending in
  ``seconds``) and after renaming keys that a refactor renamed (``RENAMED``: old dotted path suffix →
  new), so a pure rename compares equal while any changed number does not.

Usage (from the repository root, with the project's venv):

    python tests/parity/parity.py record OUT.json            # hash list of this checkout
    python tests/parity/parity.py compare --against COMMIT   # this checkout vs a fresh run of COMMIT

``compare`` checks COMMIT out into a temporary git worktree and runs it with ``PYTHONPATH`` set to its
``src``, so both runs use the same interpreter and packages. Results depend on the CPU (kernel choices),
so a recorded list is only comparable on the machine that wrote it; ``compare`` needs no list.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "workflow"))

from snakemake_runner import tiny_config, write_config  # noqa: E402

# Keys renamed by a refactor (issue 7: one name per quantity), old → new, matched on the key's dotted path
# suffix; applied to both sides, so a key written under either name compares the same.
RENAMED: dict[str, str] = {
    "flop_speedup": "flop_speedup_model",
    "final.accuracy": "final_accuracy",
    "rounds_to_target.equitable_round": "rounds_to_target",
    "rounds_to_target.vanilla_round": "vanilla_rounds_to_target",
    "rounds_to_target.speedup": "rounds_speedup",
    "rounds_to_target.tolerance": "target_tolerance",
}
# ``simulated``: the fleet clock (issue 8) is new output; its per-round keys end in "seconds"
DROPPED_SECTIONS = {"measured", "timing", "simulated"}


def _renamed(path: str, key: str) -> str:
    for old, new in RENAMED.items():
        if f"{path}.{key}".endswith(f".{old}") or f"{path}.{key}" == old:
            return new
    return key


def _canonical(obj: Any, path: str = "") -> Any:
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            name = _renamed(path, key)
            if name in DROPPED_SECTIONS or name.endswith("seconds"):
                continue
            out[name] = _canonical(value, f"{path}.{key}")
        return out
    if isinstance(obj, list):
        return [_canonical(v, path) for v in obj]
    return obj


def digest(path: Path) -> str:
    if path.suffix == ".json":
        blob = json.dumps(_canonical(json.loads(path.read_text())), sort_keys=True).encode()
    else:
        blob = path.read_bytes()
    return hashlib.sha256(blob).hexdigest()


TARGETS = [f"results/mnist-sample/seed0/rate{r}/summary.json" for r in ("0.5", "0.6")]


def snakemake_env(checkout: Path) -> dict[str, str]:
    """The environment a run of ``checkout``'s code gets: its ``src`` first on the path, no telemetry."""
    return {
        **os.environ,
        "PYTHONPATH": str(checkout / "src"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
    }


def hash_results(results: Path) -> dict[str, str]:
    """{path relative to ``results``: digest} of every weights/mask/ticket file, metrics and summary."""
    files = [
        p
        for p in sorted(results.rglob("*"))
        if p.is_file() and (p.suffix == ".safetensors" or p.name in ("metrics.json", "summary.json"))
    ]
    return {str(p.relative_to(results)): digest(p) for p in files}


def grid_command(checkout: Path, cfg: Path) -> list[str]:
    """The local Snakemake run of the tiny grid's summaries (run from the working directory)."""
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "-s", str(checkout / "Snakefile"), "--configfile", str(cfg), "--cores", "2"]
    return [*cmd, *TARGETS]


def run_grid(checkout: Path, workdir: Path) -> dict[str, str]:
    """Run the tiny grid with ``checkout``'s code in ``workdir``; return {relative path: digest}."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = tiny_config()
    # channels_last (issue 8) changes fp32 summation order on purpose: compare the contiguous layout
    schema = checkout / "src" / "equitable_fl" / "config" / "schema.yaml"
    if schema.is_file() and "channels_last" in schema.read_text(encoding="utf-8"):
        config["compute"] = {**config["compute"], "channels_last": False}
    cfg = write_config(workdir, config)
    proc = subprocess.run(
        grid_command(checkout, cfg), cwd=workdir, env=snakemake_env(checkout), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir} with {checkout}:\n{proc.stderr[-4000:]}")
    return hash_results(workdir / "results")


def compare(old: dict[str, str], new: dict[str, str]) -> list[str]:
    problems = [f"only before: {p}" for p in sorted(set(old) - set(new))]
    problems += [f"only after: {p}" for p in sorted(set(new) - set(old))]
    problems += [f"differs: {p}" for p in sorted(set(old) & set(new)) if old[p] != new[p]]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("--against", required=True, help="git commit to compare this checkout with")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        tmp_path = Path(tmp)
        if args.cmd == "record":
            hashes = run_grid(REPO, tmp_path / "run")
            Path(args.out).write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
            print(f"{len(hashes)} files hashed → {args.out}")
            return 0
        worktree = tmp_path / "before"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.against],
            check=True,
            capture_output=True,
        )
        try:
            old = run_grid(worktree, tmp_path / "run-before")
            new = run_grid(REPO, tmp_path / "run-after")
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False
            )
        problems = compare(old, new)
        for path in sorted(new):
            print(f"{'==' if old.get(path) == new[path] else '!='} {new[path][:16]} {path}")
        if problems:
            print("\n".join(problems))
            return 1
        print(f"parity: {len(new)} files identical (weights, masks, tickets; metrics minus measured times)")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
