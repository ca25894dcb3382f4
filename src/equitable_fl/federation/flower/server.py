"""The server side of a phase on Flower: find the fleet, then run the phase's strategy round by round.

1. :func:`discover`: wait for the nodes (up to ``compute.flower.wait_for_nodes_seconds``), send each a
   set-up query, and map node ids to client ids from the answers: a node says which client it is and,
   on real devices, what resources and tier it has (its node config; :mod:`.node`).
2. :class:`EquitableFedAvg`, a ``flwr.serverapp.strategy.FedAvg`` whose choices are all
   :class:`~equitable_fl.federation.strategy.EquitableStrategy`'s: ``configure_train`` asks it for the
   round's cohort among the eligible clients whose node is connected (and, for a dynamic fleet, who are
   online by the job's conditions; members that would leave before finishing get no task) and sends
   each task (with its seed) to that node; ``aggregate_train`` puts the replies in cohort order and
   lets it average them with the mask re-applied; the server-side evaluation then evaluates the global
   model and has it account the round. Byte counts are the lengths of the payloads sent and received.

Replies come back in any order; aggregating them in cohort order, as the in-process engine does, makes
the average the same sum in the same order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.supercore import log

from equitable_fl.federation.client import ClientTask, ClientUpdate, State, evaluate
from equitable_fl.federation.flower import wire
from equitable_fl.federation.flower.job import Job, Result, read_data, read_job, write_result
from equitable_fl.federation.flower.node import NodeIdentity
from equitable_fl.federation.strategy import EquitableStrategy
from equitable_fl.records import RoundRecord
from equitable_fl.resources import ClientProfile

INFO, WARNING = 20, 30


@dataclass
class Fleet:
    """The clients the federation has: which node each is on, and their profiles."""

    nodes: dict[int, int]  # client → node id
    profiles: list[ClientProfile]
    failures: list[str] = field(default_factory=list)
    setup_bytes: int = 0


def _wait_for_nodes(grid: Grid, want: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    nodes = sorted(grid.get_node_ids())
    while len(nodes) < want and time.monotonic() < deadline:
        time.sleep(0.5)
        nodes = sorted(grid.get_node_ids())
    return nodes


def discover(grid: Grid, job: Job, setup: ConfigRecord, setup_size: int) -> Fleet:
    """Query every connected node once: who it is, what it has; hand it the phase's set-up."""
    nodes = _wait_for_nodes(grid, len(job.profiles), job.wait_for_nodes_seconds)
    log(INFO, "equitable-fl: %d node(s) connected, %d client(s) in the fleet", len(nodes), len(job.profiles))
    messages = [
        Message(RecordDict({"setup": setup}), dst_node_id=n, message_type=MessageType.QUERY) for n in nodes
    ]
    replies = grid.send_and_receive(messages, timeout=job.round_timeout_seconds)
    fleet = Fleet({}, list(job.profiles), setup_bytes=setup_size * len(messages))
    for reply in replies:
        node = reply.metadata.src_node_id
        if reply.has_error():
            fleet.failures.append(f"node {node} did not join: {reply.error.reason}")
            continue
        who = NodeIdentity.from_record(reply.content["identity"])
        if not 0 <= who.client < len(job.profiles):
            raise ValueError(
                f"node {node} says it is client {who.client}, but the fleet has clients "
                f"0…{len(job.profiles) - 1} (clients.count): fix client-id in its node config"
            )
        if who.client in fleet.nodes:
            raise ValueError(
                f"nodes {fleet.nodes[who.client]} and {node} both say they are client {who.client}: "
                "give every SuperNode its own client-id"
            )
        fleet.nodes[who.client] = node
        fleet.profiles[who.client] = who.profile(job.profiles[who.client])
    answered = {r.metadata.src_node_id for r in replies}
    fleet.failures += [f"node {n} did not answer the set-up query" for n in nodes if n not in answered]
    for failure in fleet.failures:
        log(WARNING, "equitable-fl: %s", failure)
    return fleet


@dataclass
class _Round:
    tasks: list[ClientTask] = field(default_factory=list)
    updates: list[ClientUpdate] = field(default_factory=list)
    bytes_down: int = 0
    bytes_up: int = 0
    train_seconds: float = 0.0
    payload_bytes: int = 0  # one model download this round


class EquitableFedAvg(FedAvg):
    """Flower's FedAvg with every policy decision delegated to the phase's ``EquitableStrategy``."""

    def __init__(
        self,
        policy: EquitableStrategy,
        fleet: Fleet,
        model: torch.nn.Module,
        job: Job,
        data_folder: Path,
        start: State,
    ) -> None:
        super().__init__(fraction_evaluate=0.0, min_train_nodes=0, min_available_nodes=0)
        self.policy, self.fleet, self.model, self.job = policy, fleet, model, job
        self.test_data, _ = read_data(data_folder)
        self.state: State = {k: v.clone() for k, v in start.items()}
        self.history: list[RoundRecord] = []
        self.tasks: list[list[tuple[int, int]]] = []
        self.snapshots: dict[int, State] = {}
        if 0 in job.plan.snapshot_rounds:
            self.snapshots[0] = {k: v.clone() for k, v in start.items()}
        self.round = _Round()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        connected = set(grid.get_node_ids())
        available = [c for c, n in self.fleet.nodes.items() if n in connected]
        scheduled = self.policy.available(server_round)  # a dynamic fleet's clients online (None: all)
        if scheduled is not None:
            online = set(scheduled)
            available = [c for c in available if c in online]
        tasks = self.policy.configure_round(server_round, available)
        payload = wire.payload_size(arrays)
        self.round = _Round(tasks=tasks, bytes_down=payload * len(tasks), payload_bytes=payload)
        log(INFO, "equitable-fl: round %d, clients %s", server_round, [t.client for t in tasks])
        return [
            Message(
                RecordDict({"arrays": arrays, "config": wire.task_record(t)}),
                dst_node_id=self.fleet.nodes[t.client],
                message_type=MessageType.TRAIN,
                group_id=str(server_round),
            )
            for t in tasks
        ]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        got: dict[int, ClientUpdate] = {}
        for reply in replies:
            if reply.has_error():
                self._fail(server_round, f"node {reply.metadata.src_node_id}: {reply.error.reason}")
                continue
            update, nbytes, seconds = wire.update_from(reply.content["arrays"], reply.content["metrics"])
            got[update.client] = update
            self.round.bytes_up += nbytes
            self.round.train_seconds += seconds
        for t in self.round.tasks:
            if t.client not in got:
                self._fail(server_round, f"no update from client {t.client}")
        # cohort order: the in-process engine's order of summation
        self.round.updates = [got[t.client] for t in self.round.tasks if t.client in got]
        self.state = self.policy.aggregate(self.round.updates, self.state)
        metrics = MetricRecord({"num-examples": sum(u.num_examples for u in self.round.updates)})
        return wire.pack(self.state, self.policy.mask), metrics

    def _fail(self, server_round: int, what: str) -> None:
        self.fleet.failures.append(f"round {server_round}: {what}")
        log(WARNING, "equitable-fl: round %d: %s", server_round, what)

    def evaluate_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Server-side evaluation, then the round's record (Flower's ``evaluate_fn``)."""
        if server_round == 0:
            return None
        settings = self.job.plan.settings
        accuracy, loss = evaluate(
            self.model, self.state, self.test_data, settings.eval_batch_size, self.job.execution
        )
        r = self.round
        record = self.policy.account(server_round, r.tasks, r.updates, accuracy, loss, r.train_seconds)
        # measured: payloads sent and received; a dropout of a dynamic fleet is charged the download it
        # would have had, as in the in-process engine (it is never sent a task: it leaves before finishing)
        dropped = len(self.policy.dropouts(server_round))
        record.bytes_down, record.bytes_up = r.bytes_down + r.payload_bytes * dropped, r.bytes_up
        self.history.append(record)
        self.tasks.append([(t.client, t.seed) for t in r.tasks])
        if server_round in self.job.plan.snapshot_rounds:
            self.snapshots[server_round] = {k: v.clone() for k, v in self.state.items()}
        log(
            INFO,
            "equitable-fl: round %d: %d client(s), accuracy %.4f",
            server_round,
            len(r.updates),
            accuracy,
        )
        return MetricRecord({"accuracy": accuracy, "loss": loss})


def run_phase(grid: Grid, folder: Path) -> None:
    """The ServerApp's work: read the job, find the fleet, run the rounds, write the result."""
    job, start, mask = read_job(folder)
    torch.set_num_threads(job.threads)
    setup_mask = wire.mask_bytes(mask)
    setup = wire.setup_record(job.model_spec.as_dict(), job.execution.describe(), job.threads, setup_mask)
    fleet = discover(grid, job, setup, len(setup_mask))
    policy = job.strategy(mask, fleet.profiles)
    policy.check_runnable()
    model = job.execution.prepare(job.model_spec.build())
    strategy = EquitableFedAvg(policy, fleet, model, job, folder, start)
    strategy.start(
        grid,
        wire.pack(start, mask),
        num_rounds=job.plan.rounds,
        timeout=job.round_timeout_seconds,
        evaluate_fn=strategy.evaluate_round,
    )
    seen = (fleet.profiles, fleet.nodes, fleet.failures, fleet.setup_bytes)
    write_result(folder, Result(strategy.history, strategy.tasks, *seen), strategy.state, strategy.snapshots)
