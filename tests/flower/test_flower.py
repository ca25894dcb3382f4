"""Equitable-FL on a real Flower federation, against the in-process engine on the same cell and seed.

Deployment runtime: a SuperLink and three SuperNodes on 127.0.0.1, one per client, each started with
the node config the project prints for it (its client id, its resources and tier from ``clients.json``,
its data files). Simulation runtime: a SuperLink started with ``--simulation`` (Flower's Ray simulator,
one simulated node per client). In both, phase 1, prune, phase 2, prune, phase 3 run through the stage
functions with ``engine="flower"``: every phase is one ``flwr run``.

What is asserted, phase by phase, against the in-process engine's run of the same experiment:

- a client of tier t takes part in no phase before phase t, and in every phase from it on: from the
  phase's participation record and, in deployment, from the SuperNodes' own logs (which messages each
  node received, run by run);
- the masks (pruned between phases from the trained weights) are identical, and so are the weights,
  bit for bit: both engines train every client with the same per-client seed, in fp32 on one thread,
  and average the updates in the same (cohort) order in float64;
- accuracy agrees within ``ACCURACY_TOLERANCE`` = 0 on every round, which follows from the identical
  weights (the README's "Run on real devices with Flower" says what to expect on real devices);
- each round's bytes are the lengths of the sparse-codec payloads that went through Flower.

Every Flower process is stopped by PID at the end, also on failure, and the test fails if one is left.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from equitable_fl import checkpoint, io
from equitable_fl.mask import Mask
from equitable_fl.records import PhaseRecord

from .experiment import PHASES, Cell, experiment, make_cell, node_configs, run_phases
from .federation import federation

pytestmark = [pytest.mark.flower, pytest.mark.xdist_group("flower")]

# Same seeds, same order of summation, fp32 on one thread: the engines give the same bits, so the same
# accuracy. On real devices (other CPUs, thread counts) expect differences; see the README.
ACCURACY_TOLERANCE = 0.0
CLIENTS = 3
# The ServerApp waits for every node, then each round for every reply: bounds against hangs only.
FLOWER = {"wait_for_nodes_seconds": 120, "round_timeout_seconds": 300}
_RECEIVED = re.compile(r"Receiving: (\w+) message")


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Cell:
    return make_cell(tmp_path_factory.mktemp("cell"), experiment([1, 1, 1]))


def tiers_of(cell: Cell) -> dict[int, int]:
    return {row["client"]: row["tier"] for row in io.read_json(cell.path("clients.json"))["clients"]}


def check_against_inprocess(
    cell: Cell, flower: Path, inprocess: Path, rounds: list[int], static: bool = True
) -> None:
    tiers = tiers_of(cell)
    assert sorted(tiers.values()) == [1, 2, 3]  # one client per tier: each phase admits one more
    for k in range(1, PHASES + 1):
        label = f"phase {k}"
        took = io.read_json(flower / f"phase{k}" / "participation.json")
        assert took == io.read_json(inprocess / f"phase{k}" / "participation.json"), label
        if static:  # on a dynamic fleet who takes part also depends on who is online
            assert sorted(took["took_part"]) == sorted(c for c, t in tiers.items() if t <= k), label
            assert took["took_part_by_tier"] == {str(t): int(t <= k) for t in (1, 2, 3)}, label

        got = PhaseRecord.from_json(io.read_json(flower / f"phase{k}" / "metrics.json"))
        ref = PhaseRecord.from_json(io.read_json(inprocess / f"phase{k}" / "metrics.json"))
        assert len(got.history) == len(ref.history) == rounds[k - 1], label
        for a, b in zip(got.history, ref.history, strict=True):
            assert a.clients == b.clients, label
            assert abs(a.accuracy - b.accuracy) <= ACCURACY_TOLERANCE, f"{label} round {a.round}"
            assert a.loss == b.loss and a.train_loss == b.train_loss, f"{label} round {a.round}"
            assert a.dropouts == b.dropouts, f"{label} round {a.round}"
            # measured on the messages: one encoded model each way per client; a dropout, which leaves
            # before it would finish, is charged the download it would have had, and sends nothing
            dropped = len(a.dropouts or [])
            assert a.bytes_up == got.size.encoded_bytes * len(a.clients)
            assert a.bytes_down == got.size.encoded_bytes * (len(a.clients) + dropped) == b.bytes_down
        assert got.to_json() == ref.to_json(), f"{label}: metrics.json differs"

        mask, ref_mask = (
            Mask.load(flower / f"phase{k}" / "mask.safetensors"),
            Mask.load(inprocess / f"phase{k}" / "mask.safetensors"),
        )
        assert mask.keys() == ref_mask.keys() and all(torch.equal(mask[n], ref_mask[n]) for n in mask), label
        weights = checkpoint.load_tensors(flower / f"phase{k}" / "weights.safetensors", kind="weights")
        ref_weights = checkpoint.load_tensors(inprocess / f"phase{k}" / "weights.safetensors", kind="weights")
        assert weights.keys() == ref_weights.keys(), label
        assert all(torch.equal(weights[n], ref_weights[n]) for n in weights), f"{label}: weights differ"
    # the final ticket is really sparse: the masks compared above are not trivially all ones
    assert 0.5 < Mask.load(flower / f"phase{PHASES}" / "mask.safetensors").sparsity < 0.9


def messages_per_run(log: Path) -> list[dict[str, int]]:
    """The message types a SuperNode received, per run (every run opens with one set-up query)."""
    runs: list[dict[str, int]] = []
    for kind in _RECEIVED.findall(log.read_text()):
        if kind == "query":
            runs.append({})
        runs[-1][kind] = runs[-1].get(kind, 0) + 1
    return runs


def test_deployment_runtime_matches_inprocess(
    cell: Cell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = [1, 1, 1]  # every message is a process start on each node: the few rounds the checks need
    exp = experiment(rounds)
    inprocess = run_phases(cell, exp, tmp_path / "inprocess", "inprocess")
    with federation(tmp_path / "flwr-home", node_configs(cell, CLIENTS)) as fed:
        monkeypatch.setenv("FLWR_HOME", str(fed.home))
        flower = run_phases(
            cell, exp, tmp_path / "flower", "flower", {"connection": fed.connection, **FLOWER}
        )
    check_against_inprocess(cell, flower, inprocess, rounds)
    # the nodes' side: node c (client c) got a train message per round of phases that admit its tier
    for client, tier in tiers_of(cell).items():
        expected = [{"query": 1, **({"train": r} if tier <= k else {})} for k, r in enumerate(rounds, 1)]
        assert messages_per_run(fed.logs[1 + client]) == expected, f"client {client} (tier {tier})"


def test_simulation_runtime_matches_inprocess(
    cell: Cell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = [1, 1, 2]  # simulated rounds cost ~1 s: phase 3 also sends an aggregated model back out
    exp = experiment(rounds)
    inprocess = run_phases(cell, exp, tmp_path / "inprocess", "inprocess")
    settings: dict[str, Any] = {"runtime": "simulation", **FLOWER}
    with federation(tmp_path / "flwr-home", [], simulation=True) as fed:
        monkeypatch.setenv("FLWR_HOME", str(fed.home))
        flower = run_phases(
            cell, exp, tmp_path / "flower", "flower", {"connection": fed.connection, **settings}
        )
    check_against_inprocess(cell, flower, inprocess, rounds)


# Clients that come and go, at rates that make this tiny fleet churn within six rounds: who is online,
# what each affords (compute noise re-decides eligibility) and who leaves come from the job's dynamics,
# which the ServerApp's strategy gets in the job folder. At this seed phase 1 trains nobody (its one
# admitted client drops out, then nobody is eligible), so a round with no task goes through Flower too.
CHURN = {"process": "markov", "markov": {"on_to_off": 0.3, "off_to_on": 0.6}, "noise": {"compute": 0.8}}


def test_a_dynamic_fleet_on_flower_matches_inprocess(
    cell: Cell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = [2, 2, 2]
    exp = experiment(rounds, availability=CHURN)
    inprocess = run_phases(cell, exp, tmp_path / "inprocess", "inprocess")
    # the churn is real: cohort members drop out, and a round's resources change who is eligible
    phases = [inprocess / f"phase{k}" for k in range(1, PHASES + 1)]
    history = [r for d in phases for r in io.read_json(d / "metrics.json")["history"]]
    assert any(r["dropouts"] for r in history) and any(not r["clients"] for r in history)
    took = [io.read_json(d / "participation.json") for d in phases]
    assert any(e != p["eligible"] for p in took for e in p["eligible_by_round"].values())
    settings: dict[str, Any] = {"runtime": "simulation", **FLOWER}
    with federation(tmp_path / "flwr-home", [], simulation=True) as fed:
        monkeypatch.setenv("FLWR_HOME", str(fed.home))
        flower = run_phases(
            cell, exp, tmp_path / "flower", "flower", {"connection": fed.connection, **settings}
        )
    check_against_inprocess(cell, flower, inprocess, rounds, static=False)
